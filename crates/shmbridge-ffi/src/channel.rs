//! Channels (`docs/SPEC.md` section 8): one writer, a fixed number of readers, variable-size
//! messages loaned and read in place. `shmb_channel_writer` and `shmb_channel_reader` are thin
//! shells over the core's `shmbridge::channel`.
//!
//! The core's raw loans and received messages cannot be rebuilt from plain C data, so each
//! handle keeps the ones it handed out (a loan until it is published or discarded, a message
//! until it is released) and finds them again by slot: at most `slots` of each exist at once.

use std::ffi::{c_char, c_void, CString};

use shmbridge::array::RawArrayLoan;
use shmbridge::channel::{self, ChannelStatus, RawLoan, Received};
use shmbridge::{Access, ChannelOptions, ChannelReader, ChannelWriter, FramedSegment, Policy};

use crate::args::{
    self, arg, bytes_arg, c_string, give, mut_arg, name_arg, opt_ref, opts_arg, out_arg, put,
    ref_arg, take, wait_arg, write_out,
};
use crate::error::{guard, guard_value, shmb_result, FfiError};
use crate::wait::shmb_wait;

/// The framed kind of a channel segment (`shmb_header_info.kind`).
pub const SHMB_KIND_CHANNEL: u32 = 3;

/// What a channel's writer does when readers lag (`shmb_channel_options.policy`). Any other
/// value is `SHMB_INVALID_ARGUMENT`.
pub type shmb_channel_policy = u32;
/// The writer waits for the slowest live reader: every live reader gets every message.
pub const SHMB_POLICY_BLOCK: shmb_channel_policy = 0;
/// The writer drops the oldest messages and never waits for a slow reader, which is told how
/// many it lost (`shmb_channel_message.lost`).
pub const SHMB_POLICY_OVERWRITE: shmb_channel_policy = 1;

/// Message flag (`shmb_channel_message.flags`): the message starts with an array header
/// (`docs/SPEC.md` section 7).
pub const SHMB_MESSAGE_ARRAY: u32 = 1;

/// How a channel is made. Fill with `shmb_channel_options_init()` (or pass NULL for the
/// defaults), then change fields. Plain data owned by the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmb_channel_options {
    /// Number of slots, 2 to 2^20 (default 16): how many messages can be in flight at once.
    pub slots: u32,
    /// The largest message in bytes, at least 1 (default 4096).
    pub max_message: u64,
    /// Number of reader places, 1 to 1024 (default 4).
    pub readers: u32,
    /// `SHMB_POLICY_BLOCK` (the default) or `SHMB_POLICY_OVERWRITE`.
    pub policy: shmb_channel_policy,
    /// How many past messages a reader that joins late starts with, less than `slots`
    /// (default 0: it starts with the next message).
    pub history: u32,
    /// Whether every message carries a CRC-32 that readers check (default false).
    pub checksum: bool,
    /// Permission bits of the segment; `SHMB_PERM_DEFAULT` (0, the default) is 0600.
    pub permissions: u32,
}

impl Default for shmb_channel_options {
    fn default() -> Self {
        let d = ChannelOptions::default();
        Self {
            slots: d.slots,
            max_message: d.max_message,
            readers: d.readers,
            policy: d.policy.code(),
            history: d.history,
            checksum: d.checksum,
            permissions: crate::SHMB_PERM_DEFAULT,
        }
    }
}

fn policy(func: &str, code: shmb_channel_policy) -> Result<Policy, FfiError> {
    match code {
        SHMB_POLICY_BLOCK => Ok(Policy::Block),
        SHMB_POLICY_OVERWRITE => Ok(Policy::Overwrite),
        other => Err(FfiError::new(
            shmb_result::SHMB_INVALID_ARGUMENT,
            format!("{func}: unknown policy {other} (expected SHMB_POLICY_BLOCK or SHMB_POLICY_OVERWRITE)"),
        )),
    }
}

