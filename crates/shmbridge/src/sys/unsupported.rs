//! The stub backend: every function the core needs from a platform, failing with
//! [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) (or answering "no" where the
//! caller expects a plain answer).
//!
//! Compiled in place of the Linux backend with `--cfg shmbridge_stub_backend`
//! (`make check-stub`), so the seam a macOS or Windows port fills is checked by the compiler:
//! a port copies this file and implements it. Nothing here touches the OS.

#![allow(clippy::unnecessary_wraps, clippy::missing_errors_doc)]

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use super::{LinkStat, Stat, StatVfs};
use crate::ErrorKind;

/// Longest segment name this platform accepts.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// Where named segments are visible as files: nowhere here.
pub(crate) const SHM_DIR: &str = "/nonexistent/shmbridge-unsupported-platform";

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "shmbridge has no backend for this platform (see crates/shmbridge/src/sys/)",
    )
}

// Errors.

/// The kind of error an OS error number stands for: unknown here.
pub(crate) fn kind_of_errno(_errno: i32) -> ErrorKind {
    ErrorKind::Unsupported
}

/// The error "the name is taken".
pub(crate) fn already_exists_error() -> io::Error {
    io::Error::from(io::ErrorKind::AlreadyExists)
}

/// Whether a copy failed on inaccessible memory.
pub(crate) fn is_fault(_err: &io::Error) -> bool {
    false
}

/// Whether the filesystem had no room left.
pub(crate) fn is_no_space(_err: &io::Error) -> bool {
    false
}

/// Whether opening failed because the name is a symbolic link.
pub(crate) fn is_symlink_error(_err: &io::Error) -> bool {
    false
}

// The shared-memory directory and named objects.

/// The path of the segment `bare` in the shared-memory directory.
#[cfg(test)]
pub(crate) fn shm_path(bare: &[u8]) -> std::path::PathBuf {
    Path::new(SHM_DIR).join(String::from_utf8_lossy(bare).as_ref())
}

/// Whether a segment called `bare` exists now.
pub(crate) fn shm_exists(_bare: &str) -> bool {
    false
}

/// Where the symbolic link `bare` points.
pub(crate) fn shm_read_link(_bare: &[u8]) -> io::Result<Vec<u8>> {
    Err(unsupported())
}

/// The raw names of the segments.
pub(crate) fn shm_names() -> io::Result<Vec<Vec<u8>>> {
    Err(unsupported())
}

/// Create the object `bare_name` exclusively.
pub(crate) fn shm_create_excl(
    _bare_name: &str,
    _writable: bool,
    _perm: u32,
) -> io::Result<OwnedFd> {
    Err(unsupported())
}

/// Open the existing object `bare_name`.
pub(crate) fn shm_open_existing(_bare_name: &str, _writable: bool) -> io::Result<OwnedFd> {
    Err(unsupported())
}

/// Open the object named by raw bytes, read-only.
pub(crate) fn shm_open_bytes_read_only(_bare: &[u8]) -> io::Result<OwnedFd> {
    Err(unsupported())
}

/// Remove the name `bare_name`.
pub(crate) fn shm_unlink(_bare_name: &str) -> io::Result<()> {
    Err(unsupported())
}

/// Remove the name given as raw bytes.
pub(crate) fn shm_unlink_bytes(_bare: &[u8]) -> io::Result<()> {
    Err(unsupported())
}

/// A new object with no name yet (and its temporary name, if it needed one).
pub(crate) fn shm_create_unnamed(_perm: u32) -> io::Result<(OwnedFd, Option<String>)> {
    Err(unsupported())
}

/// Give an object made by [`shm_create_unnamed`] the name `bare_name`.
pub(crate) fn shm_link(
    _fd: BorrowedFd<'_>,
    _temp: Option<&str>,
    _bare_name: &str,
) -> io::Result<()> {
    Err(unsupported())
}

/// Whether the name still refers to the object open as `fd`.
pub(crate) fn names_same_object(_bare_name: &str, _fd: &OwnedFd) -> bool {
    false
}

/// The status of an open descriptor.
pub(crate) fn fstat(_fd: &OwnedFd) -> io::Result<Stat> {
    Err(unsupported())
}

/// The status of a name in the shared-memory directory.
pub(crate) fn shm_lstat(_bare: &[u8]) -> io::Result<LinkStat> {
    Err(unsupported())
}

/// The identity (device, inode) and owner of an open descriptor.
pub(crate) fn fd_identity(_fd: BorrowedFd<'_>) -> io::Result<(u64, u64, u32)> {
    Err(unsupported())
}

/// Set the permission bits.
pub(crate) fn fchmod(_fd: &OwnedFd, _perm: u32) -> io::Result<()> {
    Err(unsupported())
}

/// Set the size.
pub(crate) fn ftruncate(_fd: &OwnedFd, _len: u64) -> io::Result<()> {
    Err(unsupported())
}

/// Reserve the backing store of `len` bytes.
pub(crate) fn reserve(_fd: &OwnedFd, _len: u64) -> io::Result<()> {
    Err(unsupported())
}

/// This process's effective user id.
pub(crate) fn euid() -> u32 {
    u32::MAX
}

// Memory.

/// An anonymous mapping shared with children.
pub(crate) fn map_anon_shared(_len: usize) -> io::Result<*mut u8> {
    Err(unsupported())
}

/// Unmap what [`map_anon_shared`] mapped.
///
/// # Safety
///
/// `ptr` and `len` must be exactly a live mapping returned by [`map_anon_shared`] (which
/// never returns one here).
pub(crate) unsafe fn unmap(_ptr: *mut u8, _len: usize) {}

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    4096
}

