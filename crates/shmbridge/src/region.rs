//! Mapped regions: the memory of a segment, a file or an anonymous shared mapping.
//!
//! # Safety model (read once, applies to every type here)
//!
//! A [`Region`] is memory that other processes may read and write at any moment, and that the
//! owner of the backing object may shrink (`ftruncate`) under us. Rust's references promise
//! neither can happen, so the safe API never hands out long-lived `&[u8]` into a region:
//!
//! - [`Region::read_at`], [`Region::write_at`], [`Region::fill`], [`Region::get`] and
//!   [`Region::set`] check the offsets against the mapping and then move the bytes **through
//!   the backing object's descriptor** (`pread`/`pwrite`), not through the mapping. A copy
//!   through the descriptor cannot fault: a segment shrunk by another process, before or
//!   during the copy, gives [`ErrorKind::Truncated`]; a tmpfs hole (a segment sized with
//!   `ftruncate` only) reads as zeros without allocating; a write into a hole on a full
//!   `/dev/shm` gives [`ErrorKind::NoSpace`]. A `pwrite` past a shrunk end would re-grow the
//!   object, so a write checks the real size before and after and reports the shrink.
//! - The one exception is a region's **direct prefix**: bytes the owner of the region already
//!   touches through the mapping (a framed segment's first page, which holds the header words
//!   its seqlock and futexes use atomically). Copies that lie wholly inside it go through the
//!   mapping with no system call, which keeps small framed messages fast; they are no riskier
//!   than the header accesses themselves. Anonymous mappings (which nothing can shrink) and
//!   copy-on-write file mappings (whose private pages the descriptor does not see) copy
//!   through the mapping after a size check, as before.
//! - [`Region::as_ptr`] gives the address for zero-copy use (C, C++, Python's buffer
//!   protocol); [`Region::as_slice`] is `unsafe` and says what the caller must guarantee.
//!   A zero-copy access to a page past a shrunk end would raise `SIGBUS`; the `SIGBUS` guard
//!   (`sys/linux_guard.rs`) maps a zero page there instead and marks the region, so that the
//!   next [`Region::check_mapped`] (which every checked operation runs) reports it:
//!   `docs/ARCHITECTURE.md`, "The SIGBUS boundary", says what it covers and what it does not.
//! - Header words and the direct prefix are touched through the mapping under the same guard:
//!   the hot paths (a publish, a consistent read, a wait) check a shrink with one atomic load
//!   ([`Region::check_mapped`]), not a system call.
//!
//! Dropping a region unmaps it and never fails or panics.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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
    /// Whether the mapping is shared (`MAP_SHARED`), so that the descriptor sees the same
    /// bytes; false for copy-on-write mappings.
    shared: bool,
}

