//! [`Response`]: a status, headers and a body, as the application builds
//! them; `wire` writes them out.

mod wire;

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use super::chunked::is_tchar;
use super::status::reason;

/// Headers the server writes itself; the same names set by the application
/// are dropped (`Connection: close` is still honoured, see
/// [`Response::header`]).
const MANAGED: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// The `Content-Type` of [`Response::text`].
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// An HTTP response, built by the application and serialised by the server.
///
/// The server always adds `Content-Length` (from the body), and `Date` and
/// `Server: evloop` unless the application set them; it decides the
/// `Connection` header from both sides' wishes. Responses to `HEAD` carry
/// the headers, `Content-Length` included, but no body.
///
/// # Examples
///
/// ```
/// use evloop::http::Response;
///
/// let hello = Response::text("Hello world!");
/// assert_eq!(hello.status(), 200);
///
/// let created = Response::new(201)
///     .header("Content-Type", "application/json")
///     .header("Location", format!("/items/{}", 7))
///     .body(r#"{"id":7}"#);
/// assert_eq!(created.get_header("content-type"), Some("application/json"));
/// ```
#[derive(Clone)]
pub struct Response {
    /// Status code, 100..=999.
    status: u16,
    /// The application set `Connection: close`.
    close: bool,
    /// The `Content-Type` value, kept apart from the other headers so that
    /// the common response needs no header list at all.
    content_type: Option<Cow<'static, str>>,
    /// The body.
    body: Bytes,
    /// What few responses have — a reason phrase of their own, other
    /// headers — boxed, so that the common response is small to build,
    /// move and drop.
    extra: Option<Box<Extra>>,
}

/// The parts of a [`Response`] that few responses have.
#[derive(Clone, Debug, Default)]
struct Extra {
    /// A reason phrase replacing the standard one.
    reason: Option<Cow<'static, str>>,
    /// Headers other than `Content-Type`, in the order set, managed ones
    /// left out. Invariant: names are tokens and values hold no CR or LF
    /// (checked by [`Response::header`]).
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    /// `headers` holds a `Date`: the server adds none.
    has_date: bool,
    /// `headers` holds a `Server`: the server adds none.
    has_server: bool,
}

impl Response {
    /// A response with `status`, its standard reason phrase (`""` for codes
    /// this crate does not know) and an empty body.
    ///
    /// # Panics
    ///
    /// Panics if `status` is not in `100..=999`.
    #[track_caller]
    pub fn new(status: u16) -> Self {
        assert!(
            (100..=999).contains(&status),
            "HTTP status must be 100..=999, got {status}"
        );
        Response {
            status,
            close: false,
            content_type: None,
            body: Bytes::new(),
            extra: None,
        }
    }

    /// `200 OK` with `body` as `text/plain; charset=utf-8`.
    pub fn text(body: impl Into<Bytes>) -> Self {
        Response {
            status: 200,
            close: false,
            content_type: Some(Cow::Borrowed(TEXT_PLAIN)),
            body: body.into(),
            extra: None,
        }
    }

    /// Replaces the reason phrase.
    ///
    /// # Panics
    ///
    /// Panics if `reason` holds a CR or LF.
    #[track_caller]
    pub fn reason(mut self, reason: impl Into<Cow<'static, str>>) -> Self {
        let reason = reason.into();
        assert!(!reason.contains(['\r', '\n']), "reason phrase holds a line break");
        self.extra_mut().reason = Some(reason);
        self
    }

    /// Adds a header (several of one name are all sent, except
    /// `Content-Type`, which replaces the previous one).
    ///
    /// `Content-Length`, `Transfer-Encoding` and `Connection` are written by
    /// the server and dropped here, except that a `Connection` value listing
    /// `close` makes the server close the connection after this response.
    /// A `Date` or `Server` header replaces the server's own.
    ///
    /// # Panics
    ///
    /// Panics if `name` is not an HTTP token or `value` holds a CR or LF,
    /// which would let the value forge headers.
    #[track_caller]
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) -> Self {
        let (name, value) = (name.into(), value.into());
        assert!(is_token(&name), "invalid header name {name:?}");
        assert!(
            !value.contains(['\r', '\n']),
            "header {name} value holds a line break"
        );
        if name.eq_ignore_ascii_case("content-type") {
            self.content_type = Some(value);
        } else if name.eq_ignore_ascii_case("connection") {
            self.close |= value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if !MANAGED.iter().any(|m| name.eq_ignore_ascii_case(m)) {
            let extra = self.extra_mut();
            extra.has_date |= name.eq_ignore_ascii_case("date");
            extra.has_server |= name.eq_ignore_ascii_case("server");
            extra.headers.push((name, value));
        }
        self
    }

    /// Sets the body: `&'static str`, `String`, `Vec<u8>`, `Bytes`, ...;
    /// `Bytes` and static data are sent without copying.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header set under `name` (compared ignoring ASCII case).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("content-type") {
            return self.content_type.as_deref();
        }
        self.headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// The body.
    pub fn get_body(&self) -> &Bytes {
        &self.body
    }

    /// A plain-text error response whose body is its reason phrase.
    pub(crate) fn error(status: u16) -> Self {
        let text = format!("{}\n", reason(status));
        Response::text(text).status_code(status)
    }

    /// Changes the status code, keeping the rest.
    fn status_code(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The rarely used parts, created on first use.
    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_default()
    }

    /// The headers other than `Content-Type`.
    fn headers(&self) -> &[(Cow<'static, str>, Cow<'static, str>)] {
        self.extra.as_deref().map_or(&[], |extra| &extra.headers)
    }

    /// The reason phrase: the application's, or the status's own.
    fn reason_phrase(&self) -> &str {
        match self.extra.as_deref().and_then(|extra| extra.reason.as_deref()) {
            Some(reason) => reason,
            None => reason(self.status),
        }
    }

    /// True if the application asked to close with `Connection: close`.
    pub(crate) fn wants_close(&self) -> bool {
        self.close
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("reason", &self.reason_phrase())
            .field("content_type", &self.content_type)
            .field("headers", &self.headers())
            .field("body", &self.body.len())
            .finish()
    }
}

/// True for an RFC 9110 token: the characters allowed in a header name.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "line break")]
    fn header_values_cannot_forge_headers() {
        let _ = Response::new(200).header("X", "a\r\nSet-Cookie: evil");
    }

    #[test]
    #[should_panic(expected = "100..=999")]
    fn out_of_range_status_panics() {
        let _ = Response::new(42);
    }
}
