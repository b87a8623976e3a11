//! Handing a file from one process to another through shared memory.
//!
//! [`send_file`] and [`recv_file`] are the whole API; the C, C++ and Python faces wrap them.
//!
//! - **One-shot** ([`Mode::OneShot`]): a message-kind framed segment sized to the file. The
//!   sender `read(2)`s the file into a small buffer that stays in cache, computes the CRC-32
//!   of each piece there and `pwrite(2)`s it into the segment, publishes it with the
//!   checksum, marks the segment closed and returns, leaving the segment for the receiver.
//! - **Streaming** ([`Mode::Stream`]): a stream-kind segment (see [`crate::stream`]) whose ring
//!   is much smaller than the file. The sender fills the ring from the file while the receiver
//!   drains it, so both sides use bounded memory whatever the file size; `send_file` returns
//!   once the receiver has taken and verified every byte.
//!
//! The receiver `pread(2)`s the payload into a small buffer, hashes it there and writes it to
//! a temporary file beside the target, which it renames into place only when the byte count
//! and the CRC-32 match. Every copy goes through the segment's descriptor, never through the
//! mapping: a segment that another process shrinks mid-copy, or a sparse one on a full
//! `/dev/shm`, is an error ([`ErrorKind::Truncated`], [`ErrorKind::NoSpace`]), never a
//! `SIGBUS`. On any
//! failure the temporary file is removed and the target is untouched. A sender killed at any
//! moment makes the receiver fail (it holds the segment's writer liveness lock, which dies
//! with it) or time out; a receiver killed mid-stream makes the sender fail the same way.
//!
//! Every wait of a transfer goes through one [`Wait`]: the options' timeout is its inactivity
//! limit (it restarts whenever data moves), and its hook is the progress callback, so a
//! `Break` from the callback stops a transfer that is waiting as promptly as one that copies.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::framed::{flags, offsets, FramedOptions, FramedSegment, Kind};
use crate::mode::Access;
use crate::segment::{OwnerPolicy, SegmentOptions, ShmObject};
use crate::stream::{StreamReader, StreamWriter, STREAM_HEADER_LEN};
use crate::sync::Wait;
use crate::sys;

/// How a file travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// One-shot when no `segment_size` is given or the file fits in it; streaming otherwise.
    #[default]
    Auto,
    /// One framed segment holding the whole file.
    OneShot,
    /// A fixed-size ring the file streams through.
    Stream,
}

impl Mode {
    /// `auto`, `one-shot` or `stream`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::OneShot => "one-shot",
            Self::Stream => "stream",
        }
    }
}

/// How far a transfer has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes moved so far.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
    /// Whether this call comes while the transfer waits for its peer (for it to come, or to
    /// make room or send more): no byte moved since the last call. A rate shown to a person
    /// is best counted from the first call after the first wait (when the peer came).
    pub waiting: bool,
}

/// A progress callback, called from the transferring thread after each chunk (about every
/// 256 KiB to 1 MiB) and, while the transfer waits for its peer, at least every 100 ms (with
/// `done` unchanged). Returning [`ControlFlow::Break`] stops the transfer: the call fails with
/// [`ErrorKind::Aborted`] after cleaning up as for any other failure (a sender removes its
/// segment, a receiver leaves the target untouched and no temporary file). This is how the
/// fronts turn Ctrl-C or an exception in a callback into a clean stop.
pub type ProgressFn = Arc<dyn Fn(Progress) -> ControlFlow<()> + Send + Sync>;

/// The default segment size of a stream: 16 MiB, header included.
pub const DEFAULT_STREAM_SEGMENT: u64 = 16 << 20;

