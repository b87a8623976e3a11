//! Round-trip latency between two processes: a framed segment's publish and wait (spin, yield,
//! then a futex sleep on the shared mapping) against a pipe ping-pong, in the same run.
//!
//! ```text
//! cargo run --release -p shmbridge-bench --bin rtt -- [ROUNDS] [REPEAT] [--json PATH]
//! ```
//!
//! The parent re-runs this program as the child. Each round trip is one message each way:
//! the parent publishes a 1-byte request, the child waits for it and publishes a 1-byte reply.
//! Each side writes the segment it created (the parent the request, the child the reply), as
//! a real pair of peers would. Three approaches, each run REPEAT times round-robin (so a burst
//! of load hits them alike), ROUNDS round trips per run after a warm-up of ROUNDS/10:
//!
//! - `pipe`: one byte over a pipe each way (`write` + `read`, the kernel wakes the peer);
//! - `shm`: framed segments, the child's request handle read-write (it counts itself as a
//!   sleeper when it sleeps);
//! - `shm-ro`: the child opens the request read-only (it cannot count itself; the writer sees
//!   its liveness lock and then wakes on every publish);
//! - `chan`: 64-byte messages through two channels (`send` / `recv`, the child sending back
//!   what it read in place), each created by the process that writes it.
//!
//! Prints the median and the spread (min - max) of the per-run mean round trip, and the ratio
//! pipe / shm of the medians. Run it under `taskset -c 0` to put both peers on one CPU (the
//! child inherits the affinity): the waits then yield instead of spinning.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmbridge::channel::{ChannelOptions, ChannelReader, ChannelWriter};
use shmbridge::{Access, FramedOptions, FramedSegment, ShmObject, Wait};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Publish a one-byte payload: the seqlock write, the futex bump and the wake (if anyone
/// sleeps), without a checksum.
fn publish(seg: &FramedSegment, byte: u8) -> shmbridge::Result<()> {
    let mut w = seg.begin_write()?;
    w.write_at(0, &[byte])?;
    w.commit_with_crc(1, None)
}

fn child_pipe() -> Result<(), Box<dyn std::error::Error>> {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut b = [0u8; 1];
    while stdin.read(&mut b)? == 1 {
        stdout.write_all(&b)?;
        stdout.flush()?;
    }
    Ok(())
}

fn child_shm(
    request: &str,
    reply: &str,
    rounds: u64,
    access: Access,
) -> Result<(), Box<dyn std::error::Error>> {
    let request = FramedSegment::open(request, access)?;
    let reply_seg = FramedSegment::create(reply, 64, &FramedOptions::default())?;
    let mut seen = request.publish_count();
    // Tell the parent we are ready.
    publish(&reply_seg, b'r')?;
    let mut wait = Wait::timeout(TIMEOUT);
    for _ in 0..rounds {
        seen = request.wait(seen, &mut wait)?;
        publish(&reply_seg, b'p')?;
    }
    Ok(())
}

/// The options of both channels of the `chan` approach: 64-byte messages, one reader.
fn chan_options() -> ChannelOptions {
    ChannelOptions {
        slots: 8,
        max_message: 64,
        readers: 1,
        ..ChannelOptions::default()
    }
}

/// The child of the `chan` approach: every message on `request` goes back on `reply` (read in
/// place, copied once into the reply's slot).
fn child_chan(request: &str, reply: &str, rounds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut wait = Wait::timeout(TIMEOUT);
    let request = ChannelReader::open(request, &mut wait)?;
    // Created after joining `request`: when the parent sees `reply`, its first message is ours.
    let mut reply = ChannelWriter::create(reply, &chan_options())?;
    for _ in 0..rounds {
        let m = request.recv(&mut wait)?;
        reply.send(&m, 0, &mut wait)?;
    }
    Ok(())
}

fn chan_run(rounds: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let request_name = shmbridge::name::unique("shmb_bench_cping_");
    let reply_name = shmbridge::name::unique("shmb_bench_cpong_");
    let mut request = ChannelWriter::create(&request_name, &chan_options())?;
    let warm = rounds / 10;
    let total = rounds + warm;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["chan-child", &request_name, &reply_name, &total.to_string()])
        .spawn()?;
    let mut run = || -> Result<Duration, Box<dyn std::error::Error>> {
        let mut wait = Wait::timeout(TIMEOUT);
        let reply = ChannelReader::open(&reply_name, &mut wait)?;
        let msg = [7u8; 64];
        let mut start = Instant::now();
        for i in 0..total {
            if i == warm {
                start = Instant::now();
            }
            request.send(&msg, 0, &mut wait)?;
            let back = reply.recv(&mut wait)?;
            if back.len() != msg.len() {
                return Err(format!("round trip {i}: {} bytes came back", back.len()).into());
            }
        }
        Ok(start.elapsed())
    };
    let t = run();
    let _ = child.wait();
    drop(request);
    let _ = ShmObject::remove(&request_name);
    let _ = ShmObject::remove(&reply_name);
    #[allow(clippy::cast_precision_loss)]
    Ok(t?.as_secs_f64() / rounds as f64)
}

