//! How a [`Response`] goes on the wire: its head written into the
//! connection's output, the small body behind it, and the commonest
//! response (`200 OK`, plain text or no type) from fixed-size blocks.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Response, TEXT_PLAIN};
use crate::http::date::HttpDate;

/// Bodies up to this size are copied behind the head, so a small response
/// leaves as one buffer; larger ones are queued as their own `Bytes`.
const COPY_BODY_BELOW: usize = 1024;

/// [`TEXT_PLAIN`]'s header line, written in one piece.
const TEXT_PLAIN_LINE: &[u8] = b"Content-Type: text/plain; charset=utf-8\r\n";

impl Response {
    /// Appends the head to `out`, and the body too when small; returns the
    /// body to queue after it otherwise. `head_only` (a `HEAD` request)
    /// omits the body; `connection` is the `Connection` value to send;
    /// `date` is the `Date` line, sent unless the application set its own.
    #[inline]
    pub(crate) fn encode(
        &self,
        out: &mut BytesMut,
        head_only: bool,
        connection: Option<&str>,
        date: &HttpDate,
    ) -> Option<Bytes> {
        if let Some(prefix) = self.plain_prefix()
            && connection.is_none()
            && !head_only
            && self.body.len() < COPY_BODY_BELOW
        {
            put_plain(out, prefix, date, &self.body);
            return None;
        }
        let no_body = self.has_no_body();
        out.reserve(256 + self.body.len().min(COPY_BODY_BELOW));
        self.put_head_lines(out, connection, date);
        if no_body {
            out.put_slice(b"\r\n");
        } else {
            put_length_and_end(out, self.body.len());
        }
        match () {
            _ if head_only || no_body || self.body.is_empty() => None,
            _ if self.body.len() < COPY_BODY_BELOW => {
                out.put_slice(&self.body);
                None
            }
            _ => Some(self.body.clone()),
        }
    }

    /// For the commonest response — `200 OK`, no header of the
    /// application's but a `Content-Type` that is `text/plain` or none —
    /// its status and `Content-Type` lines, padded; `None` for any other.
    #[inline]
    fn plain_prefix(&self) -> Option<&'static Padded> {
        if self.status != 200 || self.extra.is_some() {
            return None;
        }
        match self.content_type.as_deref() {
            None => Some(&OK),
            Some(TEXT_PLAIN) => Some(&OK_TEXT_PLAIN),
            Some(_) => None,
        }
    }

    /// Appends the head of a response whose body streams after it (its own
    /// body is ignored): `Transfer-Encoding: chunked` if `chunked`, else no
    /// framing at all (the body ends with the connection), and neither for
    /// a status without a body. Returns whether a body follows the head.
    pub(crate) fn encode_streamed(
        &self,
        out: &mut BytesMut,
        chunked: bool,
        connection: Option<&str>,
        date: &HttpDate,
    ) -> bool {
        self.put_head_lines(out, connection, date);
        let body = !self.has_no_body();
        out.put_slice(if body && chunked {
            b"Transfer-Encoding: chunked\r\n\r\n"
        } else {
            b"\r\n"
        });
        body
    }

    /// True for a status whose response never has a body: 1xx, 204, 304.
    pub(crate) fn has_no_body(&self) -> bool {
        self.status < 200 || self.status == 204 || self.status == 304
    }

    /// Appends the status line and every header but the framing ones.
    fn put_head_lines(&self, out: &mut BytesMut, connection: Option<&str>, date: &HttpDate) {
        let reason = self.reason_phrase();
        if self.status == 200 && reason == "OK" {
            out.put_slice(b"HTTP/1.1 200 OK\r\n");
        } else {
            // `status` is 100..=999 (checked by `new`): always three digits.
            let status = self.status;
            let mut line = *b"HTTP/1.1 000 ";
            line[9] = b'0' + (status / 100) as u8;
            line[10] = b'0' + (status / 10 % 10) as u8;
            line[11] = b'0' + (status % 10) as u8;
            out.put_slice(&line);
            out.put_slice(reason.as_bytes());
            out.put_slice(b"\r\n");
        }
        match self.content_type.as_deref() {
            Some(TEXT_PLAIN) => out.put_slice(TEXT_PLAIN_LINE),
            Some(content_type) => put_header(out, "Content-Type", content_type.as_bytes()),
            None => {}
        }
        for (name, value) in self.headers() {
            put_header(out, name, value.as_bytes());
        }
        let (has_date, has_server) = self
            .extra
            .as_deref()
            .map_or((false, false), |extra| (extra.has_date, extra.has_server));
        match (has_date, has_server) {
            (false, false) => out.put_slice(date.with_server()),
            (false, true) => out.put_slice(date.line()),
            (true, false) => out.put_slice(b"Server: evloop\r\n"),
            (true, true) => {}
        }
        if let Some(connection) = connection {
            put_header(out, "Connection", connection.as_bytes());
        }
    }
}

