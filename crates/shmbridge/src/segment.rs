//! Named shared-memory segments.
//!
//! Two levels, as in Boost.Interprocess:
//!
//! - [`ShmObject`] is the named object alone (Boost's `shared_memory_object`): open it with an
//!   [`OpenMode`], size it with [`ShmObject::truncate`], map it as many times as you like with
//!   [`ShmObject::map`]. A created object starts at size 0, as Boost's does.
//! - [`Segment`] is an object together with one mapping of all of it: what most code wants, and
//!   what CPython's `SharedMemory` is. Creating a segment sizes it in the same step and refuses
//!   size 0.
//!
//! Dropping either unmaps and closes; only [`ShmObject::remove`] (or [`Segment::unlink`])
//! removes a name.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::mode::{Access, MapAccess, OpenMode, DEFAULT_PERMISSIONS};
use crate::region::Region;
use crate::{name, sys};

/// The largest segment size accepted: what `off_t` and the address space can both hold.
pub const MAX_SIZE: u64 = i64::MAX as u64;

/// A named POSIX shared-memory object (`shm_open`), without a mapping.
#[derive(Debug)]
pub struct ShmObject {
    fd: Arc<OwnedFd>,
    name: Arc<str>,
    access: Access,
    created: bool,
}

impl ShmObject {
    /// Open or create the object `name`.
    ///
    /// A created object has size 0 and permissions `perm` (default 0600), applied with
    /// `fchmod` so the umask cannot change them. With [`OpenMode::OpenOrCreate`] the object is
    /// opened if it exists and created otherwise, race-free; [`created`](Self::created) says
    /// which happened. `perm` is ignored when an existing object is opened.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidName`]; [`ErrorKind::InvalidArgument`] for permission bits outside
    /// 0o777; [`ErrorKind::AlreadyExists`] for `CreateOnly` on a taken name;
    /// [`ErrorKind::NotFound`] for `OpenOnly` on a missing one;
    /// [`ErrorKind::PermissionDenied`] when the OS refuses the access asked for.
    pub fn open(name: &str, mode: OpenMode, access: Access, perm: Option<u32>) -> Result<Self> {
        let bare = name::validate(name)?;
        let perm = check_permissions(bare, perm)?;
        let writable = access.is_writable();
        let what = format!("{} ({})", mode.as_str(), access.as_str());
        let create = || sys::shm_create_excl(bare, writable, perm);
        let (fd, created) = match mode {
            OpenMode::CreateOnly => (create(), true),
            OpenMode::OpenOnly => (sys::shm_open_existing(bare, writable), false),
            OpenMode::OpenOrCreate => {
                let mut attempt = 0;
                loop {
                    match create() {
                        Ok(fd) => break (Ok(fd), true),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => break (Err(e), true),
                    }
                    match sys::shm_open_existing(bare, writable) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 100 => {
                            attempt += 1;
                        }
                        other => break (other, false),
                    }
                }
            }
        };
        let fd = fd.map_err(|e| {
            let detail = match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    format!("{what}: a segment with this name already exists")
                }
                std::io::ErrorKind::NotFound => format!("{what}: no segment with this name exists"),
                std::io::ErrorKind::PermissionDenied => format!("{what}: permission denied"),
                _ if sys::is_symlink_error(&e) => format!(
                    "{what}: {}/{bare} is a symbolic link, not a segment (refused)",
                    sys::SHM_DIR
                ),
                _ => format!("{what}: shm_open failed"),
            };
            Error::from_io(&e, detail).with_segment(bare)
        })?;
        if created {
            if let Err(e) = sys::fchmod(&fd, perm) {
                let _ = sys::shm_unlink(bare);
                return Err(Error::from_io(&e, "fchmod failed").with_segment(bare));
            }
        } else {
            let st = sys::fstat(&fd)
                .map_err(|e| Error::from_io(&e, "fstat failed").with_segment(bare))?;
            if !st.is_regular {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{what}: {}/{bare} is a {}, not a shared-memory segment (refused)",
                        sys::SHM_DIR,
                        st.file_type
                    ),
                )
                .with_segment(bare));
            }
        }
        Ok(Self {
            fd: Arc::new(fd),
            name: Arc::from(bare),
            access,
            created,
        })
    }

    /// Shorthand for [`open`](Self::open) with [`OpenMode::CreateOnly`] and read-write access.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn create(name: &str, perm: Option<u32>) -> Result<Self> {
        Self::open(name, OpenMode::CreateOnly, Access::ReadWrite, perm)
    }

    /// The name, without a leading `/`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The access this handle was opened with.
    #[must_use]
    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether this handle created the object (always true for `CreateOnly`).
    #[must_use]
    pub fn created(&self) -> bool {
        self.created
    }

    fn stat(&self) -> Result<sys::Stat> {
        sys::fstat(&self.fd)
            .map_err(|e| Error::from_io(&e, "fstat failed").with_segment(self.name()))
    }

    /// The object's real size in bytes (`fstat`), whatever anyone claims it is.
    ///
    /// # Errors
    ///
    /// An OS error from `fstat`.
    pub fn size(&self) -> Result<u64> {
        Ok(self.stat()?.size)
    }

    /// The permission bits (e.g. `0o600`).
    ///
    /// # Errors
    ///
    /// An OS error from `fstat`.
    pub fn permissions(&self) -> Result<u32> {
        Ok(self.stat()?.perm)
    }

    /// The owner's user id.
    ///
    /// # Errors
    ///
    /// An OS error from `fstat`.
    pub fn owner_uid(&self) -> Result<u32> {
        Ok(self.stat()?.uid)
    }

    /// Set the size to `len` bytes (`ftruncate`) and reserve the backing pages
    /// (`posix_fallocate`), so that a full `/dev/shm` is an error here and not a `SIGBUS` later.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a read-only handle; [`ErrorKind::InvalidSize`] above
    /// [`MAX_SIZE`]; [`ErrorKind::NoSpace`] when the pages cannot be reserved (the size is
    /// then set back to what it was).
    pub fn truncate(&self, len: u64) -> Result<()> {
        if !self.access.is_writable() {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "truncate: the object is opened read-only",
            )
            .with_segment(self.name()));
        }
        resize(&self.fd, self.name(), len)
    }

    /// Change the permission bits (`fchmod`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for bits outside 0o777; an OS error from `fchmod`.
    pub fn set_permissions(&self, perm: u32) -> Result<()> {
        let perm = check_permissions(self.name(), Some(perm))?;
        sys::fchmod(&self.fd, perm)
            .map_err(|e| Error::from_io(&e, "fchmod failed").with_segment(self.name()))
    }

    /// Map the whole object at its real size.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] for a read-write mapping of a read-only handle;
    /// [`ErrorKind::InvalidSize`] when the object is empty (size it with
    /// [`truncate`](Self::truncate) first); an OS error from `mmap`.
    pub fn map(&self, access: Access) -> Result<Region> {
        let size = self.size()?;
        if size == 0 {
            return Err(Error::new(
                ErrorKind::InvalidSize,
                "cannot map an empty segment (size 0): give it a size first",
            )
            .with_segment(self.name()));
        }
        self.map_range(0, size, access)
    }

    /// Map `len` bytes at `offset` (any offset: the library aligns it to a page).
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map), plus [`ErrorKind::OutOfBounds`] when the range passes the real size.
    pub fn map_range(&self, offset: u64, len: u64, access: Access) -> Result<Region> {
        self.map_with(offset, len, access, false)
    }

    pub(crate) fn map_with(
        &self,
        offset: u64,
        len: u64,
        access: Access,
        populate: bool,
    ) -> Result<Region> {
        if access.is_writable() && !self.access.is_writable() {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "cannot map read-write: the segment was opened read-only",
            )
            .with_segment(self.name()));
        }
        let size = self.size()?;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                format!("cannot map {len} bytes at offset {offset}: the segment is {size} bytes"),
            )
            .with_segment(self.name()));
        }
        let len = usize::try_from(len).map_err(|_| {
            Error::new(ErrorKind::InvalidSize, "larger than the address space")
                .with_segment(self.name())
        })?;
        let map_access = if access.is_writable() {
            MapAccess::ReadWrite
        } else {
            MapAccess::ReadOnly
        };
        Region::map_fd(
            Arc::clone(&self.fd),
            offset,
            len,
            map_access,
            populate,
            Arc::clone(&self.name),
            false,
        )
    }

    /// Remove the name `name`: processes that have it open or mapped keep their memory, and
    /// the memory is freed when the last of them closes it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidName`]; [`ErrorKind::NotFound`] when there is no such segment;
    /// [`ErrorKind::PermissionDenied`] when the OS refuses.
    pub fn remove(name: &str) -> Result<()> {
        let bare = name::validate(name)?;
        sys::shm_unlink(bare).map_err(|e| remove_error(&e).with_segment(bare))
    }

    /// Remove this object's name, but only while the name still refers to this very object
    /// (not to a newer segment that took the name since). Returns whether it removed it.
    /// Errors are ignored: the name may be gone already, or removal may not be permitted.
    #[must_use]
    pub fn remove_if_same(&self) -> bool {
        sys::names_same_object(&self.name, &self.fd) && sys::shm_unlink(&self.name).is_ok()
    }

    /// Whether a segment called `name` exists now.
    #[must_use]
    pub fn exists(name: &str) -> bool {
        name::validate(name).is_ok_and(sys::shm_exists)
    }
}

