//! The array header (docs/SPEC.md, section 7): encoding, decoding and validation.

use std::sync::atomic::{fence, Ordering};

use super::dtype::DType;
use crate::error::{Error, ErrorKind, Result};
use crate::Region;

/// The first 8 bytes of every array header: ASCII `SHMBARRY`.
pub const MAGIC: [u8; 8] = *b"SHMBARRY";
/// The major version this library writes and reads.
pub const VERSION_MAJOR: u16 = 1;
/// The minor version this library writes (it reads any minor of major 1).
pub const VERSION_MINOR: u16 = 0;
/// Size of the fixed part of the header.
pub const FIXED_LEN: usize = 64;
/// Size of one dimension entry (shape, then stride).
pub const DIM_LEN: usize = 16;
/// The most dimensions an array may have.
pub const MAX_NDIM: usize = 32;
/// The alignment of the data area relative to the header start, and of the header within its
/// mapping.
pub const DATA_ALIGN: u64 = 64;
/// The longest header of version 1.0 (32 dimensions): the most bytes a reader needs to see.
pub const MAX_HEADER_LEN: usize = FIXED_LEN + MAX_NDIM * DIM_LEN;

/// Field offsets within the fixed part (SPEC 7.1).
mod off {
    pub const MAGIC: usize = 0;
    pub const VERSION_MAJOR: usize = 8;
    pub const VERSION_MINOR: usize = 10;
    pub const HEADER_LEN: usize = 12;
    pub const KIND: usize = 16;
    pub const BITS: usize = 17;
    pub const NDIM: usize = 18;
    pub const FLAGS: usize = 20;
    pub const DATA_OFFSET: usize = 24;
    pub const DATA_LEN: usize = 32;
    pub const ORIGIN: usize = 40;
}

/// Largest value a shape entry, a byte count or a byte offset may take (`i64::MAX`, what
/// `Py_ssize_t` and DLPack's `int64_t` hold).
const MAX_EXTENT: u64 = i64::MAX as u64;

/// The memory order of a contiguous array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Order {
    /// Row-major: the last index varies fastest (numpy's default, C's arrays).
    #[default]
    C,
    /// Column-major: the first index varies fastest (Fortran, MATLAB, Eigen's default).
    F,
}

/// Byte strides of a C-order (row-major) array of `shape` with elements of `itemsize` bytes
/// (a 0 in the shape counts as 1, so the strides of an empty array stay those of its
/// neighbours). `None` if they overflow `i64`.
#[must_use]
pub fn c_strides(shape: &[u64], itemsize: usize) -> Option<Vec<i64>> {
    let mut strides = vec![0i64; shape.len()];
    let mut step = i64::try_from(itemsize).ok()?;
    for (stride, &dim) in strides.iter_mut().zip(shape).rev() {
        *stride = step;
        step = step.checked_mul(i64::try_from(dim.max(1)).ok()?)?;
    }
    Some(strides)
}

/// Byte strides of an F-order (column-major) array; see [`c_strides`].
#[must_use]
pub fn f_strides(shape: &[u64], itemsize: usize) -> Option<Vec<i64>> {
    let mut strides = vec![0i64; shape.len()];
    let mut step = i64::try_from(itemsize).ok()?;
    for (stride, &dim) in strides.iter_mut().zip(shape) {
        *stride = step;
        step = step.checked_mul(i64::try_from(dim.max(1)).ok()?)?;
    }
    Some(strides)
}

/// A decoded, validated array header: element type, shape, strides and where the data is.
///
/// Every `ArrayHeader` value satisfies the rules of SPEC 7.2 for the buffer it was checked
/// against: its elements all lie inside the data area, aligned to their size. Build one with
/// [`new`](Self::new) or [`with_layout`](Self::with_layout), or read one with
/// [`decode`](Self::decode) / [`read_from`](Self::read_from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayHeader {
    dtype: DType,
    shape: Vec<u64>,
    strides: Vec<i64>,
    origin: u64,
    data_offset: u64,
    data_len: u64,
    header_len: u32,
    version_minor: u16,
    flags: u32,
}

/// A broken rule: the error kind a reader reports, and what is wrong.
type Violation = (ErrorKind, String);

fn violation(kind: ErrorKind, detail: &str) -> Violation {
    (kind, format!("array header: {detail}"))
}

fn into_error((kind, detail): Violation) -> Error {
    Error::new(kind, detail)
}