impl shmb_channel_options {
    fn to_core(self, func: &str) -> Result<ChannelOptions, FfiError> {
        Ok(ChannelOptions {
            slots: self.slots,
            max_message: self.max_message,
            readers: self.readers,
            policy: policy(func, self.policy)?,
            history: self.history,
            checksum: self.checksum,
            framed: args::framed_options(self.permissions),
        })
    }
}

/// Fill `*opts` with the defaults of `shmb_channel_options` (16 slots of 4096 bytes, 4
/// readers, `SHMB_POLICY_BLOCK`, no history, no checksums, 0600). NULL is a no-op.
///
/// # Safety
///
/// `opts` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_options_init(opts: *mut shmb_channel_options) {
    guard_value((), || {
        if !opts.is_null() {
            arg!(write_out(opts, shmb_channel_options::default()));
        }
    });
}

/// A slot loaned by `shmb_channel_writer_loan()`, to fill in place and then publish
/// (`shmb_channel_writer_publish()`) or give back (`shmb_channel_writer_discard()`). Plain
/// data written by the library; the caller passes it back unchanged.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmb_channel_loan {
    /// The slot's message area, in the shared mapping: `capacity` writable bytes, valid until
    /// the loan is published or discarded (or the writer freed).
    pub data: *mut c_void,
    /// The bytes asked for.
    pub len: usize,
    /// The bytes that may be written: the channel's `max_message`.
    pub capacity: usize,
    /// The slot (what publish and discard look the loan up by).
    pub slot: u32,
}

/// A message taken by `shmb_channel_reader_recv()` / `shmb_channel_reader_try_recv()`, read
/// in place. Plain data written by the library; `data` stays valid, and the writer keeps off
/// the message, until it is released (`shmb_channel_reader_release()`) or the reader freed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmb_channel_message {
    /// The message's first byte, in the shared mapping (read only).
    pub data: *const c_void,
    /// Its length in bytes.
    pub len: usize,
    /// Its sequence number (0 for the first message of the channel).
    pub seq: u64,
    /// The writer's tag.
    pub tag: u32,
    /// Message flags (`SHMB_MESSAGE_ARRAY`).
    pub flags: u32,
    /// When it was published, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Messages this reader missed just before this one (overwrite policy).
    pub lost: u64,
    /// The slot it lies in (what release looks the message up by, with `seq`).
    pub slot: u32,
}

impl From<&Received> for shmb_channel_message {
    fn from(m: &Received) -> Self {
        Self {
            data: m.as_ptr().cast(),
            len: m.len,
            seq: m.seq,
            tag: m.tag,
            flags: m.flags,
            timestamp_ns: m.timestamp_ns,
            lost: m.lost,
            slot: m.slot,
        }
    }
}

/// The writing end of a channel: it created the segment and is its only writer. Created by
/// `shmb_channel_writer_create()`, released by `shmb_channel_writer_free()`. One thread at a
/// time.
pub struct shmb_channel_writer {
    pub(crate) inner: ChannelWriter,
    /// Loans handed out and not yet published or discarded.
    pub(crate) loans: Vec<Loaned>,
    name: CString,
}

/// A loan handed out to C: raw bytes, or an array whose header is in the slot already.
#[derive(Debug)]
pub(crate) enum Loaned {
    Raw(RawLoan),
    Array(RawArrayLoan),
}

impl Loaned {
    fn raw(&self) -> &RawLoan {
        match self {
            Loaned::Raw(l) => l,
            Loaned::Array(a) => a.raw(),
        }
    }
}

/// The reading end of a channel: one of its reader places. Created by
/// `shmb_channel_reader_open()`, released by `shmb_channel_reader_free()`. One thread at a
/// time.
pub struct shmb_channel_reader {
    pub(crate) inner: ChannelReader,
    /// Messages taken and not yet released.
    pub(crate) held: Vec<Received>,
    name: CString,
}