/// Whose segments a receiver accepts.
///
/// `/dev/shm` is world-writable: any user can create a segment under the name a receiver
/// waits for, and hand it their own bytes. So receiving (`recv_file`, `recv_to_fd`, stream
/// readers) refuses a segment owned by another user unless the caller allows that owner
/// explicitly. Root is not exempt: a root receiver accepts only root's segments by default.
/// The owner is read with `fstat` on the opened descriptor, so it cannot change between the
/// check and the copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OwnerPolicy {
    /// Only segments owned by this process's effective user (the default).
    #[default]
    SameUser,
    /// This process's effective user, or one of these user ids.
    Allow(Vec<u32>),
    /// Any owner (the segment's bytes are then only as trustworthy as every local user).
    Any,
}

impl OwnerPolicy {
    /// Parse what a command line gives: `any`, `self`, or user ids separated by commas
    /// (`1000,1001`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "any" => Ok(Self::Any),
            "self" | "" => Ok(Self::SameUser),
            list => list
                .split(',')
                .map(|u| {
                    u.trim().parse::<u32>().map_err(|_| {
                        Error::new(
                            ErrorKind::InvalidArgument,
                            format!("invalid owner {u:?}: give a numeric user id, 'self' or 'any'"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Self::Allow),
        }
    }

    /// Whether a segment owned by `uid` is accepted.
    #[must_use]
    pub fn allows(&self, uid: u32) -> bool {
        match self {
            Self::Any => true,
            Self::SameUser => uid == sys::euid(),
            Self::Allow(list) => uid == sys::euid() || list.contains(&uid),
        }
    }

    /// Refuse `object` unless its owner is accepted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] naming the owner and how to allow it; an OS error
    /// from `fstat`.
    pub fn check(&self, object: &ShmObject) -> Result<()> {
        let uid = object.owner_uid()?;
        if self.allows(uid) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "refused: the segment is owned by uid {uid}, not by this user (uid {}); anyone can create a segment under a name you wait for, so only your own are accepted unless you allow that owner (--allow-owner {uid}, owner= in Python, allow_owner in C)",
                sys::euid()
            ),
        )
        .with_segment(object.name()))
    }
}

