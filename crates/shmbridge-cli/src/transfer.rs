//! `send`, `recv` and `cat`: the core's `send_file`, `recv_file` and `recv_to_fd`, with a
//! progress bar and the interrupt.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use shmbridge::{
    ErrorKind, OwnerPolicy, Progress, ProgressFn, RecvOptions, Report, SendOptions, TransferMode,
};

use crate::args::{SendArgs, Timeout};
use crate::report::{errln, Failure, Outcome};
use crate::{exit, Interrupt};

/// The progress hook of a transfer: it carries the interrupt (so it is always installed) and,
/// on a terminal, draws a bar once the transfer has taken over a second.
fn progress_hook(
    quiet: bool,
    label: &'static str,
    interrupt: &Interrupt,
) -> (ProgressBar, ProgressFn) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label);
    let show = !quiet && std::io::stderr().is_terminal();
    let started = Instant::now();
    let b = bar.clone();
    let interrupt = interrupt.clone();
    // The first wait is for the peer to come: the rate and ETA count from when it did.
    let waited = std::sync::atomic::AtomicU8::new(0);
    // The core calls it after each chunk and at least every 100 ms while waiting.
    let cb: ProgressFn = Arc::new(move |p: Progress| {
        if interrupt.requested() {
            return ControlFlow::Break(());
        }
        if !show {
            return ControlFlow::Continue(());
        }
        if b.is_hidden() && started.elapsed() > Duration::from_secs(1) {
            b.set_draw_target(ProgressDrawTarget::stderr());
        }
        if let Some(t) = p.total {
            b.set_length(t);
        }
        match (waited.load(std::sync::atomic::Ordering::Relaxed), p.waiting) {
            (0, true) => waited.store(1, std::sync::atomic::Ordering::Relaxed),
            (1, false) => {
                waited.store(2, std::sync::atomic::Ordering::Relaxed);
                b.reset_elapsed();
                b.reset_eta();
            }
            _ => {}
        }
        b.set_position(p.done);
        ControlFlow::Continue(())
    });
    (bar, cb)
}

#[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
fn summary(verb: &str, r: &Report) -> String {
    let secs = r.elapsed.as_secs_f64();
    format!(
        "{verb} {} ({} bytes, crc32 {:08x}) {} segment {:?} in {:.3} s, {}/s",
        HumanBytes(r.bytes),
        r.bytes,
        r.crc32,
        if r.mode == TransferMode::Stream {
            "streamed through"
        } else {
            "via one-shot"
        },
        r.name,
        secs,
        HumanBytes((r.bytes as f64 / secs.max(1e-9)) as u64),
    )
}

/// A failed transfer: an interrupt is said as such (exit 130), anything else as usual.
fn failed(e: shmbridge::Error, interrupt: &Interrupt) -> Failure {
    if e.kind() == ErrorKind::Aborted && interrupt.requested() {
        errln!("shmbridge: interrupted (Ctrl-C or SIGTERM): {e}");
        return Failure::Reported(exit::INTERRUPTED);
    }
    Failure::Core(e)
}

/// `shmbridge send`.
pub fn send(a: SendArgs, quiet: bool, interrupt: &Interrupt) -> Outcome {
    let name = a.name.unwrap_or_else(|| shmbridge::name::for_file(&a.file));
    let (bar, progress) = progress_hook(quiet, "send", interrupt);
    let opts = SendOptions {
        mode: if a.stream {
            TransferMode::Stream
        } else {
            TransferMode::Auto
        },
        segment_size: a.segment_size,
        timeout: a.timeout.0,
        permissions: a.permissions,
        progress: Some(progress),
    };
    if !quiet && (a.stream || a.segment_size.is_some()) {
        errln!(
            "shmbridge: sending {} as {name:?}; waiting for a receiver (shmbridge recv {name} OUT)",
            a.file.display()
        );
    }
    let r = shmbridge::send_file(&a.file, &name, &opts);
    bar.finish_and_clear();
    let r = r.map_err(|e| failed(e, interrupt))?;
    if !quiet {
        errln!("{}", summary("sent", &r));
        if r.mode == TransferMode::OneShot {
            errln!("receive it with: shmbridge recv {} OUT", r.name);
        }
    }
    Ok(())
}

/// `shmbridge recv`.
pub fn recv(
    name: &str,
    out: &Path,
    timeout: Timeout,
    (keep, fsync): (bool, bool),
    owner: &OwnerPolicy,
    quiet: bool,
    interrupt: &Interrupt,
) -> Outcome {
    let (bar, progress) = progress_hook(quiet, "recv", interrupt);
    let opts = RecvOptions {
        timeout: timeout.0,
        keep,
        fsync,
        progress: Some(progress),
    };
    let r = shmbridge::transfer::recv_file_with_owner(name, out, &opts, owner);
    bar.finish_and_clear();
    let r = r.map_err(|e| failed(e, interrupt))?;
    if !quiet {
        errln!("{} -> {}", summary("received", &r), out.display());
    }
    Ok(())
}

/// `shmbridge cat`: the payload to standard output (no bar: stdout may be the terminal).
pub fn cat(name: &str, timeout: Timeout, owner: &OwnerPolicy, interrupt: &Interrupt) -> Outcome {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let stop = interrupt.clone();
    let opts = RecvOptions {
        timeout: timeout.0,
        keep: true,
        fsync: false,
        progress: Some(Arc::new(move |_: Progress| {
            if stop.requested() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })),
    };
    shmbridge::transfer::recv_to_fd_with_owner(name, stdout.as_fd(), &opts, owner)
        .map(drop)
        .map_err(|e| failed(e, interrupt))
}
