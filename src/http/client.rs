//! The client: [`get`], [`post`] and the [`ClientRequest`] builder, each
//! one request driven by a listener-less [`EventLoop`] on the caller's
//! thread, through the same [`Handler`](crate::Handler) and
//! [`Conn`](crate::Conn) a server uses.
//!
//! The call owns the loop, and the loop owns the socket: when it returns,
//! whatever the outcome, the loop has run until its connection was closed
//! and has been dropped, so no socket, poller or waker outlives the call.

use std::borrow::Cow;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::client_exchange::{Exchange, Outcome};
use super::client_response::ClientResponse;
use crate::{Config, EventLoop};

/// The body limit of [`get`], [`post`] and [`ClientRequest`] unless set:
/// 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// Fetches `url` with `GET` and returns the whole response, or an error,
/// within `timeout`; the body may be up to [`DEFAULT_MAX_BODY`].
///
/// Shorthand for `ClientRequest::get(url).timeout(timeout).send()`; see
/// [`ClientRequest`] for what it accepts, how bodies are framed, and the
/// errors.
///
/// # Errors
///
/// As [`ClientRequest::send`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// let response = evloop::http::get("http://127.0.0.1:3000/", Duration::from_secs(5))?;
/// println!("{} {}", response.status(), String::from_utf8_lossy(response.body()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn get(url: &str, timeout: Duration) -> io::Result<ClientResponse> {
    ClientRequest::get(url).timeout(timeout).send()
}

/// [`get`] with a body limit of `max_body` bytes instead of
/// [`DEFAULT_MAX_BODY`]; a larger body fails with `InvalidData`.
///
/// # Errors
///
/// As [`ClientRequest::send`].
pub fn get_with_max_body(url: &str, timeout: Duration, max_body: usize) -> io::Result<ClientResponse> {
    ClientRequest::get(url).timeout(timeout).max_body(max_body).send()
}

/// Sends `body` to `url` with `POST` and returns the whole response, or an
/// error, within `timeout`.
///
/// Shorthand for `ClientRequest::post(url).body(body).timeout(timeout).send()`.
///
/// # Errors
///
/// As [`ClientRequest::send`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// let response = evloop::http::post("http://127.0.0.1:3000/items", "name=x", Duration::from_secs(5))?;
/// assert!(response.status() < 500);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn post(url: &str, body: impl Into<Bytes>, timeout: Duration) -> io::Result<ClientResponse> {
    ClientRequest::post(url).body(body).timeout(timeout).send()
}

/// One HTTP/1.1 request, built then sent with [`send`](ClientRequest::send).
///
/// # Behaviour
///
/// * Only `http://host[:port][/path][?query]` URLs; the host is resolved
///   with the system resolver (which may block), and the first address is
///   used. The request says `Connection: close`; a body goes with its
///   `Content-Length`.
/// * The response body is framed as RFC 9112 §6.3 says: none for `HEAD`,
///   1xx, 204 and 304; decoded from the chunked coding; `Content-Length`
///   bytes; or, without either, everything until the server closes. Interim
///   (1xx) responses are skipped.
/// * Sizes are bounded: the head by 64 KiB, the body (decoded) by
///   [`max_body`](ClientRequest::max_body).
/// * Redirects are not followed: a 3xx comes back as the response, its
///   `Location` header for the caller to act on (or not).
/// * Every failure closes the socket before `send` returns, and nothing of
///   the connection outlives the call.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use evloop::http::ClientRequest;
///
/// let response = ClientRequest::post("http://127.0.0.1:3000/items")
///     .header("Content-Type", "application/json")
///     .body(r#"{"name":"x"}"#)
///     .timeout(Duration::from_secs(2))
///     .max_body(64 * 1024)
///     .send()?;
/// println!("{} {:?}", response.status(), response.header("location"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// The method.
    method: Cow<'static, str>,
    /// The URL as given.
    url: String,
    /// Extra headers, in order.
    headers: Vec<(String, String)>,
    /// The body.
    body: Bytes,
    /// The whole exchange's time limit.
    timeout: Duration,
    /// Largest response body accepted.
    max_body: usize,
}

