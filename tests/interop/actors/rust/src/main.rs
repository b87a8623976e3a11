//! The Rust participant of the interop suite: the core crate, and nothing else.
//! The command line is the one every actor shares (`tests/interop/PROTOCOL.md`).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use shmbridge::array::{c_strides, f_strides, ArrayHeader, ArraySegment, DType, F16};
use shmbridge::channel::{self, ChannelOptions, ChannelReader, ChannelWriter, Policy};
use shmbridge::{
    size_prefixed, Access, Error, ErrorKind, FramedOptions, FramedSegment, OpenMode, OwnerPolicy,
    Region, Segment, SegmentOptions, Wait,
};

const ACTOR: &str = "rust";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        return finish(&fail_usage("missing command"));
    };
    let mut opts = HashMap::new();
    let mut it = rest.iter();
    while let Some(k) = it.next() {
        match (k.strip_prefix("--"), it.next()) {
            (Some(key), Some(v)) => {
                opts.insert(key.to_owned(), v.clone());
            }
            _ => return finish(&fail_usage(&format!("bad argument {k:?}"))),
        }
    }
    let out = run(cmd, &opts).unwrap_or_else(|e| {
        let mut j = Json::new(false);
        j.str("error", &snake(e.kind()))
            .str("message", &e.to_string());
        j
    });
    finish(&out)
}

fn finish(j: &Json) -> ExitCode {
    println!("{}", j.render());
    if j.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fail_usage(msg: &str) -> Json {
    let mut j = Json::new(false);
    j.str("error", "usage").str("message", msg);
    j
}

fn arg<'a>(opts: &'a HashMap<String, String>, key: &str) -> Result<&'a str, Error> {
    opts.get(key)
        .map(String::as_str)
        .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, format!("missing --{key}")))
}

fn num(opts: &HashMap<String, String>, key: &str) -> Result<u64, Error> {
    arg(opts, key)?.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("--{key} is not a number"),
        )
    })
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((i * 31 + seed) % 251) as u8)
        .collect()
}

fn payload(opts: &HashMap<String, String>) -> Result<Vec<u8>, Error> {
    if let Some(f) = opts.get("file") {
        return std::fs::read(f)
            .map_err(|e| Error::from_io(&e, "cannot read --file").with_segment(f));
    }
    Ok(pattern(num(opts, "size")? as usize, num(opts, "pattern")?))
}

fn run(cmd: &str, opts: &HashMap<String, String>) -> Result<Json, Error> {
    let name = arg(opts, "name")?;
    let mut j = Json::new(true);
    match cmd {
        "write" => write(name, opts, &mut j)?,
        "read" => {
            if !read(name, opts, &mut j)? {
                let mut bad = Json::new(false);
                bad.str("error", "mismatch")
                    .str("message", "the bytes differ from the pattern");
                bad.fields.extend(j.fields.into_iter().skip(1));
                j = bad;
            }
        }
        "fields-write" | "fields-modify" | "fields-read" => typed_fields(cmd, name, &mut j)?,
        "open" => open(name, opts, &mut j)?,
        "chan-write" => chan_write(name, opts, &mut j)?,
        "array-write" => array_write(name, opts, &mut j)?,
        "array-read" => {
            if let Some(bad) = array_read(name, opts, &mut j)? {
                return Ok(bad);
            }
        }
        "chan-array-write" => chan_array_write(name, opts, &mut j)?,
        "chan-array-read" => {
            if let Some(bad) = chan_array_read(name, opts, &mut j)? {
                return Ok(bad);
            }
        }
        "chan-read" => {
            if let Some(bad) = chan_read(name, opts, &mut j)? {
                j = bad;
            }
        }
        "write-readonly" => {
            let seg = Segment::open(name, Access::ReadOnly)?;
            match seg.write_at(0, b"X") {
                Ok(()) => {
                    j = Json::new(false);
                    j.str("error", "not_refused")
                        .str("message", "a read-only handle accepted a write");
                }
                Err(e) => {
                    j.bool("refused", true)
                        .str("error", &snake(e.kind()))
                        .str("message", &e.to_string());
                }
            }
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("unknown command {other}"),
            ))
        }
    }
    Ok(j)
}

