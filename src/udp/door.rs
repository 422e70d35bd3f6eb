//! The cross-thread door of a UDP loop: datagrams handed in by other
//! threads, the stop flag, the counters, and the waker that tells the loop.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use mio::Waker;

use super::stats::SharedUdpStats;

/// A datagram sent from another thread: its bytes and its destination
/// (`None`: the connected peer).
pub(crate) type Handed = (Vec<u8>, Option<SocketAddr>);

/// What other threads share with one loop.
#[derive(Debug)]
pub(crate) struct Door {
    /// Datagrams handed in, and the waker while the loop runs.
    state: Mutex<DoorState>,
    /// Set to stop the loop.
    stop: AtomicBool,
    /// The loop's counters as of its last turn.
    pub(crate) stats: SharedUdpStats,
}

/// The part of a [`Door`] behind its lock.
#[derive(Debug)]
struct DoorState {
    /// Datagrams waiting for the loop, oldest first.
    inbox: Vec<Handed>,
    /// Wakes the loop; `None` once it has stopped, which also closes the
    /// waker's descriptor with the loop rather than with the last handle.
    waker: Option<Waker>,
}

impl Door {
    /// A door to a loop woken by `waker`.
    pub(crate) fn new(waker: Waker) -> Self {
        Door {
            state: Mutex::new(DoorState {
                inbox: Vec::new(),
                waker: Some(waker),
            }),
            stop: AtomicBool::new(false),
            stats: SharedUdpStats::default(),
        }
    }

    /// The state, whatever a panic elsewhere left it in (a `Vec` and an
    /// `Option` cannot be half-updated).
    fn state(&self) -> MutexGuard<'_, DoorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a datagram to the loop, refusing it once `cap` wait.
    ///
    /// # Errors
    ///
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) when `cap` datagrams
    /// already wait; [`BrokenPipe`](io::ErrorKind::BrokenPipe) once the loop
    /// has stopped; the waker's error.
    pub(crate) fn hand(&self, datagram: Handed, cap: usize) -> io::Result<()> {
        let mut state = self.state();
        let Some(waker) = &state.waker else {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the UDP loop has stopped",
            ));
        };
        if state.inbox.len() >= cap {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{cap} datagrams already wait for the UDP loop"),
            ));
        }
        // One wake per batch handed in: the loop takes them all at once.
        if state.inbox.is_empty() {
            waker.wake()?;
        }
        state.inbox.push(datagram);
        Ok(())
    }

    /// Takes the datagrams handed in, oldest first, into `into`.
    pub(crate) fn take(&self, into: &mut Vec<Handed>) {
        std::mem::swap(&mut self.state().inbox, into);
    }

    /// Asks the loop to stop.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(waker) = &self.state().waker {
            // A failed wake leaves the loop running; nothing else can tell it.
            if let Err(e) = waker.wake() {
                log::warn!("cannot wake a UDP loop to stop it: {e}");
            }
        }
    }

    /// Whether [`stop`](Door::stop) was called.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Called by the loop as it ends: closes the waker, refuses what comes.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.waker = None;
        state.inbox.clear();
    }
}
