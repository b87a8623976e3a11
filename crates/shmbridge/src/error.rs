//! The one error type of the core.
//!
//! Every fallible operation returns [`Error`]: a machine-readable [`ErrorKind`], the name of
//! the segment (or path) involved when there is one, the OS `errno` when the failure came from
//! the operating system, and a sentence saying what went wrong. The fronts map the kind onto
//! their own vocabulary (a `shmb_result` code in C, `shmbridge::error` in C++, the stdlib's
//! exception classes in Python), so the kinds are stable and numbered.

use std::fmt;
use std::io;

/// What went wrong, independent of where. Stable: the C ABI exposes these numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum ErrorKind {
    /// A name that cannot be a segment name (empty, contains `/` or NUL, too long).
    InvalidName = 1,
    /// A size of zero where one is needed, or larger than the platform can map.
    InvalidSize = 2,
    /// Any other argument out of its range (an unknown mode, an offset past the end).
    InvalidArgument = 3,
    /// `create_only` on a name that exists.
    AlreadyExists = 4,
    /// `open_only` on a name (or a path) that does not exist.
    NotFound = 5,
    /// The OS refused access (`EACCES`/`EPERM`), or a write through a read-only handle.
    PermissionDenied = 6,
    /// No space left to reserve the segment (`ENOSPC`, e.g. `/dev/shm` is full).
    NoSpace = 7,
    /// The segment does not start with the framed magic: it is not a shmbridge framed segment.
    BadMagic = 8,
    /// A framed segment of a major version this library does not know.
    UnsupportedVersion = 9,
    /// A header whose fields do not add up (lengths past the real size, bad alignment, ...).
    CorruptHeader = 10,
    /// The segment is smaller than its header or its declared lengths: it was truncated.
    Truncated = 11,
    /// An access past the end of a mapping or a payload.
    OutOfBounds = 12,
    /// The payload does not match its checksum.
    ChecksumMismatch = 13,
    /// A wait ran out of time.
    Timeout = 14,
    /// The writer marked the segment closed (or vanished) before the awaited data arrived.
    WriterClosed = 15,
    /// The peer of a transfer went away (killed, or closed early).
    PeerGone = 16,
    /// The object was already closed.
    Closed = 17,
    /// The operation is not supported on this platform or for this kind of segment.
    Unsupported = 18,
    /// Any other OS error; `errno` says which.
    Os = 19,
    /// The caller asked to stop (a progress callback returned `ControlFlow::Break`); the
    /// operation cleaned up as for any other failure.
    Aborted = 20,
    /// The payload changed while it was being read (a writer that does not keep to the
    /// protocol, or a file that changed while it was being sent): what was read is not one
    /// consistent version of it.
    Changed = 21,
}

impl ErrorKind {
    /// Every kind, in the order of their numbers (1, 2, ...). A new kind takes the next
    /// number and goes at the end here; the fronts' tables are checked against this list.
    pub const ALL: [ErrorKind; 21] = [
        Self::InvalidName,
        Self::InvalidSize,
        Self::InvalidArgument,
        Self::AlreadyExists,
        Self::NotFound,
        Self::PermissionDenied,
        Self::NoSpace,
        Self::BadMagic,
        Self::UnsupportedVersion,
        Self::CorruptHeader,
        Self::Truncated,
        Self::OutOfBounds,
        Self::ChecksumMismatch,
        Self::Timeout,
        Self::WriterClosed,
        Self::PeerGone,
        Self::Closed,
        Self::Unsupported,
        Self::Os,
        Self::Aborted,
        Self::Changed,
    ];

    /// The kind's stable number (what the C ABI's `shmb_result` uses).
    #[must_use]
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The kind whose number is `code`, if there is one.
    #[must_use]
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The kind's name as the fronts spell it (`"NotFound"`, ...): the Python exceptions'
    /// `kind` attribute and the CLI's tables use it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidName => "InvalidName",
            Self::InvalidSize => "InvalidSize",
            Self::InvalidArgument => "InvalidArgument",
            Self::AlreadyExists => "AlreadyExists",
            Self::NotFound => "NotFound",
            Self::PermissionDenied => "PermissionDenied",
            Self::NoSpace => "NoSpace",
            Self::BadMagic => "BadMagic",
            Self::UnsupportedVersion => "UnsupportedVersion",
            Self::CorruptHeader => "CorruptHeader",
            Self::Truncated => "Truncated",
            Self::OutOfBounds => "OutOfBounds",
            Self::ChecksumMismatch => "ChecksumMismatch",
            Self::Timeout => "Timeout",
            Self::WriterClosed => "WriterClosed",
            Self::PeerGone => "PeerGone",
            Self::Closed => "Closed",
            Self::Unsupported => "Unsupported",
            Self::Os => "Os",
            Self::Aborted => "Aborted",
            Self::Changed => "Changed",
        }
    }

    /// A short, stable, lower-case label for the kind.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidName => "invalid name",
            Self::InvalidSize => "invalid size",
            Self::InvalidArgument => "invalid argument",
            Self::AlreadyExists => "already exists",
            Self::NotFound => "not found",
            Self::PermissionDenied => "permission denied",
            Self::NoSpace => "no space left",
            Self::BadMagic => "not a framed segment (bad magic)",
            Self::UnsupportedVersion => "unsupported layout version",
            Self::CorruptHeader => "corrupt header",
            Self::Truncated => "segment truncated",
            Self::OutOfBounds => "out of bounds",
            Self::ChecksumMismatch => "checksum mismatch",
            Self::Timeout => "timed out",
            Self::WriterClosed => "writer closed",
            Self::PeerGone => "peer gone",
            Self::Closed => "closed",
            Self::Unsupported => "unsupported",
            Self::Os => "operating system error",
            Self::Aborted => "aborted",
            Self::Changed => "changed while being read",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every fallible operation in shmbridge.
