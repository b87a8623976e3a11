//! Helpers shared by the integration tests: unique names, cleanup guards, child processes.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// A unique segment name for this test, removed when the guard drops (even on panic).
pub struct TestSegment(pub String);

impl TestSegment {
    pub fn new(tag: &str) -> Self {
        Self(shmbridge::name::unique(&format!("shmb_t_{tag}_")))
    }
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for TestSegment {
    fn drop(&mut self) {
        let _ = shmbridge::ShmObject::remove(&self.0);
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Python interpreter used for interop tests (`SHMB_PYTHON`, default `python3`).
pub fn python() -> String {
    std::env::var("SHMB_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Run a Python snippet with arguments; panic with its output unless it exits 0.
pub fn run_python(code: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 runs");
    check(&out, "python");
    String::from_utf8(out.stdout).unwrap()
}

pub fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Re-run this test binary as a child process that executes only the test `entry`, with
/// `SHMB_CHILD` set to `arg`. The entry test returns at once when `SHMB_CHILD` is unset, so it
/// is harmless when the normal run executes it.
pub fn child(entry: &str, arg: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env("SHMB_CHILD", arg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// In a child started by [`child`], the argument it was given.
pub fn child_arg() -> Option<String> {
    std::env::var("SHMB_CHILD").ok()
}

/// A deterministic byte pattern: byte i is `(i * 31 + seed) % 251`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + usize::from(seed)) % 251) as u8)
        .collect()
}
