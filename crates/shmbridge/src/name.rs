//! Segment names.
//!
//! A segment name is what CPython's `SharedMemory(name)` and Boost's
//! `shared_memory_object(..., "name", ...)` take: a plain file name, which the platform opens
//! as `shm_open("/" + name)` (on Linux the object lives at `/dev/shm/<name>`). One leading `/`
//! is accepted and dropped, so `"/frames"` and `"frames"` are the same segment, as they are
//! for glibc's `shm_open`; every other `/` is rejected.

use crate::error::{Error, ErrorKind, Result};
use crate::sys;

/// Check a segment name and return it without its optional leading `/`.
///
/// # Errors
///
/// [`ErrorKind::InvalidName`] when the name is empty, is `.` or `..`, contains `/` (after an
/// optional leading one) or a NUL byte, or is longer than the platform allows
/// ([`max_name_len`]: 255 bytes on Linux, 31 on macOS).
pub fn validate(name: &str) -> Result<&str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let fail = |why: String| Err(Error::new(ErrorKind::InvalidName, why).with_segment(name));
    if bare.is_empty() {
        return fail("invalid name: a segment name must not be empty".into());
    }
    if bare == "." || bare == ".." {
        return fail(format!(
            "invalid name: {bare:?} is not a valid segment name"
        ));
    }
    if bare.contains('/') {
        return fail(
            "invalid name: a segment name must not contain '/' (it is a single name, not a path)"
                .into(),
        );
    }
    if bare.contains('\0') {
        return fail("invalid name: a segment name must not contain a NUL byte".into());
    }
    if bare.len() > sys::MAX_NAME_LEN {
        return fail(format!(
            "invalid name: {} bytes long, the platform allows at most {}",
            bare.len(),
            sys::MAX_NAME_LEN
        ));
    }
    Ok(bare)
}

/// A name (or any file name) as a terminal may show it: printable characters as they are,
/// everything else escaped, so a name can neither clear the screen (`\e[2J`), fake a table
/// row (a newline) nor vanish (bytes that are not UTF-8). Escapes: `\\` for a backslash,
/// `\n`, `\t`, `\r`, `\e` for ESC, and `\xNN` for any other control character or byte
/// that is not part of valid UTF-8 (`\u{NNNN}` for Unicode format and control characters
/// such as U+202E, which reorder text). A name that needs no escape comes back unchanged.
#[must_use]
pub fn escaped(raw: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\u{1b}' => out.push_str("\\e"),
                c if (c as u32) < 0x80 && c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || is_format_char(c) => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Unicode format characters that change how text around them displays (bidirectional
/// overrides and isolates, zero-width joiners and spaces, the BOM).
fn is_format_char(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFEFF | 0xAD)
}

/// The longest segment name (in bytes, without the leading `/`) this platform accepts.
#[must_use]
pub fn max_name_len() -> usize {
    sys::MAX_NAME_LEN
}

/// The segment name a file is sent under when none is given: its file name with every
/// character other than ASCII letters, digits, `.`, `_` and `-` replaced by `_`, a leading `.`
/// prefixed with `_` (so it is never `.`, `..` or hidden), cut to [`max_name_len`] bytes.
/// The command line and the Python package both use it, so they agree on names.
#[must_use]
pub fn for_file(path: &std::path::Path) -> String {
    let base = path
        .file_name()
        .map_or_else(|| "shmbridge".into(), |n| n.to_string_lossy().into_owned());
    let mut safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.starts_with('.') {
        safe.insert(0, '_');
    }
    safe.truncate(sys::MAX_NAME_LEN);
    safe
}

/// A fresh name that no other process is likely to use: `prefix` followed by the pid and
/// random hex digits, like CPython's `psm_...` names.
#[must_use]
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mix =
        u64::from(nanos) ^ (u64::from(n) << 32) ^ u64::from(std::process::id()).rotate_left(17);
    format!(
        "{prefix}{}_{n}_{:08x}",
        std::process::id(),
        (mix.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_shows_every_name_safely() {
        assert_eq!(escaped(b"plain-name_1.bin"), "plain-name_1.bin");
        assert_eq!(escaped("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(escaped(b"\x1b[2Jgone"), "\\e[2Jgone");
        assert_eq!(escaped(b"a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(escaped(b"x\x07\x7f"), "x\\x07\\x7f");
        assert_eq!(escaped(b"back\\slash"), "back\\\\slash");
        assert_eq!(escaped(b"bad\xff\xfeutf8"), "bad\\xff\\xfeutf8");
        assert_eq!(escaped("rtl\u{202e}txt".as_bytes()), "rtl\\u{202e}txt");
        // Escaping is unambiguous: different names never look the same.
        assert_ne!(escaped(b"\\x41"), escaped(b"A"));
        assert_ne!(escaped(b"\\x41"), escaped(b"\x41"));
    }

    #[test]
    fn accepts_plain_and_slash_prefixed_names() {
        assert_eq!(validate("frames").unwrap(), "frames");
        assert_eq!(validate("/frames").unwrap(), "frames");
        assert_eq!(
            validate(&"x".repeat(max_name_len())).unwrap().len(),
            max_name_len()
        );
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        for (name, why) in [
            ("", "empty"),
            ("/", "empty"),
            ("a/b", "'/'"),
            ("//a", "'/'"),
            ("a\0b", "NUL"),
            ("..", "not a valid"),
        ] {
            let err = validate(name).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{name:?}");
            assert!(err.to_string().contains(why), "{name:?}: {err}");
            assert_eq!(err.segment(), Some(name));
        }
        let long = "x".repeat(max_name_len() + 1);
        let err = validate(&long).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn names_for_files_are_valid_segment_names() {
        use std::path::Path;
        assert_eq!(for_file(Path::new("/x/my file.bin")), "my_file.bin");
        assert_eq!(for_file(Path::new(".hidden")), "_.hidden");
        assert_eq!(for_file(Path::new("/")), "shmbridge");
        assert_eq!(for_file(Path::new("data/résumé.pdf")), "r_sum_.pdf");
        let long = for_file(Path::new(&"x".repeat(1000)));
        assert_eq!(long.len(), max_name_len());
        validate(&long).unwrap();
    }

    #[test]
    fn unique_names_are_unique_and_valid() {
        let a = unique("t_");
        let b = unique("t_");
        assert_ne!(a, b);
        validate(&a).unwrap();
    }
}
