//! The `shmbridge` command as a library: hand files between processes through shared memory,
//! and look after the segments on this machine. `docs/CLI.md` is the manual.
//!
//! [`run`] parses the arguments, carries out the command and returns its exit code. The
//! `shmbridge` binary calls it with [`Interrupt::on_signals`]; the Python package calls it
//! through its extension (`shmbridge._native.cli_main`, behind the `shmbridge` console script
//! and `python -m shmbridge`) with an interrupt that checks Python's signals. So there is one
//! command, whichever way it is started.
//!
//! The exit codes are one table, [`EXIT_STATUSES`], from which the code of every failure,
//! `shmbridge --help`, the man page and `docs/CLI.md` come.
//!
//! ```
//! use shmbridge_cli::{run, Interrupt};
//! # let name = shmbridge::name::unique("doc_cli_");
//! assert_eq!(run(["shmbridge", "-q", "rm", name.as_str()], &Interrupt::never()), 3);
//! assert_eq!(run(["shmbridge", "send", "--bogus"], &Interrupt::never()), 2);
//! ```

mod args;
mod channel;
mod doctor;
mod exit;
mod generate;
mod interrupt;
mod report;
mod segments;
mod transfer;

use std::ffi::OsString;

use clap::Parser;

pub use exit::{exit_code_for, ExitStatus, EXIT_STATUSES};
pub use generate::{command, reference_markdown};
pub use interrupt::Interrupt;

use args::{Cli, Cmd};

/// Run the command line `args` (the program name first, as in `std::env::args_os()`) and
/// return the exit code. `interrupt` is polled while a transfer runs or waits; once it says
/// stop, the transfer stops cleanly (a sender removes its segment, a receiver leaves its target
/// untouched) and the code is 130.
///
/// Writes to this process's standard output and error. Never panics on a closed pipe.
pub fn run<I, T>(args: I, interrupt: &Interrupt) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with exit code 0.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(exit::USAGE);
        }
    };
    let quiet = cli.quiet;
    let outcome = match cli.cmd {
        Cmd::Send(a) => transfer::send(a, quiet, interrupt),
        Cmd::Recv {
            name,
            out,
            timeout,
            keep,
            fsync,
            allow_owner,
        } => transfer::recv(
            &name,
            &out,
            timeout,
            (keep, fsync),
            &allow_owner,
            quiet,
            interrupt,
        ),
        Cmd::Ls { json } => segments::ls(json),
        Cmd::Info { name, json } => segments::info(&name, json),
        Cmd::Rm { names } => segments::rm(&names),
        Cmd::Cat {
            name,
            timeout,
            allow_owner,
        } => transfer::cat(&name, timeout, &allow_owner, interrupt),
        Cmd::Reap {
            names,
            all,
            dry_run,
        } => segments::reap(&names, all, dry_run, quiet),
        Cmd::Pub(a) => channel::publish(&a, quiet, interrupt),
        Cmd::Sub(a) => channel::subscribe(&a, interrupt),
        Cmd::Doctor { json } => doctor::doctor(json),
        Cmd::Completions { shell } => generate::completions(shell),
        Cmd::Man { out_dir } => generate::man(out_dir.as_deref()),
    };
    report::exit_code(outcome)
}
