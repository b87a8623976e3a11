//! Channels (`shmbridge::channel`): one writer, many readers, variable-size messages in
//! slots, zero copy both ways, as the Python classes `Channel`, `ChannelWriter`, `Loan`,
//! `ChannelReader` and `Message`.
//!
//! Everything a channel decides (layout, holds, policies, liveness, the end) is the core's;
//! this module keeps the core objects alive as long as Python can see their memory, runs
//! every wait through [`blocking`] (without the GIL, Ctrl-C let through), and exports loans
//! and messages through the buffer protocol.
//!
//! **Buffers.** The extension is built for the stable ABI of 3.9, where PyO3 cannot give a
//! class buffer slots (see [`crate::exporter`]). `Loan` and `Message` are therefore two small
//! heap types made here with `PyType_FromSpecWithBases`: each is a subclass of a PyO3 class
//! (`_LoanBase`, `_MessageBase`, which have every method) that adds only `bf_getbuffer` and
//! `bf_releasebuffer`. Instances are made by calling the subtype, whose `tp_new` is the base's
//! (PyO3's), with the Rust value handed over in a thread-local; called from Python they raise
//! `TypeError`.
//!
//! **Lifetimes.** A `Message` holds its reader (an `Arc` of the core reader) and its slot (the
//! reader's holder bit) until it is released *and* no buffer exported from it remains: a
//! memoryview or numpy array of a message never sees its slot reused, whatever was released
//! or closed. A `Loan` holds the writer, so the mapping under its views stays mapped.

use std::cell::RefCell;
use std::ffi::{c_int, c_void, CStr};
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyStopIteration, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCFunction, PyDict, PyTuple, PyType};
use shmbridge::channel::{self as core, ChannelOptions, Policy, RawLoan, Received};
use shmbridge::{Error, ErrorKind, FramedOptions, Wait};

use crate::args;
use crate::errors::{self, IntoPy};
use crate::exporter::InputBuffer;
use crate::wait::{blocking, Limit, SPIN_WITH_GIL};

// ---- failures that may still be a core error -------------------------------------------

/// A failure that is either the core's (so a caller can look at its kind, as iteration does
/// for the end of a channel) or already a Python exception.
enum Fail {
    Core(Error),
    Py(PyErr),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Self::Core(e)
    }
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Self::Py(e)
    }
}

impl From<Fail> for PyErr {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Core(e) => errors::to_py(&e),
            Fail::Py(e) => e,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A count from Python as the core's integer type: `ValueError` naming `what` when it does not
/// fit (negative, or too large); the core checks the ranges that matter.
fn count<T: TryFrom<i64>>(what: &str, v: i64) -> PyResult<T> {
    T::try_from(v).map_err(|_| PyValueError::new_err(format!("invalid {what} {v}: out of range")))
}

// ---- buffer subtypes -------------------------------------------------------------------

/// `Py_bf_getbuffer` and `Py_bf_releasebuffer` (typeslots.h: 1 and 2 in every version).
const PY_BF_GETBUFFER: c_int = 1;
const PY_BF_RELEASEBUFFER: c_int = 2;

/// The start of CPython's `Py_buffer`: enough to clear `obj` on an error, as the protocol
/// asks (the rest is filled by `PyBuffer_FillInfo`).
#[repr(C)]
struct BufferHead {
    buf: *mut c_void,
    obj: *mut ffi::PyObject,
}

extern "C" {
    // The exporter's declaration (its view type; the same C function).
    fn PyBuffer_FillInfo(
        view: *mut crate::exporter::PyBufferView,
        obj: *mut ffi::PyObject,
        buf: *mut c_void,
        len: ffi::Py_ssize_t,
        readonly: c_int,
        flags: c_int,
    ) -> c_int;
}

type GetBuffer = unsafe extern "C" fn(*mut ffi::PyObject, *mut BufferHead, c_int) -> c_int;
type ReleaseBuffer = unsafe extern "C" fn(*mut ffi::PyObject, *mut BufferHead);

/// A heap type named `name` that subclasses the PyO3 class `base` and adds the buffer slots.
fn buffer_subtype(
    py: Python<'_>,
    base: &Bound<'_, PyType>,
    name: &'static CStr,
    doc: &'static CStr,
    get: GetBuffer,
    release: ReleaseBuffer,
) -> PyResult<Py<PyType>> {
    // SAFETY: `base` is a live heap type (PyO3 makes its classes with PyType_FromSpec), so
    // PyType_GetSlot may be asked for its tp_new; the GIL is held.
    let new = unsafe { ffi::PyType_GetSlot(base.as_type_ptr(), ffi::Py_tp_new) };
    let mut slots = [
        ffi::PyType_Slot {
            slot: PY_BF_GETBUFFER,
            pfunc: get as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: PY_BF_RELEASEBUFFER,
            pfunc: release as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_new,
            pfunc: new,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: doc.as_ptr().cast_mut().cast(),
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: std::ptr::null_mut(),
        },
    ];
    let mut spec = ffi::PyType_Spec {
        // Kept by the type: 'static. The instance layout (basicsize 0) is the base's.
        name: name.as_ptr(),
        basicsize: 0,
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    };
    let bases = PyTuple::new(py, [base])?;
    // SAFETY: a valid spec and slot array for the call (CPython copies what it keeps except the
    // static name and doc), a tuple of bases, and the GIL held.
    let tp = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyType_FromSpecWithBases(&raw mut spec, bases.as_ptr()),
        )
    }?;
    Ok(tp.cast_into::<PyType>()?.unbind())
}

