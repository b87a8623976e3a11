//! Linux: POSIX shared memory on tmpfs (`/dev/shm`), `posix_fallocate`, futexes.
//!
//! Every function returns `std::io::Result` with the raw OS error kept; the callers above add
//! the segment name and the sentence.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Longest name (without the leading `/`): `NAME_MAX` of the tmpfs directory.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// Where named segments are visible as files.
pub(crate) const SHM_DIR: &str = "/dev/shm";

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
pub(crate) fn shm_open(bare_name: &str, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
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

/// `shm_unlink("/" + name)`.
pub(crate) fn shm_unlink(bare_name: &str) -> io::Result<()> {
    let path = cpath(bare_name)?;
    // SAFETY: `path` is a valid NUL-terminated string.
    cvt(unsafe { libc::shm_unlink(path.as_ptr()) }).map(drop)
}

/// What `fstat` says of a descriptor, the parts we use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stat {
    pub size: u64,
    pub uid: u32,
    /// Permission bits only (`st_mode & 0o7777`).
    pub perm: u32,
    pub is_regular: bool,
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        size: u64::try_from(st.st_size).unwrap_or(0),
        uid: st.st_uid,
        perm: st.st_mode & 0o7777,
        is_regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
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

/// `O_TMPFILE`: an unnamed file in a directory, which vanishes if the process dies before it
/// is linked in.
pub(crate) const O_TMPFILE: i32 = libc::O_TMPFILE;

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
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}