fn write(name: &str, opts: &HashMap<String, String>, j: &mut Json) -> Result<(), Error> {
    let data = payload(opts)?;
    let perm = opts
        .get("perm")
        .map(|p| u32::from_str_radix(p, 8))
        .transpose()
        .map_err(|_| Error::new(ErrorKind::InvalidArgument, "--perm is not octal"))?;
    let seg_opts = SegmentOptions {
        permissions: perm,
        ..SegmentOptions::default()
    };
    match arg(opts, "layout")? {
        "raw" => {
            let seg = Segment::open_with(name, OpenMode::CreateOnly, data.len() as u64, &seg_opts)?;
            seg.write_at(0, &data)?;
        }
        "size-prefixed" => drop(size_prefixed::create(name, &data, &seg_opts)?),
        "framed" => {
            let f = FramedSegment::create(
                name,
                data.len() as u64,
                &FramedOptions { segment: seg_opts },
            )?;
            f.write(&data)?;
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("unknown layout {other}"),
            ))
        }
    }
    j.num("bytes", data.len() as u64)
        .num("crc32", u64::from(crc32fast::hash(&data)));
    Ok(())
}

/// Returns whether the bytes match `--pattern` (true when none is given).
fn read(name: &str, opts: &HashMap<String, String>, j: &mut Json) -> Result<bool, Error> {
    let data = match arg(opts, "layout")? {
        "raw" => Segment::open(name, Access::ReadOnly)?.to_vec()?,
        "size-prefixed" => size_prefixed::read(Segment::open(name, Access::ReadOnly)?.region())?,
        "framed" => FramedSegment::open(name, Access::ReadOnly)?.read()?,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("unknown layout {other}"),
            ))
        }
    };
    if let Some(out) = opts.get("out") {
        std::fs::write(out, &data)
            .map_err(|e| Error::from_io(&e, "cannot write --out").with_segment(out))?;
    }
    j.num("bytes", data.len() as u64)
        .num("crc32", u64::from(crc32fast::hash(&data)));
    Ok(!opts.contains_key("pattern") || data == pattern(data.len(), num(opts, "pattern")?))
}

/// The seed's program1 (write), program2 (modify), and a reader of both.
fn typed_fields(cmd: &str, name: &str, j: &mut Json) -> Result<(), Error> {
    match cmd {
        "fields-write" => {
            let seg = Segment::create(name, 1024)?;
            seg.set(0, 128u8)?;
            seg.set(4, -1i32)?;
            seg.set(8, 1u32)?;
            seg.set(12, 2.0f32)?;
        }
        "fields-modify" => {
            let seg = Segment::open(name, Access::ReadWrite)?;
            seg.set(1, 127u8)?;
            seg.set(2, 255u8)?;
            seg.set(4, -128i32)?;
            seg.set(8, 6666u32)?;
            seg.set(12, 1.414f32)?;
        }
        _ => fields(j, Segment::open(name, Access::ReadOnly)?.region())?,
    }
    Ok(())
}

fn open(name: &str, opts: &HashMap<String, String>, j: &mut Json) -> Result<(), Error> {
    let mode = match arg(opts, "mode")? {
        "create_only" => OpenMode::CreateOnly,
        "open_only" => OpenMode::OpenOnly,
        "open_or_create" => OpenMode::OpenOrCreate,
        m => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("unknown mode {m}"),
            ))
        }
    };
    let seg = Segment::open_with(name, mode, num(opts, "size")?, &SegmentOptions::default())?;
    j.bool("created", seg.object().created())
        .num("size", seg.len() as u64);
    Ok(())
}

