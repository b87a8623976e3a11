//! Copying elements between strided layouts, and an aligned private buffer to copy into.

use super::header::contiguous;

/// Copy every element of an array laid out with `src_strides` into one laid out with
/// `dst_strides` (byte strides, any sign), both of `shape` and `itemsize`-byte elements.
/// Contiguous rows are copied with one `memcpy` each, two C-contiguous layouts with one.
///
/// # Safety
///
/// `src_strides` and `dst_strides` have `shape.len()` entries. For every index within
/// `shape`, `src` offset by `sum(index[k] * src_strides[k])` bytes is valid for reading
/// `itemsize` bytes, `dst` offset by `sum(index[k] * dst_strides[k])` is valid for writing
/// `itemsize` bytes, and no byte read is also written.
///
/// # Panics
///
/// When `src_strides` or `dst_strides` do not have `shape.len()` entries.
// Offsets of valid elements fit in isize: no allocation is larger than isize::MAX.
#[allow(clippy::cast_possible_wrap)]
pub unsafe fn copy_strided(
    shape: &[u64],
    itemsize: usize,
    src: *const u8,
    src_strides: &[i64],
    dst: *mut u8,
    dst_strides: &[i64],
) {
    assert!(src_strides.len() == shape.len() && dst_strides.len() == shape.len());
    if shape.contains(&0) {
        return;
    }
    let c = |strides: &[i64]| contiguous(shape.iter().zip(strides).rev(), itemsize, false);
    if shape.is_empty() || (c(src_strides) && c(dst_strides)) {
        let count: u64 = shape.iter().product();
        // SAFETY: both layouts are contiguous from element 0 over count * itemsize bytes,
        // all valid by the caller's promise, and disjoint.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, count as usize * itemsize) };
        return;
    }
    let inner = shape.len() - 1;
    let row = shape[inner] as usize;
    let (s_step, d_step) = (src_strides[inner] as isize, dst_strides[inner] as isize);
    let whole_rows = s_step == itemsize as isize && d_step == itemsize as isize;
    let mut index = vec![0u64; inner];
    loop {
        let (mut s_at, mut d_at) = (0isize, 0isize);
        for ((&i, &ss), &ds) in index.iter().zip(src_strides).zip(dst_strides) {
            s_at += i as isize * ss as isize;
            d_at += i as isize * ds as isize;
        }
        if whole_rows {
            // SAFETY: the row's elements are consecutive in both layouts; each is valid and
            // disjoint by the caller's promise.
            unsafe {
                std::ptr::copy_nonoverlapping(src.offset(s_at), dst.offset(d_at), row * itemsize);
            }
        } else {
            for j in 0..row as isize {
                // SAFETY: element (index, j) of each layout, valid and disjoint as promised.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        src.offset(s_at + j * s_step),
                        dst.offset(d_at + j * d_step),
                        itemsize,
                    );
                }
            }
        }
        let mut k = inner;
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// Zeroed private memory aligned to 64 bytes: where a copy of an array goes (a DLPack export
/// with `copy=True`, a staging copy).
pub struct AlignedBuffer {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuffer {
    /// `len` zero bytes.
    #[must_use]
    pub fn zeroed(len: usize) -> Self {
        Self {
            lines: vec![Line([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte (64-byte aligned; dangling but aligned when empty).
    #[must_use]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr().cast()
    }

    /// The bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `lines` holds at least `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }
}

impl std::fmt::Debug for AlignedBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuffer")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{c_strides, f_strides};
    use super::*;

    fn copy(
        shape: &[u64],
        src: &[u8],
        ss: &[i64],
        s0: usize,
        ds: &[i64],
        d0: usize,
        n: usize,
    ) -> Vec<u8> {
        let mut out = vec![0xffu8; n];
        // SAFETY: the tests pick layouts inside both buffers.
        unsafe {
            copy_strided(
                shape,
                1,
                src.as_ptr().add(s0),
                ss,
                out.as_mut_ptr().add(d0),
                ds,
            );
        }
        out
    }

    #[test]
    fn c_to_f_and_back() {
        let src: Vec<u8> = (0..6).collect();
        let (c, f) = (
            c_strides(&[2, 3], 1).unwrap(),
            f_strides(&[2, 3], 1).unwrap(),
        );
        let fo = copy(&[2, 3], &src, &c, 0, &f, 0, 6);
        assert_eq!(fo, vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(copy(&[2, 3], &fo, &f, 0, &c, 0, 6), src);
        assert_eq!(copy(&[2, 3], &src, &c, 0, &c, 0, 6), src);
    }

    #[test]
    fn negative_zero_and_padded() {
        let src: Vec<u8> = (0..8).collect();
        assert_eq!(copy(&[4], &src, &[-1], 3, &[1], 0, 4), vec![3, 2, 1, 0]);
        assert_eq!(
            copy(&[2, 3], &src, &[0, 1], 0, &[3, 1], 0, 6),
            vec![0, 1, 2, 0, 1, 2]
        );
        // Into padded rows of 4: the padding stays untouched.
        let out = copy(&[2, 3], &src, &[3, 1], 0, &[4, 1], 0, 8);
        assert_eq!(out, vec![0, 1, 2, 0xff, 3, 4, 5, 0xff]);
        assert_eq!(copy(&[], &src, &[], 5, &[], 0, 1), vec![5]);
        assert_eq!(
            copy(&[3, 0], &src, &[1, 1], 0, &[1, 1], 0, 2),
            vec![0xff, 0xff]
        );
    }

    #[test]
    fn wide_elements() {
        let src: Vec<u8> = (0..16).collect();
        let mut out = vec![0u8; 16];
        // Two 8-byte elements, swapped.
        // SAFETY: both layouts lie in 16-byte buffers.
        unsafe { copy_strided(&[2], 8, src.as_ptr().add(8), &[-8], out.as_mut_ptr(), &[8]) };
        assert_eq!(&out[..8], &src[8..]);
        assert_eq!(&out[8..], &src[..8]);
    }

    #[test]
    fn aligned_buffer() {
        let mut b = AlignedBuffer::zeroed(100);
        assert_eq!(b.as_mut_ptr() as usize % 64, 0);
        assert_eq!(b.len(), 100);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        assert!(AlignedBuffer::zeroed(0).is_empty());
    }
}
