//! The exit codes: one table, from which the code for every failure, the top-level `--help`,
//! the man page and the table in `docs/CLI.md` all come.

use std::fmt::Write as _;

use shmbridge::ErrorKind;

/// One exit code: what it means, and which of the core's error kinds lead to it.
#[derive(Debug, Clone, Copy)]
pub struct ExitStatus {
    /// The process exit code.
    pub code: u8,
    /// What it means (Markdown: code spans in backquotes).
    pub meaning: &'static str,
    /// The core's error kinds that exit with this code. Code 1 also covers every kind not
    /// listed anywhere.
    pub kinds: &'static [ErrorKind],
}

/// Success.
pub const SUCCESS: u8 = 0;
/// Any failure not listed elsewhere in [`EXIT_STATUSES`].
pub const OTHER: u8 = 1;
/// Bad arguments (what clap reports as a usage error).
pub const USAGE: u8 = 2;
/// Ctrl-C or SIGTERM.
pub const INTERRUPTED: u8 = 130;

/// Every exit code of the command, in order.
pub const EXIT_STATUSES: &[ExitStatus] = &[
    ExitStatus {
        code: SUCCESS,
        meaning: "success (`recv`: every byte arrived and its CRC-32 matched)",
        kinds: &[],
    },
    ExitStatus {
        code: OTHER,
        meaning: "any other error (I/O error, `/dev/shm` full, a directory or special file \
                  given to `send` or as `recv`'s target, a name that is not a regular file)",
        kinds: &[
            ErrorKind::InvalidArgument,
            ErrorKind::NoSpace,
            ErrorKind::OutOfBounds,
            ErrorKind::Closed,
            ErrorKind::Unsupported,
            ErrorKind::Os,
        ],
    },
    ExitStatus {
        code: USAGE,
        meaning: "usage error (bad arguments, invalid segment name or size)",
        kinds: &[ErrorKind::InvalidName, ErrorKind::InvalidSize],
    },
    ExitStatus {
        code: 3,
        meaning: "not found (no such file or segment)",
        kinds: &[ErrorKind::NotFound],
    },
    ExitStatus {
        code: 4,
        meaning: "already exists (the segment name is taken, a stream already has its \
                  receiver, or every reader place of a channel is taken)",
        kinds: &[ErrorKind::AlreadyExists],
    },
    ExitStatus {
        code: 5,
        meaning: "timed out (no sender or receiver came, or it stalled, within `--timeout`)",
        kinds: &[ErrorKind::Timeout],
    },
    ExitStatus {
        code: 6,
        meaning: "the peer died or gave up (sender or receiver killed, aborted, or closed \
                  early)",
        kinds: &[ErrorKind::PeerGone, ErrorKind::WriterClosed],
    },
    ExitStatus {
        code: 7,
        meaning: "the data did not verify (checksum or length mismatch, bad or corrupt header, \
                  the file or payload changed while it was being read)",
        kinds: &[
            ErrorKind::ChecksumMismatch,
            ErrorKind::Changed,
            ErrorKind::Truncated,
            ErrorKind::BadMagic,
            ErrorKind::CorruptHeader,
            ErrorKind::UnsupportedVersion,
        ],
    },
    ExitStatus {
        code: 8,
        meaning: "permission denied (a target directory that cannot be written, or a segment \
                  owned by another user that `--allow-owner` does not allow)",
        kinds: &[ErrorKind::PermissionDenied],
    },
    ExitStatus {
        code: INTERRUPTED,
        meaning: "interrupted (Ctrl-C or SIGTERM): the transfer stopped cleanly, as for any \
                  failure",
        kinds: &[ErrorKind::Aborted],
    },
];

/// The exit code for a failure of `kind`.
#[must_use]
pub fn exit_code_for(kind: ErrorKind) -> u8 {
    EXIT_STATUSES
        .iter()
        .find(|s| s.kinds.contains(&kind))
        .map_or(OTHER, |s| s.code)
}

/// The table as plain text, for `--help` and the man page.
#[must_use]
pub fn plain_table() -> String {
    let mut s = String::from("Exit codes:\n");
    for st in EXIT_STATUSES {
        let _ = writeln!(s, "{:>3}  {}", st.code, st.meaning.replace('`', ""));
    }
    s.pop();
    s
}

/// The table in Markdown, for `docs/CLI.md`.
#[must_use]
pub fn markdown_table() -> String {
    let mut s = String::from("| code | meaning | the core's error kinds |\n|---|---|---|\n");
    for st in EXIT_STATUSES {
        let kinds: Vec<String> = st.kinds.iter().map(|k| format!("`{k:?}`")).collect();
        let kinds = match (st.code, kinds.is_empty()) {
            (OTHER, _) => format!("{}, and any other", kinds.join(", ")),
            (USAGE, _) => format!("{} (and any argument clap rejects)", kinds.join(", ")),
            (_, true) => "-".to_owned(),
            _ => kinds.join(", "),
        };
        let _ = writeln!(s, "| {} | {} | {kinds} |", st.code, st.meaning);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_code() {
        let mut seen = Vec::new();
        for st in EXIT_STATUSES {
            for k in st.kinds {
                assert!(!seen.contains(k), "{k:?} is listed twice");
                seen.push(*k);
            }
        }
        assert_eq!(exit_code_for(ErrorKind::NotFound), 3);
        assert_eq!(exit_code_for(ErrorKind::Aborted), INTERRUPTED);
        assert_eq!(exit_code_for(ErrorKind::InvalidName), USAGE);
        assert_eq!(exit_code_for(ErrorKind::Os), OTHER);
        assert_eq!(exit_code_for(ErrorKind::Changed), 7);
        for kind in ErrorKind::ALL {
            assert!(
                seen.contains(&kind),
                "{kind:?} is listed under an exit code"
            );
        }
        let codes: Vec<u8> = EXIT_STATUSES.iter().map(|s| s.code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted, "codes are unique and in order");
    }
}
