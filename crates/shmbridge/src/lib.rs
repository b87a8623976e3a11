//! # shmbridge
//!
//! Shared memory and memory-mapped files that Rust, C, C++ and Python processes share.
//!
//! - [`Segment`] / [`ShmObject`]: named POSIX shared memory (`/dev/shm/<name>` on Linux), the
//!   very objects CPython's `multiprocessing.shared_memory.SharedMemory(name)` and Boost's
//!   `shared_memory_object` open. Boost's open modes ([`OpenMode`]) and access ([`Access`]).
//! - [`Region`]: a mapping, with bounds-checked copies and typed little-endian fields.
//! - [`FileMapping`] / [`map_file`]: files mapped read-only, read-write or copy-on-write.
//! - [`Region::anonymous`]: anonymous memory that stays shared across `fork()`.
//! - Three layouts, specified byte by byte in `docs/SPEC.md`: raw (no header, what the stdlib
//!   and Boost samples use), [`size_prefixed`] (an 8-byte length, the seed's mmap samples) and
//!   [`framed`] (a validated, versioned header with a seqlock, a futex word and a checksum).
//! - [`list()`]: the segments on this machine, with a header summary for framed ones.
//! - [`send_file`] / [`recv_file`]: hand a file of any size to another process, one-shot or
//!   streamed through a fixed ring ([`stream`]), verified by CRC-32 and renamed into place.
//!
//! - [`Wait`]: the deadline, inactivity limit and interrupt hook every blocking call takes.
//!
//! Every fallible call returns [`Error`], which names the segment and keeps the OS errno.
//!
//! ```
//! use shmbridge::{Access, Segment};
//! # let name = shmbridge::name::unique("doc_");
//! let seg = Segment::create(&name, 1024)?;          // create_only, 0600, fully reserved
//! seg.set(4, -1i32)?;                                 // the seed's struct.pack("i", -1) at 4
//! let other = Segment::open(&name, Access::ReadOnly)?;
//! assert_eq!(other.get::<i32>(4)?, -1);
//! seg.unlink()?;                                      // removing a name is always explicit
//! # Ok::<(), shmbridge::Error>(())
//! ```

pub mod array;
pub mod channel;
mod error;
mod file;
pub mod framed;
mod list;
mod mode;
pub mod name;
mod region;
mod segment;
pub mod size_prefixed;
pub mod space;
pub mod stream;
mod sync;
mod sys;
pub mod transfer;

pub use array::ArraySegment;
pub use channel::{ChannelOptions, ChannelReader, ChannelWriter, Policy};
pub use error::{Error, ErrorKind, Result};
pub use file::{map_file, FileMapping};
pub use framed::{FramedOptions, FramedSegment, HeaderInfo, Kind, Snapshot};
pub use list::{info, info_raw, list, Detected, SegmentInfo};
pub use mode::{Access, MapAccess, OpenMode, DEFAULT_PERMISSIONS};
pub use region::{Region, Scalar};
pub use segment::{OwnerPolicy, Segment, SegmentOptions, ShmObject, MAX_SIZE};
pub use stream::{StreamReader, StreamWriter};
pub use sync::{duration_from_secs, Hook, Wait, TICK};
pub use transfer::{
    recv_file, recv_file_with_owner, recv_to_fd, recv_to_fd_with_owner, send_file,
    Mode as TransferMode, Progress, ProgressFn, RecvOptions, Report, SendOptions,
};

/// The directory where named segments appear as files on this platform (`/dev/shm`).
#[must_use]
pub fn shm_dir() -> &'static std::path::Path {
    std::path::Path::new(sys::SHM_DIR)
}