fn pipe_run(rounds: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("pipe-child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to = child.stdin.take().ok_or("no stdin")?;
    let mut from = child.stdout.take().ok_or("no stdout")?;
    let mut b = [0u8; 1];
    let warm = rounds / 10;
    let mut start = Instant::now();
    for i in 0..rounds + warm {
        if i == warm {
            start = Instant::now();
        }
        to.write_all(b"x")?;
        from.read_exact(&mut b)?;
    }
    let t = start.elapsed();
    drop(to);
    child.wait()?;
    #[allow(clippy::cast_precision_loss)]
    Ok(t.as_secs_f64() / rounds as f64)
}

fn shm_run(rounds: u64, access: Access) -> Result<f64, Box<dyn std::error::Error>> {
    let request_name = shmbridge::name::unique("shmb_bench_ping_");
    let reply_name = shmbridge::name::unique("shmb_bench_pong_");
    let request = FramedSegment::create(&request_name, 64, &FramedOptions::default())?;
    let warm = rounds / 10;
    let total = rounds + warm;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "shm-child",
            &request_name,
            &reply_name,
            &total.to_string(),
            access.as_str(),
        ])
        .spawn()?;
    let run = || -> Result<Duration, Box<dyn std::error::Error>> {
        let mut wait = Wait::timeout(TIMEOUT);
        let reply = FramedSegment::open_wait(&reply_name, Access::ReadWrite, &mut wait)?;
        let mut seen = reply.wait(0, &mut wait)?; // the child is ready
        let mut start = Instant::now();
        for i in 0..total {
            if i == warm {
                start = Instant::now();
            }
            publish(&request, b'x')?;
            seen = reply.wait(seen, &mut wait)?;
        }
        Ok(start.elapsed())
    };
    let t = run();
    let _ = child.wait();
    let _ = ShmObject::remove(&request_name);
    let _ = ShmObject::remove(&reply_name);
    #[allow(clippy::cast_precision_loss)]
    Ok(t?.as_secs_f64() / rounds as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("pipe-child") => return child_pipe(),
        Some("chan-child") => return child_chan(&args[1], &args[2], args[3].parse()?),
        Some("shm-child") => {
            let access = if args[4] == "read_only" {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            };
            return child_shm(&args[1], &args[2], args[3].parse()?, access);
        }
        _ => {}
    }
    let json = args.iter().position(|a| a == "--json").map(|i| {
        let path = args.get(i + 1).cloned().unwrap_or_default();
        args.drain(i..(i + 2).min(args.len()));
        path
    });
    let rounds: u64 = args.first().map_or(Ok(100_000), |s| s.parse())?;
    let repeat: usize = args.get(1).map_or(Ok(5), |s| s.parse())?;
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!("round trips: {repeat} runs of {rounds} each, round-robin; {cpus} CPU(s) allowed");
    let approaches: [(&str, Access); 4] = [
        ("pipe", Access::ReadWrite),
        ("shm", Access::ReadWrite),
        ("shm-ro", Access::ReadOnly),
        ("chan", Access::ReadWrite),
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); approaches.len()];
    for _ in 0..repeat {
        for (i, (label, access)) in approaches.iter().enumerate() {
            let t = match *label {
                "pipe" => pipe_run(rounds)?,
                "chan" => chan_run(rounds)?,
                _ => shm_run(rounds, *access)?,
            };
            results[i].push(t);
        }
    }
    let mut medians = Vec::new();
    let mut out = String::from("{");
    let _ = write!(
        out,
        "\"rounds\": {rounds}, \"repeat\": {repeat}, \"cpus\": {cpus}, \"us\": {{"
    );
    for (i, (label, _)) in approaches.iter().enumerate() {
        let runs = results[i].clone();
        let (med, lo, hi) = shmbridge_bench::median_spread(&mut results[i]);
        medians.push(med);
        println!(
            "{label:<8} {:>9.3} us  ({:.3} - {:.3})",
            med * 1e6,
            lo * 1e6,
            hi * 1e6
        );
        let list: Vec<String> = runs.iter().map(|t| format!("{:.4}", t * 1e6)).collect();
        let _ = write!(
            out,
            "{}\"{label}\": {{\"median\": {:.4}, \"min\": {:.4}, \"max\": {:.4}, \"runs\": [{}]}}",
            if i == 0 { "" } else { ", " },
            med * 1e6,
            lo * 1e6,
            hi * 1e6,
            list.join(", ")
        );
    }
    out.push_str("}}\n");
    println!(
        "ratio pipe / shm     {:>9.1}x",
        medians[0] / medians[1].max(1e-12)
    );
    println!(
        "ratio pipe / shm-ro  {:>9.1}x",
        medians[0] / medians[2].max(1e-12)
    );
    println!(
        "ratio pipe / chan    {:>9.1}x",
        medians[0] / medians[3].max(1e-12)
    );
    if let Some(path) = json {
        std::fs::write(&path, out)?;
    }
    Ok(())
}
