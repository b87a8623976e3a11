//! Linux: POSIX shared memory on tmpfs (`/dev/shm`), `posix_fallocate`, futexes.
//!
//! Every function returns `std::io::Result` with the raw OS error kept; the callers above add
//! the segment name and the sentence.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use super::{LinkStat, Stat};
use crate::ErrorKind;

/// Longest name (without the leading `/`): `NAME_MAX` of the tmpfs directory.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// Where named segments are visible as files.
pub(crate) const SHM_DIR: &str = "/dev/shm";

// ---------------------------------------------------------------------------------------------
// Errors: what an errno means, so that nothing above this module names one.

/// The kind of error an OS error number stands for.
pub(crate) fn kind_of_errno(errno: i32) -> ErrorKind {
    match errno {
        libc::EEXIST => ErrorKind::AlreadyExists,
        libc::ENOENT => ErrorKind::NotFound,
        libc::EACCES | libc::EPERM | libc::EROFS => ErrorKind::PermissionDenied,
        libc::ENOSPC | libc::ENOMEM | libc::EFBIG => ErrorKind::NoSpace,
        libc::ENAMETOOLONG => ErrorKind::InvalidName,
        libc::EINVAL => ErrorKind::InvalidArgument,
        libc::ETIMEDOUT => ErrorKind::Timeout,
        _ => ErrorKind::Os,
    }
}

/// The error "the name is taken" (`EEXIST`), as creating it exclusively reports it.
pub(crate) fn already_exists_error() -> io::Error {
    io::Error::from_raw_os_error(libc::EEXIST)
}

/// Whether a copy failed because memory it touched is not accessible (`EFAULT`: a mapping
/// that shrank, a page that could not be allocated).
pub(crate) fn is_fault(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EFAULT)
}

/// Whether the filesystem had no room left (`ENOSPC`).
pub(crate) fn is_no_space(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOSPC)
}

// ---------------------------------------------------------------------------------------------
// The shared-memory directory.

/// The path of the segment `bare` (raw bytes, need not be UTF-8) in the shared-memory
/// directory.
pub(crate) fn shm_path(bare: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    std::path::Path::new(SHM_DIR).join(std::ffi::OsStr::from_bytes(bare))
}

/// Whether a segment called `bare` exists now (following a symbolic link, as `stat` does).
pub(crate) fn shm_exists(bare: &str) -> bool {
    shm_path(bare.as_bytes()).exists()
}

/// Where the symbolic link `bare` in the shared-memory directory points, as raw bytes.
pub(crate) fn shm_read_link(bare: &[u8]) -> io::Result<Vec<u8>> {
    use std::os::unix::ffi::OsStringExt as _;
    std::fs::read_link(shm_path(bare)).map(|t| t.into_os_string().into_vec())
}

/// The raw names of the entries of the shared-memory directory that can be segments (glibc's
/// semaphores, `sem.NAME`, live there too and are left out), in no order. Entries that cannot
/// be read are skipped.
pub(crate) fn shm_names() -> io::Result<Vec<Vec<u8>>> {
    use std::os::unix::ffi::OsStringExt as _;
    Ok(std::fs::read_dir(SHM_DIR)?
        .flatten()
        .map(|entry| entry.file_name().into_vec())
        .filter(|raw| !raw.starts_with(b"sem."))
        .collect())
}

