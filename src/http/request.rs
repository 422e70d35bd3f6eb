//! [`Request`]: one parsed HTTP/1.x request, head and body.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::upload::{Pipe, RequestBody};

/// The protocol version of a request.
///
/// # Examples
///
/// ```
/// use evloop::http::{Request, Response, Version};
///
/// fn app(req: &Request) -> Response {
///     match req.version() {
///         Version::Http11 => Response::text("hello"),
///         Version::Http10 => Response::text("hello, old client"),
///     }
/// }
/// # let _ = app;
/// assert_eq!(Version::Http11.to_string(), "HTTP/1.1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response unless the request
    /// asks for `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: the connection stays open unless either side says
    /// `Connection: close`.
    Http11,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        })
    }
}

/// One HTTP request: method, target, version, headers and body.
///
/// The head is kept as the bytes that arrived, copied once into a buffer
/// that the connection reuses, and every part of it is a range into them;
/// the body is a
/// [`Bytes`](https://docs.rs/bytes/1/bytes/struct.Bytes.html) cut from the
/// connection's input, also without copying (a chunked body is copied once,
/// to join its chunks).
///
/// Header lookup is case-insensitive and returns the first header of that
/// name; [`headers`](Request::headers) yields all of them in arrival order.
///
/// # Examples
///
/// An application routes on the method and path, reads the query, and is
/// called with every request a client sends:
///
/// ```
/// use std::time::Duration;
///
/// use evloop::http::{HttpServer, Request, Response};
///
/// fn app(req: &Request) -> Response {
///     match (req.method(), req.path()) {
///         ("GET", "/hello") => Response::text(format!("hello {}", req.query().unwrap_or("world"))),
///         _ => Response::new(404),
///     }
/// }
///
/// let server = HttpServer::new("127.0.0.1:0".parse().unwrap()).threads(1).start(app)?;
/// let url = format!("http://{}/hello?you", server.local_addr());
/// let response = evloop::http::get(&url, Duration::from_secs(5))?;
/// assert_eq!(&response.body()[..], b"hello you");
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Request {
    /// The head as received: request line and headers, up to the blank line.
    /// Reused from request to request of a connection by its decoder.
    pub(crate) head: Vec<u8>,
    /// The method within `head`.
    pub(crate) method: Range<usize>,
    /// The request target (path and query) within `head`.
    pub(crate) target: Range<usize>,
    /// Where the path starts within `target`'s text: 0, or past the
    /// authority of an absolute-form target.
    pub(crate) path_at: usize,
    /// Where the query starts within `target`'s text (after `?`), if any.
    pub(crate) query_at: Option<usize>,
    /// The version.
    pub(crate) version: Version,
    /// What [`Request::keep_alive`] answers, read from the head once.
    pub(crate) keep_alive: bool,
    /// Each header's name and value, as ranges within `head`.
    pub(crate) headers: Vec<(Range<usize>, Range<usize>)>,
    /// The body: `Content-Length` bytes, or a chunked body decoded.
    pub(crate) body: Bytes,
    /// Where the body arrives instead, in pieces, for a body over
    /// [`HttpConfig::stream_bodies_over`](super::HttpConfig::stream_bodies_over).
    pub(crate) pieces: Option<Arc<Pipe>>,
    /// The client's address.
    pub(crate) peer: SocketAddr,
}

impl Request {
    /// An empty request from `peer`: the storage a decoder parses into.
    pub(crate) fn empty(peer: SocketAddr) -> Self {
        Request {
            head: Vec::new(),
            method: 0..0,
            target: 0..0,
            path_at: 0,
            query_at: None,
            version: Version::Http11,
            keep_alive: true,
            headers: Vec::new(),
            body: Bytes::new(),
            pieces: None,
            peer,
        }
    }

    /// The method, e.g. `GET`, as sent (methods are case-sensitive).
    pub fn method(&self) -> &str {
        self.text(&self.method)
    }

    /// The request target as sent: usually path and query, e.g.
    /// `/search?q=rust`; in absolute form (as sent to proxies) with scheme
    /// and authority before them, e.g. `http://example.com/search?q=rust`;
    /// `*` for a server-wide `OPTIONS`.
    pub fn target(&self) -> &str {
        self.text(&self.target)
    }

    /// The path: the target's path up to the first `?`, e.g. `/search`
    /// (`/` for an absolute-form target with an empty path, `*` for
    /// `OPTIONS *`). Not percent-decoded.
    pub fn path(&self) -> &str {
        let target = self.target();
        let end = self.query_at.map_or(target.len(), |at| at - 1);
        match &target[self.path_at..end] {
            "" => "/",
            path => path,
        }
    }

    /// The host the request is for: the authority of an absolute-form
    /// target, which RFC 9112 §3.2.2 says takes precedence, else the `Host`
    /// header (which every HTTP/1.1 request has); `None` for an HTTP/1.0
    /// request without either.
    pub fn host(&self) -> Option<&str> {
        super::target::authority(self.target(), self.path_at).or_else(|| self.header("host"))
    }

    /// The query: what follows the first `?` of the target, e.g. `q=rust`;
    /// `None` without a `?`. Not percent-decoded.
    pub fn query(&self) -> Option<&str> {
        self.query_at.map(|at| &self.target()[at..])
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The value of the first header named `name` (compared ignoring ASCII
    /// case), if it is present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The raw value of the first header named `name` (compared ignoring
    /// ASCII case).
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.header_values(name).next()
    }

    /// Every header as `(name, value)`, in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers
            .iter()
            .map(|(name, value)| (self.text(name), &self.head[value.clone()]))
    }

