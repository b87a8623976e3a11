//! Typed views: an array header plus its data as `T`s, checked before anything is read.

use std::marker::PhantomData;

use super::dtype::Element;
use super::header::ArrayHeader;
use crate::error::{Error, ErrorKind, Result};

/// Fail on a host whose byte order is not the layout's (little-endian): a view there would
/// read every element wrong. Every front checks this before making a view.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] on a big-endian host.
pub fn check_host() -> Result<()> {
    if cfg!(target_endian = "big") {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "array views need a little-endian host (the layout is little-endian)",
        ));
    }
    Ok(())
}

/// Checks shared by both views: the host is little-endian, the header holds `T`s, and the
/// data area is aligned for `T` and lies in `buffer`. Returns the data area's range.
fn check<T: Element>(header: &ArrayHeader, buffer: *const u8) -> Result<(usize, usize)> {
    check_host()?;
    if header.dtype() != T::DTYPE {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "the array holds {} elements, not {}",
                header.dtype(),
                T::DTYPE
            ),
        ));
    }
    // Validated against the buffer's length, so these fit in usize.
    let start = header.data_offset() as usize;
    let len = header.data_len() as usize;
    let addr = buffer as usize + start;
    if addr % std::mem::align_of::<T>() != 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "the array's data at address {addr:#x} is not aligned to {} bytes (an array \
                 header must start at a multiple of 64 in its mapping)",
                std::mem::align_of::<T>()
            ),
        ));
    }
    Ok((start, len))
}

/// A read-only typed view of an array: an [`ArrayHeader`] and the data it describes, as `T`s.
///
/// Made from the bytes of a buffer that starts at the header (for shared memory, from
/// [`Region::as_slice`](crate::Region::as_slice), whose safety contract then applies). The
/// header is decoded and validated against the buffer's length first, with the rules of
/// SPEC 7.2, and `T` must be the header's element type: every element the view reaches lies
/// inside the buffer, aligned.
///
/// ```
/// use shmbridge::array::{ArrayHeader, ArrayView, DType, Order};
/// use shmbridge::Region;
/// let region = Region::anonymous(4096)?;
/// let header = ArrayHeader::new(DType::Int32, &[2, 3], Order::C)?;
/// header.write_to(&region, 0)?;
/// region.set(header.element_offset(&[1, 2]).unwrap(), 7i32)?;
/// // SAFETY: nothing writes the region or shrinks it while the view lives.
/// let view = ArrayView::<i32>::new(unsafe { region.as_slice() })?;
/// assert_eq!(view.shape(), &[2, 3]);
/// assert_eq!(view.get(&[1, 2]), Some(&7));
/// assert_eq!(view.as_slice(), Some(&[0, 0, 0, 0, 0, 7][..]));
/// # Ok::<(), shmbridge::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ArrayView<'a, T: Element> {
    header: ArrayHeader,
    data: &'a [u8],
    _t: PhantomData<&'a [T]>,
}

impl<'a, T: Element> ArrayView<'a, T> {
    /// Decode the header at the start of `buffer` and view the data as `T`s.
    ///
    /// # Errors
    ///
    /// As [`ArrayHeader::decode`] for the header; [`ErrorKind::InvalidArgument`] when the
    /// array holds another element type than `T` or its data is not aligned for `T`;
    /// [`ErrorKind::Unsupported`] on a big-endian host.
    pub fn new(buffer: &'a [u8]) -> Result<Self> {
        let header = ArrayHeader::decode(buffer, buffer.len() as u64)?;
        let (start, len) = check::<T>(&header, buffer.as_ptr())?;
        Ok(Self {
            header,
            data: &buffer[start..start + len],
            _t: PhantomData,
        })
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> &ArrayHeader {
        &self.header
    }

    /// The shape.
    #[must_use]
    pub fn shape(&self) -> &[u64] {
        self.header.shape()
    }

    /// The strides in bytes.
    #[must_use]
    pub fn strides(&self) -> &[i64] {
        self.header.strides()
    }

    /// Number of dimensions.
    #[must_use]
    pub fn ndim(&self) -> usize {
        self.header.ndim()
    }

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.header.len()
    }

