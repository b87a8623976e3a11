//! Listing the named segments of this machine (`/dev/shm` on Linux).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::framed::{FramedSegment, HeaderInfo};
use crate::mode::MapAccess;
use crate::region::Region;
use crate::segment::ShmObject;
use crate::sys;

/// What the first bytes of a segment say it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detected {
    /// A valid shmbridge framed header.
    Framed(HeaderInfo),
    /// Anything else: raw bytes, a size-prefixed layout, or another program's data. (Raw and
    /// size-prefixed carry no marker, so they cannot be told apart.)
    Unframed,
    /// The segment starts with the framed magic but the header does not validate.
    BadFramed(String),
    /// We could not open it to look (another user's 0600 segment, say).
    Unreadable(String),
}

/// One named segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The name (what `SharedMemory(name)` and `shared_memory_object` take). A name that is
    /// not UTF-8 cannot be given to them: it is shown here escaped ([`crate::name::escaped`]),
    /// and [`raw_name`](Self::raw_name) holds its bytes. A UTF-8 name is exact, and may hold
    /// control characters: print [`display_name`](Self::display_name), never this.
    pub name: String,
    /// The name's bytes as they are in the directory.
    pub raw_name: Vec<u8>,
    /// Real size in bytes (of the entry itself: a symbolic link is not followed).
    pub size: u64,
    /// Owner's user id.
    pub uid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Last modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// What the header says.
    pub detected: Detected,
}

impl SegmentInfo {
    /// The name as a terminal may show it: control characters and bytes that are not UTF-8
    /// escaped ([`crate::name::escaped`]).
    #[must_use]
    pub fn display_name(&self) -> String {
        crate::name::escaped(&self.raw_name)
    }

    /// Whether [`name`](Self::name) is the exact name (it is UTF-8), usable with `open`.
    #[must_use]
    pub fn name_is_exact(&self) -> bool {
        std::str::from_utf8(&self.raw_name).is_ok()
    }

    /// Remove this entry by its raw name (works for names that are not UTF-8 too).
    ///
    /// # Errors
    ///
    /// As [`ShmObject::remove_raw`].
    pub fn remove(&self) -> Result<()> {
        ShmObject::remove_raw(&self.raw_name)
    }
}

/// Describe one segment. A symbolic link, FIFO or other non-regular entry is described as
/// itself (`lstat`: its own size, owner, mode and time), never as what it points to, and is
/// reported as [`Detected::Unreadable`] saying what it is.
///
/// # Errors
///
/// [`ErrorKind::InvalidName`](crate::ErrorKind::InvalidName),
/// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
pub fn info(name: &str) -> Result<SegmentInfo> {
    let bare = crate::name::validate(name)?;
    info_raw(bare.as_bytes())
}

/// As [`info`], for a name given as raw bytes (which need not be UTF-8).
///
/// # Errors
///
/// As [`info`].
pub fn info_raw(raw: &[u8]) -> Result<SegmentInfo> {
    let shown = crate::name::escaped(raw);
    if raw.is_empty() || raw.contains(&b'/') || raw.contains(&0) {
        return Err(Error::new(
            crate::ErrorKind::InvalidName,
            "invalid name: not a segment name",
        )
        .with_segment(shown));
    }
    let st = sys::shm_lstat(raw)
        .map_err(|e| Error::from_io(&e, "cannot stat the segment").with_segment(&shown))?;
    Ok(describe(raw, &st))
}

fn describe(raw: &[u8], st: &sys::LinkStat) -> SegmentInfo {
    let shown = crate::name::escaped(raw);
    let name = std::str::from_utf8(raw).map_or_else(|_| shown.clone(), str::to_owned);
    let detected = if st.is_symlink {
        let target = sys::shm_read_link(raw)
            .map_or_else(|_| String::from("?"), |t| crate::name::escaped(&t));
        Detected::Unreadable(format!(
            "{}/{shown} is a symbolic link (to {target}), not a segment: shmbridge never follows it",
            sys::SHM_DIR
        ))
    } else if !st.stat.is_regular {
        Detected::Unreadable(format!(
            "{}/{shown} is a {}, not a segment",
            sys::SHM_DIR,
            st.stat.file_type
        ))
    } else if st.stat.size == 0 {
        Detected::Unframed
    } else {
        probe(raw, &shown)
    };
    SegmentInfo {
        name,
        raw_name: raw.to_vec(),
        size: st.stat.size,
        uid: st.stat.uid,
        mode: st.stat.perm,
        mtime_ns: st.mtime_ns,
        detected,
    }
}

