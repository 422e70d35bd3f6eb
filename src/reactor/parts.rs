//! [`Parts`]: what a loop is built from.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use mio::Poll;

use super::accept::Episodes;
use super::handle::{Command, Door};
use super::remote::Remote;
use crate::limit::ConnLimit;

/// What a loop is built from; a [`Server`](crate::Server) makes one per loop.
pub(crate) struct Parts {
    /// The loop's poller, whose registry the door's waker uses.
    pub(crate) poll: Poll,
    /// The loop's door.
    pub(crate) door: Arc<Door>,
    /// The receiving end of the door's channel.
    pub(crate) commands: Receiver<Command>,
    /// Reaches every loop of the server.
    pub(crate) remote: Remote,
    /// The server-wide connection cap.
    pub(crate) limit: Arc<ConnLimit>,
    /// The loop's own listener, if it accepts by itself.
    pub(crate) listener: Option<crate::listener::Listener>,
    /// Accept back-off episodes, shared by every loop of the server that
    /// has a listener, so that each episode is logged once.
    pub(crate) episodes: Arc<Episodes>,
}

impl Parts {
    /// The parts of a loop that is a whole server by itself: loop 0, a
    /// `Remote` reaching only it, no connection cap, episodes of its own.
    pub(super) fn lone(listener: Option<crate::listener::Listener>) -> io::Result<Parts> {
        let (poll, door, commands) = Parts::poll_and_door(0)?;
        let remote = Remote::new(Arc::new([Arc::clone(&door)]));
        let limit = Arc::new(ConnLimit::new(usize::MAX));
        Ok(Parts {
            poll,
            door,
            commands,
            remote,
            limit,
            listener,
            episodes: Arc::default(),
        })
    }

    /// A poller and a door for loop `index`.
    pub(crate) fn poll_and_door(index: u32) -> io::Result<(Poll, Arc<Door>, Receiver<Command>)> {
        let poll = Poll::new()?;
        let (door, commands) = Door::new(poll.registry(), index)?;
        Ok((poll, door, commands))
    }
}
