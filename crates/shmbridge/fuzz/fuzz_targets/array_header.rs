//! The array header parser (docs/SPEC.md 7.2) against arbitrary bytes.
//!
//! Whatever the input, `ArrayHeader::decode` returns an error or a header whose every element
//! lies inside the buffer; a typed view of an accepted header reads every element (under
//! AddressSanitizer, an element outside the buffer is a crash); encoding it again gives a
//! header that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmbridge::array::{
    AlignedBuffer, ArrayHeader, ArrayView, Bool, Complex, DType, Element, F16,
};

/// At most this many elements are visited per input (a stride-0 array can be huge).
const VISIT: u64 = 1 << 16;

fn walk<T: Element>(buffer: &[u8], header: &ArrayHeader) {
    let view = ArrayView::<T>::new(buffer).expect("a decoded header makes a view");
    assert_eq!(view.header(), header);
    if header.len() <= VISIT {
        let mut n = 0u64;
        for item in view.iter() {
            std::hint::black_box(item);
            n += 1;
        }
        assert_eq!(n, header.len());
    }
    if let Some(s) = view.as_slice_memory_order() {
        assert_eq!(s.len() as u64, header.len());
        std::hint::black_box(s.last());
    }
    // The last element, by index, is inside the data area.
    if !header.is_empty() {
        let last: Vec<u64> = header.shape().iter().map(|d| d - 1).collect();
        let at = header.element_offset(&last).expect("in range");
        assert!(at + header.itemsize() as u64 <= header.total_len());
        assert!(view.get(&last).is_some());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = ArrayHeader::decode(data, data.len() as u64) else {
        return;
    };
    assert!(header.total_len() <= data.len() as u64);
    assert!(header.ndim() <= 32);
    assert_eq!(header.data_offset() % 64, 0);

    // Encoding is stable: the re-encoded header, followed by the same data, decodes equal.
    let mut again = data.to_vec();
    let encoded = header.encode();
    again[..encoded.len()].copy_from_slice(&encoded);
    let back = ArrayHeader::decode(&again, again.len() as u64).expect("re-encoded decodes");
    assert_eq!(back, header);

    // A view, over a 64-byte aligned copy (as a mapping would be).
    let mut aligned = AlignedBuffer::zeroed(data.len());
    // SAFETY: the buffer holds data.len() bytes; the two do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), aligned.as_mut_ptr(), data.len()) };
    let buffer = aligned.as_slice();
    match header.dtype() {
        DType::Bool => walk::<Bool>(buffer, &header),
        DType::Int8 => walk::<i8>(buffer, &header),
        DType::Int16 => walk::<i16>(buffer, &header),
        DType::Int32 => walk::<i32>(buffer, &header),
        DType::Int64 => walk::<i64>(buffer, &header),
        DType::UInt8 => walk::<u8>(buffer, &header),
        DType::UInt16 => walk::<u16>(buffer, &header),
        DType::UInt32 => walk::<u32>(buffer, &header),
        DType::UInt64 => walk::<u64>(buffer, &header),
        DType::Float16 => walk::<F16>(buffer, &header),
        DType::Float32 => walk::<f32>(buffer, &header),
        DType::Float64 => walk::<f64>(buffer, &header),
        DType::Complex64 => walk::<Complex<f32>>(buffer, &header),
        DType::Complex128 => walk::<Complex<f64>>(buffer, &header),
        _ => {}
    }
});
