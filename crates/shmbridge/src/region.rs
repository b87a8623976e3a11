//! Mapped regions: the memory of a segment, a file or an anonymous shared mapping.
//!
//! # Safety model (read once, applies to every type here)
//!
//! A [`Region`] is memory that other processes may read and write at any moment, and that the
//! owner of the backing object may shrink (`ftruncate`) under us. Rust's references promise
//! neither can happen, so the safe API never hands out long-lived `&[u8]` into a region:
//!
//! - [`Region::read_at`], [`Region::write_at`], [`Region::get`] and [`Region::set`] copy
//!   through raw pointers, check the offsets against the mapping, and check the real size of
//!   the backing object (`fstat`) first, so a segment truncated by another process gives
//!   [`ErrorKind::Truncated`] instead of a `SIGBUS`. (A truncation racing the copy itself is
//!   not caught; the window is the copy.)
//! - [`Region::as_ptr`] gives the address for zero-copy use (C, C++, Python's buffer
//!   protocol); [`Region::as_slice`] is `unsafe` and says what the caller must guarantee.
//!
//! Dropping a region unmaps it and never fails or panics.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::sys;

/// A value with a fixed little-endian encoding that [`Region::get`] and [`Region::set`] read
/// and write at an offset: `u8`, `i8`, `u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `f32`, `f64`.
pub trait Scalar: Copy + private::Sealed {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Decode from exactly `SIZE` little-endian bytes.
    fn from_le_slice(bytes: &[u8]) -> Self;
    /// Encode into exactly `SIZE` bytes, little-endian.
    fn to_le_slice(self, out: &mut [u8]);
}