/// Options of [`send_file`].
#[derive(Clone, Default)]
pub struct SendOptions {
    /// One-shot, streaming, or chosen by size.
    pub mode: Mode,
    /// Size of the whole segment in bytes, header included. Streaming: the ring size plus the
    /// header (default [`DEFAULT_STREAM_SEGMENT`]); [`Mode::Auto`] streams when the file does
    /// not fit in it. Ignored by one-shot, whose segment is sized to the file.
    pub segment_size: Option<u64>,
    /// Streaming only: how long to wait for a receiver to attach or make progress (`None`:
    /// forever; a receiver that dies is noticed either way).
    pub timeout: Option<Duration>,
    /// Permission bits of the segment (default 0600).
    pub permissions: Option<u32>,
    /// Called as the transfer advances.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendOptions")
            .field("mode", &self.mode)
            .field("segment_size", &self.segment_size)
            .field("timeout", &self.timeout)
            .field("permissions", &self.permissions)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Options of [`recv_file`].
#[derive(Clone, Default)]
pub struct RecvOptions {
    /// How long to wait for the sender: for the segment to appear, for the payload to be
    /// published, and (streaming) for each next piece of data. `None`: forever (a sender that
    /// dies is noticed either way).
    pub timeout: Option<Duration>,
    /// Leave the segment in place after a successful receive (one-shot; a streaming sender
    /// removes its segment itself).
    pub keep: bool,
    /// `fsync` the file (and its directory) before reporting success.
    pub fsync: bool,
    /// Called as the transfer advances.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for RecvOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvOptions")
            .field("timeout", &self.timeout)
            .field("keep", &self.keep)
            .field("fsync", &self.fsync)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a finished transfer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The segment name.
    pub name: String,
    /// The file sent or written.
    pub path: PathBuf,
    /// Bytes transferred (and verified, on the receiving side).
    pub bytes: u64,
    /// CRC-32 of the bytes (as zlib's `crc32`).
    pub crc32: u32,
    /// [`Mode::OneShot`] or [`Mode::Stream`].
    pub mode: Mode,
    /// Total size of the segment used, header included.
    pub segment_size: u64,
    /// Wall time of the call.
    pub elapsed: Duration,
}

impl Report {
    /// Bytes per second over the call.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn throughput(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The most bytes read or written per system call in one-shot mode (and between progress
/// calls). Small enough that the CRC-32 pass over a chunk just copied finds it in cache.
const IO_CHUNK: usize = 256 << 10;

/// The most a source whose metadata says 0 bytes (a procfs or sysfs file) may hold: such a
/// file is read to its end into memory before it is sent.
pub const UNSIZED_SOURCE_LIMIT: u64 = 64 << 20;

fn path_err(path: &Path, e: &std::io::Error, what: &str) -> Error {
    Error::from_io(e, format!("{what} {}", path.display())).with_path(path)
}

/// The progress callback of a transfer, as the hook of its [`Wait`] and after each chunk.
struct Ticker<'a> {
    progress: Option<&'a ProgressFn>,
    done: AtomicU64,
    total: Option<u64>,
    name: &'a str,
}

impl<'a> Ticker<'a> {
    fn new(progress: Option<&'a ProgressFn>, total: Option<u64>, name: &'a str) -> Self {
        Self {
            progress,
            done: AtomicU64::new(0),
            total,
            name,
        }
    }

    /// After a chunk: record and report `done` bytes.
    fn report(&self, done: u64) -> Result<()> {
        self.done.store(done, Ordering::Relaxed);
        report_progress(self.progress, done, self.total, self.name)
    }

    /// While waiting: report the bytes so far, unchanged.
    fn hook(&self) -> impl FnMut() -> ControlFlow<()> + Send + '_ {
        move || match self.progress {
            Some(p) => p(Progress {
                done: self.done.load(Ordering::Relaxed),
                total: self.total,
                waiting: true,
            }),
            None => ControlFlow::Continue(()),
        }
    }
}

/// Call the progress callback; a `Break` becomes [`ErrorKind::Aborted`].
fn report_progress(
    p: Option<&ProgressFn>,
    done: u64,
    total: Option<u64>,
    name: &str,
) -> Result<()> {
    match p.map(|f| {
        f(Progress {
            done,
            total,
            waiting: false,
        })
    }) {
        Some(ControlFlow::Break(())) => Err(Error::new(
            ErrorKind::Aborted,
            format!("aborted by the caller after {done} bytes"),
        )
        .with_segment(name.trim_start_matches('/'))),
        _ => Ok(()),
    }
}

/// Open a file to send and check it is a regular file; returns it with its size and mtime.
fn open_source(path: &Path) -> Result<(File, u64, (i64, i64))> {
    let meta = std::fs::metadata(path).map_err(|e| path_err(path, &e, "cannot read"))?;
    if meta.is_dir() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{} is a directory, not a file", path.display()),
        )
        .with_path(path));
    }
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{} is not a regular file", path.display()),
        )
        .with_path(path));
    }
    let file = File::open(path).map_err(|e| path_err(path, &e, "cannot open"))?;
    let meta = file
        .metadata()
        .map_err(|e| path_err(path, &e, "cannot stat"))?;
    sys::advise_sequential(file.as_fd());
    Ok((file, meta.len(), (meta.mtime(), meta.mtime_nsec())))
}

/// Fail if the file's size or modification time changed since it was opened.
fn check_unchanged(file: &File, path: &Path, size: u64, mtime: (i64, i64)) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| path_err(path, &e, "cannot stat"))?;
    if meta.len() != size || (meta.mtime(), meta.mtime_nsec()) != mtime {
        return Err(changed(path, size, meta.len()));
    }
    Ok(())
}

