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
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::client_exchange::{Exchange, Outcome};
use super::client_response::ClientResponse;
use super::client_url::Target;
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
/// * Only `http://host[:port][/path][?query]` URLs, and `https://` ones
///   given a TLS client config (`ClientRequest::tls`, feature `tls`); the
///   host is resolved with the system resolver (which may block), and the
///   first address is used. The request says `Connection: close`; a body goes with its
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
    /// The TLS client config for `https://` URLs; none refuses them.
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<crate::tls::rustls::ClientConfig>>,
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
            #[cfg(feature = "tls")]
            tls: None,
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

    /// The TLS client config for an `https://` URL: its root store decides
    /// which servers are trusted (see
    /// [`tls::client_config`](crate::tls::client_config)); the server name
    /// checked, and sent as SNI, is the URL's host. Without one, an
    /// `https://` URL fails with `InvalidInput`; an `http://` URL ignores
    /// it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use evloop::http::ClientRequest;
    /// use evloop::tls::{self, rustls::RootCertStore};
    ///
    /// let mut roots = RootCertStore::empty();
    /// for ca in tls::certificates(&std::fs::read("ca.pem")?)? {
    ///     roots.add(ca).map_err(std::io::Error::other)?;
    /// }
    /// let response = ClientRequest::get("https://localhost:3443/")
    ///     .tls(tls::client_config(roots))
    ///     .timeout(Duration::from_secs(5))
    ///     .send()?;
    /// println!("{}", response.status());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<crate::tls::rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Sends the request and returns the whole response, or an error,
    /// within the time limit.
    ///
    /// # Errors
    ///
    /// Every failure closes the socket before returning:
    ///
    /// * `InvalidInput` — not an `http://` or `https://` URL, one that does
    ///   not resolve, or an `https://` URL without a `tls` config (or whose
    ///   host is not a valid TLS server name);
    /// * `ConnectionRefused` — nothing listens at the address;
    /// * `TimedOut` — no complete response within the time limit (over
    ///   TLS, the handshake gets that limit again once connected);
    /// * `InvalidData` — a malformed head or chunked body, a head over
    ///   64 KiB, a body over the limit;
    /// * `UnexpectedEof` — the server closed before the response was
    ///   complete;
    /// * `InvalidData` too, for `https://`, when TLS fails: a certificate
    ///   not trusted for the URL's host, say (the error names the address;
    ///   the log, at debug, says what rustls refused);
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
        let mut config = Config::default().idle_timeout(None).nodelay(true);
        // The exchange's own timer starts in `on_open`, after any TLS
        // handshake; this bounds the handshake by the same limit.
        if !self.timeout.is_zero() {
            config = config.handshake_timeout(self.timeout);
        }
        let mut client = EventLoop::new(config, move || {
            exchange.take().expect("one connection per request")
        })?;
        if target.https {
            self.dial_tls(&mut client, &target, addr)?;
        } else {
            client.connect(addr, self.timeout)?;
        }
        client.run_until_idle()?;
        drop(client);
        let result = outcome.borrow_mut().take();
        result.unwrap_or_else(|| Err(io::Error::other("the connection ended with no outcome")))
    }
}

impl ClientRequest {
    /// Dials `addr` over TLS with the request's config, for the host of
    /// `target`.
    #[cfg(feature = "tls")]
    fn dial_tls<F: FnMut() -> H, H: crate::Handler>(
        &self,
        client: &mut EventLoop<F, H>,
        target: &Target,
        addr: SocketAddr,
    ) -> io::Result<()> {
        use crate::tls::rustls::pki_types::ServerName;
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{why}: {:?}", self.url));
        let config = self
            .tls
            .clone()
            .ok_or_else(|| bad("an https:// URL needs a TLS client config (ClientRequest::tls)"))?;
        let name = ServerName::try_from(target.host().to_owned())
            .map_err(|_| bad("the URL's host is not a valid TLS server name"))?;
        client.connect_tls(addr, self.timeout, config, name)?;
        Ok(())
    }

    /// Without the `tls` feature, `https://` URLs are refused.
    #[cfg(not(feature = "tls"))]
    fn dial_tls<F: FnMut() -> H, H: crate::Handler>(
        &self,
        _: &mut EventLoop<F, H>,
        _: &Target,
        _: SocketAddr,
    ) -> io::Result<()> {
        let msg = format!("https:// URLs need evloop's tls feature: {:?}", self.url);
        Err(io::Error::new(io::ErrorKind::InvalidInput, msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_url_without_a_tls_config_is_invalid_input_naming_it() {
        let url = "https://127.0.0.1:1/";
        let err = ClientRequest::get(url).send().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(url), "{err}");
    }
}
