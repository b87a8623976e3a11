//! Put a file into a framed segment, or remove a segment.
//!
//! ```text
//! cargo run --example framed_demo -- write NAME FILE   # creates NAME, publishes FILE's bytes
//! cargo run --example framed_demo -- remove NAME
//! ```
//!
//! `make demo` uses it with the stdlib-only reader in `tests/reference/` on the other side.

use shmbridge::{FramedOptions, FramedSegment, ShmObject};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", name, file] => {
            let data = std::fs::read(file)?;
            let framed = FramedSegment::create(name, data.len() as u64, &FramedOptions::default())?;
            framed.write(&data)?;
            let h = framed.header()?;
            println!(
                "rust: published {} bytes into framed segment {name:?} (crc32 {:08x}, sequence {})",
                h.payload_len,
                h.checksum.unwrap_or(0),
                h.sequence
            );
        }
        ["remove", name] => ShmObject::remove(name)?,
        _ => {
            eprintln!("usage: framed_demo write NAME FILE | remove NAME");
            std::process::exit(2);
        }
    }
    Ok(())
}
