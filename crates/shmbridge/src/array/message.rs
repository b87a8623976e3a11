//! Arrays in channel messages (`docs/SPEC.md` 7.6): a message whose `msg_flags` has `ARRAY`
//! starts with an array header (SPEC 7), its data following in the same slot.
//!
//! A writer loans a slot for an array ([`ChannelWriter::loan_array`]): the header is written
//! into the slot at once, the caller fills the data in place through a typed or raw view, and
//! the publish sets the `ARRAY` flag with the message length the header's `total_len`. A
//! reader asks a message for its header ([`Message::array_header`]) or a typed view in place
//! ([`Message::array`]): both check the flag, then the header against the message's length
//! (SPEC 7.2 with `L` = the message length), before anything is viewed.

use super::dtype::{DType, Element};
use super::header::{ArrayHeader, Order, MAX_HEADER_LEN};
use super::view::{ArrayView, ArrayViewMut};
use crate::channel::{msg_flags, ChannelWriter, Message, RawLoan, Received};
use crate::error::{Error, ErrorKind, Result};
use crate::sync::Wait;

/// A slot loaned for an array, not borrowing its writer (for the fronts); see
/// [`ChannelWriter::loan_array_raw`]. The header is already in the slot.
#[derive(Debug)]
pub struct RawArrayLoan {
    loan: RawLoan,
    header: ArrayHeader,
}

impl RawArrayLoan {
    /// The loan underneath (its pointer is the header's start).
    #[must_use]
    pub fn raw(&self) -> &RawLoan {
        &self.loan
    }

    /// The array header written in the slot.
    #[must_use]
    pub fn header(&self) -> &ArrayHeader {
        &self.header
    }

    /// The first byte of the data area, in the slot (64-byte aligned).
    #[must_use]
    pub fn data_ptr(&self) -> *mut u8 {
        // SAFETY: the header and its data fit in the loan (checked when it was made).
        unsafe {
            self.loan
                .as_mut_ptr()
                .add(self.header.data_offset() as usize)
        }
    }

    /// Length of the data area.
    #[must_use]
    pub fn data_len(&self) -> usize {
        self.header.data_len() as usize
    }

    /// The plain loan and the header, for a front that keeps them apart: publish the loan
    /// with [`ChannelWriter::publish_raw`], `len` = the header's `total_len` and message
    /// flag [`msg_flags::ARRAY`].
    #[must_use]
    pub fn into_parts(self) -> (RawLoan, ArrayHeader) {
        (self.loan, self.header)
    }
}

/// A slot loaned for an array; see [`ChannelWriter::loan_array`]. Dropping it without
/// [`publish`](Self::publish) gives the slot back.
#[derive(Debug)]
pub struct ArrayLoan<'w> {
    writer: &'w mut ChannelWriter,
    raw: RawArrayLoan,
    published: bool,
}

impl ArrayLoan<'_> {
    fn raw(&self) -> &RawArrayLoan {
        &self.raw
    }

    /// The array header written in the slot.
    #[must_use]
    pub fn header(&self) -> &ArrayHeader {
        &self.raw().header
    }

    /// The data area's bytes, for filling in place.
    #[must_use]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let raw = self.raw();
        // SAFETY: the slot is claimed (no reader takes it) and this loan's `&mut self` is its
        // only user; the data area lies inside the slot.
        unsafe { std::slice::from_raw_parts_mut(raw.data_ptr(), raw.data_len()) }
    }

    /// A writable typed view of the array in the slot.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when `T` is not the element type.
    pub fn view_mut<T: Element>(&mut self) -> Result<ArrayViewMut<'_, T>> {
        let raw = self.raw();
        let len = raw.header.total_len() as usize;
        // SAFETY: as in `data_mut`, over the header and the data area.
        let buf = unsafe { std::slice::from_raw_parts_mut(raw.loan.as_mut_ptr(), len) };
        ArrayViewMut::new(buf)
    }

    /// The elements as a slice of `T`s in memory order (a loan made from a shape and a
    /// dtype is contiguous).
    ///
    /// # Errors
    ///
    /// As [`view_mut`](Self::view_mut); [`ErrorKind::Unsupported`] for a layout that is not
    /// contiguous.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T]> {
        let h = self.raw().header.clone();
        if !(h.is_c_contiguous() || h.is_f_contiguous()) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the array is not contiguous: use view_mut",
            ));
        }
        self.view_mut::<T>()?;
        let start = self.raw().data_ptr();
        // SAFETY: T is the element type and the data area aligned (checked by view_mut); the
        // `len` contiguous elements from `origin` lie inside it.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(
                start.add(h.origin() as usize).cast::<T>(),
                h.len() as usize,
            )
        })
    }

    /// Publish the array as the next message, with `tag`. Returns its sequence number.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] after the channel was closed (the slot goes back).
    pub fn publish(mut self, tag: u32) -> Result<u64> {
        let seq = self.writer.publish_array_raw(&self.raw, tag)?;
        self.published = true;
        Ok(seq)
    }
}

