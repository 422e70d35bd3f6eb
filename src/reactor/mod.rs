//! The reactor: an event loop on `mio`, one per thread.

mod accept;
mod commands;
mod connection;
mod construct;
mod core;
mod event_loop;
mod handle;
mod io;
mod open;
mod parts;
mod remote;
mod slot;
#[cfg(test)]
mod tests;
mod token;

pub use event_loop::EventLoop;
pub use handle::LoopHandle;
pub use remote::{ConnClosed, Remote};

pub(crate) use accept::{
    Accepted, Acceptor, Episodes, MAX_BACKOFF, MIN_BACKOFF, is_resource_exhaustion, is_transient, listen,
};
pub(crate) use handle::{Command, Door};
#[cfg(feature = "tls")]
pub(crate) use io::read_slice;
pub(crate) use io::{NoSigPipe, has_unread, interrupted, read_into};
pub(crate) use parts::Parts;
pub(crate) use slot::Slot;
