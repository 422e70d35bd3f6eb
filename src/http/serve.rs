//! Starting an HTTP server: [`serve`] for the common case, [`HttpServer`]
//! for every option of [`Server`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::app::{App, Deferred, Immediate};
use super::protocol::HttpHandler;
use super::{HttpConfig, Request, Responder, Response};
use crate::{Balance, Config, Model, Server, ServerHandle};

/// How long [`serve`] lets responses in flight finish after Ctrl-C.
const SIGNAL_GRACE: Duration = Duration::from_secs(5);

/// Serves HTTP on `addr` with `app` until Ctrl-C or SIGTERM.
///
/// Runs an [`HttpServer`] with every default (one event loop per core,
/// [`HttpConfig::default`]); on the first signal, responses in flight get up
/// to five seconds to go out, a second signal stops at once.
///
/// # Errors
///
/// Fails if `addr` does not resolve or cannot be bound, or if the signal
/// handlers cannot be installed.
///
/// # Examples
///
/// ```no_run
/// use evloop::http::{Request, Response};
///
/// evloop::http::serve("127.0.0.1:3000", |_req: &Request| Response::text("Hello world!"))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve<A, F>(addr: A, app: F) -> io::Result<()>
where
    A: ToSocketAddrs,
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing"))?;
    let server = HttpServer::new(addr).start(app)?;
    server.shutdown_on_signals(SIGNAL_GRACE)?;
    server.join()
}

/// An HTTP/1.1 server on evloop's [`Server`]: its options (loops,
/// balancing, connection config and cap, execution model) plus the
/// protocol's [`HttpConfig`].
///
/// The application is one function shared by every loop thread, of either
/// shape: `Fn(&Request) -> Response` ([`start`](HttpServer::start)), which
/// answers at once on the loop thread, so it should be quick; or
/// `Fn(Request, Responder)` ([`start_deferred`](HttpServer::start_deferred)),
/// which may answer later, from any thread, or stream a body of unknown
/// length. A panic in it is answered with 500 and closes that connection
/// only.
///
/// # Protocol
///
/// What is accepted and refused follows RFC 9112 and RFC 9110
/// (`tests/rfc9112.rs` checks each rule, by section):
///
/// * Request targets in origin form (`/path?query`), absolute form
///   (`http://host/path`, whose authority [`Request::host`] then gives),
///   and asterisk form for `OPTIONS *`; `CONNECT` (authority form) gets
///   501, since no tunnels are opened; anything else 400.
/// * An HTTP/1.1 request must carry exactly one valid `Host`, else 400.
/// * HTTP/1.0 and 1.1; a higher 1.x minor version is served as 1.1, another
///   major version gets 505.
/// * Header names must be tokens with no whitespace before the colon,
///   values free of control characters, no obs-fold line continuations and
///   no whitespace before the first header: 400 otherwise.
/// * Responses to `HEAD`, and with status 204 or 304, carry no body; 204
///   carries no `Content-Length`. An application answering with a 1xx
///   status (no final answer) is answered for with 500.
/// * Keep-alive by default for HTTP/1.1; HTTP/1.0 closes after the response
///   unless the request says `Connection: keep-alive`. `Connection: close`
///   from either side closes after the response is flushed.
/// * Pipelining: every complete request in the input is answered, in order.
///   Once queued output passes the loop's high watermark
///   ([`Config::write_watermarks`]) the rest waits, reading pauses, and it
///   goes on when the client has read enough (backpressure).
/// * Request bodies framed by `Content-Length` or the chunked coding
///   (extensions skipped, trailers read within [`HttpConfig::max_head`] and
///   dropped), whole bodies up to [`HttpConfig::max_body`] (the decoded
///   total, for chunked). `Transfer-Encoding` beside `Content-Length`, or
///   in an HTTP/1.0 request, is 400; a coding other than `chunked` is 501.
///   `Expect: 100-continue` is answered, for chunked bodies too.
/// * Limits are in [`HttpConfig`]; an error response always carries
///   `Connection: close` and the connection closes after it. When the
///   client may still be sending the refused request's body, the rest of it
///   is read and dropped first (within [`HttpConfig::max_discard`] and
///   [`HttpConfig::discard_timeout`]), so that a client that reads only
///   after sending sees the status rather than a reset.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use evloop::http::{HttpConfig, HttpServer, Response};
///
/// let server = HttpServer::new("127.0.0.1:0".parse().unwrap())
///     .threads(2)
///     .http_config(HttpConfig::default().max_body(64 * 1024))
///     .start(|req| Response::text(format!("you asked for {}", req.path())))?;
/// let url = format!("http://{}/docs", server.local_addr());
/// let response = evloop::http::get(&url, Duration::from_secs(5))?;
/// assert_eq!(&response.body()[..], b"you asked for /docs");
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpServer {
    /// The server, without its connection config.
    server: Server,
    /// Connection config, applied (with `max_input` raised) at start.
    config: Config,
    /// Protocol limits.
    http: HttpConfig,
}

impl HttpServer {
    /// An HTTP server on `addr` (port 0 picks a free port) with the defaults
    /// of [`Server::new`] and [`HttpConfig::default`].
    pub fn new(addr: SocketAddr) -> Self {
        HttpServer::bind(addr)
    }

