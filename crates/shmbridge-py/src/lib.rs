//! The Python extension module `shmbridge._native`. Filled in by the Python issue.

/// The core library this module wraps.
pub use shmbridge as core;