/// Run a buffer slot's body: no panic crosses into CPython, and an error becomes the
/// exception set with `-1` returned (and `view.obj` cleared).
///
/// # Safety
///
/// Called from a buffer slot, with the GIL held and `view` valid.
unsafe fn buffer_slot(
    view: *mut BufferHead,
    body: impl FnOnce(Python<'_>) -> PyResult<()>,
) -> c_int {
    // SAFETY: CPython calls buffer slots with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(py)))
        .unwrap_or_else(|_| {
            Err(PyRuntimeError::new_err(
                "shmbridge: panic in a buffer export",
            ))
        });
    match result {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: the view is valid for the call (the caller's promise).
            unsafe { (*view).obj = std::ptr::null_mut() };
            e.restore(py);
            -1
        }
    }
}

/// Fill `view` for `len` bytes at `ptr`, owned by `obj`.
///
/// # Safety
///
/// `view` valid, `obj` a live object that keeps `len` bytes at `ptr` valid while the view
/// lives, the GIL held.
unsafe fn fill(
    py: Python<'_>,
    view: *mut BufferHead,
    obj: *mut ffi::PyObject,
    ptr: *mut u8,
    len: usize,
    readonly: bool,
    flags: c_int,
) -> PyResult<()> {
    let len =
        ffi::Py_ssize_t::try_from(len).map_err(|_| PyValueError::new_err("buffer too large"))?;
    // SAFETY: the caller's promises; FillInfo takes a reference to `obj` and raises BufferError
    // for a writable request on a read-only buffer.
    if unsafe {
        PyBuffer_FillInfo(
            view.cast(),
            obj,
            ptr.cast(),
            len,
            c_int::from(readonly),
            flags,
        )
    } != 0
    {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// A new instance of one of our buffer subtypes: its `tp_new` (the PyO3 base's, which takes
/// the value from the thread-local) called directly, as `tp(*())` would without `tp_init`.
fn instantiate<'py>(py: Python<'py>, tp: &Py<PyType>) -> PyResult<Bound<'py, PyAny>> {
    let tp = tp.bind(py);
    // SAFETY: our subtypes are heap types whose tp_new slot is set (the base's); calling it
    // with the type, an empty tuple and no keywords is what type_call does; the GIL is held
    // and the result is a new reference or null with an exception set.
    unsafe {
        let new = ffi::PyType_GetSlot(tp.as_type_ptr(), ffi::Py_tp_new);
        if new.is_null() {
            return Err(PyTypeError::new_err("no tp_new"));
        }
        let new: ffi::newfunc = std::mem::transmute(new);
        let args = PyTuple::empty(py);
        Bound::from_owned_ptr_or_err(
            py,
            new(tp.as_type_ptr(), args.as_ptr(), std::ptr::null_mut()),
        )
    }
}

/// The PyO3 base of a buffer subtype: what its buffer slots export.
trait Exports: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync {
    /// The bytes to export (start, length, read-only), counted as one more export; an error
    /// when there is nothing to export any more.
    fn export(&self) -> PyResult<(*mut u8, usize, bool)>;
    /// One export fewer (a view was released, or its filling failed).
    fn unexport(&self);
}

unsafe extern "C" fn getbuffer<T: Exports>(
    obj: *mut ffi::PyObject,
    view: *mut BufferHead,
    flags: c_int,
) -> c_int {
    // SAFETY: the buffer slot of a subtype of `T`, called by CPython with the GIL held and a
    // valid view. The bytes stay valid while `obj` lives (see `Exports::export`), and the
    // view holds a reference to `obj`.
    unsafe {
        buffer_slot(view, |py| {
            let any = Bound::from_borrowed_ptr(py, obj);
            let this = any.cast::<T>()?.get();
            let (ptr, len, readonly) = this.export()?;
            fill(py, view, obj, ptr, len, readonly, flags).inspect_err(|_| this.unexport())
        })
    }
}

unsafe extern "C" fn releasebuffer<T: Exports>(obj: *mut ffi::PyObject, _view: *mut BufferHead) {
    // SAFETY: as `getbuffer`; `obj` is alive (the view being released holds a reference).
    let py = unsafe { Python::assume_attached() };
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: as above.
        let any = unsafe { Bound::from_borrowed_ptr(py, obj) };
        if let Ok(this) = any.cast::<T>() {
            this.get().unexport();
        }
    });
}

thread_local! {
    /// The value the next `Message(...)` call takes (set just before the call).
    static NEW_MESSAGE: RefCell<Option<MessageBase>> = const { RefCell::new(None) };
    /// The value the next `Loan(...)` call takes.
    static NEW_LOAN: RefCell<Option<LoanBase>> = const { RefCell::new(None) };
}

static MESSAGE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static LOAN_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn message_type(py: Python<'_>) -> PyResult<&Py<PyType>> {
    MESSAGE_TYPE.get_or_try_init(py, || {
        buffer_subtype(
            py,
            &py.get_type::<MessageBase>(),
            c"shmbridge._native.Message",
            c"A message a reader took, read in place (read-only buffer protocol: memoryview(msg), \
              np.frombuffer(msg), bytes(msg)). `seq`, `tag`, `timestamp` (seconds since the \
              epoch; `timestamp_ns`), `lost` (messages this reader missed just before it), \
              `flags`. `release()` (or leaving a `with` block) gives it back; after that its \
              bytes raise ClosedError. Views made before the release stay valid: the slot goes \
              back to the writer when the last of them is gone.",
            getbuffer::<MessageBase>,
            releasebuffer::<MessageBase>,
        )
    })
}

fn loan_type(py: Python<'_>) -> PyResult<&Py<PyType>> {
    LOAN_TYPE.get_or_try_init(py, || {
        buffer_subtype(
            py,
            &py.get_type::<LoanBase>(),
            c"shmbridge._native.Loan",
            c"A slot the writer fills in place (writable buffer protocol: memoryview(loan), \
              np.frombuffer(loan, dtype) or np.asarray(loan)); `publish(nbytes=None, tag=0)` \
              makes it the next message, `discard()` gives it back. As a context manager it \
              publishes on a normal exit and discards on an exception. Afterwards its buffer is \
              gone (ClosedError); views made before stay memory-safe but must not be written.",
            getbuffer::<LoanBase>,
            releasebuffer::<LoanBase>,
        )
    })
}

// ---- the writer ------------------------------------------------------------------------

/// The core writer, shared by the Python writer and its loans (a loan's memory is the
/// writer's mapping).
struct WriterCore {
    writer: Mutex<core::ChannelWriter>,
    /// Loans dropped while another thread was using the writer: discarded at its next turn.
    orphans: Mutex<Vec<RawLoan>>,
    /// `close()` was called; done at once, or when the thread using the writer is done.
    close_asked: AtomicBool,
    published: AtomicU64,
    name: String,
}

/// A turn at the writer: settles what was deferred (orphaned loans, a close) when it ends.
struct Turn<'a> {
    guard: MutexGuard<'a, core::ChannelWriter>,
    core: &'a WriterCore,
}

impl std::ops::Deref for Turn<'_> {
    type Target = core::ChannelWriter;
    fn deref(&self) -> &core::ChannelWriter {
        &self.guard
    }
}

impl std::ops::DerefMut for Turn<'_> {
    fn deref_mut(&mut self) -> &mut core::ChannelWriter {
        &mut self.guard
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.core.settle(&mut self.guard);
    }
}

