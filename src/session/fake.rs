//! A scripted socket for the session's property test: the peer's bytes
//! and FIN, reads of a chosen size, and a send buffer of a chosen room.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::{Read, Transport};
use crate::buf::OutputQueue;

/// A scripted socket.
#[derive(Debug, Default)]
pub(super) struct FakeSocket {
    /// Bytes the peer sent that were not read yet.
    pub(super) incoming: VecDeque<u8>,
    /// Everything the peer sent.
    pub(super) sent: Vec<u8>,
    /// The peer shut its write half.
    pub(super) fin: bool,
    /// Most bytes one read returns.
    pub(super) read_chunk: usize,
    /// Bytes the socket takes before it is full.
    pub(super) room: usize,
    /// Everything written to the socket.
    pub(super) written: Vec<u8>,
    /// Our write half was shut.
    pub(super) write_shut: bool,
    /// The close was made abortive.
    pub(super) reset: bool,
}

impl Transport for FakeSocket {
    fn read(&mut self, input: &mut BytesMut, min_space: usize) -> std::io::Result<Read> {
        if self.incoming.is_empty() {
            return Ok(if self.fin { Read::Eof } else { Read::WouldBlock });
        }
        let n = self.read_chunk.min(min_space).min(self.incoming.len()).max(1);
        input.extend(self.incoming.drain(..n));
        Ok(Read::Data {
            n,
            short: self.incoming.is_empty(),
        })
    }

    fn write(&mut self, out: &mut OutputQueue) -> std::io::Result<usize> {
        assert!(!self.write_shut, "wrote after shutting the write half");
        if self.room == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        out.write_to(&mut Taker(self))
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.write_shut = true;
        Ok(())
    }

    fn set_reset(&mut self) {
        self.reset = true;
    }

    fn has_unread(&mut self) -> bool {
        !self.incoming.is_empty()
    }
}

/// Lets the output queue write into the fake socket's room.
struct Taker<'a>(&'a mut FakeSocket);

impl std::io::Write for Taker<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.room);
        self.0.written.extend_from_slice(&buf[..n]);
        self.0.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
