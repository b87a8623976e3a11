//! A non-Python peer for the Python tests: makes and reads segments with the Rust core alone.
//!
//! ```text
//! core_peer make LAYOUT NAME FILE [--keep]   # LAYOUT: raw | prefixed | framed
//! core_peer read LAYOUT NAME OUT             # copy the segment's data (payload) into OUT
//! ```
//!
//! `make` creates NAME holding FILE's bytes, prints `ready`, then waits for a line (or EOF) on
//! stdin and removes the segment; with `--keep` it exits at once and leaves the segment.

use std::io::{BufRead, Write};

use shmbridge::{size_prefixed, Access, FramedOptions, FramedSegment, Segment, ShmObject};

fn make(layout: &str, name: &str, data: &[u8]) -> shmbridge::Result<()> {
    match layout {
        "raw" => {
            let seg = Segment::create(name, data.len() as u64)?;
            seg.write_at(0, data)?;
        }
        "prefixed" => {
            size_prefixed::create(name, data, &shmbridge::SegmentOptions::default())?;
        }
        "framed" => {
            let f = FramedSegment::create(name, data.len() as u64, &FramedOptions::default())?;
            f.write(data)?;
        }
        other => panic!("unknown layout {other}"),
    }
    Ok(())
}

fn read(layout: &str, name: &str) -> shmbridge::Result<Vec<u8>> {
    match layout {
        "raw" => Segment::open(name, Access::ReadOnly)?.to_vec(),
        "prefixed" => size_prefixed::read(Segment::open(name, Access::ReadOnly)?.region()),
        "framed" => FramedSegment::open(name, Access::ReadOnly)?.read(),
        other => panic!("unknown layout {other}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["make", layout, name, file, rest @ ..] => {
            let data = std::fs::read(file)?;
            make(layout, name, &data)?;
            println!("ready");
            std::io::stdout().flush()?;
            if rest != ["--keep"] {
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                ShmObject::remove(name)?;
            }
        }
        ["read", layout, name, out] => {
            std::fs::write(out, read(layout, name)?)?;
        }
        _ => {
            eprintln!("usage: core_peer make LAYOUT NAME FILE [--keep] | read LAYOUT NAME OUT");
            std::process::exit(2);
        }
    }
    Ok(())
}