mod private {
    pub trait Sealed {}
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le_slice(bytes: &[u8]) -> Self {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                <$t>::from_le_bytes(raw)
            }
            fn to_le_slice(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
scalar!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

enum Backing {
    Mmap(memmap2::MmapRaw),
    Anon,
    Empty,
}

/// The object behind a region, kept to re-check its real size before each access.
struct Source {
    fd: Arc<OwnedFd>,
    /// Offset in the object just past the end of the mapping.
    end: u64,
}

/// A mapping of shared memory, a file, or anonymous shared memory.
///
/// See the module documentation for the safety model. `Region` is `Send` and `Sync`: all its
/// accessors copy through raw pointers, and the memory is shared with other processes anyway.
pub struct Region {
    backing: Backing,
    ptr: *mut u8,
    len: usize,
    writable: bool,
    source: Option<Source>,
    label: Arc<str>,
    /// Whether `label` is a file path (a file mapping) rather than a segment name.
    label_is_path: bool,
}

// SAFETY: the region owns its mapping; the raw pointer is only dereferenced through methods
// that copy, and concurrent access from several threads is no different from access by
// several processes, which the type is made for.
unsafe impl Send for Region {}
// SAFETY: as above; no method hands out references with interior aliasing assumptions.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("label", &&*self.label)
            .field("len", &self.len)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl Region {
    /// Map `len` bytes of `fd` at `offset`.
    pub(crate) fn map_fd(
        fd: Arc<OwnedFd>,
        offset: u64,
        len: usize,
        access: crate::MapAccess,
        populate: bool,
        label: Arc<str>,
        label_is_path: bool,
    ) -> Result<Self> {
        if len == 0 {
            return Ok(Self::empty(label, label_is_path));
        }
        let mut opts = memmap2::MmapOptions::new();
        opts.offset(offset).len(len);
        if populate {
            opts.populate();
        }
        let fail = |e: std::io::Error| {
            Error::from_io(&e, "mmap failed").with_subject(&label, label_is_path)
        };
        let raw = match access {
            crate::MapAccess::ReadOnly => opts.map_raw_read_only(&*fd).map_err(fail)?,
            crate::MapAccess::ReadWrite => opts.map_raw(&*fd).map_err(fail)?,
            crate::MapAccess::CopyOnWrite => {
                // SAFETY: a private copy-on-write mapping; the library never creates references
                // into it (see the module's safety model), so concurrent changes to the file
                // cannot invalidate Rust references.
                let m = unsafe { opts.map_copy(&*fd) }.map_err(fail)?;
                memmap2::MmapRaw::from(m)
            }
        };
        let ptr = raw.as_mut_ptr();
        Ok(Self {
            backing: Backing::Mmap(raw),
            ptr,
            len,
            writable: !matches!(access, crate::MapAccess::ReadOnly),
            source: Some(Source {
                fd,
                end: offset + len as u64,
            }),
            label,
            label_is_path,
        })
    }

    fn empty(label: Arc<str>, label_is_path: bool) -> Self {
        Self {
            backing: Backing::Empty,
            ptr: std::ptr::NonNull::dangling().as_ptr(),
            len: 0,
            writable: false,
            source: None,
            label,
            label_is_path,
        }
    }

    /// An anonymous shared mapping of `len` bytes (`MAP_SHARED | MAP_ANONYMOUS`), zero-filled.
    ///
    /// Unlike `memmap2`'s `map_anon` (which is `MAP_PRIVATE`), a child made by `fork()` shares
    /// these pages with its parent: what one writes, the other reads — the seed's
    /// `mmap.mmap(-1, ...)` sharing example.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`] for `len == 0` or a length the address space cannot hold;
    /// [`ErrorKind::NoSpace`] (or an OS error) when the kernel refuses the mapping.
    pub fn anonymous(len: usize) -> Result<Self> {
        let label: Arc<str> = Arc::from("<anonymous>");
        if len == 0 {
            return Err(
                Error::new(ErrorKind::InvalidSize, "size must be greater than 0")
                    .with_segment(&*label),
            );
        }
        if isize::try_from(len).is_err() {
            return Err(Error::new(
                ErrorKind::InvalidSize,
                format!("size {len} is larger than the address space"),
            )
            .with_segment(&*label));
        }
        let ptr = sys::map_anon_shared(len)
            .map_err(|e| Error::from_io(&e, "mmap failed").with_segment(&*label))?;
        Ok(Self {
            backing: Backing::Anon,
            ptr,
            len,
            writable: true,
            source: None,
            label,
            label_is_path: false,
        })
    }

    /// The descriptor of the object behind the mapping (none for anonymous and empty ones).
    pub(crate) fn fd(&self) -> Option<&Arc<OwnedFd>> {
        self.source.as_ref().map(|s| &s.fd)
    }

    /// The segment name or file path this region maps (`<anonymous>` for anonymous ones).
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Length of the mapping in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (an empty file).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether writes are allowed.
    #[must_use]
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The first byte of the mapping. Valid for `len()` bytes while the region lives; reading
    /// it races with other processes, and it faults if the backing object was truncated.
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// The first byte of the mapping, for writing. Writing through it is only allowed when
    /// [`is_writable`](Self::is_writable) is true (a read-only mapping faults).
    #[must_use]
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The mapping as a byte slice.
    ///
    /// # Safety
    ///
    /// For as long as the slice lives, no process (this one included) may write the mapped
    /// bytes, and the backing object must not be truncated below the mapping.
    #[must_use]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr/len describe our live mapping; the caller guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The mapping as a mutable byte slice.
    ///
    /// # Safety
    ///
    /// The region must be writable; for as long as the slice lives no other process may access
    /// the mapped bytes, and the backing object must not be truncated below the mapping.
    #[must_use]
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr/len describe our live mapping; `&mut self` excludes other users here and
        // the caller guarantees the rest.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Fail with [`ErrorKind::Truncated`] if the object behind the mapping is now smaller than
    /// the mapping (another process truncated it); accessing it would raise `SIGBUS`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`], or an OS error from `fstat`.
    pub fn check_backing(&self) -> Result<()> {
        let Some(src) = &self.source else {
            return Ok(());
        };
        let st = sys::fstat(&src.fd).map_err(|e| {
            Error::from_io(&e, "fstat failed").with_subject(self.label(), self.label_is_path)
        })?;
        if st.size < src.end {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "truncated: the object is now {} bytes but {} bytes are mapped (another process shrank it)",
                    st.size, src.end
                ),
            )
            .with_subject(self.label(), self.label_is_path));
        }
        Ok(())
    }

    /// Check that `offset..offset+len` lies within the mapping; return `offset` as usize.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`], naming the offset, the length and the mapping's size.
    pub fn check_range(&self, offset: u64, len: usize) -> Result<usize> {
        let end = offset.checked_add(len as u64);
        match end {
            Some(end) if end <= self.len as u64 => Ok(offset as usize),
            _ => Err(Error::new(
                ErrorKind::OutOfBounds,
                format!(
                    "out of bounds: {len} bytes at offset {offset} do not fit in {} bytes",
                    self.len
                ),
            )
            .with_subject(self.label(), self.label_is_path)),
        }
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::PermissionDenied,
                "mapped read-only: writes are not allowed",
            )
            .with_subject(self.label(), self.label_is_path))
        }
    }

    /// Copy `buf.len()` bytes at `offset` out of the mapping.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] past the end; [`ErrorKind::Truncated`] if the backing object
    /// shrank below the mapping.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let off = self.check_range(offset, buf.len())?;
        self.check_backing()?;
        // SAFETY: off..off+len is inside the live mapping (checked above), the backing object
        // covers it, and `buf` is a distinct private buffer.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy `data` into the mapping at `offset`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a read-only mapping; [`ErrorKind::OutOfBounds`] past
    /// the end; [`ErrorKind::Truncated`] if the backing object shrank below the mapping.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        let off = self.check_range(offset, data.len())?;
        self.check_backing()?;
        // SAFETY: as in read_at, and the mapping is writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len()) };
        Ok(())
    }

    /// Fill `len` bytes at `offset` with `byte`.
    ///
    /// # Errors
    ///
    /// As [`write_at`](Self::write_at).
    pub fn fill(&self, offset: u64, len: usize, byte: u8) -> Result<()> {
        self.check_writable()?;
        let off = self.check_range(offset, len)?;
        self.check_backing()?;
        // SAFETY: as in write_at.
        unsafe { std::ptr::write_bytes(self.ptr.add(off), byte, len) };
        Ok(())
    }

    /// Read a little-endian scalar at `offset` (any alignment), e.g. the seed's
    /// `struct.unpack("i", buf[4:8])` is `region.get::<i32>(4)`.
    ///
    /// # Errors
    ///
    /// As [`read_at`](Self::read_at).
    pub fn get<T: Scalar>(&self, offset: u64) -> Result<T> {
        let mut raw = [0u8; 8];
        self.read_at(offset, &mut raw[..T::SIZE])?;
        Ok(T::from_le_slice(&raw[..T::SIZE]))
    }

    /// Write a little-endian scalar at `offset` (any alignment).
    ///
    /// # Errors
    ///
    /// As [`write_at`](Self::write_at).
    pub fn set<T: Scalar>(&self, offset: u64, value: T) -> Result<()> {
        let mut raw = [0u8; 8];
        value.to_le_slice(&mut raw[..T::SIZE]);
        self.write_at(offset, &raw[..T::SIZE])
    }

    /// Copy the whole mapping into a new vector.
    ///
    /// # Errors
    ///
    /// As [`read_at`](Self::read_at).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.len];
        self.read_at(0, &mut v)?;
        Ok(v)
    }

    /// Write changes of a file mapping back to the file (`msync`). A no-op for shared memory,
    /// anonymous and copy-on-write mappings.
    ///
    /// # Errors
    ///
    /// An OS error from `msync`.
    pub fn flush(&self) -> Result<()> {
        if let Backing::Mmap(m) = &self.backing {
            if self.writable {
                return m.flush().map_err(|e| {
                    Error::from_io(&e, "msync failed")
                        .with_subject(self.label(), self.label_is_path)
                });
            }
        }
        Ok(())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Backing::Anon = self.backing {
            // SAFETY: ptr/len are exactly the anonymous mapping we created, dropped only here.
            unsafe { sys::unmap(self.ptr, self.len) };
        }
        // Mmap backings unmap in their own Drop (memmap2 ignores munmap errors).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_round_trip_little_endian_at_any_offset() {
        let r = Region::anonymous(64).unwrap();
        r.set(0, 128u8).unwrap();
        r.set(4, -1i32).unwrap();
        r.set(8, 1u32).unwrap();
        r.set(12, 2.0f32).unwrap();
        r.set(17, -5i64).unwrap();
        r.set(25, u64::MAX - 1).unwrap();
        r.set(33, 1.5f64).unwrap();
        assert_eq!(r.get::<u8>(0).unwrap(), 128);
        assert_eq!(r.get::<i32>(4).unwrap(), -1);
        assert_eq!(r.get::<u32>(8).unwrap(), 1);
        assert!((r.get::<f32>(12).unwrap() - 2.0).abs() < f32::EPSILON);
        assert_eq!(r.get::<i64>(17).unwrap(), -5);
        assert_eq!(r.get::<u64>(25).unwrap(), u64::MAX - 1);
        assert!((r.get::<f64>(33).unwrap() - 1.5).abs() < f64::EPSILON);
        let mut raw = [0u8; 4];
        r.read_at(8, &mut raw).unwrap();
        assert_eq!(raw, [1, 0, 0, 0], "little-endian on every host");
    }

    #[test]
    fn out_of_bounds_is_an_error_naming_the_sizes() {
        let r = Region::anonymous(16).unwrap();
        let err = r.get::<u32>(13).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfBounds);
        assert!(err.to_string().contains("offset 13"), "{err}");
        assert!(r.write_at(u64::MAX, &[1]).is_err());
        assert!(r.read_at(17, &mut []).is_err());
        r.read_at(16, &mut []).unwrap();
    }

    #[test]
    fn anonymous_zero_size_is_rejected() {
        assert_eq!(
            Region::anonymous(0).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
        assert_eq!(
            Region::anonymous(usize::MAX).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
    }
}
