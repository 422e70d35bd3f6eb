//! The connection's input as the decoder reads it: heads skipped as they
//! are read, cut off the buffer once per read.

use bytes::{Buf, BytesMut};

/// A connection's input as the decoder reads it: the heads it takes from
/// the front are only skipped, and cut off the buffer in one go when it is
/// next needed whole (a body split off, the input cleared) or when this is
/// dropped, so that a read bringing many pipelined requests moves the
/// buffer's start once, not once per request.
pub(crate) struct Input<'a> {
    /// The buffer, its first `taken` bytes read already.
    buf: &'a mut BytesMut,
    /// Bytes at the front of `buf` already read.
    taken: usize,
}

impl<'a> Input<'a> {
    /// `buf`, nothing read yet.
    pub(crate) fn new(buf: &'a mut BytesMut) -> Self {
        Input { buf, taken: 0 }
    }

    /// Bytes not yet read.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.taken
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes not yet read.
    pub(super) fn rest(&self) -> &[u8] {
        &self.buf[self.taken..]
    }

    /// The bytes not yet read, to be changed in place.
    pub(super) fn rest_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.taken..]
    }

    /// Reads `n` more bytes.
    pub(super) fn skip(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.taken += n;
    }

    /// The buffer, holding only the bytes not yet read.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        self.buf.advance(std::mem::take(&mut self.taken));
        self.buf
    }
}

impl Drop for Input<'_> {
    fn drop(&mut self) {
        self.buf.advance(self.taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_read_is_cut_off_when_the_buffer_is_needed_or_at_the_end() {
        let mut buf = BytesMut::from(&b"GET /a\r\n\r\nGET /b\r\n\r\nbody"[..]);
        {
            let mut input = Input::new(&mut buf);
            input.skip(10);
            assert_eq!(input.rest(), b"GET /b\r\n\r\nbody");
            assert_eq!(input.len(), 14);
            input.skip(10);
            // Asked for whole, the buffer holds only what is unread.
            assert_eq!(&input.buf()[..], b"body");
            assert_eq!(input.buf().split_to(2), &b"bo"[..]);
            input.skip(1);
            assert!(!input.is_empty());
        }
        assert_eq!(&buf[..], b"y", "dropped, the input cut off what it read");
    }
}
