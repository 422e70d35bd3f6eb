//! Entry points for the fuzz targets in `fuzz/` and the property tests:
//! thin drivers over crate-private logic, each checking that logic's
//! invariants as it goes and panicking when one breaks.
//!
//! Not part of the API: compiled only with the `fuzzing` feature (and in the
//! crate's own tests), hidden from the docs, free to change.
//!
//! * [`decode_chunked`] — the HTTP request decoder (parser, limits,
//!   bodies by length and chunked, pipelining) over input that arrives in
//!   pieces.
//! * [`drive_output`] — the output queue under a script of writes, aborts
//!   and socket writes that take any part of what they are offered.

use std::io::{self, IoSlice, Write};
use std::sync::OnceLock;

use bytes::Bytes;

use crate::buf::OutputQueue;

#[cfg(feature = "http")]
pub use self::http::{Decoding, Outcome, decode_chunked};

/// One step of an [`OutputQueue`] script.
#[derive(Debug, Clone)]
pub enum Op {
    /// `Conn::write`: appends a copy of `len` bytes.
    Copy(usize),
    /// `Conn::write_bytes`: appends `len` bytes without copying.
    Share(usize),
    /// One write to a socket that takes at most this many bytes; 0 means the
    /// socket answers `WouldBlock`.
    Write(usize),
    /// One write to a socket that fails with `EINTR`.
    Interrupted,
    /// `Conn::abort`: drops everything queued.
    Clear,
}

/// Runs `ops` against an [`OutputQueue`] and a model of it (a plain byte
/// queue), then drains what is left through writes of at most `drain_limit`
/// bytes (at least 1). Returns every byte the socket received, in order.
///
/// Payloads are consecutive stretches of a pseudo-random byte stream whose
/// period is 65,521 bytes, so lost, doubled or reordered bytes show.
///
/// # Panics
///
/// When the queue disagrees with the model: its length, the bytes a write
/// takes, or what a failed write consumed.
pub fn drive_output(ops: &[Op], drain_limit: usize) -> Vec<u8> {
    drive_output_inspecting(ops, drain_limit, |_, _| {})
}

/// [`drive_output`], showing the queue to `inspect` after each step (and
/// each write of the final drain), for the queue's own tests to check what
/// only it can see.
pub(crate) fn drive_output_inspecting(
    ops: &[Op],
    drain_limit: usize,
    mut inspect: impl FnMut(&Op, &OutputQueue),
) -> Vec<u8> {
    let mut queue = OutputQueue::default();
    let mut model = Model::default();
    let mut socket = Socket {
        offer: Offer::Take(0),
        got: Vec::new(),
    };
    for op in ops {
        match *op {
            Op::Copy(len) => queue.push_copy(model.push(len)),
            Op::Share(len) => queue.push_bytes(Bytes::copy_from_slice(model.push(len))),
            Op::Write(limit) => write_once(&mut queue, &mut model, &mut socket, Offer::Take(limit)),
            Op::Interrupted => write_once(&mut queue, &mut model, &mut socket, Offer::Interrupted),
            Op::Clear => {
                queue.clear();
                model.clear();
            }
        }
        assert_eq!(queue.len(), model.len(), "queued length after {op:?}");
        assert_eq!(queue.is_empty(), model.len() == 0);
        inspect(op, &queue);
    }
    let drain = Op::Write(drain_limit.max(1));
    while model.len() > 0 {
        write_once(
            &mut queue,
            &mut model,
            &mut socket,
            Offer::Take(drain_limit.max(1)),
        );
        inspect(&drain, &queue);
    }
    socket.got
}

/// Writes `queue` once to `socket` and checks the result against `model`.
fn write_once(queue: &mut OutputQueue, model: &mut Model, socket: &mut Socket, offer: Offer) {
    socket.offer = offer;
    let before = socket.got.len();
    match queue.write_to(socket) {
        Ok(n) => {
            assert!(n <= model.len(), "wrote {n} of {} queued bytes", model.len());
            assert_eq!(&socket.got[before..], model.take(n), "bytes written");
        }
        Err(e) => {
            assert_eq!(socket.got.len(), before, "a failed write took bytes");
            assert!(matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ));
        }
    }
    assert_eq!(queue.len(), model.len(), "queued length after a write");
}

/// Period of the payload stream: a prime, so that it lines up with no
/// power-of-two size the queue might favour.
const STREAM_PERIOD: usize = 65_521;

/// What the queue should hold, as one byte vector and a read position
/// (copies and compares stay `memcpy`s, which keeps the fuzzer fast).
#[derive(Debug, Default)]
struct Model {
    /// Bytes queued since the last clear; those before `start` are written.
    bytes: Vec<u8>,
    /// How many of `bytes` have been written.
    start: usize,
    /// Where the next payload starts in the stream.
    next: usize,
}

impl Model {
    /// Bytes queued and not yet written.
    fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// Queues the next `len` bytes of the stream and returns them.
    fn push(&mut self, len: usize) -> &[u8] {
        let stream = stream();
        let from = self.bytes.len();
        let mut left = len;
        while left > 0 {
            let at = self.next % STREAM_PERIOD;
            let n = left.min(STREAM_PERIOD - at);
            self.bytes.extend_from_slice(&stream[at..at + n]);
            self.next += n;
            left -= n;
        }
        &self.bytes[from..]
    }

    /// Marks the first `n` queued bytes written and returns them.
    fn take(&mut self, n: usize) -> &[u8] {
        self.start += n;
        &self.bytes[self.start - n..self.start]
    }

    /// Drops everything queued.
    fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }
}