/// Open the entry read-only (by its raw name) and read what its header says, through the
/// descriptor (a sparse segment on a full `/dev/shm` cannot fault here).
fn probe(raw: &[u8], shown: &str) -> Detected {
    let fd = match sys::shm_open_bytes_read_only(raw) {
        Ok(fd) => fd,
        Err(e) => {
            return Detected::Unreadable(
                Error::from_io(&e, "cannot open it to look")
                    .with_segment(shown)
                    .to_string(),
            )
        }
    };
    let st = match sys::fstat(&fd) {
        Ok(st) if st.is_regular => st,
        Ok(st) => {
            return Detected::Unreadable(format!("{shown} is a {}, not a segment", st.file_type))
        }
        Err(e) => return Detected::Unreadable(e.to_string()),
    };
    let Ok(len) = usize::try_from(st.size) else {
        return Detected::Unframed;
    };
    if len == 0 {
        return Detected::Unframed;
    }
    let region = match Region::map_fd(
        Arc::new(fd),
        0,
        len,
        MapAccess::ReadOnly,
        false,
        Arc::from(shown),
        false,
    ) {
        Ok(r) => r,
        Err(e) => return Detected::Unreadable(e.to_string()),
    };
    let mut magic = [0u8; 8];
    if region.read_at(0, &mut magic).is_err() || magic != crate::framed::MAGIC {
        return Detected::Unframed;
    }
    match FramedSegment::from_region(region).and_then(|f| f.header()) {
        Ok(h) => Detected::Framed(h),
        Err(e) => Detected::BadFramed(e.to_string()),
    }
}

/// Every named segment, sorted by name, names that are not UTF-8 included (shown escaped,
/// see [`SegmentInfo::name`]). Entries that vanish while listing are skipped.
///
/// # Errors
///
/// An OS error when the shared-memory directory cannot be read.
pub fn list() -> Result<Vec<SegmentInfo>> {
    let names = sys::shm_names()
        .map_err(|e| Error::from_io(&e, "cannot list shared memory").with_path(crate::shm_dir()))?;
    let mut out = Vec::new();
    for raw in &names {
        let Ok(st) = sys::shm_lstat(raw) else {
            continue;
        };
        if !st.stat.is_regular {
            continue;
        }
        out.push(describe(raw, &st));
    }
    out.sort_by(|a, b| a.raw_name.cmp(&b.raw_name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framed::FramedOptions;
    use crate::segment::Segment;

    struct Rm(Vec<String>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = ShmObject::remove(n);
            }
        }
    }

    #[test]
    fn lists_raw_and_framed_segments_with_details() {
        let raw = crate::name::unique("shmb_t_lsraw_");
        let fr = crate::name::unique("shmb_t_lsfr_");
        let _rm = Rm(vec![raw.clone(), fr.clone()]);
        let _a = Segment::create(&raw, 300).unwrap();
        let b = FramedSegment::create(&fr, 1000, &FramedOptions::default()).unwrap();
        b.write(b"xyz").unwrap();
        let all = list().unwrap();
        let a_info = all.iter().find(|i| i.name == raw).expect("raw listed");
        assert_eq!(a_info.size, 300);
        assert_eq!(a_info.mode, 0o600);
        assert_eq!(a_info.detected, Detected::Unframed);
        let b_info = all.iter().find(|i| i.name == fr).expect("framed listed");
        match &b_info.detected {
            Detected::Framed(h) => {
                assert_eq!(h.payload_len, 3);
                assert_eq!(h.capacity, 1000);
                assert!(h.creator_alive());
            }
            other => panic!("expected framed, got {other:?}"),
        }
        assert_eq!(info(&fr).unwrap().size, 1128);
        assert_eq!(
            info("shmb_t_no_such_segment").unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
    }

    #[test]
    fn names_that_are_not_utf8_or_not_printable_are_listed_escaped_and_removable() {
        struct RmPath(std::path::PathBuf);
        impl Drop for RmPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let base = crate::name::unique("shmb_t_lsodd_");
        let mut odd = base.as_bytes().to_vec();
        odd.extend_from_slice(b"\xff\x1b[2J\nrow");
        let path = sys::shm_path(&odd);
        std::fs::write(&path, b"raw bytes").unwrap();
        let _rm = RmPath(path.clone());
        let all = list().unwrap();
        let found = all
            .iter()
            .find(|i| i.raw_name == odd)
            .expect("a name that is not UTF-8 is listed");
        assert!(!found.name_is_exact());
        let shown = found.display_name();
        assert!(shown.ends_with("\\xff\\e[2J\\nrow"), "{shown}");
        assert!(
            !shown.contains('\n') && !shown.contains('\u{1b}'),
            "{shown}"
        );
        assert_eq!(found.size, 9);
        assert_eq!(info_raw(&odd).unwrap().size, 9);
        found.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn info_describes_a_symlink_itself() {
        let name = crate::name::unique("shmb_t_lslink_");
        let path = sys::shm_path(name.as_bytes());
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        let _rm = Rm(vec![name.clone()]);
        let i = info(&name).unwrap();
        assert_eq!(i.size, "/etc/passwd".len() as u64, "the link's own size");
        match &i.detected {
            Detected::Unreadable(why) => assert!(why.contains("symbolic link"), "{why}"),
            other => panic!("expected the link described as such, got {other:?}"),
        }
        assert!(
            list().unwrap().iter().all(|i| i.name != name),
            "ls lists segments only"
        );
    }
}