/// Check a name given as raw bytes (names in `/dev/shm` need not be UTF-8): what
/// [`name::validate`] checks, on bytes.
fn validate_raw(raw: &[u8]) -> Result<&[u8]> {
    let bare = raw.strip_prefix(b"/").unwrap_or(raw);
    let shown = name::escaped(bare);
    let fail =
        |why: &str| Err(Error::new(ErrorKind::InvalidName, why.to_owned()).with_segment(&shown));
    if bare.is_empty() || bare == b"." || bare == b".." {
        return fail("invalid name: not a segment name");
    }
    if bare.contains(&b'/') || bare.contains(&0) {
        return fail("invalid name: a segment name must not contain '/' or a NUL byte");
    }
    if bare.len() > sys::MAX_NAME_LEN {
        return fail("invalid name: too long");
    }
    Ok(bare)
}

impl ShmObject {
    /// Remove the segment whose name is the raw bytes `raw` — for names that are not UTF-8,
    /// which [`remove`](Self::remove) cannot take (`list` reports them with
    /// [`SegmentInfo::raw_name`](crate::SegmentInfo::raw_name)).
    ///
    /// # Errors
    ///
    /// As [`remove`](Self::remove); the segment is named by its escaped form
    /// ([`name::escaped`]).
    pub fn remove_raw(raw: &[u8]) -> Result<()> {
        let bare = validate_raw(raw)?;
        sys::shm_unlink_bytes(bare).map_err(|e| remove_error(&e).with_segment(name::escaped(bare)))
    }
}

