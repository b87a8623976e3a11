//! The `shmbridge` binary's newer commands and its output rules: `doctor`, `completions`,
//! `man`, consistent short flags, the `unframed` layout word, and a closed stdout.

use std::io::Read;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shmbridge");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

mod common;
use common::Seg;

#[test]
fn doctor_describes_dev_shm() {
    let o = run(&["doctor"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert!(text.contains("directory:  /dev/shm"), "{text}");
    assert!(
        text.contains("mount:      ") && text.contains("type tmpfs"),
        "{text}"
    );
    assert!(text.contains("options:    "), "{text}");
    let o = run(&["doctor", "--json"]);
    assert_eq!(code(&o), 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let space = shmbridge::space::shm_space().unwrap();
    assert_eq!(v["total"], space.total);
    assert_eq!(v["mount"]["mount_point"], "/dev/shm");
    assert_eq!(v["mount"]["fs_type"], "tmpfs");
    assert!(v["advice"].is_array());
    assert_eq!(v["small"], space.is_small());
}

#[test]
fn completions_and_man_pages_come_from_the_definitions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        assert_eq!(code(&o), 0, "{shell}");
        let script = stdout(&o);
        assert!(script.contains("shmbridge"), "{shell}");
        assert!(
            script.contains("segment-size"),
            "{shell}: knows send's options"
        );
    }
    assert_eq!(code(&run(&["completions", "tcsh"])), 2);
    let o = run(&["man"]);
    assert_eq!(code(&o), 0);
    let page = stdout(&o);
    assert!(page.contains(".TH shmbridge 1"), "{page}");
    assert!(page.contains("Exit codes:"), "the man page has the table");
    let dir = std::env::temp_dir().join(shmbridge::name::unique("shmb_t_man_"));
    std::fs::create_dir(&dir).unwrap();
    let o = run(&["-q", "man", "--out-dir", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code(&o), 0);
    for p in [
        "shmbridge.1",
        "shmbridge-send.1",
        "shmbridge-recv.1",
        "shmbridge-doctor.1",
    ] {
        assert!(pages.contains(&p.to_owned()), "{p} in {pages:?}");
    }
    let o = run(&["man", "--out-dir", "/no/such/dir"]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such/dir"));
}

#[test]
fn short_flags_and_help() {
    // -n is the segment name (send); reap has no name, so -n is a usage error there, not a
    // silent dry run.
    let o = run(&["reap", "-n"]);
    assert_eq!(code(&o), 2);
    let o = run(&["send", "--help"]);
    assert_eq!(code(&o), 0);
    let help = stdout(&o);
    assert!(
        help.contains("-n, --name") && help.contains("-t, --timeout"),
        "{help}"
    );
    assert!(
        !help.contains("130  interrupted"),
        "the table is only in shmbridge --help"
    );
    assert!(stdout(&run(&["--help"])).contains("130  interrupted"));
    assert_eq!(code(&run(&["--version"])), 0);
    assert!(stdout(&run(&["--version"])).starts_with("shmbridge "));
}

#[test]
fn ls_calls_a_segment_without_a_header_unframed() {
    let seg = Seg::new("unframed");
    shmbridge::Segment::create(&seg.0, 4096).unwrap();
    let o = run(&["ls"]);
    let row = stdout(&o)
        .lines()
        .find(|l| l.contains(&seg.0))
        .unwrap()
        .to_owned();
    assert_eq!(row.split_whitespace().nth(1), Some("unframed"), "{row}");
    let o = run(&["info", &seg.0, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["layout"], "unframed");
}

/// `shmbridge ls | head -0`: the reader is gone; the command neither panics (exit 101) nor
/// prints a Rust backtrace.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let segs: Vec<Seg> = (0..50).map(|_| Seg::new("pipe")).collect();
    for s in &segs {
        shmbridge::Segment::create(&s.0, 4096).unwrap();
    }
    let mut child = Command::new(BIN)
        .args(["ls"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_ne!(status.code(), Some(101), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn permissions_are_set_by_permissions_and_by_the_old_name_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(shmbridge::name::unique("shmb_t_perm_"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("in");
    std::fs::write(&file, b"bits").unwrap();
    for (flag, bits) in [("--permissions", 0o640), ("--mode", 0o604)] {
        let seg = Seg::new("perm");
        let octal = format!("{bits:o}");
        let o = run(&[
            "send",
            file.to_str().unwrap(),
            "--name",
            &seg.0,
            flag,
            &octal,
            "-q",
        ]);
        assert_eq!(
            code(&o),
            0,
            "{flag}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let meta = std::fs::metadata(shmbridge::shm_dir().join(&seg.0)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, bits, "{flag}");
    }
    let help = stdout(&run(&["send", "--help"]));
    assert!(help.contains("--permissions"), "{help}");
    std::fs::remove_dir_all(&dir).unwrap();
}