impl WriterCore {
    /// The writer, when no other thread is using it (a call waiting for a slot).
    fn turn(&self) -> PyResult<Turn<'_>> {
        let mut guard = match self.writer.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(format!(
                    "channel writer {:?} is in use by another thread (a writer's calls cannot \
                     overlap)",
                    self.name
                )))
            }
        };
        self.settle(&mut guard);
        Ok(Turn { guard, core: self })
    }

    fn settle(&self, w: &mut core::ChannelWriter) {
        for raw in lock(&self.orphans).drain(..) {
            // Only loans of this writer get here; a second discard is an error we ignore.
            let _ = w.discard_raw(&raw);
        }
        if self.close_asked.load(Ordering::SeqCst) {
            w.close();
        }
    }

    /// Give an unpublished loan's slot back, now or at the writer's next turn.
    fn give_back(&self, raw: RawLoan) {
        match self.writer.try_lock() {
            Ok(mut w) => {
                let _ = w.discard_raw(&raw);
            }
            Err(TryLockError::Poisoned(p)) => {
                let _ = p.into_inner().discard_raw(&raw);
            }
            Err(TryLockError::WouldBlock) => lock(&self.orphans).push(raw),
        }
    }
}

/// Options of a new channel, from `Channel.create`'s arguments.
#[allow(clippy::too_many_arguments)]
fn channel_options(
    slots: i64,
    max_message: i64,
    readers: i64,
    policy: &str,
    history: i64,
    checksum: bool,
    permissions: Option<u32>,
) -> PyResult<ChannelOptions> {
    Ok(ChannelOptions {
        slots: count("slots", slots)?,
        max_message: count("max_message", max_message)?,
        readers: count("readers", readers)?,
        policy: Policy::parse(policy).py()?,
        history: count("history", history)?,
        checksum,
        framed: FramedOptions {
            segment: args::segment_options(false, permissions, false),
        },
    })
}

/// Channels: one writer, up to `readers` readers, messages of up to `max_message` bytes in
/// `slots` slots, zero copy both ways. `Channel.create(...)` makes the channel and returns its
/// `ChannelWriter`; `Channel.open(name)` takes a reader place and returns a `ChannelReader`;
/// `Channel.status(name)` describes one. Nobody removes the name: `shmbridge.remove(name)`
/// when it is no longer needed (readers that have it open keep their mapping).
#[pyclass(module = "shmbridge._native", frozen)]
pub struct Channel;

#[pymethods]
impl Channel {
    /// Create the channel `name` (it appears only once complete) and return its writer.
    /// `policy`: "block" (the writer waits for the slowest live reader: every reader gets
    /// every message) or "overwrite" (the writer drops the oldest messages; a reader that fell
    /// behind learns how many it lost). `history`: how many past messages a reader that joins
    /// late starts with (less than `slots`). `checksum`: every message carries a CRC-32 that
    /// readers check. `permissions`: the segment's mode (default 0o600).
    #[staticmethod]
    #[pyo3(signature = (name, *, slots, max_message, readers, policy = "block", history = 0,
                        checksum = false, permissions = None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        name: &str,
        slots: i64,
        max_message: i64,
        readers: i64,
        policy: &str,
        history: i64,
        checksum: bool,
        permissions: Option<u32>,
    ) -> PyResult<ChannelWriter> {
        let opts = channel_options(
            slots,
            max_message,
            readers,
            policy,
            history,
            checksum,
            permissions,
        )?;
        let w = py
            .detach(|| core::ChannelWriter::create(name, &opts))
            .py()?;
        let name = w.framed().name().to_owned();
        Ok(ChannelWriter {
            opts,
            core: Arc::new(WriterCore {
                writer: Mutex::new(w),
                orphans: Mutex::new(Vec::new()),
                close_asked: AtomicBool::new(false),
                published: AtomicU64::new(0),
                name,
            }),
        })
    }

    /// Open the channel `name` and take a reader place (`FileExistsError` when every place is
    /// taken), waiting up to `timeout` seconds for the channel to appear (None: no limit; 0:
    /// `shmbridge.Timeout` at once when it does not exist). The reader starts with the next
    /// message (or the channel's `history`).
    #[staticmethod]
    #[pyo3(signature = (name, *, timeout = None))]
    fn open(py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<ChannelReader> {
        let timeout = args::timeout(timeout)?;
        let r = blocking(py, timeout, Limit::Deadline, |w| {
            core::ChannelReader::open(name, w)
        })?
        .py()?;
        Ok(ChannelReader::wrap(r))
    }

    /// Describe the channel `name`: its configuration, how far the writer got, and each
    /// reader place's lag (opens it read-only; takes no place).
    #[staticmethod]
    fn status(py: Python<'_>, name: &str) -> PyResult<ChannelStatus> {
        let st = py
            .detach(|| {
                let f = shmbridge::FramedSegment::open(name, shmbridge::Access::ReadOnly)?;
                core::status(&f)
            })
            .py()?;
        Ok(ChannelStatus::from(st))
    }
}

/// The writing end of a channel (from `Channel.create`): `loan(n)` a slot and fill it in
/// place, or `send(data, tag)` a copy. `close()` ends the channel: readers take every message
/// published, then see the end (`WriterClosed`, the end of iteration). As a context manager it
/// closes on exit. A writer that is never closed closes when garbage-collected (and its loans
/// are gone); one whose process dies makes readers raise `PeerGone` after the messages it
/// published. Every wait (for a free slot) lets Ctrl-C through; a writer's calls cannot
/// overlap across threads (`RuntimeError`).
#[pyclass(module = "shmbridge._native", frozen)]
pub struct ChannelWriter {
    core: Arc<WriterCore>,
    opts: ChannelOptions,
}

impl ChannelWriter {
    fn open_turn(&self) -> PyResult<Turn<'_>> {
        if self.core.close_asked.load(Ordering::SeqCst) {
            return Err(errors::closed(&format!(
                "channel writer {:?}",
                self.core.name
            )));
        }
        self.core.turn()
    }
}

#[pymethods]
impl ChannelWriter {
    /// The channel's name.
    #[getter]
    fn name(&self) -> &str {
        &self.core.name
    }

    /// The largest message, in bytes.
    #[getter]
    fn max_message(&self) -> u64 {
        self.opts.max_message
    }

    /// Number of slots.
    #[getter]
    fn slots(&self) -> u32 {
        self.opts.slots
    }

    /// Number of reader places.
    #[getter]
    fn readers(&self) -> u32 {
        self.opts.readers
    }

