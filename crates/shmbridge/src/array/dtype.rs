//! Element types: the one table that maps the array header's `(kind, bits)` to numpy, the
//! buffer protocol (PEP 3118) and DLPack, and the Rust types a typed view reads.

use std::fmt;

/// The kind of an element, as stored in the header's `kind` byte: the ASCII character numpy
/// uses for `dtype.kind`, so a hex dump of a header reads `b`, `i`, `u`, `f` or `c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ElementKind {
    /// `b`: boolean, one byte, 0 is false and anything else true.
    Bool = b'b',
    /// `i`: two's-complement signed integer.
    Int = b'i',
    /// `u`: unsigned integer.
    UInt = b'u',
    /// `f`: IEEE 754 binary floating point.
    Float = b'f',
    /// `c`: complex, two IEEE 754 floats (real part first).
    Complex = b'c',
}

/// The element type of an array: a kind plus a width in bits, one-to-one with a numpy dtype
/// and a DLPack data type. Little-endian always.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// `bool` (numpy `bool_`, `|b1`).
    Bool,
    /// `int8` (`|i1`).
    Int8,
    /// `int16` (`<i2`).
    Int16,
    /// `int32` (`<i4`).
    Int32,
    /// `int64` (`<i8`).
    Int64,
    /// `uint8` (`|u1`).
    UInt8,
    /// `uint16` (`<u2`).
    UInt16,
    /// `uint32` (`<u4`).
    UInt32,
    /// `uint64` (`<u8`).
    UInt64,
    /// `float16`, IEEE binary16 (`<f2`).
    Float16,
    /// `float32`, IEEE binary32 (`<f4`).
    Float32,
    /// `float64`, IEEE binary64 (`<f8`).
    Float64,
    /// `complex64`: two `float32` (`<c8`).
    Complex64,
    /// `complex128`: two `float64` (`<c16`).
    Complex128,
}

/// One row of the dtype table (docs/SPEC.md, section 7.3).
struct Row {
    dtype: DType,
    kind: ElementKind,
    bits: u8,
    name: &'static std::ffi::CStr,
    typestr: &'static str,
    format: &'static str,
    dlpack_code: u8,
}

/// DLPack's `DLDataTypeCode` values used by the table (dlpack.h).
pub(crate) mod dl_code {
    pub const INT: u8 = 0;
    pub const UINT: u8 = 1;
    pub const FLOAT: u8 = 2;
    pub const COMPLEX: u8 = 5;
    pub const BOOL: u8 = 6;
}

const fn row(
    dtype: DType,
    kind: ElementKind,
    bits: u8,
    name: &'static std::ffi::CStr,
    typestr: &'static str,
    format: &'static str,
    dlpack_code: u8,
) -> Row {
    Row {
        dtype,
        kind,
        bits,
        name,
        typestr,
        format,
        dlpack_code,
    }
}

/// The dtype table, in `DType` order.
#[rustfmt::skip]
const TABLE: [Row; 14] = [
    row(DType::Bool,       ElementKind::Bool,    8,   c"bool",       "|b1",  "?",  dl_code::BOOL),
    row(DType::Int8,       ElementKind::Int,     8,   c"int8",       "|i1",  "b",  dl_code::INT),
    row(DType::Int16,      ElementKind::Int,     16,  c"int16",      "<i2",  "h",  dl_code::INT),
    row(DType::Int32,      ElementKind::Int,     32,  c"int32",      "<i4",  "i",  dl_code::INT),
    row(DType::Int64,      ElementKind::Int,     64,  c"int64",      "<i8",  "q",  dl_code::INT),
    row(DType::UInt8,      ElementKind::UInt,    8,   c"uint8",      "|u1",  "B",  dl_code::UINT),
    row(DType::UInt16,     ElementKind::UInt,    16,  c"uint16",     "<u2",  "H",  dl_code::UINT),
    row(DType::UInt32,     ElementKind::UInt,    32,  c"uint32",     "<u4",  "I",  dl_code::UINT),
    row(DType::UInt64,     ElementKind::UInt,    64,  c"uint64",     "<u8",  "Q",  dl_code::UINT),
    row(DType::Float16,    ElementKind::Float,   16,  c"float16",    "<f2",  "e",  dl_code::FLOAT),
    row(DType::Float32,    ElementKind::Float,   32,  c"float32",    "<f4",  "f",  dl_code::FLOAT),
    row(DType::Float64,    ElementKind::Float,   64,  c"float64",    "<f8",  "d",  dl_code::FLOAT),
    row(DType::Complex64,  ElementKind::Complex, 64,  c"complex64",  "<c8",  "Zf", dl_code::COMPLEX),
    row(DType::Complex128, ElementKind::Complex, 128, c"complex128", "<c16", "Zd", dl_code::COMPLEX),
];

