//! Listing the named segments of this machine (`/dev/shm` on Linux).

use crate::error::{Error, Result};
use crate::framed::{FramedSegment, HeaderInfo};
use crate::mode::Access;
use crate::segment::Segment;
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
    /// The name (what `SharedMemory(name)` and `shared_memory_object` take).
    pub name: String,
    /// Real size in bytes.
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

/// Describe one segment.
///
/// # Errors
///
/// [`ErrorKind::InvalidName`](crate::ErrorKind::InvalidName),
/// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
pub fn info(name: &str) -> Result<SegmentInfo> {
    let bare = crate::name::validate(name)?;
    let path = std::path::Path::new(sys::SHM_DIR).join(bare);
    let meta = std::fs::metadata(&path)
        .map_err(|e| Error::from_io(&e, "cannot stat the segment").with_segment(bare))?;
    Ok(describe(bare, &meta))
}

fn describe(name: &str, meta: &std::fs::Metadata) -> SegmentInfo {
    use std::os::unix::fs::MetadataExt;
    let detected = if meta.len() == 0 {
        Detected::Unframed
    } else {
        match Segment::open(name, Access::ReadOnly) {
            Err(e) => Detected::Unreadable(e.to_string()),
            Ok(seg) => {
                let (_, region) = seg.into_parts();
                let mut magic = [0u8; 8];
                if region.read_at(0, &mut magic).is_err() || magic != crate::framed::MAGIC {
                    Detected::Unframed
                } else {
                    match FramedSegment::from_region(region).and_then(|f| f.header()) {
                        Ok(h) => Detected::Framed(h),
                        Err(e) => Detected::BadFramed(e.to_string()),
                    }
                }
            }
        }
    };
    SegmentInfo {
        name: name.to_owned(),
        size: meta.len(),
        uid: meta.uid(),
        mode: meta.mode() & 0o7777,
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        detected,
    }
}

/// Every named segment, sorted by name. Entries that vanish while listing are skipped.
///
/// # Errors
///
/// An OS error when the shared-memory directory cannot be read.
pub fn list() -> Result<Vec<SegmentInfo>> {
    let dir = std::fs::read_dir(sys::SHM_DIR)
        .map_err(|e| Error::from_io(&e, "cannot list shared memory").with_segment(sys::SHM_DIR))?;
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // glibc's semaphores live here too, as sem.NAME.
        if name.starts_with("sem.") {
            continue;
        }
        out.push(describe(&name, &meta));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framed::FramedOptions;
    use crate::segment::ShmObject;

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
}
