//! Turning a connection's input into [`Request`]s: the head by `httparse`,
//! the body by `Content-Length` or the chunked coding, every limit of
//! [`HttpConfig`] checked.

use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::chunked::{ChunkError, ChunkLimits, Dechunker};
use super::discard::Rest;
use super::framing::{BodyKind, Framing, KnownHost, Refusal};
use super::head::{self, Line};
use super::target::{lower_minor_version, path_start};
use super::{HttpConfig, Request, Version};

mod input;

pub(crate) use input::Input;

/// Headers parsed into a stack array; only a larger
/// [`max_headers`](HttpConfig::max_headers) allocates.
const STACK_HEADERS: usize = 64;

/// What the input held. [`Decoder::decode`] hands the request over
/// (`R` = [`Request`]); [`Decoder::next`] leaves it in the decoder
/// (`R` = `()`), to be read with [`Decoder::request`].
#[derive(Debug)]
pub(crate) enum Decoded<R = Request> {
    /// A complete request, removed from the input.
    Request(R),
    /// Not a whole request yet; wait for more input.
    Incomplete,
    /// The input cannot become an acceptable request: answer with this
    /// status, read past what the client still sends, and close.
    Reject(Refusal),
    /// A request whose body follows in pieces ([`Decoded::Piece`]), its
    /// head removed from the input.
    Streamed(R),
    /// A piece of the body of the last [`Decoded::Streamed`] request (maybe
    /// empty), and whether it is the last.
    Piece(Bytes, bool),
}

/// A body being received.
#[derive(Debug)]
enum Body {
    /// This many bytes, taken from the input in one piece once all are in.
    Length(usize),
    /// A chunked body: its decoder, and the data decoded so far.
    Chunked(Dechunker, BytesMut),
    /// A body handed over in pieces as they arrive.
    Streamed(Streamed),
}

/// A body handed over in pieces.
#[derive(Debug)]
enum Streamed {
    /// This many bytes still to come.
    Length(u64),
    /// A chunked body, from where this decoder stands.
    Chunked(Dechunker),
}

/// Head buffers up to this capacity are kept for the next request; a
/// larger one (a rare long head) is freed once its request is answered.
const HEAD_RETAINED: usize = 2048;

/// Parses the requests of one connection, in order, from its input buffer.
///
/// The request is parsed into storage the decoder keeps and reuses (the
/// head's bytes and the header list), so that a request answered at once
/// is neither allocated nor moved: [`next`](Decoder::next) leaves it in
/// place for [`request`](Decoder::request), and [`done`](Decoder::done)
/// lets go of its body. [`take_request`](Decoder::take_request) hands it
/// over instead, to an application that answers later.
///
/// Keeps a parsed head while its body arrives, so a large body arriving over
/// many reads is not re-parsed each time; a chunked body is decoded as it
/// arrives, so the input holds no more than the part of a chunk not yet
/// seen.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// The request being decoded or last decoded; its body empty while
    /// [`Decoder::body`] is `Some`.
    request: Request,
    /// Bodies larger than this are handed over in pieces
    /// ([`HttpConfig::stream_bodies_over`], for applications that can
    /// take them).
    stream_over: Option<usize>,
    /// The body of a complete head, still arriving; `None` while the next
    /// head is awaited.
    body: Option<Body>,
    /// The body being handed over in pieces.
    streaming: Option<Streamed>,
    /// The pending request asked for `100 Continue` and has not had it yet.
    continue_due: bool,
    /// The last `Host` value found valid.
    known_host: KnownHost,
}

impl Decoder {
    /// A decoder for a fresh connection from `peer`, handing bodies over
    /// `stream_over` bytes (and chunked ones) over in pieces if set.
    pub(crate) fn new(peer: SocketAddr, stream_over: Option<usize>) -> Self {
        Decoder {
            request: Request::empty(peer),
            stream_over,
            body: None,
            streaming: None,
            continue_due: false,
            known_host: KnownHost::default(),
        }
    }

