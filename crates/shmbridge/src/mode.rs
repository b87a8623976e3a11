//! Open modes and access rights, in Boost.Interprocess's vocabulary.

/// How to open a named segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// Create it; fail with [`ErrorKind::AlreadyExists`](crate::ErrorKind::AlreadyExists) if
    /// the name is taken (`O_CREAT | O_EXCL`).
    CreateOnly,
    /// Open an existing one; fail with [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) if
    /// there is none.
    OpenOnly,
    /// Open it if it exists, create it otherwise (race-free: retried if it vanishes between
    /// the two attempts).
    OpenOrCreate,
}

impl OpenMode {
    /// The Boost-style label: `create_only`, `open_only` or `open_or_create`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateOnly => "create_only",
            Self::OpenOnly => "open_only",
            Self::OpenOrCreate => "open_or_create",
        }
    }
}

/// Access rights of a handle or a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read only: writes through the handle are refused.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

impl Access {
    /// `read_only` or `read_write`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read_only",
            Self::ReadWrite => "read_write",
        }
    }

    /// Whether writes are allowed.
    #[must_use]
    pub fn is_writable(self) -> bool {
        matches!(self, Self::ReadWrite)
    }
}

/// How a file is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapAccess {
    /// Read only, shared with every other mapping of the file.
    ReadOnly,
    /// Read and write; writes reach the file and every other mapping of it.
    ReadWrite,
    /// Copy on write: writes stay private to this mapping and never reach the file.
    CopyOnWrite,
}

/// Permission bits of a created segment when none are given: owner read and write, as
/// CPython's `SharedMemory` does.
pub const DEFAULT_PERMISSIONS: u32 = 0o600;
