//! Accepting connections, with a back-off when the process runs out of fds.
//!
//! `accept` failing with `EMFILE` (process fd limit), `ENFILE` (system limit),
//! `ENOBUFS` or `ENOMEM` cannot be fixed by retrying at once: the pending
//! connection stays in the backlog and an edge- or level-triggered poller
//! reports the listener ready again immediately, so a naive loop spins a core
//! at 100% while serving nobody. Instead the acceptor takes the listener out of
//! the poller and sleeps on a timer, 10 ms at first and doubling up to 1 s;
//! open connections keep being served meanwhile, and as they close they free
//! the fds that let accepting resume.
//!
//! An episode runs from the first pause to the empty backlog that follows;
//! each server logs one warning as it begins and one note as it ends, however
//! many of its acceptors it reaches ([`Episodes`]).
//!
//! Errors that concern one connection only (`ECONNABORTED`, `EPERM` from a
//! firewall, `EPROTO`) are skipped; any other error also backs off rather than
//! stopping the server.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::event::Source;
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};
use socket2::Socket;

use super::io::interrupted;
use super::token::LISTENER;
use crate::addr::{Bind, Peer};
use crate::listener::{Listener, UnixName, unix_peer};
use crate::sys;

/// First pause after an accept failure (the thread baseline uses it too).
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause: long enough to cost nothing, short enough to recover quickly.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The listening socket and its back-off state.
#[derive(Debug)]
pub(crate) struct Acceptor {
    /// The listener; registered with the poller unless backing off.
    listener: PollListener,
    /// Set while accepting is suspended.
    backoff: Option<Backoff>,
    /// Length of the next pause; doubles within one episode.
    next_delay: Duration,
    /// Set from this acceptor's first pause until its backlog is next
    /// empty; while set, it counts as one of `episodes`' acceptors.
    in_episode: bool,
    /// The episodes of every acceptor of the server, logged once each.
    episodes: Arc<Episodes>,
}

/// The accept back-off episodes of one server, shared by its acceptors so
/// that each episode is logged once, however many acceptors it reaches.
///
/// Under `SO_REUSEPORT` every loop accepts on a listener of its own, and a
/// shortage of fds reaches them all at once. Each acceptor still pauses on
/// its own (and its loop counts its pauses in
/// [`Stats::accept_backoffs`](crate::Stats)), but the server's episode begins
/// with the first acceptor to pause, which logs the warning, and ends when the
/// last of those that paused has emptied its backlog, which logs the note. A
/// lone [`EventLoop`](crate::EventLoop) and the acceptor thread of
/// round-robin balancing each have one of their own.
#[derive(Debug, Default)]
pub(crate) struct Episodes {
    /// The count and the log lines change together under this lock, so the
    /// note ending one episode and the warning beginning the next are never
    /// logged out of order. It is taken only on a pause or an episode's end.
    state: Mutex<EpisodeState>,
}

/// What [`Episodes`] counts.
#[derive(Debug, Default)]
struct EpisodeState {
    /// Acceptors that have paused and not yet emptied their backlog; the
    /// server is in an episode while this is above 0.
    acceptors: usize,
    /// Pauses of all acceptors since the episode began.
    pauses: u64,
}

/// A listener of either kind, registered with a poller.
#[derive(Debug)]
enum PollListener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket, with its name (and the socket file it may own, removed
    /// when this, its last clone, closes).
    Unix(UnixListener, UnixName),
}

impl Source for PollListener {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            PollListener::Tcp(l) => l.register(registry, token, interests),
            PollListener::Unix(l, _) => l.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            PollListener::Tcp(l) => l.reregister(registry, token, interests),
            PollListener::Unix(l, _) => l.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            PollListener::Tcp(l) => l.deregister(registry),
            PollListener::Unix(l, _) => l.deregister(registry),
        }
    }
}

impl PollListener {
    /// Accepts one connection, non-blocking, as a socket of either kind.
    fn accept(&self) -> io::Result<(Socket, Peer)> {
        match self {
            PollListener::Tcp(l) => l
                .accept()
                .map(|(stream, addr)| (Socket::from(OwnedFd::from(stream)), Peer::Tcp(addr))),
            PollListener::Unix(l, _) => l.accept().map(|(stream, _)| {
                let peer = unix_peer(stream.as_fd());
                (Socket::from(OwnedFd::from(stream)), peer)
            }),
        }
    }
}

/// A suspension of accepting.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    /// When to try accepting again.
    resume_at: Instant,
}

/// What one call to [`Acceptor::accept`] produced.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// A new connection.
    Stream(Socket, Peer),
    /// The backlog is empty (or accepting is suspended): stop for this turn.
    Done,
    /// Accepting has just been suspended; count it.
    BackedOff,
}