fn changed(path: &Path, was: u64, now: u64) -> Error {
    Error::new(
        ErrorKind::Changed,
        format!(
            "{} changed while it was being sent (it was {was} bytes, it is now {now}); nothing was published",
            path.display()
        ),
    )
    .with_path(path)
}

/// Send the file at `path` through the segment `name` (which must not exist yet).
///
/// One-shot: returns once the file is published; the segment stays for the receiver (who
/// removes it). Streaming: returns once the receiver has taken and verified every byte, and
/// removes the segment. On failure nothing is published and the segment is removed.
///
/// # Errors
///
/// - [`ErrorKind::NotFound`] / [`ErrorKind::PermissionDenied`]: the file cannot be read;
/// - [`ErrorKind::InvalidArgument`]: a directory or other non-regular file;
/// - [`ErrorKind::Changed`]: the file changed size or was modified while being sent (the
///   error names the file's path);
/// - [`ErrorKind::AlreadyExists`]: the segment name is taken;
/// - [`ErrorKind::NoSpace`]: `/dev/shm` cannot hold the segment;
/// - streaming: [`ErrorKind::PeerGone`] when the receiver died or rejected the data,
///   [`ErrorKind::Timeout`] when it did not come or stalled for `timeout`.
pub fn send_file(path: &Path, name: &str, opts: &SendOptions) -> Result<Report> {
    let started = Instant::now();
    crate::name::validate(name)?;
    let (file, size, mtime) = open_source(path)?;
    if size == 0 {
        // procfs and sysfs files report 0 bytes and still have content: read to the end.
        let data = read_unsized(&file, path)?;
        if !data.is_empty() {
            return send_buffer(&data, path, name, opts, started);
        }
    }
    let mode = resolve_mode(opts, size);
    let seg_opts = segment_options(opts);
    let need = if mode == Mode::Stream {
        opts.segment_size.unwrap_or(DEFAULT_STREAM_SEGMENT)
    } else {
        size.saturating_add(u64::from(crate::framed::HEADER_LEN))
    };
    check_free_space(crate::shm_dir(), need, "the segment")
        .map_err(|e| e.with_segment(name.trim_start_matches('/')))?;
    let (crc, segment_size) = if mode == Mode::Stream {
        send_stream(&file, path, name, size, mtime, opts, &seg_opts)?
    } else {
        send_one_shot(&file, path, name, size, mtime, opts, &seg_opts)?
    };
    Ok(Report {
        name: name.trim_start_matches('/').to_owned(),
        path: path.to_owned(),
        bytes: size,
        crc32: crc,
        mode,
        segment_size,
        elapsed: started.elapsed(),
    })
}

fn send_one_shot(
    file: &File,
    path: &Path,
    name: &str,
    size: u64,
    mtime: (i64, i64),
    opts: &SendOptions,
    seg_opts: &FramedOptions,
) -> Result<(u32, u64)> {
    let framed = FramedSegment::create(name, size, seg_opts)?;
    let fill_payload = || -> Result<u32> {
        let w = framed.begin_write()?;
        let region = framed.region();
        let base = framed.header_len();
        let mut crc = crc32fast::Hasher::new();
        // The file goes through a small buffer that stays in cache (hashed there) and into the
        // segment's pages with pwrite (a kernel copy: no page faults in this process, none of
        // the pages in its RSS): a segment shrunk meanwhile is an error, never a SIGBUS.
        let mut bounce = vec![0u8; (size as usize).clamp(1, IO_CHUNK)];
        let mut off = 0u64;
        while off < size {
            let want = (size - off).min(IO_CHUNK as u64) as usize;
            let n = region.copy_in_fresh(
                base + off,
                want,
                &mut bounce,
                |buf| read_some(file, path, buf),
                |piece| {
                    crc.update(piece);
                    Ok(())
                },
            )?;
            if n == 0 {
                return Err(changed(path, size, off));
            }
            off += n as u64;
            report_progress(opts.progress.as_ref(), off, Some(size), name)?;
        }
        region.check_written(base, size as usize)?;
        check_unchanged(file, path, size, mtime)?;
        let crc = crc.finalize();
        w.commit_with_crc(size, Some(crc))?;
        Ok(crc)
    };
    match fill_payload() {
        Ok(crc) => {
            framed.close_writer()?;
            Ok((crc, framed.region().len() as u64))
        }
        Err(e) => {
            let _ = framed.close_writer();
            let _ = ShmObject::remove(name);
            Err(e)
        }
    }
}