/// For headers a caller builds, every broken rule is the caller's argument.
fn as_argument((_, detail): Violation) -> Error {
    Error::new(ErrorKind::InvalidArgument, detail)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// `header_len` for `ndim` dimensions (at most 576).
fn min_header_len(ndim: usize) -> u32 {
    (FIXED_LEN + ndim * DIM_LEN) as u32
}

impl ArrayHeader {
    /// A contiguous array of `dtype` and `shape` in `order`, its data right after the header
    /// (at the next multiple of 64).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for more than 32 dimensions or a shape whose size in
    /// bytes does not fit in an `i64`.
    pub fn new(dtype: DType, shape: &[u64], order: Order) -> Result<Self> {
        check_ndim(shape.len()).map_err(as_argument)?;
        let itemsize = dtype.itemsize();
        let strides = match order {
            Order::C => c_strides(shape, itemsize),
            Order::F => f_strides(shape, itemsize),
        };
        let nbytes = element_count(shape)
            .and_then(|n| n.checked_mul(itemsize as u64))
            .filter(|&n| n <= MAX_EXTENT);
        let (Some(strides), Some(nbytes)) = (strides, nbytes) else {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "array header: shape {shape:?} of {dtype} is too large (its size in bytes \
                     overflows 64 bits)"
                ),
            ));
        };
        Self::with_layout(dtype, shape, &strides, 0, nbytes)
    }

    /// An array with general byte `strides` (negative and zero strides allowed), its element
    /// `(0, ..., 0)` at byte `origin` of a data area of `data_len` bytes, which starts right
    /// after the header (at the next multiple of 64).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when the layout breaks a rule of SPEC 7.2: more than
    /// 32 dimensions, `shape` and `strides` of different lengths, strides or origin not a
    /// multiple of the element size, elements outside the data area, sizes overflowing.
    pub fn with_layout(
        dtype: DType,
        shape: &[u64],
        strides: &[i64],
        origin: u64,
        data_len: u64,
    ) -> Result<Self> {
        check_ndim(shape.len()).map_err(as_argument)?;
        if strides.len() != shape.len() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "array header: {} strides for {} dimensions",
                    strides.len(),
                    shape.len()
                ),
            ));
        }
        let header_len = min_header_len(shape.len());
        let header = ArrayHeader {
            dtype,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            origin,
            data_offset: u64::from(header_len).next_multiple_of(DATA_ALIGN),
            data_len,
            header_len,
            version_minor: VERSION_MINOR,
            flags: 0,
        };
        header
            .check_layout(header.total_len_unchecked())
            .map_err(as_argument)?;
        Ok(header)
    }

    /// An array with general byte `strides` over the smallest data area that holds it:
    /// `origin` and `data_len` follow from the strides (a negative stride puts element
    /// `(0, ..., 0)` after the ones it precedes in memory).
    ///
    /// # Errors
    ///
    /// As [`with_layout`](Self::with_layout).
    pub fn with_strides(dtype: DType, shape: &[u64], strides: &[i64]) -> Result<Self> {
        let itemsize = dtype.itemsize() as u64;
        let probe = ArrayHeader {
            dtype,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            origin: 0,
            data_offset: 0,
            data_len: 0,
            header_len: 0,
            version_minor: VERSION_MINOR,
            flags: 0,
        };
        let (origin, data_len) = if shape.len() != strides.len() || shape.contains(&0) {
            (0, 0)
        } else {
            probe
                .reach()
                .and_then(|(low, high)| {
                    let origin = u64::try_from(-low).ok()?;
                    let span = u64::try_from(high - low).ok()?.checked_add(itemsize)?;
                    Some((origin, span))
                })
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "array header: shape {shape:?} with strides {strides:?} spans more \
                             than 2^64 bytes"
                        ),
                    )
                })?
        };
        Self::with_layout(dtype, shape, strides, origin, data_len)
    }

    /// The same array with its data area at `data_offset` bytes from the header start (a
    /// multiple of 64, at least [`header_len`](Self::header_len)), e.g. 4096 for page-aligned
    /// data.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when `data_offset` breaks rule 8 or 9 of SPEC 7.2.
    pub fn with_data_offset(mut self, data_offset: u64) -> Result<Self> {
        self.data_offset = data_offset;
        let total = data_offset.checked_add(self.data_len).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("array header: data offset {data_offset} overflows"),
            )
        })?;
        self.check_layout(total).map_err(as_argument)?;
        Ok(self)
    }

    /// Decode and validate a header, applying the rules of SPEC 7.2 in order.
    ///
    /// `bytes` starts at the header and holds at least its fixed part and dimension entries
    /// (it may be the whole buffer); `buffer_len` is the length of the memory the array lives
    /// in, from the header start to its end (the real size of the segment or message minus
    /// the header's offset). Only a header whose every element lies inside that length is
    /// returned.
    ///
    /// # Errors
    ///
    /// The kind SPEC 7.2 gives for the first rule broken: [`ErrorKind::Truncated`],
    /// [`ErrorKind::BadMagic`], [`ErrorKind::UnsupportedVersion`], [`ErrorKind::Unsupported`]
    /// (too many dimensions, an unknown element type) or [`ErrorKind::CorruptHeader`]; the
    /// message names the field and its value.
    pub fn decode(bytes: &[u8], buffer_len: u64) -> Result<Self> {
        Self::decode_rules(bytes, buffer_len).map_err(into_error)
    }

    fn decode_rules(bytes: &[u8], buffer_len: u64) -> Result<Self, Violation> {
        // 1. Room for the fixed part.
        if buffer_len < FIXED_LEN as u64 || bytes.len() < FIXED_LEN {
            return Err(violation(
                ErrorKind::Truncated,
                &format!(
                    "{} bytes are too few for an array header ({FIXED_LEN} at least)",
                    buffer_len.min(bytes.len() as u64)
                ),
            ));
        }
        // 2. Magic.
        if bytes[off::MAGIC..off::MAGIC + 8] != MAGIC {
            return Err(violation(
                ErrorKind::BadMagic,
                &format!(
                    "bad magic {:02x?} (expected \"SHMBARRY\"): not an array header",
                    &bytes[..8]
                ),
            ));
        }
        // 3. Version.
        let major = u16_at(bytes, off::VERSION_MAJOR);
        if major != VERSION_MAJOR {
            return Err(violation(
                ErrorKind::UnsupportedVersion,
                &format!("version {major}.x is not supported (this library reads 1.x)"),
            ));
        }
        // 4. Dimensions.
        let ndim = usize::from(bytes[off::NDIM]);
        check_ndim(ndim)?;
        // 5, 6. Header length.
        let header_len = u32_at(bytes, off::HEADER_LEN);
        let need = min_header_len(ndim);
        if header_len < need || header_len % 8 != 0 {
            return Err(violation(
                ErrorKind::CorruptHeader,
                &format!(
                    "header_len {header_len} is invalid for {ndim} dimensions (a multiple of 8, \
                     at least {need})"
                ),
            ));
        }
        if u64::from(header_len) > buffer_len || bytes.len() < need as usize {
            return Err(violation(
                ErrorKind::Truncated,
                &format!(
                    "header of {header_len} bytes, but only {} bytes are there",
                    buffer_len.min(bytes.len() as u64)
                ),
            ));
        }
        // 7. Element type.
        let (kind, bits) = (bytes[off::KIND], bytes[off::BITS]);
        let dtype = DType::from_code(kind, bits).ok_or_else(|| {
            let shown = if kind.is_ascii_graphic() {
                format!("{:?}", char::from(kind))
            } else {
                format!("0x{kind:02x}")
            };
            violation(
                ErrorKind::Unsupported,
                &format!("unknown element type: kind {shown}, {bits} bits"),
            )
        })?;
        let mut shape = Vec::with_capacity(ndim);
        let mut strides = Vec::with_capacity(ndim);
        for i in 0..ndim {
            let at = FIXED_LEN + i * DIM_LEN;
            shape.push(u64_at(bytes, at));
            strides.push(i64_at(bytes, at + 8));
        }
        let header = ArrayHeader {
            dtype,
            shape,
            strides,
            origin: u64_at(bytes, off::ORIGIN),
            data_offset: u64_at(bytes, off::DATA_OFFSET),
            data_len: u64_at(bytes, off::DATA_LEN),
            header_len,
            version_minor: u16_at(bytes, off::VERSION_MINOR),
            flags: u32_at(bytes, off::FLAGS),
        };
        // 8 to 13.
        header.check_layout(buffer_len)?;
        Ok(header)
    }

    /// Read and validate the header at `offset` of `region` (a copy through the region's
    /// checked accessors, against the region's real size).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when `offset` is not a multiple of 64 (headers are
    /// 64-byte aligned in their mapping, so that every element is aligned);
    /// [`ErrorKind::OutOfBounds`] when it is past the end; [`ErrorKind::Truncated`] when the
    /// object behind the mapping shrank; otherwise as [`decode`](Self::decode), naming the
    /// segment or file.
    pub fn read_from(region: &Region, offset: u64) -> Result<Self> {
        check_placement(region, offset)?;
        let avail = (region.len() as u64).checked_sub(offset).ok_or_else(|| {
            about(
                Error::new(
                    ErrorKind::OutOfBounds,
                    format!(
                        "array header at offset {offset}: past the end ({} bytes)",
                        region.len()
                    ),
                ),
                region,
            )
        })?;
        let mut raw = [0u8; MAX_HEADER_LEN];
        let take = avail.min(MAX_HEADER_LEN as u64) as usize;
        region.read_at(offset, &mut raw[..take])?;
        Self::decode(&raw[..take], avail).map_err(|e| about(e, region))
    }

    /// Write this header at `offset` of `region`, the magic last (after a release fence), so
    /// a reader that sees the magic sees the whole header. The data area is not touched.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when `offset` is not a multiple of 64;
    /// [`ErrorKind::OutOfBounds`] when the header and its data area do not fit in the region;
    /// [`ErrorKind::PermissionDenied`] for a read-only mapping; [`ErrorKind::Truncated`] when
    /// the backing object shrank.
    pub fn write_to(&self, region: &Region, offset: u64) -> Result<()> {
        check_placement(region, offset)?;
        let total = self.total_len();
        if offset
            .checked_add(total)
            .is_none_or(|end| end > region.len() as u64)
        {
            return Err(about(
                Error::new(
                    ErrorKind::OutOfBounds,
                    format!(
                        "an array of {total} bytes (header and data) at offset {offset} does \
                         not fit in {} bytes",
                        region.len()
                    ),
                ),
                region,
            ));
        }
        let bytes = self.encode();
        region.write_at(offset + 8, &bytes[8..])?;
        fence(Ordering::Release);
        region.write_at(offset, &bytes[..8])
    }

    /// Encode into `header_len` bytes (the fixed part, the dimension entries, zeros after).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.header_len as usize];
        out[off::MAGIC..off::MAGIC + 8].copy_from_slice(&MAGIC);
        out[off::VERSION_MAJOR..off::VERSION_MAJOR + 2]
            .copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        out[off::VERSION_MINOR..off::VERSION_MINOR + 2]
            .copy_from_slice(&self.version_minor.to_le_bytes());
        out[off::HEADER_LEN..off::HEADER_LEN + 4].copy_from_slice(&self.header_len.to_le_bytes());
        out[off::KIND] = self.dtype.kind() as u8;
        out[off::BITS] = self.dtype.bits();
        out[off::NDIM] = self.shape.len() as u8;
        out[off::FLAGS..off::FLAGS + 4].copy_from_slice(&self.flags.to_le_bytes());
        out[off::DATA_OFFSET..off::DATA_OFFSET + 8]
            .copy_from_slice(&self.data_offset.to_le_bytes());
        out[off::DATA_LEN..off::DATA_LEN + 8].copy_from_slice(&self.data_len.to_le_bytes());
        out[off::ORIGIN..off::ORIGIN + 8].copy_from_slice(&self.origin.to_le_bytes());
        for (i, (dim, stride)) in self.shape.iter().zip(&self.strides).enumerate() {
            let at = FIXED_LEN + i * DIM_LEN;
            out[at..at + 8].copy_from_slice(&dim.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&stride.to_le_bytes());
        }
        out
    }

    /// Rules 8 to 13 of SPEC 7.2: the layout against a buffer of `buffer_len` bytes.
    fn check_layout(&self, buffer_len: u64) -> Result<(), Violation> {
        let itemsize = self.dtype.itemsize() as u64;
        // 8. The data area's offset.
        if self.data_offset % DATA_ALIGN != 0 || self.data_offset < u64::from(self.header_len) {
            return Err(violation(
                ErrorKind::CorruptHeader,
                &format!(
                    "data_offset {} must be a multiple of {DATA_ALIGN} and at least header_len \
                     {}",
                    self.data_offset, self.header_len
                ),
            ));
        }
        // 9. The data area lies in the buffer.
        if self
            .data_offset
            .checked_add(self.data_len)
            .is_none_or(|end| end > buffer_len)
        {
            return Err(violation(
                ErrorKind::Truncated,
                &format!(
                    "data area of {} bytes at offset {} does not fit in the {buffer_len} bytes \
                     there",
                    self.data_len, self.data_offset
                ),
            ));
        }
        // 10. Shape: no overflow. The product of the non-zero extents counts (numpy's rule),
        // so an empty array is not a way around the limit, and every valid header is one
        // numpy can view.
        let nbytes = self
            .shape
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(itemsize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_EXTENT);
        if nbytes.is_none() {
            return Err(violation(
                ErrorKind::CorruptHeader,
                &format!(
                    "shape {:?} of {} overflows (the product of its non-zero extents, in \
                     bytes, must fit in 63 bits)",
                    self.shape, self.dtype
                ),
            ));
        }
        // 11. Alignment of every element.
        if let Some((i, s)) = self
            .strides
            .iter()
            .enumerate()
            .find(|(_, &s)| s.unsigned_abs() % itemsize != 0)
        {
            return Err(violation(
                ErrorKind::CorruptHeader,
                &format!(
                    "stride {s} of dimension {i} is not a multiple of the element size \
                     {itemsize} ({})",
                    self.dtype
                ),
            ));
        }
        if self.origin % itemsize != 0 {
            return Err(violation(
                ErrorKind::CorruptHeader,
                &format!(
                    "origin {} is not a multiple of the element size {itemsize} ({})",
                    self.origin, self.dtype
                ),
            ));
        }
        // 12, 13. Every element inside the data area.
        if self.is_empty() {
            if self.origin > self.data_len {
                return Err(violation(
                    ErrorKind::CorruptHeader,
                    &format!(
                        "origin {} is past the data area ({} bytes)",
                        self.origin, self.data_len
                    ),
                ));
            }
        } else {
            let inside = self.reach().is_some_and(|(low, high)| {
                let first = i128::from(self.origin);
                first + low >= 0 && first + high + i128::from(itemsize) <= i128::from(self.data_len)
            });
            if !inside {
                return Err(violation(
                    ErrorKind::CorruptHeader,
                    &format!(
                        "shape {:?} with strides {:?} from origin {} reaches outside the data \
                         area ({} bytes)",
                        self.shape, self.strides, self.origin, self.data_len
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The lowest and highest byte offsets, relative to element `(0, ..., 0)`, of any
    /// element's first byte; `None` on overflow (only for a non-empty shape).
    fn reach(&self) -> Option<(i128, i128)> {
        let (mut low, mut high) = (0i128, 0i128);
        for (&dim, &stride) in self.shape.iter().zip(&self.strides) {
            let span = i128::from(stride).checked_mul(i128::from(dim.checked_sub(1)?))?;
            if span < 0 {
                low = low.checked_add(span)?;
            } else {
                high = high.checked_add(span)?;
            }
        }
        Some((low, high))
    }

    fn total_len_unchecked(&self) -> u64 {
        self.data_offset.saturating_add(self.data_len)
    }

    /// The element type.
    #[must_use]
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of dimensions (0 for a scalar).
    #[must_use]
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The shape.
    #[must_use]
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The strides, in bytes (negative and zero strides are allowed).
    #[must_use]
    pub fn strides(&self) -> &[i64] {
        &self.strides
    }

    /// Size of one element in bytes.
    #[must_use]
    pub fn itemsize(&self) -> usize {
        self.dtype.itemsize()
    }

    /// Number of elements (1 for a scalar, 0 when the shape has a 0).
    #[must_use]
    pub fn len(&self) -> u64 {
        // Validated: the product of a non-empty shape fits (an empty one may have huge
        // entries beside its 0, so multiply only when there is no 0).
        element_count(&self.shape).unwrap_or(0)
    }

    /// Whether the array has no elements (a 0 in its shape).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shape.contains(&0)
    }

    /// Size of the elements in bytes: `len() * itemsize()` (less than 2^63).
    #[must_use]
    pub fn nbytes(&self) -> u64 {
        self.len() * self.itemsize() as u64
    }

    /// Byte offset of the data area from the header start (a multiple of 64).
    #[must_use]
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Size of the data area in bytes.
    #[must_use]
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Byte offset of element `(0, ..., 0)` within the data area.
    #[must_use]
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// Byte offset of element `(0, ..., 0)` from the header start: `data_offset + origin`.
    #[must_use]
    pub fn first_element_offset(&self) -> u64 {
        self.data_offset + self.origin
    }

    /// Bytes from the header start to the end of the data area.
    #[must_use]
    pub fn total_len(&self) -> u64 {
        self.data_offset + self.data_len
    }

    /// The header's own length in bytes (`64 + 16 * ndim` for headers this library writes).
    #[must_use]
    pub fn header_len(&self) -> u32 {
        self.header_len
    }

    /// `(major, minor)` of the layout version the header was written with.
    #[must_use]
    pub fn version(&self) -> (u16, u16) {
        (VERSION_MAJOR, self.version_minor)
    }

    /// The flags field (no flag is defined in version 1.0; unknown bits are kept).
    #[must_use]
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Byte offset from the header start of the element at `index`, or `None` when `index`
    /// has the wrong number of entries or one is out of range.
    #[must_use]
    pub fn element_offset(&self, index: &[u64]) -> Option<u64> {
        self.data_offset
            .checked_add(self.offset_in_data(index)? as u64)
    }

    /// Byte offset within the data area of the element at `index`.
    pub(crate) fn offset_in_data(&self, index: &[u64]) -> Option<usize> {
        if index.len() != self.shape.len() {
            return None;
        }
        let mut at = i128::from(self.origin);
        for ((&i, &dim), &stride) in index.iter().zip(&self.shape).zip(&self.strides) {
            if i >= dim {
                return None;
            }
            // Validated: every element lies in the data area, so nothing here overflows.
            at += i128::from(i) * i128::from(stride);
        }
        usize::try_from(at).ok()
    }

    /// Whether the elements are contiguous in C order (numpy's definition: dimensions of
    /// length 1 do not count, and an empty array is contiguous).
    #[must_use]
    pub fn is_c_contiguous(&self) -> bool {
        contiguous(
            self.shape.iter().zip(&self.strides).rev(),
            self.itemsize(),
            self.is_empty(),
        )
    }

    /// Whether the elements are contiguous in F order.
    #[must_use]
    pub fn is_f_contiguous(&self) -> bool {
        contiguous(
            self.shape.iter().zip(&self.strides),
            self.itemsize(),
            self.is_empty(),
        )
    }
}

pub(crate) fn contiguous<'a>(
    dims: impl Iterator<Item = (&'a u64, &'a i64)>,
    itemsize: usize,
    empty: bool,
) -> bool {
    if empty {
        return true;
    }
    let mut expect = itemsize as i128;
    for (&dim, &stride) in dims {
        if dim != 1 {
            if i128::from(stride) != expect {
                return false;
            }
            expect *= i128::from(dim);
        }
    }
    true
}

/// The product of `shape`, or `None` on overflow.
fn element_count(shape: &[u64]) -> Option<u64> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d))
}