impl Drop for ArrayLoan<'_> {
    fn drop(&mut self) {
        if !self.published {
            let _ = self.writer.discard_array_raw(&self.raw);
        }
    }
}

/// Write `header` at the start of a claimed slot, the magic last after a release fence.
fn put_header(loan: &RawLoan, header: &ArrayHeader) {
    let bytes = header.encode();
    // SAFETY: the slot is claimed by this writer and holds at least `total_len >= header_len`
    // bytes (checked by the caller); nobody else touches it until it is published.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr().add(8),
            loan.as_mut_ptr().add(8),
            bytes.len() - 8,
        );
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), loan.as_mut_ptr(), 8);
    }
}

impl ChannelWriter {
    /// Loan a slot for a C-order array of `dtype` and `shape` (waiting as `wait` allows when
    /// none is free, as [`loan`](Self::loan)), with its header already written in the slot.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for more than 32 dimensions or a shape that overflows;
    /// [`ErrorKind::OutOfBounds`] when the header and data exceed `max_message`; as
    /// [`loan`](Self::loan).
    pub fn loan_array(
        &mut self,
        shape: &[u64],
        dtype: DType,
        wait: &mut Wait<'_>,
    ) -> Result<ArrayLoan<'_>> {
        let header = ArrayHeader::new(dtype, shape, Order::C).map_err(|e| self.about(e))?;
        self.loan_array_with(&header, wait)
    }

    /// As [`loan_array`](Self::loan_array), for any validated header (F order, general
    /// strides).
    ///
    /// # Errors
    ///
    /// As [`loan_array`](Self::loan_array).
    pub fn loan_array_with(
        &mut self,
        header: &ArrayHeader,
        wait: &mut Wait<'_>,
    ) -> Result<ArrayLoan<'_>> {
        let raw = self.loan_array_raw(header, wait)?;
        Ok(ArrayLoan {
            writer: self,
            raw,
            published: false,
        })
    }

    /// As [`loan_array_with`](Self::loan_array_with), a loan that does not borrow the writer
    /// (for the fronts). Give it back with [`publish_array_raw`](Self::publish_array_raw) or
    /// [`discard_array_raw`](Self::discard_array_raw).
    ///
    /// # Errors
    ///
    /// As [`loan_array`](Self::loan_array).
    pub fn loan_array_raw(
        &mut self,
        header: &ArrayHeader,
        wait: &mut Wait<'_>,
    ) -> Result<RawArrayLoan> {
        let len = self.array_len(header)?;
        let loan = self.loan_raw(len, wait)?;
        put_header(&loan, header);
        Ok(RawArrayLoan {
            loan,
            header: header.clone(),
        })
    }

    /// As [`loan_array_raw`](Self::loan_array_raw), without waiting: `Ok(None)` when no slot
    /// can be claimed right now.
    ///
    /// # Errors
    ///
    /// As [`loan_array`](Self::loan_array), without the waiting ones.
    pub fn try_loan_array_raw(&mut self, header: &ArrayHeader) -> Result<Option<RawArrayLoan>> {
        let len = self.array_len(header)?;
        Ok(self.try_loan_raw(len)?.map(|loan| {
            put_header(&loan, header);
            RawArrayLoan {
                loan,
                header: header.clone(),
            }
        }))
    }

    /// Publish an array loan as the next message (length: the header's `total_len`, flag
    /// `ARRAY`), with `tag`. On an error the loan stays outstanding.
    ///
    /// # Errors
    ///
    /// As [`publish_raw`](Self::publish_raw).
    pub fn publish_array_raw(&mut self, loan: &RawArrayLoan, tag: u32) -> Result<u64> {
        self.publish_raw(
            &loan.loan,
            loan.header.total_len() as usize,
            tag,
            msg_flags::ARRAY,
        )
    }

    /// Give an array loan's slot back unpublished.
    ///
    /// # Errors
    ///
    /// As [`discard_raw`](Self::discard_raw).
    pub fn discard_array_raw(&mut self, loan: &RawArrayLoan) -> Result<()> {
        self.discard_raw(&loan.loan)
    }

    fn array_len(&self, header: &ArrayHeader) -> Result<usize> {
        let total = header.total_len();
        if total > self.max_message() {
            return Err(self.about(Error::new(
                ErrorKind::OutOfBounds,
                format!(
                    "an array message of {total} bytes ({} {:?}: {} bytes of header, {} of \
                     data) is larger than the channel's max_message of {}",
                    header.dtype(),
                    header.shape(),
                    header.data_offset(),
                    header.data_len(),
                    self.max_message()
                ),
            )));
        }
        Ok(total as usize)
    }

    fn about(&self, e: Error) -> Error {
        e.with_segment(self.framed().name())
    }
}

