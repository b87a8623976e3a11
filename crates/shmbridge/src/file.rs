//! Memory-mapped files (Boost's `file_mapping`): read-only, read-write or copy-on-write, of a
//! whole file or a range of it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::mode::MapAccess;
use crate::region::Region;
use crate::sys;

/// An open file that can be mapped, whole or in part, as often as needed.
#[derive(Debug)]
pub struct FileMapping {
    fd: Arc<OwnedFd>,
    path: PathBuf,
    label: Arc<str>,
    writable: bool,
}

impl FileMapping {
    /// Open `path` for mapping. `writable` opens it read-write (needed for
    /// [`MapAccess::ReadWrite`]); copy-on-write and read-only mappings need only read access.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`], or
    /// [`ErrorKind::InvalidArgument`] when `path` is not a regular file.
    pub fn open(path: impl AsRef<Path>, writable: bool) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let label: Arc<str> = Arc::from(path.display().to_string());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&path)
            .map_err(|e| {
                Error::from_io(&e, "cannot open the file for mapping").with_path(&*label)
            })?;
        let fd = OwnedFd::from(file);
        let st =
            sys::fstat(&fd).map_err(|e| Error::from_io(&e, "fstat failed").with_path(&*label))?;
        if !st.is_regular {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "not a regular file: only files can be mapped",
            )
            .with_path(&*label));
        }
        Ok(Self {
            fd: Arc::new(fd),
            path,
            label,
            writable,
        })
    }

    /// The path given to [`open`](Self::open).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current size.
    ///
    /// # Errors
    ///
    /// An OS error from `fstat`.
    pub fn size(&self) -> Result<u64> {
        Ok(sys::fstat(&self.fd)
            .map_err(|e| Error::from_io(&e, "fstat failed").with_path(&*self.label))?
            .size)
    }

    /// Map `len` bytes at `offset` (`None`: to the end of the file). Any offset works; an
    /// empty file or range gives an empty region.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when the range passes the end of the file;
    /// [`ErrorKind::PermissionDenied`] for a read-write mapping of a file opened read-only.
    pub fn map(&self, access: MapAccess, offset: u64, len: Option<u64>) -> Result<Region> {
        if access == MapAccess::ReadWrite && !self.writable {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "cannot map read-write: the file was opened read-only",
            )
            .with_path(&*self.label));
        }
        let size = self.size()?;
        let len = match len {
            Some(l) => l,
            None => size
                .checked_sub(offset)
                .ok_or_else(|| self.out_of_bounds(offset, 0, size))?,
        };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(self.out_of_bounds(offset, len, size));
        }
        let len = usize::try_from(len).map_err(|_| {
            Error::new(ErrorKind::InvalidSize, "larger than the address space")
                .with_path(&*self.label)
        })?;
        Region::map_fd(
            Arc::clone(&self.fd),
            offset,
            len,
            access,
            false,
            Arc::clone(&self.label),
            true,
        )
    }

    fn out_of_bounds(&self, offset: u64, len: u64, size: u64) -> Error {
        Error::new(
            ErrorKind::OutOfBounds,
            format!("cannot map {len} bytes at offset {offset}: the file is {size} bytes"),
        )
        .with_path(&*self.label)
    }
}

/// Map a whole file: the seed's `mmap.mmap(f.fileno(), 0, access=ACCESS_READ)` is
/// `map_file(path, MapAccess::ReadOnly)`.
///
/// # Errors
///
/// Those of [`FileMapping::open`] and [`FileMapping::map`].
pub fn map_file(path: impl AsRef<Path>, access: MapAccess) -> Result<Region> {
    FileMapping::open(path, access == MapAccess::ReadWrite)?.map(access, 0, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(contents: &[u8]) -> (PathBuf, impl Drop) {
        struct Rm(PathBuf);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let p = std::env::temp_dir().join(crate::name::unique("shmb_t_file_"));
        std::fs::write(&p, contents).unwrap();
        (p.clone(), Rm(p))
    }

    #[test]
    fn read_only_read_write_and_copy_on_write() {
        let (p, _rm) = temp_file(b"hello world");
        let ro = map_file(&p, MapAccess::ReadOnly).unwrap();
        assert_eq!(ro.to_vec().unwrap(), b"hello world");
        assert_eq!(
            ro.write_at(0, b"x").unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );

        let cow = map_file(&p, MapAccess::CopyOnWrite).unwrap();
        cow.write_at(0, b"HELLO").unwrap();
        assert_eq!(cow.to_vec().unwrap(), b"HELLO world");
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"hello world",
            "copy-on-write never reaches the file"
        );

        let rw = map_file(&p, MapAccess::ReadWrite).unwrap();
        rw.write_at(6, b"WORLD").unwrap();
        rw.flush().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello WORLD");
        assert_eq!(
            ro.to_vec().unwrap(),
            b"hello WORLD",
            "shared mappings see the write"
        );
    }

    #[test]
    fn ranges_at_unaligned_offsets_and_bounds() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let (p, _rm) = temp_file(&data);
        let fm = FileMapping::open(&p, false).unwrap();
        let r = fm.map(MapAccess::ReadOnly, 4097, Some(100)).unwrap();
        assert_eq!(r.to_vec().unwrap(), &data[4097..4197]);
        let tail = fm.map(MapAccess::ReadOnly, 9000, None).unwrap();
        assert_eq!(tail.len(), 1000);
        let err = fm.map(MapAccess::ReadOnly, 9000, Some(1001)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfBounds);
        assert!(err.to_string().contains(&p.display().to_string()), "{err}");
        assert_eq!(
            fm.map(MapAccess::ReadWrite, 0, None).unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn empty_file_missing_file_and_directory() {
        let (p, _rm) = temp_file(b"");
        assert!(map_file(&p, MapAccess::ReadOnly).unwrap().is_empty());
        let missing = std::env::temp_dir().join("shmb_t_definitely_missing");
        assert_eq!(
            map_file(&missing, MapAccess::ReadOnly).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            map_file(std::env::temp_dir(), MapAccess::ReadOnly)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn file_truncated_under_mapping_is_an_error() {
        let (p, _rm) = temp_file(&[7u8; 3 * 4096]);
        let r = map_file(&p, MapAccess::ReadOnly).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(10)
            .unwrap();
        assert_eq!(r.get::<u8>(8192).unwrap_err().kind(), ErrorKind::Truncated);
    }
}
