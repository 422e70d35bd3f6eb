//! [`Exchange`]: the [`Handler`] of one client request, which sends it once
//! connected, reads the response as it arrives (a body by length, chunked
//! or to the end of the stream, every size bounded), and leaves the
//! outcome for the caller.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::chunked::{ChunkError, ChunkLimits, Dechunker};
use super::client_response::{BodyFraming, ClientResponse, Head, invalid};
use crate::{CloseReason, Conn, Handler};

/// Largest response head accepted; as generous as common servers' limits.
const MAX_HEAD: usize = 64 * 1024;

/// Where the exchange's result is left for the caller; the loop runs on the
/// caller's thread, so no lock is needed.
pub(crate) type Outcome = Rc<RefCell<Option<io::Result<ClientResponse>>>>;

/// What an [`Exchange`] reads next.
#[derive(Debug)]
enum Reading {
    /// The head (interim 1xx heads are skipped).
    Head,
    /// A body of this many bytes.
    Length(usize),
    /// A chunked body: the decoder and the data so far.
    Chunked(Dechunker, BytesMut),
    /// A body that ends with the stream.
    ToEnd,
}

/// The handler of one request: sends it once connected, gathers the
/// response, and leaves the outcome for the caller.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The request's bytes, sent in `on_open`.
    pub(crate) request: Bytes,
    /// The request was `HEAD`: the response has no body whatever it says.
    pub(crate) head_request: bool,
    /// The server's address, for error messages.
    pub(crate) addr: SocketAddr,
    /// The whole exchange's time limit, for error messages.
    pub(crate) timeout: Duration,
    /// When the exchange times out, connecting included.
    pub(crate) deadline: Instant,
    /// Largest body accepted (decoded, for chunked).
    pub(crate) max_body: usize,
    /// The result, set once: the first outcome wins.
    pub(crate) outcome: Outcome,
}

/// An [`Exchange`] with its reading state, as the loop drives it.
#[derive(Debug)]
pub(crate) struct Running {
    /// What was asked.
    exchange: Exchange,
    /// Received bytes not yet part of the response.
    buf: BytesMut,
    /// The final response's head, once parsed.
    head: Option<Head>,
    /// What is read next.
    reading: Reading,
}

impl Exchange {
    /// Ready to run on a loop.
    pub(crate) fn start(self) -> Running {
        Running {
            exchange: self,
            buf: BytesMut::new(),
            head: None,
            reading: Reading::Head,
        }
    }
}

impl Running {
    /// Records the outcome unless one is already recorded.
    fn settle(&self, result: io::Result<ClientResponse>) {
        self.exchange.outcome.borrow_mut().get_or_insert(result);
    }

    /// Parses what has arrived; ends the exchange once the response is
    /// complete (closing the connection) or wrong (aborting it).
    fn advance(&mut self, conn: &mut Conn<'_>, eof: bool) {
        match self.try_complete(eof) {
            Ok(None) => {}
            Ok(Some(response)) => {
                self.settle(Ok(response));
                conn.close();
            }
            Err(e) => {
                self.settle(Err(e));
                conn.abort();
            }
        }
    }

    /// The response, once complete; `eof` says no more bytes will come.
    fn try_complete(&mut self, eof: bool) -> io::Result<Option<ClientResponse>> {
        let max_body = self.exchange.max_body;
        let body = match &mut self.reading {
            Reading::Head => return self.read_head(eof),
            Reading::Length(len) if self.buf.len() >= *len => self.buf.split_to(*len).freeze(),
            Reading::Length(_) if eof => return Err(early_eof("the response body")),
            Reading::Chunked(dechunker, data) => {
                let limits = ChunkLimits {
                    body: max_body as u64,
                    trailers: MAX_HEAD,
                };
                let done = dechunker
                    .decode(&mut self.buf, limits, |piece| data.extend_from_slice(&piece))
                    .map_err(|e| chunk_error(e, max_body))?;
                match () {
                    _ if done => std::mem::take(data).freeze(),
                    _ if eof => return Err(early_eof("the chunked response body")),
                    _ => return Ok(None),
                }
            }
            Reading::ToEnd if self.buf.len() > max_body => return Err(too_large(max_body)),
            Reading::ToEnd if eof => self.buf.split().freeze(),
            _ => return Ok(None),
        };
        Ok(self.head.take().map(|head| head.into_response(body)))
    }

