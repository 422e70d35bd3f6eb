//! [`Core`]: what a loop's connections share, kept apart from the slab so
//! that a connection and the loop's state can be borrowed together.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use mio::unix::SourceFd;
use mio::{Registry, Token};

use super::handle::Door;
use super::remote::Remote;
use super::slot::Slot;
use super::token::Generations;
use crate::Config;
use crate::conn::TimerOwner;
use crate::limit::ConnLimit;
use crate::session::Env;
use crate::stats::Counters;
use crate::timer::TimerQueue;

/// The loop's state shared by all of its connections.
#[derive(Debug)]
pub(crate) struct Core {
    /// Registers and re-registers sockets with this loop's poll.
    registry: Registry,
    /// Handler timers, idle checks, connect and linger timeouts of all
    /// connections.
    pub(super) timers: TimerQueue<TimerOwner>,
    /// This loop's counters.
    pub(super) counters: Counters,
    /// Per-connection limits.
    config: Config,
    /// The time, read once per turn after poll returns.
    pub(super) now: Instant,
    /// Tokens of connections to serve next turn without waiting for an event.
    carried: Vec<Token>,
    /// Tokens of connections finished this turn, released at its end.
    closed: Vec<Token>,
    /// Generation for the next connection's token.
    generations: Generations,
    /// This loop's door: live connection ids, load, published stats.
    door: Arc<Door>,
    /// Reaches every loop of the server, for handlers ([`crate::Conn::remote`]).
    remote: Remote,
    /// The server-wide connection cap.
    limit: Arc<ConnLimit>,
    /// The read buffer lent to whichever connection reads with no input
    /// pending; connections keep a buffer only while holding a partial
    /// message, so an idle connection costs no buffer.
    scratch: BytesMut,
}

impl Core {
    /// The shared state of a loop.
    pub(super) fn new(
        registry: Registry,
        config: Config,
        door: Arc<Door>,
        remote: Remote,
        limit: Arc<ConnLimit>,
    ) -> Self {
        Core {
            registry,
            timers: TimerQueue::new(),
            counters: Counters::default(),
            config,
            now: Instant::now(),
            carried: Vec::new(),
            closed: Vec::new(),
            generations: Generations::new(),
            door,
            remote,
            limit,
            scratch: BytesMut::new(),
        }
    }

    /// The environment a session needs for one call, and the registry its
    /// socket needs.
    pub(super) fn split(&mut self) -> (Env<'_>, &Registry) {
        let env = Env {
            now: self.now,
            config: &self.config,
            timers: &mut self.timers,
            counters: &mut self.counters,
            scratch: &mut self.scratch,
            remote: Some(&self.remote),
        };
        (env, &self.registry)
    }

    /// The loop's registry.
    pub(super) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Per-connection limits.
    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// This loop's door.
    pub(super) fn door(&self) -> &Arc<Door> {
        &self.door
    }

    /// The server-wide reach to connections.
    pub(super) fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Takes a place for a new connection on this loop; `None` at the cap.
    pub(super) fn take_slot(&self) -> Option<Slot> {
        Slot::take(&self.limit, &self.door.occupancy)
    }

    /// The generation for the next connection's token.
    pub(super) fn next_generation(&mut self) -> u32 {
        self.generations.next()
    }

    /// Deregisters a finished connection's socket and queues its entry for
    /// release at the end of the turn.
    pub(super) fn retire(&mut self, stream: &socket2::Socket, token: Token) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
        if let Err(e) = self.registry.deregister(&mut SourceFd(&fd)) {
            let id = super::token::id(self.door.index, token);
            log::debug!("{id}: deregistering failed: {e}");
        }
        self.closed.push(token);
    }

    /// Queues a connection to be served next turn.
    pub(super) fn carry(&mut self, token: Token) {
        self.carried.push(token);
    }

    /// True while connections wait to be served without an event.
    pub(super) fn has_carried(&self) -> bool {
        !self.carried.is_empty()
    }

    /// Takes the connections carried to this turn.
    pub(super) fn take_carried(&mut self) -> Vec<Token> {
        std::mem::take(&mut self.carried)
    }

    /// Hands back the emptied list from [`take_carried`](Self::take_carried),
    /// keeping its allocation unless new entries arrived meanwhile.
    pub(super) fn return_carried(&mut self, mut list: Vec<Token>) {
        if self.carried.is_empty() {
            list.clear();
            self.carried = list;
        }
    }

    /// Takes the tokens of connections finished this turn.
    pub(super) fn drain_closed(&mut self) -> std::vec::Drain<'_, Token> {
        self.closed.drain(..)
    }
}