    /// An HTTP server on `bind`: a TCP address, or a Unix domain socket
    /// (`curl --unix-socket PATH http://localhost/` reaches it); see
    /// [`Server::bind`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use evloop::UnixBind;
    /// use evloop::http::{HttpServer, Response};
    ///
    /// HttpServer::bind(UnixBind::path("/run/app.sock").mode(0o660))
    ///     .start(|_req| Response::text("Hello over a Unix socket!"))?
    ///     .join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(bind: impl Into<crate::Bind>) -> Self {
        HttpServer {
            server: Server::bind(bind),
            config: Config::default(),
            http: HttpConfig::default(),
        }
    }

    /// An HTTP server on the socket `server` serves, with its threads,
    /// balancing, pinning, model and TLS (its [`Config`] is replaced by
    /// [`config`](HttpServer::config)'s): for a socket inherited through
    /// [`Server::from_listener`] or [`Listeners`](crate::Listeners).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use evloop::http::{HttpServer, Response};
    /// use evloop::Server;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let server = HttpServer::from_server(Server::from_listener(listener)?.threads(1))
    ///     .start(|_req| Response::text("hello"))?;
    /// let url = format!("http://{}/", server.local_addr());
    /// assert_eq!(&evloop::http::get(&url, Duration::from_secs(5))?.body()[..], b"hello");
    /// server.shutdown(Duration::ZERO);
    /// server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_server(server: Server) -> Self {
        HttpServer {
            server,
            config: Config::default(),
            http: HttpConfig::default(),
        }
    }

    /// Protocol limits; see [`HttpConfig`].
    pub fn http_config(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Number of event loops; see [`Server::threads`].
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0 or above 65,536.
    #[track_caller]
    pub fn threads(mut self, n: usize) -> Self {
        self.server = self.server.threads(n);
        self
    }

    /// How connections reach loops; see [`Server::balance`].
    pub fn balance(mut self, balance: Balance) -> Self {
        self.server = self.server.balance(balance);
        self
    }

    /// Pins loop threads to CPUs; see [`Server::pin`].
    pub fn pin(mut self, pin: crate::Pin) -> Self {
        self.server = self.server.pin(pin);
        self
    }

    /// The execution model; see [`Server::model`].
    pub fn model(mut self, model: Model) -> Self {
        self.server = self.server.model(model);
        self
    }

    /// Most connections open at once; see [`Server::max_connections`].
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0.
    #[track_caller]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.server = self.server.max_connections(n);
        self
    }

    /// Serves HTTPS: every connection shakes hands as a TLS server with
    /// `acceptor` (an `Arc<rustls::ServerConfig>` will do) before its first
    /// request, on either [`Model`]; see [`Server::tls`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use evloop::http::{HttpServer, Response};
    ///
    /// let tls = evloop::tls::server_config("cert.pem", "key.pem")?;
    /// let server = HttpServer::new("127.0.0.1:3443".parse().unwrap())
    ///     .tls(tls)
    ///     .start(|_req| Response::text("Hello over TLS!"))?;
    /// server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: impl Into<crate::tls::TlsAcceptor>) -> Self {
        self.server = self.server.tls(acceptor);
        self
    }

    /// Per-connection config; see [`Server::config`]. Its idle timeout is
    /// replaced by [`HttpConfig::keep_alive_timeout`] once a connection
    /// opens, and its `max_input` is raised to `max_head + max_body` if
    /// lower.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Starts serving with `app` answering every request.
    ///
    /// # Errors
    ///
    /// As [`Server::start`]: the address cannot be bound, or a loop cannot
    /// be created.
    pub fn start<F>(self, app: F) -> io::Result<ServerHandle>
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        self.start_app(Immediate(app))
    }

    /// Starts serving with `app`, which is handed each request with a
    /// [`Responder`] to answer it with, now or later, from the loop or
    /// from any thread, whole or as a stream (see [`Responder`]).
    ///
    /// Answers leave in request order, pipelined requests included (up to
    /// 32 are handed over before their answers go; the rest wait). While
    /// answers are awaited the connection's reading pauses. On the thread
    /// baseline ([`Model::Threads`]), whose threads block in `read`, a
    /// connection awaiting an answer looks for it every millisecond,
    /// backing off to every 16 ms.
    ///
    /// # Errors
    ///
    /// As [`start`](HttpServer::start).
    ///
    /// # Examples
    ///
    /// Two routes on one loop: `/slow` answers from another thread after a
    /// second, while `/fast` requests on the same loop are answered at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use evloop::http::{HttpServer, Request, Responder, Response};
    ///
    /// let server = HttpServer::new("127.0.0.1:0".parse().unwrap())
    ///     .threads(1)
    ///     .start_deferred(|req: Request, responder: Responder| {
    ///         if req.path() == "/slow" {
    ///             std::thread::spawn(move || {
    ///                 std::thread::sleep(Duration::from_secs(1));
    ///                 responder.send(Response::text("slow"));
    ///             });
    ///         } else {
    ///             responder.send(Response::text("fast"));
    ///         }
    ///     })?;
    /// server.shutdown(Duration::from_secs(1));
    /// server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start_deferred<F>(self, app: F) -> io::Result<ServerHandle>
    where
        F: Fn(Request, Responder) + Send + Sync + 'static,
    {
        self.start_app(Deferred(app))
    }

    /// Starts serving with either shape of application.
    fn start_app<A: App>(self, app: A) -> io::Result<ServerHandle> {
        let needed = self.http.max_head.saturating_add(self.http.max_body);
        let mut config = self.config;
        if config.get_max_input() < needed {
            config = config.max_input(needed);
        }
        let output_limit = config.get_write_watermarks().1;
        let app = Arc::new(app);
        let http = Arc::new(self.http);
        self.server
            .config(config)
            .start(move || HttpHandler::new(Arc::clone(&app), Arc::clone(&http), output_limit))
    }
}
