//! TLS on both execution models, over real sockets: the scenarios of the
//! behavioural suite that make sense over TLS (echo, backpressure and the
//! watermarks, idle timeout, input limit, panics, lingering close,
//! shutdown grace), the TLS lifecycle (handshake timeout, failures,
//! `close_notify` both ways, truncation, SNI and ALPN, a certificate swap),
//! a drain of an HTTPS server (event loops only), running out of fds,
//! outbound TLS, and real clients (`openssl s_client`, Python's `ssl`).
//!
//! Certificates come from a CA made for the run (`pki`). Every test runs
//! [`isolated`](common::isolated) by `on_both_models!`.
#![cfg(feature = "tls")]

#[path = "../common/mod.rs"]
mod common;

mod client;
mod clients;
mod drain;
mod echo;
mod emfile;
mod https;
mod lifecycle;
mod limits;
mod outbound;
mod pki;
mod script;
