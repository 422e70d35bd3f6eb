//! Misfortune while the server is busy, on both execution models:
//!
//! * handlers panic on a few connections while many others echo: only the
//!   panicking connections close, every other byte is echoed exactly, and
//!   the rest keep working;
//! * graceful shutdown while 1,000 clients are mid-transfer: every byte the
//!   server accepted for writing reaches its client, which then reads a clean
//!   end of stream.
//!
//! Each scenario lives in its own module, as a function of the execution
//! model; [`on_both_models!`] runs it on each model
//! [`isolated`](common::isolated): alone, and checked to close every fd it
//! opened.

mod common;
#[path = "under_load/panics.rs"]
mod panics;
#[path = "under_load/reader.rs"]
mod reader;
#[path = "under_load/shutdown.rs"]
mod shutdown;

use std::time::Duration;

use common::localhost;
use evloop::{Handler, Model, Server, ServerHandle};
use panics::panics_under_load_close_only_their_own_connections;
use shutdown::shutdown_under_load_delivers_every_accepted_byte;

on_both_models!(
    panics_under_load_close_only_their_own_connections,
    shutdown_under_load_delivers_every_accepted_byte,
);

/// Starts a two-loop server of `model` (one thread per connection under
/// [`Model::Threads`], where loops do not apply).
fn start<H: Handler>(model: Model, factory: impl Fn() -> H + Send + Sync + 'static) -> ServerHandle {
    Server::new(localhost())
        .threads(2)
        .model(model)
        .start(factory)
        .unwrap()
}

/// Shuts `server` down with `grace`, waits for it and releases its handle.
fn stop(server: ServerHandle, grace: Duration) {
    server.shutdown(grace);
    server.join().unwrap();
}