impl ClientRequest {
    /// A request with `method` (e.g. `"DELETE"`) to `url`, no body, a 30 s
    /// time limit and a [`DEFAULT_MAX_BODY`] body limit.
    ///
    /// # Panics
    ///
    /// Panics if `method` is not an HTTP token.
    #[track_caller]
    pub fn new(method: impl Into<Cow<'static, str>>, url: &str) -> Self {
        let method = method.into();
        assert!(
            !method.is_empty() && method.bytes().all(super::chunked::is_tchar),
            "invalid HTTP method {method:?}"
        );
        ClientRequest {
            method,
            url: url.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            timeout: Duration::from_secs(30),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: &str) -> Self {
        ClientRequest::new("GET", url)
    }

    /// A `POST` to `url` (set its body with [`body`](ClientRequest::body)).
    pub fn post(url: &str) -> Self {
        ClientRequest::new("POST", url)
    }

    /// Adds a header. `Host`, `Content-Length`, `Transfer-Encoding` and
    /// `Connection` are written by the client and cannot be set.
    ///
    /// # Panics
    ///
    /// Panics if `name` is not a token or is one of the names above, or if
    /// `value` holds a CR or LF.
    #[track_caller]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        assert!(
            !name.is_empty() && name.bytes().all(super::chunked::is_tchar),
            "invalid header name {name:?}"
        );
        let managed = ["host", "content-length", "transfer-encoding", "connection"];
        assert!(
            !managed.iter().any(|m| name.eq_ignore_ascii_case(m)),
            "the client writes {name} itself"
        );
        assert!(
            !value.contains(['\r', '\n']),
            "header {name} value holds a line break"
        );
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body, sent with its `Content-Length`.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Time limit of the whole exchange, connecting included. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response body accepted, in bytes (decoded, for a chunked
    /// one); a larger one fails with `InvalidData`. Default
    /// [`DEFAULT_MAX_BODY`].
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sends the request and returns the whole response, or an error,
    /// within the time limit.
    ///
    /// # Errors
    ///
    /// Every failure closes the socket before returning:
    ///
    /// * `InvalidInput` — not an `http://` URL, or one that does not
    ///   resolve;
    /// * `ConnectionRefused` — nothing listens at the address;
    /// * `TimedOut` — no complete response within the time limit;
    /// * `InvalidData` — a malformed head or chunked body, a head over
    ///   64 KiB, a body over the limit;
    /// * `UnexpectedEof` — the server closed before the response was
    ///   complete;
    /// * other kinds for other socket errors.
    pub fn send(self) -> io::Result<ClientResponse> {
        let target = Target::parse(&self.url)?;
        let addr = target.resolve()?;
        let outcome = Outcome::default();
        let mut exchange = Some(
            Exchange {
                request: target.request(&self.method, &self.headers, &self.body),
                head_request: self.method == "HEAD",
                addr,
                timeout: self.timeout,
                deadline: crate::timer::deadline(Instant::now(), self.timeout),
                max_body: self.max_body,
                outcome: Rc::clone(&outcome),
            }
            .start(),
        );
        let config = Config::default().idle_timeout(None).nodelay(true);
        let mut client = EventLoop::new(config, move || {
            exchange.take().expect("one connection per request")
        })?;
        client.connect(addr, self.timeout)?;
        client.run_until_idle()?;
        drop(client);
        let result = outcome.borrow_mut().take();
        result.unwrap_or_else(|| Err(io::Error::other("the connection ended with no outcome")))
    }
}

/// A parsed `http://` URL.
#[derive(Debug)]
struct Target {
    /// `host[:port]` as written, for the `Host` header.
    authority: String,
    /// Path and query, at least `/`.
    path: String,
}

impl Target {
    /// Splits `url` into authority and path.
    fn parse(url: &str) -> io::Result<Target> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{why}: {url:?}"));
        let rest = url
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("the URL needs a host (and no user info)"));
        }
        if url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(bad("the URL holds whitespace or control characters"));
        }
        let path = match path.strip_prefix('?') {
            Some(_) => format!("/{path}"),
            None if path.is_empty() => "/".to_owned(),
            None => path.to_owned(),
        };
        Ok(Target {
            authority: authority.to_owned(),
            path,
        })
    }

    /// The first address the host resolves to, port 80 unless given.
    fn resolve(&self) -> io::Result<SocketAddr> {
        // A ':' after any ']' of an IPv6 literal starts the port.
        let has_port = self
            .authority
            .rfind(':')
            .is_some_and(|i| !self.authority[i..].contains(']'));
        let host_port = if has_port {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        };
        // The resolver's own message names neither the host nor the port.
        let failed = |why: &dyn std::fmt::Display| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot resolve {host_port}: {why}"),
            )
        };
        let mut addrs = host_port.to_socket_addrs().map_err(|e| failed(&e))?;
        addrs.next().ok_or_else(|| failed(&"no address"))
    }

    /// The request's bytes: `method`, this target, the fixed headers,
    /// `headers`, and `body` with its length.
    fn request(&self, method: &str, headers: &[(String, String)], body: &Bytes) -> Bytes {
        let mut out = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: evloop\r\nAccept: */*\r\nConnection: close\r\n",
            self.path, self.authority
        );
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        bytes.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_splits_into_authority_and_path() {
        let t = Target::parse("http://127.0.0.1:3000/a/b?c=d#frag").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:3000", "/a/b?c=d")
        );
        let t = Target::parse("HTTP://example.com?q").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("example.com", "/?q"));
        assert_eq!(Target::parse("http://[::1]").unwrap().path, "/");
    }

    #[test]
    fn other_schemes_and_hostless_urls_are_invalid_input() {
        for url in [
            "https://x/",
            "ftp://x",
            "http:///path",
            "http://u@x/",
            "x",
            "http://x/a b",
        ] {
            let err = Target::parse(url).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{url}");
        }
    }

    #[test]
    fn port_defaults_to_80_and_ipv6_literals_resolve() {
        let t = Target::parse("http://[::1]/").unwrap();
        assert_eq!(t.resolve().unwrap(), "[::1]:80".parse().unwrap());
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.resolve().unwrap().port(), 8080);
    }

    #[test]
    fn a_host_that_does_not_resolve_is_invalid_input_naming_it() {
        for (url, named) in [
            ("http://127.0.0.1:99999/", "127.0.0.1:99999"),
            ("http://no-such-host.invalid/", "no-such-host.invalid:80"),
        ] {
            let err = Target::parse(url).unwrap().resolve().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{url}: {err}");
            assert!(
                err.to_string().starts_with(&format!("cannot resolve {named}: ")),
                "{err}"
            );
        }
    }
}
