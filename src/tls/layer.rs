//! The TLS layer: a [`Transport`] that wraps a driver's transport and
//! speaks TLS over it with rustls, which is sans-I/O, so that the session
//! reads and writes plaintext on either execution model.
//!
//! ```text
//!  session ──plaintext──► TlsLayer ──records──► driver's transport ──► socket
//!                          │ rustls Connection: handshake, encryption
//!                          │ held: records made and not yet written
//! ```
//!
//! * **read** — plaintext rustls already holds comes first; otherwise one
//!   read from the socket straight into rustls's buffer, processed, and its
//!   plaintext appended to the session's input. A read that brought only
//!   records for the layer (handshake, tickets) is `Again`, short when it
//!   drained the socket, so that a driver reads on as after data. The peer's `close_notify` is end of
//!   stream; a TCP end of stream without it is `Truncated`.
//! * **write** — the held records go first; once they are all written,
//!   plaintext from the session's queue is encrypted (at most
//!   [`BUFFER_LIMIT`] at a time) and the records written. What the socket
//!   does not take is held, and counts as output waiting.
//! * **failure** — a record that is not TLS, a refused handshake, an
//!   alert: the read fails with [`TlsFailure`], rustls's alert is held for
//!   the session to write, and from then on reads pass the socket's bytes
//!   through (a lingering close discards them) and nothing is encrypted.

use std::io::{self, BufRead};

use bytes::BytesMut;

use super::TlsInfo;
use crate::buf::OutputQueue;
use crate::close::TlsFailure;
use crate::session::{Read, Transport};

/// Most plaintext encrypted at once, and most records rustls buffers
/// before its handshake completes (`set_buffer_limit`): one full record.
/// Records are moved out of rustls as soon as they are made, so what a
/// connection holds in records is bounded by about this much more than the
/// plaintext it stands for.
pub(crate) const BUFFER_LIMIT: usize = 16 * 1024;

/// A connection's TLS state, kept by the driver beside its socket (boxed:
/// a plain connection pays one pointer for it).
#[derive(Debug)]
pub(crate) struct TlsState {
    /// rustls's side of the connection.
    conn: rustls::Connection,
    /// Records made by rustls and not yet written to the socket.
    held: OutputQueue,
    /// The last socket read came back short: the socket is drained.
    drained: bool,
    /// Our `close_notify` was queued.
    ended: bool,
    /// The protocol failed; nothing more is encrypted or decrypted.
    failed: bool,
    /// The server name an outbound connection was opened for.
    server_name: Option<String>,
}

impl TlsState {
    /// The TLS state of a new connection; `server_name` as given to an
    /// outbound one.
    pub(crate) fn new(mut conn: rustls::Connection, server_name: Option<String>) -> Box<Self> {
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        Box::new(TlsState {
            conn,
            held: OutputQueue::default(),
            drained: false,
            ended: false,
            failed: false,
            server_name,
        })
    }

    /// Records waiting for the socket.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// Frees the held queue's memory once it is all written, so that a
    /// connection between messages holds no record buffer.
    fn release_held(&mut self) {
        if self.held.is_empty() {
            self.held.clear();
        }
    }

    /// Moves the records rustls made into `held`.
    fn spill(&mut self) {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut Hold(&mut self.held)).is_err() {
                break; // `Hold` never fails; rustls has nothing else to say
            }
        }
    }

    /// Notes a protocol failure: rustls's alert is held for writing, and
    /// the error says what failed.
    fn fail(&mut self, err: impl std::fmt::Display) -> io::Error {
        self.failed = true;
        self.spill();
        io::Error::new(io::ErrorKind::InvalidData, TlsFailure(err.to_string()))
    }

    /// Moves the plaintext rustls holds to `input`. `None` if it holds none
    /// and the stream goes on; otherwise what the session is to see.
    fn take_plaintext(&mut self, input: &mut BytesMut, min_space: usize) -> Option<Read> {
        let mut n = 0;
        let mut reader = self.conn.reader();
        let end = loop {
            let chunk = match reader.fill_buf() {
                Ok([]) => break Read::Eof, // the peer's close_notify
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Read::Truncated,
                Err(_) => break Read::WouldBlock, // nothing yet
            };
            if input.capacity() - input.len() < chunk.len() {
                input.reserve(min_space.max(chunk.len()));
            }
            input.extend_from_slice(chunk);
            let k = chunk.len();
            reader.consume(k);
            n += k;
        };
        match (n, end) {
            (0, Read::WouldBlock) => None,
            // The end is seen on the next read, after this input.
            (0, end) => Some(end),
            (n, Read::WouldBlock) => Some(Read::Data {
                n,
                short: self.drained,
            }),
            (n, _) => Some(Read::Data { n, short: false }),
        }
    }
}