/// Copy into this process's own memory with the kernel checking every page: `Ok(None)`, the
/// caller falls back to [`pwrite_all`].
///
/// # Safety
///
/// As the Linux backend's: `dst` must be `src.len()` bytes of this process's memory.
pub(crate) unsafe fn copy_into_own_memory(_dst: *mut u8, _src: &[u8]) -> io::Result<Option<usize>> {
    Ok(None)
}

/// Make [`copy_into_own_memory`] refuse from now on (it always does here).
#[cfg(test)]
pub(crate) fn refuse_process_vm_writev() {}

// Waiting.

/// Sleep until the word changes, a wake-up, or the timeout: here a plain sleep of at most a
/// millisecond (callers re-check the word), so waits still end. `false` on timeout.
pub(crate) fn futex_wait(_word: &AtomicU32, _expected: u32, timeout: Option<Duration>) -> bool {
    std::thread::sleep(
        timeout
            .unwrap_or(Duration::from_millis(1))
            .min(Duration::from_millis(1)),
    );
    true
}

/// Wake every waiter on `word`.
pub(crate) fn futex_wake_all(_word: &AtomicU32) {}

/// Watches the shared-memory directory for new names.
#[derive(Debug)]
pub(crate) struct DirWatch;

impl DirWatch {
    /// Start watching: never possible here (the caller polls).
    pub(crate) fn new() -> io::Result<Self> {
        Err(unsupported())
    }

    /// Sleep until something appears or `timeout` passes.
    pub(crate) fn wait(&self, timeout: Duration) {
        std::thread::sleep(timeout);
    }
}

// Processes and clocks.

/// A process's start time, which with its pid identifies it.
pub(crate) fn process_start_time(_pid: u32) -> Option<u64> {
    None
}

/// Whether the process `pid` that started at `start_time` still runs.
pub(crate) fn process_alive(_pid: u32, _start_time: u64) -> bool {
    false
}

/// How many CPUs this thread may run on.
pub(crate) fn cpus_allowed() -> usize {
    1
}

/// The wall-clock time in nanoseconds since the Unix epoch.
pub(crate) fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// Copies through descriptors.

/// `read` into raw memory.
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes.
pub(crate) unsafe fn read_raw(
    _fd: BorrowedFd<'_>,
    _buf: *mut u8,
    _len: usize,
) -> io::Result<usize> {
    Err(unsupported())
}

/// `write` all of raw memory.
///
/// # Safety
///
/// `buf` must be valid for reads of `len` bytes.
pub(crate) unsafe fn write_all_raw(
    _fd: BorrowedFd<'_>,
    _buf: *const u8,
    _len: usize,
) -> io::Result<()> {
    Err(unsupported())
}

/// Positional read until `buf` is full or the end of the file.
pub(crate) fn pread_full(_fd: BorrowedFd<'_>, _buf: &mut [u8], _offset: u64) -> io::Result<usize> {
    Err(unsupported())
}

/// Positional write of all of `buf`.
pub(crate) fn pwrite_all(_fd: BorrowedFd<'_>, _buf: &[u8], _offset: u64) -> io::Result<()> {
    Err(unsupported())
}

/// Advise sequential reading (advisory: nothing here).
pub(crate) fn advise_sequential(_fd: BorrowedFd<'_>) {}

// The hot paths' cheap calls (Linux: `linux_fast.rs`).

/// The size of the object behind `fd`.
pub(crate) fn file_end(_fd: BorrowedFd<'_>) -> io::Result<u64> {
    Err(unsupported())
}

/// Let another runnable thread have the CPU (nothing here).
pub(crate) fn yield_cpu() {}

/// The offset of the first hole at or after `from` in the object behind `fd`.
pub(crate) fn first_hole(_fd: BorrowedFd<'_>, _from: u64) -> io::Result<u64> {
    Err(unsupported())
}

// Files.

/// A new unnamed file in `dir`: `Ok(None)`, the caller uses a hidden temporary name.
pub(crate) fn open_unnamed_in(_dir: &Path) -> io::Result<Option<std::fs::File>> {
    Ok(None)
}

/// Give an unnamed file the name `path`.
pub(crate) fn link_unnamed(_fd: BorrowedFd<'_>, _path: &Path) -> io::Result<()> {
    Err(unsupported())
}

// Liveness locks.

/// Take the one-byte lock at `start` without waiting.
pub(crate) fn ofd_try_lock(_fd: BorrowedFd<'_>, _start: u64, _exclusive: bool) -> io::Result<bool> {
    Err(unsupported())
}

/// Release the lock at `start`.
pub(crate) fn ofd_unlock(_fd: BorrowedFd<'_>, _start: u64) {}

/// Whether another open file description holds a lock on the byte at `start`.
pub(crate) fn ofd_probe(_fd: BorrowedFd<'_>, _start: u64) -> io::Result<bool> {
    Err(unsupported())
}

// Space.

/// How much room the file system of `path` has.
pub(crate) fn statvfs(_path: &Path) -> io::Result<StatVfs> {
    Err(unsupported())
}

// The SIGBUS guard (sys/linux_guard.rs): none here, so every check is a size query.

/// A mapping registered with the `SIGBUS` guard: never, on this platform.
#[derive(Debug)]
pub(crate) struct Guarded(());

impl Guarded {
    /// Register a mapping: there is no guard here.
    pub(crate) fn register(_start: *mut u8, _len: usize, _writable: bool) -> Option<Self> {
        None
    }

    /// Whether a page faulted: never (no guard).
    pub(crate) fn tripped(&self) -> bool {
        false
    }
}

/// Involuntary context switches of the calling thread: unknown here, so a different number
/// each call (every gap on the clock then counts as contention, the safe answer).
pub(crate) fn involuntary_switches() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
