//! [`Server`]: several event loops in one process, one per thread.

mod acceptor;
mod builder;
mod handle;

pub use builder::{Balance, Model, Server};
pub use handle::ServerHandle;
