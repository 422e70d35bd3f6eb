//! The thread-per-connection baseline: the same [`Handler`](crate::Handler)
//! driven on blocking `std::net` sockets, one OS thread per connection.
//!
//! This is the model an event loop replaces. It is kept so that the two can be
//! measured side by side on identical application logic: a benchmark that
//! swaps [`EventLoop`](crate::EventLoop) for [`ThreadServer`] changes the
//! execution model and nothing else.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use bytes::BytesMut;
//! use evloop::baseline::ThreadServer;
//! use evloop::{Config, Conn, Handler};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
//!         conn.write_bytes(input.split().freeze());
//!     }
//! }
//!
//! let server = ThreadServer::bind("127.0.0.1:0".parse().unwrap(), Config::default(), || Echo)?;
//! let handle = server.start()?;
//! // ... serve clients on handle.local_addr() ...
//! handle.shutdown(Duration::from_secs(1));
//! handle.wait();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How it works
//!
//! * The **acceptor** — the thread that calls [`ThreadServer::run`] — blocks
//!   in `accept` and starts one thread per connection. Out of fds, memory or
//!   threads, it backs off (10 ms doubling to 1 s, one warning per episode)
//!   as the reactor does, and keeps serving the open connections.
//! * Each **connection thread** makes its handler (so a handler need not be
//!   `Send`) and repeats one step until the connection ends: run an expired
//!   timer, else the session's deferred work, else write queued output (one
//!   write), else read (one read).
//!   Reads and writes block, bounded by the nearest deadline (handler timer
//!   or idle timeout) through the socket's read and write timeouts.
//! * [`ThreadHandle`] reaches the server from any thread: counters, shutdown,
//!   waiting for the end.
//!
//! # Same handler, same meaning
//!
//! Both models drive one per-connection session, which holds the whole
//! policy — which callback runs when, what a handler's requests mean, when
//! input is offered again, how a close proceeds, timers, limits, counting —
//! so every [`Conn`](crate::Conn) request means what it means on the
//! reactor, by construction, and the same
//! [`CloseReason`](crate::CloseReason) ends each path: [`close`](crate::Conn::close)
//! flushes then closes, [`abort`](crate::Conn::abort) and a panicking
//! callback reset the connection, [`shutdown_write`](crate::Conn::shutdown_write)
//! flushes then ends our stream while reading goes on, input that arrived
//! before the peer's end of stream is offered to `on_data` while the handler
//! consumes it and then [`on_eof`](crate::Handler::on_eof) sees the rest,
//! and unconsumed input above [`Config::max_input`](crate::Config::max_input)
//! closes. [`on_close`](crate::Handler::on_close) runs exactly once per
//! connection. This module only moves the bytes, with blocking calls.
//!
//! What differs follows from blocking I/O:
//!
//! * A thread reads or writes, never both: reading waits until queued output
//!   is flushed, so output never stays queued beside a read. A callback that
//!   leaves output above the high watermark gets
//!   [`on_drained`](crate::Handler::on_drained) once it drains to the low one,
//!   as on a reactor whose socket took none of it at once.
//! * While the handler has reading paused, the thread sleeps until a timer
//!   or shutdown; a reset from the peer is noticed when reading resumes.
//! * [`Config::read_budget`](crate::Config::read_budget) and
//!   [`Config::events_capacity`](crate::Config::events_capacity) do not
//!   apply: the kernel's scheduler shares the CPU between connections.
//!
//! # Shutdown
//!
//! [`ThreadHandle::shutdown`] stops accepting at once, shuts down the read
//! half of every connection so blocked reads return, and lets each connection
//! flush what it has queued before it closes with
//! [`CloseReason::Shutdown`](crate::CloseReason::Shutdown). Connections left
//! after the grace period are reset, which also ends writes blocked on a peer
//! that does not read. [`ThreadServer::run`] returns, and
//! [`ThreadHandle::wait`] with it, once every connection thread has finished.

mod accept;
mod connection;
mod handle;
mod io;
mod link;
mod server;
mod shared;
mod worker;

pub use handle::ThreadHandle;
pub use server::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, ThreadServer};