fn cpath(bare_name: &str) -> io::Result<CString> {
    CString::new(format!("/{bare_name}")).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `shm_open("/" + name, flags, mode)` with `O_CLOEXEC` always added.
fn shm_open(bare_name: &str, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let path = cpath(bare_name)?;
    loop {
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        let fd =
            unsafe { libc::shm_open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::mode_t) };
        if fd >= 0 {
            // SAFETY: shm_open returned a fresh descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Create the object `name` (`O_CREAT | O_EXCL`), read-write or read-only, with mode `perm`
/// (the umask applies; the caller fixes the bits with [`fchmod`]).
pub(crate) fn shm_create_excl(bare_name: &str, writable: bool, perm: u32) -> io::Result<OwnedFd> {
    let acc = if writable {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    };
    shm_open(bare_name, acc | libc::O_CREAT | libc::O_EXCL, perm)
}

/// Open the existing object `name`. `O_NONBLOCK`, so that a FIFO planted under the name does
/// not block the open (the caller then refuses anything that is not a regular file); glibc's
/// `shm_open` already refuses symbolic links (`O_NOFOLLOW`).
pub(crate) fn shm_open_existing(bare_name: &str, writable: bool) -> io::Result<OwnedFd> {
    let acc = if writable {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    };
    shm_open(bare_name, acc | libc::O_NONBLOCK | libc::O_NOFOLLOW, 0)
}

/// Whether `err` is what opening a symbolic link with `O_NOFOLLOW` gives.
pub(crate) fn is_symlink_error(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ELOOP)
}

/// `shm_unlink("/" + name)`.
pub(crate) fn shm_unlink(bare_name: &str) -> io::Result<()> {
    let path = cpath(bare_name)?;
    // SAFETY: `path` is a valid NUL-terminated string.
    cvt(unsafe { libc::shm_unlink(path.as_ptr()) }).map(drop)
}

/// What kind of file a `st_mode` says, in words.
fn file_type_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "regular file",
        libc::S_IFDIR => "directory",
        libc::S_IFIFO => "FIFO",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFLNK => "symbolic link",
        _ => "special file",
    }
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        size: u64::try_from(st.st_size).unwrap_or(0),
        uid: st.st_uid,
        perm: st.st_mode & 0o7777,
        is_regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
        file_type: file_type_name(st.st_mode),
    }
}

pub(crate) fn fstat(fd: &OwnedFd) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for writes of a `stat`; the descriptor is open.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it initialised `st`.
    Ok(stat_of(unsafe { &st.assume_init() }))
}

pub(crate) fn fchmod(fd: &OwnedFd, perm: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an open descriptor.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), perm as libc::mode_t) }).map(drop)
}

pub(crate) fn ftruncate(fd: &OwnedFd, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: plain syscall on an open descriptor.
        match cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            other => return other.map(drop),
        }
    }
}

/// Reserve `len` bytes of backing store so that later page faults cannot fail with SIGBUS.
/// On tmpfs this allocates the pages; filesystems without fallocate support are left as they are.
pub(crate) fn reserve(fd: &OwnedFd, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: plain syscall on an open descriptor; it returns the error number directly.
        let rc = unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, len) };
        match rc {
            0 | libc::EOPNOTSUPP => return Ok(()),
            libc::EINTR => {}
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// An anonymous `MAP_SHARED` mapping: unlike `MAP_PRIVATE`, a child made by `fork()` sees the
/// same pages as its parent.
pub(crate) fn map_anon_shared(len: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choice touches no
    // existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr.cast())
}

/// Unmap what [`map_anon_shared`] mapped. Errors are ignored: this runs in `Drop`.
///
/// # Safety
///
/// `ptr` and `len` must be exactly a live mapping returned by [`map_anon_shared`], and nothing
/// may use it afterwards.
pub(crate) unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::munmap(ptr.cast(), len) };
}

/// Sleep until `*word != expected`, a wake-up, or the timeout. A plain (shared, not PRIVATE)
/// futex, so processes mapping the same segment wake each other. Returns `false` on timeout.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; the timespec, when
    // present, outlives the call. FUTEX_WAIT only reads the word.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
        )
    };
    !(rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
}

/// Wake every waiter sleeping on `word` (in any process that maps it).
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access memory we own.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// This process's start time in clock ticks since boot (field 22 of `/proc/self/stat`), which
/// together with the pid identifies a process even after its pid is reused.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: parse after it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `start_time` (0: unknown) still runs. A zombie
/// (killed or exited, not yet reaped by its parent) does not count as running.
pub(crate) fn process_alive(pid: u32, start_time: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next().unwrap_or("");
    if matches!(state, "Z" | "X" | "x") {
        return false;
    }
    match fields.nth(18).and_then(|t| t.parse::<u64>().ok()) {
        None => false,
        Some(t) => start_time == 0 || t == start_time,
    }
}