/// A snapshot of a channel: its configuration, how far the writer got, and each occupied
/// reader place. Created by `shmb_channel_status_read()` or `shmb_channel_writer_status()`,
/// released by `shmb_channel_status_free()`.
pub struct shmb_channel_status {
    inner: ChannelStatus,
}

/// A channel's configuration and state, filled in by `shmb_channel_status_info()`. Plain data
/// owned by the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shmb_channel_info {
    /// Number of slots.
    pub slots: u32,
    /// Number of reader places.
    pub readers: u32,
    /// The largest message.
    pub max_message: u64,
    /// `SHMB_POLICY_BLOCK` or `SHMB_POLICY_OVERWRITE`.
    pub policy: shmb_channel_policy,
    /// Past messages a late reader starts with.
    pub history: u32,
    /// Whether messages carry checksums.
    pub checksum: bool,
    /// Messages published so far (the next message's sequence number).
    pub head: u64,
    /// The oldest message still available.
    pub tail: u64,
    /// Whether the writer closed the channel.
    pub closed: bool,
    /// Whether the writer is alive.
    pub writer_alive: bool,
    /// The number of occupied reader places (`shmb_channel_status_place()` indexes them).
    pub places: usize,
}

/// One occupied reader place, filled in by `shmb_channel_status_place()`. Plain data owned by
/// the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shmb_channel_place {
    /// The place (0 to `readers` - 1).
    pub index: u32,
    /// Whether a reader occupies it.
    pub active: bool,
    /// Whether that reader's process is alive (its liveness lock is held). A dead reader's
    /// place is freed by the writer the next time it needs a slot, or by the next reader.
    pub alive: bool,
    /// The next message it takes.
    pub cursor: u64,
    /// Messages published that it has not taken yet.
    pub lag: u64,
    /// Messages it lost.
    pub lost: u64,
    /// Messages it took.
    pub taken: u64,
    /// Its pid (in its own PID namespace: information).
    pub pid: u32,
}

/// Create the channel `name` (`create_only`) with options `opts` (NULL: the defaults), as its
/// one writer. The segment gets its name only once complete; readers may open it from then on.
///
/// Ownership: `name` and `opts` are borrowed; on success the caller owns `*out`. Freeing the
/// writer closes the channel; removing the name is up to the caller (`shmb_remove()`).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_ARGUMENT` (fewer than 2
/// slots, no readers or more than 1024, `max_message` 0, `history` not below `slots`, an
/// unknown policy, bad permission bits), `SHMB_INVALID_SIZE` (too large), `SHMB_ALREADY_EXISTS`,
/// `SHMB_NO_SPACE`, `SHMB_PERMISSION_DENIED`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `opts` is NULL or points to a
/// `shmb_channel_options`; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_create(
    name: *const c_char,
    opts: *const shmb_channel_options,
    out: *mut *mut shmb_channel_writer,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_create";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let opts = arg!(opts_arg(opts));
        let w = ChannelWriter::create(name, &opts.to_core(F)?)?;
        let name = c_string(w.framed().name());
        arg!(give(
            out,
            shmb_channel_writer {
                inner: w,
                loans: Vec::new(),
                name,
            },
        ));
        Ok(())
    })
}

/// Loan a slot for a message of up to `len` bytes (at most `max_message`), waiting as `wait`
/// allows (NULL: no limit) when none is free: under `SHMB_POLICY_BLOCK` until the slowest
/// live reader has taken the oldest message; under either policy while readers hold every
/// slot. Writes `*out` on success: fill `out->data` in place (up to `out->capacity` bytes),
/// then publish or discard it. Several loans may be outstanding at once.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_OUT_OF_BOUNDS` (`len` exceeds `max_message`),
/// `SHMB_CLOSED` (after `shmb_channel_writer_close()`), `SHMB_TIMEOUT` (the message names the
/// readers that hold the writer up), `SHMB_ABORTED` (the interrupt asked to stop),
/// `SHMB_INVALID_ARGUMENT` (a bad `timeout_ms`).
///
/// # Safety
///
/// `writer` is NULL or a live handle; `wait` is NULL or points to a `shmb_wait`; `out` is NULL
/// or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_loan(
    writer: *mut shmb_channel_writer,
    len: usize,
    wait: *const shmb_wait,
    out: *mut shmb_channel_loan,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_loan";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let w = arg!(mut_arg(writer, F, "writer"))?;
        let wait = arg!(wait_arg(wait, F))?;
        let loan = wait.run(false, |wt| w.inner.loan_raw(len, wt))?;
        let c = shmb_channel_loan {
            data: loan.as_mut_ptr().cast(),
            len: loan.len(),
            capacity: usize::try_from(w.inner.max_message()).unwrap_or(usize::MAX),
            slot: loan.slot(),
        };
        w.loans.push(Loaned::Raw(loan));
        arg!(write_out(out, c));
        Ok(())
    })
}

