//! The TLS entry points of a lone [`EventLoop`]: serving TLS on accepted
//! connections and dialling out over TLS. The loop's own code moves the
//! bytes; these only choose the TLS side each new connection gets.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::{TlsAcceptor, TlsState, rustls};
use crate::{ConnId, EventLoop, Handler};

impl<F, H> EventLoop<F, H>
where
    F: FnMut() -> H,
    H: Handler,
{
    /// Serves TLS on every connection this loop accepts from now on, with
    /// the acceptor's current config (an `Arc<rustls::ServerConfig>` will do;
    /// keep a [`TlsAcceptor`] clone to swap the certificate later). The
    /// handshake completes before [`on_open`](Handler::on_open); see
    /// [`evloop::tls`](crate::tls).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Config, Conn, EventLoop, Handler};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         conn.write_bytes(input.split().freeze());
    ///     }
    /// }
    ///
    /// let tls = evloop::tls::server_config("cert.pem", "key.pem")?;
    /// let addr = "127.0.0.1:7443".parse().unwrap();
    /// EventLoop::bind(addr, Config::default(), || Echo)?.tls(tls).run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tls(mut self, acceptor: impl Into<TlsAcceptor>) -> Self {
        self.set_tls(acceptor.into());
        self
    }

    /// Opens an outbound TLS connection to `addr`, as
    /// [`connect`](Self::connect) does, then shakes hands as a client of
    /// `server_name` with `config`, whose root store decides which servers
    /// are trusted ([`tls::client_config`](crate::tls::client_config)).
    /// [`on_open`](Handler::on_open) runs once the TLS handshake has
    /// completed too; a handshake that fails (a certificate not trusted for
    /// `server_name`, say) closes with
    /// [`CloseReason::Tls`](crate::CloseReason::Tls), one that takes longer
    /// than [`Config::handshake_timeout`](crate::Config::handshake_timeout)
    /// with [`CloseReason::HandshakeTimeout`](crate::CloseReason::HandshakeTimeout).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and `InvalidInput` if rustls refuses
    /// `config` for a client.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use evloop::bytes::BytesMut;
    /// use evloop::tls::{self, rustls::RootCertStore};
    /// use evloop::{Config, Conn, EventLoop, Handler};
    ///
    /// struct Hello;
    /// impl Handler for Hello {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         conn.write(b"hello\n");
    ///     }
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         println!("{:?}", input.split());
    ///         conn.close();
    ///     }
    /// }
    ///
    /// let mut roots = RootCertStore::empty();
    /// roots.add_parsable_certificates(tls::certificates(&std::fs::read("ca.pem")?)?);
    /// let mut client = EventLoop::new(Config::default(), || Hello)?;
    /// let name = "localhost".try_into().expect("a DNS name");
    /// client.connect_tls("127.0.0.1:7443".parse().unwrap(), Duration::from_secs(1), tls::client_config(roots), name)?;
    /// client.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_tls(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
        config: std::sync::Arc<rustls::ClientConfig>,
        server_name: rustls::pki_types::ServerName<'static>,
    ) -> io::Result<ConnId> {
        let name = server_name.to_str().into_owned();
        let client = rustls::ClientConnection::new(config, server_name).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("TLS client for {name}: {e}"))
        })?;
        self.dial(addr, timeout, Some(TlsState::new(client.into(), Some(name))))
    }
}
