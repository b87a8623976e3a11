//! The platform layer: every OS call the core makes goes through here.
//!
//! Linux is implemented ([`linux`], [`linux_fast`], [`linux_guard`], [`linux_space`]). Nothing outside this module calls `libc`,
//! names an `errno` value or an open flag, or builds a path in the shared-memory directory:
//! errors come back as `std::io::Error` (classified here, [`kind_of_errno`], [`is_fault`], ...)
//! and the core adds the segment name and the sentence.
//!
//! `unsupported.rs` is the seam a second platform fills: every function the core needs, with
//! the same signature, each failing with `ErrorKind::Unsupported`. It is compiled in place of
//! the Linux backend with `--cfg shmbridge_stub_backend` (`make check-stub`), so the list of
//! what a macOS (POSIX shm without `posix_fallocate` and futexes) or Windows (named file
//! mappings) port must provide is checked by the compiler, not kept by hand.

#[cfg(all(target_os = "linux", not(shmbridge_stub_backend)))]
mod linux;
#[cfg(all(target_os = "linux", not(shmbridge_stub_backend)))]
pub(crate) use linux::*;
#[cfg(all(target_os = "linux", not(shmbridge_stub_backend)))]
mod linux_fast;
#[cfg(all(target_os = "linux", not(shmbridge_stub_backend)))]
pub(crate) use linux_fast::*;
#[cfg(all(target_os = "linux", not(shmbridge_stub_backend)))]
mod linux_guard;
#[cfg(all(target_os = "linux", not(shmbridge_stub_backend)))]
pub(crate) use linux_guard::*;
#[cfg(all(target_os = "linux", not(shmbridge_stub_backend)))]
mod linux_space;
#[cfg(all(target_os = "linux", not(shmbridge_stub_backend)))]
pub(crate) use linux_space::*;

#[cfg(shmbridge_stub_backend)]
mod unsupported;
#[cfg(shmbridge_stub_backend)]
pub(crate) use unsupported::*;

#[cfg(not(any(target_os = "linux", shmbridge_stub_backend)))]
compile_error!(
    "shmbridge supports Linux for now; a port fills crates/shmbridge/src/sys/ (start from \
     sys/unsupported.rs, which `--cfg shmbridge_stub_backend` compiles)"
);

// The data every backend returns, defined once.

/// What `fstat` says of a descriptor, the parts we use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stat {
    pub size: u64,
    pub uid: u32,
    /// Permission bits only (`st_mode & 0o7777`).
    pub perm: u32,
    pub is_regular: bool,
    /// "regular file", "FIFO", "directory", ...: for messages.
    pub file_type: &'static str,
}

/// What `lstat` says of a path in the shared-memory directory, given as raw bytes (names need
/// not be UTF-8): the object itself, never what a symbolic link points to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkStat {
    pub stat: Stat,
    pub mtime_ns: i128,
    pub is_symlink: bool,
}

/// What `statvfs(2)` says about a file system (counts in units of `fragment_size`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StatVfs {
    pub(crate) fragment_size: u64,
    pub(crate) blocks: u64,
    pub(crate) blocks_free: u64,
    pub(crate) blocks_available: u64,
    pub(crate) files: u64,
    pub(crate) files_free: u64,
}