/// The position of `loan` among the writer's outstanding loans.
fn find_loan(
    w: &shmb_channel_writer,
    loan: &shmb_channel_loan,
    func: &str,
) -> Result<usize, FfiError> {
    w.loans.iter().position(|l| l.raw().slot() == loan.slot).ok_or_else(|| {
        FfiError::new(
            shmb_result::SHMB_INVALID_ARGUMENT,
            format!(
                "{func}: channel {:?}: slot {} is not loaned from this writer (published or discarded already?)",
                w.inner.framed().name(),
                loan.slot
            ),
        )
    })
}

/// Publish the first `len` bytes (at most `max_message`) of `*loan` as the next message, with
/// `tag`, and wake waiting readers. Stores its sequence number in `*out_seq` when `out_seq` is
/// not NULL. On success the loan is over (its `data` must not be touched again); on an error
/// it stays outstanding. An array loan (`shmb_channel_writer_loan_array()`) is published
/// whole, with `len` = its `len`, and the message gets the `SHMB_MESSAGE_ARRAY` flag.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_OUT_OF_BOUNDS` (`len` exceeds `max_message`),
/// `SHMB_INVALID_ARGUMENT` (not an outstanding loan of this writer: published or discarded
/// already, or another writer's; an array loan with another `len`).
///
/// # Safety
///
/// `writer` is NULL or a live handle; `loan` is NULL or points to a `shmb_channel_loan`;
/// `out_seq` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_publish(
    writer: *mut shmb_channel_writer,
    loan: *const shmb_channel_loan,
    len: usize,
    tag: u32,
    out_seq: *mut u64,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_publish";
    guard(F, || {
        let w = arg!(mut_arg(writer, F, "writer"))?;
        let loan = arg!(ref_arg(loan, F, "loan"))?;
        let i = find_loan(w, loan, F)?;
        let seq = match &w.loans[i] {
            Loaned::Raw(l) => w.inner.publish_raw(l, len, tag, 0)?,
            Loaned::Array(a) => {
                if len != a.raw().len() {
                    return Err(FfiError::new(
                        shmb_result::SHMB_INVALID_ARGUMENT,
                        format!(
                            "{F}: channel {:?}: slot {} holds an array message of {} bytes, \
                             published whole: pass its len ({}), not {len}",
                            w.inner.framed().name(),
                            loan.slot,
                            a.raw().len(),
                            a.raw().len()
                        ),
                    ));
                }
                w.inner.publish_array_raw(a, tag)?
            }
        };
        w.loans.swap_remove(i);
        arg!(put(out_seq, seq));
        Ok(())
    })
}

/// Give the slot of `*loan` back unpublished (no reader ever sees it); the loan is over.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (not an outstanding loan of this
/// writer).
///
/// # Safety
///
/// `writer` is NULL or a live handle; `loan` is NULL or points to a `shmb_channel_loan`.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_discard(
    writer: *mut shmb_channel_writer,
    loan: *const shmb_channel_loan,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_discard";
    guard(F, || {
        let w = arg!(mut_arg(writer, F, "writer"))?;
        let loan = arg!(ref_arg(loan, F, "loan"))?;
        let i = find_loan(w, loan, F)?;
        w.inner.discard_raw(w.loans[i].raw())?;
        w.loans.swap_remove(i);
        Ok(())
    })
}

