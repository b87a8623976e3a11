//! A channel's control words, reader table, queue and slot headers (docs/SPEC.md 8) against
//! arbitrary bytes: a real channel segment is created once; for each input its bytes past the
//! common framed header are overwritten with the input, then a reader attaches and takes and
//! releases messages. Every outcome is an error or a message inside its slot: never a panic or
//! an access outside the mapping (AddressSanitizer), never an endless loop.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmbridge::channel::{ChannelOptions, ChannelReader, ChannelWriter};
use shmbridge::{Access, FramedSegment, Wait};

struct Target {
    name: String,
    _writer: ChannelWriter,
    framed: FramedSegment,
    size: usize,
}

static NAME: OnceLock<String> = OnceLock::new();

extern "C" fn remove_at_exit() {
    if let Some(n) = NAME.get() {
        let _ = shmbridge::ShmObject::remove(n);
    }
}

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let name = shmbridge::name::unique("shmb_fuzz_ch_");
        let opts = ChannelOptions {
            slots: 4,
            max_message: 64,
            readers: 2,
            ..ChannelOptions::default()
        };
        let mut writer = ChannelWriter::create(&name, &opts).expect("create the channel");
        for i in 0..3u8 {
            writer
                .send(&[i; 10], 0, &mut Wait::timeout(Duration::ZERO))
                .expect("send");
        }
        let framed = FramedSegment::open(&name, Access::ReadWrite).expect("open");
        let size = framed.region().len();
        NAME.set(name.clone()).expect("once");
        // SAFETY: registering a plain function that only removes our segment at exit.
        unsafe { libc::atexit(remove_at_exit) };
        Target {
            name,
            _writer: writer,
            framed,
            size,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let t = target();
    let room = t.size - 128;
    let n = data.len().min(room);
    t.framed.region().write_at(128, &data[..n]).expect("fits");
    let Ok(framed) = FramedSegment::open(&t.name, Access::ReadWrite) else {
        return;
    };
    let _ = shmbridge::channel::status(&framed);
    if let Ok(reader) = ChannelReader::attach(framed) {
        for _ in 0..16 {
            match reader.try_recv_raw() {
                Ok(Some(m)) => {
                    assert!(m.len as u64 <= reader.max_message());
                    reader.release(&m);
                }
                _ => break,
            }
        }
    }
});