/// One-shot or streaming, as `opts` asks for a source of `size` bytes.
fn resolve_mode(opts: &SendOptions, size: u64) -> Mode {
    match opts.mode {
        Mode::Auto => match opts.segment_size {
            Some(s) if size > s.saturating_sub(u64::from(crate::framed::HEADER_LEN)) => {
                Mode::Stream
            }
            _ => Mode::OneShot,
        },
        m => m,
    }
}

/// The options of a sender's segment. The payload goes in with kernel copies, not through the
/// mapping: no page tables to fill.
fn segment_options(opts: &SendOptions) -> FramedOptions {
    FramedOptions {
        segment: SegmentOptions {
            permissions: opts.permissions,
            access: Access::ReadWrite,
            populate: false,
        },
    }
}

/// The whole size of a stream segment, checked to leave room for a ring.
fn stream_segment_size(opts: &SendOptions, name: &str) -> Result<u64> {
    let seg_size = opts.segment_size.unwrap_or(DEFAULT_STREAM_SEGMENT);
    let header = u64::from(STREAM_HEADER_LEN);
    if seg_size <= header {
        return Err(Error::new(
            ErrorKind::InvalidSize,
            format!("a stream segment must be larger than its {header}-byte header (asked for {seg_size})"),
        )
        .with_segment(name));
    }
    Ok(seg_size)
}

/// A failed stream is dead for good (a stopped or timed-out finish included): abort it and
/// take its name away, so no receiver starts on it.
fn abandon(w: &mut StreamWriter) {
    w.abort();
    if let Some(obj) = w.framed().object() {
        let _ = obj.remove_if_same();
    }
}

/// Read a source whose metadata size is 0 to its end, refusing one past
/// [`UNSIZED_SOURCE_LIMIT`].
fn read_unsized(file: &File, path: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    file.take(UNSIZED_SOURCE_LIMIT + 1)
        .read_to_end(&mut data)
        .map_err(|e| path_err(path, &e, "reading failed:"))?;
    if data.len() as u64 > UNSIZED_SOURCE_LIMIT {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} reports a size of 0 but holds more than {} MiB: refused (copy it to a regular file first)",
                path.display(),
                UNSIZED_SOURCE_LIMIT >> 20
            ),
        )
        .with_path(path));
    }
    Ok(data)
}

/// Send bytes already in memory (a source that reported size 0), one-shot or streamed as
/// `opts` asks.
fn send_buffer(
    data: &[u8],
    path: &Path,
    name: &str,
    opts: &SendOptions,
    started: Instant,
) -> Result<Report> {
    let size = data.len() as u64;
    let header = u64::from(STREAM_HEADER_LEN);
    let mode = resolve_mode(opts, size);
    let seg_opts = segment_options(opts);
    let crc = crc32fast::hash(data);
    let segment_size = if mode == Mode::Stream {
        let seg_size = stream_segment_size(opts, name)?;
        let mut w = StreamWriter::create(name, seg_size - header, Some(size), &seg_opts)?;
        let ticker = Ticker::new(opts.progress.as_ref(), Some(size), name);
        let mut hook = ticker.hook();
        let mut wait = Wait::forever().idle(opts.timeout).with_hook(&mut hook);
        let result = w.write(data, &mut wait).and_then(|()| {
            ticker.report(size)?;
            w.finish(&mut wait)
        });
        if result.is_err() {
            abandon(&mut w);
        }
        result?;
        seg_size
    } else {
        let framed = FramedSegment::create(name, size, &seg_opts)?;
        let published = framed
            .write(data)
            .and_then(|()| report_progress(opts.progress.as_ref(), size, Some(size), name))
            .and_then(|()| framed.close_writer());
        if let Err(e) = published {
            let _ = framed.close_writer();
            let _ = ShmObject::remove(name);
            return Err(e);
        }
        framed.region().len() as u64
    };
    Ok(Report {
        name: name.trim_start_matches('/').to_owned(),
        path: path.to_owned(),
        bytes: size,
        crc32: crc,
        mode,
        segment_size,
        elapsed: started.elapsed(),
    })
}