/// A [`TlsState`] lent to a driver's transport for one call into the
/// session: a [`Transport`] of plaintext.
#[derive(Debug)]
pub(crate) struct TlsLayer<'a, T> {
    /// The driver's transport.
    inner: T,
    /// The connection's TLS state.
    tls: &'a mut TlsState,
}

impl<'a, T: Transport> TlsLayer<'a, T> {
    /// Wraps `inner`; records rustls made outside a call (a client's hello)
    /// are held for writing.
    pub(crate) fn new(inner: T, tls: &'a mut TlsState) -> Self {
        tls.spill();
        TlsLayer { inner, tls }
    }
}

impl<T: Transport> Transport for TlsLayer<'_, T> {
    fn read(&mut self, input: &mut BytesMut, min_space: usize) -> io::Result<Read> {
        if self.tls.failed {
            return self.inner.read(input, min_space);
        }
        if let Some(read) = self.tls.take_plaintext(input, min_space) {
            return Ok(read);
        }
        let mut socket = Records {
            inner: &mut self.inner,
            short: false,
            failed: false,
        };
        let n = match self.tls.conn.read_tls(&mut socket) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::WouldBlock),
            Err(e) if socket.failed => return Err(e),
            // rustls's own refusal: a message too large for its buffer.
            Err(e) => return Err(self.tls.fail(e)),
        };
        self.tls.drained = socket.short || n == 0;
        if let Err(e) = self.tls.conn.process_new_packets() {
            return Err(self.tls.fail(e));
        }
        self.tls.spill();
        Ok(match self.tls.take_plaintext(input, min_space) {
            Some(read) => read,
            None => Read::Again {
                n,
                short: self.tls.drained,
            },
        })
    }

    fn read_slice(&mut self, buf: &mut [u8]) -> io::Result<Read> {
        self.inner.read_slice(buf)
    }

    fn write(&mut self, out: &mut OutputQueue) -> io::Result<usize> {
        if !self.tls.held.is_empty() {
            self.inner.write(&mut self.tls.held)?;
            if !self.tls.held.is_empty() {
                return Ok(0);
            }
        }
        if out.is_empty() || self.tls.failed {
            self.tls.release_held();
            return Ok(0);
        }
        let n = out.write_to(&mut self.tls.conn.writer())?;
        self.tls.spill();
        match self.inner.write(&mut self.tls.held) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => {
                self.tls.release_held();
                Ok(n)
            }
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.shutdown_write()
    }

    fn set_reset(&mut self) {
        self.inner.set_reset();
    }

    fn has_unread(&mut self) -> bool {
        let plaintext = matches!(self.tls.conn.reader().fill_buf(), Ok(chunk) if !chunk.is_empty());
        plaintext || self.inner.has_unread()
    }

    fn refresh(&self, now: &mut std::time::Instant) {
        self.inner.refresh(now);
    }

    fn want_writable(&mut self, want: bool) -> io::Result<()> {
        self.inner.want_writable(want)
    }

    fn held(&self) -> usize {
        self.tls.held.len()
    }

    fn handshaking(&self) -> bool {
        !self.tls.failed && self.tls.conn.is_handshaking()
    }

    fn end_output(&mut self) -> bool {
        if self.tls.ended || self.tls.failed {
            return false;
        }
        self.tls.ended = true;
        self.tls.conn.send_close_notify();
        self.tls.spill();
        !self.tls.held.is_empty()
    }

    fn tls_info(&self) -> Option<TlsInfo> {
        Some(TlsInfo::of(&self.tls.conn, self.tls.server_name.clone()))
    }
}

/// The socket as rustls reads it: one read of the driver's transport into
/// rustls's own buffer, noting whether it came back short and whether the
/// socket failed.
struct Records<'a, T> {
    /// The driver's transport.
    inner: &'a mut T,
    /// The read did not fill the buffer: the socket is drained.
    short: bool,
    /// The socket reported an error (as opposed to rustls refusing).
    failed: bool,
}

impl<T: Transport> io::Read for Records<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read_slice(buf) {
            Ok(Read::Data { n, short }) => {
                self.short = short;
                Ok(n)
            }
            Ok(Read::Eof | Read::Truncated) => Ok(0),
            Ok(Read::WouldBlock | Read::Again { .. }) => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

/// Appends rustls's records to the held queue; never refuses.
struct Hold<'a>(&'a mut OutputQueue);

impl io::Write for Hold<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push_copy(buf);
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        bufs.iter().for_each(|b| self.0.push_copy(b));
        Ok(bufs.iter().map(|b| b.len()).sum())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
