//! The `shmbridge` command: hand files between processes through shared memory, and look
//! after the segments on this machine. `docs/CLI.md` is the manual.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use shmbridge::framed::flags;
use shmbridge::{
    Access, Detected, Error, ErrorKind, FramedSegment, Kind, Progress, ProgressFn, RecvOptions,
    SegmentInfo, SendOptions, ShmObject, TransferMode,
};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (recv: every byte arrived and its CRC-32 matched)
  1  any other error (I/O error, /dev/shm full, the file changed while being sent, ...)
  2  usage error (bad arguments)
  3  not found (no such file or segment)
  4  already exists (the segment name is taken, or a stream already has its receiver)
  5  timed out (no sender or receiver came, or it stalled, within --timeout)
  6  the peer died or gave up (sender or receiver killed, aborted, or closed early)
  7  the data did not verify (checksum or length mismatch, bad or corrupt header)
  8  permission denied
130  interrupted (Ctrl-C or SIGTERM): the transfer stopped cleanly, as for any failure";

/// Hand files between processes through shared memory, and look after the segments on this
/// machine.
#[derive(Parser, Debug)]
#[command(name = "shmbridge", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// No progress bars or summaries on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Send FILE through a segment. One-shot (default): fill and publish a segment sized to the
    /// file, then exit leaving it for the receiver. --stream: stream it through a fixed ring,
    /// waiting for a receiver, and exit once it has taken and verified every byte.
    #[command(after_help = EXIT_CODES)]
    Send {
        /// The file to send.
        file: PathBuf,
        /// Segment name (default: the file's name, made safe).
        #[arg(long, short)]
        name: Option<String>,
        /// Stream through a ring of --segment-size bytes (for files of any size).
        #[arg(long)]
        stream: bool,
        /// Segment size for streaming (e.g. 64M); without --stream, a file larger than this
        /// streams. Default 16M.
        #[arg(long, value_parser = parse_size)]
        segment_size: Option<u64>,
        /// Streaming: how long to wait for a receiver to come or make progress (e.g. 30s,
        /// 500ms, 2m; 0 or "none" waits forever).
        #[arg(long, value_parser = parse_timeout, default_value = "60s")]
        timeout: Timeout,
        /// Permission bits of the segment, octal (default 600).
        #[arg(long, value_parser = parse_mode)]
        mode: Option<u32>,
    },
    /// Receive the file sent through segment NAME into OUT, atomically: OUT appears only once
    /// every byte has arrived and its CRC-32 matched.
    #[command(after_help = EXIT_CODES)]
    Recv {
        /// Segment name.
        name: String,
        /// Where to write the file.
        out: PathBuf,
        /// How long to wait for the sender (for the segment to appear, and for each next piece
        /// of a stream); 0 or "none" waits forever.
        #[arg(long, value_parser = parse_timeout, default_value = "60s")]
        timeout: Timeout,
        /// Leave the segment in place afterwards.
        #[arg(long)]
        keep: bool,
        /// fsync OUT before reporting success.
        #[arg(long)]
        fsync: bool,
    },
    /// List the segments on this machine.
    Ls {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Describe one segment in detail.
    #[command(after_help = EXIT_CODES)]
    Info {
        /// Segment name.
        name: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove segments.
    #[command(after_help = EXIT_CODES)]
    Rm {
        /// Segment names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Write a framed segment's payload to standard output (a stream is consumed).
    #[command(after_help = EXIT_CODES)]
    Cat {
        /// Segment name.
        name: String,
        /// How long to wait for the payload.
        #[arg(long, value_parser = parse_timeout, default_value = "60s")]
        timeout: Timeout,
    },
    /// Remove framed segments whose creator is dead (except complete one-shot payloads still
    /// waiting for their receiver, unless --all).
    Reap {
        /// Also remove complete payloads nobody has received.
        #[arg(long)]
        all: bool,
        /// Only say what would be removed.
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
}

/// `None`: wait forever.
#[derive(Clone, Copy, Debug)]
struct Timeout(Option<Duration>);

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    let t = s.trim();
    if matches!(t, "0" | "none" | "inf" | "forever") {
        return Ok(Timeout(None));
    }
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 30s, 500ms, 2m, or none)"))?;
    // A huge value means "effectively forever"; NaN and negatives are refused.
    shmbridge::duration_from_secs(v * mult)
        .map(Timeout)
        .map_err(|e| format!("{s:?}: {}", e.detail()))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit (use K, M, G)")),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 64M)"))?;
    #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
    let bytes = (v * mult as f64) as u64;
    if bytes == 0 {
        return Err("the size must be greater than 0".into());
    }
    Ok(bytes)
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal mode like 600 or 644"))
}

