//! The `shmbridge` command. Grows into send/recv/ls/info/rm/cat/reap in the transfer issue.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ls") => match shmbridge::list() {
            Ok(all) => {
                for s in all {
                    println!("{}\t{}\t{:o}", s.name, s.size, s.mode);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("shmbridge: {e}");
                ExitCode::FAILURE
            }
        },
        Some("--version") => {
            println!("shmbridge {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: shmbridge ls | --version");
            ExitCode::from(2)
        }
    }
}