    /// Reads the final response's head (skipping interim ones), then as
    /// much of the body as has arrived.
    fn read_head(&mut self, eof: bool) -> io::Result<Option<ClientResponse>> {
        loop {
            match Head::parse(&self.buf)? {
                Some((head, len)) => {
                    self.buf.advance(len);
                    if !head.is_interim() {
                        self.reading = self.body_reading(&head)?;
                        self.head = Some(head);
                        return self.try_complete(eof);
                    }
                }
                None if self.buf.len() > MAX_HEAD => {
                    return Err(invalid(format!("response head over {MAX_HEAD} bytes")));
                }
                None if eof => return Err(early_eof("the response head")),
                None => return Ok(None),
            }
        }
    }

    /// How the body after `head` is read.
    fn body_reading(&self, head: &Head) -> io::Result<Reading> {
        let max_body = self.exchange.max_body;
        Ok(match head.framing(self.exchange.head_request)? {
            BodyFraming::Length(len) if len > max_body as u64 => return Err(too_large(max_body)),
            // Within max_body, a usize.
            BodyFraming::Length(len) => Reading::Length(len as usize),
            BodyFraming::Chunked => Reading::Chunked(Dechunker::default(), BytesMut::new()),
            BodyFraming::Close => Reading::ToEnd,
        })
    }

    /// The error for a connection that closed with no outcome yet.
    fn close_error(&self, reason: &CloseReason) -> io::Error {
        let (addr, timeout) = (self.exchange.addr, self.exchange.timeout);
        match reason {
            CloseReason::ConnectRefused => io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("connection to {addr} refused"),
            ),
            CloseReason::ConnectTimeout => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {addr} took over {timeout:?}"),
            ),
            CloseReason::Reset => io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("connection to {addr} reset"),
            ),
            CloseReason::Tls => io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "TLS with {addr} failed (a certificate not trusted for the host, or a protocol error)"
                ),
            ),
            CloseReason::HandshakeTimeout => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the TLS handshake with {addr} took over {timeout:?}"),
            ),
            CloseReason::Error(kind) => io::Error::new(*kind, format!("connection to {addr}: {reason}")),
            other => io::Error::other(format!("connection to {addr} closed: {other}")),
        }
    }
}

impl Handler for Running {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.write_bytes(self.exchange.request.clone());
        conn.set_timer(self.exchange.deadline.saturating_duration_since(Instant::now()));
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        self.buf.unsplit(input.split());
        self.advance(conn, false);
    }

    fn on_eof(&mut self, conn: &mut Conn<'_>, _: &mut BytesMut) {
        self.advance(conn, true);
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, _: crate::TimerId) {
        let msg = format!(
            "no complete response from {} within {:?}",
            self.exchange.addr, self.exchange.timeout
        );
        self.settle(Err(io::Error::new(io::ErrorKind::TimedOut, msg)));
        conn.abort();
    }

    fn on_close(&mut self, reason: &CloseReason) {
        let err = self.close_error(reason);
        self.settle(Err(err));
    }
}

/// The error for a body over `max_body`.
fn too_large(max_body: usize) -> io::Error {
    invalid(format!("response body over the {max_body} byte limit"))
}

/// The error for a chunked body that cannot be decoded.
fn chunk_error(error: ChunkError, max_body: usize) -> io::Error {
    match error {
        ChunkError::TooLarge => too_large(max_body),
        ChunkError::TrailersTooLarge => invalid(format!("response trailers over {MAX_HEAD} bytes")),
        ChunkError::Malformed => invalid("malformed chunked response body".into()),
    }
}

/// An `UnexpectedEof` error: the server closed before `what` was complete.
fn early_eof(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the server closed the connection before {what} was complete"),
    )
}
