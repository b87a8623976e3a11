//! The size-prefixed layout: an 8-byte little-endian unsigned length, then that many bytes.
//!
//! This is what the seed's `mmap` writer and reader use (`struct.pack("Q", size)` then the
//! data), over a named segment or a file. See `docs/SPEC.md`, "Layout 2". The helpers work on
//! any [`Region`], so the same code reads a segment, a file mapping or an anonymous mapping.

use crate::error::{Error, ErrorKind, Result};
use crate::mode::OpenMode;
use crate::region::Region;
use crate::segment::{Segment, SegmentOptions};

/// Size of the length prefix.
pub const PREFIX_LEN: u64 = 8;

/// Read and validate the length prefix of `region`.
///
/// # Errors
///
/// [`ErrorKind::Truncated`] when the region is shorter than the prefix or than the length it
/// declares.
pub fn payload_len(region: &Region) -> Result<u64> {
    if (region.len() as u64) < PREFIX_LEN {
        return Err(Error::new(
            ErrorKind::Truncated,
            format!(
                "too small for a size-prefixed layout: {} bytes, the prefix alone is 8",
                region.len()
            ),
        )
        .with_segment(region.label()));
    }
    let len: u64 = region.get(0)?;
    let room = region.len() as u64 - PREFIX_LEN;
    if len > room {
        return Err(Error::new(
            ErrorKind::Truncated,
            format!("the size prefix declares {len} bytes but only {room} follow it"),
        )
        .with_segment(region.label()));
    }
    Ok(len)
}

/// Copy the payload out of `region`.
///
/// # Errors
///
/// As [`payload_len`], and [`Region::read_at`].
pub fn read(region: &Region) -> Result<Vec<u8>> {
    let len = payload_len(region)?;
    let mut out = vec![0u8; len as usize];
    region.read_at(PREFIX_LEN, &mut out)?;
    Ok(out)
}

/// Write `data` after a length prefix into `region`.
///
/// # Errors
///
/// [`ErrorKind::OutOfBounds`] when `8 + data.len()` does not fit; those of [`Region::write_at`].
pub fn write(region: &Region, data: &[u8]) -> Result<()> {
    region.check_range(PREFIX_LEN, data.len())?;
    region.write_at(PREFIX_LEN, data)?;
    region.set(0, data.len() as u64)
}

/// Create a named segment of exactly `8 + data.len()` bytes holding `data`, size-prefixed.
///
/// # Errors
///
/// Those of [`Segment::open_with`] and [`write`].
pub fn create(name: &str, data: &[u8], opts: &SegmentOptions) -> Result<Segment> {
    let seg = Segment::open_with(
        name,
        OpenMode::CreateOnly,
        PREFIX_LEN + data.len() as u64,
        opts,
    )?;
    if let Err(e) = write(seg.region(), data) {
        let _ = seg.unlink();
        return Err(e);
    }
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let r = Region::anonymous(64).unwrap();
        write(&r, b"hello").unwrap();
        assert_eq!(r.get::<u64>(0).unwrap(), 5);
        assert_eq!(read(&r).unwrap(), b"hello");
        assert_eq!(
            write(&r, &[0u8; 57]).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
        r.set(0, 57u64).unwrap();
        let err = payload_len(&r).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated);
        assert!(err.to_string().contains("declares 57"), "{err}");
        let tiny = Region::anonymous(7).unwrap();
        assert_eq!(payload_len(&tiny).unwrap_err().kind(), ErrorKind::Truncated);
    }
}