/// The array header of a received message, checked against its length: `msg` must have the
/// `ARRAY` flag, and its header every rule of SPEC 7.2 with `L` = the message length.
/// `channel` names the channel in errors.
///
/// # Errors
///
/// [`ErrorKind::InvalidArgument`] when the message has no array header (its `ARRAY` flag is
/// clear); otherwise as [`ArrayHeader::decode`], naming the channel and the message.
///
/// # Safety
///
/// `msg` must be held by the caller's reader (not released), so its bytes are mapped and not
/// reused.
pub unsafe fn received_header(msg: &Received, channel: &str) -> Result<ArrayHeader> {
    if msg.flags & msg_flags::ARRAY == 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "message {} carries no array header (its ARRAY flag is clear; it is {} raw \
                 bytes)",
                msg.seq, msg.len
            ),
        )
        .with_segment(channel));
    }
    let take = msg.len.min(MAX_HEADER_LEN);
    // SAFETY: the caller holds the message, so its `len` bytes are mapped and stay put.
    let bytes = unsafe { std::slice::from_raw_parts(msg.as_ptr(), take) };
    ArrayHeader::decode(bytes, msg.len as u64).map_err(|e| {
        let detail = format!("message {}: {}", msg.seq, e.detail());
        Error::new(e.kind(), detail).with_segment(channel)
    })
}

impl Message<'_> {
    /// The message's array header, checked against its length (see [`received_header`]).
    ///
    /// # Errors
    ///
    /// As [`received_header`].
    pub fn array_header(&self) -> Result<ArrayHeader> {
        // SAFETY: `self` holds the message.
        unsafe { received_header(self.info(), self.reader().framed().name()) }
    }

    /// A typed view of the message's array in place, valid while the message is held.
    ///
    /// # Errors
    ///
    /// As [`array_header`](Self::array_header); [`ErrorKind::InvalidArgument`] when `T` is
    /// not the element type.
    pub fn array<T: Element>(&self) -> Result<ArrayView<'_, T>> {
        self.array_header()?;
        ArrayView::new(self.bytes()).map_err(|e| e.with_segment(self.reader().framed().name()))
    }

    /// The message's array header and its data area's bytes, in place.
    ///
    /// # Errors
    ///
    /// As [`array_header`](Self::array_header).
    pub fn array_bytes(&self) -> Result<(ArrayHeader, &[u8])> {
        let h = self.array_header()?;
        let start = h.data_offset() as usize;
        let end = start + h.data_len() as usize;
        Ok((h, &self.bytes()[start..end]))
    }
}
