//! Typed arrays: one header (docs/SPEC.md, section 7) that says what an array in shared
//! memory is — element type, shape, strides, where the data is — so a writer and a reader in
//! different languages agree on it, checked before anything is viewed.
//!
//! - [`DType`]: the element types (bool, signed and unsigned 8 to 64-bit integers, float16/32/
//!   64, complex64/128), each one numpy dtype and one DLPack type.
//! - [`ArrayHeader`]: encode, decode and validate a header against the real size of the
//!   memory it sits in; [`c_strides`] / [`f_strides`] for C and Fortran order.
//! - [`ArrayView`] / [`ArrayViewMut`]: typed views with shape, strides, element access and
//!   `&[T]` when contiguous, for the [`Element`] types.
//! - [`copy_strided`]: copy elements between any two layouts; [`dlpack`]: export to DLPack.
//! - [`ArraySegment`]: a named segment holding one array (SPEC 7.5), versions published under
//!   the seqlock, consistent copies and zero-copy views.
//! - Arrays in channel messages (SPEC 7.6): [`ChannelWriter::loan_array`](crate::ChannelWriter::loan_array)
//!   and [`Message::array`](crate::channel::Message::array).
//!
//! ```
//! use shmbridge::array::{ArrayHeader, DType, Order};
//! let h = ArrayHeader::new(DType::Float32, &[480, 640, 3], Order::C)?;
//! assert_eq!(h.strides(), &[7680, 12, 4]);
//! assert_eq!(h.data_offset(), 128); // 64 + 3 * 16 bytes of header, rounded up to 64
//! let bytes = h.encode();
//! let buffer_len = h.total_len(); // in real use: the segment's size minus the header offset
//! assert_eq!(ArrayHeader::decode(&bytes, buffer_len)?, h);
//! # Ok::<(), shmbridge::Error>(())
//! ```

mod copy;
pub mod dlpack;
mod dtype;
mod header;
mod message;
mod segment;
mod view;

pub use copy::{copy_strided, AlignedBuffer};
pub use dtype::{Bool, Complex, DType, Element, ElementKind, F16};
pub use header::{
    c_strides, f_strides, ArrayHeader, Order, DATA_ALIGN, DIM_LEN, FIXED_LEN, MAGIC,
    MAX_HEADER_LEN, MAX_NDIM, VERSION_MAJOR, VERSION_MINOR,
};
pub use message::{received_header, ArrayLoan, RawArrayLoan};
pub use segment::{
    header_of, offsets as segment_offsets, ArraySegment, ArraySnapshot, ArrayWrite,
    ARRAY_SEGMENT_HEADER_LEN, MAX_COPY_WINDOW,
};
pub use view::{check_host, ArrayView, ArrayViewMut};