impl DType {
    /// Every element type, in table order.
    pub const ALL: [DType; 14] = [
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
        DType::Complex64,
        DType::Complex128,
    ];

    fn row(self) -> &'static Row {
        &TABLE[self as usize]
    }

    /// The type with this header `kind` byte and `bits`, or `None` if the table has none.
    #[must_use]
    pub fn from_code(kind: u8, bits: u8) -> Option<DType> {
        TABLE
            .iter()
            .find(|r| r.kind as u8 == kind && r.bits == bits)
            .map(|r| r.dtype)
    }

    /// The kind.
    #[must_use]
    pub fn kind(self) -> ElementKind {
        self.row().kind
    }

    /// Width of one element in bits.
    #[must_use]
    pub fn bits(self) -> u8 {
        self.row().bits
    }

    /// Width of one element in bytes (1, 2, 4, 8 or 16).
    #[must_use]
    pub fn itemsize(self) -> usize {
        usize::from(self.row().bits / 8)
    }

    /// numpy's name: `"float32"`, `"bool"`, ...
    #[must_use]
    pub fn name(self) -> &'static str {
        // SAFETY: every name in TABLE is an ASCII literal, so its bytes are UTF-8.
        unsafe { std::str::from_utf8_unchecked(self.row().name.to_bytes()) }
    }

    /// [`name`](Self::name) as a NUL-terminated static string (for the C ABI).
    #[must_use]
    pub fn c_name(self) -> &'static std::ffi::CStr {
        self.row().name
    }

    /// numpy's `dtype.str`: `"<f4"`, `"|b1"`, ... (always little-endian or byte-order-free).
    #[must_use]
    pub fn typestr(self) -> &'static str {
        self.row().typestr
    }

    /// The buffer-protocol (PEP 3118, `struct`) format: `"f"`, `"?"`, `"Zd"`, ... in native
    /// byte order, which is little-endian on every host shmbridge makes views on.
    #[must_use]
    pub fn buffer_format(self) -> &'static str {
        self.row().format
    }

    /// DLPack's `DLDataType` as `(code, bits, lanes)`: `(2, 32, 1)` for `float32`.
    #[must_use]
    pub fn dlpack(self) -> (u8, u8, u16) {
        let r = self.row();
        (r.dlpack_code, r.bits, 1)
    }

    /// The type with this DLPack `(code, bits, lanes)`, if the table has it.
    #[must_use]
    pub fn from_dlpack(code: u8, bits: u8, lanes: u16) -> Option<DType> {
        if lanes != 1 {
            return None;
        }
        TABLE
            .iter()
            .find(|r| r.dlpack_code == code && r.bits == bits)
            .map(|r| r.dtype)
    }

    /// Parse a name as numpy spells it: `"float32"`, a type string (`"<f4"`, `"|b1"`, `"f4"`,
    /// `"=f4"`), or `"?"`/`"bool"`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) naming the text, and
    /// saying so when it asks for big-endian data (`">f4"`): only little-endian is written.
    pub fn parse(text: &str) -> crate::Result<DType> {
        let t = text.trim();
        if let Some(r) = TABLE.iter().find(|r| r.name.to_bytes() == t.as_bytes()) {
            return Ok(r.dtype);
        }
        if t == "?" || t == "bool_" {
            return Ok(DType::Bool);
        }
        let code = match t.as_bytes().first() {
            Some(b'<' | b'|' | b'=') => &t[1..],
            Some(b'>' | b'!') => {
                return Err(crate::Error::new(
                    crate::ErrorKind::InvalidArgument,
                    format!("element type {text:?} is big-endian: arrays are little-endian only"),
                ))
            }
            _ => t,
        };
        TABLE
            .iter()
            .find(|r| &r.typestr[1..] == code)
            .map(|r| r.dtype)
            .ok_or_else(|| {
                crate::Error::new(
                    crate::ErrorKind::InvalidArgument,
                    format!(
                        "unknown element type {text:?}: use bool, int8/16/32/64, \
                         uint8/16/32/64, float16/32/64, complex64/128 (or numpy type strings \
                         such as \"<f4\")"
                    ),
                )
            })
    }

    /// The type a buffer-protocol exporter describes with `format` and `itemsize` (what
    /// numpy arrays, `memoryview`s and `array.array`s export), or `None` when it is not in
    /// the table (structured types, pointers, big-endian data, ...).
    ///
    /// The width comes from `itemsize`, so native-size codes (`l`, `L`, `n`) resolve to the
    /// width the exporter actually uses.
    #[must_use]
    pub fn from_buffer_format(format: &str, itemsize: usize) -> Option<DType> {
        let code = match format.as_bytes().first()? {
            b'@' | b'=' | b'<' => &format[1..],
            b'>' | b'!' => return None,
            _ => format,
        };
        let kind = match code {
            "?" => ElementKind::Bool,
            "b" | "h" | "i" | "l" | "q" | "n" => ElementKind::Int,
            "B" | "H" | "I" | "L" | "Q" | "N" => ElementKind::UInt,
            "e" | "f" | "d" => ElementKind::Float,
            "Zf" | "Zd" => ElementKind::Complex,
            _ => return None,
        };
        let bits = u8::try_from(itemsize.checked_mul(8)?).ok()?;
        let dtype = DType::from_code(kind as u8, bits)?;
        // The float and complex codes fix their width; an exporter that disagrees is wrong.
        let fixed = match code {
            "e" => Some(2),
            "f" => Some(4),
            "d" | "Zf" => Some(8),
            "Zd" => Some(16),
            "?" => Some(1),
            _ => None,
        };
        match fixed {
            Some(size) if size != itemsize => None,
            _ => Some(dtype),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type a typed array view reads: one per [`DType`], with the same size, and every bit
/// pattern valid (which is why `bool` is [`Bool`] and `float16` is [`F16`]). Sealed.
pub trait Element: Copy + sealed::Sealed + 'static {
    /// The element type this Rust type reads.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
        const _: () = assert!(std::mem::size_of::<$t>() == DType::$d.bits_const() as usize / 8);
    )*};
}

