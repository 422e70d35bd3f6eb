//! The reactor: an event loop on `mio`, one per thread.

mod accept;
mod connection;
mod event_loop;
mod handle;
mod io;
mod remote;
mod token;

pub use event_loop::EventLoop;
pub use handle::LoopHandle;
pub use remote::{ConnClosed, Remote};

pub(crate) use accept::{
    Accepted, Acceptor, ConnLimit, Episodes, MAX_BACKOFF, MIN_BACKOFF, is_resource_exhaustion, is_transient,
    listen,
};
pub(crate) use connection::{LINGER_BYTES, LINGER_TIME};
pub(crate) use event_loop::Parts;
pub(crate) use handle::{Command, Door};
pub(crate) use io::{NoSigPipe, Read, has_unread, interrupted, read_into};
pub(crate) use token::decode as decode_token;
