//! [`get`]: an HTTP/1.1 GET driven by a listener-less [`EventLoop`] on the
//! caller's thread, through the same [`Handler`] and [`Conn`] a server uses.
//!
//! The call owns the loop, and the loop owns the socket: when `get` returns,
//! whatever the outcome, the loop has run until its connection was closed
//! and has been dropped, so no socket, poller or waker outlives the call.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::client_response::{ClientResponse, Head, invalid};
use crate::{CloseReason, Config, Conn, EventLoop, Handler};

/// The body limit of [`get`]: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// Largest response head accepted; as generous as common servers' limits.
const MAX_HEAD: usize = 64 * 1024;

/// Fetches `url` with `GET` and returns the whole response, or an error,
/// within `timeout`; the body may be up to [`DEFAULT_MAX_BODY`].
///
/// Only `http://host[:port][/path][?query]` URLs; the host is resolved with
/// the system resolver (which may block), and the first address is used.
/// The request says `Connection: close`, and the body is framed by
/// `Content-Length` or, without one, read to the end of the stream.
///
/// # Errors
///
/// Every failure closes the socket before returning:
///
/// * `InvalidInput` — not an `http://` URL, or one that does not resolve;
/// * `ConnectionRefused` — nothing listens at the address;
/// * `TimedOut` — no complete response within `timeout`, connecting included;
/// * `InvalidData` — a malformed head, a head over 64 KiB, or a body over
///   the limit;
/// * `Unsupported` — a `Transfer-Encoding` (chunked) response;
/// * `UnexpectedEof` — the server closed before the response was complete;
/// * other kinds for other socket errors.
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
    get_with_max_body(url, timeout, DEFAULT_MAX_BODY)
}

/// [`get`] with a body limit of `max_body` bytes instead of
/// [`DEFAULT_MAX_BODY`]; a larger body fails with `InvalidData`.
///
/// # Errors
///
/// As [`get`].
pub fn get_with_max_body(url: &str, timeout: Duration, max_body: usize) -> io::Result<ClientResponse> {
    let target = Target::parse(url)?;
    let addr = target.resolve()?;
    let outcome = Outcome::default();
    let mut exchange = Some(Exchange {
        request: target.request(),
        addr,
        timeout,
        deadline: crate::timer::deadline(Instant::now(), timeout),
        max_body,
        buf: BytesMut::new(),
        head: None,
        outcome: Rc::clone(&outcome),
    });
    let config = Config::default().idle_timeout(None).nodelay(true);
    let mut client = EventLoop::new(config, move || exchange.take().expect("one connection per get"))?;
    client.connect(addr, timeout)?;
    client.run_until_idle()?;
    drop(client);
    let result = outcome.borrow_mut().take();
    result.unwrap_or_else(|| Err(io::Error::other("the connection ended with no outcome")))
}

/// Where the exchange's result is left for [`get`]; the loop runs on the
/// caller's thread, so no lock is needed.
type Outcome = Rc<RefCell<Option<io::Result<ClientResponse>>>>;

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

    /// The request's bytes.
    fn request(&self) -> Bytes {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: evloop\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path, self.authority
        )
        .into()
    }
}

/// The handler of one GET: sends the request once connected, gathers the
/// response, and leaves the outcome for [`get`].
struct Exchange {
    /// The request, sent in `on_open`.
    request: Bytes,
    /// The server's address, for error messages.
    addr: SocketAddr,
    /// The whole exchange's time limit, for error messages.
    timeout: Duration,
    /// When the exchange times out, connecting included.
    deadline: Instant,
    /// Largest body accepted.
    max_body: usize,
    /// Received bytes not yet part of a response.
    buf: BytesMut,
    /// The final response's head, once parsed.
    head: Option<Head>,
    /// The result, set once: the first outcome wins.
    outcome: Outcome,
}

impl Exchange {
    /// Records the outcome unless one is already recorded.
    fn settle(&self, result: io::Result<ClientResponse>) {
        self.outcome.borrow_mut().get_or_insert(result);
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
        while self.head.is_none() {
            match Head::parse(&self.buf)? {
                Some((head, len)) => {
                    self.buf.advance(len);
                    if !head.is_interim() {
                        self.head = Some(head);
                    }
                }
                None if self.buf.len() > MAX_HEAD => {
                    return Err(invalid(format!("response head over {MAX_HEAD} bytes")));
                }
                None if eof => return Err(early_eof("the response head")),
                None => return Ok(None),
            }
        }
        let len = self.head.as_ref().map(Head::body_len).transpose()?.flatten();
        if len.unwrap_or(self.buf.len()) > self.max_body {
            return Err(invalid(format!(
                "response body over the {} byte limit",
                self.max_body
            )));
        }
        let body = match len {
            Some(len) if self.buf.len() >= len => self.buf.split_to(len).freeze(),
            Some(_) if eof => return Err(early_eof("the response body")),
            None if eof => self.buf.split().freeze(),
            _ => return Ok(None),
        };
        Ok(self.head.take().map(|head| head.into_response(body)))
    }

    /// The error for a connection that closed with no outcome yet.
    fn close_error(&self, reason: &CloseReason) -> io::Error {
        let (addr, timeout) = (self.addr, self.timeout);
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
            CloseReason::Error(kind) => io::Error::new(*kind, format!("connection to {addr}: {reason}")),
            other => io::Error::other(format!("connection to {addr} closed: {other}")),
        }
    }
}

impl Handler for Exchange {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.write_bytes(self.request.clone());
        conn.set_timer(self.deadline.saturating_duration_since(Instant::now()));
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
            self.addr, self.timeout
        );
        self.settle(Err(io::Error::new(io::ErrorKind::TimedOut, msg)));
        conn.abort();
    }

    fn on_close(&mut self, reason: &CloseReason) {
        let err = self.close_error(reason);
        self.settle(Err(err));
    }
}

/// An `UnexpectedEof` error: the server closed before `what` was complete.
fn early_eof(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the server closed the connection before {what} was complete"),
    )
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