impl DType {
    /// `bits()` in const context (for the size checks of [`Element`] impls).
    const fn bits_const(self) -> u8 {
        TABLE[self as usize].bits
    }
}

/// A boolean element: one byte, 0 is false and anything else is true (shared memory may hold
/// any byte, and a Rust `bool` must be 0 or 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Bool(pub u8);

impl Bool {
    /// The value: `false` for 0, `true` for anything else.
    #[must_use]
    pub fn get(self) -> bool {
        self.0 != 0
    }
}

impl From<bool> for Bool {
    fn from(b: bool) -> Self {
        Bool(u8::from(b))
    }
}

impl From<Bool> for bool {
    fn from(b: Bool) -> Self {
        b.get()
    }
}

/// An IEEE 754 binary16 element (numpy `float16`), kept as its bits; convert with
/// [`to_f32`](Self::to_f32) and [`from_f32`](Self::from_f32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct F16(u16);

impl F16 {
    /// The value with these bits.
    #[must_use]
    pub const fn from_bits(bits: u16) -> Self {
        F16(bits)
    }

    /// The bits.
    #[must_use]
    pub const fn to_bits(self) -> u16 {
        self.0
    }

    /// The exact `f32` value (every binary16 value is an `f32` value).
    #[must_use]
    pub fn to_f32(self) -> f32 {
        let h = u32::from(self.0);
        let sign = (h & 0x8000) << 16;
        let exp = (h >> 10) & 0x1f;
        let man = h & 0x3ff;
        let bits = match exp {
            0 => {
                // Zero or subnormal: man * 2^-24, exact in f32.
                #[allow(clippy::cast_precision_loss)] // man < 2^10
                let v = man as f32 * (1.0 / 16_777_216.0);
                v.to_bits() | sign
            }
            31 => sign | 0x7f80_0000 | (man << 13),
            _ => sign | ((exp + 112) << 23) | (man << 13),
        };
        f32::from_bits(bits)
    }

