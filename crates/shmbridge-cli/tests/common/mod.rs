//! Helpers shared by the command's integration tests: unique names and directories removed on
//! drop, child processes killed on drop, signals.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_shmbridge");

/// A generous limit for anything a test waits for (only outcomes are checked, never times).
pub const LIMIT: Duration = Duration::from_secs(60);

/// A unique segment name, removed on drop.
pub struct Seg(pub String);
impl Seg {
    pub fn new(tag: &str) -> Self {
        Self(shmbridge::name::unique(&format!("shmb_t_cli_{tag}_")))
    }
}
impl Drop for Seg {
    fn drop(&mut self) {
        let _ = shmbridge::ShmObject::remove(&self.0);
    }
}

/// A scratch directory, removed on drop.
pub struct Dir(pub PathBuf);
impl Dir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(shmbridge::name::unique("shmb_t_clidir_"));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub fn file(&self, name: &str, len: usize, seed: u8) -> (PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..len)
            .map(|i| ((i * 31 + usize::from(seed)) % 251) as u8)
            .collect();
        let p = self.0.join(name);
        std::fs::write(&p, &data).unwrap();
        (p, data)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop (so a failing test leaves no process behind).
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Start `program args`, with stdout and stderr piped.
    pub fn spawn(program: &str, args: &[&str]) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// Send `sig`.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(libc::pid_t::try_from(self.0.id()).unwrap(), sig) };
        assert_eq!(rc, 0);
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Wait (up to [`LIMIT`]) and return everything: status, stdout, stderr.
    pub fn output(mut self) -> Output {
        use std::io::Read;
        let start = Instant::now();
        while self.running() {
            assert!(
                start.elapsed() < LIMIT,
                "the process did not exit within {LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(mut o) = self.0.stdout.take() {
            let _ = o.read_to_end(&mut out);
        }
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_end(&mut err);
        }
        Output {
            status: self.0.wait().unwrap(),
            stdout: out,
            stderr: err,
        }
    }

    /// Wait (up to [`LIMIT`]) and return the exit code (-1 for a signal) and stderr.
    pub fn finish(mut self) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.0.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code().unwrap_or(-1), err);
            }
            assert!(
                start.elapsed() < LIMIT,
                "the process did not exit within {LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Run the command to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Wait until `cond` holds (checking every 100 µs, up to [`LIMIT`]).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_micros(100));
    }
}