/// Room for the status and `Content-Type` lines of [`put_plain`].
const PREFIX_ROOM: usize = 64;

/// A constant head part, padded with zeros to [`PREFIX_ROOM`] bytes so that
/// it is copied as one fixed-size block, and its length.
struct Padded {
    /// The part, then zeros.
    bytes: [u8; PREFIX_ROOM],
    /// How many bytes are the part's.
    len: usize,
}

impl Padded {
    /// `part`, padded.
    const fn new(part: &[u8]) -> Self {
        let mut bytes = [0; PREFIX_ROOM];
        let mut i = 0;
        while i < part.len() {
            bytes[i] = part[i];
            i += 1;
        }
        Padded {
            bytes,
            len: part.len(),
        }
    }
}

/// The status line of `200 OK`.
static OK: Padded = Padded::new(b"HTTP/1.1 200 OK\r\n");

/// The status line of `200 OK` and the `Content-Type` line of
/// [`Response::text`].
static OK_TEXT_PLAIN: Padded = Padded::new(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n");

/// Writes a response of [`Response::plain_prefix`]: `prefix`, the `Date`
/// and `Server` lines, `Content-Length` and the small `body`. The head is
/// put together on the stack from blocks of fixed size, which compile to a
/// few moves each, and goes out in one copy.
#[inline]
fn put_plain(out: &mut BytesMut, prefix: &Padded, date: &HttpDate, body: &[u8]) {
    let mut head = [0; PREFIX_ROOM + HttpDate::PADDED + LENGTH_AND_END];
    head[..PREFIX_ROOM].copy_from_slice(&prefix.bytes);
    let mut at = prefix.len;
    let (date_bytes, date_len) = date.padded();
    head[at..at + HttpDate::PADDED].copy_from_slice(date_bytes);
    at += date_len;
    at += length_and_end(&mut head[at..at + LENGTH_AND_END], body.len());
    out.reserve(at + body.len());
    out.put_slice(&head[..at]);
    out.put_slice(body);
}

/// Room for [`length_and_end`]: `Content-Length: `, at most 20 digits
/// (`u64::MAX`), CRLF CRLF.
const LENGTH_AND_END: usize = 16 + 20 + 4;

/// Writes the `Content-Length` line for `len` and the blank line that ends
/// the head at the start of `out`; returns how many bytes it took.
#[inline]
fn length_and_end(out: &mut [u8], mut len: usize) -> usize {
    out[..16].copy_from_slice(b"Content-Length: ");
    let mut digits = [0; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (len % 10) as u8;
        len /= 10;
        if len == 0 {
            break;
        }
    }
    let end = 16 + digits.len() - at;
    out[16..end].copy_from_slice(&digits[at..]);
    out[end..end + 4].copy_from_slice(b"\r\n\r\n");
    end + 4
}

/// Writes one `name: value` line.
fn put_header(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Writes the `Content-Length` line for `len` and the blank line that ends
/// the head, built on the stack so that it is copied out in one piece.
fn put_length_and_end(out: &mut BytesMut, len: usize) {
    let mut line = [0; LENGTH_AND_END];
    let n = length_and_end(&mut line, len);
    out.put_slice(&line[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full serialisation of `response` as text, with the date masked.
    fn wire(response: &Response, head_only: bool, connection: Option<&str>) -> String {
        let mut out = BytesMut::new();
        let rest = response.encode(&mut out, head_only, connection, &HttpDate::now());
        out.extend_from_slice(&rest.unwrap_or_default());
        let text = String::from_utf8(out.to_vec()).unwrap();
        let date = text
            .lines()
            .find(|l| l.starts_with("Date: "))
            .expect("a Date header");
        assert_eq!(date.len(), "Date: Sun, 06 Nov 1994 08:49:37 GMT".len());
        text.replace(date, "Date: D")
    }

    #[test]
    fn text_response_serialises_with_length_date_and_server() {
        assert_eq!(
            wire(&Response::text("Hello world!"), false, None),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: D\r\nServer: evloop\r\n\
             Content-Length: 12\r\n\r\nHello world!"
        );
    }

    #[test]
    fn plain_responses_are_written_as_the_general_path_writes_them() {
        let date = HttpDate::now();
        for response in [
            Response::text("Hello world!"),
            Response::text(vec![b'x'; 1023]),
            Response::new(200),
            Response::new(200).body("x"),
        ] {
            let prefix = response.plain_prefix().expect("a plain response");
            let mut plain = BytesMut::new();
            put_plain(&mut plain, prefix, &date, response.get_body());
            let mut general = BytesMut::new();
            response.put_head_lines(&mut general, None, &date);
            put_length_and_end(&mut general, response.get_body().len());
            general.extend_from_slice(response.get_body());
            assert_eq!(plain, general);
        }
        for other in [
            Response::text("a").header("X", "y"),
            Response::text("a").reason("Fine"),
            Response::new(201),
            Response::new(200).header("Content-Type", "text/html"),
        ] {
            assert!(other.plain_prefix().is_none(), "{other:?}");
        }
    }

    #[test]
    fn head_keeps_the_length_but_drops_the_body() {
        let text = wire(&Response::new(200).body(vec![b'x'; 5000]), true, Some("close"));
        assert!(
            text.ends_with("Connection: close\r\nContent-Length: 5000\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn managed_headers_from_the_app_are_replaced_and_close_is_seen() {
        let response = Response::new(404)
            .header("Content-Length", "99")
            .header("connection", "close")
            .header("Server", "mine")
            .body(String::from("no"));
        assert!(response.wants_close());
        let text = wire(&response, false, Some("close"));
        assert_eq!(
            text,
            "HTTP/1.1 404 Not Found\r\nServer: mine\r\nDate: D\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno"
        );
    }

    #[test]
    fn large_bodies_are_returned_to_be_queued_without_copying() {
        let body = Bytes::from(vec![7; 4096]);
        let mut out = BytesMut::new();
        let rest = Response::new(200)
            .body(body.clone())
            .encode(&mut out, false, None, &HttpDate::now());
        assert_eq!(rest.unwrap().as_ptr(), body.as_ptr());
        assert!(out.ends_with(b"Content-Length: 4096\r\n\r\n"));
    }

    #[test]
    fn lengths_are_written_in_plain_decimal() {
        for (len, line) in [(0, "0"), (1024, "1024"), (usize::MAX, &*usize::MAX.to_string())] {
            let mut out = BytesMut::new();
            put_length_and_end(&mut out, len);
            assert_eq!(out, format!("Content-Length: {line}\r\n\r\n").as_bytes());
        }
        let text = wire(&Response::new(999).body(vec![b'x'; 100]), false, None);
        assert!(text.starts_with("HTTP/1.1 999 \r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 100\r\n\r\n"), "{text}");
    }

    #[test]
    fn content_type_is_replaced_not_repeated() {
        let response = Response::text("a").header("content-type", "text/html");
        assert_eq!(response.get_header("Content-Type"), Some("text/html"));
        assert_eq!(
            wire(&response, false, None),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nDate: D\r\nServer: evloop\r\nContent-Length: 1\r\n\r\na"
        );
        assert_eq!(
            wire(&Response::new(200), false, None),
            "HTTP/1.1 200 OK\r\nDate: D\r\nServer: evloop\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn no_content_has_neither_length_nor_body() {
        assert!(!wire(&Response::new(204).body("x"), false, None).contains("Content-Length"));
    }

    #[test]
    fn error_responses_carry_their_reason_as_body() {
        let text = wire(&Response::error(431), false, Some("close"));
        assert!(format!("{:?}", Response::error(431)).contains("Request Header Fields Too Large"));
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(text.ends_with("\r\n\r\nRequest Header Fields Too Large\n"));
    }
}
