//! `pub` and `sub`: channels from the shell, against each other and against the library, with
//! `ls`/`info` showing readers and their lag. Only outcomes are checked, never times.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{run, wait_until, Dir, Proc, Seg, BIN};
use shmbridge::channel::{ChannelOptions, ChannelReader, ChannelWriter};
use shmbridge::Wait;

fn info_json(name: &str) -> serde_json::Value {
    let out = run(&["info", "--json", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn lines_and_files_go_from_pub_to_sub() {
    let seg = Seg::new("pubsub");
    let dir = Dir::new();
    let sub = Proc::spawn(BIN, &["-q", "sub", &seg.0, "-t", "60s"]);
    let mut publisher = Command::new(BIN)
        .args(["-q", "pub", &seg.0, "-w", "1", "-t", "60s"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    for i in 0..200 {
        writeln!(stdin, "line {i}").unwrap();
    }
    drop(stdin);
    assert!(publisher.wait().unwrap().success());
    let out = sub.output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let want: String = (0..200)
        .map(|i| format!("line {i}\n"))
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(text, want);
    assert!(run(&["rm", &seg.0]).status.success());

    // Files, one message each, to files, with --count.
    let (a, da) = dir.file("a.bin", 100_000, 1);
    let (b, db) = dir.file("b.bin", 3, 2);
    let out_dir = dir.path("got");
    let sub = Proc::spawn(
        BIN,
        &[
            "-q",
            "sub",
            &seg.0,
            "-c",
            "2",
            "-o",
            out_dir.to_str().unwrap(),
            "-t",
            "60s",
        ],
    );
    let p = run(&[
        "-q",
        "pub",
        &seg.0,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-w",
        "1",
        "-t",
        "60s",
    ]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let (code, err) = sub.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(out_dir.join("000000000000.msg")).unwrap(), da);
    assert_eq!(std::fs::read(out_dir.join("000000000001.msg")).unwrap(), db);
}

#[test]
fn ls_and_info_show_a_channels_readers_and_their_lag() {
    let seg = Seg::new("chinfo");
    let mut w = ChannelWriter::create(
        &seg.0,
        &ChannelOptions {
            slots: 8,
            readers: 3,
            max_message: 64,
            ..ChannelOptions::default()
        },
    )
    .unwrap();
    let mut wait = Wait::timeout(Duration::from_secs(30));
    let r = ChannelReader::open(&seg.0, &mut wait).unwrap();
    for i in 0..5u8 {
        w.send(&[i], 0, &mut wait).unwrap();
    }
    drop(r.try_recv().unwrap());
    let j = info_json(&seg.0);
    assert_eq!(j["layout"], "framed/channel");
    assert_eq!(j["channel"]["published"], 5);
    assert_eq!(j["channel"]["policy"], "block");
    assert_eq!(j["channel"]["writer_alive"], true);
    let readers = j["channel"]["readers"].as_array().unwrap();
    assert_eq!(readers.len(), 1);
    assert_eq!(readers[0]["lag"], 4);
    assert_eq!(readers[0]["taken"], 1);
    assert_eq!(readers[0]["alive"], true);
    let ls = run(&["ls"]);
    let line = String::from_utf8_lossy(&ls.stdout)
        .lines()
        .find(|l| l.starts_with(&seg.0))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("framed/channel")
            && line.contains("1 reader(s)")
            && line.contains("lag up to 4"),
        "{line}"
    );
    // reap leaves a channel that is being read, even when its writer is gone.
    drop(w);
    assert!(run(&["-q", "reap", &seg.0]).status.success());
    assert!(shmbridge::ShmObject::exists(&seg.0));
}

#[test]
fn sub_stops_cleanly_on_ctrl_c_and_refuses_what_is_not_a_channel() {
    let seg = Seg::new("subint");
    let _w = ChannelWriter::create(&seg.0, &ChannelOptions::default()).unwrap();
    let mut sub = Proc::spawn(BIN, &["-q", "sub", &seg.0]);
    wait_until("the reader to join", || {
        info_json(&seg.0)["channel"]["readers"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    });
    assert!(sub.running());
    sub.signal(libc::SIGINT);
    let (code, err) = sub.finish();
    assert_eq!(code, 130, "{err}");
    // Not a channel: a message segment.
    let other = Seg::new("notch");
    let _f = shmbridge::FramedSegment::create(&other.0, 16, &shmbridge::FramedOptions::default())
        .unwrap();
    let out = run(&["sub", &other.0, "-t", "1s"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a channel"));
    // Bad options are clear errors.
    let out = run(&["pub", &Seg::new("badopt").0, "--slots", "1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("slots"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A channel that never appears: sub times out (exit 5).
    let out = run(&["sub", &Seg::new("never").0, "-t", "100ms"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