    /// The nearest binary16 value (ties to even), as numpy's `float16(x)`: too large becomes
    /// infinity, too small zero, NaN stays NaN.
    #[must_use]
    pub fn from_f32(value: f32) -> Self {
        let x = value.to_bits();
        let sign = ((x >> 16) & 0x8000) as u16;
        let exp = i32::from(((x >> 23) & 0xff) as u8);
        let man = x & 0x007f_ffff;
        if exp == 0xff {
            let nan = if man == 0 {
                0
            } else {
                0x200 | (man >> 13) as u16
            };
            return F16(sign | 0x7c00 | nan);
        }
        let e = exp - 112; // the binary16 biased exponent
        if e >= 31 {
            return F16(sign | 0x7c00);
        }
        if e <= 0 {
            if e < -10 {
                return F16(sign);
            }
            let m = man | 0x0080_0000;
            let shift = (14 - e).unsigned_abs(); // 14..=24
            let mut half = m >> shift;
            let rem = m & ((1 << shift) - 1);
            let halfway = 1 << (shift - 1);
            if rem > halfway || (rem == halfway && half & 1 == 1) {
                half += 1;
            }
            return F16(sign | half as u16);
        }
        #[allow(clippy::cast_sign_loss)] // 0 < e < 31
        let mut half = ((e as u32) << 10) | (man >> 13);
        let rem = man & 0x1fff;
        if rem > 0x1000 || (rem == 0x1000 && half & 1 == 1) {
            half += 1; // a carry into the exponent is right: it may round up to infinity
        }
        F16(sign | half as u16)
    }
}

/// A complex element: real part, then imaginary part (numpy `complex64` is
/// `Complex<f32>`, `complex128` is `Complex<f64>`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Complex<F> {
    /// Real part.
    pub re: F,
    /// Imaginary part.
    pub im: F,
}

