//! [`ServerHandle`]: watch and stop a running server from any thread.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::Bind;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use log::info;

use super::acceptor::AcceptorThread;
use crate::baseline::ThreadHandle;
use crate::reactor::{Command, Door};
use crate::{Remote, Stats, sys};

/// A cloneable, thread-safe handle to a running [`Server`](crate::Server):
/// its address and stats, a [`Remote`] to reach its connections, shutdown and
/// join.
///
/// # Examples
///
/// Start a server, serve one client, stop it and read its counters:
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::time::Duration;
///
/// use evloop::bytes::BytesMut;
/// use evloop::{CloseReason, Conn, Handler, Server};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
///         conn.write_bytes(input.split().freeze());
///     }
/// }
///
/// let server = Server::new("127.0.0.1:0".parse().unwrap()).threads(2).start(|| Echo)?;
/// let mut client = TcpStream::connect(server.local_addr())?;
/// client.write_all(b"ping")?;
/// let mut echo = [0; 4];
/// client.read_exact(&mut echo)?;
/// assert_eq!(&echo, b"ping");
///
/// // Listeners close at once; open connections get a second to flush, then
/// // close with `CloseReason::Shutdown`; `join` waits for every loop.
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// let stats = server.stats();
/// assert_eq!((stats.accepted, stats.open), (1, 0));
/// assert_eq!(stats.closed_by(&CloseReason::Shutdown), 1);
/// println!("{stats}"); // accepted 1, open 0, rejected 0, closed 1 (shutdown 1); …
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ServerHandle {
    /// Shared by every clone.
    inner: Arc<Inner>,
}

/// The state behind every clone of a handle.
struct Inner {
    /// Where the server listens.
    local: Bind,
    /// Reaches connections by id.
    remote: Remote,
    /// The server itself, in its execution model.
    running: Running,
}

/// A running server, by execution model.
enum Running {
    /// Event loops, one per thread.
    Loops(Loops),
    /// The thread-per-connection baseline ([`Model::Threads`](crate::Model::Threads)).
    Threads(ThreadHandle),
}

/// The loops of a running reactor server.
struct Loops {
    /// Every loop's door, by index.
    doors: Arc<[Arc<Door>]>,
    /// The acceptor thread, under round-robin or least-connections.
    acceptor: Option<AcceptorThread>,
    /// Threads not yet joined, and whether a join has completed.
    joined: Mutex<JoinState>,
    /// Signalled when a join completes, for other joiners.
    joined_cv: Condvar,
}

/// Threads to join; taken by the first caller of `join`.
struct JoinState {
    /// Loop threads, and the acceptor thread if there is one.
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// True once every thread has been joined.
    done: bool,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local", &self.inner.local)
            .field("loops", &self.loops())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The handle of a server of event loops.
    pub(crate) fn new(
        local: Bind,
        doors: Arc<[Arc<Door>]>,
        remote: Remote,
        mut acceptor: Option<AcceptorThread>,
        mut threads: Vec<JoinHandle<io::Result<()>>>,
    ) -> Self {
        threads.extend(acceptor.as_mut().and_then(|a| a.thread.take()));
        let loops = Loops {
            doors,
            acceptor,
            joined: Mutex::new(JoinState { threads, done: false }),
            joined_cv: Condvar::new(),
        };
        ServerHandle::with(local, remote, Running::Loops(loops))
    }

    /// The handle of a thread-per-connection server.
    pub(crate) fn threads(server: ThreadHandle) -> Self {
        let remote = Remote::new(Arc::new([]));
        ServerHandle::with(server.local().clone(), remote, Running::Threads(server))
    }

    /// Wraps the parts every clone shares.
    fn with(local: Bind, remote: Remote, running: Running) -> Self {
        let inner = Inner {
            local,
            remote,
            running,
        };
        ServerHandle {
            inner: Arc::new(inner),
        }
    }

