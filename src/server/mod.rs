//! [`Server`]: several event loops in one process, one per thread.

mod acceptor;
mod balance;
mod bind;
mod builder;
mod handle;
mod handover;
mod inherit;
mod pin;
mod start;

pub use balance::Balance;
pub use builder::{Model, Server};
pub use handle::ServerHandle;
pub use handover::{Handover, Takeover};
pub use inherit::Listeners;
pub use pin::Pin;