///
/// Its `Display` names the segment and the problem, and ends with the OS error when there is
/// one, e.g. `segment "frames": create_only: already exists (os error 17: File exists)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    segment: Option<String>,
    /// Whether `segment` holds a file path rather than a segment name.
    is_path: bool,
    errno: Option<i32>,
    detail: String,
}

/// The result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a sentence saying what went wrong.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            segment: None,
            is_path: false,
            errno: None,
            detail: detail.into(),
        }
    }

    /// An error from an OS call. The kind follows the errno (EEXIST -> `AlreadyExists`, ...).
    pub fn os(errno: i32, detail: impl Into<String>) -> Self {
        Self {
            kind: crate::sys::kind_of_errno(errno),
            segment: None,
            is_path: false,
            errno: Some(errno),
            detail: detail.into(),
        }
    }

    /// An error from an [`io::Error`].
    pub fn from_io(err: &io::Error, detail: impl Into<String>) -> Self {
        if let Some(errno) = err.raw_os_error() {
            Self::os(errno, detail)
        } else {
            let kind = match err.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
                io::ErrorKind::InvalidInput => ErrorKind::InvalidArgument,
                io::ErrorKind::TimedOut => ErrorKind::Timeout,
                io::ErrorKind::UnexpectedEof => ErrorKind::Truncated,
                io::ErrorKind::Unsupported => ErrorKind::Unsupported,
                _ => ErrorKind::Os,
            };
            Self::new(kind, format!("{}: {err}", detail.into()))
        }
    }

    /// Attach the name of the segment this error is about.
    #[must_use]
    pub fn with_segment(mut self, name: impl Into<String>) -> Self {
        self.segment = Some(name.into());
        self.is_path = false;
        self
    }

    /// Attach the path of the file this error is about.
    #[must_use]
    pub fn with_path(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.segment = Some(path.as_ref().display().to_string());
        self.is_path = true;
        self
    }

    /// Attach a segment name or a file path, as `is_path` says.
    pub(crate) fn with_subject(self, label: &str, is_path: bool) -> Self {
        if is_path {
            self.with_path(label)
        } else {
            self.with_segment(label)
        }
    }

    /// Whether [`segment`](Self::segment) is a file path rather than a segment name.
    #[must_use]
    pub fn is_path(&self) -> bool {
        self.is_path
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The segment name, or the file path (see [`is_path`](Self::is_path)), involved.
    #[must_use]
    pub fn segment(&self) -> Option<&str> {
        self.segment.as_deref()
    }

    /// The OS error number, when the OS reported the failure.
    #[must_use]
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// The sentence describing the failure, without the segment name or OS error.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.segment {
            Some(path) if self.is_path => write!(f, "{path:?}: ")?,
            Some(seg) => write!(f, "segment {seg:?}: ")?,
            None => {}
        }
        f.write_str(&self.detail)?;
        if let Some(errno) = self.errno {
            write!(f, " (os error {errno}: {})", strerror(errno))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        if let Some(errno) = err.errno {
            return io::Error::new(io::Error::from_raw_os_error(errno).kind(), err);
        }
        let kind = match err.kind {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidName | ErrorKind::InvalidSize | ErrorKind::InvalidArgument => {
                io::ErrorKind::InvalidInput
            }
            ErrorKind::Timeout => io::ErrorKind::TimedOut,
            ErrorKind::Truncated => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}

/// The OS description of an errno, without the " (os error N)" suffix std adds.
fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eexist() -> i32 {
        crate::sys::already_exists_error().raw_os_error().unwrap()
    }

    #[test]
    fn display_names_segment_problem_and_os_error() {
        let e = Error::os(eexist(), "create_only: already exists").with_segment("frames");
        let s = e.to_string();
        assert!(s.starts_with("segment \"frames\": create_only"), "{s}");
        assert!(s.contains(&format!("os error {}", eexist())), "{s}");
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(e.errno(), Some(eexist()));
    }

    #[test]
    fn io_errors_keep_their_errno_and_kind() {
        let e = Error::from_io(&crate::sys::already_exists_error(), "x");
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(e.errno(), Some(eexist()));
        let e = Error::from_io(&io::Error::new(io::ErrorKind::TimedOut, "slow"), "x");
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(e.errno(), None);
    }

    #[test]
    fn every_kind_is_listed_once_with_its_number_and_name() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.code() as usize, i + 1, "{k:?} is at its number's place");
            assert_eq!(ErrorKind::from_code(k.code()), Some(*k));
            assert_eq!(format!("{k:?}"), k.name());
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(ErrorKind::ALL.len() as u32 + 1), None);
    }

    #[test]
    fn converts_to_io_error_keeping_kind() {
        let e: io::Error = Error::new(ErrorKind::NotFound, "gone").into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e: io::Error = Error::os(eexist(), "x").into();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    }
}