    /// Whether there are no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.header.is_empty()
    }

    /// The element at `index` (one entry per dimension; `&[]` for a 0-d array), or `None`
    /// when `index` has the wrong length or is out of range.
    #[must_use]
    pub fn get(&self, index: &[u64]) -> Option<&'a T> {
        let at = self.header.offset_in_data(index)?;
        // SAFETY: the header was validated against the data area: the element at `at` lies
        // inside `data` and is aligned for T (data is aligned, strides and origin are
        // multiples of size_of::<T>()); every bit pattern is a valid T (Element is sealed to
        // such types); `data` is borrowed for 'a.
        Some(unsafe { &*self.data.as_ptr().add(at).cast::<T>() })
    }

    /// All elements as one slice in C order, when the array is C-contiguous.
    #[must_use]
    pub fn as_slice(&self) -> Option<&'a [T]> {
        self.header
            .is_c_contiguous()
            .then(|| self.contiguous_slice())
    }

    /// All elements as one slice in memory order, when the array is C- or F-contiguous.
    #[must_use]
    pub fn as_slice_memory_order(&self) -> Option<&'a [T]> {
        (self.header.is_c_contiguous() || self.header.is_f_contiguous())
            .then(|| self.contiguous_slice())
    }

    fn contiguous_slice(&self) -> &'a [T] {
        // Contiguous: the elements are `len` consecutive Ts from `origin` (validated to lie
        // in the data area; for an empty array `origin <= data_len`).
        let origin = self.header.origin() as usize;
        let len = self.header.len() as usize;
        // SAFETY: as in `get`: origin..origin + len * size_of::<T>() is inside `data`,
        // aligned, and any bit pattern is a valid T.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(origin).cast::<T>(), len) }
    }

    /// The elements in C order (last index fastest), whatever the strides.
    pub fn iter(&self) -> impl Iterator<Item = &'a T> + '_ {
        let mut index = vec![0u64; self.ndim()];
        let mut left = self.len();
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let item = self.get(&index);
            for (i, dim) in index.iter_mut().zip(self.header.shape()).rev() {
                *i += 1;
                if *i < *dim {
                    break;
                }
                *i = 0;
            }
            item
        })
    }

    /// A copy of the elements in C order.
    #[must_use]
    pub fn to_vec(&self) -> Vec<T> {
        match self.as_slice() {
            Some(s) => s.to_vec(),
            None => self.iter().copied().collect(),
        }
    }
}

/// A writable typed view of an array: as [`ArrayView`], over a mutable buffer.
#[derive(Debug)]
pub struct ArrayViewMut<'a, T: Element> {
    header: ArrayHeader,
    data: &'a mut [u8],
    _t: PhantomData<&'a mut [T]>,
}

impl<'a, T: Element> ArrayViewMut<'a, T> {
    /// Decode the header at the start of `buffer` and view the data as `T`s.
    ///
    /// # Errors
    ///
    /// As [`ArrayView::new`].
    pub fn new(buffer: &'a mut [u8]) -> Result<Self> {
        let header = ArrayHeader::decode(buffer, buffer.len() as u64)?;
        let (start, len) = check::<T>(&header, buffer.as_ptr())?;
        Ok(Self {
            header,
            data: &mut buffer[start..start + len],
            _t: PhantomData,
        })
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> &ArrayHeader {
        &self.header
    }

    /// A read-only view of the same elements.
    #[must_use]
    pub fn view(&self) -> ArrayView<'_, T> {
        ArrayView {
            header: self.header.clone(),
            data: self.data,
            _t: PhantomData,
        }
    }

    /// The element at `index`, or `None` (see [`ArrayView::get`]).
    #[must_use]
    pub fn get(&self, index: &[u64]) -> Option<&T> {
        let at = self.header.offset_in_data(index)?;
        // SAFETY: as in ArrayView::get.
        Some(unsafe { &*self.data.as_ptr().add(at).cast::<T>() })
    }

    /// The element at `index`, writable, or `None`.
    ///
    /// Several indices may name the same element when a stride is 0; `&mut self` makes sure
    /// only one reference exists at a time.
    #[must_use]
    pub fn get_mut(&mut self, index: &[u64]) -> Option<&mut T> {
        let at = self.header.offset_in_data(index)?;
        // SAFETY: as in ArrayView::get, and `&mut self` borrows the data exclusively.
        Some(unsafe { &mut *self.data.as_mut_ptr().add(at).cast::<T>() })
    }

