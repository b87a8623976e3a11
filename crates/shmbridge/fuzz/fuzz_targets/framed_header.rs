//! The framed header's reader rules (docs/SPEC.md 5.2) and the stream kind's control words
//! (6.2) against arbitrary bytes: `FramedSegment::from_region` either refuses the bytes with an
//! error or gives a segment whose header, payload read and (for a stream) status never read
//! outside the mapping or panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmbridge::{FramedSegment, Kind, Region};

fuzz_target!(|data: &[u8]| {
    if data.is_empty() || data.len() > 1 << 16 {
        return;
    }
    // An odd sequence word means a write in progress: a reader rightly waits (2 s) for it to
    // end, which would only slow the fuzzer down. Keep it even; the wait is tested elsewhere.
    let mut bytes = data.to_vec();
    if let Some(seq) = bytes.get_mut(40) {
        *seq &= !1;
    }
    let region = Region::anonymous(bytes.len()).expect("anonymous mapping");
    region.write_at(0, &bytes).expect("fits");
    let Ok(framed) = FramedSegment::from_region(region) else {
        return;
    };
    let _ = framed.header();
    let _ = framed.payload_len();
    match framed.kind() {
        Kind::Message => {
            let _ = framed.read();
            let mut small = [0u8; 7];
            let _ = framed.read_into_slice(&mut small);
        }
        Kind::Stream => {
            let _ = shmbridge::stream::status(&framed);
        }
        Kind::Channel => {
            let _ = shmbridge::channel::status(&framed);
        }
        _ => {}
    }
});
