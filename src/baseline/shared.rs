//! State shared by the acceptor, the connection threads and every
//! [`ThreadHandle`](super::ThreadHandle): the registry of connections, the
//! counters, and the shutdown protocol.
//!
//! The registry holds a [`Link`] per admitted connection: its socket, which
//! shutdown must reach from another thread, and its counters, which stats
//! must read. A connection's fd is closed when the last `Arc<Link>` drops,
//! which is the connection thread's own once the registry has let go; no
//! other thread can therefore act on an fd number that was reused.
//!
//! Shutdown, in order: the acceptor stops (listener shut down), every
//! registered socket's read half is shut down so blocked reads return, paused
//! connections are woken; each connection flushes and closes. When the grace
//! period ends, the rest are forced: `SO_LINGER` 0 and both halves shut down,
//! which also fails a write blocked on a peer that does not read.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use log::debug;
use socket2::SockRef;

use super::link::{Link, LinkCounters};
use crate::listener::Listener;
use crate::{Bind, CloseReason, Peer, Stats};

/// What the server's threads share.
#[derive(Debug)]
pub(super) struct Shared {
    /// Where the server listens.
    local: Bind,
    /// The listener, owned by the server; reached here only to interrupt a
    /// blocked `accept`, so a handle never keeps the socket open.
    listener: Weak<Listener>,
    /// Connections and counters.
    registry: Mutex<Registry>,
    /// Signalled when shutdown begins: wakes paused connections and an
    /// acceptor pausing after a failure.
    stop: Condvar,
    /// Signalled when the last connection leaves during shutdown, when a
    /// shutdown deadline changes, and when the server has stopped.
    changed: Condvar,
    /// Shutdown has begun; read without the lock at every connection step.
    /// Only written under the lock, so waiters on the condvars see it.
    shutting_down: AtomicBool,
    /// The grace period ended and the remaining connections were reset.
    forced: AtomicBool,
    /// Other processes hold the listening socket too (it was inherited):
    /// shutting it down would stop it listening for them, so a blocked
    /// `accept` is woken by a connection of our own instead.
    listener_shared: AtomicBool,
}

/// The part of [`Shared`] behind its mutex.
#[derive(Debug, Default)]
struct Registry {
    /// Admitted connections not yet closed, by serial number.
    links: HashMap<u64, Arc<Link>>,
    /// Counters of the server plus those of every closed connection. Live
    /// connections' counters are added when a snapshot is taken.
    totals: Stats,
    /// Serial number of the next admitted connection.
    next_serial: u64,
    /// When the grace period ends; set once shutdown has begun.
    deadline: Option<Instant>,
    /// The server has stopped: every connection thread has finished.
    stopped: bool,
}

impl Shared {
    /// State for a server listening on `local_addr`.
    pub(super) fn new(local: Bind, listener: Weak<Listener>) -> Self {
        Shared {
            local,
            listener,
            registry: Mutex::default(),
            stop: Condvar::new(),
            changed: Condvar::new(),
            shutting_down: AtomicBool::new(false),
            forced: AtomicBool::new(false),
            listener_shared: AtomicBool::new(false),
        }
    }

    /// Notes that other processes hold the listening socket too.
    pub(super) fn set_listener_shared(&self) {
        self.listener_shared.store(true, Ordering::Release);
    }

    /// Where the server listens.
    pub(super) fn local(&self) -> &Bind {
        &self.local
    }