    /// All elements as one writable slice in C order, when the array is C-contiguous.
    #[must_use]
    pub fn as_slice_mut(&mut self) -> Option<&mut [T]> {
        if !self.header.is_c_contiguous() {
            return None;
        }
        let origin = self.header.origin() as usize;
        let len = self.header.len() as usize;
        // SAFETY: as in ArrayView::contiguous_slice; contiguous elements never alias, and
        // `&mut self` borrows the data exclusively.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.data.as_mut_ptr().add(origin).cast::<T>(), len)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{c_strides, Bool, Complex, DType, Order, F16};
    use super::*;

    /// An 64-byte aligned buffer holding `h` and zeroed data.
    struct Buf(Vec<[u64; 8]>, usize);

    impl Buf {
        fn new(h: &ArrayHeader) -> Self {
            let len = h.total_len() as usize;
            let mut b = Buf(vec![[0u64; 8]; len.div_ceil(64).max(1)], len);
            b.bytes_mut()[..h.header_len() as usize].copy_from_slice(&h.encode());
            b
        }
        fn bytes(&self) -> &[u8] {
            // SAFETY: the vector's memory as bytes (u8: no alignment or validity needs).
            unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), self.1) }
        }
        fn bytes_mut(&mut self) -> &mut [u8] {
            // SAFETY: as above, exclusively borrowed.
            unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), self.1) }
        }
    }

    #[test]
    fn reads_elements_by_index_in_c_and_f_order() {
        for order in [Order::C, Order::F] {
            let h = ArrayHeader::new(DType::Int32, &[2, 3], order).unwrap();
            let mut b = Buf::new(&h);
            {
                let mut v = ArrayViewMut::<i32>::new(b.bytes_mut()).unwrap();
                for i in 0..2 {
                    for j in 0..3 {
                        *v.get_mut(&[i, j]).unwrap() = (10 * i + j) as i32;
                    }
                }
            }
            let v = ArrayView::<i32>::new(b.bytes()).unwrap();
            assert_eq!(v.to_vec(), vec![0, 1, 2, 10, 11, 12]);
            assert_eq!(v.get(&[1, 1]), Some(&11));
            assert_eq!(v.get(&[2, 0]), None);
            assert_eq!(v.get(&[0]), None);
            match order {
                Order::C => assert_eq!(v.as_slice().unwrap(), &[0, 1, 2, 10, 11, 12]),
                Order::F => {
                    assert!(v.as_slice().is_none());
                    assert_eq!(v.as_slice_memory_order().unwrap(), &[0, 10, 1, 11, 2, 12]);
                }
            }
        }
    }

    #[test]
    fn every_element_type() {
        fn one<T: Element + PartialEq + std::fmt::Debug>(value: T) {
            let h = ArrayHeader::new(T::DTYPE, &[3], Order::C).unwrap();
            let mut b = Buf::new(&h);
            let mut v = ArrayViewMut::<T>::new(b.bytes_mut()).unwrap();
            v.as_slice_mut().unwrap()[2] = value;
            assert_eq!(v.view().get(&[2]), Some(&value));
        }
        one(Bool(1));
        one(-3i8);
        one(-3i16);
        one(-3i32);
        one(-3i64);
        one(3u8);
        one(3u16);
        one(3u32);
        one(3u64);
        one(F16::from_f32(1.5));
        one(1.5f32);
        one(1.5f64);
        one(Complex {
            re: 1.0f32,
            im: -2.0,
        });
        one(Complex {
            re: 1.0f64,
            im: -2.0,
        });
    }

    #[test]
    fn zero_d_and_empty() {
        let h = ArrayHeader::new(DType::Float64, &[], Order::C).unwrap();
        let mut b = Buf::new(&h);
        *ArrayViewMut::<f64>::new(b.bytes_mut())
            .unwrap()
            .get_mut(&[])
            .unwrap() = 2.5;
        let v = ArrayView::<f64>::new(b.bytes()).unwrap();
        assert_eq!((v.ndim(), v.len()), (0, 1));
        assert_eq!(v.get(&[]), Some(&2.5));
        assert_eq!(v.as_slice(), Some(&[2.5][..]));
        assert_eq!(v.to_vec(), vec![2.5]);

        let h = ArrayHeader::new(DType::Float64, &[4, 0], Order::C).unwrap();
        let b = Buf::new(&h);
        let v = ArrayView::<f64>::new(b.bytes()).unwrap();
        assert!(v.is_empty());
        assert_eq!(v.as_slice(), Some(&[][..]));
        assert_eq!(v.iter().count(), 0);
        assert_eq!(v.get(&[0, 0]), None);
    }

    #[test]
    fn negative_zero_and_padded_strides() {
        // Four int16 stored 0..4, viewed reversed.
        let h = ArrayHeader::with_layout(DType::Int16, &[4], &[-2], 6, 8).unwrap();
        let mut b = Buf::new(&h);
        let start = h.data_offset() as usize;
        for (i, v) in [0i16, 1, 2, 3].iter().enumerate() {
            b.bytes_mut()[start + 2 * i..start + 2 * i + 2].copy_from_slice(&v.to_le_bytes());
        }
        let v = ArrayView::<i16>::new(b.bytes()).unwrap();
        assert_eq!(v.to_vec(), vec![3, 2, 1, 0]);
        assert!(v.as_slice().is_none() && v.as_slice_memory_order().is_none());

        // Broadcast: a row of 3 repeated 4 times.
        let h = ArrayHeader::with_layout(DType::UInt8, &[4, 3], &[0, 1], 0, 3).unwrap();
        let mut b = Buf::new(&h);
        let start = h.data_offset() as usize;
        b.bytes_mut()[start..start + 3].copy_from_slice(&[7, 8, 9]);
        let v = ArrayView::<u8>::new(b.bytes()).unwrap();
        assert_eq!(v.to_vec(), [7, 8, 9].repeat(4));
        let mut m = ArrayViewMut::<u8>::new(b.bytes_mut()).unwrap();
        *m.get_mut(&[3, 0]).unwrap() = 1;
        assert_eq!(m.get(&[0, 0]), Some(&1));
        assert!(m.as_slice_mut().is_none());

        // Padded rows: pitch 16 bytes for 3 float32.
        let h = ArrayHeader::with_layout(DType::Float32, &[2, 3], &[16, 4], 0, 28).unwrap();
        let b = Buf::new(&h);
        let v = ArrayView::<f32>::new(b.bytes()).unwrap();
        assert_eq!(v.to_vec().len(), 6);
        assert!(v.as_slice().is_none());
        assert_eq!(c_strides(v.shape(), 4).unwrap(), vec![12, 4]);
    }

    #[test]
    fn wrong_type_is_refused() {
        let h = ArrayHeader::new(DType::Float32, &[2], Order::C).unwrap();
        let b = Buf::new(&h);
        let e = ArrayView::<f64>::new(b.bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.to_string()
                .contains("holds float32 elements, not float64"),
            "{e}"
        );
        let e = ArrayView::<u32>::new(b.bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn misaligned_buffer_is_refused() {
        let h = ArrayHeader::new(DType::Float64, &[2], Order::C).unwrap();
        let mut raw = vec![[0u64; 8]; 4];
        // SAFETY: the vector's memory as bytes.
        let all: &mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(raw.as_mut_ptr().cast(), 256) };
        let shifted = &mut all[4..4 + h.total_len() as usize];
        shifted[..h.header_len() as usize].copy_from_slice(&h.encode());
        let e = ArrayView::<f64>::new(shifted).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("not aligned to 8 bytes"), "{e}");
        // u8 has no alignment needs... but the dtype must match: float64 stays refused.
        assert!(ArrayView::<u8>::new(shifted).is_err());
    }

    #[test]
    fn bad_headers_are_refused_by_views() {
        let h = ArrayHeader::new(DType::UInt8, &[16], Order::C).unwrap();
        let b = Buf::new(&h);
        let short = &b.bytes()[..b.bytes().len() - 1];
        assert_eq!(
            ArrayView::<u8>::new(short).unwrap_err().kind(),
            ErrorKind::Truncated
        );
        let mut b = Buf::new(&h);
        b.bytes_mut()[0] = 0;
        assert_eq!(
            ArrayViewMut::<u8>::new(b.bytes_mut()).unwrap_err().kind(),
            ErrorKind::BadMagic
        );
        let mut b = Buf::new(&h);
        b.bytes_mut()[72..80].copy_from_slice(&2i64.to_le_bytes()); // stride 2: 31 > 16 bytes
        assert_eq!(
            ArrayView::<u8>::new(b.bytes()).unwrap_err().kind(),
            ErrorKind::CorruptHeader
        );
    }
}