impl Acceptor {
    /// Registers `listener` with the poller; its episodes are logged with
    /// those of the other acceptors sharing `episodes`.
    pub(crate) fn new(listener: Listener, registry: &Registry, episodes: Arc<Episodes>) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut listener = match listener {
            Listener::Tcp(l) => PollListener::Tcp(TcpListener::from_std(l)),
            Listener::Unix(l, name) => PollListener::Unix(UnixListener::from_std(l), name),
        };
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Acceptor {
            listener,
            backoff: None,
            next_delay: MIN_BACKOFF,
            in_episode: false,
            episodes,
        })
    }

    /// Where the listener listens.
    pub(crate) fn local(&self) -> io::Result<Bind> {
        match &self.listener {
            PollListener::Tcp(l) => l.local_addr().map(Bind::Tcp),
            PollListener::Unix(_, name) => Ok(match &name.addr {
                Some(addr) => Bind::from(addr.clone()),
                None => Bind::unix(""),
            }),
        }
    }

    /// When the current suspension ends, if accepting is suspended.
    pub(crate) fn resume_at(&self) -> Option<Instant> {
        self.backoff.map(|b| b.resume_at)
    }

    /// Ends a suspension whose time has come; returns true if accepting
    /// should be tried now.
    pub(crate) fn resume_if_due(&mut self, registry: &Registry, now: Instant) -> bool {
        match self.backoff {
            Some(b) if b.resume_at <= now => {
                self.backoff = None;
                if let Err(e) = registry.register(&mut self.listener, LISTENER, Interest::READABLE) {
                    warn!("re-registering the listener failed: {e}");
                }
                true
            }
            _ => false,
        }
    }

    /// Accepts one connection if one is waiting.
    pub(crate) fn accept(&mut self, registry: &Registry, now: Instant) -> Accepted {
        if self.backoff.is_some() {
            return Accepted::Done;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => {
                    // Progress: retry quickly if fds run out again, but the
                    // episode lasts until the backlog is empty, so a backlog
                    // drained a few fds at a time logs one warning, not one
                    // per refill.
                    self.next_delay = MIN_BACKOFF;
                    return Accepted::Stream(stream, addr);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.end_episode();
                    return Accepted::Done;
                }
                Err(e) if is_transient(&e) => debug!("accept: skipped a failed connection: {e}"),
                Err(e) => {
                    self.back_off(registry, now, &e);
                    return Accepted::BackedOff;
                }
            }
        }
    }

    /// Suspends accepting after `err`.
    fn back_off(&mut self, registry: &Registry, now: Instant, err: &io::Error) {
        self.episodes
            .paused(!self.in_episode, "accept", err, is_resource_exhaustion(err));
        self.in_episode = true;
        let delay = self.next_delay;
        self.next_delay = (delay * 2).min(MAX_BACKOFF);
        self.backoff = Some(Backoff {
            resume_at: now + delay,
        });
        if let Err(e) = registry.deregister(&mut self.listener) {
            debug!("deregistering the listener failed: {e}");
        }
    }

    /// An emptied backlog ends this acceptor's part in a back-off episode.
    fn end_episode(&mut self) {
        if self.in_episode {
            self.in_episode = false;
            self.next_delay = MIN_BACKOFF;
            self.episodes.left(true);
        }
    }

    /// Takes the listener out of the poller before it is dropped.
    pub(crate) fn close(mut self, registry: &Registry) {
        if self.backoff.is_none() {
            let _ = registry.deregister(&mut self.listener);
        }
    }
}

impl Drop for Acceptor {
    /// An acceptor closed in an episode leaves it without a note, so that
    /// the server's other acceptors can still end it.
    fn drop(&mut self) {
        if self.in_episode {
            self.episodes.left(false);
        }
    }
}

impl Episodes {
    /// Counts a pause after `what` failed with `err`, which `exhausted`
    /// says is a shortage of resources; the acceptor `joins` the episode if
    /// it is its first pause since its backlog was last empty. Warns, and
    /// returns true, if this begins the server's episode.
    pub(crate) fn paused(&self, joins: bool, what: &str, err: &io::Error, exhausted: bool) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.pauses += 1;
        state.acceptors += usize::from(joins);
        let begins = joins && state.acceptors == 1;
        if begins && exhausted {
            warn!(
                "{what} failed ({err}): out of file descriptors, memory or threads; pausing accepts, open connections keep being served"
            );
        } else if begins {
            warn!("{what} failed ({err}); pausing accepts");
        }
        begins
    }

    /// An acceptor in the episode has emptied its backlog (`recovered`) or
    /// closed. If it was the last, the episode ends: noted if `recovered`,
    /// and the episode's pauses are returned.
    pub(crate) fn left(&self, recovered: bool) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        debug_assert!(state.acceptors > 0, "left an episode it was not in");
        state.acceptors = state.acceptors.saturating_sub(1);
        if state.acceptors > 0 {
            return None;
        }
        let pauses = std::mem::take(&mut state.pauses);
        if recovered {
            info!("accepting again after {pauses} pause(s)");
        }
        Some(pauses)
    }
}