/// The error of a failed removal.
fn remove_error(e: &std::io::Error) -> Error {
    let detail = if e.kind() == std::io::ErrorKind::NotFound {
        "remove: no segment with this name exists"
    } else {
        "remove failed"
    };
    Error::from_io(e, detail)
}

pub(crate) fn check_size(name: &str, size: u64, zero_ok: bool) -> Result<()> {
    if size == 0 && !zero_ok {
        return Err(Error::new(
            ErrorKind::InvalidSize,
            "invalid size 0: a segment must be at least 1 byte",
        )
        .with_segment(name));
    }
    if size > MAX_SIZE || usize::try_from(size).is_err() {
        return Err(Error::new(
            ErrorKind::InvalidSize,
            format!(
                "invalid size {size}: larger than the largest possible segment ({MAX_SIZE} bytes)"
            ),
        )
        .with_segment(name));
    }
    Ok(())
}

/// Set the size of `fd` to `len` bytes and reserve the pages of any growth, setting the size
/// back when they cannot be reserved (a full `/dev/shm` is an error here, not a `SIGBUS`
/// later).
fn resize(fd: &OwnedFd, name: &str, len: u64) -> Result<()> {
    check_size(name, len, true)?;
    let before = sys::fstat(fd)
        .map_err(|e| Error::from_io(&e, "fstat failed").with_segment(name))?
        .size;
    sys::ftruncate(fd, len).map_err(|e| {
        Error::from_io(&e, format!("truncate to {len} bytes failed")).with_segment(name)
    })?;
    if len > before {
        if let Err(e) = sys::reserve(fd, len) {
            let _ = sys::ftruncate(fd, before);
            let errno = e.raw_os_error().unwrap_or(0);
            return Err(Error::os(
                errno,
                format!(
                    "cannot reserve {len} bytes in {} (is it full?)",
                    sys::SHM_DIR
                ),
            )
            .with_segment(name));
        }
    }
    Ok(())
}

/// A new segment that gets its name only once its creator has made it complete: created
/// without a name (an unnamed tmpfs file), sized, reserved, set up through [`Draft::map`], and
/// then named by [`Draft::publish`] in one atomic step that fails if the name is taken. Nobody
/// can observe it half set up, and a creator that dies before publishing leaves nothing
/// behind. This is how framed segments are created (`docs/SPEC.md` 5.1).
#[derive(Debug)]
pub(crate) struct Draft {
    fd: Arc<OwnedFd>,
    temp: Option<String>,
    name: Arc<str>,
}

