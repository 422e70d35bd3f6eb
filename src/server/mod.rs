//! [`Server`]: several event loops in one process, one per thread.

mod acceptor;
mod balance;
mod builder;
mod handle;

pub use balance::Balance;
pub use builder::{Model, Server};
pub use handle::ServerHandle;
