//! Turning a connection's input into [`Request`]s: the head by `httparse`,
//! the body by `Content-Length`, every limit of [`HttpConfig`] checked.

use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::{HttpConfig, Request, Version};

/// Headers parsed into a stack array; only a larger
/// [`max_headers`](HttpConfig::max_headers) allocates.
const STACK_HEADERS: usize = 64;

/// What the input held.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A complete request, removed from the input.
    Request(Request),
    /// Not a whole request yet; wait for more input.
    Incomplete,
    /// The input cannot become an acceptable request: answer with this status
    /// and close.
    Reject(u16),
}

/// Parses the requests of one connection, in order, from its input buffer.
///
/// Keeps a parsed head while its body arrives, so a large body arriving over
/// many reads is not re-parsed each time.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// The client's address, stamped on every request.
    peer: SocketAddr,
    /// A complete head whose body is still arriving, with the body's length.
    pending: Option<(Request, usize)>,
    /// The pending request asked for `100 Continue` and has not had it yet.
    continue_due: bool,
    /// The header list of the last answered request, kept (empty) so that
    /// the next request does not allocate its own.
    spare: Vec<(Range<usize>, Range<usize>)>,
}

impl Decoder {
    /// A decoder for a fresh connection from `peer`.
    pub(crate) fn new(peer: SocketAddr) -> Self {
        Decoder {
            peer,
            pending: None,
            continue_due: false,
            spare: Vec::new(),
        }
    }

    /// Takes the next complete request from the front of `input`, if any.
    pub(crate) fn decode(&mut self, input: &mut BytesMut, config: &HttpConfig) -> Decoded {
        let (mut request, len) = match self.pending.take() {
            Some(pending) => pending,
            None => match self.head(input, config) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return Decoded::Incomplete,
                Err(status) => return Decoded::Reject(status),
            },
        };
        if input.len() < len {
            self.pending = Some((request, len));
            return Decoded::Incomplete;
        }
        self.continue_due = false;
        if len > 0 {
            request.body = input.split_to(len).freeze();
        }
        Decoded::Request(request)
    }

    /// Takes back an answered request's header list for reuse (leaving the
    /// request without headers).
    pub(crate) fn recycle(&mut self, request: &mut Request) {
        let mut headers = std::mem::take(&mut request.headers);
        headers.clear();
        self.spare = headers;
    }

    /// True while no head has been parsed for the next request: bytes in
    /// the input are (part of) a head.
    pub(crate) fn awaiting_head(&self) -> bool {
        self.pending.is_none()
    }

    /// True once, when the pending request expects `100 Continue` before
    /// sending its body.
    pub(crate) fn take_continue(&mut self) -> bool {
        std::mem::take(&mut self.continue_due)
    }

    /// Parses a head from the front of `input` and checks its framing:
    /// `Ok(None)` if incomplete, else the request (body still empty) and its
    /// body length, or the status to reject it with.
    fn head(&mut self, input: &mut BytesMut, config: &HttpConfig) -> Result<Option<(Request, usize)>, u16> {
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
        // Only the first `max_head` bytes are parsed: a head not complete
        // within them gets 431 whatever follows, so the status does not
        // depend on how much of the input had arrived.
        let window = &input[..input.len().min(config.max_head)];
        let mut parsed = httparse::Request::new(&mut []);
        let n = match parsed.parse_with_uninit_headers(window, slots) {
            Ok(httparse::Status::Complete(n)) => n,
            Err(httparse::Error::TooManyHeaders) => return Err(431),
            Ok(httparse::Status::Partial) if input.len() > config.max_head => return Err(431),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(400),
        };
        let base = input.as_ptr();
        let method = span(base, parsed.method.unwrap_or("").as_bytes());
        let target_text = parsed.path.unwrap_or("");
        let target = span(base, target_text.as_bytes());
        let query_at = target_text.find('?').map(|i| i + 1);
        let version = match parsed.version {
            Some(0) => Version::Http10,
            _ => Version::Http11,
        };
        // One pass records the headers and reads those the server acts on.
        let mut framing = Framing::default();
        let mut headers = std::mem::take(&mut self.spare);
        headers.extend(parsed.headers.iter().map(|h| {
            framing.see(h.name, h.value);
            (span(base, h.name.as_bytes()), span(base, h.value))
        }));
        let len = framing.body_length(config)?;
        self.continue_due = framing.expects_continue && len > input.len() - n && version == Version::Http11;
        let request = Request {
            head: input.split_to(n).freeze(),
            method,
            target,
            query_at,
            version,
            keep_alive: framing.keep_alive(version),
            headers,
            body: Bytes::new(),
            peer: self.peer,
        };
        Ok(Some((request, len)))
    }
}

