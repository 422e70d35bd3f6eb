//! The acceptor thread of round-robin and least-connections balancing: it
//! accepts every connection and hands it to a loop through the loop's door.
//!
//! It reuses the reactor's [`Acceptor`], so running out of fds backs off here
//! exactly as it does in a loop. Stopping is a flag plus a wake of its poll.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use log::debug;
use mio::{Events, Poll, Token, Waker};

use super::balance::Balance;
use crate::Peer;
use crate::limit::ConnLimit;
use crate::listener::Listener;
use crate::reactor::{Accepted, Acceptor, Command, Door, Episodes, Slot};

/// Token of the acceptor's stop waker (the listener uses the reactor's own).
const STOP: Token = Token(0);

/// What the server's handle shares with the acceptor thread.
#[derive(Debug)]
pub(crate) struct AcceptorShared {
    /// Set to make the thread close the listener and exit.
    stop: AtomicBool,
    /// Interrupts the thread's poll.
    waker: Waker,
    /// Accepting suspended for lack of fds (as [`Stats::accept_backoffs`](crate::Stats)).
    pub(crate) backoffs: AtomicU64,
    /// Connections closed at once at the connection cap.
    pub(crate) rejected: AtomicU64,
}

/// A running acceptor thread.
#[derive(Debug)]
pub(crate) struct AcceptorThread {
    /// Shared with the thread.
    pub(crate) shared: Arc<AcceptorShared>,
    /// The thread, until joined.
    pub(crate) thread: Option<JoinHandle<io::Result<()>>>,
}

impl AcceptorThread {
    /// Starts accepting on `listener` for the loops behind `doors`.
    pub(crate) fn start(
        listener: Listener,
        doors: Arc<[Arc<Door>]>,
        balance: Balance,
        limit: Arc<ConnLimit>,
    ) -> io::Result<AcceptorThread> {
        let poll = Poll::new()?;
        let shared = Arc::new(AcceptorShared {
            stop: AtomicBool::new(false),
            waker: Waker::new(poll.registry(), STOP)?,
            backoffs: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        });
        // The server's only acceptor: its episodes are the server's.
        let acceptor = Acceptor::new(listener, poll.registry(), Arc::new(Episodes::default()))?;
        let mut run = Run {
            poll,
            acceptor,
            doors,
            balance,
            limit,
            shared: Arc::clone(&shared),
            next: 0,
        };
        let thread = std::thread::Builder::new()
            .name("evloop-acceptor".into())
            .spawn(move || run.run())?;
        Ok(AcceptorThread {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks the thread to close the listener and exit.
    pub(crate) fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.shared.waker.wake();
    }
}

/// The acceptor thread's state.
struct Run {
    /// Polls the listener and the stop waker.
    poll: Poll,
    /// The listener, with its back-off.
    acceptor: Acceptor,
    /// The loops to hand connections to.
    doors: Arc<[Arc<Door>]>,
    /// How to pick a loop.
    balance: Balance,
    /// The server-wide connection cap.
    limit: Arc<ConnLimit>,
    /// Shared with the handle.
    shared: Arc<AcceptorShared>,
    /// Round-robin position; also where least-connections starts looking, so
    /// ties rotate instead of always favouring loop 0.
    next: usize,
}

impl Run {
    /// Accepts until stopped; the listener closes when this returns.
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(16);
        while !self.shared.stop.load(Ordering::Acquire) {
            let timeout = self
                .acceptor
                .resume_at()
                .map(|t| t.saturating_duration_since(std::time::Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => result?,
            }
            self.acceptor
                .resume_if_due(self.poll.registry(), std::time::Instant::now());
            self.accept_all();
        }
        debug!("acceptor stopped");
        Ok(())
    }

    /// Accepts every waiting connection and hands each to a loop.
    fn accept_all(&mut self) {
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                return;
            }
            match self
                .acceptor
                .accept(self.poll.registry(), std::time::Instant::now())
            {
                Accepted::Stream(stream, peer) => self.hand_off(stream, peer),
                Accepted::Done => return,
                Accepted::BackedOff => {
                    self.shared.backoffs.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Gives a connection to the chosen loop, within the connection cap.
    fn hand_off(&mut self, stream: socket2::Socket, peer: Peer) {
        let index = self.pick();
        let door = &self.doors[index];
        let Some(slot) = Slot::take(&self.limit, &door.occupancy) else {
            self.shared.rejected.fetch_add(1, Ordering::Relaxed);
            debug!("at the connection limit; closing {peer} at once");
            return;
        };
        // If the loop has exited (shutdown), the socket and the slot are
        // dropped with the command: closed and given back.
        door.send(Command::Adopt(stream, peer, slot));
    }

    /// The index of the loop to receive the next connection.
    fn pick(&mut self) -> usize {
        let n = self.doors.len();
        let start = self.next;
        self.next = (self.next + 1) % n;
        match self.balance {
            Balance::LeastConnections => (0..n)
                .map(|i| (start + i) % n)
                .min_by_key(|&i| self.doors[i].load())
                .unwrap_or(start),
            _ => start,
        }
    }
}