    /// "block" or "overwrite".
    #[getter]
    fn policy(&self) -> &'static str {
        self.opts.policy.as_str()
    }

    /// How many past messages a late reader starts with.
    #[getter]
    fn history(&self) -> u32 {
        self.opts.history
    }

    /// Whether messages carry a CRC-32.
    #[getter]
    fn checksum(&self) -> bool {
        self.opts.checksum
    }

    /// Messages published so far (the next message's sequence number).
    #[getter]
    fn published(&self) -> u64 {
        self.core.published.load(Ordering::SeqCst)
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.core.close_asked.load(Ordering::SeqCst)
    }

    /// Loan a slot for a message of up to `n` bytes (at most `max_message`: else
    /// `shmbridge.OutOfBounds`), waiting up to `timeout` seconds (None: no limit) when none is
    /// free: under "block" until the slowest live reader has taken the oldest message, under
    /// either policy while readers hold every slot. `shmbridge.Timeout` names the readers that
    /// hold it up. Several loans may be outstanding.
    #[pyo3(signature = (n, *, timeout = None))]
    fn loan<'py>(
        &self,
        py: Python<'py>,
        n: i64,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = args::timeout(timeout)?;
        let len: usize = count("loan size", n)?;
        let mut turn = self.open_turn()?;
        // A free slot: no wait, no GIL round trip.
        let raw = if let Some(raw) = turn.try_loan_raw(len).py()? {
            raw
        } else {
            let w: &mut core::ChannelWriter = &mut turn;
            blocking(py, timeout, Limit::Deadline, |wait| w.loan_raw(len, wait))?.py()?
        };
        drop(turn);
        let base = LoanBase {
            writer: Arc::clone(&self.core),
            len,
            state: Mutex::new(LoanState { raw: Some(raw) }),
            array: None,
        };
        NEW_LOAN.with(|s| *s.borrow_mut() = Some(base));
        let made = instantiate(py, loan_type(py)?);
        // Not taken (the call failed early): dropping it gives the slot back.
        drop(NEW_LOAN.with(|s| s.borrow_mut().take()));
        made
    }

    /// Loan a slot for an array of `shape` and `dtype` (a name such as "uint8" or a numpy
    /// dtype), contiguous in `order`, its header (docs/SPEC.md 7.6) already in the slot.
    /// Returns the `Loan`: `loan.array` is a writable numpy array in the slot; `publish(tag=)`
    /// sends it with the ARRAY flag (readers' `message.array()`). `shmbridge.OutOfBounds`
    /// when header and data exceed `max_message`. Waits as `loan()` does.
    #[pyo3(signature = (shape, dtype, *, order = "C", timeout = None))]
    fn loan_array<'py>(
        &self,
        py: Python<'py>,
        shape: Vec<i64>,
        dtype: &Bound<'py, PyAny>,
        order: &str,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let header = shmbridge::array::ArrayHeader::new(
            crate::array::dtype_arg(dtype)?,
            &crate::array::shape_arg(shape)?,
            crate::array::order_arg(order)?,
        )
        .map_err(|e| errors::to_py(&e.with_segment(&self.core.name)))?;
        let timeout = args::timeout(timeout)?;
        let mut turn = self.open_turn()?;
        let loan = if let Some(loan) = turn.try_loan_array_raw(&header).py()? {
            loan
        } else {
            let w: &mut core::ChannelWriter = &mut turn;
            blocking(py, timeout, Limit::Deadline, |wait| {
                w.loan_array_raw(&header, wait)
            })?
            .py()?
        };
        drop(turn);
        let (raw, header) = loan.into_parts();
        let base = LoanBase {
            writer: Arc::clone(&self.core),
            len: header.total_len() as usize,
            state: Mutex::new(LoanState { raw: Some(raw) }),
            array: Some(header),
        };
        NEW_LOAN.with(|s| *s.borrow_mut() = Some(base));
        let made = instantiate(py, loan_type(py)?);
        drop(NEW_LOAN.with(|s| s.borrow_mut().take()));
        made
    }

    /// Copy `data` (any bytes-like object) into a slot and publish it with `tag` (0 to
    /// 2**32-1); returns its sequence number. Waits as `loan()` does.
    #[pyo3(signature = (data, tag = 0, *, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        tag: u32,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let timeout = args::timeout(timeout)?;
        let src = InputBuffer::get(data, false)?;
        let bytes = src.as_slice();
        let mut turn = self.open_turn()?;
        // A free slot: no wait, no GIL round trip.
        let seq = if let Some(seq) = turn.try_send(bytes, tag).py()? {
            seq
        } else {
            let w: &mut core::ChannelWriter = &mut turn;
            blocking(py, timeout, Limit::Deadline, |wait| {
                w.send(bytes, tag, wait)
            })?
            .py()?
        };
        self.core.published.store(seq + 1, Ordering::SeqCst);
        Ok(seq)
    }

    /// End the channel: readers take what was published, then see the end. Loans still
    /// outstanding can no longer be published. Calling it again does nothing.
    fn close(&self) {
        self.core.close_asked.store(true, Ordering::SeqCst);
        // In use by another thread: that call closes it when it returns.
        if let Ok(turn) = self.core.turn() {
            drop(turn);
        }
    }

    /// The channel's configuration, progress and reader places (`ChannelStatus`).
    fn status(&self) -> PyResult<ChannelStatus> {
        let turn = self.core.turn()?;
        Ok(ChannelStatus::from(core::status(turn.framed()).py()?))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// `close()`.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        format!(
            "ChannelWriter({:?}, slots={}, max_message={}, readers={}, policy={:?}{})",
            self.core.name,
            self.opts.slots,
            self.opts.max_message,
            self.opts.readers,
            self.opts.policy.as_str(),
            if self.closed() { ", closed" } else { "" }
        )
    }
}

// ---- loans -----------------------------------------------------------------------------

struct LoanState {
    /// The slot, until published or discarded.
    raw: Option<RawLoan>,
}

/// The methods of `Loan` (which adds the buffer protocol); see `Loan`'s docstring.
#[pyclass(module = "shmbridge._native", name = "_LoanBase", subclass, frozen)]
pub struct LoanBase {
    writer: Arc<WriterCore>,
    len: usize,
    state: Mutex<LoanState>,
    /// The array header written at the slot's start (a `loan_array` loan).
    array: Option<shmbridge::array::ArrayHeader>,
}

impl LoanBase {
    fn gone(&self) -> PyErr {
        errors::to_py(
            &Error::new(
                ErrorKind::Closed,
                "this loan was published or discarded: its buffer is gone",
            )
            .with_segment(&self.writer.name),
        )
    }
}

