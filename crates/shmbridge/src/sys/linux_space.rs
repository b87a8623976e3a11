//! Linux: how much room a file system has (`statvfs(2)`).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::StatVfs;

/// `statvfs(path)`.
pub(crate) fn statvfs(path: &Path) -> io::Result<StatVfs> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid statvfs to write; both outlive
    // the call.
    if unsafe { libc::statvfs(c.as_ptr(), &raw mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The field types differ between architectures (c_ulong, fsblkcnt_t); all fit in u64.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    Ok(StatVfs {
        fragment_size: u64::from(st.f_frsize as u64),
        blocks: st.f_blocks as u64,
        blocks_free: st.f_bfree as u64,
        blocks_available: st.f_bavail as u64,
        files: st.f_files as u64,
        files_free: st.f_ffree as u64,
    })
}