/// Bytes moved per `pread`/`pwrite` when a copy goes through a bounce buffer.
pub(crate) const BOUNCE_LEN: usize = 256 << 10;

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
    /// Bytes from the start that copies may move through the mapping directly (see the
    /// module documentation); 0 unless the owner says the pages are in use anyway.
    direct: usize,
    /// The mapping's entry in the `SIGBUS` guard (`sys::Guarded`): set when the guard
    /// protects it, so that [`check_mapped`](Self::check_mapped) is one atomic load.
    guard: Option<sys::Guarded>,
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
        let writable = !matches!(access, crate::MapAccess::ReadOnly);
        Ok(Self {
            backing: Backing::Mmap(raw),
            ptr,
            len,
            writable,
            source: Some(Source {
                fd,
                end: offset + len as u64,
                shared: !matches!(access, crate::MapAccess::CopyOnWrite),
            }),
            label,
            label_is_path,
            direct: 0,
            guard: sys::Guarded::register(ptr, len, writable),
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
            direct: 0,
            guard: None,
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
            direct: 0,
            guard: None,
        })
    }

    /// A second mapping of the same object (through the same descriptor, so the same object
    /// even if its name was removed or reused since): the same offset and length, read-only
    /// or, when this region is writable and `writable` is true, read-write. For the fronts,
    /// whose zero-copy views must outlive the handle they came from (the views keep their
    /// own mapping; closing the handle drops its locks and its mapping).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] for an anonymous or copy-on-write region;
    /// [`ErrorKind::PermissionDenied`] for a read-write mapping of a read-only region; an OS
    /// error when the kernel refuses the mapping.
    pub fn remap(&self, writable: bool) -> Result<Self> {
        if self.len == 0 {
            return Ok(Self::empty(Arc::clone(&self.label), self.label_is_path));
        }
        let Some(src) = self.source.as_ref().filter(|s| s.shared) else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "only a shared mapping of a named object can be mapped again",
            )
            .with_subject(self.label(), self.label_is_path));
        };
        if writable {
            self.check_writable()?;
        }
        let access = if writable {
            crate::MapAccess::ReadWrite
        } else {
            crate::MapAccess::ReadOnly
        };
        Self::map_fd(
            Arc::clone(&src.fd),
            src.end - self.len as u64,
            self.len,
            access,
            false,
            Arc::clone(&self.label),
            self.label_is_path,
        )
    }

    /// The descriptor of the object behind the mapping (none for anonymous and empty ones).
    pub(crate) fn fd(&self) -> Option<&Arc<OwnedFd>> {
        self.source.as_ref().map(|s| &s.fd)
    }

    /// `err` naming what this region maps: the segment name, or the file path for a file
    /// mapping (so that a file is never called a segment in a message).
    pub(crate) fn about(&self, err: Error) -> Error {
        err.with_subject(self.label(), self.label_is_path)
    }

    /// Whether [`label`](Self::label) is a file path rather than a segment name.
    pub(crate) fn label_is_path(&self) -> bool {
        self.label_is_path
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
    /// the mapping (another process truncated it; accessing it would raise `SIGBUS` without the
    /// guard), or when the `SIGBUS` guard already replaced one of its pages.
    ///
    /// One `lseek(SEEK_END)` (the cheapest size query, about 170 ns here against 430 ns for an
    /// `fstat`). The hot paths use [`check_mapped`](Self::check_mapped) instead, which costs
    /// no system call under the `SIGBUS` guard.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`], or an OS error from `lseek`.
    pub fn check_backing(&self) -> Result<()> {
        if self.guard.as_ref().is_some_and(sys::Guarded::tripped) {
            return Err(self.tripped_error());
        }
        self.size_check()
    }

    /// The real size against the mapping's end (the body of [`check_backing`]).
    fn size_check(&self) -> Result<()> {
        let Some(src) = &self.source else {
            return Ok(());
        };
        let size = sys::file_end(src.fd.as_fd()).map_err(|e| {
            Error::from_io(&e, "lseek (the size check) failed")
                .with_subject(self.label(), self.label_is_path)
        })?;
        if size < src.end {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "truncated: the object is now {} bytes but {} bytes are mapped (another process shrank it)",
                    size, src.end
                ),
            )
            .with_subject(self.label(), self.label_is_path));
        }
        Ok(())
    }

    /// The hot paths' check (a publish, a consistent read, a wait): whether this mapping still
    /// shows its whole object. Under the `SIGBUS` guard (`sys/linux_guard.rs`) one atomic load,
    /// no system call: a shrink is seen once an access touched a page past the new end (the
    /// guard put a zero page there), so callers check **after** touching the mapping as well
    /// as before. Without the guard, [`check_backing`](Self::check_backing) (an `lseek`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`] when the object shrank; [`ErrorKind::NoSpace`] when a page could
    /// not be backed although the object is as large as the mapping (a hole on a full
    /// `/dev/shm`, or a shrink that was grown back).
    #[inline]
    pub fn check_mapped(&self) -> Result<()> {
        match &self.guard {
            Some(g) if !g.tripped() => Ok(()),
            Some(_) => Err(self.tripped_error()),
            None => self.check_backing(),
        }
    }

    /// Whether the `SIGBUS` guard protects this mapping: a zero-copy access past a shrunk end
    /// then reads zeros (or writes to a private page) instead of killing the process, and the
    /// next checked operation reports it.
    #[must_use]
    pub fn is_guarded(&self) -> bool {
        self.guard.is_some()
    }

    #[cold]
    fn tripped_error(&self) -> Error {
        self.shrunk_or_no_space(|| {
            format!(
                "a page of the mapping could not be backed (is {} full? or the object was shrunk and grown again): this mapping no longer shows it, open it again",
                sys::SHM_DIR
            )
        })
    }

    /// The error for a page the kernel could not give: [`ErrorKind::Truncated`] when the
    /// object is now shorter than the mapping, else [`ErrorKind::NoSpace`] saying `why`.
    fn shrunk_or_no_space(&self, why: impl FnOnce() -> String) -> Error {
        match self.size_check() {
            Err(e) => e,
            Ok(()) => {
                Error::new(ErrorKind::NoSpace, why()).with_subject(self.label(), self.label_is_path)
            }
        }
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

    /// Let copies that lie wholly within the first `len` bytes go through the mapping (no
    /// system call). Only for bytes the owner touches through the mapping anyway — a framed
    /// segment's header page once its magic was read through the descriptor — so that such a
    /// copy adds no risk the owner does not already take. Clamped to the mapping's length.
    pub(crate) fn set_direct_prefix(&mut self, len: usize) {
        self.direct = len.min(self.len);
    }

    /// The descriptor and the object offset of mapping offset 0, when copies go through the
    /// descriptor (a shared mapping of an object); `None` for anonymous and copy-on-write ones.
    fn through_fd(&self) -> Option<(BorrowedFd<'_>, u64)> {
        let src = self.source.as_ref().filter(|s| s.shared)?;
        Some((src.fd.as_fd(), src.end - self.len as u64))
    }

    fn is_direct(&self, off: usize, len: usize) -> bool {
        off + len <= self.direct
    }

    /// The error for a copy through the descriptor that the object's end cut short.
    fn truncated_at(&self, at: u64) -> Error {
        let now = self
            .source
            .as_ref()
            .and_then(|s| sys::fstat(&s.fd).ok())
            .map_or_else(String::new, |st| format!(" (it is now {} bytes)", st.size));
        Error::new(
            ErrorKind::Truncated,
            format!(
                "truncated: the object ends before byte {at} of the {} bytes mapped{now}: another process shrank it",
                self.source.as_ref().map_or(0, |s| s.end)
            ),
        )
        .with_subject(self.label(), self.label_is_path)
    }

    fn io_error(&self, e: &std::io::Error, what: &str) -> Error {
        let detail = if sys::is_fault(e) {
            format!("{what} failed: the other buffer is not accessible (a mapping that shrank?)")
        } else if sys::is_no_space(e) {
            format!(
                "{what} failed: no space left to back the pages (is {} full?)",
                sys::SHM_DIR
            )
        } else {
            format!("{what} failed")
        };
        Error::from_io(e, detail).with_subject(self.label(), self.label_is_path)
    }

    /// Copy `buf.len()` bytes at `offset` out of the region (through the descriptor, see the
    /// module documentation).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] past the end of the mapping; [`ErrorKind::Truncated`] when
    /// bytes asked for lie past the backing object's real end (another process shrank it,
    /// before or during the copy). Bytes that are still there read as they are.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let off = self.check_range(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        if !self.is_direct(off, buf.len()) {
            if let Some((fd, base)) = self.through_fd() {
                let at = base + off as u64;
                let n = sys::pread_full(fd, buf, at).map_err(|e| self.io_error(&e, "pread"))?;
                if n < buf.len() {
                    return Err(self.truncated_at(at + n as u64));
                }
                return Ok(());
            }
            self.check_backing()?;
        }
        // SAFETY: off..off+len is inside the live mapping (checked above); the pages are in the
        // direct prefix (touched by the owner anyway), anonymous (nothing can shrink them) or a
        // copy-on-write mapping whose object covers them (check_backing); `buf` is a distinct
        // private buffer.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Write `data` at mapping offset `off` (not in the direct prefix) with a copy the kernel
    /// makes, so that a page that cannot be backed is an error, not a signal: into the mapping
    /// with `process_vm_writev` (a shrunk object or a hole on a full `/dev/shm` fails the
    /// copy), or where that is refused with `pwrite` (checking the real size before and after,
    /// since a `pwrite` past a shrunk end would re-grow the object).
    fn write_checked(&self, fd: BorrowedFd<'_>, base: u64, off: usize, data: &[u8]) -> Result<()> {
        // SAFETY: off..off+len lies inside our live, writable mapping (checked by the callers);
        // no reference into it exists, and the kernel checks every page it touches.
        match unsafe { sys::copy_into_own_memory(self.ptr.add(off), data) } {
            // A page the SIGBUS guard replaced takes the bytes without showing them to anyone.
            Ok(Some(n)) if n == data.len() => return self.check_mapped(),
            Ok(Some(n)) => return Err(self.unbacked(off + n)),
            Err(e) if sys::is_fault(&e) => return Err(self.unbacked(off)),
            Err(e) => return Err(self.io_error(&e, "process_vm_writev")),
            Ok(None) => {}
        }
        self.check_backing()?;
        sys::pwrite_all(fd, data, base + off as u64).map_err(|e| self.io_error(&e, "pwrite"))?;
        // A shrink that raced the write left the object shorter (or re-grown only up to the
        // end of this write, with a hole before it): either way the mapping is not covered.
        self.check_backing()
    }

    /// The error for a write the kernel could not complete at mapping offset `at`: the object
    /// was shrunk, or (when it was not) its page could not be allocated.
    fn unbacked(&self, at: usize) -> Error {
        if self.guard.as_ref().is_some_and(sys::Guarded::tripped) {
            return self.tripped_error();
        }
        self.shrunk_or_no_space(|| {
            format!(
                "cannot write at byte {at}: no memory to back the page (is {} full? reserve segments with fallocate)",
                sys::SHM_DIR
            )
        })
    }

    /// Copy `data` into the region at `offset` (through the descriptor, see the module
    /// documentation).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a read-only mapping; [`ErrorKind::OutOfBounds`] past
    /// the end; [`ErrorKind::Truncated`] if the backing object shrank below the mapping;
    /// [`ErrorKind::NoSpace`] when a hole cannot be backed (a full `/dev/shm`).
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        let off = self.check_range(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        if !self.is_direct(off, data.len()) {
            if let Some((fd, base)) = self.through_fd() {
                return self.write_checked(fd, base, off, data);
            }
            self.check_backing()?;
        }
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
        if len == 0 {
            return Ok(());
        }
        if !self.is_direct(off, len) {
            if let Some((fd, base)) = self.through_fd() {
                let chunk = vec![byte; len.min(BOUNCE_LEN)];
                let mut done = 0;
                while done < len {
                    let n = (len - done).min(chunk.len());
                    self.write_checked(fd, base, off + done, &chunk[..n])?;
                    done += n;
                }
                return Ok(());
            }
            self.check_backing()?;
        }
        // SAFETY: as in write_at.
        unsafe { std::ptr::write_bytes(self.ptr.add(off), byte, len) };
        Ok(())
    }

    /// Under the `SIGBUS` guard only: fill `offset..offset+len` of the mapping straight from a
    /// kernel copy — `read` fills as much as it can of the pointer and length it is given
    /// (e.g. `read(2)` into the mapping) and returns how much it filled, 0 at the end — and
    /// hand each filled piece to `seen` in place (to hash it while it is in cache); `what` names
    /// `read` in its errors. No bounce
    /// buffer: one copy instead of two. A page the kernel cannot back makes the kernel copy
    /// fail with `EFAULT` (never a signal) and is reported by the real size; a page the guard
    /// replaced is reported by the mark. `Ok(None)` when the region is not guarded (use
    /// [`copy_in`](Self::copy_in)). Returns the bytes filled, fewer than `len` when `read` ran
    /// out or gave a short piece.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`], [`ErrorKind::OutOfBounds`], [`ErrorKind::Truncated`],
    /// [`ErrorKind::NoSpace`]; whatever `read` or `seen` return.
    pub(crate) fn fill_in_place(
        &self,
        offset: u64,
        len: usize,
        piece: usize,
        what: &str,
        mut read: impl FnMut(*mut u8, usize) -> std::io::Result<usize>,
        mut seen: impl FnMut(&[u8]),
    ) -> Result<Option<usize>> {
        if self.guard.is_none() || self.through_fd().is_none() {
            return Ok(None);
        }
        self.check_writable()?;
        let off = self.check_range(offset, len)?;
        self.check_mapped()?;
        let mut done = 0usize;
        while done < len {
            let want = (len - done).min(piece.max(1));
            // SAFETY: off + done + want <= len of the live, writable mapping (checked above);
            // the kernel copy checks every page it touches and fails with EFAULT instead of
            // raising a signal.
            let at = unsafe { self.ptr.add(off + done) };
            let n = match read(at, want) {
                Ok(n) => n.min(want),
                Err(e) if sys::is_fault(&e) => return Err(self.unbacked(off + done)),
                Err(e) => return Err(self.io_error(&e, what)),
            };
            if n == 0 {
                break;
            }
            // SAFETY: the `n` bytes just filled, inside the mapping; the protocol gives them
            // to this process alone until it publishes them, and a fault here (a page a shrink
            // removed meanwhile) is taken by the guard and reported just below.
            seen(unsafe { std::slice::from_raw_parts(at, n) });
            self.check_mapped()?;
            done += n;
            if n < want {
                break;
            }
        }
        Ok(Some(done))
    }

    /// Under the `SIGBUS` guard only: hand `offset..offset+len` of the mapping, piece by piece
    /// in place, to `seen` (to hash it) and then to `write` (a kernel copy out of the
    /// mapping, e.g. `write(2)`: a missing page is `EFAULT`, never a signal). No bounce buffer:
    /// one copy instead of two. `Ok(false)` when the region is not guarded (use
    /// [`copy_out`](Self::copy_out)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`], [`ErrorKind::Truncated`]; whatever `write` returns.
    pub(crate) fn drain_in_place(
        &self,
        offset: u64,
        len: usize,
        piece: usize,
        mut seen: impl FnMut(&[u8]),
        mut write: impl FnMut(*const u8, usize) -> Result<()>,
    ) -> Result<bool> {
        if self.guard.is_none() || self.through_fd().is_none() {
            return Ok(false);
        }
        let off = self.check_range(offset, len)?;
        self.check_mapped()?;
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(piece.max(1));
            // SAFETY: inside the live mapping (checked above). The protocol keeps writers off
            // these bytes until this process consumes them (a hostile one can only change the
            // values, which the checksum then reports); a fault is taken by the guard and
            // reported just below, before the bytes go anywhere.
            let bytes = unsafe { std::slice::from_raw_parts(self.ptr.add(off + done), n) };
            seen(bytes);
            self.check_mapped()?;
            write(bytes.as_ptr(), n).map_err(|e| match self.check_backing() {
                Err(t) => t,
                Ok(()) => e,
            })?;
            self.check_mapped()?;
            done += n;
        }
        Ok(true)
    }

    /// Move `len` bytes at `offset` out of the region through `buf` (a bounce buffer the
    /// caller keeps, so that it stays in cache), handing each filled piece to `sink` (hash
    /// it, write it out). As safe as [`read_at`](Self::read_at).
    ///
    /// # Errors
    ///
    /// As [`read_at`](Self::read_at); whatever `sink` returns (which stops the copy).
    pub(crate) fn copy_out(
        &self,
        offset: u64,
        len: usize,
        buf: &mut [u8],
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        debug_assert!(!buf.is_empty());
        self.check_range(offset, len)?;
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(buf.len());
            self.read_at(offset + done as u64, &mut buf[..n])?;
            sink(&buf[..n])?;
            done += n;
        }
        Ok(())
    }

    /// Fill up to `len` bytes at `offset` from `source` through `buf`: `source` fills a slice
    /// and returns how much it filled (0: no more), and each piece is then written into the
    /// region as [`write_at`](Self::write_at) does and handed to `seen` (to hash it). Returns
    /// the bytes moved, fewer than `len` when `source` ran out.
    ///
    /// # Errors
    ///
    /// As [`write_at`](Self::write_at); whatever `source` or `seen` return.
    pub(crate) fn copy_in(
        &self,
        offset: u64,
        len: usize,
        buf: &mut [u8],
        mut source: impl FnMut(&mut [u8]) -> Result<usize>,
        mut seen: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<usize> {
        debug_assert!(!buf.is_empty());
        self.check_writable()?;
        self.check_range(offset, len)?;
        let mut done = 0usize;
        while done < len {
            let want = (len - done).min(buf.len());
            let n = source(&mut buf[..want])?.min(want);
            if n == 0 {
                break;
            }
            self.write_at(offset + done as u64, &buf[..n])?;
            seen(&buf[..n])?;
            done += n;
        }
        Ok(done)
    }

    /// As [`copy_in`](Self::copy_in), for bytes no one has mapped yet (a fresh one-shot
    /// segment): each piece goes into the object with `pwrite(2)` — a kernel copy straight into
    /// its pages, which touches none of this mapping's pages, so this process neither pays a
    /// page fault per 4 KiB nor counts the pages in its RSS. A shrink is caught as in the
    /// `pwrite` path of [`write_at`](Self::write_at) (the real size before and after each
    /// piece); a shrink that a later piece re-grew over leaves a hole, which
    /// [`check_written`](Self::check_written) finds once everything is written. Falls back to
    /// [`copy_in`](Self::copy_in) for regions not backed by a shared object.
    ///
    /// # Errors
    ///
    /// As [`copy_in`](Self::copy_in).
    pub(crate) fn copy_in_fresh(
        &self,
        offset: u64,
        len: usize,
        buf: &mut [u8],
        mut source: impl FnMut(&mut [u8]) -> Result<usize>,
        mut seen: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<usize> {
        let Some((fd, base)) = self.through_fd() else {
            return self.copy_in(offset, len, buf, source, seen);
        };
        debug_assert!(!buf.is_empty());
        self.check_writable()?;
        let off = self.check_range(offset, len)?;
        let mut done = 0usize;
        while done < len {
            let want = (len - done).min(buf.len());
            let n = source(&mut buf[..want])?.min(want);
            if n == 0 {
                break;
            }
            let at = off + done;
            if at < self.direct {
                // Overlaps the direct prefix (the header's page, touched anyway): as write_at.
                self.write_at(at as u64, &buf[..n])?;
            } else {
                self.check_backing()?;
                sys::pwrite_all(fd, &buf[..n], base + at as u64)
                    .map_err(|e| self.io_error(&e, "pwrite"))?;
                self.check_backing()?;
            }
            seen(&buf[..n])?;
            done += n;
        }
        Ok(done)
    }

    /// Check that `offset..offset+len`, written with [`copy_in_fresh`](Self::copy_in_fresh),
    /// has no hole (`lseek(SEEK_HOLE)`): a shrink during the copy that a later `pwrite`
    /// re-grew over leaves one, where the bytes are lost. Nothing to check for regions not
    /// backed by a shared object.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`] naming the hole; an OS error from `lseek`.
    pub(crate) fn check_written(&self, offset: u64, len: usize) -> Result<()> {
        let Some((fd, base)) = self.through_fd() else {
            return Ok(());
        };
        let off = self.check_range(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        let start = base + off as u64;
        let hole = sys::first_hole(fd, start).map_err(|e| self.io_error(&e, "lseek(SEEK_HOLE)"))?;
        if hole < start + len as u64 {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "truncated: the bytes written from byte {hole} on are gone (a hole: another process shrank the object during the copy)"
                ),
            )
            .with_subject(self.label(), self.label_is_path));
        }
        self.check_backing()
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
        // Leave the SIGBUS guard before the mapping goes (the fields drop after this).
        drop(self.guard.take());
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

    /// A shrink during a fresh copy that a later `pwrite` re-grew over (a race a test cannot
    /// stage through the copy's callbacks): the pages written before it are a hole now, and
    /// `check_written` finds it.
    #[test]
    fn a_shrink_regrown_over_leaves_a_hole_that_check_written_finds() {
        let name = crate::name::unique("shmb_t_hole_");
        let seg = crate::Segment::create(&name, 64 << 10).unwrap();
        let r = seg.region();
        let data = vec![7u8; 60 << 10];
        let mut left = &data[..];
        let n = r
            .copy_in_fresh(
                4096,
                data.len(),
                &mut vec![0u8; 16 << 10],
                |buf| {
                    let k = buf.len().min(left.len());
                    buf[..k].copy_from_slice(&left[..k]);
                    left = &left[k..];
                    Ok(k)
                },
                |_| Ok(()),
            )
            .unwrap();
        assert_eq!(n, data.len());
        r.check_written(4096, data.len()).unwrap();
        // Another process shrinks the segment, and a write re-grows it to its full size.
        let other = crate::ShmObject::open(
            &name,
            crate::OpenMode::OpenOnly,
            crate::Access::ReadWrite,
            None,
        )
        .unwrap();
        other.truncate(8192).unwrap();
        other.truncate(64 << 10).unwrap();
        r.check_backing().unwrap();
        let err = r.check_written(4096, data.len()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
        assert!(err.to_string().contains("hole"), "{err}");
        drop(other);
        drop(seg);
        crate::ShmObject::remove(&name).unwrap();
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

    #[test]
    fn the_pwrite_fallback_reports_a_shrink_and_never_regrows() {
        struct Rm(String);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = crate::ShmObject::remove(&self.0);
            }
        }
        let name = crate::name::unique("shmb_t_pwrite_");
        let _rm = Rm(name.clone());
        sys::refuse_process_vm_writev();
        let seg = crate::Segment::create(&name, 1 << 20).unwrap();
        seg.write_at(500_000, b"through pwrite").unwrap();
        let mut got = [0u8; 14];
        seg.read_at(500_000, &mut got).unwrap();
        assert_eq!(&got, b"through pwrite");
        seg.object().truncate(8192).unwrap();
        let err = seg.write_at(900_000, b"past the end").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
        assert_eq!(seg.object().size().unwrap(), 8192, "not re-grown");
        assert_eq!(
            seg.fill(0, 1 << 20, 0).unwrap_err().kind(),
            ErrorKind::Truncated
        );
    }
}