/// `read(2)` into raw memory (a mapping), retrying on `EINTR`. Returns the bytes read (0 at
/// end of file).
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes for the duration of the call.
pub(crate) unsafe fn read_raw(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: *mut u8,
    len: usize,
) -> io::Result<usize> {
    loop {
        // SAFETY: the caller guarantees `buf` is writable for `len` bytes; the fd is open.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.cast(), len) };
        if n >= 0 {
            return Ok(n.unsigned_abs());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// `write(2)` all of `len` bytes from raw memory (a mapping), retrying on `EINTR` and short
/// writes.
///
/// # Safety
///
/// `buf` must be valid for reads of `len` bytes for the duration of the call.
pub(crate) unsafe fn write_all_raw(
    fd: std::os::fd::BorrowedFd<'_>,
    mut buf: *const u8,
    mut len: usize,
) -> io::Result<()> {
    while len > 0 {
        // SAFETY: the caller guarantees `buf` is readable for `len` bytes; the fd is open.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.cast(), len) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let n = n.unsigned_abs();
        // SAFETY: n <= len, so the pointer stays within (or one past) the caller's buffer.
        buf = unsafe { buf.add(n) };
        len -= n;
    }
    Ok(())
}

/// Tell the kernel a file will be read sequentially (larger read-ahead). Advisory: errors are
/// ignored.
pub(crate) fn advise_sequential(fd: std::os::fd::BorrowedFd<'_>) {
    // SAFETY: plain advisory syscall on an open descriptor.
    unsafe { libc::posix_fadvise(fd.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
}

/// Whether an `open` with `O_TMPFILE` failed because the kernel or the filesystem does not
/// support unnamed files (the caller then falls back to a hidden temporary name).
fn is_tmpfile_unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
    )
}

/// A new, unnamed, read-write file in the directory `dir` (`O_TMPFILE`), which vanishes if
/// the process dies before [`link_unnamed`] gives it a name. `Ok(None)` when the kernel or
/// the filesystem cannot make unnamed files (the caller then uses a hidden temporary name).
pub(crate) fn open_unnamed_in(dir: &std::path::Path) -> io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if is_tmpfile_unsupported(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Give the unnamed (`O_TMPFILE`) file `fd` the name `path` (`linkat` through
/// `/proc/self/fd`, which needs no privilege).
pub(crate) fn link_unnamed(
    fd: std::os::fd::BorrowedFd<'_>,
    path: &std::path::Path,
) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let src = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let dst = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let via_proc = cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    });
    match via_proc {
        // No /proc (a bare chroot): AT_EMPTY_PATH, which needs CAP_DAC_READ_SEARCH on older
        // kernels.
        Err(e)
            if e.raw_os_error() == Some(libc::ENOENT)
                && !std::path::Path::new("/proc/self/fd").exists() =>
        {
            // SAFETY: the empty path and `dst` are valid NUL-terminated strings; the fd is open.
            cvt(unsafe {
                libc::linkat(
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    dst.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            })
            .map(drop)
        }
        other => other.map(drop),
    }
}

// ---------------------------------------------------------------------------------------------
// Liveness: open-file-description locks.
//
// An OFD lock (`F_OFD_SETLK`) belongs to the open file description, not to the process: the
// kernel drops it when the last descriptor of that description closes, which includes the
// process dying by any signal. It works across PID namespaces (it names no pid), and a
// process that opened the object twice holds two independent descriptions, so it can test its
// own locks through a second handle. Ranges may lie past the end of the file.

fn ofd_flock(start: u64, kind: libc::c_short) -> io::Result<libc::flock> {
    let start =
        libc::off_t::try_from(start).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `flock` is plain old data; all-zero is a valid value (l_pid must be 0 for OFD
    // locks).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = 1;
    Ok(fl)
}

fn fcntl_lock(
    fd: std::os::fd::BorrowedFd<'_>,
    cmd: libc::c_int,
    fl: &mut libc::flock,
) -> io::Result<()> {
    loop {
        // SAFETY: `fl` is a valid, exclusively borrowed flock for the duration of the call.
        let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, std::ptr::from_mut(fl)) };
        if rc != -1 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Take the one-byte OFD lock at `start`, without waiting: exclusive (a write lock, which needs
/// a descriptor open for writing) or shared (a read lock). `Ok(false)` when another open file
/// description holds a conflicting lock.
pub(crate) fn ofd_try_lock(
    fd: std::os::fd::BorrowedFd<'_>,
    start: u64,
    exclusive: bool,
) -> io::Result<bool> {
    let kind = if exclusive {
        libc::F_WRLCK
    } else {
        libc::F_RDLCK
    };
    let mut fl = ofd_flock(start, kind as libc::c_short)?;
    match fcntl_lock(fd, libc::F_OFD_SETLK, &mut fl) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Release the OFD lock at `start` held through `fd` (no-op when none is held). Errors are
/// ignored: this runs from `Drop`, and closing the descriptor releases the lock anyway.
pub(crate) fn ofd_unlock(fd: std::os::fd::BorrowedFd<'_>, start: u64) {
    if let Ok(mut fl) = ofd_flock(start, libc::F_UNLCK as libc::c_short) {
        let _ = fcntl_lock(fd, libc::F_OFD_SETLK, &mut fl);
    }
}

/// Whether an open file description other than `fd`'s holds any lock on the byte at `start`
/// (`F_OFD_GETLK` asking for a write lock, which every lock conflicts with). Works on a
/// descriptor opened read-only.
pub(crate) fn ofd_probe(fd: std::os::fd::BorrowedFd<'_>, start: u64) -> io::Result<bool> {
    let mut fl = ofd_flock(start, libc::F_WRLCK as libc::c_short)?;
    fcntl_lock(fd, libc::F_OFD_GETLK, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

// ---------------------------------------------------------------------------------------------
// Readiness: objects that get their name only once they are complete.

/// A new, empty, read-write shared-memory object that has no name yet, with permission bits
/// `perm` (applied with `fchmod`, so the umask does not change them): an unnamed tmpfs file
/// (`O_TMPFILE` in the shared-memory directory). Where the kernel or filesystem refuses that,
/// the object gets a hidden temporary name instead, returned as the second value; the caller
/// removes it if it never calls [`shm_link`].
pub(crate) fn shm_create_unnamed(perm: u32) -> io::Result<(OwnedFd, Option<String>)> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = CString::new(SHM_DIR).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `dir` is a valid NUL-terminated path for the duration of the call.
    let fd = unsafe {
        libc::open(
            dir.as_ptr(),
            libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
            perm as libc::c_uint,
        )
    };
    let (fd, temp) = if fd >= 0 {
        // SAFETY: open returned a fresh descriptor that nothing else owns.
        (unsafe { OwnedFd::from_raw_fd(fd) }, None)
    } else {
        let err = io::Error::last_os_error();
        if !is_tmpfile_unsupported(&err) {
            return Err(err);
        }
        // No O_TMPFILE here: a hidden name, unique to this process and call.
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = format!(".shmb-new-{}-{n}", std::process::id());
        let fd = shm_open(&temp, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, perm)?;
        (fd, Some(temp))
    };
    fchmod(&fd, perm)?;
    Ok((fd, temp))
}

/// Give an object made by [`shm_create_unnamed`] the name `bare_name`, atomically and only if
/// the name is free (`EEXIST` otherwise); a temporary name is removed afterwards.
pub(crate) fn shm_link(
    fd: std::os::fd::BorrowedFd<'_>,
    temp: Option<&str>,
    bare_name: &str,
) -> io::Result<()> {
    let target = std::path::Path::new(SHM_DIR).join(bare_name);
    match temp {
        None => link_unnamed(fd, &target),
        Some(temp) => {
            std::fs::hard_link(std::path::Path::new(SHM_DIR).join(temp), &target)?;
            let _ = shm_unlink(temp);
            Ok(())
        }
    }
}

/// Whether the name `bare_name` still refers to the object open as `fd` (same device and
/// inode), so that removing the name removes this object and not a newer one of that name.
pub(crate) fn names_same_object(bare_name: &str, fd: &OwnedFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(std::path::Path::new(SHM_DIR).join(bare_name)) else {
        return false;
    };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for writes of a `stat`; the descriptor is open.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstat succeeded, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    meta.dev() == st.st_dev && meta.ino() == st.st_ino
}

/// Watches the shared-memory directory for names that appear (inotify), so that waiting for a
/// segment to be created needs no polling.
#[derive(Debug)]
pub(crate) struct DirWatch(OwnedFd);

impl DirWatch {
    /// Start watching. Fails when inotify is unavailable (the caller then polls).
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall.
        let fd = cvt(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
        // SAFETY: inotify_init1 returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let dir = CString::new(SHM_DIR).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: valid descriptor and NUL-terminated path.
        cvt(unsafe {
            libc::inotify_add_watch(
                fd.as_raw_fd(),
                dir.as_ptr(),
                libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ATTRIB,
            )
        })?;
        Ok(Self(fd))
    }

    /// Sleep until something appears in the directory or `timeout` passes; then forget the
    /// events seen so far.
    pub(crate) fn wait(&self, timeout: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&raw mut pfd, 1, ms) };
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: `buf` is valid for writes of its length; the descriptor is non-blocking.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
        }
    }
}

/// How many CPUs this thread may run on (`sched_getaffinity`); 1 when unknown.
pub(crate) fn cpus_allowed() -> usize {
    // SAFETY: cpu_set_t is plain old data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid for writes of its size.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw mut set) };
    if rc != 0 {
        return 1;
    }
    // SAFETY: `set` was filled by sched_getaffinity.
    usize::try_from(unsafe { libc::CPU_COUNT(&set) })
        .unwrap_or(1)
        .max(1)
}

/// The wall-clock time in nanoseconds since the Unix epoch (`CLOCK_REALTIME`, through the
/// vDSO: no system call). 0 if the clock is before the epoch.
pub(crate) fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is valid for writes; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &raw mut ts) };
    u64::try_from(ts.tv_sec)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|n| n.checked_add(u64::try_from(ts.tv_nsec).ok()?))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Copies through the descriptor: a shrunk or sparse object is an error code, never a signal.
//
// A copy through a mapping faults with SIGBUS when the object was shrunk below the page, or
// when the page is a tmpfs hole and `/dev/shm` is full (a read fault allocates). The same
// copy through the descriptor cannot fault: `pread` stops at the end of the file and reads a
// hole as zeros without allocating, and `pwrite` into a hole on a full filesystem fails with
// `ENOSPC`.

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    // SAFETY: plain libc query.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// `pread(2)` until `buf` is full or the end of the file, retrying on `EINTR`. Returns the
/// bytes read: fewer than `buf.len()` only at the end of the file.
pub(crate) fn pread_full(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
    offset: u64,
) -> io::Result<usize> {
    let mut done = 0usize;
    while done < buf.len() {
        let at = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the pointer and length describe the unfilled tail of `buf`, valid for writes.
        let n = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                buf[done..].as_mut_ptr().cast(),
                buf.len() - done,
                at,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            break;
        }
        done += n.unsigned_abs();
    }
    Ok(done)
}