impl Exports for LoanBase {
    fn export(&self) -> PyResult<(*mut u8, usize, bool)> {
        // The slot is claimed by this loan (no reader sees it), and the writer's mapping stays
        // mapped while the loan (which its views reference) holds the writer. Views made
        // before a publish or discard stay mapped too; the buffer is gone for new ones.
        match lock(&self.state).raw.as_ref() {
            Some(raw) => Ok((raw.as_mut_ptr(), self.len, false)),
            None => Err(self.gone()),
        }
    }

    fn unexport(&self) {}
}

#[pymethods]
impl LoanBase {
    #[new]
    fn new() -> PyResult<Self> {
        NEW_LOAN.with(|s| s.borrow_mut().take()).ok_or_else(|| {
            PyTypeError::new_err(
                "Loan objects come from ChannelWriter.loan(); they cannot be made directly",
            )
        })
    }

    /// Publish the first `nbytes` bytes (default: all of the loan) as the next message, with
    /// `tag`; returns its sequence number. The loan is then gone.
    #[pyo3(signature = (nbytes = None, tag = 0))]
    fn publish(&self, nbytes: Option<i64>, tag: u32) -> PyResult<u64> {
        // An array loan is published whole, with the ARRAY flag.
        let (nbytes, flags) = match (&self.array, nbytes) {
            (None, n) => (n, 0),
            (Some(_), None) => (None, core::msg_flags::ARRAY),
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "an array loan is published whole: do not pass nbytes",
                ))
            }
        };
        let n = match nbytes {
            None => self.len,
            Some(v) => count("nbytes", v)?,
        };
        if n > self.len {
            return Err(errors::out_of_bounds(format!(
                "nbytes {n} is more than this loan's {} bytes (channel {:?})",
                self.len, self.writer.name
            )));
        }
        let mut st = lock(&self.state);
        let Some(raw) = st.raw.as_ref() else {
            return Err(self.gone());
        };
        let mut turn = self.writer.turn()?;
        let seq = turn.publish_raw(raw, n, tag, flags).py()?;
        st.raw = None;
        self.writer.published.store(seq + 1, Ordering::SeqCst);
        Ok(seq)
    }

    /// For a loan from `loan_array()`: a writable numpy array of the array in the slot
    /// (zero-copy; fill it, then `publish()`). Each call makes a new array over the slot.
    /// `ValueError` for a plain loan.
    #[getter]
    fn array<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let Some(header) = slf.get().array.as_ref() else {
            return Err(PyValueError::new_err(
                "this loan holds raw bytes, not an array (use ChannelWriter.loan_array)",
            ));
        };
        crate::shared_array::ndarray_over(slf.py(), slf.as_any(), header)
    }

    /// Give the slot back unpublished (nobody ever saw it). Does nothing once gone.
    fn discard(&self) {
        if let Some(raw) = lock(&self.state).raw.take() {
            self.writer.give_back(raw);
        }
    }

    /// Whether the loan can still be published (neither published nor discarded).
    #[getter]
    fn active(&self) -> bool {
        lock(&self.state).raw.is_some()
    }

    /// The bytes loaned.
    fn __len__(&self) -> usize {
        self.len
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Publish all of it on a normal exit (unless published or discarded already); discard it
    /// on an exception.
    #[pyo3(signature = (*args))]
    fn __exit__(&self, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let failed = args.get_item(0).is_ok_and(|t| !t.is_none());
        if failed || !self.active() {
            self.discard();
            return Ok(());
        }
        let r = self.publish(None, 0).map(drop);
        if r.is_err() {
            self.discard();
        }
        r
    }

    fn __repr__(&self) -> String {
        format!(
            "Loan({:?}, {} bytes{})",
            self.writer.name,
            self.len,
            if self.active() { "" } else { ", gone" }
        )
    }
}

impl Drop for LoanBase {
    fn drop(&mut self) {
        let raw = self
            .state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .raw
            .take();
        if let Some(raw) = raw {
            self.writer.give_back(raw);
        }
    }
}

// ---- the reader ------------------------------------------------------------------------

/// The core reader, shared by the Python reader, its messages and its async waiters.
struct ReaderCore {
    reader: core::ChannelReader,
    /// Taking a message is one step at a time (the GIL already makes it so; this keeps it
    /// true without one).
    take: Mutex<()>,
    name: Arc<str>,
}

impl ReaderCore {
    /// Take the next message if there is one (`Ok(None)`: none yet).
    fn take<'py>(self: &Arc<Self>, py: Python<'py>) -> Result<Option<Bound<'py, PyAny>>, Fail> {
        let raw = {
            let _one = lock(&self.take);
            self.reader.try_recv_raw()?
        };
        match raw {
            None => Ok(None),
            Some(raw) => Ok(Some(make_message(py, self, raw)?)),
        }
    }
}

fn make_message<'py>(
    py: Python<'py>,
    reader: &Arc<ReaderCore>,
    raw: Received,
) -> PyResult<Bound<'py, PyAny>> {
    let base = MessageBase {
        name: Arc::clone(&reader.name),
        raw,
        state: Mutex::new(MessageState {
            released: false,
            exports: 0,
            reader: Some(Arc::clone(reader)),
        }),
    };
    NEW_MESSAGE.with(|s| *s.borrow_mut() = Some(base));
    let made = instantiate(py, message_type(py)?);
    // Not taken (the call failed early): dropping it releases the message.
    drop(NEW_MESSAGE.with(|s| s.borrow_mut().take()));
    made
}

/// The reading end of a channel (from `Channel.open`): one of its reader places. `recv()`
/// waits for the next message, `try_recv()` takes one if there is one, iteration yields
/// messages until the writer closes the channel, `await recv_async()` waits without blocking
/// the event loop. A writer that died raises `shmbridge.PeerGone` once its messages are taken.
/// `close()` (or garbage collection) gives the place back once the messages still held are
/// released.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct ChannelReader {
    core: Mutex<Option<Arc<ReaderCore>>>,
    name: String,
    index: u32,
    max_message: u64,
    policy: Policy,
}

impl ChannelReader {
    fn wrap(r: core::ChannelReader) -> Self {
        let name = r.framed().name().to_owned();
        Self {
            index: r.index(),
            max_message: r.max_message(),
            policy: r.policy(),
            core: Mutex::new(Some(Arc::new(ReaderCore {
                reader: r,
                take: Mutex::new(()),
                name: Arc::from(name.as_str()),
            }))),
            name,
        }
    }

    fn core(&self) -> PyResult<Arc<ReaderCore>> {
        lock(&self.core)
            .clone()
            .ok_or_else(|| errors::closed(&format!("channel reader {:?}", self.name)))
    }

