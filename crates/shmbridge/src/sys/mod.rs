//! The platform layer: every OS call the core makes goes through here.
//!
//! Linux is implemented; the module boundary leaves room for macOS (POSIX shm without
//! `posix_fallocate` and futexes) and Windows (named file mappings) as further files here.
//! Nothing outside this module calls `libc` directly.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(target_os = "linux")]
mod linux_fast;
#[cfg(target_os = "linux")]
pub(crate) use linux_fast::*;
#[cfg(target_os = "linux")]
mod linux_space;
#[cfg(target_os = "linux")]
pub(crate) use linux_space::*;

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmbridge supports Linux for now; macOS and Windows belong in crates/shmbridge/src/sys/"
);
