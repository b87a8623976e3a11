//! `ls`, `info`, `rm` and `reap`: the segments on this machine, as the core lists them.

use std::fmt::Write as _;

use indicatif::HumanBytes;
use serde_json::{json, Value};
use shmbridge::framed::flags;
use shmbridge::{Access, Detected, ErrorKind, FramedSegment, Kind, SegmentInfo, ShmObject};

use crate::report::{errln, outln, report, Failure, Outcome};

/// Everything `ls`, `info` and `reap` say about a segment.
struct Described {
    info: SegmentInfo,
    layout: String,
    alive: Option<bool>,
    state: String,
    json: Value,
}

fn owner_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

fn describe(info: SegmentInfo) -> Described {
    let mut j = json!({
        "name": info.display_name(),
        "size": info.size,
        "uid": info.uid,
        "owner": owner_name(info.uid),
        "mode": format!("{:04o}", info.mode),
        "mtime_ns": info.mtime_ns.to_string(),
    });
    let (layout, alive, state) = match &info.detected {
        Detected::Unframed => ("unframed".to_owned(), None, String::new()),
        Detected::BadFramed(why) => {
            j["error"] = json!(why);
            ("framed?".to_owned(), None, "bad header".to_owned())
        }
        Detected::Unreadable(why) => {
            j["error"] = json!(why);
            ("?".to_owned(), None, "unreadable".to_owned())
        }
        Detected::Framed(h) => {
            let alive = h.creator_alive();
            j["framed"] = json!({
                "version": format!("{}.{}", h.version_major, h.version_minor),
                "header_len": h.header_len,
                "kind": h.kind.name(),
                "flags": h.flags,
                "capacity": h.capacity,
                "payload_len": h.payload_len,
                "sequence": h.sequence,
                "publish_count": h.publish_count,
                "checksum": h.checksum.map(|c| format!("{c:08x}")),
                "creator_pid": h.creator_pid,
                "creator_alive": alive,
                "created_ns": h.created_ns.to_string(),
                "writer_closed": h.writer_closed(),
            });
            let state = if h.kind == Kind::Stream {
                exact_name(&info).map_or_else(String::new, |n| stream_state(n, &mut j))
            } else if h.kind == Kind::Channel {
                exact_name(&info).map_or_else(String::new, |n| channel_state(n, &mut j))
            } else if h.kind == Kind::Array {
                exact_name(&info).map_or_else(String::new, |n| array_state(n, h, &mut j))
            } else if h.flags & flags::PUBLISHED != 0 {
                if h.writer_closed() {
                    "complete".to_owned()
                } else {
                    "published".to_owned()
                }
            } else if h.writer_closed() {
                "closed empty".to_owned()
            } else if h.sequence % 2 == 1 {
                "writing".to_owned()
            } else {
                "empty".to_owned()
            };
            j["state"] = json!(state);
            (format!("framed/{}", h.kind.name()), Some(alive), state)
        }
    };
    j["layout"] = json!(layout);
    j["creator_alive"] = json!(alive);
    Described {
        info,
        layout,
        alive,
        state,
        json: j,
    }
}

/// A stream's state, in words and in `j["stream"]`.
fn stream_state(name: &str, j: &mut Value) -> String {
    match FramedSegment::open(name, Access::ReadOnly).and_then(|f| shmbridge::stream::status(&f)) {
        Ok(s) => {
            j["stream"] = json!({
                "capacity": s.capacity,
                "write_pos": s.write_pos,
                "read_pos": s.read_pos,
                "total_len": s.total_len,
                "writer_state": s.writer_state.name(),
                "reader_state": s.reader_state.name(),
                "writer_pid": s.writer_pid,
                "writer_alive": s.writer_alive,
                "reader_pid": s.reader_pid,
                "reader_alive": s.reader_alive,
                "final_crc": s.final_crc.map(|c| format!("{c:08x}")),
            });
            format!(
                "writer {}, reader {}, {} through",
                s.writer_state.name(),
                s.reader_state.name(),
                HumanBytes(s.read_pos)
            )
        }
        Err(e) => e.detail().to_owned(),
    }
}