/// Copy `len` bytes of `data` into a slot and publish them with `tag` (a loan and a publish in
/// one call), waiting for a slot as `wait` allows (NULL: no limit). Stores the message's
/// sequence number in `*out_seq` when `out_seq` is not NULL.
///
/// Errors: those of `shmb_channel_writer_loan()`; `SHMB_NULL_ARGUMENT` (`data` may be NULL
/// only when `len` is 0).
///
/// # Safety
///
/// `writer` is NULL or a live handle; `data` is NULL or valid for `len` bytes of reads; `wait`
/// is NULL or points to a `shmb_wait`; `out_seq` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_send(
    writer: *mut shmb_channel_writer,
    data: *const c_void,
    len: usize,
    tag: u32,
    wait: *const shmb_wait,
    out_seq: *mut u64,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_send";
    guard(F, || {
        let w = arg!(mut_arg(writer, F, "writer"))?;
        let data = arg!(bytes_arg(data, len, F, "data"))?;
        let wait = arg!(wait_arg(wait, F))?;
        let seq = wait.run(false, |wt| w.inner.send(data, tag, wt))?;
        arg!(put(out_seq, seq));
        Ok(())
    })
}

/// Close the channel: readers take every message published, then get `SHMB_WRITER_CLOSED`.
/// Later loans and sends fail with `SHMB_CLOSED`. Calling it again does nothing. Freeing the
/// writer also closes the channel.
///
/// Errors: `SHMB_NULL_ARGUMENT`.
///
/// # Safety
///
/// `writer` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_close(
    writer: *mut shmb_channel_writer,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_close";
    guard(F, || {
        let w = arg!(mut_arg(writer, F, "writer"))?;
        w.inner.close();
        Ok(())
    })
}

/// Messages published so far (the next message's sequence number); 0 when `writer` is NULL.
///
/// # Safety
///
/// `writer` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_published(writer: *const shmb_channel_writer) -> u64 {
    guard_value(0, || {
        arg!(opt_ref(writer)).map_or(0, |w| w.inner.published())
    })
}

/// The largest message the channel carries; 0 when `writer` is NULL.
///
/// # Safety
///
/// `writer` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_max_message(
    writer: *const shmb_channel_writer,
) -> u64 {
    guard_value(0, || {
        arg!(opt_ref(writer)).map_or(0, |w| w.inner.max_message())
    })
}

/// The channel's name. Borrowed: valid until `writer` is freed. NULL when `writer` is NULL.
///
/// # Safety
///
/// `writer` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_name(
    writer: *const shmb_channel_writer,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(writer)).map_or(std::ptr::null(), |w| w.name.as_ptr())
    })
}

/// Close the channel (as `shmb_channel_writer_close()`) and release the writer; outstanding
/// loans are given up unpublished. The name stays (`shmb_remove()` removes it). NULL is a
/// no-op.
///
/// # Safety
///
/// `writer` is NULL or a handle not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_free(writer: *mut shmb_channel_writer) {
    guard_value((), || arg!(take(writer)));
}

/// Open the channel `name` and take one of its reader places, waiting for the channel to
/// appear as `wait` allows (NULL: without a limit; a `timeout_ms` of 0 does not wait). The
/// reader starts with the next message published, or with the last `history` ones the channel
/// was created with (those still available).
///
/// Ownership: `name` is borrowed; on success the caller owns `*out`. Freeing the reader gives
/// its place back (so does its process dying).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_TIMEOUT` (no such segment appeared
/// in time), `SHMB_ABORTED`, `SHMB_INVALID_ARGUMENT` (a bad `timeout_ms`),
/// `SHMB_PERMISSION_DENIED`, `SHMB_UNSUPPORTED` (not a channel), `SHMB_ALREADY_EXISTS` (every
/// reader place is taken), `SHMB_BAD_MAGIC`, `SHMB_CORRUPT_HEADER` / `SHMB_TRUNCATED` (its
/// layout does not add up or does not fit the segment).
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `wait` is NULL or points to a `shmb_wait`; `out`
/// is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_open(
    name: *const c_char,
    wait: *const shmb_wait,
    out: *mut *mut shmb_channel_reader,
) -> shmb_result {
    const F: &str = "shmb_channel_reader_open";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let wait = arg!(wait_arg(wait, F))?;
        let r = wait.run(false, |w| ChannelReader::open(name, w))?;
        let name = c_string(r.framed().name());
        arg!(give(
            out,
            shmb_channel_reader {
                inner: r,
                held: Vec::new(),
                name,
            },
        ));
        Ok(())
    })
}

