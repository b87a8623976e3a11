//! `ls` and `info` show an array segment's element type, shape, order and version; `recv`
//! refuses one with a clear error; a damaged header is reported, not a crash.

mod common;

use common::{run, Dir, Seg};
use shmbridge::array::{ArraySegment, DType, Order, ARRAY_SEGMENT_HEADER_LEN};
use shmbridge::{Access, FramedOptions, Segment};

fn info_json(name: &str) -> serde_json::Value {
    let out = run(&["info", "--json", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ls_line(name: &str) -> String {
    let ls = run(&["ls"]);
    assert!(ls.status.success());
    String::from_utf8_lossy(&ls.stdout)
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} not listed"))
        .to_owned()
}

#[test]
fn ls_and_info_show_dtype_shape_order_and_version() {
    let seg = Seg::new("arrinfo");
    let a = ArraySegment::create(
        &seg.0,
        DType::UInt8,
        &[480, 640, 3],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    a.publish().unwrap();
    a.publish().unwrap();
    let j = info_json(&seg.0);
    assert_eq!(j["layout"], "framed/array");
    assert_eq!(j["array"]["dtype"], "uint8");
    assert_eq!(j["array"]["shape"], serde_json::json!([480, 640, 3]));
    assert_eq!(j["array"]["strides"], serde_json::json!([1920, 3, 1]));
    assert_eq!(j["array"]["order"], "C");
    assert_eq!(j["array"]["version"], 2);
    let line = ls_line(&seg.0);
    assert!(
        line.contains("framed/array") && line.contains("uint8 (480, 640, 3) C, version 2"),
        "{line}"
    );
    let text = run(&["info", &seg.0]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("uint8 (480, 640, 3) C"), "{text}");
    assert!(text.contains("array:"), "{text}");

    let seg2 = Seg::new("arrinfo_f");
    let _b = ArraySegment::create(
        &seg2.0,
        DType::Float64,
        &[7],
        Order::F,
        &FramedOptions::default(),
    )
    .unwrap();
    assert!(ls_line(&seg2.0).contains("float64 (7,) C, version 0"));
    let seg3 = Seg::new("arrinfo_ff");
    let _c = ArraySegment::create(
        &seg3.0,
        DType::Complex64,
        &[2, 3],
        Order::F,
        &FramedOptions::default(),
    )
    .unwrap();
    let j = info_json(&seg3.0);
    assert_eq!(j["array"]["order"], "F");
    assert_eq!(j["array"]["dtype"], "complex64");
}

#[test]
fn a_damaged_array_header_is_reported_and_recv_refuses_an_array() {
    let seg = Seg::new("arrbad");
    let _a = ArraySegment::create(
        &seg.0,
        DType::Float32,
        &[4, 4],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    let dir = Dir::new();
    let out = run(&["recv", &seg.0, dir.path("out").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("array segment"), "{err}");
    assert!(!dir.path("out").exists());
    // Too many dimensions, planted in the real segment.
    let raw = Segment::open(&seg.0, Access::ReadWrite).unwrap();
    raw.set(u64::from(ARRAY_SEGMENT_HEADER_LEN) + 18, 40u8)
        .unwrap();
    let j = info_json(&seg.0);
    assert_eq!(j["layout"], "framed/array");
    assert!(j["array"].is_null());
    let state = j["state"].as_str().unwrap();
    assert!(state.contains("40"), "{state}");
    assert!(ls_line(&seg.0).contains("framed/array"));
}