fn check_ndim(ndim: usize) -> Result<(), Violation> {
    if ndim > MAX_NDIM {
        return Err(violation(
            ErrorKind::Unsupported,
            &format!("{ndim} dimensions: at most {MAX_NDIM} are supported"),
        ));
    }
    Ok(())
}

/// Rule 0 of SPEC 7.2: a header starts at a multiple of 64 in its mapping.
fn check_placement(region: &Region, offset: u64) -> Result<()> {
    if offset % DATA_ALIGN == 0 {
        return Ok(());
    }
    Err(about(
        Error::new(
            ErrorKind::InvalidArgument,
            format!("array header at offset {offset}: not a multiple of {DATA_ALIGN}"),
        ),
        region,
    ))
}

/// `err` with `region`'s label (segment name or file path) attached.
///
/// `Region` keeps whether its label is a path to itself; the error it makes for a range that
/// cannot exist carries both, so take them from there. (A `pub(crate)` accessor on `Region`
/// would make this a one-liner.)
fn about(err: Error, region: &Region) -> Error {
    match region.check_range(u64::MAX, 1) {
        Err(probe) => match probe.segment() {
            Some(label) => err.with_subject(label, probe.is_path()),
            None => err,
        },
        Ok(_) => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_2x3() -> ArrayHeader {
        ArrayHeader::new(DType::Float32, &[2, 3], Order::C).unwrap()
    }

    /// A buffer with `h` encoded at 0 and room for its data.
    fn buffer(h: &ArrayHeader) -> Vec<u8> {
        let mut b = vec![0u8; h.total_len() as usize];
        b[..h.header_len() as usize].copy_from_slice(&h.encode());
        b
    }

    fn put_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn put_i64(b: &mut [u8], at: usize, v: i64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn decode_err(b: &[u8]) -> Error {
        ArrayHeader::decode(b, b.len() as u64).unwrap_err()
    }

    #[test]
    fn layout_of_fields_is_the_spec() {
        let h = f32_2x3();
        let b = h.encode();
        assert_eq!(b.len(), 96);
        assert_eq!(&b[0..8], b"SHMBARRY");
        assert_eq!(u16_at(&b, 8), 1);
        assert_eq!(u16_at(&b, 10), 0);
        assert_eq!(u32_at(&b, 12), 96);
        assert_eq!(b[16], b'f');
        assert_eq!(b[17], 32);
        assert_eq!(b[18], 2);
        assert_eq!(b[19], 0);
        assert_eq!(u32_at(&b, 20), 0);
        assert_eq!(u64_at(&b, 24), 128);
        assert_eq!(u64_at(&b, 32), 24);
        assert_eq!(u64_at(&b, 40), 0);
        assert_eq!(&b[48..64], &[0u8; 16]);
        assert_eq!(u64_at(&b, 64), 2);
        assert_eq!(i64_at(&b, 72), 12);
        assert_eq!(u64_at(&b, 80), 3);
        assert_eq!(i64_at(&b, 88), 4);
        assert_eq!(h.total_len(), 152);
    }

    #[test]
    fn round_trips_every_dtype_and_order() {
        for dtype in DType::ALL {
            for order in [Order::C, Order::F] {
                for shape in [&[][..], &[0], &[5], &[2, 0, 3], &[4, 1, 3, 2]] {
                    let h = ArrayHeader::new(dtype, shape, order).unwrap();
                    let b = buffer(&h);
                    let back = ArrayHeader::decode(&b, b.len() as u64).unwrap();
                    assert_eq!(back, h);
                    assert_eq!(h.nbytes(), h.data_len());
                    match order {
                        Order::C => assert!(h.is_c_contiguous()),
                        Order::F => assert!(h.is_f_contiguous()),
                    }
                }
            }
        }
    }

    #[test]
    fn c_and_f_strides() {
        assert_eq!(c_strides(&[2, 3, 4], 8).unwrap(), vec![96, 32, 8]);
        assert_eq!(f_strides(&[2, 3, 4], 8).unwrap(), vec![8, 16, 48]);
        // A 0 counts as 1 (numpy's own empty arrays have zero strides; both are valid).
        assert_eq!(c_strides(&[3, 0], 4).unwrap(), vec![4, 4]);
        assert_eq!(c_strides(&[0, 3], 4).unwrap(), vec![12, 4]);
        assert_eq!(c_strides(&[], 4).unwrap(), Vec::<i64>::new());
        assert!(c_strides(&[u64::MAX, 2], 1).is_none());
    }

    #[test]
    fn zero_d_array_is_one_element() {
        let h = ArrayHeader::new(DType::Int64, &[], Order::C).unwrap();
        assert_eq!(
            (h.ndim(), h.len(), h.nbytes(), h.header_len()),
            (0, 1, 8, 64)
        );
        assert_eq!(h.data_offset(), 64);
        assert_eq!(h.element_offset(&[]), Some(64));
        assert!(h.is_c_contiguous() && h.is_f_contiguous());
    }

    #[test]
    fn empty_shape_has_no_elements_and_any_strides() {
        let h = ArrayHeader::with_layout(DType::Int16, &[3, 0], &[-1000, 2], 0, 0).unwrap();
        assert_eq!((h.len(), h.nbytes()), (0, 0));
        assert!(h.is_empty() && h.is_c_contiguous());
        assert_eq!(h.element_offset(&[0, 0]), None);
        // Origin still within the (empty) data area.
        let e = ArrayHeader::with_layout(DType::Int16, &[0], &[2], 2, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.to_string().contains("origin 2 is past the data area"),
            "{e}"
        );
    }

    #[test]
    fn negative_and_zero_strides() {
        // a[::-1] of 4 int32: element 0 is the last in memory.
        let h = ArrayHeader::with_layout(DType::Int32, &[4], &[-4], 12, 16).unwrap();
        assert_eq!(h.element_offset(&[0]), Some(h.data_offset() + 12));
        assert_eq!(h.element_offset(&[3]), Some(h.data_offset()));
        assert!(!h.is_c_contiguous());
        // np.broadcast_to(x, (5, 3)): one row of 3, stride 0.
        let h = ArrayHeader::with_layout(DType::Float64, &[5, 3], &[0, 8], 0, 24).unwrap();
        assert_eq!(h.element_offset(&[4, 2]), Some(h.data_offset() + 16));
        // Going below the start of the data area is refused.
        let e = ArrayHeader::with_layout(DType::Int32, &[4], &[-4], 8, 16).unwrap_err();
        assert!(e.to_string().contains("reaches outside"), "{e}");
    }

    #[test]
    fn general_strides_padded_rows() {
        // 3 rows of 5 uint8 with a row pitch of 8 bytes; the last row needs only 5.
        let h = ArrayHeader::with_layout(DType::UInt8, &[3, 5], &[8, 1], 0, 21).unwrap();
        assert!(!h.is_c_contiguous() && !h.is_f_contiguous());
        assert_eq!(h.element_offset(&[2, 4]), Some(h.data_offset() + 20));
        let e = ArrayHeader::with_layout(DType::UInt8, &[3, 5], &[8, 1], 0, 20).unwrap_err();
        assert!(e.to_string().contains("reaches outside"), "{e}");
    }

    #[test]
    fn with_strides_finds_the_smallest_area() {
        let h = ArrayHeader::with_strides(DType::Int32, &[4], &[-4]).unwrap();
        assert_eq!((h.origin(), h.data_len()), (12, 16));
        let h = ArrayHeader::with_strides(DType::UInt8, &[3, 5], &[8, 1]).unwrap();
        assert_eq!((h.origin(), h.data_len()), (0, 21));
        let h = ArrayHeader::with_strides(DType::Float64, &[5, 3], &[0, -8]).unwrap();
        assert_eq!((h.origin(), h.data_len()), (16, 24));
        let h = ArrayHeader::with_strides(DType::Float64, &[], &[]).unwrap();
        assert_eq!((h.origin(), h.data_len()), (0, 8));
        let h = ArrayHeader::with_strides(DType::Float64, &[2, 0], &[8, 8]).unwrap();
        assert_eq!((h.origin(), h.data_len()), (0, 0));
        let e = ArrayHeader::with_strides(DType::Float64, &[3], &[6]).unwrap_err();
        assert!(e.to_string().contains("not a multiple"), "{e}");
        let e = ArrayHeader::with_strides(DType::Int8, &[3], &[1, 1]).unwrap_err();
        assert!(e.to_string().contains("2 strides for 1 dimensions"), "{e}");
        let e = ArrayHeader::with_strides(DType::Int8, &[1 << 62, 1 << 62], &[4, 4]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn element_offset_checks_index() {
        let h = f32_2x3();
        assert_eq!(h.element_offset(&[1, 2]), Some(128 + 20));
        assert_eq!(h.element_offset(&[2, 0]), None);
        assert_eq!(h.element_offset(&[0]), None);
        assert_eq!(h.element_offset(&[0, 0, 0]), None);
    }

    #[test]
    fn data_offset_can_move_out() {
        let h = f32_2x3().with_data_offset(4096).unwrap();
        let b = buffer(&h);
        assert_eq!(ArrayHeader::decode(&b, b.len() as u64).unwrap(), h);
        for bad in [100, 64] {
            let e = f32_2x3().with_data_offset(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(e.to_string().contains("data_offset"), "{e}");
        }
    }

    #[test]
    fn builders_refuse_bad_layouts() {
        let dims = [1u64; 33];
        let e = ArrayHeader::new(DType::UInt8, &dims, Order::C).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("33 dimensions"), "{e}");
        let e = ArrayHeader::new(DType::Float64, &[1 << 40, 1 << 30], Order::C).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        let e = ArrayHeader::with_layout(DType::Float64, &[2], &[8, 8], 0, 16).unwrap_err();
        assert!(e.to_string().contains("2 strides for 1 dimensions"), "{e}");
        let e = ArrayHeader::with_layout(DType::Float64, &[2], &[12], 0, 64).unwrap_err();
        assert!(
            e.to_string().contains("not a multiple of the element size"),
            "{e}"
        );
        assert_eq!(
            ArrayHeader::new(DType::UInt8, &[1; 32], Order::F)
                .unwrap()
                .ndim(),
            32
        );
    }

    // One test per reader rule of SPEC 7.2, in order.

    #[test]
    fn rule_1_too_short_is_truncated() {
        let b = buffer(&f32_2x3());
        for len in [0, 8, 63] {
            let e = decode_err(&b[..len]);
            assert_eq!(e.kind(), ErrorKind::Truncated);
            assert!(e.to_string().contains("too few for an array header"), "{e}");
        }
        // Enough bytes given, but a buffer shorter than them.
        let e = ArrayHeader::decode(&b, 10).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated);
    }

    #[test]
    fn rule_2_bad_magic() {
        let mut b = buffer(&f32_2x3());
        b[7] = b'X';
        let e = decode_err(&b);
        assert_eq!(e.kind(), ErrorKind::BadMagic);
        assert!(e.to_string().contains("not an array header"), "{e}");
        assert_eq!(decode_err(&[0u8; 256]).kind(), ErrorKind::BadMagic);
    }

    #[test]
    fn rule_3_unknown_major_version() {
        let mut b = buffer(&f32_2x3());
        b[8] = 2;
        let e = decode_err(&b);
        assert_eq!(e.kind(), ErrorKind::UnsupportedVersion);
        assert!(e.to_string().contains("version 2.x"), "{e}");
        // A newer minor is read.
        let mut b = buffer(&f32_2x3());
        b[10] = 7;
        let h = ArrayHeader::decode(&b, b.len() as u64).unwrap();
        assert_eq!(h.version(), (1, 7));
    }

    #[test]
    fn rule_4_too_many_dimensions() {
        let mut b = vec![0u8; 4096];
        let h = ArrayHeader::new(DType::UInt8, &[1; 32], Order::C).unwrap();
        b[..h.header_len() as usize].copy_from_slice(&h.encode());
        for ndim in [33u8, 255] {
            b[18] = ndim;
            let e = decode_err(&b);
            assert_eq!(e.kind(), ErrorKind::Unsupported);
            assert!(e.to_string().contains(&format!("{ndim} dimensions")), "{e}");
        }
    }

    #[test]
    fn rule_5_header_len_too_small_or_unaligned() {
        for bad in [0u32, 64, 95, 100] {
            let mut b = buffer(&f32_2x3());
            b[12..16].copy_from_slice(&bad.to_le_bytes());
            let e = decode_err(&b);
            assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{bad}");
            assert!(e.to_string().contains("header_len"), "{e}");
        }
        // Larger (a later minor's extra fields) is fine.
        let mut b = buffer(&f32_2x3());
        b[12..16].copy_from_slice(&128u32.to_le_bytes());
        assert_eq!(
            ArrayHeader::decode(&b, b.len() as u64)
                .unwrap()
                .header_len(),
            128
        );
    }

    #[test]
    fn rule_6_header_past_the_buffer() {
        let b = buffer(&f32_2x3());
        let e = decode_err(&b[..90]);
        assert_eq!(e.kind(), ErrorKind::Truncated);
        assert!(e.to_string().contains("header of 96 bytes"), "{e}");
        // The dimension entries must be in `bytes` even when the buffer is longer.
        let e = ArrayHeader::decode(&b[..70], 1000).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated);
    }

    #[test]
    fn rule_7_unknown_element_type() {
        for (kind, bits) in [(b'f', 8u8), (b'x', 32), (0, 0), (b'b', 16), (b'c', 32)] {
            let mut b = buffer(&f32_2x3());
            b[16] = kind;
            b[17] = bits;
            let e = decode_err(&b);
            assert_eq!(e.kind(), ErrorKind::Unsupported);
            assert!(e.to_string().contains("unknown element type"), "{e}");
        }
    }

    #[test]
    fn rule_8_data_offset_unaligned_or_inside_header() {
        for bad in [0u64, 64, 100, 129] {
            let mut b = buffer(&f32_2x3());
            b.resize(1024, 0);
            put_u64(&mut b, 24, bad);
            let e = decode_err(&b);
            assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{bad}");
            assert!(e.to_string().contains("data_offset"), "{e}");
        }
    }

    #[test]
    fn rule_9_data_area_past_the_buffer() {
        let b = buffer(&f32_2x3());
        let e = decode_err(&b[..b.len() - 1]);
        assert_eq!(e.kind(), ErrorKind::Truncated);
        assert!(e.to_string().contains("does not fit"), "{e}");
        let mut b = buffer(&f32_2x3());
        put_u64(&mut b, 32, u64::MAX - 64); // data_offset + data_len overflows
        assert_eq!(decode_err(&b).kind(), ErrorKind::Truncated);
    }

    #[test]
    fn rule_10_shape_overflow() {
        for shape in [
            [u64::MAX, 1],
            [1 << 62, 4],
            [1 << 32, 1 << 32],
            [1 << 63, 0],
            [1 << 62, 0], // the 0 does not help: 2^62 float32 are 2^64 bytes
        ] {
            let mut b = buffer(&f32_2x3());
            put_u64(&mut b, 64, shape[0]);
            put_u64(&mut b, 80, shape[1]);
            let e = decode_err(&b);
            assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{shape:?}");
            assert!(e.to_string().contains("overflows"), "{e}");
        }
    }

    #[test]
    fn rule_11_misaligned_strides_or_origin() {
        let mut b = buffer(&f32_2x3());
        put_u64(&mut b, 88, 2); // stride 2 for float32
        let e = decode_err(&b);
        assert_eq!(e.kind(), ErrorKind::CorruptHeader);
        assert!(e.to_string().contains("stride 2 of dimension 1"), "{e}");
        let mut b = buffer(&f32_2x3());
        put_i64(&mut b, 72, -6);
        assert!(decode_err(&b).to_string().contains("stride -6"));
        let mut b = buffer(&f32_2x3());
        put_u64(&mut b, 40, 1);
        let e = decode_err(&b);
        assert!(e.to_string().contains("origin 1"), "{e}");
    }

    #[test]
    fn rule_12_strides_reaching_outside() {
        let cases: [(u64, i64, i64); 5] = [
            (0, 12, 8),           // rows 12 apart, columns 8: the last element at 28
            (0, 16, 4),           // last element at 16 + 8 = 24: one past
            (4, 12, 4),           // origin 4 shifts the whole array out by 4
            (0, -12, 4),          // negative stride from origin 0: before the start
            (0, i64::MIN + 4, 4), // huge magnitudes: no overflow, just outside
        ];
        for (origin, s0, s1) in cases {
            let mut b = buffer(&f32_2x3());
            put_u64(&mut b, 40, origin);
            put_i64(&mut b, 72, s0);
            put_i64(&mut b, 88, s1);
            let e = decode_err(&b);
            assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{origin} {s0} {s1}");
            assert!(
                e.to_string().contains("reaches outside the data area"),
                "{e}"
            );
        }
        // Inside: the reversed rows with origin 12.
        let mut b = buffer(&f32_2x3());
        put_u64(&mut b, 40, 12);
        put_i64(&mut b, 72, -12);
        let h = ArrayHeader::decode(&b, b.len() as u64).unwrap();
        assert_eq!(h.element_offset(&[1, 0]), Some(128));
    }

    #[test]
    fn rule_13_empty_array_origin() {
        let h = ArrayHeader::new(DType::Int8, &[0, 4], Order::C).unwrap();
        let mut b = buffer(&h);
        put_u64(&mut b, 40, 1);
        let e = decode_err(&b);
        assert_eq!(e.kind(), ErrorKind::CorruptHeader);
        assert!(e.to_string().contains("past the data area"), "{e}");
        // Huge extents beside the 0 (found by the fuzzer: len() overflowed multiplying them,
        // before rule 10 counted the non-zero extents).
        let e = ArrayHeader::with_layout(DType::Int8, &[1 << 40, 1 << 40, 0], &[1, 1, 1], 0, 0)
            .unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        let big = ArrayHeader::with_layout(DType::Int8, &[1 << 31, 1 << 31, 0], &[1, 1, 1], 0, 0)
            .unwrap();
        let mut b = buffer(&big);
        b.resize(1024, 0);
        let back = ArrayHeader::decode(&b, b.len() as u64).unwrap();
        assert_eq!((back.len(), back.nbytes(), back.is_empty()), (0, 0, true));
        // Any stride magnitude is fine when there is nothing to reach.
        let mut b = buffer(&h);
        put_i64(&mut b, 72, i64::MIN);
        assert!(ArrayHeader::decode(&b, b.len() as u64).is_ok());
    }

    #[test]
    fn reserved_bytes_and_unknown_flags_are_ignored() {
        let mut b = buffer(&f32_2x3());
        b[19] = 0xff;
        b[20] = 0x80;
        b[48..64].fill(0xee);
        let h = ArrayHeader::decode(&b, b.len() as u64).unwrap();
        assert_eq!(h.flags(), 0x80);
        assert_eq!(h.shape(), &[2, 3]);
    }

    #[test]
    fn region_read_and_write() {
        let region = Region::anonymous(4096).unwrap();
        let h = ArrayHeader::with_layout(DType::Complex128, &[3, 2], &[16, 48], 0, 96).unwrap();
        h.write_to(&region, 192).unwrap();
        assert_eq!(ArrayHeader::read_from(&region, 192).unwrap(), h);
        let e = ArrayHeader::read_from(&region, 100).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("<anonymous>"), "{e}");
        let e = ArrayHeader::read_from(&region, 8192).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfBounds);
        let e = ArrayHeader::read_from(&region, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadMagic);
        assert!(
            e.to_string()
                .starts_with("segment \"<anonymous>\": array header"),
            "{e}"
        );
        // The data area must fit: an array of 3900 bytes at 128 does not.
        let big = ArrayHeader::new(DType::UInt8, &[3900], Order::C).unwrap();
        assert_eq!(
            big.write_to(&region, 128).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
        // Near the end, read_from sees the real (short) length.
        big.write_to(&region, 0).unwrap();
        let tail = ArrayHeader::new(DType::UInt8, &[8], Order::C).unwrap();
        tail.write_to(&region, 4096 - 192).unwrap();
        assert_eq!(ArrayHeader::read_from(&region, 4096 - 192).unwrap(), tail);
        assert_eq!(
            ArrayHeader::read_from(&region, 4096 - 64)
                .unwrap_err()
                .kind(),
            ErrorKind::BadMagic
        );
    }

    #[test]
    fn file_errors_name_the_path() {
        let dir = std::env::temp_dir().join(crate::name::unique("shmb_array_"));
        std::fs::write(&dir, vec![0u8; 256]).unwrap();
        let file = crate::FileMapping::open(&dir, false).unwrap();
        let region = file.map(crate::MapAccess::ReadOnly, 0, None).unwrap();
        let e = ArrayHeader::read_from(&region, 64).unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(e.kind(), ErrorKind::BadMagic);
        assert!(e.is_path(), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{:?}", dir.display().to_string())),
            "{e}"
        );
    }
}
