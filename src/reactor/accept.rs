//! Accepting connections, with a back-off when the process runs out of fds.
//!
//! `accept` failing with `EMFILE` (process fd limit), `ENFILE` (system limit),
//! `ENOBUFS` or `ENOMEM` cannot be fixed by retrying at once: the pending
//! connection stays in the backlog and an edge- or level-triggered poller
//! reports the listener ready again immediately, so a naive loop spins a core
//! at 100% while serving nobody. Instead the acceptor takes the listener out of
//! the poller and sleeps on a timer, 10 ms at first and doubling up to 1 s;
//! open connections keep being served meanwhile, and as they close they free
//! the fds that let accepting resume. One warning is logged per episode.
//!
//! Errors that concern one connection only (`ECONNABORTED`, `EPERM` from a
//! firewall, `EPROTO`) are skipped; any other error also backs off rather than
//! stopping the server.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry};

use super::token::LISTENER;

/// First pause after an accept failure (the thread baseline uses it too).
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause: long enough to cost nothing, short enough to recover quickly.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The listening socket and its back-off state.
#[derive(Debug)]
pub(crate) struct Acceptor {
    /// The listener; registered with the poller unless backing off.
    listener: TcpListener,
    /// Set while accepting is suspended.
    backoff: Option<Backoff>,
    /// Length of the next pause; doubles within one episode.
    next_delay: Duration,
    /// Back-offs in the current episode (0 when accepting normally).
    episode_backoffs: u32,
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
    Stream(TcpStream, SocketAddr),
    /// The backlog is empty (or accepting is suspended): stop for this turn.
    Done,
    /// Accepting has just been suspended; count it.
    BackedOff,
}

impl Acceptor {
    /// Registers `listener` with the poller.
    pub(crate) fn new(mut listener: TcpListener, registry: &Registry) -> io::Result<Self> {
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Acceptor {
            listener,
            backoff: None,
            next_delay: MIN_BACKOFF,
            episode_backoffs: 0,
        })
    }

    /// The listener's address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
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
        if self.episode_backoffs == 0 {
            if is_resource_exhaustion(err) {
                warn!(
                    "accept failed ({err}): out of file descriptors or memory; pausing accepts, open connections keep being served"
                );
            } else {
                warn!("accept failed ({err}); pausing accepts");
            }
        }
        self.episode_backoffs += 1;
        let delay = self.next_delay;
        self.next_delay = (delay * 2).min(MAX_BACKOFF);
        self.backoff = Some(Backoff {
            resume_at: now + delay,
        });
        if let Err(e) = registry.deregister(&mut self.listener) {
            debug!("deregistering the listener failed: {e}");
        }
    }

    /// An emptied backlog ends a back-off episode.
    fn end_episode(&mut self) {
        if self.episode_backoffs > 0 {
            info!("accepting again after {} pause(s)", self.episode_backoffs);
            self.episode_backoffs = 0;
            self.next_delay = MIN_BACKOFF;
        }
    }

    /// Takes the listener out of the poller before it is dropped.
    pub(crate) fn close(mut self, registry: &Registry) {
        if self.backoff.is_none() {
            let _ = registry.deregister(&mut self.listener);
        }
    }
}

/// Errors that concern one pending connection only.
pub(crate) fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EPERM | libc::EPROTO | libc::EINTR)
    ) || err.kind() == io::ErrorKind::Interrupted
}

/// Errors that mean the process or system is out of fds or memory.
pub(crate) fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_limit_refuses_above_the_cap_and_frees_on_release() {
        let limit = ConnLimit::new(2);
        assert!(limit.try_acquire() && limit.try_acquire());
        assert!(!limit.try_acquire());
        limit.release();
        assert!(limit.try_acquire());
    }

    #[test]
    fn reuse_port_listeners_share_a_port() {
        let first = listen("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let addr = first.local_addr().unwrap();
        let second = listen(addr, true).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
    }

    #[test]
    fn fd_exhaustion_is_not_transient() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_resource_exhaustion(&emfile));
        assert!(!is_transient(&emfile));
        assert!(is_transient(&io::Error::from_raw_os_error(libc::ECONNABORTED)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_on_success() {
        let poll = mio::Poll::new().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut acceptor = Acceptor::new(listener, poll.registry()).unwrap();
        let now = Instant::now();
        let err = io::Error::from_raw_os_error(libc::EMFILE);
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
}

/// The server-wide cap on open connections, shared by every loop and the
/// acceptor thread.
#[derive(Debug)]
pub(crate) struct ConnLimit {
    /// Most connections open at once.
    max: usize,
    /// Connections open (or handed to a loop and not yet closed).
    open: std::sync::atomic::AtomicUsize,
}

impl ConnLimit {
    /// A cap of `max` connections.
    pub(crate) fn new(max: usize) -> Self {
        ConnLimit {
            max,
            open: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Takes a slot for a new connection; false (and nothing taken) at the cap.
    pub(crate) fn try_acquire(&self) -> bool {
        use std::sync::atomic::Ordering::AcqRel;
        let taken = self.open.fetch_add(1, AcqRel);
        if taken >= self.max {
            self.open.fetch_sub(1, AcqRel);
            return false;
        }
        true
    }

    /// Gives a slot back when a connection closes.
    pub(crate) fn release(&self) {
        self.open.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Backlog of listening sockets: the kernel's usual cap (`somaxconn`), so
/// bursts of connections wait in the kernel rather than being refused.
const BACKLOG: i32 = 4096;

/// Binds a non-blocking listener on `addr`, with `SO_REUSEPORT` when several
/// loops are to listen on the same port.
pub(crate) fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