    /// Takes the next complete request from the front of `input`, if any,
    /// and hands it over (for the tests and the fuzzing driver).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn decode(&mut self, input: &mut BytesMut, config: &HttpConfig) -> Decoded {
        match self.next(&mut Input::new(input), config) {
            Decoded::Request(()) => Decoded::Request(self.take_request()),
            Decoded::Streamed(()) => Decoded::Streamed(self.take_request()),
            Decoded::Incomplete => Decoded::Incomplete,
            Decoded::Reject(refusal) => Decoded::Reject(refusal),
            Decoded::Piece(piece, last) => Decoded::Piece(piece, last),
        }
    }

    /// Takes the next complete request from the front of `input`, if any,
    /// leaving it in the decoder: [`request`](Self::request) reads it,
    /// [`take_request`](Self::take_request) takes it.
    pub(crate) fn next(&mut self, input: &mut Input<'_>, config: &HttpConfig) -> Decoded<()> {
        if let Some(streamed) = self.streaming.take() {
            return self.piece(input.buf(), config, streamed);
        }
        if self.body.is_none() {
            match self.head(input, config) {
                Ok(true) => {}
                Ok(false) => return Decoded::Incomplete,
                Err(refusal) => return Decoded::Reject(refusal),
            }
        }
        // The usual case first: a body of known length (most often none)
        // that has arrived.
        if let Some(Body::Length(len)) = self.body {
            if input.len() < len {
                return Decoded::Incomplete;
            }
            if len > 0 {
                self.request.body = input.buf().split_to(len).freeze();
            }
            self.body = None;
            self.continue_due = false;
            return Decoded::Request(());
        }
        let body = match self.body.take() {
            None | Some(Body::Length(_)) => Bytes::new(),
            Some(Body::Chunked(mut dechunker, mut data)) => {
                let limits = ChunkLimits {
                    body: config.max_body as u64,
                    trailers: config.max_head,
                };
                match dechunker.decode(input.buf(), limits, |piece| append(&mut data, piece)) {
                    Ok(true) => data.freeze(),
                    Ok(false) => {
                        self.body = Some(Body::Chunked(dechunker, data));
                        return Decoded::Incomplete;
                    }
                    Err(e) => return Decoded::Reject(chunk_refusal(e, dechunker)),
                }
            }
            Some(Body::Streamed(Streamed::Length(0))) => Bytes::new(),
            Some(Body::Streamed(streamed)) => {
                // A `100 Continue` due is still sent: the body is to come.
                self.streaming = Some(streamed);
                return Decoded::Streamed(());
            }
        };
        self.continue_due = false;
        self.request.body = body;
        Decoded::Request(())
    }

    /// The request [`next`](Self::next) found.
    #[inline]
    pub(crate) fn request(&self) -> &Request {
        &self.request
    }

    /// Hands over the request [`next`](Self::next) found; the next one is
    /// parsed into fresh storage.
    pub(crate) fn take_request(&mut self) -> Request {
        let peer = self.request.peer;
        std::mem::replace(&mut self.request, Request::empty(peer))
    }

    /// Lets go of the body of the request [`next`](Self::next) found, once
    /// it is answered (and of a head buffer grown past
    /// [`HEAD_RETAINED`]).
    #[inline]
    pub(crate) fn done(&mut self) {
        if !self.request.body.is_empty() {
            self.request.body = Bytes::new();
        }
        if self.request.head.capacity() > HEAD_RETAINED {
            self.request.head = Vec::new();
        }
    }

    /// Takes back a request handed over by [`decode`](Self::decode), once
    /// answered, to parse the next one into its storage.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn recycle(&mut self, request: Request) {
        self.request = request;
        self.done();
    }

    /// The next piece of a body handed over in pieces.
    fn piece(&mut self, input: &mut BytesMut, config: &HttpConfig, streamed: Streamed) -> Decoded<()> {
        match streamed {
            Streamed::Length(left) => {
                if input.is_empty() {
                    self.streaming = Some(Streamed::Length(left));
                    return Decoded::Incomplete;
                }
                // At most `input.len()`, a usize.
                let n = left.min(input.len() as u64) as usize;
                let last = n as u64 == left;
                if !last {
                    self.streaming = Some(Streamed::Length(left - n as u64));
                }
                Decoded::Piece(input.split_to(n).freeze(), last)
            }
            Streamed::Chunked(mut dechunker) => {
                let limits = ChunkLimits {
                    body: u64::MAX,
                    trailers: config.max_head,
                };
                let mut data = BytesMut::new();
                match dechunker.decode(input, limits, |piece| append(&mut data, piece)) {
                    Ok(false) if data.is_empty() => {
                        self.streaming = Some(Streamed::Chunked(dechunker));
                        Decoded::Incomplete
                    }
                    Ok(done) => {
                        if !done {
                            self.streaming = Some(Streamed::Chunked(dechunker));
                        }
                        Decoded::Piece(data.freeze(), done)
                    }
                    Err(e) => Decoded::Reject(chunk_refusal(e, dechunker)),
                }
            }
        }
    }

    /// True while no head has been parsed for the next request: bytes in
    /// the input are (part of) a head.
    pub(crate) fn awaiting_head(&self) -> bool {
        self.body.is_none() && self.streaming.is_none()
    }

    /// True once, when the pending request expects `100 Continue` before
    /// sending its body.
    pub(crate) fn take_continue(&mut self) -> bool {
        std::mem::take(&mut self.continue_due)
    }

    /// Parses a head from the front of `input` and checks it: `Ok(false)`
    /// if incomplete; else `Ok(true)`, the request (body still empty) in
    /// `request` and how its body is framed in `body`; or the refusal. A
    /// version `httparse` refuses is looked at once more (see
    /// [`lower_minor_version`]).
    fn head(&mut self, input: &mut Input<'_>, config: &HttpConfig) -> Result<bool, Refusal> {
        match self.parse_head(input, config) {
            Err(Malformed::Version) => {
                let window = input.len().min(config.max_head);
                lower_minor_version(&mut input.rest_mut()[..window]).map_err(Refusal::bare)?;
                self.parse_head(input, config).map_err(Malformed::refusal)
            }
            result => result.map_err(Malformed::refusal),
        }
    }

    /// [`head`](Self::head), once.
    fn parse_head(&mut self, input: &mut Input<'_>, config: &HttpConfig) -> Result<bool, Malformed> {
        // Only the first `max_head` bytes are parsed: a head not complete
        // within them gets 431 whatever follows, so the status does not
        // depend on how much of the input had arrived.
        let rest = input.rest();
        let window = &rest[..rest.len().min(config.max_head)];
        let headers = &mut self.request.headers;
        headers.clear();
        // One pass records the headers and reads those the server acts on.
        let mut framing = Framing::default();
        let line = match head::parse(window, config.max_headers, headers, &mut framing) {
            Some(line) => line,
            None => {
                headers.clear();
                framing = Framing::default();
                match parse_generally(window, input.len(), config, headers, &mut framing)? {
                    Some(line) => line,
                    None => return Ok(false),
                }
            }
        };
        let refuse = |status| Err(Malformed::Refused(Refusal::bare(status)));
        let (method_text, target_text) = (&window[line.method.clone()], &window[line.target.clone()]);
        let path_at = match path_start(method_text, target_text) {
            Ok(at) => at,
            Err(status) => return refuse(status),
        };
        let query_at = target_text.iter().position(|&b| b == b'?').map(|i| i + 1);
        let (version, n) = (line.version, line.len);
        if let Err(status) = framing.host(version, &mut self.known_host) {
            return refuse(status);
        }
        let body_arrived = input.len() > n;
        let expects_continue = framing.expects_continue && version == Version::Http11;
        // A body that may stream is judged by its size only once it is known
        // not to.
        let limit = if self.stream_over.is_some() {
            u64::MAX
        } else {
            config.max_body as u64
        };
        let body = match framing.body(version, limit) {
            Ok(BodyKind::Chunked) if self.stream_over.is_some() => {
                Body::Streamed(Streamed::Chunked(Dechunker::default()))
            }
            Ok(BodyKind::Chunked) => Body::Chunked(Dechunker::default(), BytesMut::new()),
            Ok(BodyKind::Length(len)) if self.stream_over.is_some_and(|over| len > over as u64) => {
                Body::Streamed(Streamed::Length(len))
            }
            Ok(BodyKind::Length(len)) if len > config.max_body as u64 => {
                let refusal = Refusal {
                    status: 413,
                    rest: Rest::Length(len),
                };
                if expects_continue && !body_arrived {
                    return refuse(413);
                }
                input.skip(n);
                return Err(Malformed::Refused(refusal));
            }
            // Within max_body, a usize.
            Ok(BodyKind::Length(len)) => Body::Length(len as usize),
            // Told no before it sent the body, a client expecting 100
            // Continue does not send it.
            Err(refusal) if expects_continue && !body_arrived => return refuse(refusal.status),
            Err(refusal) => {
                // The head is part of the request the refusal answers; what
                // follows it is the rest to skip.
                input.skip(n);
                return Err(Malformed::Refused(refusal));
            }
        };
        let has_body = !matches!(body, Body::Length(0));
        self.continue_due = expects_continue && has_body && !body_arrived;
        let request = &mut self.request;
        request.method = line.method;
        request.target = line.target;
        request.path_at = path_at;
        request.query_at = query_at;
        request.version = version;
        request.keep_alive = framing.keep_alive(version);
        request.pieces = None;
        // The head is copied out rather than split off: a small copy costs
        // less than sharing the input buffer, which also stays whole for
        // the next read.
        request.head.clear();
        request.head.extend_from_slice(&input.rest()[..n]);
        input.skip(n);
        self.body = Some(body);
        Ok(true)
    }
}