fn fields(j: &mut Json, r: &Region) -> Result<(), Error> {
    for (i, key) in ["b0", "b1", "b2", "b3"].iter().enumerate() {
        j.num(key, u64::from(r.get::<u8>(i as u64)?));
    }
    j.raw("i32", &r.get::<i32>(4)?.to_string());
    j.num("u32", u64::from(r.get::<u32>(8)?));
    j.raw("f32", &format!("{:.6}", r.get::<f32>(12)?));
    Ok(())
}

/// Message `i` of a channel whose messages are at most `size` bytes (PROTOCOL.md, "Channels").
fn chan_message(i: u64, size: u64) -> Vec<u8> {
    let n = 1 + (i * 7919) % size;
    (0..n).map(|j| ((i * 31 + j) % 256) as u8).collect()
}

/// A line of its own on stdout, flushed (the runner waits for it).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn opt_num(opts: &HashMap<String, String>, key: &str) -> Result<Option<u64>, Error> {
    opts.contains_key(key).then(|| num(opts, key)).transpose()
}

fn chan_write(name: &str, opts: &HashMap<String, String>, j: &mut Json) -> Result<(), Error> {
    let size = num(opts, "size")?;
    let count = num(opts, "count")?;
    let die_after = opt_num(opts, "die-after")?;
    let wait_readers = opt_num(opts, "wait-readers")?.unwrap_or(0) as usize;
    let mut w = ChannelWriter::create(
        name,
        &ChannelOptions {
            slots: num(opts, "slots")? as u32,
            max_message: size,
            readers: num(opts, "readers")? as u32,
            policy: Policy::parse(arg(opts, "policy")?)?,
            ..ChannelOptions::default()
        },
    )?;
    say("{\"ready\": true}");
    while channel::status(w.framed())?.reader_places.len() < wait_readers {
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..count {
        let data = chan_message(i, size);
        // No time limit: under block, as fast as the slowest live reader allows.
        let mut loan = w.loan(data.len(), &mut Wait::forever())?;
        loan.as_mut_slice().copy_from_slice(&data);
        loan.publish(data.len(), (i % (1 << 32)) as u32)?;
        if die_after == Some(i + 1) {
            // As if killed: no close, no drop, no JSON line.
            std::process::exit(0);
        }
    }
    w.close();
    j.num("sent", count);
    Ok(())
}

/// Takes messages to the end; `Some(failure)` when one differs from the pattern.
fn chan_read(
    name: &str,
    opts: &HashMap<String, String>,
    j: &mut Json,
) -> Result<Option<Json>, Error> {
    let die_after = opt_num(opts, "die-after")?;
    let keep = opt_num(opts, "hold")?.unwrap_or(0) as usize;
    let r = ChannelReader::open(name, &mut Wait::timeout(Duration::from_secs(30)))?;
    say("{\"joined\": true}");
    let size = r.max_message();
    let mut held = VecDeque::new();
    let (mut received, mut missed) = (0u64, 0u64);
    let (mut first, mut last) = (None, None);
    let end = loop {
        let m = match r.recv(&mut Wait::forever()) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::WriterClosed => break "closed",
            Err(e) if e.kind() == ErrorKind::PeerGone => break "writer_died",
            Err(e) => return Err(e),
        };
        let info = *m.info();
        if *m != chan_message(info.seq, size)[..] || u64::from(info.tag) != info.seq % (1 << 32) {
            let mut bad = Json::new(false);
            bad.str("error", "torn_message").str(
                "message",
                &format!("message {} differs from the pattern", info.seq),
            );
            return Ok(Some(bad));
        }
        received += 1;
        missed += info.lost;
        first.get_or_insert(info.seq);
        last = Some(info.seq);
        held.push_back(m);
        if die_after == Some(received) {
            // As if killed, holding its last message.
            std::process::exit(0);
        }
        while held.len() > keep {
            held.pop_front();
        }
    };
    drop(held);
    let or_null = |v: Option<u64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
    j.num("received", received)
        .num("lost", missed)
        .raw("first", &or_null(first))
        .raw("last", &or_null(last))
        .str("end", end);
    Ok(None)
}

