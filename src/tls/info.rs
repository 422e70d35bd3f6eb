//! [`TlsInfo`]: what a TLS handshake settled, as a handler reads it.

use rustls::{CipherSuite, ProtocolVersion};

/// What the TLS handshake of a connection settled, read through
/// [`Conn::tls`](crate::Conn::tls): the server name, the application
/// protocol, the version and the cipher suite.
///
/// # Examples
///
/// A handler that answers by the protocol the client and server agreed on:
///
/// ```
/// use evloop::bytes::BytesMut;
/// use evloop::{Conn, Handler};
///
/// struct Answer;
///
/// impl Handler for Answer {
///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
///         input.clear();
///         match conn.tls().and_then(|tls| tls.alpn_protocol()) {
///             Some(b"h2") => conn.write(b"HTTP/2 is not spoken here\n"),
///             _ => conn.write(b"hello\n"),
///         }
///     }
/// }
/// # let _ = Answer;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The server name: on an accepted connection the one the client sent
    /// (SNI), on an outbound one the name it was opened for.
    server_name: Option<String>,
    /// The protocol agreed by ALPN.
    alpn: Option<Vec<u8>>,
    /// The TLS version.
    version: Option<ProtocolVersion>,
    /// The cipher suite.
    suite: Option<CipherSuite>,
}

impl TlsInfo {
    /// Reads what a completed handshake settled; `server_name` as above.
    pub(crate) fn of(conn: &rustls::Connection, server_name: Option<String>) -> Self {
        let server_name = match conn {
            rustls::Connection::Server(server) => server.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => server_name,
        };
        TlsInfo {
            server_name,
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version(),
            suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
        }
    }

    /// The server name: the one the client asked for with SNI on an
    /// accepted connection (`None` if it sent none, as clients connecting
    /// to an IP address do), the one given to
    /// [`EventLoop::connect_tls`](crate::EventLoop::connect_tls) on an
    /// outbound one.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The application protocol agreed with ALPN (such as `b"http/1.1"`),
    /// or `None` if either side offered none or they had none in common
    /// and the server went on without.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The TLS version, such as [`ProtocolVersion::TLSv1_3`].
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// The cipher suite, such as `TLS13_AES_128_GCM_SHA256`.
    pub fn cipher_suite(&self) -> Option<CipherSuite> {
        self.suite
    }
}