    /// The body: exactly `Content-Length` bytes, or a chunked body
    /// decoded (its framing, extensions and trailers removed), or empty.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body in pieces as they arrive, for a request whose body is
    /// larger than [`HttpConfig::stream_bodies_over`](super::HttpConfig::stream_bodies_over)
    /// (or chunked, when that is set), handed to a deferring application
    /// ([`HttpServer::start_deferred`](super::HttpServer::start_deferred))
    /// as soon as its head is complete; [`body`](Request::body) is then
    /// empty. `None` for a body that came whole, and after the first call
    /// (there is one reader; clones of the request share it).
    pub fn body_reader(&self) -> Option<RequestBody> {
        self.pieces.as_ref().and_then(Pipe::reader)
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the client wants the connection kept open after the response:
    /// HTTP/1.1 unless a `Connection` header lists `close`; HTTP/1.0 only if
    /// one lists `keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Values of every header named `name`, in order.
    pub(crate) fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        self.headers
            .iter()
            .filter(move |(n, _)| self.head[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &self.head[v.clone()])
    }

    /// A part of the head known to be UTF-8 (httparse checked method, target
    /// and header names to be ASCII tokens).
    fn text(&self, range: &Range<usize>) -> &str {
        std::str::from_utf8(&self.head[range.clone()]).unwrap_or("")
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &self.headers.len())
            .field("body", &self.body.len())
            .field("in_pieces", &self.pieces.is_some())
            .field("peer", &self.peer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpConfig;
    use crate::http::decode::{Decoded, Decoder};
    use bytes::BytesMut;
    use proptest::prelude::*;

    /// Parses one complete request; an HTTP/1.1 one without `Host` gets
    /// `Host: h` as its first header, as it must have one.
    fn parse(raw: &str) -> Request {
        let raw = if raw.to_ascii_lowercase().contains("\r\nhost:") {
            raw.to_owned()
        } else {
            raw.replacen("HTTP/1.1\r\n", "HTTP/1.1\r\nHost: h\r\n", 1)
        };
        let mut input = BytesMut::from(&raw[..]);
        let mut decoder = Decoder::new("127.0.0.1:1".parse().unwrap(), None);
        match decoder.decode(&mut input, &HttpConfig::default()) {
            Decoded::Request(req) => req,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn header_lookup_ignores_case_and_returns_the_first() {
        let req = parse("GET / HTTP/1.1\r\nX-Thing: one\r\nhost: h\r\nx-thing: two\r\n\r\n");
        assert_eq!(req.header("x-THING"), Some("one"));
        assert_eq!(req.header("Host"), Some("h"));
        assert_eq!(req.header("missing"), None);
        let all: Vec<_> = req.headers().map(|(n, v)| (n.to_owned(), v.to_vec())).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2], ("x-thing".to_owned(), b"two".to_vec()));
    }

    #[test]
    fn target_splits_into_path_and_query_at_the_first_question_mark() {
        let req = parse("GET /a/b?x=1?y HTTP/1.1\r\n\r\n");
        assert_eq!(
            (req.method(), req.path(), req.query()),
            ("GET", "/a/b", Some("x=1?y"))
        );
        assert_eq!(req.target(), "/a/b?x=1?y");
        let req = parse("GET /plain HTTP/1.1\r\n\r\n");
        assert_eq!((req.path(), req.query()), ("/plain", None));
        let req = parse("GET /empty? HTTP/1.1\r\n\r\n");
        assert_eq!((req.path(), req.query()), ("/empty", Some("")));
    }

    #[test]
    fn an_absolute_form_target_gives_its_path_and_its_authority_as_host() {
        let req = parse("GET http://example.com:8080/a/b?c HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!((req.path(), req.query()), ("/a/b", Some("c")));
        assert_eq!(req.host(), Some("example.com:8080"));
        let req = parse("GET http://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!((req.path(), req.query()), ("/", Some("q")));
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: h:1\r\n\r\n").host(), Some("h:1"));
        assert_eq!(parse("GET / HTTP/1.0\r\n\r\n").host(), None);
        assert_eq!(parse("OPTIONS * HTTP/1.1\r\n\r\n").path(), "*");
    }

    #[test]
    fn keep_alive_follows_version_and_connection_tokens() {
        assert!(parse("GET / HTTP/1.1\r\n\r\n").keep_alive());
        assert!(!parse("GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n").keep_alive());
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(parse("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n").keep_alive());
        assert!(!parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n").keep_alive());
    }

    #[test]
    fn body_is_exactly_content_length_bytes() {
        let req = parse("POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(&req.body()[..], b"hello");
        assert_eq!(req.version(), Version::Http11);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        #[test]
        fn any_target_splits_at_its_first_question_mark(target in "/[a-z0-9?=&%/.-]{0,24}") {
            let req = parse(&format!("GET {target} HTTP/1.1\r\n\r\n"));
            prop_assert_eq!(req.target(), &target);
            match target.split_once('?') {
                Some((path, query)) => prop_assert_eq!((req.path(), req.query()), (path, Some(query))),
                None => prop_assert_eq!((req.path(), req.query()), (&target[..], None)),
            }
        }

        #[test]
        fn header_lookup_in_any_case_finds_the_first_of_that_name(
            headers in proptest::collection::vec(("[a-cA-C]{1,2}", "[ -~]{0,6}"), 1..8),
            pick in any::<proptest::sample::Index>(),
        ) {
            let mut raw = String::from("GET / HTTP/1.1\r\n");
            for (name, value) in &headers {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            let req = parse(&(raw + "\r\n"));
            let name = &headers[pick.index(headers.len())].0;
            let first = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).unwrap();
            prop_assert_eq!(req.header(&name.to_ascii_uppercase()), Some(first.1.trim()));
            prop_assert_eq!(req.headers().count(), headers.len() + 1);
        }
    }
}