impl Draft {
    /// A new unnamed object of `size` bytes (reserved), for the name `name`, with permission
    /// bits `perm` (default 0600).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidName`], [`ErrorKind::InvalidSize`], [`ErrorKind::InvalidArgument`]
    /// for bad permission bits, [`ErrorKind::AlreadyExists`] when the name is already taken
    /// (checked early to save the work; [`publish`](Self::publish) checks atomically),
    /// [`ErrorKind::NoSpace`].
    pub(crate) fn create(name: &str, size: u64, perm: Option<u32>) -> Result<Self> {
        let bare = name::validate(name)?;
        let perm = check_permissions(bare, perm)?;
        check_size(bare, size, false)?;
        if ShmObject::exists(bare) {
            return Err(taken(bare));
        }
        let (fd, temp) = sys::shm_create_unnamed(perm).map_err(|e| {
            Error::from_io(&e, "create_only (read_write): cannot create the object")
                .with_segment(bare)
        })?;
        let draft = Self {
            fd: Arc::new(fd),
            temp,
            name: Arc::from(bare),
        };
        resize(&draft.fd, bare, size)?;
        Ok(draft)
    }

    /// The descriptor (for liveness locks taken before the name appears).
    pub(crate) fn fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    /// Map all of it read-write.
    ///
    /// # Errors
    ///
    /// An OS error from `mmap`.
    pub(crate) fn map(&self, populate: bool) -> Result<Region> {
        let size = sys::fstat(&self.fd)
            .map_err(|e| Error::from_io(&e, "fstat failed").with_segment(&*self.name))?
            .size;
        let len = usize::try_from(size).map_err(|_| {
            Error::new(ErrorKind::InvalidSize, "larger than the address space")
                .with_segment(&*self.name)
        })?;
        Region::map_fd(
            Arc::clone(&self.fd),
            0,
            len,
            MapAccess::ReadWrite,
            populate,
            Arc::clone(&self.name),
            false,
        )
    }

    /// Give the object its name, atomically.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyExists`] when the name was taken meanwhile; an OS error.
    pub(crate) fn publish(mut self) -> Result<ShmObject> {
        let temp = self.temp.take();
        let linked = sys::shm_link(self.fd.as_fd(), temp.as_deref(), &self.name);
        if let Err(e) = linked {
            if let Some(t) = &temp {
                let _ = sys::shm_unlink(t);
            }
            return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                taken(&self.name)
            } else {
                Error::from_io(&e, "create_only (read_write): cannot name the new segment")
                    .with_segment(&*self.name)
            });
        }
        Ok(ShmObject {
            fd: Arc::clone(&self.fd),
            name: Arc::clone(&self.name),
            access: Access::ReadWrite,
            created: true,
        })
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if let Some(t) = &self.temp {
            let _ = sys::shm_unlink(t);
        }
    }
}

fn taken(bare: &str) -> Error {
    Error::from_io(
        &sys::already_exists_error(),
        "create_only (read_write): a segment with this name already exists",
    )
    .with_segment(bare)
}

fn check_permissions(bare: &str, perm: Option<u32>) -> Result<u32> {
    let perm = perm.unwrap_or(DEFAULT_PERMISSIONS);
    if perm & !0o777 != 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid permissions {perm:#o}: only the bits 0o777 may be set"),
        )
        .with_segment(bare));
    }
    Ok(perm)
}

/// Options for creating or opening a [`Segment`].
#[derive(Clone, Copy, Debug)]
pub struct SegmentOptions {
    /// Permission bits of a created segment; `None` is [`DEFAULT_PERMISSIONS`] (0600).
    pub permissions: Option<u32>,
    /// Read-only or read-write.
    pub access: Access,
    /// Pre-fault the page tables of the mapping (`MAP_POPULATE`): costs time up front, saves
    /// it on first touch. Worth it for a segment about to be filled in one go.
    pub populate: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            permissions: None,
            access: Access::ReadWrite,
            populate: false,
        }
    }
}

/// A named segment with one mapping of all of it.
#[derive(Debug)]
pub struct Segment {
    object: ShmObject,
    region: Region,
}

