//! [`HttpConfig`]: the limits that protect an HTTP server from its clients.

use std::time::Duration;

/// Limits of the HTTP protocol layer, each with a default that suits a
/// typical API server.
///
/// A request over a limit is answered with the matching error status and
/// the connection is then closed (after the response is flushed):
///
/// | limit | status |
/// |---|---|
/// | [`max_head`](HttpConfig::max_head), [`max_headers`](HttpConfig::max_headers) | 431 Request Header Fields Too Large |
/// | [`max_body`](HttpConfig::max_body) | 413 Content Too Large |
/// | [`head_timeout`](HttpConfig::head_timeout) | 408 Request Timeout |
///
/// When the refusal comes while the client may still be sending the
/// request's body, the server reads and drops the rest of that body, within
/// [`max_discard`](HttpConfig::max_discard) and
/// [`discard_timeout`](HttpConfig::discard_timeout), before it closes, so
/// that a client which sends its whole body before reading sees the status.
///
/// Connection-level limits (watermarks, the idle timeout of a fresh
/// connection, [`Config::max_input`](crate::Config::max_input)) live in
/// [`Config`](crate::Config); [`HttpServer`](crate::http::HttpServer) raises
/// `max_input` to at least `max_head + max_body` so that a request within
/// these limits is never cut by it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use evloop::http::HttpConfig;
///
/// let config = HttpConfig::default()
///     .max_body(64 * 1024)
///     .head_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(config.get_max_body(), 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request head (request line and headers) in bytes.
    pub(crate) max_head: usize,
    /// Most header lines in one request.
    pub(crate) max_headers: usize,
    /// Largest request body: judged from `Content-Length` before reading
    /// it, or from the decoded total of a chunked body as it arrives.
    pub(crate) max_body: usize,
    /// Time from a request's first byte until its head must be complete.
    pub(crate) head_timeout: Option<Duration>,
    /// Time a kept-alive connection may sit with nothing moving.
    pub(crate) keep_alive_timeout: Option<Duration>,
    /// Most bytes of a refused request's body read and dropped before the
    /// connection closes.
    pub(crate) max_discard: usize,
    /// Longest time spent reading and dropping a refused request's body.
    pub(crate) discard_timeout: Duration,
    /// Bodies larger than this reach a deferring application in pieces.
    pub(crate) stream_bodies_over: Option<usize>,
    /// How long a connection with no request in progress at a drain waits
    /// for one more.
    pub(crate) next_request_at_drain: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_head: 8 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
            head_timeout: Some(Duration::from_secs(10)),
            keep_alive_timeout: Some(Duration::from_secs(60)),
            max_discard: 16 * 1024 * 1024,
            discard_timeout: Duration::from_secs(10),
            stream_bodies_over: None,
            next_request_at_drain: Duration::from_secs(1),
        }
    }
}

