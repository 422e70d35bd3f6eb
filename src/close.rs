//! [`CloseReason`]: why a connection closed.

use std::fmt;
use std::io;

/// Why a connection closed; passed to [`Handler::on_close`](crate::Handler::on_close) and counted in
/// [`Stats`](crate::Stats).
///
/// Its [`Display`](fmt::Display) form is a short phrase for logs
/// (`idle timeout`, `reset by peer`, `I/O error: timed out`).
///
/// # Examples
///
/// A client that connects and says nothing is closed by the idle timeout;
/// the handler learns why in `on_close`:
///
/// ```
/// use std::net::TcpStream;
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// use evloop::bytes::BytesMut;
/// use evloop::{CloseReason, Config, Conn, Handler, Server};
///
/// /// Reports why its connection closed.
/// struct Report(mpsc::Sender<CloseReason>);
///
/// impl Handler for Report {
///     fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
///         input.clear();
///     }
///
///     fn on_close(&mut self, reason: &CloseReason) {
///         let _ = self.0.send(reason.clone());
///     }
/// }
///
/// let (tx, reasons) = mpsc::channel();
/// let config = Config::default().idle_timeout(Some(Duration::from_millis(50)));
/// let server = Server::new("127.0.0.1:0".parse().unwrap())
///     .threads(1)
///     .config(config)
///     .start(move || Report(tx.clone()))?;
/// let _silent = TcpStream::connect(server.local_addr())?;
/// let reason = reasons.recv_timeout(Duration::from_secs(10)).expect("a close");
/// assert_eq!(reason, CloseReason::IdleTimeout);
/// assert_eq!(reason.to_string(), "idle timeout");
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// assert_eq!(server.stats().closed_by(&CloseReason::IdleTimeout), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side and all our output was flushed.
    PeerClosed,
    /// The peer reset the connection (`ECONNRESET`, `EPIPE`).
    Reset,
    /// Another I/O error on the socket.
    Error(io::ErrorKind),
    /// No bytes moved for longer than the idle timeout.
    IdleTimeout,
    /// The handler called [`Conn::close`](crate::Conn::close) and its output was flushed.
    Closed,
    /// The handler called [`Conn::abort`](crate::Conn::abort): output dropped, reset sent.
    Aborted,
    /// Unconsumed input exceeded [`Config::max_input`](crate::Config::max_input).
    InputLimit,
    /// The loop is shutting down.
    Shutdown,
    /// A handler callback panicked.
    Panicked,
    /// An outbound connection was refused by the peer (`ECONNREFUSED`).
    ConnectRefused,
    /// An outbound connection did not complete within its connect timeout.
    ConnectTimeout,
    /// The TLS handshake did not complete within
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    HandshakeTimeout,
    /// TLS failed: a handshake the peer or we refused (no common protocol,
    /// a certificate not trusted, bytes that are not TLS at all, such as a
    /// plaintext request sent to a TLS port), an alert from the peer, or a
    /// record that does not decrypt. The reason is logged at debug level;
    /// our alert is sent to the peer before the connection closes.
    Tls,
    /// The peer ended its TCP stream without TLS's `close_notify`, during
    /// the handshake or after it: what it sent may have been cut short by
    /// someone in between. After the handshake, this is an end of stream
    /// all the same: the input is offered and
    /// [`on_eof`](crate::Handler::on_eof) runs, as for
    /// [`PeerClosed`](CloseReason::PeerClosed), which a peer's
    /// `close_notify` gives.
    Truncated,
}

impl CloseReason {
    /// Number of distinct reasons, for per-reason counters.
    pub(crate) const COUNT: usize = 14;

    /// What each reason's counter is called, by [`index`](CloseReason::index):
    /// its [`Display`](fmt::Display) form, less the detail of an I/O error.
    pub(crate) const LABELS: [&'static str; Self::COUNT] = [
        "closed by peer",
        "reset by peer",
        "I/O error",
        "idle timeout",
        "closed by handler",
        "aborted by handler",
        "input limit exceeded",
        "shutdown",
        "handler panicked",
        "connection refused",
        "connect timed out",
        "TLS handshake timed out",
        "TLS error",
        "truncated",
    ];