/// A channel's state, in words and in `j["channel"]`.
fn channel_state(name: &str, j: &mut Value) -> String {
    match FramedSegment::open(name, Access::ReadOnly).and_then(|f| shmbridge::channel::status(&f)) {
        Ok(c) => {
            let readers: Vec<Value> = c
                .reader_places
                .iter()
                .map(|r| {
                    json!({
                        "index": r.index,
                        "alive": r.alive,
                        "pid": r.pid,
                        "cursor": r.cursor,
                        "lag": r.lag,
                        "taken": r.taken,
                        "lost": r.lost,
                    })
                })
                .collect();
            let max_lag = c.reader_places.iter().map(|r| r.lag).max();
            j["channel"] = json!({
                "slots": c.slots,
                "reader_places": c.readers,
                "max_message": c.max_message,
                "policy": c.policy.as_str(),
                "history": c.history,
                "checksum": c.checksum,
                "published": c.head,
                "oldest_available": c.tail,
                "closed": c.closed,
                "writer_alive": c.writer_alive,
                "readers": readers,
            });
            format!(
                "{} {}, {} published, {} reader(s){}",
                if c.closed { "closed" } else { "open" },
                c.policy.as_str(),
                c.head,
                c.reader_places.len(),
                max_lag.map_or(String::new(), |l| format!(", lag up to {l}"))
            )
        }
        Err(e) => e.detail().to_owned(),
    }
}

/// An array segment's element type and shape, in words and in `j["array"]`.
fn array_state(name: &str, h: &shmbridge::HeaderInfo, j: &mut Value) -> String {
    let opened = FramedSegment::open(name, Access::ReadOnly);
    match opened.and_then(|f| shmbridge::array::header_of(&f)) {
        Ok(a) => {
            let order = if a.is_c_contiguous() {
                "C"
            } else if a.is_f_contiguous() {
                "F"
            } else {
                "strided"
            };
            let shape = match a.shape() {
                [d] => format!("({d},)"),
                dims => format!(
                    "({})",
                    dims.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let version = h.sequence / 2;
            j["array"] = json!({
                "dtype": a.dtype().name(),
                "shape": a.shape(),
                "strides": a.strides(),
                "order": order,
                "itemsize": a.itemsize(),
                "nbytes": a.nbytes(),
                "data_offset": a.data_offset(),
                "version": version,
            });
            let writing = if h.sequence % 2 == 1 { ", writing" } else { "" };
            let closed = if h.writer_closed() { ", closed" } else { "" };
            format!(
                "{} {shape} {order}, version {version}{writing}{closed}",
                a.dtype().name()
            )
        }
        Err(e) => e.detail().to_owned(),
    }
}

/// The segment's name, when it can be opened by it (it is UTF-8); a name that is not cannot be
/// passed to the library's `&str` calls, only listed (escaped) and removed by its bytes.
fn exact_name(info: &SegmentInfo) -> Option<&str> {
    info.name_is_exact().then_some(info.name.as_str())
}

/// `shmbridge ls`.
pub fn ls(json_out: bool) -> Outcome {
    let all = shmbridge::list()?;
    let rows: Vec<Described> = all.into_iter().map(describe).collect();
    if json_out {
        let v: Vec<Value> = rows.into_iter().map(|d| d.json).collect();
        outln!("{}", Value::Array(v))?;
        return Ok(());
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|d| {
            [
                d.info.display_name(),
                d.layout.clone(),
                HumanBytes(d.info.size).to_string(),
                owner_name(d.info.uid),
                format!("{:04o}", d.info.mode),
                match d.alive {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
                d.state.clone(),
            ]
        })
        .collect();
    let head = ["NAME", "LAYOUT", "SIZE", "OWNER", "MODE", "ALIVE", "STATE"];
    let mut widths = head.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c:<w$}  ");
            }
        }
        outln!("{}", s.trim_end())
    };
    line(&head.map(String::from))?;
    for row in &table {
        line(row)?;
    }
    Ok(())
}

