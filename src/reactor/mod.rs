//! The reactor: an event loop on `mio`, one per thread.

mod accept;
mod connection;
mod event_loop;
mod handle;
mod io;
mod token;

pub use event_loop::EventLoop;
pub use handle::LoopHandle;
