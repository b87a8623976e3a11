//! Channel throughput: 64-byte messages per second from one writer to 1 and to 4 readers,
//! each reader in its own process, block policy (every reader gets every message).
//!
//! ```text
//! cargo run --release -p shmbridge-bench --bin channel_throughput -- [MESSAGES] [REPEAT] [READERS,...] [--json PATH]
//! ```
//!
//! Prints one line per reader count: the median rate over REPEAT runs and the spread; with
//! `--json`, writes them as `{"readers": {"1": {"median": msg/s, "min": .., "max": ..}, ..}}`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmbridge::channel::{ChannelOptions, ChannelReader, ChannelWriter, Policy};
use shmbridge::{ShmObject, Wait};

const MSG: usize = 64;

fn reader(name: &str, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let r = ChannelReader::open(name, &mut Wait::timeout(Duration::from_secs(30)))?;
    println!("ready");
    let mut sum = 0u64;
    let mut wait = Wait::timeout(Duration::from_secs(60));
    for _ in 0..count {
        let m = r.recv(&mut wait)?;
        sum = sum.wrapping_add(u64::from(m[0]));
    }
    std::hint::black_box(sum);
    Ok(())
}

fn run(readers: u32, count: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let name = shmbridge::name::unique("shmb_bench_ch_");
    let opts = ChannelOptions {
        slots: 1024,
        max_message: MSG as u64,
        readers,
        policy: Policy::Block,
        ..ChannelOptions::default()
    };
    let mut w = ChannelWriter::create(&name, &opts)?;
    let mut kids = Vec::new();
    for _ in 0..readers {
        let mut kid = Command::new(std::env::current_exe()?)
            .args(["reader", &name, &count.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = kid.stdout.take().ok_or("no stdout")?;
        let mut b = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut b)?;
        kids.push(kid);
    }
    let payload = [7u8; MSG];
    let start = Instant::now();
    let mut wait = Wait::timeout(Duration::from_secs(60));
    for i in 0..count {
        w.send(&payload, i as u32, &mut wait)?;
    }
    for mut k in kids {
        k.wait()?;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(w);
    let _ = ShmObject::remove(&name);
    #[allow(clippy::cast_precision_loss)]
    Ok(count as f64 / secs)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("reader") {
        return reader(&args[1], args[2].parse()?);
    }
    let json = args.iter().position(|a| a == "--json").map(|i| {
        let path = args.get(i + 1).cloned().unwrap_or_default();
        args.drain(i..(i + 2).min(args.len()));
        path
    });
    let count: u64 = args.first().map_or(Ok(2_000_000), |s| s.parse())?;
    let repeat: usize = args.get(1).map_or(Ok(5), |s| s.parse())?;
    let counts: Vec<u32> = args
        .get(2)
        .map_or("1,4", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for readers in counts {
        let mut rates: Vec<f64> = (0..repeat)
            .map(|_| run(readers, count))
            .collect::<Result<_, _>>()?;
        let (med, lo, hi) = shmbridge_bench::median_spread(&mut rates);
        println!(
            "channel 64 B, 1 writer -> {readers} reader(s): median {:.2} M msg/s (min {:.2}, max {:.2}; {repeat} runs of {count})",
            med / 1e6,
            lo / 1e6,
            hi / 1e6
        );
        out.push(format!(
            "\"{readers}\": {{\"median\": {med:.0}, \"min\": {lo:.0}, \"max\": {hi:.0}}}"
        ));
    }
    if let Some(path) = json {
        std::fs::write(
            &path,
            format!(
                "{{\"count\": {count}, \"repeat\": {repeat}, \"readers\": {{{}}}}}\n",
                out.join(", ")
            ),
        )?;
    }
    Ok(())
}