// ---- typed arrays (PROTOCOL.md, "Arrays") --------------------------------------------------

/// `--shape a,b,c` (`()` for 0-d).
fn shape_arg(opts: &HashMap<String, String>) -> Result<Vec<u64>, Error> {
    let text = arg(opts, "shape")?;
    if text == "()" || text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|p| {
            p.parse().map_err(|_| {
                Error::new(ErrorKind::InvalidArgument, format!("bad --shape {text:?}"))
            })
        })
        .collect()
}

/// The layout PROTOCOL.md gives for `order` C, F or S (strided: every other element along
/// every dimension of a larger array, the first dimension reversed).
fn layout(dtype: DType, shape: &[u64], order: &str) -> Result<ArrayHeader, Error> {
    let item = dtype.itemsize();
    let strides = match order {
        "C" => c_strides(shape, item),
        "F" => f_strides(shape, item),
        "S" => {
            let big = || Error::new(ErrorKind::InvalidArgument, "shape too large");
            let mut strides = vec![0i64; shape.len()];
            let mut step = i64::try_from(item * 2).map_err(|_| big())?;
            for (stride, &extent) in strides.iter_mut().zip(shape).rev() {
                *stride = step;
                let extent = i64::try_from(extent.max(1)).map_err(|_| big())?;
                step = step.checked_mul(2 * extent).ok_or_else(big)?;
            }
            if let Some(first) = strides.first_mut() {
                *first = -*first;
            }
            Some(strides)
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("unknown --order {other:?} (C, F or S)"),
            ))
        }
    }
    .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "shape too large"))?;
    ArrayHeader::with_strides(dtype, shape, &strides)
}

/// Element `k` (in C order) of the protocol's array of `dtype` with seed `seed`,
/// little-endian: `v = (k * 7 + 3 + seed) % 101`.
// v and w are below 101: every cast below is exact.
#[allow(
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]
fn element(dtype: DType, k: u64, seed: u64) -> Vec<u8> {
    let v = (k * 7 + 3 + seed) % 101;
    let w = 100 - v;
    match dtype {
        DType::Bool => vec![u8::from(v % 3 == 0)],
        DType::Int8 => (v as i8).to_le_bytes().to_vec(),
        DType::Int16 => (v as i16).to_le_bytes().to_vec(),
        DType::Int32 => (v as i32).to_le_bytes().to_vec(),
        DType::Int64 => (v as i64).to_le_bytes().to_vec(),
        DType::UInt8 => (v as u8).to_le_bytes().to_vec(),
        DType::UInt16 => (v as u16).to_le_bytes().to_vec(),
        DType::UInt32 => (v as u32).to_le_bytes().to_vec(),
        DType::UInt64 => v.to_le_bytes().to_vec(),
        DType::Float16 => F16::from_f32(v as f32).to_bits().to_le_bytes().to_vec(),
        DType::Float32 => (v as f32).to_le_bytes().to_vec(),
        DType::Float64 => (v as f64).to_le_bytes().to_vec(),
        DType::Complex64 => [(v as f32).to_le_bytes(), (w as f32).to_le_bytes()].concat(),
        DType::Complex128 => [(v as f64).to_le_bytes(), (w as f64).to_le_bytes()].concat(),
        other => panic!("the protocol has no values for {other}"),
    }
}

/// The offset from the data area of every element, in C order.
fn offsets(h: &ArrayHeader) -> Vec<usize> {
    let mut idx = vec![0u64; h.ndim()];
    (0..h.len())
        .map(|_| {
            let at = h.element_offset(&idx).expect("in bounds") - h.data_offset();
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < h.shape()[d] {
                    break;
                }
                idx[d] = 0;
            }
            at as usize
        })
        .collect()
}