/// What the server itself reads from a request's headers, gathered while
/// they are recorded: framing, `Expect` and `Connection`.
#[derive(Debug, Default)]
struct Framing {
    /// A `Transfer-Encoding` header was present.
    transfer_encoding: bool,
    /// The `Content-Length`, if any.
    length: Option<u64>,
    /// A `Content-Length` was malformed, or two disagreed.
    bad_length: bool,
    /// An `Expect: 100-continue` header was present.
    expects_continue: bool,
    /// A `Connection` header listed `close`.
    close: bool,
    /// A `Connection` header listed `keep-alive`.
    keep_alive: bool,
}

impl Framing {
    /// Takes note of one header.
    fn see(&mut self, name: &str, value: &[u8]) {
        // The length comparison turns most headers away at once.
        match name.len() {
            6 if name.eq_ignore_ascii_case("expect") => {
                self.expects_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
            10 if name.eq_ignore_ascii_case("connection") => {
                for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    self.close |= token.eq_ignore_ascii_case(b"close");
                    self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            14 if name.eq_ignore_ascii_case("content-length") => {
                let this = parse_length(value);
                self.bad_length |= this.is_none() || self.length.is_some_and(|that| Some(that) != this);
                self.length = this;
            }
            17 if name.eq_ignore_ascii_case("transfer-encoding") => self.transfer_encoding = true,
            _ => {}
        }
    }

    /// The body length the request declares, or the status refusing it:
    /// any `Transfer-Encoding` (chunked included) is 501, a malformed or
    /// conflicting `Content-Length` 400, one over the limit 413.
    fn body_length(&self, config: &HttpConfig) -> Result<usize, u16> {
        if self.transfer_encoding {
            return Err(501);
        }
        if self.bad_length {
            return Err(400);
        }
        match self.length.unwrap_or(0) {
            len if len > config.max_body as u64 => Err(413),
            len => Ok(len as usize),
        }
    }

    /// Whether the client wants the connection kept open: HTTP/1.1 unless
    /// `Connection` lists `close`; HTTP/1.0 only if it lists `keep-alive`.
    fn keep_alive(&self, version: Version) -> bool {
        match version {
            Version::Http11 => !self.close,
            Version::Http10 => self.keep_alive && !self.close,
        }
    }
}

/// A `Content-Length` value: ASCII digits only, no sign, no overflow.
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
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
mod tests {
    use super::*;
    use crate::fuzzing::{Outcome, decode_chunked};
    use proptest::prelude::*;

    /// The status `raw` is rejected with, if any, as `reject N`.
    fn rejection(raw: &str, config: &HttpConfig) -> Option<String> {
        match decode_chunked(raw.as_bytes(), &[], config).outcomes.pop() {
            Some(Outcome::Reject(status)) => Some(format!("reject {status}")),
            _ => None,
        }
    }

    #[test]
    fn each_limit_and_malformation_has_its_status() {
        let c = HttpConfig::default().max_head(64).max_body(10).max_headers(2);
        let reject = |raw: &str| rejection(raw, &c);
        assert_eq!(
            reject("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n").as_deref(),
            Some("reject 431")
        );
        assert_eq!(
            reject(&format!("GET /{} HTTP/1.1\r\n", "a".repeat(80))).as_deref(),
            Some("reject 431")
        );
        assert_eq!(
            reject("GET / HTTP/1.1\r\nContent-Length: 11\r\n\r\n").as_deref(),
            Some("reject 413")
        );
        assert_eq!(
            reject("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").as_deref(),
            Some("reject 400")
        );
        assert_eq!(
            reject("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").as_deref(),
            Some("reject 400")
        );
        assert_eq!(
            reject("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").as_deref(),
            Some("reject 501")
        );
        assert_eq!(reject("GET\0 / HTTP/1.1\r\n\r\n").as_deref(), Some("reject 400"));
        assert_eq!(reject("GET / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"), None);
        assert_eq!(
            reject("GET / HTTP/1.1\r\ncontent-length: 2\r\nContent-Length: 2\r\n\r\n"),
            None
        );
    }

    #[test]
    fn expect_continue_is_reported_once_while_the_body_is_missing() {
        let mut decoder = Decoder::new("127.0.0.1:1".parse().unwrap());
        let mut input = BytesMut::from("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        assert!(matches!(
            decoder.decode(&mut input, &HttpConfig::default()),
            Decoded::Incomplete
        ));
        assert!(decoder.take_continue());
        assert!(!decoder.take_continue());
        input.extend_from_slice(b"ok");
        assert!(matches!(
            decoder.decode(&mut input, &HttpConfig::default()),
            Decoded::Request(_)
        ));
    }

    #[test]
    fn a_malformed_head_past_max_head_gets_431_however_it_arrives() {
        // Found by fuzz/fuzz_targets/http_request.rs: the NUL lies past
        // max_head, so whole it got 400 and byte by byte 431.
        let c = HttpConfig::default().max_head(40);
        let raw = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nContent-Length: 5\0\r\n\r\n";
        let every: Vec<usize> = (1..raw.len()).collect();
        let reject = vec![Outcome::Reject(431)];
        assert_eq!(decode_chunked(raw, &[], &c).outcomes, reject);
        assert_eq!(decode_chunked(raw, &every, &c).outcomes, reject);
    }

    /// Pieces of HTTP/1.x, well-formed and not, that inputs are made of.
    const FRAGMENTS: &[&[u8]] = &[
        b"GET /a?b=c HTTP/1.1\r\n",
        b"POST / HTTP/1.0\r\n",
        b"HEAD /h HTTP/1.1\r\n",
        b"Host: h\r\n",
        b"Content-Length: 3\r\n",
        b"content-length: 03\r\n",
        b"Content-Length: 99999999999999999999999\r\n",
        b"Content-Length: +3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Expect: 100-continue\r\n",
        b"Connection: close, keep-alive\r\n",
        b"X: \x80\xff\r\n",
        b"\r\n",
        b"\r\n\r\n",
        b"abc",
        b"\0",
        b" ",
        b":",
    ];

    /// A connection's input made of [`FRAGMENTS`].
    fn input() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..24).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        /// The fuzz target's property, in the normal suite: whatever the
        /// bytes and limits, the requests and rejection are the same
        /// whole, in random pieces and a byte at a time (and every request
        /// keeps the limits, checked by `decode_chunked`).
        #[test]
        fn any_input_decodes_the_same_whole_in_pieces_and_byte_by_byte(
            raw in input(),
            mut cuts in proptest::collection::vec(0usize..600, 0..8),
            max_head in 8usize..400,
            max_headers in 1usize..8,
            max_body in 0usize..8,
        ) {
            let c = HttpConfig::default().max_head(max_head).max_headers(max_headers).max_body(max_body);
            cuts.sort_unstable();
            let every: Vec<usize> = (1..raw.len()).collect();
            let whole = decode_chunked(&raw, &[], &c);
            prop_assert_eq!(&decode_chunked(&raw, &cuts, &c), &whole);
            prop_assert_eq!(&decode_chunked(&raw, &every, &c), &whole);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 64 }))]

        #[test]
        fn pipelined_requests_decode_the_same_however_the_input_is_cut(
            mut cuts in proptest::collection::vec(0usize..400, 0..12)
        ) {
            let mut raw = Vec::new();
            for i in 0..6 {
                let body = "x".repeat(i * 3);
                raw.extend_from_slice(
                    format!("POST /r{i}?q={i} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                        .as_bytes(),
                );
            }
            cuts.sort_unstable();
            let cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(raw.len())).collect();
            let whole = decode_chunked(&raw, &[], &HttpConfig::default());
            prop_assert_eq!(whole.outcomes.len(), 6);
            prop_assert_eq!(decode_chunked(&raw, &cuts, &HttpConfig::default()), whole);
        }
    }
}