/// Ctrl-C and SIGTERM set a flag that the progress callback turns into a clean stop, so a
/// sender removes its segment and a receiver leaves the target untouched.
mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};

    static REQUESTED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_: libc::c_int) {
        // Only an atomic store: async-signal-safe.
        REQUESTED.store(true, Ordering::SeqCst);
    }

    /// Route SIGINT and SIGTERM to the flag.
    pub fn install() {
        let handler = on_signal as extern "C" fn(libc::c_int);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only performs an atomic store, which is async-signal-safe,
            // and it lives for the whole program.
            unsafe { libc::signal(sig, handler as libc::sighandler_t) };
        }
    }

    /// Whether a stop was asked for.
    pub fn requested() -> bool {
        REQUESTED.load(Ordering::SeqCst)
    }
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidName | ErrorKind::InvalidSize => 2,
        ErrorKind::NotFound => 3,
        ErrorKind::AlreadyExists => 4,
        ErrorKind::Timeout => 5,
        ErrorKind::PeerGone | ErrorKind::WriterClosed => 6,
        ErrorKind::ChecksumMismatch
        | ErrorKind::Truncated
        | ErrorKind::BadMagic
        | ErrorKind::CorruptHeader
        | ErrorKind::UnsupportedVersion => 7,
        ErrorKind::PermissionDenied => 8,
        ErrorKind::Aborted => 130,
        _ => 1,
    }
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("shmbridge: {e}");
    ExitCode::from(exit_code(e.kind()))
}

