//! Round-trip latency between two processes: publish/wait on framed segments (spin, then a
//! futex sleep on the shared mapping) against a pipe request-reply.
//!
//! ```text
//! cargo run --release -p shmbridge-cli --example rtt -- [ROUNDS]
//! ```
//!
//! The parent re-runs this program as the child; each round trip is one message each way. The
//! shared-memory round trip runs twice: with the child's request segment opened read-write,
//! and read-only (a read-only reader cannot count itself as a sleeper; the writer learns of it
//! through its liveness lock and then wakes on every publish).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmbridge::{Access, FramedOptions, FramedSegment, ShmObject, Wait};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Publish a one-byte payload: the seqlock write, the futex bump and the wake (if anyone
/// sleeps), without a checksum.
fn publish(seg: &FramedSegment, byte: u8) -> shmbridge::Result<()> {
    let w = seg.begin_write()?;
    // SAFETY: the payload area has room for 64 bytes, and we hold the write.
    unsafe { w.as_mut_ptr().write(byte) };
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
    let reply = FramedSegment::open(reply, Access::ReadWrite)?;
    let mut seen = request.publish_count();
    // Tell the parent we are ready.
    reply.write(b"r")?;
    for _ in 0..rounds {
        seen = request.wait(seen, &mut Wait::timeout(TIMEOUT))?;
        publish(&reply, b'p')?;
    }
    Ok(())
}

fn pipe_rtt(rounds: u64) -> Result<Duration, Box<dyn std::error::Error>> {
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
    Ok(t / u32::try_from(rounds)?)
}

fn shm_rtt(rounds: u64, access: Access) -> Result<Duration, Box<dyn std::error::Error>> {
    let request_name = shmbridge::name::unique("shmb_bench_ping_");
    let reply_name = shmbridge::name::unique("shmb_bench_pong_");
    let request = FramedSegment::create(&request_name, 64, &FramedOptions::default())?;
    let reply = FramedSegment::create(&reply_name, 64, &FramedOptions::default())?;
    let warm = rounds / 10;
    let total = rounds + warm;
    let mut seen = reply.publish_count();
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "shm-child",
            &request_name,
            &reply_name,
            &total.to_string(),
            access.as_str(),
        ])
        .spawn()?;
    let mut run = || -> Result<Duration, Box<dyn std::error::Error>> {
        seen = reply.wait(seen, &mut Wait::timeout(TIMEOUT))?; // the child is ready
        let mut start = Instant::now();
        for i in 0..total {
            if i == warm {
                start = Instant::now();
            }
            publish(&request, b'x')?;
            seen = reply.wait(seen, &mut Wait::timeout(TIMEOUT))?;
        }
        Ok(start.elapsed())
    };
    let t = run();
    let _ = child.wait();
    let _ = ShmObject::remove(&request_name);
    let _ = ShmObject::remove(&reply_name);
    Ok(t? / u32::try_from(rounds)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("pipe-child") => return child_pipe(),
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
    let rounds: u64 = args.first().map_or(Ok(100_000), |s| s.parse())?;
    let pipe = pipe_rtt(rounds)?;
    let shm = shm_rtt(rounds, Access::ReadWrite)?;
    let shm_ro = shm_rtt(rounds, Access::ReadOnly)?;
    println!("round trips: {rounds} each");
    println!(
        "pipe request-reply:                 {:>9.3} us",
        pipe.as_secs_f64() * 1e6
    );
    println!(
        "shmbridge publish/wait (futex): {:>9.3} us",
        shm.as_secs_f64() * 1e6
    );
    println!(
        "  ... read-only reader:         {:>9.3} us",
        shm_ro.as_secs_f64() * 1e6
    );
    println!(
        "ratio pipe / shmbridge:         {:>9.1}x",
        pipe.as_secs_f64() / shm.as_secs_f64().max(1e-12)
    );
    println!(
        "ratio read-only / read-write:   {:>9.2}x",
        shm_ro.as_secs_f64() / shm.as_secs_f64().max(1e-12)
    );
    Ok(())
}