impl Segment {
    /// Create a new segment of `size` bytes (`create_only`, read-write, 0600), zero-filled and
    /// fully reserved.
    ///
    /// # Errors
    ///
    /// As [`Segment::open_with`].
    pub fn create(name: &str, size: u64) -> Result<Self> {
        Self::open_with(name, OpenMode::CreateOnly, size, &SegmentOptions::default())
    }

    /// Open an existing segment (`open_only`) and map it at its real size.
    ///
    /// # Errors
    ///
    /// As [`Segment::open_with`].
    pub fn open(name: &str, access: Access) -> Result<Self> {
        Self::open_with(
            name,
            OpenMode::OpenOnly,
            0,
            &SegmentOptions {
                access,
                ..SegmentOptions::default()
            },
        )
    }

    /// Open the segment if it exists, create it with `size` bytes otherwise.
    ///
    /// # Errors
    ///
    /// As [`Segment::open_with`].
    pub fn open_or_create(name: &str, size: u64) -> Result<Self> {
        Self::open_with(
            name,
            OpenMode::OpenOrCreate,
            size,
            &SegmentOptions::default(),
        )
    }

    /// The general form. `size` is the size of a created segment and the least size an opened
    /// one must have (0 accepts any size for `OpenOnly`).
    ///
    /// A creation that fails after the name was taken (no space, say) removes the name again,
    /// so no empty segment is left behind.
    ///
    /// # Errors
    ///
    /// Those of [`ShmObject::open`], plus [`ErrorKind::InvalidSize`] for a size of 0 on
    /// create, an absurd size, or an existing segment smaller than `size`;
    /// [`ErrorKind::NoSpace`] when the memory cannot be reserved.
    pub fn open_with(name: &str, mode: OpenMode, size: u64, opts: &SegmentOptions) -> Result<Self> {
        let bare = name::validate(name)?;
        if mode != OpenMode::OpenOnly {
            check_size(bare, size, false)?;
        }
        let object = ShmObject::open(bare, mode, opts.access, opts.permissions)?;
        let result = (|| {
            if object.created() {
                object.truncate(size)?;
            } else {
                let real = object.size()?;
                if real < size || real == 0 {
                    return Err(Error::new(
                        ErrorKind::InvalidSize,
                        format!("the existing segment is {real} bytes, smaller than the {size} bytes asked for"),
                    )
                    .with_segment(bare));
                }
            }
            let len = object.size()?;
            object.map_with(0, len, opts.access, opts.populate)
        })();
        match result {
            Ok(region) => Ok(Self { object, region }),
            Err(e) => {
                if object.created() {
                    let _ = ShmObject::remove(bare);
                }
                Err(e)
            }
        }
    }

    /// The name, without a leading `/`.
    #[must_use]
    pub fn name(&self) -> &str {
        self.object.name()
    }

    /// The named object.
    #[must_use]
    pub fn object(&self) -> &ShmObject {
        &self.object
    }

    /// The mapping of the whole segment.
    #[must_use]
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Remove this segment's name (see [`ShmObject::remove`]); the mapping stays usable.
    ///
    /// # Errors
    ///
    /// As [`ShmObject::remove`].
    pub fn unlink(&self) -> Result<()> {
        ShmObject::remove(self.name())
    }

    /// Split into the object and its mapping.
    #[must_use]
    pub fn into_parts(self) -> (ShmObject, Region) {
        (self.object, self.region)
    }
}