/// Hand `got` to C: keep it as held, write `*out`.
///
/// # Safety
///
/// `out` is valid for a write.
unsafe fn hand_out(r: &mut shmb_channel_reader, got: Received, out: *mut shmb_channel_message) {
    r.held.push(got);
    arg!(write_out(out, shmb_channel_message::from(&got)));
}

/// Take the next message if one is available, without waiting. Sets `*out_received` to true
/// and fills `*out` when it took one; sets `*out_received` to false (and leaves `*out` alone)
/// when none is available yet: that is not an error. A message taken must be released
/// (`shmb_channel_reader_release()`).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_WRITER_CLOSED` (every message of a closed channel was
/// taken: the end), `SHMB_CHECKSUM_MISMATCH` (the message was skipped: the next call moves
/// on), `SHMB_CORRUPT_HEADER` (the queue, a slot header or this reader's cursor does not add
/// up).
///
/// # Safety
///
/// `reader` is NULL or a live handle; `out` and `out_received` are NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_try_recv(
    reader: *mut shmb_channel_reader,
    out: *mut shmb_channel_message,
    out_received: *mut bool,
) -> shmb_result {
    const F: &str = "shmb_channel_reader_try_recv";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let out_received = out_arg(out_received, F, "out_received")?;
        let r = arg!(mut_arg(reader, F, "reader"))?;
        let got = r.inner.try_recv_raw()?;
        let received = got.is_some();
        if let Some(m) = got {
            arg!(hand_out(r, m, out));
        }
        arg!(write_out(out_received, received));
        Ok(())
    })
}

/// Wait, as `wait` allows (NULL: no limit), for the next message and take it into `*out`. A
/// message taken must be released (`shmb_channel_reader_release()`).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_WRITER_CLOSED` (the writer closed the channel and every
/// message was taken: the end), `SHMB_PEER_GONE` (the writer died without closing, after the
/// messages it published), `SHMB_TIMEOUT`, `SHMB_ABORTED`, `SHMB_INVALID_ARGUMENT` (a bad
/// `timeout_ms`), and those of `shmb_channel_reader_try_recv()`.
///
/// # Safety
///
/// `reader` is NULL or a live handle; `wait` is NULL or points to a `shmb_wait`; `out` is NULL
/// or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_recv(
    reader: *mut shmb_channel_reader,
    wait: *const shmb_wait,
    out: *mut shmb_channel_message,
) -> shmb_result {
    const F: &str = "shmb_channel_reader_recv";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let r = arg!(mut_arg(reader, F, "reader"))?;
        let wait = arg!(wait_arg(wait, F))?;
        let got = wait.run(false, |w| r.inner.recv_raw(w))?;
        arg!(hand_out(r, got, out));
        Ok(())
    })
}