fn fill(h: &ArrayHeader, data: &mut [u8], seed: u64) {
    for (k, at) in offsets(h).into_iter().enumerate() {
        let e = element(h.dtype(), k as u64, seed);
        data[at..at + e.len()].copy_from_slice(&e);
    }
}

/// The first element that differs from the protocol's values (a bool: zero or not), if any.
fn first_bad(h: &ArrayHeader, data: &[u8], seed: u64) -> Option<u64> {
    offsets(h).into_iter().enumerate().find_map(|(k, at)| {
        let e = element(h.dtype(), k as u64, seed);
        let got = &data[at..at + e.len()];
        let same = if h.dtype() == DType::Bool {
            (got[0] != 0) == (e[0] != 0)
        } else {
            got == e.as_slice()
        };
        (!same).then_some(k as u64)
    })
}

fn describe(j: &mut Json, h: &ArrayHeader) {
    let list = |v: Vec<String>| format!("[{}]", v.join(", "));
    j.str("dtype", h.dtype().name())
        .raw(
            "shape",
            &list(h.shape().iter().map(u64::to_string).collect()),
        )
        .raw(
            "strides",
            &list(h.strides().iter().map(i64::to_string).collect()),
        );
}

/// The header `--dtype`, `--shape` and `--order` (default C) describe.
fn wanted(opts: &HashMap<String, String>) -> Result<ArrayHeader, Error> {
    let order = opts.get("order").map_or("C", String::as_str);
    layout(DType::parse(arg(opts, "dtype")?)?, &shape_arg(opts)?, order)
}

/// A mismatch between what arrived and what the protocol says, as a failure line.
fn mismatch(what: &str) -> Json {
    let mut bad = Json::new(false);
    bad.str("error", "mismatch").str("message", what);
    bad
}

fn same_layout(got: &ArrayHeader, want: &ArrayHeader) -> Option<Json> {
    (got.dtype() != want.dtype() || got.shape() != want.shape() || got.strides() != want.strides())
        .then(|| {
            mismatch(&format!(
                "got {} {:?} strides {:?}, expected {} {:?} strides {:?}",
                got.dtype(),
                got.shape(),
                got.strides(),
                want.dtype(),
                want.shape(),
                want.strides()
            ))
        })
}

fn array_write(name: &str, opts: &HashMap<String, String>, j: &mut Json) -> Result<(), Error> {
    let h = wanted(opts)?;
    let seed = opt_num(opts, "seed")?.unwrap_or(0);
    let seg = ArraySegment::create_with_header(name, &h, &FramedOptions::default())?;
    let mut w = seg.begin_write()?;
    fill(&h, w.data_mut(), seed);
    w.publish()?;
    describe(j, seg.header());
    j.num("elements", h.len())
        .num("bytes", seg.data_len() as u64)
        .num("version", seg.version());
    Ok(())
}

fn array_read(
    name: &str,
    opts: &HashMap<String, String>,
    j: &mut Json,
) -> Result<Option<Json>, Error> {
    let want = wanted(opts)?;
    let seed = opt_num(opts, "seed")?.unwrap_or(0);
    let seg = ArraySegment::open_wait(
        name,
        Access::ReadOnly,
        &OwnerPolicy::default(),
        &mut Wait::timeout(Duration::from_secs(30)),
    )?;
    if let Some(bad) = same_layout(seg.header(), &want) {
        return Ok(Some(bad));
    }
    let (data, snap) = seg.read_data()?;
    if let Some(k) = first_bad(seg.header(), &data, seed) {
        return Ok(Some(mismatch(&format!(
            "element {k} differs from the pattern"
        ))));
    }
    describe(j, seg.header());
    j.num("checked", want.len())
        .num("bytes", data.len() as u64)
        .num("version", snap.version);
    Ok(None)
}