    /// Wait (without the GIL) for the next message and take it (on this thread, with the GIL).
    fn recv_inner<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<Duration>,
    ) -> Result<Bound<'py, PyAny>, Fail> {
        let core = self.core()?;
        if let Some(m) = core.take(py)? {
            return Ok(m);
        }
        // A message that comes within a few microseconds is taken without releasing the GIL.
        if core.reader.ready_briefly(SPIN_WITH_GIL) {
            if let Some(m) = core.take(py)? {
                return Ok(m);
            }
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let limit = if deadline.is_some() { left } else { timeout };
            blocking(py, limit, Limit::Deadline, |w| core.reader.wait_ready(w))??;
            if let Some(m) = core.take(py)? {
                return Ok(m);
            }
            // Another thread took it first: wait again, for what is left of the time.
        }
    }
}

#[pymethods]
impl ChannelReader {
    /// The channel's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// This reader's place (0 to readers - 1).
    #[getter]
    fn index(&self) -> u32 {
        self.index
    }

    /// The largest message, in bytes.
    #[getter]
    fn max_message(&self) -> u64 {
        self.max_message
    }

    /// "block" or "overwrite".
    #[getter]
    fn policy(&self) -> &'static str {
        self.policy.as_str()
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.core).is_none()
    }

    /// Wait up to `timeout` seconds (None: no limit) for the next message and take it.
    /// Raises `shmbridge.WriterClosed` after the last message of a closed channel,
    /// `shmbridge.PeerGone` when the writer died, `shmbridge.Timeout`; Ctrl-C interrupts.
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = args::timeout(timeout)?;
        Ok(self.recv_inner(py, timeout)?)
    }

    /// The next message if one is there, else None, without waiting. Raises
    /// `shmbridge.WriterClosed` after the last message of a closed channel (it does not look
    /// at the writer's liveness: `recv` does).
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(self.core()?.take(py)?)
    }

    /// `await reader.recv_async(timeout=None)`: as `recv`, without blocking the event loop.
    ///
    /// The returned awaitable (a coroutine to asyncio: it can be awaited, or given to
    /// `create_task` / `wait_for`) takes a message at once if one is there. Otherwise a helper
    /// thread waits for readiness (the core's `wait_ready`, without the GIL, not taking
    /// anything) and then writes to an eventfd that the event loop watches (`add_reader`); the
    /// message is taken on the loop's thread when the awaiting task resumes. So the loop never
    /// polls, the helper never takes the GIL (nothing to contend with, nothing to do at
    /// interpreter shutdown), and a cancelled await loses no message: nothing was taken. A
    /// cancelled wait's helper sees the cancellation within 100 ms (the core calls its hook at
    /// least that often) and exits. Each await that has to wait costs one short-lived thread.
    #[pyo3(signature = (timeout = None))]
    fn recv_async(&self, timeout: Option<f64>) -> PyResult<RecvAsync> {
        let timeout = args::timeout(timeout)?;
        Ok(RecvAsync {
            state: Mutex::new(AsyncState {
                reader: self.core()?,
                deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
                done: false,
                pending: None,
            }),
        })
    }

    /// Give the reader place back (once the messages still held are released). Messages and
    /// their views stay valid. Calling it again does nothing.
    fn close(&self) {
        drop(lock(&self.core).take());
    }

    /// The channel's configuration, progress and reader places (`ChannelStatus`).
    fn status(&self) -> PyResult<ChannelStatus> {
        let core = self.core()?;
        Ok(ChannelStatus::from(core.reader.status().py()?))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// `close()`.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        self.close();
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next message (as `recv()`); stops when the writer closed the channel.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.recv_inner(py, None) {
            Ok(m) => Ok(m),
            Err(Fail::Core(e)) if e.kind() == ErrorKind::WriterClosed => {
                Err(PyStopIteration::new_err(()))
            }
            Err(f) => Err(f.into()),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "ChannelReader({:?}, index={}{})",
            self.name,
            self.index,
            if self.closed() { ", closed" } else { "" }
        )
    }
}

// ---- messages --------------------------------------------------------------------------

struct MessageState {
    /// `release()` was called: no new exports.
    released: bool,
    /// Buffers exported and not yet released.
    exports: usize,
    /// The reader that holds the message, until the slot goes back (then the message no
    /// longer keeps the reader, and its place, alive).
    reader: Option<Arc<ReaderCore>>,
}

/// The methods of `Message` (which adds the buffer protocol); see `Message`'s docstring.
#[pyclass(module = "shmbridge._native", name = "_MessageBase", subclass, frozen)]
pub struct MessageBase {
    /// The channel's name (for errors).
    name: Arc<str>,
    raw: Received,
    state: Mutex<MessageState>,
}

impl MessageBase {
    fn released_error(&self) -> PyErr {
        errors::to_py(
            &Error::new(
                ErrorKind::Closed,
                format!(
                    "message {} was released: its bytes are no longer available",
                    self.raw.seq
                ),
            )
            .with_segment(&*self.name),
        )
    }

    /// Give the slot back (clear the holder bit) once released with no export left.
    fn settle(&self, st: &mut MessageState) {
        if st.released && st.exports == 0 {
            if let Some(reader) = st.reader.take() {
                reader.reader.release(&self.raw);
            }
        }
    }
}

impl Exports for MessageBase {
    fn export(&self) -> PyResult<(*mut u8, usize, bool)> {
        let mut st = lock(&self.state);
        if st.released {
            return Err(self.released_error());
        }
        // Held by this reader (its bit is set in the slot) until released with no export
        // left; the message, which its views reference, keeps the reader and its mapping.
        st.exports += 1;
        Ok((self.raw.as_ptr().cast_mut(), self.raw.len, true))
    }

    fn unexport(&self) {
        let mut st = lock(&self.state);
        st.exports = st.exports.saturating_sub(1);
        self.settle(&mut st);
    }
}

#[pymethods]
impl MessageBase {
    #[new]
    fn new() -> PyResult<Self> {
        NEW_MESSAGE.with(|s| s.borrow_mut().take()).ok_or_else(|| {
            PyTypeError::new_err(
                "Message objects come from ChannelReader.recv() and try_recv(); they cannot be \
                 made directly",
            )
        })
    }

    /// The message's sequence number (0 for the channel's first message).
    #[getter]
    fn seq(&self) -> u64 {
        self.raw.seq
    }

    /// The writer's tag.
    #[getter]
    fn tag(&self) -> u32 {
        self.raw.tag
    }