    /// The TCP address the server listens on.
    ///
    /// # Panics
    ///
    /// Panics for a server on a Unix socket; see [`local`](Self::local).
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        self.inner
            .local
            .tcp()
            .expect("this server listens on a Unix socket, not TCP; see ServerHandle::local")
    }

    /// Where the server listens, TCP or Unix.
    pub fn local(&self) -> &Bind {
        &self.inner.local
    }

    /// Number of event loops (0 under [`Model::Threads`](crate::Model::Threads)).
    pub fn loops(&self) -> usize {
        match &self.inner.running {
            Running::Loops(loops) => loops.doors.len(),
            Running::Threads(_) => 0,
        }
    }

    /// A handle that reaches any connection by id.
    pub fn remote(&self) -> Remote {
        self.inner.remote.clone()
    }

    /// Counters summed over all loops (and the acceptor thread). Each loop's
    /// part is at most one of its turns old.
    pub fn stats(&self) -> Stats {
        let loops = match &self.inner.running {
            Running::Threads(server) => return server.stats(),
            Running::Loops(loops) => loops,
        };
        let mut total = Stats::default();
        for stats in self.loop_stats() {
            total.merge(&stats);
        }
        if let Some(acceptor) = &loops.acceptor {
            total.accept_backoffs += acceptor.shared.backoffs.load(Ordering::Relaxed);
            total.rejected += acceptor.shared.rejected.load(Ordering::Relaxed);
        }
        total
    }

    /// Each loop's counters, by loop index (none under
    /// [`Model::Threads`](crate::Model::Threads)).
    pub fn loop_stats(&self) -> Vec<Stats> {
        match &self.inner.running {
            Running::Loops(loops) => loops.doors.iter().map(|door| door.stats.snapshot()).collect(),
            Running::Threads(_) => Vec::new(),
        }
    }

    /// Shuts the server down gracefully and returns at once:
    ///
    /// 1. accepting stops at once: the listeners close;
    /// 2. every connection stops reading, flushes what it has queued, and
    ///    closes with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown)
    ///    (after [`Handler::on_close`](crate::Handler::on_close));
    /// 3. connections still not flushed after `grace` (a peer that stopped
    ///    reading) are reset;
    /// 4. each loop thread exits when it has no connection left.
    ///
    /// [`join`](ServerHandle::join) waits for the end. Calling `shutdown`
    /// again shortens the grace period if the new one ends sooner.
    pub fn shutdown(&self, grace: Duration) {
        match &self.inner.running {
            Running::Threads(server) => server.shutdown(grace),
            Running::Loops(loops) => {
                if let Some(acceptor) = &loops.acceptor {
                    acceptor.stop();
                }
                for door in loops.doors.iter() {
                    door.send(Command::Shutdown(grace));
                }
            }
        }
    }

    /// Stops accepting and lets the open connections finish on their own:
    /// the way out for a server whose listening socket another process has
    /// taken over (see [`Listeners::hand_over`](crate::Listeners::hand_over)).
    ///
    /// 1. accepting stops at once: each loop closes its own descriptor of
    ///    the listener, which goes on listening wherever else it is open,
    ///    its queue of connections untouched;
    /// 2. every open connection is served as before, reads included, until
    ///    its peer or handler closes it;
    /// 3. each loop thread exits with its last connection;
    /// 4. connections still open after `grace` are shut down as by
    ///    [`shutdown`](ServerHandle::shutdown) with no grace: reset.
    ///
    /// Returns at once; [`join`](ServerHandle::join) waits for the end.
    ///
    /// # Errors
    ///
    /// `Unsupported` under [`Model::Threads`](crate::Model::Threads), whose
    /// connection threads cannot be left to finish without a shutdown; and
    /// the error of spawning the thread that ends the grace period.
    pub fn drain(&self, grace: Duration) -> io::Result<()> {
        let Running::Loops(loops) = &self.inner.running else {
            let msg = "a thread-per-connection server cannot drain; shut it down instead";
            return Err(io::Error::new(io::ErrorKind::Unsupported, msg));
        };
        // Weak: a server gone before the grace ends is not kept alive by it.
        let inner = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("evloop-drain".into())
            .spawn(move || {
                std::thread::sleep(grace);
                if let Some(inner) = inner.upgrade() {
                    ServerHandle { inner }.shutdown(Duration::ZERO);
                }
            })?;
        if let Some(acceptor) = &loops.acceptor {
            acceptor.stop();
        }
        for door in loops.doors.iter() {
            door.send(Command::StopAccepting);
        }
        Ok(())
    }

    /// Blocks until every loop thread (and the acceptor) has exited, which
    /// happens only after [`shutdown`](ServerHandle::shutdown). Any clone may
    /// join; all return once the server is down.
    ///
    /// # Errors
    ///
    /// The first error a loop ended with (a broken poller), or an error if a
    /// loop thread panicked. Only the first caller sees errors.
    pub fn join(&self) -> io::Result<()> {
        match &self.inner.running {
            Running::Threads(server) => {
                server.wait();
                Ok(())
            }
            Running::Loops(loops) => loops.join(),
        }
    }

    /// Shuts the server down with `grace` on the first SIGINT (Ctrl-C) or
    /// SIGTERM, and without grace on a second one. Spawns a thread that
    /// waits for the signals. On the first, a service manager that asked
    /// for notices (`NOTIFY_SOCKET`) is sent `STOPPING=1` (see
    /// [`sys::notify`]).
    ///
    /// # Errors
    ///
    /// Fails if the signal handlers cannot be installed.
    pub fn shutdown_on_signals(&self, grace: Duration) -> io::Result<()> {
        let mut signals = sys::TerminationSignals::catch()?;
        let handle = self.clone();
        std::thread::Builder::new()
            .name("evloop-signals".into())
            .spawn(move || {
                for (count, signal) in signals.forever().enumerate() {
                    let grace = if count == 0 { grace } else { Duration::ZERO };
                    info!("{signal}: shutting down (grace {grace:?})");
                    if count == 0 {
                        // A service manager waiting for the end hears of it.
                        if let Err(e) = sys::notify("STOPPING=1") {
                            log::warn!("cannot tell the service manager of the shutdown: {e}");
                        }
                    }
                    handle.shutdown(grace);
                }
            })?;
        Ok(())
    }
}

impl Loops {
    /// Joins every loop thread (and the acceptor) once; later callers wait
    /// for the first to finish.
    fn join(&self) -> io::Result<()> {
        let mut state = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        if state.threads.is_empty() {
            while !state.done {
                state = self.joined_cv.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            return Ok(());
        }
        let threads = std::mem::take(&mut state.threads);
        drop(state);
        let mut result = Ok(());
        for thread in threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a loop thread panicked")));
            result = result.and(outcome);
        }
        let mut state = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        state.done = true;
        self.joined_cv.notify_all();
        result
    }
}