/// The dtypes of `--dtypes a,b,...`: message `i` is of dtype `i % len`.
fn dtypes_arg(opts: &HashMap<String, String>) -> Result<Vec<DType>, Error> {
    arg(opts, "dtypes")?.split(',').map(DType::parse).collect()
}

fn chan_array_write(name: &str, opts: &HashMap<String, String>, j: &mut Json) -> Result<(), Error> {
    let dtypes = dtypes_arg(opts)?;
    let shape = shape_arg(opts)?;
    let order = arg(opts, "order")?;
    let count = num(opts, "count")?;
    let wait_readers = opt_num(opts, "wait-readers")?.unwrap_or(0) as usize;
    let mut w = ChannelWriter::create(
        name,
        &ChannelOptions {
            slots: 4,
            max_message: num(opts, "size")?,
            readers: 2,
            ..ChannelOptions::default()
        },
    )?;
    say("{\"ready\": true}");
    while channel::status(w.framed())?.reader_places.len() < wait_readers {
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..count {
        let h = layout(dtypes[(i % dtypes.len() as u64) as usize], &shape, order)?;
        let mut loan = w.loan_array_with(&h, &mut Wait::forever())?;
        fill(&h, loan.data_mut(), i);
        loan.publish(i as u32)?;
    }
    w.close();
    j.num("sent", count);
    Ok(())
}

fn chan_array_read(
    name: &str,
    opts: &HashMap<String, String>,
    j: &mut Json,
) -> Result<Option<Json>, Error> {
    let dtypes = dtypes_arg(opts)?;
    let shape = shape_arg(opts)?;
    let order = arg(opts, "order")?;
    let reader = ChannelReader::open(name, &mut Wait::timeout(Duration::from_secs(30)))?;
    say("{\"joined\": true}");
    let mut received = 0u64;
    loop {
        let msg = match reader.recv(&mut Wait::forever()) {
            Ok(got) => got,
            Err(e) if e.kind() == ErrorKind::WriterClosed => break,
            Err(e) => return Err(e),
        };
        let seq = msg.info().seq;
        let want = layout(dtypes[(seq % dtypes.len() as u64) as usize], &shape, order)?;
        let (header, data) = msg.array_bytes()?;
        if let Some(bad) = same_layout(&header, &want) {
            return Ok(Some(bad));
        }
        if let Some(k) = first_bad(&header, data, seq) {
            return Ok(Some(mismatch(&format!(
                "message {seq}: element {k} differs from the pattern"
            ))));
        }
        received += 1;
    }
    j.num("received", received);
    Ok(None)
}

/// `ErrorKind::AlreadyExists` -> `already_exists`.
fn snake(kind: ErrorKind) -> String {
    let mut s = String::new();
    for (i, c) in format!("{kind:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

/// A one-line JSON object, enough for this protocol (no dependency needed).
struct Json {
    ok: bool,
    fields: Vec<(String, String)>,
}

impl Json {
    fn new(ok: bool) -> Self {
        Self {
            ok,
            fields: vec![("actor".into(), format!("\"{ACTOR}\""))],
        }
    }
    fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.fields.push((k.into(), v.into()));
        self
    }
    fn num(&mut self, k: &str, v: u64) -> &mut Self {
        self.raw(k, &v.to_string())
    }
    fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.raw(k, if v { "true" } else { "false" })
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let mut e = String::from("\"");
        for c in v.chars() {
            match c {
                '"' => e.push_str("\\\""),
                '\\' => e.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(e, "\\u{:04x}", c as u32);
                }
                c => e.push(c),
            }
        }
        e.push('"');
        self.raw(k, &e)
    }
    fn render(&self) -> String {
        let mut parts = vec![format!("\"ok\": {}", self.ok)];
        parts.extend(self.fields.iter().map(|(k, v)| format!("\"{k}\": {v}")));
        format!("{{{}}}", parts.join(", "))
    }
}
