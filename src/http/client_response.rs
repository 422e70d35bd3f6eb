//! [`ClientResponse`]: a response as [`get`](super::get) returns it, and the
//! parsing of its head.

use std::fmt;
use std::io;

use bytes::Bytes;

/// Most headers a response head may carry.
const MAX_HEADERS: usize = 64;

/// An HTTP response received by [`get`](super::get): status, headers and
/// body, all owned, so nothing of the connection outlives the call.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// use evloop::http::{HttpServer, Response};
///
/// let server = HttpServer::new("127.0.0.1:0".parse().unwrap())
///     .threads(1)
///     .start(|_| Response::text("Hello world!"))?;
/// let url = format!("http://{}/", server.local_addr());
/// let response = evloop::http::get(&url, Duration::from_secs(5))?;
/// assert_eq!((response.status(), response.reason()), (200, "OK"));
/// assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
/// assert_eq!(&response.body()[..], b"Hello world!");
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientResponse {
    /// Status code.
    status: u16,
    /// Reason phrase as sent.
    reason: String,
    /// Headers in the order received, names as sent.
    headers: Vec<(String, Bytes)>,
    /// The body, framed by `Content-Length`, the chunked coding (decoded),
    /// or the end of the stream.
    body: Bytes,
}

impl fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientResponse")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers.len())
            .field("body", &self.body.len())
            .finish()
    }
}

impl ClientResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase, as the server sent it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The first header named `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first header named `name` (case-insensitive), as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header, in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter().map(|(n, v)| (n.as_str(), &v[..]))
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body, taken out of the response.
    pub fn into_body(self) -> Bytes {
        self.body
    }
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    /// Status code.
    pub(crate) status: u16,
    /// Reason phrase.
    reason: String,
    /// Headers, owned.
    headers: Vec<(String, Bytes)>,
}

impl Head {
    /// Parses a head from the start of `buf`: `None` if incomplete, else
    /// the head and its length.
    ///
    /// # Errors
    ///
    /// `InvalidData` for a malformed head or one with too many headers.
    pub(crate) fn parse(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(invalid(format!("malformed response head: {e}"))),
        };
        let head = Head {
            status: response.code.unwrap_or_default(),
            reason: response.reason.unwrap_or_default().to_owned(),
            headers: response
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), Bytes::copy_from_slice(h.value)))
                .collect(),
        };
        Ok(Some((head, len)))
    }

    /// An interim (1xx) response, to be skipped; `101` is final.
    pub(crate) fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// How the body of this response is delimited (RFC 9112 §6.3), the
    /// request having been `HEAD` if `head_request`.
    ///
    /// # Errors
    ///
    /// `InvalidData` for a `Content-Length` that is not a number, or two
    /// that disagree.
    pub(crate) fn framing(&self, head_request: bool) -> io::Result<BodyFraming> {
        if head_request || matches!(self.status, 101 | 204 | 304) || self.is_interim() {
            return Ok(BodyFraming::Length(0));
        }
        let mut codings = self.values("transfer-encoding").peekable();
        if codings.peek().is_some() {
            // Transfer-Encoding overrides Content-Length; a body whose last
            // coding is not chunked runs to the end of the stream.
            let last = codings
                .flat_map(|v| v.split(|&b| b == b','))
                .map(<[u8]>::trim_ascii)
                .filter(|c| !c.is_empty())
                .last();
            let chunked = last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
            return Ok(if chunked {
                BodyFraming::Chunked
            } else {
                BodyFraming::Close
            });
        }
        let mut length = None;
        for value in self.values("content-length") {
            let this = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| invalid("malformed Content-Length in the response".into()))?;
            if length.is_some_and(|that| that != this) {
                return Err(invalid("conflicting Content-Lengths in the response".into()));
            }
            length = Some(this);
        }
        Ok(length.map_or(BodyFraming::Close, BodyFraming::Length))
    }

    /// Makes the response with `body`.
    pub(crate) fn into_response(self, body: Bytes) -> ClientResponse {
        ClientResponse {
            status: self.status,
            reason: self.reason,
            headers: self.headers,
            body,
        }
    }

    /// Every value of header `name`, in order, trimmed.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim_ascii())
    }
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// Exactly this many bytes.
    Length(u64),
    /// The chunked coding.
    Chunked,
    /// Everything until the server closes.
    Close,
}

/// An `InvalidData` error with `msg`.
pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_head_is_none_and_complete_head_is_parsed() {
        assert!(Head::parse(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc";
        let (head, len) = Head::parse(raw).unwrap().unwrap();
        assert_eq!((head.status, len), (404, raw.len() - 3));
        assert_eq!(head.framing(false).unwrap(), BodyFraming::Length(3));
    }

    /// The framing of a response whose head is `raw`.
    fn framing(raw: &str, head_request: bool) -> io::Result<BodyFraming> {
        Head::parse(raw.as_bytes())
            .unwrap()
            .unwrap()
            .0
            .framing(head_request)
    }

    #[test]
    fn malformed_head_and_length_are_invalid_data() {
        let err = Head::parse(b"HTTP/1.1 2x0 OK\r\n\r\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert_eq!(
                framing(raw, false).unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "{raw}"
            );
        }
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        let chunked = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(framing(chunked, false).unwrap(), BodyFraming::Chunked);
        assert_eq!(framing(chunked, true).unwrap(), BodyFraming::Length(0));
        let gzip = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        assert_eq!(framing(gzip, false).unwrap(), BodyFraming::Close);
        assert_eq!(
            framing("HTTP/1.0 200 OK\r\n\r\n", false).unwrap(),
            BodyFraming::Close
        );
        for status in ["204 No Content", "304 Not Modified"] {
            let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 9\r\n\r\n");
            assert_eq!(framing(&raw, false).unwrap(), BodyFraming::Length(0));
        }
    }
}