/// The payload stream's one period, made once (xorshift64, eight bytes a
/// step).
fn stream() -> &'static [u8] {
    static STREAM: OnceLock<Vec<u8>> = OnceLock::new();
    STREAM.get_or_init(|| {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut bytes = Vec::with_capacity(STREAM_PERIOD + 8);
        while bytes.len() < STREAM_PERIOD {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        bytes.truncate(STREAM_PERIOD);
        bytes
    })
}

/// What the fake socket does with the next write.
#[derive(Debug, Clone, Copy)]
enum Offer {
    /// Takes at most this many bytes; 0 means `WouldBlock`.
    Take(usize),
    /// Fails with `Interrupted`.
    Interrupted,
}

/// A socket that takes what its [`Offer`] allows and records it.
#[derive(Debug)]
struct Socket {
    /// What the next write may do.
    offer: Offer,
    /// Every byte taken, in order.
    got: Vec<u8>,
}

impl Socket {
    /// The byte limit of this write, or its error.
    fn limit(&self) -> io::Result<usize> {
        match self.offer {
            Offer::Take(0) => Err(io::ErrorKind::WouldBlock.into()),
            Offer::Take(limit) => Ok(limit),
            Offer::Interrupted => Err(io::ErrorKind::Interrupted.into()),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut left = self.limit()?;
        let start = self.got.len();
        for buf in bufs {
            let n = buf.len().min(left);
            self.got.extend_from_slice(&buf[..n]);
            left -= n;
        }
        Ok(self.got.len() - start)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "http")]
mod http {
    //! The HTTP decoder driver.

    use std::net::SocketAddr;

    use bytes::BytesMut;

    use crate::http::decode::{Decoded, Decoder};
    use crate::http::{HttpConfig, Request};

    /// What the decoder made of one request.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Outcome {
        /// A request, as the application sees it.
        Request {
            /// Method, target and version, space-separated.
            line: String,
            /// Path and query as `Request::path` and `Request::query` split them.
            parts: (String, Option<String>),
            /// Every header, in order.
            headers: Vec<(String, Vec<u8>)>,
            /// The body.
            body: Vec<u8>,
            /// `Request::keep_alive`.
            keep_alive: bool,
        },
        /// Refused with this status; the connection would close.
        Reject(u16),
    }

    /// Everything decoded from one connection's input.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Decoding {
        /// Each request or the rejection that ended the input, in order.
        pub outcomes: Vec<Outcome>,
        /// Bytes left in the input, waiting for more (none after a rejection).
        pub left: usize,
    }

    /// Decodes `input` as one connection's bytes, arriving in pieces that
    /// end at each of `cuts` (clamped, in the order given) and then at the
    /// end, decoding after each piece as the HTTP handler does.
    ///
    /// # Panics
    ///
    /// When a request breaks a limit of `config` or its own framing: a head
    /// over `max_head`, more than `max_headers` headers, a body over
    /// `max_body` or that is not its `Content-Length`, `Transfer-Encoding`
    /// beside `Content-Length`.
    pub fn decode_chunked(input: &[u8], cuts: &[usize], config: &HttpConfig) -> Decoding {
        let mut decoder = Decoder::new(SocketAddr::from(([127, 0, 0, 1], 1)), None);
        let mut buffer = BytesMut::new();
        let mut outcomes = Vec::new();
        let mut at = 0;
        for end in cuts.iter().map(|&c| c.min(input.len())).chain([input.len()]) {
            if end <= at {
                continue;
            }
            buffer.extend_from_slice(&input[at..end]);
            at = end;
            loop {
                match decoder.decode(&mut buffer, config) {
                    Decoded::Request(request) => {
                        outcomes.push(check(&request, config));
                        decoder.recycle(request);
                    }
                    Decoded::Incomplete => break,
                    // Only with bodies in pieces, which this driver does not ask for.
                    Decoded::Streamed(_) | Decoded::Piece(..) => {
                        panic!("a body in pieces that was not asked for")
                    }
                    Decoded::Reject(refusal) => {
                        outcomes.push(Outcome::Reject(refusal.status));
                        return Decoding { outcomes, left: 0 };
                    }
                }
            }
        }
        Decoding {
            outcomes,
            left: buffer.len(),
        }
    }

    /// Checks `request` against `config` and its own framing, and reads it
    /// through every accessor.
    fn check(request: &Request, config: &HttpConfig) -> Outcome {
        assert!(request.head.len() <= config.max_head, "head over max_head");
        assert!(request.headers.len() <= config.max_headers, "too many headers");
        assert!(request.body.len() <= config.max_body, "body over max_body");
        let declared = request
            .header("content-length")
            .map(|v| v.trim().parse::<usize>());
        let chunked = request.header_bytes("transfer-encoding").is_some();
        match declared {
            Some(_) if chunked => panic!("accepted Transfer-Encoding beside Content-Length"),
            Some(Ok(len)) => assert_eq!(request.body.len(), len, "body is not its Content-Length"),
            Some(Err(_)) => panic!("accepted a malformed Content-Length"),
            None if chunked => {}
            None => assert!(request.body.is_empty(), "a body without Content-Length"),
        }
        let target = request.target();
        let (path, query) = (request.path(), request.query());
        assert_eq!(query.is_some(), target.contains('?'));
        assert!(
            path == "/" || target.contains(path),
            "path {path:?} not in {target:?}"
        );
        assert!(
            request.version() == crate::http::Version::Http10 || request.host().is_some(),
            "an HTTP/1.1 request without a host"
        );
        Outcome::Request {
            line: format!("{} {} {}", request.method(), target, request.version()),
            parts: (path.to_owned(), query.map(str::to_owned)),
            headers: request
                .headers()
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect(),
            body: request.body().to_vec(),
            keep_alive: request.keep_alive(),
        }
    }
}