/// Wait, as `wait` allows (NULL: no limit), until a message is available or the channel
/// ended, without taking anything (for event loops: then call
/// `shmb_channel_reader_try_recv()`, which reports the end).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_PEER_GONE` (the writer died), `SHMB_TIMEOUT`,
/// `SHMB_ABORTED`, `SHMB_INVALID_ARGUMENT` (a bad `timeout_ms`).
///
/// # Safety
///
/// `reader` is NULL or a live handle; `wait` is NULL or points to a `shmb_wait`.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_wait_ready(
    reader: *mut shmb_channel_reader,
    wait: *const shmb_wait,
) -> shmb_result {
    const F: &str = "shmb_channel_reader_wait_ready";
    guard(F, || {
        let r = arg!(mut_arg(reader, F, "reader"))?;
        let wait = arg!(wait_arg(wait, F))?;
        wait.run(false, |w| r.inner.wait_ready(w))?;
        Ok(())
    })
}

/// Release a message this reader took: its `data` is invalid afterwards, and the writer may
/// reuse its slot. Releasing one twice, or one this reader does not hold, does nothing.
///
/// Errors: `SHMB_NULL_ARGUMENT`.
///
/// # Safety
///
/// `reader` is NULL or a live handle; `msg` is NULL or points to a `shmb_channel_message`.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_release(
    reader: *mut shmb_channel_reader,
    msg: *const shmb_channel_message,
) -> shmb_result {
    const F: &str = "shmb_channel_reader_release";
    guard(F, || {
        let r = arg!(mut_arg(reader, F, "reader"))?;
        let msg = arg!(ref_arg(msg, F, "msg"))?;
        if let Some(i) = r
            .held
            .iter()
            .position(|h| h.slot == msg.slot && h.seq == msg.seq)
        {
            r.inner.release(&r.held.swap_remove(i));
        }
        Ok(())
    })
}

/// This reader's place (0 to `readers` - 1); `UINT32_MAX` when `reader` is NULL.
///
/// # Safety
///
/// `reader` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_index(reader: *const shmb_channel_reader) -> u32 {
    guard_value(u32::MAX, || {
        arg!(opt_ref(reader)).map_or(u32::MAX, |r| r.inner.index())
    })
}

/// The largest message the channel carries; 0 when `reader` is NULL.
///
/// # Safety
///
/// `reader` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_max_message(
    reader: *const shmb_channel_reader,
) -> u64 {
    guard_value(0, || {
        arg!(opt_ref(reader)).map_or(0, |r| r.inner.max_message())
    })
}

/// The channel's policy (`SHMB_POLICY_BLOCK` or `SHMB_POLICY_OVERWRITE`); `UINT32_MAX` when
/// `reader` is NULL.
///
/// # Safety
///
/// `reader` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_policy(
    reader: *const shmb_channel_reader,
) -> shmb_channel_policy {
    guard_value(u32::MAX, || {
        arg!(opt_ref(reader)).map_or(u32::MAX, |r| r.inner.policy().code())
    })
}

/// The channel's name. Borrowed: valid until `reader` is freed. NULL when `reader` is NULL.
///
/// # Safety
///
/// `reader` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_name(
    reader: *const shmb_channel_reader,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(reader)).map_or(std::ptr::null(), |r| r.name.as_ptr())
    })
}

/// Release the reader: every message it holds is released (their `data` is invalid
/// afterwards) and its place is given back. NULL is a no-op.
///
/// # Safety
///
/// `reader` is NULL or a handle not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_reader_free(reader: *mut shmb_channel_reader) {
    guard_value((), || arg!(take(reader)));
}

/// Take a snapshot of the channel `name` (opened read-only, without taking a place): for
/// listings and monitors.
///
/// Ownership: `name` is borrowed; on success the caller owns `*out` and releases it with
/// `shmb_channel_status_free()`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_NOT_FOUND`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_BAD_MAGIC` and the other header errors, `SHMB_UNSUPPORTED`
/// (not a channel), `SHMB_CORRUPT_HEADER` / `SHMB_TRUNCATED` (its layout does not add up).
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_status_read(
    name: *const c_char,
    out: *mut *mut shmb_channel_status,
) -> shmb_result {
    const F: &str = "shmb_channel_status_read";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let inner = channel::status(&FramedSegment::open(name, Access::ReadOnly)?)?;
        arg!(give(out, shmb_channel_status { inner }));
        Ok(())
    })
}