    /// When it was published, in seconds since the Unix epoch (as `time.time()`).
    #[getter]
    #[allow(clippy::cast_precision_loss)] // a float timestamp, as time.time()
    fn timestamp(&self) -> f64 {
        self.raw.timestamp_ns as f64 / 1e9
    }

    /// When it was published, in nanoseconds since the Unix epoch (as `time.time_ns()`).
    #[getter]
    fn timestamp_ns(&self) -> u64 {
        self.raw.timestamp_ns
    }

    /// Messages this reader missed just before this one (overwrite policy, or a late join).
    #[getter]
    fn lost(&self) -> u64 {
        self.raw.lost
    }

    /// The message's flags (bit 0: it starts with an array header).
    #[getter]
    fn flags(&self) -> u32 {
        self.raw.flags
    }

    /// Whether `release()` was called.
    #[getter]
    fn released(&self) -> bool {
        lock(&self.state).released
    }

    /// The message's array (docs/SPEC.md 7.6) as a read-only numpy array in place, zero-copy:
    /// the header is checked against the message's length first. The array holds the message
    /// (the slot is not reused while it lives, even after `release()`). `ValueError` when the
    /// message has no array header; `CorruptHeader`, `Truncated`, `Unsupported`, `BadMagic`
    /// for a bad one; `ClosedError` after `release()`.
    fn array<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.get();
        let header = {
            let st = lock(&this.state);
            if st.released {
                return Err(this.released_error());
            }
            // SAFETY: not released: the reader still holds the message's slot (its bit).
            unsafe { shmbridge::array::received_header(&this.raw, &this.name) }.py()?
        };
        crate::shared_array::ndarray_over(slf.py(), slf.as_any(), &header)
    }

    /// Give the message back: its bytes raise `ClosedError` afterwards. Views exported before
    /// (memoryviews, numpy arrays) stay valid; the slot goes back to the writer when the last
    /// of them is gone. Calling it again does nothing.
    fn release(&self) {
        let mut st = lock(&self.state);
        st.released = true;
        self.settle(&mut st);
    }

    /// Its length in bytes.
    fn __len__(&self) -> PyResult<usize> {
        if lock(&self.state).released {
            return Err(self.released_error());
        }
        Ok(self.raw.len)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// `release()`.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        self.release();
    }

    fn __repr__(&self) -> String {
        format!(
            "Message(seq={}, {} bytes, tag={}, lost={}{})",
            self.raw.seq,
            self.raw.len,
            self.raw.tag,
            self.raw.lost,
            if self.released() { ", released" } else { "" }
        )
    }
}

impl Drop for MessageBase {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(reader) = st.reader.take() {
            reader.reader.release(&self.raw);
        }
    }
}

// ---- recv_async ------------------------------------------------------------------------

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// One wait in progress: the helper thread, the eventfd it writes, the future the task awaits.
struct Pending {
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
    fd: Arc<OwnedFd>,
    cancel: Arc<AtomicBool>,
    outcome: Arc<Mutex<Option<shmbridge::Result<()>>>>,
}

impl Pending {
    /// Stop watching the eventfd (before our references to it go, so the loop never watches a
    /// closed or reused descriptor).
    fn unwatch(&self, py: Python<'_>) {
        let _ = self
            .event_loop
            .call_method1(py, "remove_reader", (self.fd.as_raw_fd(),));
    }

    /// Give up: the helper exits at its next look (within 100 ms).
    fn cancel(&self, py: Python<'_>) {
        self.cancel.store(true, Ordering::SeqCst);
        self.unwatch(py);
        let _ = self.future.call_method0(py, "cancel");
    }
}

struct AsyncState {
    reader: Arc<ReaderCore>,
    deadline: Option<Instant>,
    done: bool,
    pending: Option<Pending>,
}

/// What `ChannelReader.recv_async()` returns: an awaitable with the coroutine protocol
/// (`send`, `throw`, `close`, `__await__`), so asyncio accepts it wherever it takes a
/// coroutine. See `ChannelReader.recv_async`.
#[pyclass(module = "shmbridge._native", name = "_RecvAsync", frozen)]
pub struct RecvAsync {
    state: Mutex<AsyncState>,
}

enum Step<'py> {
    Yield(Bound<'py, PyAny>),
    Return(Bound<'py, PyAny>),
}

impl AsyncState {
    fn step<'py>(&mut self, py: Python<'py>) -> PyResult<Step<'py>> {
        if self.done {
            return Err(PyRuntimeError::new_err(
                "cannot reuse an already awaited recv_async()",
            ));
        }
        if let Some(p) = self.pending.take() {
            // Done with this wait, whatever woke us: a helper still waiting exits.
            p.cancel.store(true, Ordering::SeqCst);
            p.unwatch(py);
            let outcome = lock(&p.outcome).take();
            if let Some(Err(e)) = outcome {
                self.done = true;
                return Err(errors::to_py(&e));
            }
        }
        match self.reader.take(py) {
            Ok(Some(m)) => {
                self.done = true;
                return Ok(Step::Return(m));
            }
            Ok(None) => {}
            Err(f) => {
                self.done = true;
                return Err(f.into());
            }
        }
        let pending = self.arm(py)?;
        let fut = pending.future.bind(py).clone();
        fut.setattr("_asyncio_future_blocking", true)?;
        self.pending = Some(pending);
        Ok(Step::Yield(fut))
    }

    /// Start a helper that waits for readiness and wakes the running loop through an eventfd.
    fn arm(&self, py: Python<'_>) -> PyResult<Pending> {
        let get_loop = GET_RUNNING_LOOP.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
        })?;
        let event_loop = get_loop.call0(py)?;
        let future = event_loop.call_method0(py, "create_future")?;
        // SAFETY: eventfd(2) with valid flags; a non-negative result is a new descriptor we own.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(PyOSError::new_err(format!(
                "eventfd for recv_async: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let cancel = Arc::new(AtomicBool::new(false));
        let outcome = Arc::new(Mutex::new(None));
        let pending = Pending {
            event_loop,
            future,
            fd,
            cancel,
            outcome,
        };
        let on_ready = {
            let fd = Arc::clone(&pending.fd);
            let event_loop = pending.event_loop.clone_ref(py);
            let future = pending.future.clone_ref(py);
            PyCFunction::new_closure(
                py,
                Some(c"recv_async_ready"),
                None,
                move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                    let py = args.py();
                    let mut count = 0u64;
                    // SAFETY: reading 8 bytes into a u64 from our eventfd (non-blocking).
                    let _ = unsafe { libc::read(fd.as_raw_fd(), (&raw mut count).cast(), 8) };
                    event_loop.call_method1(py, "remove_reader", (fd.as_raw_fd(),))?;
                    if !future.call_method0(py, "done")?.is_truthy(py)? {
                        future.call_method1(py, "set_result", (py.None(),))?;
                    }
                    Ok(())
                },
            )?
        };
        pending
            .event_loop
            .call_method1(py, "add_reader", (pending.fd.as_raw_fd(), on_ready))?;
        let reader = Arc::clone(&self.reader);
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        let (fd, cancel, outcome) = (
            Arc::clone(&pending.fd),
            Arc::clone(&pending.cancel),
            Arc::clone(&pending.outcome),
        );
        let spawned = std::thread::Builder::new()
            .name("shmbridge-recv-async".into())
            .spawn(move || {
                let stop = Arc::clone(&cancel);
                let mut hook = move || {
                    if stop.load(Ordering::SeqCst) {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                };
                let result = reader
                    .reader
                    .wait_ready(&mut Wait::new(left).with_hook(&mut hook));
                if cancel.load(Ordering::SeqCst) {
                    return;
                }
                *lock(&outcome) = Some(result);
                let one = 1u64;
                // SAFETY: writing 8 bytes from a u64 to our eventfd, kept open by `fd`.
                let _ = unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), 8) };
            });
        if let Err(e) = spawned {
            pending.cancel(py);
            return Err(PyOSError::new_err(format!(
                "cannot start the recv_async helper thread: {e}"
            )));
        }
        Ok(pending)
    }

    fn finish(&mut self, py: Python<'_>) {
        self.done = true;
        if let Some(p) = self.pending.take() {
            p.cancel(py);
        }
    }
}

