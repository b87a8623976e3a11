//! CPython's own `multiprocessing.shared_memory.SharedMemory`, run as a `python3` subprocess,
//! on segments the core made, and the core on segments the stdlib made.

mod common;

use common::{pattern, run_python, TestSegment};
use shmbridge::{Access, Segment};

/// Attach with the stdlib and stop its resource tracker from unlinking the segment at exit
/// (it does on 3.8-3.12 for segments it merely attached to; see the Python package's docs).
const ATTACH: &str = r"
import sys, struct, zlib
from multiprocessing import shared_memory, resource_tracker
def attach(name):
    shm = shared_memory.SharedMemory(name)
    resource_tracker.unregister(shm._name, 'shared_memory')
    return shm
";

#[test]
fn stdlib_reads_and_writes_a_segment_the_core_created() {
    let seg_name = TestSegment::new("std1");
    let data = pattern(4097, 3);
    let seg = Segment::create(seg_name.name(), data.len() as u64).unwrap();
    seg.write_at(0, &data).unwrap();
    let code = format!(
        "{ATTACH}
shm = attach(sys.argv[1])
print(shm.size, zlib.crc32(bytes(shm.buf)))
shm.buf[0:5] = b'hello'
shm.close()"
    );
    let out = run_python(&code, &[seg_name.name()]);
    let expected = format!("4097 {}", crc32fast::hash(&data));
    assert_eq!(
        out.trim(),
        expected,
        "the stdlib sees the core's bytes and size"
    );
    let mut head = [0u8; 5];
    seg.read_at(0, &mut head).unwrap();
    assert_eq!(&head, b"hello", "the core sees the stdlib's write");
}

#[test]
fn core_reads_a_segment_the_stdlib_created() {
    let seg_name = TestSegment::new("std2");
    let code = r"
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=1000)
shm.buf[:1000] = bytes((i * 31 + 9) % 251 for i in range(1000))
resource_tracker.unregister(shm._name, 'shared_memory')  # leave it for the core
shm.close()";
    run_python(code, &[seg_name.name()]);
    let seg = Segment::open(seg_name.name(), Access::ReadOnly).unwrap();
    assert_eq!(seg.len(), 1000);
    assert_eq!(seg.to_vec().unwrap(), pattern(1000, 9));
    assert_eq!(
        seg.object().permissions().unwrap(),
        0o600,
        "the stdlib's default, same as ours"
    );
}

#[test]
fn seed_program1_program2_fields_agree_with_struct_pack() {
    let seg_name = TestSegment::new("std3");
    // program1, in Rust: the same fields at the same offsets as the seed's Python.
    let seg = Segment::create(seg_name.name(), 1024).unwrap();
    seg.set(0, 128u8).unwrap();
    seg.set(4, -1i32).unwrap();
    seg.set(8, 1u32).unwrap();
    seg.set(12, 2.0f32).unwrap();
    // program2, unmodified but for the attach helper.
    let code = format!(
        "{ATTACH}
shm = attach(sys.argv[1])
print(shm.buf[0], struct.unpack('i', shm.buf[4:8])[0], struct.unpack('I', shm.buf[8:12])[0], struct.unpack('f', shm.buf[12:16])[0])
shm.buf[1] = 127
shm.buf[2] = 255
shm.buf[4:8] = struct.pack('i', -128)
shm.buf[8:12] = struct.pack('I', 6666)
shm.buf[12:16] = struct.pack('f', 1.414)
shm.close()"
    );
    let out = run_python(&code, &[seg_name.name()]);
    assert_eq!(out.trim(), "128 -1 1 2.0");
    assert_eq!(seg.get::<u8>(0).unwrap(), 128);
    assert_eq!(seg.get::<u8>(1).unwrap(), 127);
    assert_eq!(seg.get::<u8>(2).unwrap(), 255);
    assert_eq!(seg.get::<i32>(4).unwrap(), -128);
    assert_eq!(seg.get::<u32>(8).unwrap(), 6666);
    assert!((seg.get::<f32>(12).unwrap() - 1.414).abs() < 1e-6);
}

#[test]
fn size_prefixed_segment_reads_like_the_seeds_mmap_reader() {
    let seg_name = TestSegment::new("std4");
    let data = pattern(5000, 1);
    let _seg = shmbridge::size_prefixed::create(
        seg_name.name(),
        &data,
        &shmbridge::SegmentOptions::default(),
    )
    .unwrap();
    // The seed's reader logic: header_size = calcsize("Q"); size = unpack("Q", ...); data after.
    let code = format!(
        "{ATTACH}
shm = attach(sys.argv[1])
header_size = struct.calcsize('Q')
size = struct.unpack('Q', shm.buf[:header_size])[0]
data = bytes(shm.buf[header_size:header_size + size])
print(size, zlib.crc32(data))
shm.close()"
    );
    let out = run_python(&code, &[seg_name.name()]);
    assert_eq!(out.trim(), format!("5000 {}", crc32fast::hash(&data)));
}