element!(
    Bool => Bool,
    i8 => Int8,
    i16 => Int16,
    i32 => Int32,
    i64 => Int64,
    u8 => UInt8,
    u16 => UInt16,
    u32 => UInt32,
    u64 => UInt64,
    F16 => Float16,
    f32 => Float32,
    f64 => Float64,
    Complex<f32> => Complex64,
    Complex<f64> => Complex128,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_dtype_order_and_one_to_one() {
        for (i, d) in DType::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].dtype, *d);
            assert_eq!(DType::from_code(d.kind() as u8, d.bits()), Some(*d));
            let (c, b, l) = d.dlpack();
            assert_eq!(DType::from_dlpack(c, b, l), Some(*d));
            assert_eq!(DType::parse(d.name()).unwrap(), *d);
            assert_eq!(DType::parse(d.typestr()).unwrap(), *d);
            assert_eq!(
                DType::from_buffer_format(d.buffer_format(), d.itemsize()),
                Some(*d)
            );
            assert_eq!(d.itemsize() * 8, usize::from(d.bits()));
        }
    }

    #[test]
    fn unknown_codes_are_none() {
        assert_eq!(DType::from_code(b'f', 8), None);
        assert_eq!(DType::from_code(b'b', 16), None);
        assert_eq!(DType::from_code(0, 0), None);
        assert_eq!(DType::from_code(b'c', 32), None);
        assert_eq!(DType::from_dlpack(2, 32, 4), None);
        assert_eq!(DType::from_dlpack(4, 16, 1), None); // bfloat16: not in the table
    }

    #[test]
    fn parse_names_and_typestrs() {
        assert_eq!(DType::parse("f4").unwrap(), DType::Float32);
        assert_eq!(DType::parse("=i8").unwrap(), DType::Int64);
        assert_eq!(DType::parse("?").unwrap(), DType::Bool);
        assert_eq!(DType::parse("c16").unwrap(), DType::Complex128);
        let e = DType::parse(">f4").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("big-endian"), "{e}");
        let e = DType::parse("datetime64").unwrap_err();
        assert!(e.to_string().contains("unknown element type"), "{e}");
    }

    #[test]
    fn buffer_formats_from_exporters() {
        assert_eq!(DType::from_buffer_format("l", 8), Some(DType::Int64));
        assert_eq!(DType::from_buffer_format("<l", 4), Some(DType::Int32));
        assert_eq!(DType::from_buffer_format("L", 8), Some(DType::UInt64));
        assert_eq!(DType::from_buffer_format("@d", 8), Some(DType::Float64));
        assert_eq!(DType::from_buffer_format(">d", 8), None);
        assert_eq!(DType::from_buffer_format("d", 4), None);
        assert_eq!(DType::from_buffer_format("T{i:a:}", 4), None);
        assert_eq!(DType::from_buffer_format("", 1), None);
    }

    #[test]
    fn f16_known_values() {
        for (bits, value) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x7bff, 65504.0),
            (0x0001, 2f32.powi(-24)),
            (0x0400, 2f32.powi(-14)),
            (0x3555, 0.333_251_95),
            (0x0000, 0.0),
            (0x8000, -0.0),
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ] {
            assert_eq!(F16::from_bits(bits).to_f32().to_bits(), value.to_bits());
            assert_eq!(F16::from_f32(value).to_bits(), bits, "{value}");
        }
        assert!(F16::from_bits(0x7e00).to_f32().is_nan());
        assert!(F16::from_f32(f32::NAN).to_f32().is_nan());
        assert_eq!(F16::from_f32(0.1).to_bits(), 0x2e66);
        assert_eq!(F16::from_f32(65520.0).to_bits(), 0x7c00); // rounds up to infinity
        assert_eq!(F16::from_f32(65519.0).to_bits(), 0x7bff);
        assert_eq!(F16::from_f32(2f32.powi(-25)).to_bits(), 0); // tie to even: zero
        assert_eq!(F16::from_f32(2f32.powi(-25) * 1.5).to_bits(), 1);
        assert_eq!(F16::from_f32(1e-10).to_bits(), 0);
        // 1 + 2^-11 lies halfway between 1 and the next binary16: ties to even (1.0).
        assert_eq!(F16::from_f32(1.0 + 2f32.powi(-11)).to_bits(), 0x3c00);
        assert_eq!(F16::from_f32(1.0 + 3.0 * 2f32.powi(-11)).to_bits(), 0x3c02);
    }

    #[test]
    fn f16_round_trips_every_value() {
        for bits in 0..=u16::MAX {
            let h = F16::from_bits(bits);
            let f = h.to_f32();
            if f.is_nan() {
                assert!(F16::from_f32(f).to_f32().is_nan());
            } else {
                assert_eq!(F16::from_f32(f).to_bits(), bits, "{bits:#06x}");
            }
        }
    }

    #[test]
    fn bool_element_reads_any_byte() {
        assert!(!Bool(0).get());
        assert!(Bool(1).get());
        assert!(Bool(0xfe).get());
        assert_eq!(Bool::from(true), Bool(1));
    }
}