/// `pwrite(2)` all of `buf` at `offset`, retrying on `EINTR` and short writes.
pub(crate) fn pwrite_all(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &[u8],
    offset: u64,
) -> io::Result<()> {
    let mut done = 0usize;
    while done < buf.len() {
        let at = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the pointer and length describe the unwritten tail of `buf`, valid for reads.
        let n = unsafe {
            libc::pwrite(
                fd.as_raw_fd(),
                buf[done..].as_ptr().cast(),
                buf.len() - done,
                at,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        done += n.unsigned_abs();
    }
    Ok(())
}

fn shm_path_bytes(bare: &[u8]) -> io::Result<CString> {
    let mut p = Vec::with_capacity(SHM_DIR.len() + 1 + bare.len());
    p.extend_from_slice(SHM_DIR.as_bytes());
    p.push(b'/');
    p.extend_from_slice(bare);
    CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `lstat` of `/dev/shm/<bare>`.
pub(crate) fn shm_lstat(bare: &[u8]) -> io::Result<LinkStat> {
    let path = shm_path_bytes(bare)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated; `st` is valid for writes of a `stat`.
    cvt(unsafe { libc::lstat(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: lstat succeeded, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    Ok(LinkStat {
        stat: stat_of(&st),
        mtime_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
        is_symlink: st.st_mode & libc::S_IFMT == libc::S_IFLNK,
    })
}

/// Remove `/dev/shm/<bare>` by its raw bytes (`unlink`, which is what `shm_unlink` does on
/// Linux), for names that are not UTF-8.
pub(crate) fn shm_unlink_bytes(bare: &[u8]) -> io::Result<()> {
    let path = shm_path_bytes(bare)?;
    // SAFETY: `path` is a valid NUL-terminated string.
    cvt(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// The identity (device, inode) and owner of an open descriptor.
pub(crate) fn fd_identity(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<(u64, u64, u32)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for writes of a `stat`; the descriptor is open.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino, st.st_uid))
}

/// This process's effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: plain libc query that cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether `process_vm_writev` on this process works here (a seccomp filter may refuse it).
static PVM_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Copy `src` to `dst` (this process's own memory, typically a shared mapping) with the
/// kernel doing the copy (`process_vm_writev` on ourselves): a page that cannot be faulted in
/// (the object was shrunk, or a hole cannot be allocated on a full filesystem) makes the call
/// return a short count or `EFAULT` instead of raising `SIGBUS`. Faster than `pwrite` on tmpfs
/// (no per-page filesystem write path). `Ok(None)` when the kernel refuses the call here
/// (`ENOSYS`, `EPERM`: seccomp), and from then on without trying: the caller falls back to
/// `pwrite`.
///
/// # Safety
///
/// `dst` must be the start of `src.len()` bytes of this process's address space that nothing
/// else (no Rust reference) assumes unchanged; the kernel checks accessibility itself.
pub(crate) unsafe fn copy_into_own_memory(dst: *mut u8, src: &[u8]) -> io::Result<Option<usize>> {
    use std::sync::atomic::Ordering;
    if !PVM_OK.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let local = libc::iovec {
        iov_base: src.as_ptr().cast_mut().cast(),
        iov_len: src.len(),
    };
    let remote = libc::iovec {
        iov_base: dst.cast(),
        iov_len: src.len(),
    };
    loop {
        // SAFETY: both iovecs describe memory of this process for the call's duration; the
        // kernel validates `remote` page by page and reports faults as errors.
        let n = unsafe {
            libc::process_vm_writev(libc::getpid(), &raw const local, 1, &raw const remote, 1, 0)
        };
        if n >= 0 {
            return Ok(Some(n.unsigned_abs()));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ENOSYS | libc::EPERM) => {
                PVM_OK.store(false, Ordering::Relaxed);
                return Ok(None);
            }
            _ => return Err(err),
        }
    }
}

/// Open `/dev/shm/<bare>` given as raw bytes (a name that need not be UTF-8), read-only, with
/// the same refusals as [`shm_open_existing`]: no symbolic links, no blocking on a FIFO.
pub(crate) fn shm_open_bytes_read_only(bare: &[u8]) -> io::Result<OwnedFd> {
    let path = shm_path_bytes(bare)?;
    loop {
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: open returned a fresh descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Make [`copy_into_own_memory`] refuse from now on, as a seccomp filter would (tests of the
/// `pwrite` fallback).
#[cfg(test)]
pub(crate) fn refuse_process_vm_writev() {
    PVM_OK.store(false, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_values_map_to_their_kinds() {
        assert_eq!(kind_of_errno(libc::EEXIST), ErrorKind::AlreadyExists);
        assert_eq!(kind_of_errno(libc::ENOENT), ErrorKind::NotFound);
        assert_eq!(kind_of_errno(libc::EACCES), ErrorKind::PermissionDenied);
        assert_eq!(kind_of_errno(libc::EPERM), ErrorKind::PermissionDenied);
        assert_eq!(kind_of_errno(libc::ENOSPC), ErrorKind::NoSpace);
        assert_eq!(kind_of_errno(libc::ENAMETOOLONG), ErrorKind::InvalidName);
        assert_eq!(kind_of_errno(libc::ETIMEDOUT), ErrorKind::Timeout);
        assert_eq!(kind_of_errno(libc::EIO), ErrorKind::Os);
        assert_eq!(
            already_exists_error().raw_os_error(),
            Some(libc::EEXIST),
            "the taken-name error keeps EEXIST"
        );
        assert!(is_fault(&io::Error::from_raw_os_error(libc::EFAULT)));
        assert!(is_no_space(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!is_no_space(&io::Error::from_raw_os_error(libc::EIO)));
    }

    #[test]
    fn unnamed_files_open_in_a_directory_and_vanish_unlinked() {
        let dir = std::env::temp_dir();
        if let Some(f) = open_unnamed_in(&dir).unwrap() {
            use std::io::Write as _;
            (&f).write_all(b"x").unwrap();
            assert_eq!(f.metadata().unwrap().len(), 1);
        }
        assert!(open_unnamed_in(std::path::Path::new("/nonexistent-shmbridge-dir")).is_err());
    }
}