#[pymethods]
impl RecvAsync {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.send(py, None)
    }

    /// Resume: take the message (the coroutine returns it) or wait again.
    #[pyo3(signature = (_value = None))]
    fn send<'py>(
        &self,
        py: Python<'py>,
        _value: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match lock(&self.state).step(py)? {
            Step::Yield(fut) => Ok(fut),
            Step::Return(msg) => Err(PyStopIteration::new_err((msg.unbind(),))),
        }
    }

    /// Stop waiting (cancellation) and raise `exc` here.
    #[pyo3(signature = (exc, value = None, _tb = None))]
    fn throw(
        &self,
        py: Python<'_>,
        exc: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        lock(&self.state).finish(py);
        let err = match value {
            Some(v) if v.is_instance_of::<pyo3::exceptions::PyBaseException>() => {
                PyErr::from_value(v.clone())
            }
            Some(v) if exc.is_instance_of::<PyType>() => {
                PyErr::from_type(exc.clone().cast_into::<PyType>()?, (v.clone().unbind(),))
            }
            _ => PyErr::from_value(exc.clone()),
        };
        Err(err)
    }

    /// Stop waiting.
    fn close(&self, py: Python<'_>) {
        lock(&self.state).finish(py);
    }
}

impl Drop for RecvAsync {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = st.pending.take() {
            Python::attach(|py| p.cancel(py));
        }
    }
}

// ---- status ----------------------------------------------------------------------------

/// One occupied reader place, as `status()` reports it.
#[pyclass(module = "shmbridge._native", frozen, get_all)]
pub struct ReaderStatus {
    /// The place.
    index: u32,
    /// Whether that reader's process is alive (its liveness lock is held).
    alive: bool,
    /// The next message it takes.
    cursor: u64,
    /// Messages published that it has not taken yet.
    lag: u64,
    /// Messages it lost.
    lost: u64,
    /// Messages it took.
    taken: u64,
    /// Its pid (information).
    pid: u32,
}

#[pymethods]
impl ReaderStatus {
    fn __repr__(&self) -> String {
        format!(
            "ReaderStatus(index={}, alive={}, cursor={}, lag={}, lost={}, taken={}, pid={})",
            self.index, self.alive, self.cursor, self.lag, self.lost, self.taken, self.pid
        )
    }
}

/// A snapshot of a channel: configuration, progress, and the occupied reader places.
#[pyclass(module = "shmbridge._native", frozen, get_all)]
pub struct ChannelStatus {
    /// Slots.
    slots: u32,
    /// Reader places.
    readers: u32,
    /// The largest message.
    max_message: u64,
    /// "block" or "overwrite".
    policy: &'static str,
    /// Past messages a late reader starts with.
    history: u32,
    /// Whether messages carry checksums.
    checksum: bool,
    /// Messages published.
    head: u64,
    /// The oldest message still available.
    tail: u64,
    /// Whether the writer closed the channel.
    closed: bool,
    /// Whether the writer is alive.
    writer_alive: bool,
    /// The occupied reader places (`ReaderStatus`).
    reader_places: Vec<Py<ReaderStatus>>,
}

impl From<core::ChannelStatus> for ChannelStatus {
    fn from(s: core::ChannelStatus) -> Self {
        let places = Python::attach(|py| {
            s.reader_places
                .iter()
                .filter_map(|r| {
                    Py::new(
                        py,
                        ReaderStatus {
                            index: r.index,
                            alive: r.alive,
                            cursor: r.cursor,
                            lag: r.lag,
                            lost: r.lost,
                            taken: r.taken,
                            pid: r.pid,
                        },
                    )
                    .ok()
                })
                .collect()
        });
        Self {
            slots: s.slots,
            readers: s.readers,
            max_message: s.max_message,
            policy: s.policy.as_str(),
            history: s.history,
            checksum: s.checksum,
            head: s.head,
            tail: s.tail,
            closed: s.closed,
            writer_alive: s.writer_alive,
            reader_places: places,
        }
    }
}

#[pymethods]
impl ChannelStatus {
    fn __repr__(&self) -> String {
        format!(
            "ChannelStatus(slots={}, readers={}, max_message={}, policy={:?}, head={}, tail={}, \
             closed={}, writer_alive={}, reader_places={})",
            self.slots,
            self.readers,
            self.max_message,
            self.policy,
            self.head,
            self.tail,
            self.closed,
            self.writer_alive,
            self.reader_places.len()
        )
    }
}

/// Add the channel classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Channel>()?;
    m.add_class::<ChannelWriter>()?;
    m.add_class::<ChannelReader>()?;
    m.add_class::<ChannelStatus>()?;
    m.add_class::<ReaderStatus>()?;
    m.add("Loan", loan_type(py)?.bind(py))?;
    m.add("Message", message_type(py)?.bind(py))?;
    m.add("CHANNEL_HEADER_LEN", core::CHANNEL_HEADER_LEN)?;
    m.add("CHANNEL_MAX_READERS", core::MAX_READERS)?;
    Ok(())
}