    /// Dense index of this reason, `0..COUNT`.
    pub(crate) fn index(&self) -> usize {
        match self {
            CloseReason::PeerClosed => 0,
            CloseReason::Reset => 1,
            CloseReason::Error(_) => 2,
            CloseReason::IdleTimeout => 3,
            CloseReason::Closed => 4,
            CloseReason::Aborted => 5,
            CloseReason::InputLimit => 6,
            CloseReason::Shutdown => 7,
            CloseReason::Panicked => 8,
            CloseReason::ConnectRefused => 9,
            CloseReason::ConnectTimeout => 10,
            CloseReason::HandshakeTimeout => 11,
            CloseReason::Tls => 12,
            CloseReason::Truncated => 13,
        }
    }

    /// Maps a socket error to a reason: resets apart, a TLS failure
    /// ([`TlsFailure`]) apart, the rest by kind.
    pub(crate) fn from_io(err: &io::Error) -> CloseReason {
        if err.get_ref().is_some_and(|e| e.is::<TlsFailure>()) {
            return CloseReason::Tls;
        }
        match err.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => {
                CloseReason::Reset
            }
            kind => CloseReason::Error(kind),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by peer"),
            CloseReason::Reset => f.write_str("reset by peer"),
            CloseReason::Error(kind) => write!(f, "I/O error: {kind}"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Closed => f.write_str("closed by handler"),
            CloseReason::Aborted => f.write_str("aborted by handler"),
            CloseReason::InputLimit => f.write_str("input limit exceeded"),
            CloseReason::Shutdown => f.write_str("shutdown"),
            CloseReason::Panicked => f.write_str("handler panicked"),
            CloseReason::ConnectRefused => f.write_str("connection refused"),
            CloseReason::ConnectTimeout => f.write_str("connect timed out"),
            CloseReason::HandshakeTimeout => f.write_str("TLS handshake timed out"),
            CloseReason::Tls => f.write_str("TLS error"),
            CloseReason::Truncated => f.write_str("truncated: end of stream without TLS close_notify"),
        }
    }
}

/// The error a TLS layer wraps in an [`io::Error`] (kind `InvalidData`) when
/// the protocol fails, so that [`CloseReason::from_io`] tells it from a
/// socket's error. Defined whatever the features, as the reason is.
#[derive(Debug)]
pub(crate) struct TlsFailure(pub(crate) String);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each reason.
    const ALL: [CloseReason; CloseReason::COUNT] = [
        CloseReason::PeerClosed,
        CloseReason::Reset,
        CloseReason::Error(io::ErrorKind::TimedOut),
        CloseReason::IdleTimeout,
        CloseReason::Closed,
        CloseReason::Aborted,
        CloseReason::InputLimit,
        CloseReason::Shutdown,
        CloseReason::Panicked,
        CloseReason::ConnectRefused,
        CloseReason::ConnectTimeout,
        CloseReason::HandshakeTimeout,
        CloseReason::Tls,
        CloseReason::Truncated,
    ];

    #[test]
    fn every_reason_has_its_own_index_and_a_label_its_display_starts_with() {
        for (i, reason) in ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
            let label = CloseReason::LABELS[i];
            assert!(reason.to_string().starts_with(label), "{reason:?}: {label}");
        }
    }

    #[test]
    fn a_tls_failure_inside_an_io_error_is_a_tls_reason() {
        let err = io::Error::new(io::ErrorKind::InvalidData, TlsFailure("bad record".into()));
        assert_eq!(CloseReason::from_io(&err), CloseReason::Tls);
        let plain = io::Error::new(io::ErrorKind::InvalidData, "something else");
        assert_eq!(
            CloseReason::from_io(&plain),
            CloseReason::Error(io::ErrorKind::InvalidData)
        );
    }
}
