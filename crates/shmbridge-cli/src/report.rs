//! Writing to standard output and standard error without panicking (`println!` panics on a
//! closed pipe, and a panic must not cross into Python), and turning failures into exit codes.

use std::fmt;
use std::io::{self, Write};

use crate::exit;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// A core error, not reported yet.
    Core(shmbridge::Error),
    /// Standard output could not be written (a closed pipe: `shmbridge ls | head`).
    Output(io::Error),
    /// Already reported on stderr; exit with this code.
    Reported(u8),
}

impl From<shmbridge::Error> for Failure {
    fn from(e: shmbridge::Error) -> Self {
        Self::Core(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Output(e)
    }
}

/// What a command returns.
pub type Outcome = Result<(), Failure>;

/// Print `shmbridge: <error>` on stderr and return its exit code.
pub fn report(e: &shmbridge::Error) -> u8 {
    err(format_args!("shmbridge: {e}"));
    exit::exit_code_for(e.kind())
}

/// The exit code of an outcome, reporting what was not reported yet.
pub fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Ok(()) => exit::SUCCESS,
        Err(Failure::Core(e)) => report(&e),
        // Nobody reads our output any more: nothing useful can be said, and stderr may be the
        // same pipe.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => exit::OTHER,
        Err(Failure::Output(e)) => {
            err(format_args!(
                "shmbridge: cannot write to standard output: {e}"
            ));
            exit::OTHER
        }
        Err(Failure::Reported(code)) => code,
    }
}

/// A line on stderr; a failure to write it is ignored (there is nowhere left to say so).
pub fn err(args: fmt::Arguments<'_>) {
    let mut e = io::stderr().lock();
    let _ = e.write_fmt(args);
    let _ = e.write_all(b"\n");
}

/// A line on stdout.
///
/// # Errors
///
/// When standard output cannot be written.
pub fn out(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_fmt(args)?;
    o.write_all(b"\n")?;
    o.flush()
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($t:tt)*) => { $crate::report::err(format_args!($($t)*)) };
}

/// `println!` that returns an error instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => { $crate::report::out(format_args!($($t)*)) };
}

pub(crate) use {errln, outln};
