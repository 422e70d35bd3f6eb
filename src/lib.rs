//! Fast network servers written as event loops.
//!
//! evloop runs a server as an event loop on [`mio`](https://docs.rs/mio): one poller per thread,
//! connections in a slab, readiness events dispatched to a [`Handler`] per
//! connection. Waiting connections cost a slab entry and a few hundred bytes,
//! not a thread with its stack, and the loop switches between connections
//! without the kernel switching threads — which is why an event loop serves
//! thousands of connections on a few cores.
//!
//! # Example: an echo server
//!
//! ```no_run
//! use evloop::bytes::BytesMut;
//! use evloop::{Config, Conn, EventLoop, Handler};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
//!         conn.write(input); // queued, written when on_data returns
//!         input.clear(); // consumed; anything left would stay for the next call
//!     }
//! }
//!
//! let addr = "127.0.0.1:7000".parse().unwrap();
//! EventLoop::bind(addr, Config::default(), || Echo)?.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How the pieces fit
//!
//! * [`Handler`] — your application logic, one instance per connection, made
//!   by a factory closure. Callbacks: open, data, drained, end of stream,
//!   timer, close (with a [`CloseReason`]).
//! * [`Conn`] — what a handler can do to its connection during a callback:
//!   write (copying, or zero-copy [`Bytes`](https://docs.rs/bytes/1/bytes/struct.Bytes.html)), close, abort, shut down
//!   the write half, pause and resume reading, timers, idle timeout.
//! * [`EventLoop`] — the reactor that drives handlers, one thread; its docs
//!   state the loop's contract. [`LoopHandle`] reaches it from other threads.
//!   It dials too: [`EventLoop::connect`] (or [`LoopHandle::connect`]) opens
//!   an outbound connection driven by the same handlers, and
//!   [`EventLoop::new`] makes a client loop with no listener.
//! * [`Server`] — several loops in one process, one per thread, with
//!   [`Balance`] choosing how connections reach them; [`ServerHandle`] gives
//!   stats, graceful shutdown and join.
//! * [`Remote`] — the cross-thread door: write to, close, or run a closure on
//!   any connection by its [`ConnId`], from any thread or handler.
//! * [`baseline`] — the same handlers on one OS thread per connection
//!   ([`Model::Threads`]), the model an event loop is measured against.
//! * [`Bind`] — where a server listens: a TCP address or a Unix domain
//!   socket ([`UnixBind`]: stale files replaced, mode, removal at
//!   shutdown, abstract names), on either model; [`Peer`] is who connected
//!   (a TCP address, or a Unix peer's pid, uid and gid).
//! * [`Config`] — per-connection limits: watermarks, input limit, read
//!   budget, idle timeout, TLS handshake timeout.
//! * `tls` (feature `tls`, on by default) — TLS under the same handlers,
//!   on both models: `Server::tls` and `EventLoop::tls` serve it,
//!   `EventLoop::connect_tls` dials it, `Conn::tls` tells a handler what
//!   the handshake settled (SNI, ALPN).
//! * `http` (feature `http`, on by default) — HTTP/1.1 servers: an
//!   application is one `Fn(&Request) -> Response`, run with
//!   `http::serve` or `http::HttpServer`; and `http::get`, a client built on
//!   an outbound connection.
//! * [`udp`] — UDP on the same kind of loops: a `DatagramHandler` per
//!   socket, several loops on one address with `SO_REUSEPORT`, datagrams
//!   received and sent in batches (`recvmmsg`, `sendmmsg`).
//! * [`Stats`] — per-loop counters, printable with every counter labelled;
//!   [`sys`] — OS measurements (CPU time, context switches, memory, threads,
//!   open fds) for this or another process.
//! * [`bytes`](https://docs.rs/bytes/1) — the `bytes` crate, re-exported: a handler receives its
//!   input as a `BytesMut` and may write `Bytes`, so an application needs
//!   no dependency of its own on `bytes` (and cannot pull in a second,
//!   incompatible version).
//!
//! # Guarantees
//!
//! * Every socket is closed exactly once, and [`Handler::on_close`] runs once,
//!   whatever closes the connection: end of stream, reset, error, idle
//!   timeout, abort, input limit, shutdown or a panicking handler — and, for
//!   an outbound connection that never connected, refusal or connect timeout.
//! * A handler that panics closes its own connection only.
//! * Memory per connection is bounded: output above the high watermark
//!   pauses reading (backpressure), input above the limit closes.
//! * Running out of file descriptors never stops the server nor spins a core.

#![deny(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn
)]
#![doc(test(attr(deny(warnings))))]

mod addr;
pub mod baseline;
mod buf;
mod close;
mod config;
mod conn;
mod conn_id;
// Entry points for fuzz/ and the property tests; not part of the API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod handler;
#[cfg(feature = "http")]
pub mod http;
mod limit;
mod listener;
mod reactor;
mod server;
mod session;
mod stats;
pub mod sys;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
pub mod udp;

pub use addr::{Bind, Peer, UnixAddr, UnixBind};
/// The [`bytes`](https://docs.rs/bytes/1) crate, whose `BytesMut` and
/// `Bytes` the [`Handler`] callbacks and [`Conn::write_bytes`] take.
pub use bytes;
pub use close::CloseReason;
pub use config::Config;
pub use conn::Conn;
pub use conn_id::ConnId;
pub use handler::Handler;
pub use reactor::{ConnClosed, EventLoop, LoopHandle, Remote};
pub use server::{Balance, Handover, Listeners, Model, Pin, Server, ServerHandle, Takeover};
pub use stats::Stats;
pub use timer::TimerId;

// The README's Rust blocks are compiled as doctests of this item, so that
// the code a newcomer copies first keeps building. They use HTTP and TLS, so
// they build with the default features.
#[cfg(all(doctest, feature = "http", feature = "tls"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