/// `shmbridge info`.
pub fn info(name: &str, json_out: bool) -> Outcome {
    let d = describe(shmbridge::info(name)?);
    if json_out {
        outln!("{}", d.json)?;
        return Ok(());
    }
    outln!("name:     {}", d.info.display_name())?;
    outln!("layout:   {}", d.layout)?;
    outln!(
        "size:     {} ({} bytes)",
        HumanBytes(d.info.size),
        d.info.size
    )?;
    outln!("owner:    {} (uid {})", owner_name(d.info.uid), d.info.uid)?;
    outln!("mode:     {:04o}", d.info.mode)?;
    if !d.state.is_empty() {
        outln!("state:    {}", d.state)?;
    }
    let print_obj = |title: &str, v: &Value| -> std::io::Result<()> {
        if let Some(map) = v.as_object() {
            outln!("{title}:")?;
            for (k, val) in map {
                let shown = match val {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                outln!("  {k:<14} {shown}")?;
            }
        }
        Ok(())
    };
    print_obj("header", &d.json["framed"])?;
    print_obj("stream", &d.json["stream"])?;
    print_obj("array", &d.json["array"])?;
    if let Some(c) = d.json["channel"].as_object() {
        let mut c = c.clone();
        let readers = c.remove("readers");
        print_obj("channel", &Value::Object(c))?;
        for r in readers
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            outln!(
                "  reader {:<3} pid {:<8} {:<5} lag {:<6} taken {:<8} lost {}",
                r["index"],
                r["pid"],
                if r["alive"].as_bool() == Some(true) {
                    "alive"
                } else {
                    "dead"
                },
                r["lag"],
                r["taken"],
                r["lost"]
            )?;
        }
    }
    if let Some(e) = d.json["error"].as_str() {
        outln!("error:    {e}")?;
    }
    Ok(())
}

/// `shmbridge rm`: every name is tried; the exit code is the last failure's.
pub fn rm(names: &[String]) -> Outcome {
    let mut code = None;
    for n in names {
        if let Err(e) = ShmObject::remove(n) {
            code = Some(report(&e));
        }
    }
    code.map_or(Ok(()), |c| Err(Failure::Reported(c)))
}

/// `shmbridge reap [NAME...]`: every segment, or only those named (a name that is not there
/// is reported, like `rm` does, after the others are handled).
pub fn reap(names: &[std::ffi::OsString], all: bool, dry_run: bool, quiet: bool) -> Outcome {
    use std::os::unix::ffi::OsStrExt;
    let wanted: Vec<&[u8]> = names
        .iter()
        .map(|n| {
            let b = n.as_bytes();
            b.strip_prefix(b"/").unwrap_or(b)
        })
        .collect();
    let mut segments = shmbridge::list()?;
    if !wanted.is_empty() {
        segments.retain(|i| wanted.contains(&i.raw_name.as_slice()));
    }
    let mut code = None;
    for missing in wanted
        .iter()
        .filter(|w| !segments.iter().any(|i| i.raw_name == **w))
    {
        let shown = String::from_utf8_lossy(missing).escape_debug().to_string();
        code = Some(report(
            &shmbridge::Error::new(ErrorKind::NotFound, "no such segment").with_segment(&shown),
        ));
    }
    for info in segments {
        let Detected::Framed(h) = &info.detected else {
            continue;
        };
        if h.creator_alive() {
            continue;
        }
        let complete_message = h.kind == Kind::Message
            && h.flags & flags::PUBLISHED != 0
            && h.writer_closed()
            && h.checksum.is_some();
        if complete_message && !all {
            if !quiet {
                errln!(
                    "kept {} (a complete payload waiting for its receiver; --all removes it)",
                    info.display_name()
                );
            }
            continue;
        }
        if h.kind == Kind::Stream {
            let draining = exact_name(&info).is_some()
                && FramedSegment::open(&info.name, Access::ReadOnly)
                    .and_then(|f| shmbridge::stream::status(&f))
                    .is_ok_and(|s| s.reader_alive);
            if draining {
                continue;
            }
        }
        if h.kind == Kind::Channel {
            let reading = exact_name(&info).is_some()
                && FramedSegment::open(&info.name, Access::ReadOnly)
                    .and_then(|f| shmbridge::channel::status(&f))
                    .is_ok_and(|c| c.reader_places.iter().any(|r| r.alive));
            if reading && !all {
                continue;
            }
        }
        if dry_run {
            outln!(
                "would remove {} (creator pid {} is gone)",
                info.display_name(),
                h.creator_pid
            )?;
        } else {
            match info.remove() {
                Ok(()) => outln!(
                    "removed {} (creator pid {} is gone)",
                    info.display_name(),
                    h.creator_pid
                )?,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => code = Some(report(&e)),
            }
        }
    }
    code.map_or(Ok(()), |c| Err(Failure::Reported(c)))
}