impl HttpConfig {
    /// Largest request head (request line plus headers plus the blank line),
    /// in bytes.
    ///
    /// Default 8 KiB, as in many servers; cookies and tokens rarely need
    /// more. A head that is still incomplete past this size, or complete but
    /// larger, gets 431. It bounds the memory a client holds by sending
    /// header lines without end.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0.
    #[track_caller]
    pub fn max_head(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "max_head must be at least 1 byte");
        self.max_head = bytes;
        self
    }

    /// Most header lines in one request.
    ///
    /// Default 64. Parsing reserves room for this many headers on the stack
    /// (a few dozen bytes each); more headers get 431.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0 or above 1024.
    #[track_caller]
    pub fn max_headers(mut self, n: usize) -> Self {
        assert!((1..=1024).contains(&n), "max_headers must be 1..=1024, got {n}");
        self.max_headers = n;
        self
    }

    /// Largest request body in bytes: judged from `Content-Length` before
    /// any of the body is read, and for a chunked body from the decoded
    /// total as it arrives (chunk framing and trailers do not count).
    ///
    /// Default 1 MiB. The whole body is buffered before the application sees
    /// the request, so this bounds memory per connection. 0 refuses every
    /// request with a non-empty body. Larger gets 413.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Request bodies larger than `bytes` reach the application in pieces
    /// as they arrive, through [`Request::body_reader`](super::Request::body_reader),
    /// instead of whole; `None` (the default) buffers every body.
    ///
    /// Applies to applications started with
    /// [`start_deferred`](super::HttpServer::start_deferred), which get such
    /// a request as soon as its head is complete and may read the body on
    /// another thread; an immediate application always gets whole bodies.
    /// Chunked bodies, whose size is not known in advance, always come in
    /// pieces when this is set. [`max_body`](HttpConfig::max_body) bounds
    /// the bodies that come whole; one that comes in pieces is bounded only
    /// by what the application reads: at most 256 KiB wait unread before
    /// the connection stops reading from the socket (backpressure).
    pub fn stream_bodies_over(mut self, bytes: Option<usize>) -> Self {
        self.stream_bodies_over = bytes;
        self
    }

    /// Most bytes of a refused request's body that are read and dropped
    /// before the connection closes.
    ///
    /// Default 16 MiB. After a 413, 400 or 501 caused by the body, the
    /// client may still be sending it; clients that send the whole body
    /// before reading (Python's `http.client`, Java's `HttpURLConnection`)
    /// would otherwise get a reset, and not the status, when the server
    /// closes on their unread bytes. A body declared longer than this is
    /// not read at all (closing at once spares the bandwidth); one of
    /// unknown end is read until the client's end of stream or this many
    /// bytes. 0 closes at once after every refusal. Reading costs bandwidth
    /// and time, no memory: nothing dropped is kept.
    pub fn max_discard(mut self, bytes: usize) -> Self {
        self.max_discard = bytes;
        self
    }

    /// Longest time spent reading and dropping a refused request's body
    /// (see [`max_discard`](HttpConfig::max_discard)); the connection closes
    /// when it runs out.
    ///
    /// Default 10 s: a client sending a few megabytes over a slow link
    /// still gets its status, and one that trickles is not served forever.
    ///
    /// # Panics
    ///
    /// Panics on `Duration::ZERO` (use `max_discard(0)` to skip discarding).
    #[track_caller]
    pub fn discard_timeout(mut self, timeout: Duration) -> Self {
        assert!(timeout > Duration::ZERO, "discard_timeout must be above zero");
        self.discard_timeout = timeout;
        self
    }

    /// Time allowed from the first byte of a request until its head is
    /// complete; `None` disables it.
    ///
    /// Default 10 s. Defends against "slowloris" clients that hold a
    /// connection by sending a header byte now and then (the idle timeout
    /// never fires while bytes trickle in). Past it the client gets 408.
    /// It does not cover the body; a body still arriving is bounded by the
    /// keep-alive (idle) timeout only.
    ///
    /// # Panics
    ///
    /// Panics on `Some(Duration::ZERO)`.
    #[track_caller]
    pub fn head_timeout(mut self, timeout: Option<Duration>) -> Self {
        assert!(timeout != Some(Duration::ZERO), "head_timeout must be above zero");
        self.head_timeout = timeout;
        self
    }

    /// Idle timeout of every HTTP connection: it is closed (silently, as
    /// HTTP allows between requests) after this long with no byte read or
    /// written. `None` disables it. Replaces
    /// [`Config::idle_timeout`](crate::Config::idle_timeout) when a connection
    /// opens.
    ///
    /// Default 60 s. Shorter frees idle sockets sooner, at the cost of more
    /// reconnects by clients that pause between requests. Keep it above
    /// [`head_timeout`](HttpConfig::head_timeout), or a slow head is closed
    /// without its 408.
    ///
    /// # Panics
    ///
    /// Panics on `Some(Duration::ZERO)`.
    #[track_caller]
    pub fn keep_alive_timeout(mut self, timeout: Option<Duration>) -> Self {
        assert!(
            timeout != Some(Duration::ZERO),
            "keep_alive_timeout must be above zero"
        );
        self.keep_alive_timeout = timeout;
        self
    }

    /// How long a connection with no request in progress when the server
    /// drains ([`ServerHandle::drain`](crate::ServerHandle::drain), as after
    /// a handover) waits for one more request, answered with
    /// `Connection: close`, before it closes.
    ///
    /// Default 1 s. Closing an idle keep-alive connection at once (zero)
    /// races with a request already on its way: it meets a closed socket,
    /// and the client sees a reset or an end of stream with no answer. A
    /// browser resends an idempotent request then; most other clients do
    /// not, nor does a proxy such as HAProxy, which reuses its idle
    /// connections to a server all the time. A longer wait only delays the
    /// end of a drain whose clients keep idle connections and send nothing;
    /// it is cut short by the drain's grace period.
    pub fn next_request_at_drain(mut self, wait: Duration) -> Self {
        self.next_request_at_drain = wait;
        self
    }

    /// The configured [`next_request_at_drain`](HttpConfig::next_request_at_drain).
    pub fn get_next_request_at_drain(&self) -> Duration {
        self.next_request_at_drain
    }

    /// The configured [`max_head`](HttpConfig::max_head).
    pub fn get_max_head(&self) -> usize {
        self.max_head
    }

    /// The configured [`max_headers`](HttpConfig::max_headers).
    pub fn get_max_headers(&self) -> usize {
        self.max_headers
    }

    /// The configured [`max_body`](HttpConfig::max_body).
    pub fn get_max_body(&self) -> usize {
        self.max_body
    }

    /// The configured [`head_timeout`](HttpConfig::head_timeout).
    pub fn get_head_timeout(&self) -> Option<Duration> {
        self.head_timeout
    }

    /// The configured [`keep_alive_timeout`](HttpConfig::keep_alive_timeout).
    pub fn get_keep_alive_timeout(&self) -> Option<Duration> {
        self.keep_alive_timeout
    }

    /// The configured [`stream_bodies_over`](HttpConfig::stream_bodies_over).
    pub fn get_stream_bodies_over(&self) -> Option<usize> {
        self.stream_bodies_over
    }

    /// The configured [`max_discard`](HttpConfig::max_discard).
    pub fn get_max_discard(&self) -> usize {
        self.max_discard
    }

    /// The configured [`discard_timeout`](HttpConfig::discard_timeout).
    pub fn get_discard_timeout(&self) -> Duration {
        self.discard_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let c = HttpConfig::default();
        assert_eq!(c.get_max_head(), 8 * 1024);
        assert_eq!(c.get_max_headers(), 64);
        assert_eq!(c.get_max_body(), 1024 * 1024);
        assert_eq!(c.get_head_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(c.get_keep_alive_timeout(), Some(Duration::from_secs(60)));
        assert_eq!(c.get_max_discard(), 16 * 1024 * 1024);
        assert_eq!(c.get_discard_timeout(), Duration::from_secs(10));
    }

    #[test]
    #[should_panic(expected = "max_head")]
    fn zero_max_head_panics() {
        let _ = HttpConfig::default().max_head(0);
    }
}
