//! The `shmbridge` binary: [`shmbridge_cli::run`] with SIGINT and SIGTERM as its interrupt.

use std::process::ExitCode;

fn main() -> ExitCode {
    let interrupt = shmbridge_cli::Interrupt::on_signals();
    ExitCode::from(shmbridge_cli::run(std::env::args_os(), &interrupt))
}