/// Parses a head at the start of `window` (the first `max_head` bytes of
/// `input_len`) with `httparse`, for a head that [`head::parse`] did not
/// take: `Ok(None)` if incomplete; else its request line, its headers
/// pushed onto `headers`, each seen by `framing`.
fn parse_generally<'a>(
    window: &'a [u8],
    input_len: usize,
    config: &HttpConfig,
    headers: &mut Vec<(Range<usize>, Range<usize>)>,
    framing: &mut Framing<'a>,
) -> Result<Option<Line>, Malformed> {
    // Uninitialised slots: httparse writes those it fills, and filling
    // 64 empty headers per request would cost more than parsing them.
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = if config.max_headers <= STACK_HEADERS {
        &mut stack[..config.max_headers]
    } else {
        heap.resize_with(config.max_headers, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut parsed = httparse::Request::new(&mut []);
    let refuse = |status| Err(Malformed::Refused(Refusal::bare(status)));
    let len = match parsed.parse_with_uninit_headers(window, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Err(httparse::Error::TooManyHeaders) => return refuse(431),
        Ok(httparse::Status::Partial) if input_len > config.max_head => return refuse(431),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Version) => return Err(Malformed::Version),
        Err(_) => return refuse(400),
    };
    let base = window.as_ptr();
    headers.extend(parsed.headers.iter().map(|h| {
        framing.see(h.name.as_bytes(), h.value);
        (span(base, h.name.as_bytes()), span(base, h.value))
    }));
    Ok(Some(Line {
        method: span(base, parsed.method.unwrap_or("").as_bytes()),
        target: span(base, parsed.path.unwrap_or("").as_bytes()),
        version: match parsed.version {
            Some(0) => Version::Http10,
            _ => Version::Http11,
        },
        len,
    }))
}

/// Why one parse of a head failed.
#[derive(Debug)]
enum Malformed {
    /// `httparse` refused the version; [`lower_minor_version`] decides.
    Version,
    /// Refused for good.
    Refused(Refusal),
}

impl Malformed {
    /// The refusal, a version `httparse` refused twice being malformed.
    fn refusal(self) -> Refusal {
        match self {
            Malformed::Version => Refusal::bare(400),
            Malformed::Refused(refusal) => refusal,
        }
    }
}

/// Adds a decoded piece to a chunked body: the first without copying.
fn append(data: &mut BytesMut, piece: BytesMut) {
    if data.is_empty() {
        *data = piece;
    } else {
        data.extend_from_slice(&piece);
    }
}

/// The refusal of a chunked body that went wrong; past the body limit the
/// rest is still well framed and can be skipped.
fn chunk_refusal(error: ChunkError, dechunker: Dechunker) -> Refusal {
    let (status, rest) = match error {
        ChunkError::TooLarge => (413, Rest::Chunked(dechunker)),
        ChunkError::TrailersTooLarge => (431, Rest::Unknown),
        ChunkError::Malformed => (400, Rest::Unknown),
    };
    Refusal { status, rest }
}

/// Where `part`, a slice of the buffer starting at `base`, lies within it.
fn span(base: *const u8, part: &[u8]) -> Range<usize> {
    if part.is_empty() {
        return 0..0;
    }
    let start = part.as_ptr() as usize - base as usize;
    start..start + part.len()
}

#[cfg(test)]
mod tests;
