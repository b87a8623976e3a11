//! Linux: the `SIGBUS` guard — how a mapping whose object another process shrank becomes an
//! error instead of a crash, with no system call on the hot paths.
//!
//! Touching a page of a shared mapping that lies past the end of its object (another process
//! ran `ftruncate`), or a tmpfs hole that cannot be backed (a full `/dev/shm`), raises
//! `SIGBUS`. Checking the object's size before each access costs a system call (`lseek`,
//! ~170 ns), and still races a shrink that lands just after the check. The guard closes both:
//!
//! - Every mapping the core makes is registered here (start, length, protection) in a fixed,
//!   lock-free table of [`SLOTS`] entries.
//! - A process-wide `SIGBUS` handler is installed once, the first time a mapping is
//!   registered. On a fault inside a registered mapping it maps a private zero page over the
//!   faulting page (`mmap(MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS)`, a system call the kernel
//!   runs like any other; nothing else happens in the handler but atomic loads and stores),
//!   marks the entry **tripped**, and returns: the faulting instruction runs again on the zero
//!   page. The operation that touched it checks the mark afterwards (one atomic load) and
//!   reports the shrink as an error. The mapping never shows the object again once tripped;
//!   every later checked operation on it fails.
//! - A fault anywhere else goes to the handler that was installed before ours (Rust's stack
//!   overflow handler, Python's `faulthandler`, an application's), or, when there was none,
//!   to the default action: the fault happens again with `SIG_DFL` and kills the process as
//!   it would have without us. A `SIGBUS` sent with `kill` is passed on the same way.
//!
//! What a user must know (docs/ARCHITECTURE.md, "The SIGBUS boundary"): a handler installed
//! *after* ours that does not chain to the previous one takes the guard away (the core then
//! checks the size with `lseek` for mappings made after that, and the zero-copy views of
//! earlier ones are unprotected); `SHMBRIDGE_SIGBUS_GUARD=0` in the environment turns the
//! guard off for the process (every check is then an `lseek`).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// How many mappings the table holds at once; mappings beyond that are checked with `lseek`.
pub(crate) const SLOTS: usize = 4096;

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const LIVE: u8 = 2;

struct Slot {
    state: AtomicU8,
    tripped: AtomicU8,
    writable: AtomicU8,
    start: AtomicUsize,
    len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    state: AtomicU8::new(FREE),
    tripped: AtomicU8::new(0),
    writable: AtomicU8::new(0),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

/// The handler that was installed before ours, written once before ours is installed and
/// only read afterwards (by the handler).
struct Previous(UnsafeCell<MaybeUninit<libc::sigaction>>);
// SAFETY: written exactly once inside `install` (guarded by the OnceLock) before our handler
// can run, read-only afterwards.
unsafe impl Sync for Previous {}
static PREVIOUS: Previous = Previous(UnsafeCell::new(MaybeUninit::uninit()));
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// Whether the guard is installed (decided once per process).
fn installed() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(install)
}

fn install() -> bool {
    if std::env::var_os("SHMBRIDGE_SIGBUS_GUARD").is_some_and(|v| v == "0") {
        return false;
    }
    PAGE.store(super::page_size(), Ordering::Relaxed);
    // SAFETY: sigaction with a zeroed struct filled in as the man page says; PREVIOUS is
    // written here only, before our handler is installed (the OnceLock runs this once).
    unsafe {
        let mut ours: libc::sigaction = std::mem::zeroed();
        ours.sa_sigaction = handler_address();
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        libc::sigemptyset(&raw mut ours.sa_mask);
        let prev = (*PREVIOUS.0.get()).as_mut_ptr();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), prev) == 0
            && libc::sigaction(libc::SIGBUS, &raw const ours, std::ptr::null_mut()) == 0
    }
}

/// Whether the handler in place for `SIGBUS` is still ours (another library may have
/// replaced it without chaining).
fn still_ours() -> bool {
    // SAFETY: a query-only sigaction into a zeroed struct.
    unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &raw mut cur) == 0
            && cur.sa_sigaction == handler_address()
    }
}

/// A mapping registered with the guard; unregistered on drop.
#[derive(Debug)]
pub(crate) struct Guarded(usize);

impl Guarded {
    /// Register `len` bytes at `start` (a whole mapping, page-aligned); `None` when the guard
    /// is off, was replaced, or the table is full — the caller then checks sizes itself.
    pub(crate) fn register(start: *mut u8, len: usize, writable: bool) -> Option<Self> {
        if len == 0 || !installed() || !still_ours() {
            return None;
        }
        for (i, slot) in TABLE.iter().enumerate() {
            if slot
                .state
                .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                slot.start.store(start as usize, Ordering::Relaxed);
                slot.len.store(len, Ordering::Relaxed);
                slot.writable.store(u8::from(writable), Ordering::Relaxed);
                slot.tripped.store(0, Ordering::Relaxed);
                slot.state.store(LIVE, Ordering::Release);
                return Some(Self(i));
            }
        }
        None
    }

    /// Whether a page of this mapping faulted (the object shrank below it, or a hole could not
    /// be backed) and was replaced by a zero page. One atomic load.
    #[inline]
    pub(crate) fn tripped(&self) -> bool {
        TABLE[self.0].tripped.load(Ordering::Acquire) != 0
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // Before the mapping goes (the owner unmaps after this): a fault at this address from
        // now on is not ours.
        TABLE[self.0].state.store(FREE, Ordering::Release);
    }
}

type SigAction = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Our handler's address, as `sigaction` stores it.
fn handler_address() -> libc::sighandler_t {
    on_sigbus as SigAction as libc::sighandler_t
}

/// The handler. Async-signal-safe: atomic loads and stores, `mmap` and `sigaction` (both plain
/// system calls), and the previous handler's own code.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // si_code > 0: raised by the kernel for a fault (BUS_ADRERR and friends); <= 0: sent.
    if code > 0 && take_over(addr) {
        return;
    }
    pass_on(sig, info, ctx);
}

/// If `addr` lies in a live registered mapping, put a zero page over its page and mark the
/// mapping tripped.
fn take_over(addr: usize) -> bool {
    let page = PAGE.load(Ordering::Relaxed);
    for slot in &TABLE {
        if slot.state.load(Ordering::Acquire) != LIVE {
            continue;
        }
        let start = slot.start.load(Ordering::Relaxed);
        let len = slot.len.load(Ordering::Relaxed);
        if addr < start || addr - start >= len {
            continue;
        }
        let at = addr & !(page - 1);
        let prot = if slot.writable.load(Ordering::Relaxed) != 0 {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: `at` is a page inside a mapping this process made and still holds (the slot
        // is live until its owner unmaps); replacing it with a private zero page keeps the
        // address range mapped, which is what lets the faulting access complete.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                prot,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        slot.tripped.store(1, Ordering::Release);
        return true;
    }
    false
}

/// Hand the signal to whatever was installed before us, or restore the default action.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: PREVIOUS was filled in before our handler was installed and is never written
    // again; the calls below are what the kernel would have done with the previous action.
    unsafe {
        let prev = &*(*PREVIOUS.0.get()).as_ptr();
        let h = prev.sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            // Back to the default: a fault happens again on return and terminates the process
            // as it would have without us; a sent SIGBUS is raised again for the same effect.
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &raw const dfl, std::ptr::null_mut());
            if (*info).si_code <= 0 && h == libc::SIG_DFL {
                libc::raise(libc::SIGBUS);
            }
        } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: SigAction = std::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(sig);
        }
    }
}