    /// The registry. No code panics while holding it, but a poisoned lock is
    /// taken anyway: the counters stay meaningful.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True once shutdown has begun.
    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// True once the grace period ended and connections were reset.
    pub(super) fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire)
    }

    /// Registers an accepted socket that holds a place under the cap;
    /// returns its serial number and link, or `None` after closing it at
    /// once because the server is shutting down.
    pub(super) fn admit(&self, stream: socket2::Socket, peer: Peer) -> Option<(u64, Arc<Link>)> {
        let mut reg = self.lock();
        if self.is_shutting_down() {
            reg.totals.rejected += 1;
            debug!("refused {peer}: shutting down");
            return None;
        }
        let serial = reg.next_serial;
        reg.next_serial += 1;
        let link = Arc::new(Link {
            stream,
            counters: LinkCounters::default(),
        });
        reg.links.insert(serial, Arc::clone(&link));
        Some((serial, link))
    }

    /// Forgets an admitted connection whose thread could not be started.
    pub(super) fn forget(&self, serial: u64) {
        let mut reg = self.lock();
        reg.links.remove(&serial);
        reg.totals.rejected += 1;
        self.notify_if_drained(&reg);
    }

    /// Counts a connection closed at once, without a handler, because the
    /// server was at its connection limit.
    pub(super) fn reject(&self, peer: Peer) {
        self.lock().totals.rejected += 1;
        debug!("refused {peer}: at the connection limit");
    }

    /// A connection thread started serving `serial`.
    pub(super) fn opened(&self) {
        let mut reg = self.lock();
        reg.totals.accepted += 1;
        reg.totals.open += 1;
    }

    /// A connection closed for `reason`: its counters join the totals, and
    /// its socket closes with `own`, the connection's own reference to it.
    pub(super) fn closed(&self, serial: u64, reason: &CloseReason, own: Option<Arc<Link>>) {
        let mut reg = self.lock();
        if let Some(link) = reg.links.remove(&serial) {
            let totals = &mut reg.totals;
            link.counters.add_to(totals);
            totals.open -= 1;
            totals.closed[reason.index()] += 1;
        }
        // The last references: the socket closes here, before anyone is
        // told that the connections have drained.
        drop(own);
        self.notify_if_drained(&reg);
    }

    /// Counts a panic outside a connection's callbacks (in `on_close`).
    pub(super) fn count_panic(&self) {
        self.lock().totals.panics += 1;
    }

    /// Counts a pause of the acceptor.
    pub(super) fn count_backoff(&self) {
        self.lock().totals.accept_backoffs += 1;
    }

    /// The counters now: the totals plus those of every open connection.
    pub(super) fn stats(&self) -> Stats {
        let reg = self.lock();
        let mut stats = reg.totals;
        for link in reg.links.values() {
            link.counters.add_to(&mut stats);
        }
        stats
    }

    /// Sleeps until `deadline` (forever if `None`) or until shutdown begins.
    pub(super) fn sleep_until(&self, deadline: Option<Instant>) {
        let mut reg = self.lock();
        while !self.is_shutting_down() {
            reg = match deadline {
                None => self.stop.wait(reg).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        return;
                    };
                    let waited = self.stop.wait_timeout(reg, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
    }

    /// Begins shutdown, or brings its deadline forward: see the module docs.
    pub(super) fn begin_shutdown(&self, grace: Duration) {
        let mut reg = self.lock();
        let deadline = Instant::now() + grace;
        let first = reg.deadline.is_none();
        reg.deadline = Some(reg.deadline.map_or(deadline, |d| d.min(deadline)));
        if first {
            self.shutting_down.store(true, Ordering::Release);
            debug!("{}: shutting down {} connection(s)", self.local, reg.links.len());
            for link in reg.links.values() {
                // Fails only if the peer is gone already; its thread sees that.
                let _ = link.stream.shutdown(Shutdown::Read);
            }
        }
        drop(reg);
        self.stop.notify_all();
        self.changed.notify_all();
        if first {
            self.interrupt_accept();
        }
    }

    /// Wakes an acceptor blocked in `accept`.
    ///
    /// On Linux, shutting down a listening socket stops it listening (new
    /// connections are refused at once) and makes a blocked `accept` fail
    /// with `EINVAL`: no timer, no extra fd, no wake-up while idle. Where the
    /// OS refuses that, or the socket is shared with other processes (a
    /// socket from systemd, say, which must go on listening once this
    /// process has ended), a connection of our own wakes `accept` instead.
    fn interrupt_accept(&self) {
        let Some(listener) = self.listener.upgrade() else {
            return; // the acceptor is done
        };
        let shared = self.listener_shared.load(Ordering::Acquire);
        if shared || SockRef::from(&*listener).shutdown(Shutdown::Read).is_err() {
            listener.connect_to_self();
        }
    }

    /// The acceptor's last phase: waits for every connection to close,
    /// forcing those left when the grace period ends.
    pub(super) fn drain(&self) {
        let mut reg = self.lock();
        while !reg.links.is_empty() {
            let deadline = reg.deadline.unwrap_or_else(Instant::now);
            let now = Instant::now();
            reg = if self.is_forced() {
                self.changed.wait(reg).unwrap_or_else(PoisonError::into_inner)
            } else if now >= deadline {
                self.force(&reg);
                reg
            } else {
                let waited = self.changed.wait_timeout(reg, deadline - now);
                waited.unwrap_or_else(PoisonError::into_inner).0
            };
        }
    }

    /// Resets every remaining connection: the grace period is over.
    fn force(&self, reg: &Registry) {
        self.forced.store(true, Ordering::Release);
        debug!(
            "{}: resetting {} connection(s) after the grace period",
            self.local,
            reg.links.len()
        );
        for link in reg.links.values() {
            let socket = SockRef::from(&link.stream);
            let _ = socket.set_linger(Some(Duration::ZERO));
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Wakes the drain once the last connection has left during shutdown.
    fn notify_if_drained(&self, reg: &Registry) {
        if reg.deadline.is_some() && reg.links.is_empty() {
            self.changed.notify_all();
        }
    }

    /// Marks the server stopped and wakes [`wait_stopped`](Self::wait_stopped).
    pub(super) fn mark_stopped(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }

    /// Blocks until the server has stopped.
    pub(super) fn wait_stopped(&self) {
        let mut reg = self.lock();
        while !reg.stopped {
            reg = self.changed.wait(reg).unwrap_or_else(PoisonError::into_inner);
        }
    }
}
