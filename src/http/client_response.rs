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
    /// The body, framed by `Content-Length` or by the end of the stream.
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

    /// The body's length if the head frames it; `None` means it runs to the
    /// end of the stream.
    ///
    /// # Errors
    ///
    /// `Unsupported` for a `Transfer-Encoding` (chunked bodies are not
    /// decoded); `InvalidData` for a `Content-Length` that is not a number.
    pub(crate) fn body_len(&self) -> io::Result<Option<usize>> {
        if matches!(self.status, 101 | 204 | 304) {
            return Ok(Some(0));
        }
        if self.value("transfer-encoding").is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "responses with a Transfer-Encoding (chunked) are not supported",
            ));
        }
        let Some(value) = self.value("content-length") else {
            return Ok(None);
        };
        std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| invalid("malformed Content-Length in the response".into()))
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

    /// The first value of header `name`.
    fn value(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }
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
        assert_eq!(head.body_len().unwrap(), Some(3));
    }

    #[test]
    fn malformed_head_and_length_are_invalid_data() {
        let err = Head::parse(b"HTTP/1.1 2x0 OK\r\n\r\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let (head, _) = Head::parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.body_len().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn chunked_is_unsupported_and_no_length_reads_to_eof() {
        let (chunked, _) = Head::parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(chunked.body_len().unwrap_err().kind(), io::ErrorKind::Unsupported);
        let (plain, _) = Head::parse(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(plain.body_len().unwrap(), None);
    }
}