impl std::ops::Deref for Segment {
    type Target = Region;
    fn deref(&self) -> &Region {
        &self.region
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::unique;

    /// Removes a test segment even when the test fails.
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = ShmObject::remove(&self.0);
        }
    }

    #[test]
    fn create_open_and_share_bytes() {
        let name = unique("shmb_t_seg_");
        let _c = Cleanup(name.clone());
        let a = Segment::create(&name, 4097).unwrap();
        assert_eq!(a.len(), 4097);
        assert_eq!(a.object().size().unwrap(), 4097);
        a.write_at(4090, b"hello!!").unwrap();
        let b = Segment::open(&name, Access::ReadOnly).unwrap();
        let mut got = [0u8; 7];
        b.read_at(4090, &mut got).unwrap();
        assert_eq!(&got, b"hello!!");
        assert_eq!(
            b.write_at(0, b"x").unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn default_permissions_ignore_umask_and_explicit_mode_is_applied() {
        let name = unique("shmb_t_perm_");
        let _c = Cleanup(name.clone());
        let s = Segment::create(&name, 10).unwrap();
        assert_eq!(s.object().permissions().unwrap(), 0o600);
        drop(s);
        ShmObject::remove(&name).unwrap();
        let opts = SegmentOptions {
            permissions: Some(0o666),
            ..SegmentOptions::default()
        };
        let s = Segment::open_with(&name, OpenMode::CreateOnly, 10, &opts).unwrap();
        assert_eq!(
            s.object().permissions().unwrap(),
            0o666,
            "umask 022 must not apply"
        );
    }

    #[test]
    fn open_modes_follow_boost() {
        let name = unique("shmb_t_modes_");
        let _c = Cleanup(name.clone());
        let err = Segment::open(&name, Access::ReadWrite).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains(&name), "{err}");
        let first = Segment::open_or_create(&name, 100).unwrap();
        assert!(first.object().created());
        let second = Segment::open_or_create(&name, 50).unwrap();
        assert!(!second.object().created());
        assert_eq!(second.len(), 100, "an opened segment maps its real size");
        let err = Segment::create(&name, 100).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = Segment::open_or_create(&name, 200).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSize);
    }

    #[test]
    fn bad_sizes_are_rejected_and_leave_no_name() {
        let name = unique("shmb_t_size_");
        let _c = Cleanup(name.clone());
        assert_eq!(
            Segment::create(&name, 0).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
        assert_eq!(
            Segment::create(&name, u64::MAX).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
        // Larger than /dev/shm can hold: fallocate fails, and the name is removed again.
        let err = Segment::create(&name, 1 << 50).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
        assert!(!ShmObject::exists(&name));
    }

    #[test]
    fn boost_style_object_starts_empty_and_truncates() {
        let name = unique("shmb_t_obj_");
        let _c = Cleanup(name.clone());
        let obj = ShmObject::create(&name, None).unwrap();
        assert_eq!(obj.size().unwrap(), 0);
        assert_eq!(
            obj.map(Access::ReadWrite).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
        obj.truncate(8192).unwrap();
        let r = obj.map(Access::ReadWrite).unwrap();
        assert_eq!(r.len(), 8192);
        let part = obj.map_range(4096, 100, Access::ReadOnly).unwrap();
        r.write_at(4096, b"abc").unwrap();
        assert_eq!(part.get::<u8>(1).unwrap(), b'b');
        assert_eq!(
            obj.map_range(8100, 100, Access::ReadOnly)
                .unwrap_err()
                .kind(),
            ErrorKind::OutOfBounds
        );
        let ro = ShmObject::open(&name, OpenMode::OpenOnly, Access::ReadOnly, None).unwrap();
        assert_eq!(
            ro.truncate(10).unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            ro.map(Access::ReadWrite).unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn truncation_by_another_handle_is_an_error_not_sigbus() {
        let name = unique("shmb_t_trunc_");
        let _c = Cleanup(name.clone());
        let s = Segment::create(&name, 3 * 4096).unwrap();
        let other = ShmObject::open(&name, OpenMode::OpenOnly, Access::ReadWrite, None).unwrap();
        other.truncate(100).unwrap();
        let err = s.get::<u32>(2 * 4096).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated);
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn remove_missing_is_not_found_and_leading_slash_is_same_name() {
        let name = unique("shmb_t_rm_");
        let _c = Cleanup(name.clone());
        assert_eq!(
            ShmObject::remove(&name).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let _s = Segment::create(&format!("/{name}"), 10).unwrap();
        assert!(ShmObject::exists(&name));
        ShmObject::remove(&name).unwrap();
        assert!(!ShmObject::exists(&name));
    }
}
