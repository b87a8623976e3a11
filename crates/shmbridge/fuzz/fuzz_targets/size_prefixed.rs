//! The size-prefixed layout's reader rules (docs/SPEC.md 4) against arbitrary bytes: an error,
//! or exactly the bytes the prefix declares.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmbridge::{size_prefixed, Region};

fuzz_target!(|data: &[u8]| {
    if data.is_empty() || data.len() > 1 << 16 {
        return;
    }
    let region = Region::anonymous(data.len()).expect("anonymous mapping");
    region.write_at(0, data).expect("fits");
    match size_prefixed::read(&region) {
        Ok(payload) => {
            let len = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
            assert_eq!(payload.len() as u64, len);
            assert_eq!(&payload[..], &data[8..8 + payload.len()]);
        }
        Err(_) => assert!(
            data.len() < 8
                || u64::from_le_bytes(data[..8].try_into().expect("8 bytes"))
                    > data.len() as u64 - 8
        ),
    }
});