/// Take a snapshot of the writer's channel (as `shmb_channel_status_read()`).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_CORRUPT_HEADER` (the layout was changed under the
/// writer).
///
/// # Safety
///
/// `writer` is NULL or a live handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_writer_status(
    writer: *const shmb_channel_writer,
    out: *mut *mut shmb_channel_status,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_status";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let w = arg!(ref_arg(writer, F, "writer"))?;
        let inner = channel::status(w.inner.framed())?;
        arg!(give(out, shmb_channel_status { inner }));
        Ok(())
    })
}

/// Fill the caller's `*out` with the snapshot's configuration and state.
///
/// Errors: `SHMB_NULL_ARGUMENT`.
///
/// # Safety
///
/// `status` is NULL or a live snapshot; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_status_info(
    status: *const shmb_channel_status,
    out: *mut shmb_channel_info,
) -> shmb_result {
    const F: &str = "shmb_channel_status_info";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let s = &arg!(ref_arg(status, F, "status"))?.inner;
        let info = shmb_channel_info {
            slots: s.slots,
            readers: s.readers,
            max_message: s.max_message,
            policy: s.policy.code(),
            history: s.history,
            checksum: s.checksum,
            head: s.head,
            tail: s.tail,
            closed: s.closed,
            writer_alive: s.writer_alive,
            places: s.reader_places.len(),
        };
        arg!(write_out(out, info));
        Ok(())
    })
}

/// Fill the caller's `*out` with occupied reader place number `i` of the snapshot (0 to
/// `shmb_channel_info.places` - 1, in the order of their index).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_OUT_OF_BOUNDS` (`i` too large).
///
/// # Safety
///
/// `status` is NULL or a live snapshot; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_status_place(
    status: *const shmb_channel_status,
    i: usize,
    out: *mut shmb_channel_place,
) -> shmb_result {
    const F: &str = "shmb_channel_status_place";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let s = &arg!(ref_arg(status, F, "status"))?.inner;
        let p = s.reader_places.get(i).ok_or_else(|| {
            FfiError::new(
                shmb_result::SHMB_OUT_OF_BOUNDS,
                format!(
                    "{F}: place {i} is past the {} occupied reader places of the snapshot",
                    s.reader_places.len()
                ),
            )
        })?;
        let place = shmb_channel_place {
            index: p.index,
            active: p.active,
            alive: p.alive,
            cursor: p.cursor,
            lag: p.lag,
            lost: p.lost,
            taken: p.taken,
            pid: p.pid,
        };
        arg!(write_out(out, place));
        Ok(())
    })
}

/// Release a snapshot. NULL is a no-op.
///
/// # Safety
///
/// `status` is NULL or a snapshot not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_status_free(status: *mut shmb_channel_status) {
    guard_value((), || arg!(take(status)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_are_the_cores() {
        let c = shmb_channel_options::default();
        let core = c.to_core("t").unwrap();
        let d = ChannelOptions::default();
        assert_eq!(
            (
                core.slots,
                core.max_message,
                core.readers,
                core.policy,
                core.history,
                core.checksum
            ),
            (
                d.slots,
                d.max_message,
                d.readers,
                d.policy,
                d.history,
                d.checksum
            )
        );
        let bad = shmb_channel_options { policy: 7, ..c };
        let e = bad.to_core("t").unwrap_err();
        assert_eq!(e.code, shmb_result::SHMB_INVALID_ARGUMENT);
        assert!(e.message.contains("unknown policy 7"), "{}", e.message);
    }

    #[test]
    fn constants_are_the_cores() {
        assert_eq!(SHMB_MESSAGE_ARRAY, channel::msg_flags::ARRAY);
        assert_eq!(SHMB_KIND_CHANNEL, shmbridge::Kind::Channel.code());
        assert_eq!(SHMB_POLICY_BLOCK, Policy::Block.code());
        assert_eq!(SHMB_POLICY_OVERWRITE, Policy::Overwrite.code());
    }
}
