//! [`TlsAcceptor`]: the server side's TLS settings, replaceable while the
//! server runs.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;

/// What a server needs to accept TLS connections: a
/// [`rustls::ServerConfig`] (certificates, key, protocols, ALPN), which can
/// be replaced while the server runs.
///
/// Clones share the setting. Give one to [`Server::tls`](crate::Server::tls)
/// (or [`EventLoop::tls`](crate::EventLoop::tls),
/// [`ThreadServer::tls`](crate::baseline::ThreadServer::tls)) and keep
/// another: [`set_config`](TlsAcceptor::set_config) swaps the certificate
/// without a restart. Connections accepted from then on use the new config;
/// open ones keep the one they shook hands with.
///
/// Each accepted connection takes the current config under a read lock
/// (an `Arc` clone), once, before its handshake.
///
/// # Examples
///
/// ```no_run
/// use evloop::tls::{self, TlsAcceptor};
///
/// let acceptor = TlsAcceptor::new(tls::server_config("cert.pem", "key.pem")?);
/// // ... start a server with `.tls(acceptor.clone())`; later, on a renewal:
/// acceptor.set_config(tls::server_config("new-cert.pem", "new-key.pem")?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    /// The config new connections use.
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl TlsAcceptor {
    /// An acceptor with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor {
            current: Arc::new(RwLock::new(config)),
        }
    }

    /// Replaces the config: connections accepted from now on use `config`.
    pub fn set_config(&self, config: Arc<ServerConfig>) {
        // Nothing panics under the lock; a poisoned one still holds a config.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        log::debug!("TLS server config replaced");
    }

    /// The config new connections use now.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The server side of a new connection, with the current config.
    pub(crate) fn accept(&self) -> Result<rustls::Connection, rustls::Error> {
        Ok(rustls::ServerConnection::new(self.config())?.into())
    }
}

impl From<Arc<ServerConfig>> for TlsAcceptor {
    fn from(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor::new(config)
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config().alpn_protocols.len())
            .finish_non_exhaustive()
    }
}