/// Errors that concern one pending connection only, or none (a signal).
pub(crate) fn is_transient(err: &io::Error) -> bool {
    sys::is_pending_connection_error(err) || interrupted(err)
}

/// Errors that mean the process or system is out of fds or memory.
pub(crate) fn is_resource_exhaustion(err: &io::Error) -> bool {
    sys::is_out_of_resources(err)
}

use crate::listener::BACKLOG;

/// Binds a non-blocking listener on `addr`, with `SO_REUSEPORT` when several
/// loops are to listen on the same port ([`sys::set_reuse_port`]: an
/// `Unsupported` error where the kernel would not spread connections).
pub(crate) fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        sys::set_reuse_port(&socket)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::errno::{ECONNABORTED, EMFILE};

    #[test]
    fn reuse_port_listeners_share_a_port_where_the_kernel_balances() {
        let first = listen("127.0.0.1:0".parse().unwrap(), true);
        if !sys::REUSE_PORT_BALANCES {
            assert_eq!(first.unwrap_err().kind(), io::ErrorKind::Unsupported);
            return;
        }
        let addr = first.unwrap().local_addr().unwrap();
        let second = listen(addr, true).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
    }

    #[test]
    fn fd_exhaustion_is_not_transient() {
        let emfile = io::Error::from_raw_os_error(EMFILE);
        assert!(is_resource_exhaustion(&emfile));
        assert!(!is_transient(&emfile));
        assert!(is_transient(&io::Error::from_raw_os_error(ECONNABORTED)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_on_success() {
        let poll = mio::Poll::new().unwrap();
        let listener = Listener::Tcp(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let mut acceptor = Acceptor::new(listener, poll.registry(), Arc::default()).unwrap();
        let now = Instant::now();
        let err = io::Error::from_raw_os_error(EMFILE);
        let mut delays = Vec::new();
        for _ in 0..10 {
            acceptor.back_off(poll.registry(), now, &err);
            delays.push(acceptor.resume_at().unwrap() - now);
            assert!(!acceptor.resume_if_due(poll.registry(), now));
            assert!(acceptor.resume_if_due(poll.registry(), now + MAX_BACKOFF));
        }
        assert_eq!(delays[0], MIN_BACKOFF);
        assert_eq!(delays[1], MIN_BACKOFF * 2);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF);
        acceptor.end_episode();
        acceptor.back_off(poll.registry(), now, &err);
        assert_eq!(acceptor.resume_at(), Some(now + MIN_BACKOFF));
    }

    #[test]
    fn overlapping_episodes_of_several_acceptors_are_logged_once() {
        let (episodes, err) = (Episodes::default(), io::Error::from_raw_os_error(EMFILE));
        assert!(
            episodes.paused(true, "accept", &err, true),
            "the first pause warns"
        );
        assert!(
            !episodes.paused(true, "accept", &err, true),
            "a second acceptor joins quietly"
        );
        assert!(
            !episodes.paused(false, "accept", &err, true),
            "pausing again is the same episode"
        );
        assert_eq!(episodes.left(true), None, "one acceptor is still paused");
        assert!(
            !episodes.paused(true, "accept", &err, true),
            "rejoining is quiet too"
        );
        assert_eq!(episodes.left(true), None);
        assert_eq!(episodes.left(true), Some(4), "the last one notes all pauses");
        assert!(
            episodes.paused(true, "accept", &err, true),
            "the next episode warns again"
        );
    }

    #[test]
    fn a_closed_acceptor_leaves_the_episode_to_the_others() {
        let poll = mio::Poll::new().unwrap();
        let episodes = Arc::new(Episodes::default());
        let err = io::Error::from_raw_os_error(EMFILE);
        let mut acceptors = [(); 2].map(|()| {
            let listener = Listener::Tcp(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
            Acceptor::new(listener, poll.registry(), Arc::clone(&episodes)).unwrap()
        });
        for acceptor in &mut acceptors {
            acceptor.back_off(poll.registry(), Instant::now(), &err);
        }
        let [first, mut second] = acceptors;
        first.close(poll.registry());
        second.end_episode();
        assert!(
            episodes.paused(true, "accept", &err, true),
            "the episode ended with the second"
        );
    }
}