/// A progress bar that shows itself only once a transfer has taken over a second, and only
/// on a terminal.
fn progress_bar(quiet: bool, label: &'static str) -> (ProgressBar, ProgressFn) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label);
    let stall_at: Option<u64> = std::env::var("SHMBRIDGE_TEST_STALL_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    let show = !quiet && std::io::stderr().is_terminal();
    let started = Instant::now();
    let b = bar.clone();
    // Always installed: besides drawing, it is how Ctrl-C stops a transfer cleanly (the core
    // calls it after each chunk and at least every 100 ms while waiting).
    let cb: ProgressFn = Arc::new(move |p: Progress| {
        if interrupt::requested() {
            return ControlFlow::Break(());
        }
        if let Some(at) = stall_at {
            // Test hook: stop here (as if hung) so a test can kill this process at a known
            // point of the transfer.
            if p.done >= at {
                eprintln!("shmbridge: test stall at {} bytes", p.done);
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
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
        b.set_position(p.done);
        ControlFlow::Continue(())
    });
    (bar, cb)
}

#[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
fn summary(verb: &str, r: &shmbridge::Report) -> String {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    interrupt::install();
    let quiet = cli.quiet;
    match cli.cmd {
        Cmd::Send {
            file,
            name,
            stream,
            segment_size,
            timeout,
            mode,
        } => {
            let name = name.unwrap_or_else(|| shmbridge::name::for_file(&file));
            let (bar, progress) = progress_bar(quiet, "send");
            let opts = SendOptions {
                mode: if stream {
                    TransferMode::Stream
                } else {
                    TransferMode::Auto
                },
                segment_size,
                timeout: timeout.0,
                permissions: mode,
                progress: Some(progress),
            };
            if !quiet && (stream || segment_size.is_some()) {
                eprintln!("shmbridge: sending {} as {name:?}; waiting for a receiver (shmbridge recv {name} OUT)", file.display());
            }
            let r = shmbridge::send_file(&file, &name, &opts);
            bar.finish_and_clear();
            match r {
                Ok(r) => {
                    if !quiet {
                        eprintln!("{}", summary("sent", &r));
                        if r.mode == TransferMode::OneShot {
                            eprintln!("receive it with: shmbridge recv {} OUT", r.name);
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Cmd::Recv {
            name,
            out,
            timeout,
            keep,
            fsync,
        } => {
            let (bar, progress) = progress_bar(quiet, "recv");
            let opts = RecvOptions {
                timeout: timeout.0,
                keep,
                fsync,
                progress: Some(progress),
            };
            let r = shmbridge::recv_file(&name, &out, &opts);
            bar.finish_and_clear();
            match r {
                Ok(r) => {
                    if !quiet {
                        eprintln!("{} -> {}", summary("received", &r), out.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Cmd::Ls { json } => ls(json),
        Cmd::Info { name, json } => info(&name, json),
        Cmd::Rm { names } => {
            let mut code = ExitCode::SUCCESS;
            for n in names {
                if let Err(e) = ShmObject::remove(&n) {
                    code = fail(&e);
                }
            }
            code
        }
        Cmd::Cat { name, timeout } => {
            use std::os::fd::AsFd;
            let stdout = std::io::stdout();
            // No bar (stdout is the data), but the callback still carries Ctrl-C and SIGTERM.
            let (_bar, progress) = progress_bar(true, "cat");
            let opts = RecvOptions {
                timeout: timeout.0,
                keep: true,
                fsync: false,
                progress: Some(progress),
            };
            match shmbridge::recv_to_fd(&name, stdout.as_fd(), &opts) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Cmd::Reap { all, dry_run } => reap(all, dry_run, quiet),
    }
}

/// Everything `ls`, `info` and `reap` say about a segment.
struct Described {
    info: SegmentInfo,
    layout: String,
    alive: Option<bool>,
    state: String,
    json: Value,
}

fn owner_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

fn describe(info: SegmentInfo) -> Described {
    let mut j = json!({
        "name": info.name,
        "size": info.size,
        "uid": info.uid,
        "owner": owner_name(info.uid),
        "mode": format!("{:04o}", info.mode),
        "mtime_ns": info.mtime_ns.to_string(),
    });
    let (layout, alive, state) = match &info.detected {
        Detected::Unframed => ("raw".to_owned(), None, String::new()),
        Detected::BadFramed(why) => {
            j["error"] = json!(why);
            ("framed?".to_owned(), None, "bad header".to_owned())
        }
        Detected::Unreadable(why) => {
            j["error"] = json!(why);
            ("?".to_owned(), None, "unreadable".to_owned())
        }
        Detected::Framed(h) => {
            let alive = h.creator_alive();
            j["framed"] = json!({
                "version": format!("{}.{}", h.version_major, h.version_minor),
                "header_len": h.header_len,
                "kind": h.kind.name(),
                "flags": h.flags,
                "capacity": h.capacity,
                "payload_len": h.payload_len,
                "sequence": h.sequence,
                "publish_count": h.publish_count,
                "checksum": h.checksum.map(|c| format!("{c:08x}")),
                "creator_pid": h.creator_pid,
                "creator_alive": alive,
                "created_ns": h.created_ns.to_string(),
                "writer_closed": h.writer_closed(),
            });
            let state = if h.kind == Kind::Stream {
                match FramedSegment::open(&info.name, Access::ReadOnly)
                    .and_then(|f| shmbridge::stream::status(&f))
                {
                    Ok(s) => {
                        j["stream"] = json!({
                            "capacity": s.capacity,
                            "write_pos": s.write_pos,
                            "read_pos": s.read_pos,
                            "total_len": s.total_len,
                            "writer_state": s.writer_state.name(),
                            "reader_state": s.reader_state.name(),
                            "writer_pid": s.writer_pid,
                            "writer_alive": s.writer_alive,
                            "reader_pid": s.reader_pid,
                            "reader_alive": s.reader_alive,
                            "final_crc": s.final_crc.map(|c| format!("{c:08x}")),
                        });
                        format!(
                            "writer {}, reader {}, {} through",
                            s.writer_state.name(),
                            s.reader_state.name(),
                            HumanBytes(s.read_pos)
                        )
                    }
                    Err(e) => e.detail().to_owned(),
                }
            } else if h.flags & flags::PUBLISHED != 0 {
                if h.writer_closed() {
                    "complete".to_owned()
                } else {
                    "published".to_owned()
                }
            } else if h.writer_closed() {
                "closed empty".to_owned()
            } else if h.sequence % 2 == 1 {
                "writing".to_owned()
            } else {
                "empty".to_owned()
            };
            j["state"] = json!(state);
            (format!("framed/{}", h.kind.name()), Some(alive), state)
        }
    };
    j["layout"] = json!(layout);
    j["creator_alive"] = json!(alive);
    Described {
        info,
        layout,
        alive,
        state,
        json: j,
    }
}

fn ls(json_out: bool) -> ExitCode {
    let all = match shmbridge::list() {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let rows: Vec<Described> = all.into_iter().map(describe).collect();
    if json_out {
        let v: Vec<Value> = rows.into_iter().map(|d| d.json).collect();
        println!("{}", Value::Array(v));
        return ExitCode::SUCCESS;
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|d| {
            [
                d.info.name.clone(),
                d.layout.clone(),
                HumanBytes(d.info.size).to_string(),
                owner_name(d.info.uid),
                format!("{:04o}", d.info.mode),
                match d.alive {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
                d.state.clone(),
            ]
        })
        .collect();
    let head = ["NAME", "LAYOUT", "SIZE", "OWNER", "MODE", "ALIVE", "STATE"];
    let mut widths = head.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c:<w$}  ");
            }
        }
        println!("{}", s.trim_end());
    };
    line(&head.map(String::from));
    for row in &table {
        line(row);
    }
    ExitCode::SUCCESS
}

fn info(name: &str, json_out: bool) -> ExitCode {
    let d = match shmbridge::info(name) {
        Ok(i) => describe(i),
        Err(e) => return fail(&e),
    };
    if json_out {
        println!("{}", d.json);
        return ExitCode::SUCCESS;
    }
    println!("name:     {}", d.info.name);
    println!("layout:   {}", d.layout);
    println!(
        "size:     {} ({} bytes)",
        HumanBytes(d.info.size),
        d.info.size
    );
    println!("owner:    {} (uid {})", owner_name(d.info.uid), d.info.uid);
    println!("mode:     {:04o}", d.info.mode);
    if !d.state.is_empty() {
        println!("state:    {}", d.state);
    }
    let print_obj = |title: &str, v: &Value| {
        if let Some(map) = v.as_object() {
            println!("{title}:");
            for (k, val) in map {
                let shown = match val {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                println!("  {k:<14} {shown}");
            }
        }
    };
    print_obj("header", &d.json["framed"]);
    print_obj("stream", &d.json["stream"]);
    if let Some(e) = d.json["error"].as_str() {
        println!("error:    {e}");
    }
    ExitCode::SUCCESS
}

fn reap(all: bool, dry_run: bool, quiet: bool) -> ExitCode {
    let segments = match shmbridge::list() {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let mut code = ExitCode::SUCCESS;
    for info in segments {
        let Detected::Framed(h) = &info.detected else {
            continue;
        };
        if h.creator_alive() {
            continue;
        }
        let complete_message = h.kind == Kind::Message
            && h.flags & flags::PUBLISHED != 0
            && h.writer_closed()
            && h.checksum.is_some();
        if complete_message && !all {
            if !quiet {
                eprintln!(
                    "kept {} (a complete payload waiting for its receiver; --all removes it)",
                    info.name
                );
            }
            continue;
        }
        if h.kind == Kind::Stream {
            let draining = FramedSegment::open(&info.name, Access::ReadOnly)
                .and_then(|f| shmbridge::stream::status(&f))
                .is_ok_and(|s| s.reader_alive);
            if draining {
                continue;
            }
        }
        if dry_run {
            println!(
                "would remove {} (creator pid {} is gone)",
                info.name, h.creator_pid
            );
        } else {
            match ShmObject::remove(&info.name) {
                Ok(()) => println!(
                    "removed {} (creator pid {} is gone)",
                    info.name, h.creator_pid
                ),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => code = fail(&e),
            }
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("12x").is_err());
        assert_eq!(
            parse_timeout("500ms").unwrap().0,
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_timeout("2m").unwrap().0,
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_timeout("3").unwrap().0, Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout("none").unwrap().0, None);
        assert_eq!(
            parse_timeout("1e19").unwrap().0,
            Some(Duration::from_secs(10_000_000_000_000_000_000))
        );
        assert_eq!(
            parse_timeout("1e300").unwrap().0,
            None,
            "too large: forever"
        );
        assert!(parse_timeout("-1s").is_err());
        assert!(parse_timeout("nan").is_err());
        assert_eq!(parse_mode("644").unwrap(), 0o644);
        assert!(parse_mode("999").is_err());
    }
}