/// One `read(2)` from `file` into `buf` (retrying on `EINTR`); 0 at the end of the file.
fn read_some(file: &File, path: &Path, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` is valid for writes of its length for the duration of the call.
    unsafe { sys::read_raw(file.as_fd(), buf.as_mut_ptr(), buf.len()) }
        .map_err(|e| path_err(path, &e, "reading failed:"))
}

fn send_stream(
    file: &File,
    path: &Path,
    name: &str,
    size: u64,
    mtime: (i64, i64),
    opts: &SendOptions,
    seg_opts: &FramedOptions,
) -> Result<(u32, u64)> {
    let seg_size = stream_segment_size(opts, name)?;
    let header = u64::from(STREAM_HEADER_LEN);
    let mut w = StreamWriter::create(name, seg_size - header, Some(size), seg_opts)?;
    let ticker = Ticker::new(opts.progress.as_ref(), Some(size), name);
    let mut hook = ticker.hook();
    let mut wait = Wait::forever().idle(opts.timeout).with_hook(&mut hook);
    let mut run = || -> Result<u32> {
        let n = w.write_from_fd(file.as_fd(), size, &mut wait, |done| ticker.report(done))?;
        if n != size {
            return Err(changed(path, size, n));
        }
        check_unchanged(file, path, size, mtime)?;
        w.finish(&mut wait)
    };
    let result = run();
    if result.is_err() {
        abandon(&mut w);
    }
    result.map(|crc| (crc, seg_size))
}

/// A temporary file beside the target, removed on drop unless renamed into place.
///
/// Where the filesystem supports it the file is unnamed (`O_TMPFILE`), so even a receiver
/// killed with `SIGKILL` leaves nothing behind; it gets a name only at commit, just before
/// the rename. Elsewhere it is a hidden named file, removed on any failure this process
/// survives.
struct TempFile {
    dir: PathBuf,
    stem: String,
    /// The named temporary file; empty for an unnamed one or once renamed.
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    fn create(target: &Path) -> Result<Self> {
        use std::sync::atomic::AtomicU32;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let target_err = |kind, detail: String| Error::new(kind, detail).with_path(target);
        check_target_kind(target)?;
        if target.is_dir() {
            return Err(target_err(
                ErrorKind::InvalidArgument,
                format!(
                    "{} is a directory; give the path of the file to write",
                    target.display()
                ),
            ));
        }
        let file_name = target.file_name().ok_or_else(|| {
            target_err(
                ErrorKind::InvalidArgument,
                format!("{} does not name a file", target.display()),
            )
        })?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let stem = format!(
            ".{}.shmbridge-{}-{}",
            file_name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let create_err = |e: &std::io::Error| {
            Error::from_io(
                e,
                format!("cannot create a temporary file in {}", dir.display()),
            )
            .with_path(target)
        };
        if let Some(file) = sys::open_unnamed_in(&dir).map_err(|e| create_err(&e))? {
            return Ok(Self {
                dir,
                stem,
                path: PathBuf::new(),
                file: Some(file),
            });
        }
        let path = dir.join(format!("{stem}.tmp"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| create_err(&e))?;
        Ok(Self {
            dir,
            stem,
            path,
            file: Some(file),
        })
    }

    fn file(&self) -> &File {
        self.file.as_ref().expect("the file is open until commit")
    }

    fn rewind(&self) -> Result<()> {
        let f = self.file();
        f.set_len(0)
            .and_then(|()| (&*f).seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| path_err(&self.dir, &e, "cannot rewind the temporary file in"))
    }

    fn commit(mut self, target: &Path, fsync: bool) -> Result<()> {
        let file = self.file.take().expect("the file is open until commit");
        if fsync {
            file.sync_all()
                .map_err(|e| path_err(target, &e, "fsync failed for"))?;
        }
        if self.path.as_os_str().is_empty() {
            let named = self.dir.join(format!("{}.tmp", self.stem));
            sys::link_unnamed(file.as_fd(), &named)
                .map_err(|e| path_err(&named, &e, "cannot name the temporary file"))?;
            self.path = named;
        }
        drop(file);
        // Again just before the rename: something may have been put there meanwhile.
        check_target_kind(target)?;
        std::fs::rename(&self.path, target)
            .map_err(|e| path_err(target, &e, "cannot rename the temporary file onto"))?;
        self.path = PathBuf::new();
        if fsync {
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Open `name` once it exists. The payload is read with pread, not through the mapping, so no
/// page tables are filled up front. Read-write when allowed (a stream reader moves
/// `read_pos`), read-only otherwise.
fn open_when_ready(name: &str, wait: &mut Wait<'_>) -> Result<FramedSegment> {
    let opts = |access| SegmentOptions {
        permissions: None,
        access,
        populate: false,
    };
    match FramedSegment::open_wait_with(name, &opts(Access::ReadWrite), wait) {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            FramedSegment::open_wait_with(name, &opts(Access::ReadOnly), wait)
        }
        other => other,
    }
}

/// Wait until a one-shot segment is published; fail if its writer closed it without
/// publishing or died.
fn wait_published(framed: &FramedSegment, wait: &mut Wait<'_>) -> Result<()> {
    loop {
        let seen = framed.publish_count();
        if framed.u32_at(offsets::FLAGS).load(Ordering::Acquire) & flags::PUBLISHED != 0 {
            return Ok(());
        }
        match framed.wait(seen, wait) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WriterClosed => {
                return Err(Error::new(
                    ErrorKind::WriterClosed,
                    "the sender closed the segment without publishing it (it failed)",
                )
                .with_segment(framed.name()))
            }
            Err(e) if e.kind() == ErrorKind::PeerGone => {
                let pid = framed.header().map_or(0, |h| h.creator_pid);
                return Err(Error::new(
                    ErrorKind::PeerGone,
                    format!("the sender (pid {pid}) died before publishing; nothing accepted"),
                )
                .with_segment(framed.name()));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Write a published one-shot payload straight from the mapping to `out` (rewinding it with
/// `rewind` when a write raced the copy), verifying the CRC-32. Returns (bytes, crc).
fn copy_payload(
    framed: &FramedSegment,
    out: BorrowedFd<'_>,
    rewind: &dyn Fn() -> Result<()>,
    ticker: &Ticker<'_>,
) -> Result<(u64, u32)> {
    let mut first = true;
    let mut crc = 0;
    // Through the segment's descriptor into a buffer that stays in cache, hashed there and
    // written out from it: a segment shrunk under the copy is an error, never a SIGBUS.
    let mut bounce = vec![0u8; IO_CHUNK];
    let snap = framed.read_with(|region, at, len, _| {
        if !first {
            rewind()?;
        }
        first = false;
        let mut hasher = crc32fast::Hasher::new();
        let mut done = 0u64;
        region.copy_out(at, len, &mut bounce, |piece| {
            hasher.update(piece);
            // SAFETY: `piece` is a private buffer, readable for its length.
            unsafe { sys::write_all_raw(out, piece.as_ptr(), piece.len()) }.map_err(|e| {
                Error::from_io(&e, "writing the output failed").with_segment(framed.name())
            })?;
            done += piece.len() as u64;
            ticker.report(done)
        })?;
        crc = hasher.finalize();
        Ok(Some(crc))
    })?;
    if snap.checksum.is_none() {
        return Err(Error::new(
            ErrorKind::ChecksumMismatch,
            "the payload was published without a checksum, so it cannot be verified",
        )
        .with_segment(framed.name()));
    }
    Ok((snap.len, crc))
}

fn not_a_transfer(name: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "this framed segment is {what}, not a file transfer: it cannot be received as a file"
        ),
    )
    .with_segment(name)
}

/// Refuse a segment whose owner `owner` does not allow (before anything is read from it).
fn check_owner(framed: &FramedSegment, owner: &OwnerPolicy) -> Result<()> {
    match framed.object() {
        Some(obj) => owner.check(obj),
        None => Ok(()),
    }
}

/// Refuse a target that is the segment being received (`recv x /dev/shm/x`): writing it would
/// replace the data being read, and removing the segment afterwards would delete the result.
fn check_not_the_segment(framed: &FramedSegment, path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let (Some(fd), Ok(meta)) = (framed.region().fd(), std::fs::metadata(path)) else {
        return Ok(());
    };
    match sys::fd_identity(fd.as_fd()) {
        Ok((dev, ino, _)) if dev == meta.dev() && ino == meta.ino() => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} is the segment being received: give a path outside {}",
                path.display(),
                sys::SHM_DIR
            ),
        )
        .with_path(path)),
        _ => Ok(()),
    }
}

/// Refuse to replace anything but a regular file (or a symbolic link, which the rename
/// replaces itself): a device (`/dev/null`), FIFO, socket or directory at the target stays.
fn check_target_kind(target: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let Ok(meta) = std::fs::symlink_metadata(target) else {
        return Ok(());
    };
    let ft = meta.file_type();
    let what = if ft.is_dir() {
        "a directory; give the path of the file to write"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "{} is {what}: recv writes only regular files and never replaces anything else",
            target.display()
        ),
    )
    .with_path(target))
}

/// Fail with [`ErrorKind::NoSpace`], saying how much is missing, when the file system of `dir`
/// has less than `need` bytes available (checked up front, so a transfer that cannot fit does
/// not start; a file system that cannot say is not refused).
fn check_free_space(dir: &Path, need: u64, what: &str) -> Result<()> {
    let Ok(space) = crate::space::space_of(dir) else {
        return Ok(());
    };
    if space.available >= need {
        return Ok(());
    }
    #[allow(clippy::cast_precision_loss)]
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    Err(Error::new(
        ErrorKind::NoSpace,
        format!(
            "not enough space for {what}: it needs {:.1} MiB but {} has {:.1} MiB available ({:.1} MiB missing; `shmbridge doctor` says how to get more)",
            mib(need),
            dir.display(),
            mib(space.available),
            mib(need - space.available)
        ),
    ))
}

/// How many bytes a segment will deliver, when it says: a one-shot payload's capacity, or a
/// stream's announced total.
fn incoming_len(framed: &FramedSegment) -> Option<u64> {
    match framed.kind() {
        Kind::Message => Some(framed.capacity()),
        Kind::Stream => crate::stream::status(framed).ok()?.total_len,
        _ => None,
    }
}

/// After a failed receive: a one-shot segment whose sender is gone can never complete, so it
/// is removed (a stream reader removes a dead stream itself).
fn forget_dead(framed: &FramedSegment, e: &Error) {
    if e.kind() == ErrorKind::PeerGone && framed.kind() == Kind::Message && !framed.writer_alive() {
        if let Some(obj) = framed.object() {
            let _ = obj.remove_if_same();
        }
    }
}

/// Receive the file sent through the segment `name` into `path`.
///
/// Waits up to `timeout` for the sender (the segment may not exist yet), writes the data to
/// a temporary file beside `path`, and renames it onto `path` only when the byte count and
/// CRC-32 match. Removes the segment afterwards unless `keep`. On any failure `path` is
/// untouched and no temporary file is left; the segment is removed too when its sender is
/// known to be dead (it could never complete).
///
/// # Errors
///
/// - [`ErrorKind::Timeout`]: no sender, or it stalled, for `timeout`;
/// - [`ErrorKind::PeerGone`] / [`ErrorKind::WriterClosed`]: the sender died or gave up;
/// - [`ErrorKind::ChecksumMismatch`] / [`ErrorKind::Truncated`]: the data does not verify;
/// - [`ErrorKind::PermissionDenied`] and other OS errors: the target directory cannot be
///   written (checked before anything is consumed);
/// - [`ErrorKind::BadMagic`] and the other header errors: not a shmbridge framed segment;
/// - [`ErrorKind::AlreadyExists`]: another receiver already took the stream.
pub fn recv_file(name: &str, path: &Path, opts: &RecvOptions) -> Result<Report> {
    recv_file_with_owner(name, path, opts, &OwnerPolicy::default())
}

/// As [`recv_file`], accepting segments of the owners `owner` allows ([`recv_file`] accepts
/// only this user's own segments: anyone can create a segment under the name a receiver
/// waits for).
///
/// # Errors
///
/// As [`recv_file`]; [`ErrorKind::PermissionDenied`] for a segment of an owner `owner` does
/// not allow (the segment is left alone); [`ErrorKind::InvalidArgument`] for a target that is
/// a directory, device, FIFO or socket, or that is the segment itself.
pub fn recv_file_with_owner(
    name: &str,
    path: &Path,
    opts: &RecvOptions,
    owner: &OwnerPolicy,
) -> Result<Report> {
    let started = Instant::now();
    let bare = crate::name::validate(name)?.to_owned();
    let tmp = TempFile::create(path)?;
    let mut ticker = Ticker::new(opts.progress.as_ref(), None, &bare);
    let framed = {
        let mut hook = ticker.hook();
        let mut wait = Wait::forever().idle(opts.timeout).with_hook(&mut hook);
        open_when_ready(&bare, &mut wait)?
    };
    check_owner(&framed, owner)?;
    check_not_the_segment(&framed, path)?;
    if let Some(need) = incoming_len(&framed) {
        check_free_space(&tmp.dir, need, "the received file").map_err(|e| e.with_path(path))?;
    }
    let segment_size = framed.region().len() as u64;
    let (bytes, crc32, mode) = match framed.kind() {
        Kind::Message => {
            let received = (|| {
                let mut hook = ticker.hook();
                let mut wait = Wait::forever().idle(opts.timeout).with_hook(&mut hook);
                wait_published(&framed, &mut wait)?;
                let got = copy_payload(&framed, tmp.file().as_fd(), &|| tmp.rewind(), &ticker)?;
                Ok(got)
            })();
            let (bytes, crc) = received.inspect_err(|e| forget_dead(&framed, e))?;
            tmp.commit(path, opts.fsync)?;
            if !opts.keep {
                if let Some(obj) = framed.object() {
                    let _ = obj.remove_if_same();
                }
            }
            (bytes, crc, Mode::OneShot)
        }
        Kind::Stream => {
            let mut reader = StreamReader::attach_with_owner(framed, owner)?;
            ticker.total = reader.total_len();
            let mut hook = ticker.hook();
            let mut wait = Wait::forever().idle(opts.timeout).with_hook(&mut hook);
            reader.read_to_fd(tmp.file().as_fd(), &mut wait, |done| ticker.report(done))?;
            let bytes = reader.consumed();
            tmp.commit(path, opts.fsync)?;
            let crc = reader.finish()?;
            (bytes, crc, Mode::Stream)
        }
        Kind::Channel => {
            return Err(not_a_transfer(
                &bare,
                "a channel (read it with shmbridge sub)",
            ))
        }
        Kind::Array => {
            return Err(not_a_transfer(
                &bare,
                "an array segment (read it with shmbridge info, or open it as an array: ArraySegment, shmbridge.SharedArray)",
            ))
        }
        Kind::Other(n) => return Err(not_a_transfer(&bare, &format!("of unknown kind {n}"))),
    };
    Ok(Report {
        name: bare,
        path: path.to_owned(),
        bytes,
        crc32,
        mode,
        segment_size,
        elapsed: started.elapsed(),
    })
}

/// Receive the payload of the segment `name` to an open descriptor (standard output, a pipe),
/// verifying it as [`recv_file`] does, but without the atomic rename: bytes are written as
/// they come, so on failure `out` may hold part of the data. Removes the segment unless
/// `keep`. `path` in the report is empty.
///
/// # Errors
///
/// As [`recv_file`]; [`ErrorKind::Changed`] when a one-shot payload changed while it was being
/// written out (the segment's writer does not keep to the protocol: `out` cannot be rewound).
pub fn recv_to_fd(name: &str, out: BorrowedFd<'_>, opts: &RecvOptions) -> Result<Report> {
    recv_to_fd_with_owner(name, out, opts, &OwnerPolicy::default())
}

/// As [`recv_to_fd`], accepting segments of the owners `owner` allows.
///
/// # Errors
///
/// As [`recv_to_fd`]; [`ErrorKind::PermissionDenied`] for a segment of an owner `owner` does
/// not allow.
pub fn recv_to_fd_with_owner(
    name: &str,
    out: BorrowedFd<'_>,
    opts: &RecvOptions,
    owner: &OwnerPolicy,
) -> Result<Report> {
    let started = Instant::now();
    let bare = crate::name::validate(name)?.to_owned();
    let mut ticker = Ticker::new(opts.progress.as_ref(), None, &bare);
    let framed = {
        let mut hook = ticker.hook();
        let mut wait = Wait::forever().idle(opts.timeout).with_hook(&mut hook);
        open_when_ready(&bare, &mut wait)?
    };
    check_owner(&framed, owner)?;
    let segment_size = framed.region().len() as u64;
    let (bytes, crc32, mode) = match framed.kind() {
        Kind::Message => {
            let received = (|| {
                let mut hook = ticker.hook();
                let mut wait = Wait::forever().idle(opts.timeout).with_hook(&mut hook);
                wait_published(&framed, &mut wait)?;
                copy_payload(
                    &framed,
                    out,
                    &|| {
                        Err(Error::new(
                            ErrorKind::Changed,
                            "the payload changed while it was being written out",
                        )
                        .with_segment(&bare))
                    },
                    &ticker,
                )
            })();
            let (b, c) = received.inspect_err(|e| forget_dead(&framed, e))?;
            if !opts.keep {
                if let Some(obj) = framed.object() {
                    let _ = obj.remove_if_same();
                }
            }
            (b, c, Mode::OneShot)
        }
        Kind::Stream => {
            let mut reader = StreamReader::attach_with_owner(framed, owner)?;
            ticker.total = reader.total_len();
            let mut hook = ticker.hook();
            let mut wait = Wait::forever().idle(opts.timeout).with_hook(&mut hook);
            reader.read_to_fd(out, &mut wait, |done| ticker.report(done))?;
            let bytes = reader.consumed();
            (bytes, reader.finish()?, Mode::Stream)
        }
        Kind::Channel => {
            return Err(not_a_transfer(
                &bare,
                "a channel (read it with shmbridge sub)",
            ))
        }
        Kind::Array => {
            return Err(not_a_transfer(
                &bare,
                "an array segment (read it with shmbridge info, or open it as an array: ArraySegment, shmbridge.SharedArray)",
            ))
        }
        Kind::Other(n) => return Err(not_a_transfer(&bare, &format!("of unknown kind {n}"))),
    };
    Ok(Report {
        name: bare,
        path: PathBuf::new(),
        bytes,
        crc32,
        mode,
        segment_size,
        elapsed: started.elapsed(),
    })
}
