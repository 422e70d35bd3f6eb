//! TLS on both execution models, inbound and outbound, over
//! [rustls](https://docs.rs/rustls/0.23) with its `ring` provider (feature
//! `tls`, on by default).
//!
//! TLS sits between the socket and the handler: a handler sees plaintext
//! through the same [`Conn`](crate::Conn) API, on the reactor and the
//! thread baseline alike, and learns what the handshake settled (server
//! name, ALPN protocol) from [`Conn::tls`](crate::Conn::tls).
//!
//! * **Serving**: give a [`TlsAcceptor`] (or an `Arc<rustls::ServerConfig>`)
//!   to [`Server::tls`](crate::Server::tls),
//!   [`EventLoop::tls`](crate::EventLoop::tls) or
//!   [`ThreadServer::tls`](crate::baseline::ThreadServer::tls). Every
//!   accepted connection then shakes hands before
//!   [`on_open`](crate::Handler::on_open); [`TlsAcceptor::set_config`]
//!   swaps the certificate for new connections without a restart.
//! * **Dialling**: [`EventLoop::connect_tls`](crate::EventLoop::connect_tls)
//!   and [`LoopHandle::connect_tls`](crate::LoopHandle::connect_tls), with a
//!   [`rustls::ClientConfig`] whose root store the caller provides
//!   ([`client_config`]).
//! * **Certificates**: [`server_config`] reads a PEM certificate chain and
//!   key; [`server_config_from_pem`] and [`certificates`] /
//!   [`private_key`] take them from memory or files; anything rustls
//!   accepts works, this module only saves the boilerplate.
//!
//! # Lifecycle
//!
//! * The handshake is bounded by
//!   [`Config::handshake_timeout`](crate::Config::handshake_timeout) (10 s):
//!   [`CloseReason::HandshakeTimeout`](crate::CloseReason::HandshakeTimeout).
//!   A handshake that fails — bytes that are not TLS, no protocol or cipher
//!   in common, a certificate the client refuses — closes with
//!   [`CloseReason::Tls`](crate::CloseReason::Tls) after our alert is sent.
//!   In either case the handler sees `on_close` only.
//! * A graceful close ([`Conn::close`](crate::Conn::close), end of stream,
//!   input limit, shutdown) sends `close_notify` after the handler's output
//!   and before the TCP FIN.
//! * The peer's `close_notify` is end of stream
//!   ([`CloseReason::PeerClosed`](crate::CloseReason::PeerClosed)); a TCP end
//!   of stream without it is an end of stream as well (input offered,
//!   `on_eof`) but closes with
//!   [`CloseReason::Truncated`](crate::CloseReason::Truncated).
//! * Memory: records are moved out of rustls as they are made, and rustls's
//!   buffers are limited to 16 KiB of records before the handshake completes
//!   (`set_buffer_limit`); the records waiting for the socket count against
//!   the [write watermarks](crate::Config::write_watermarks) with the
//!   plaintext queue, so backpressure holds as on a plain connection. An idle
//!   connection keeps rustls's state and its 4 KiB read buffer.
//! * Counters: `bytes_read` and `bytes_written` in [`Stats`](crate::Stats)
//!   count plaintext.
//!
//! # Examples
//!
//! An echo server over TLS; the client is rustls's own, trusting the
//! certificate's issuer:
//!
//! ```no_run
//! use evloop::bytes::BytesMut;
//! use evloop::{Conn, Handler, Server};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
//!         conn.write_bytes(input.split().freeze());
//!     }
//! }
//!
//! let tls = evloop::tls::server_config("cert.pem", "key.pem")?;
//! let server = Server::new("127.0.0.1:7443".parse().unwrap()).tls(tls).start(|| Echo)?;
//! server.join()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Then `openssl s_client -connect 127.0.0.1:7443 -CAfile ca.pem` talks to it.

mod acceptor;
mod config;
mod event_loop;
mod info;
mod layer;

pub use acceptor::TlsAcceptor;
pub use config::{certificates, client_config, private_key, server_config, server_config_from_pem};
pub use info::TlsInfo;
/// The rustls crate, re-exported so that configs are built with the
/// version evloop uses.
pub use rustls;

pub(crate) use layer::{TlsLayer, TlsState};
