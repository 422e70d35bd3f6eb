//! Restarts that lose nothing: a running process hands its listening
//! sockets to the next one over a Unix socket (`SCM_RIGHTS`), then stops
//! accepting and drains, while the next one accepts from the same sockets.
//! The sockets never close, so their accept queues — connections the kernel
//! has completed and nobody has accepted yet — pass over whole: no
//! connection is refused, reset or dropped.
//!
//! See [`Handover`] for the exchange.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use log::{debug, info, warn};

use super::handle::ServerHandle;
use super::inherit::Listeners;
use crate::sys;

/// The first line of the old process's message: the protocol and its version.
const GREETING: &str = "evloop-handover 1";

/// What the new process says once it serves.
const SERVING: &str = "serving";

/// How long either side waits for the other's next message. Generous: the
/// new process starts its loops in between.
const PATIENCE: Duration = Duration::from_secs(30);

/// [`Handover::state`]: waiting for a taker.
const OPEN: u8 = 0;
/// A taker serves the sockets.
const TAKEN: u8 = 1;
/// The offer was withdrawn.
const WITHDRAWN: u8 = 2;

/// The largest message of names: [`sys::MAX_PASSED_FDS`] names of up to 255
/// bytes (systemd's limit on a name) and the greeting.
const MAX_MESSAGE: usize = 64 * 256 + 64;

impl Listeners {
    /// Offers these sockets to the next process on the Unix socket `path`
    /// and, once it serves, [drains](ServerHandle::drain) `servers` (which
    /// serve them) with `grace`: see [`Handover`] for the exchange. Waits on a thread of its own for one taker; the returned
    /// [`Handover`] withdraws the offer when dropped.
    ///
    /// A stale socket file at `path` (its process gone) is replaced; one
    /// that a live process listens on is not.
    ///
    /// # Errors
    ///
    /// `AddrInUse` naming `path` when a live process offers a handover
    /// there; `Unsupported` when a server runs [`Model::Threads`](crate::Model::Threads),
    /// which cannot drain; `InvalidInput` for more than 64 sockets; the
    /// errors of binding the Unix socket.
    pub fn hand_over(
        &self,
        path: impl AsRef<Path>,
        servers: Vec<ServerHandle>,
        grace: Duration,
    ) -> io::Result<Handover> {
        let path = path.as_ref().to_path_buf();
        if servers.iter().any(|s| s.loops() == 0) {
            let msg = "a thread-per-connection server cannot drain, so cannot hand over";
            return Err(io::Error::new(io::ErrorKind::Unsupported, msg));
        }
        if self.sockets().len() > sys::MAX_PASSED_FDS {
            let msg = format!("cannot hand over more than {} sockets", sys::MAX_PASSED_FDS);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        let control = bind_control(&path)?;
        let offer = Offer {
            sockets: Listeners::checked(
                (self.sockets().iter())
                    .map(|(l, name)| Ok((l.try_clone()?, name.clone())))
                    .collect::<io::Result<_>>()?,
            )?,
            servers,
            grace,
            path: path.clone(),
        };
        let state = Arc::new(AtomicU8::new(OPEN));
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("evloop-handover".into())
                .spawn(move || offer.wait(&control, &state))?
        };
        info!("offering a handover on {}", path.display());
        Ok(Handover {
            path,
            state,
            thread: Some(thread),
        })
    }

    /// Takes over the sockets a running process offers on `path` (see
    /// [`hand_over`](Listeners::hand_over)). Start the servers on them
    /// ([`Listeners::server`]), then call [`Takeover::serving`]: until then
    /// the old process serves on, and if the `Takeover` is dropped instead,
    /// it keeps serving.
    ///
    /// # Errors
    ///
    /// Those of connecting to `path` (`NotFound` or `ConnectionRefused` when
    /// nobody offers there); `InvalidData` when the peer does not speak the
    /// protocol or passes something other than listening sockets.
    pub fn take_over(path: impl AsRef<Path>) -> io::Result<Takeover> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("no handover offered on {}: {e}", path.display()),
            )
        })?;
        stream.set_read_timeout(Some(PATIENCE))?;
        let mut buf = vec![0; MAX_MESSAGE];
        let (n, fds) = sys::recv_with_fds(&stream, &mut buf)?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let mut lines = text.lines();
        if lines.next() != Some(GREETING) {
            return Err(invalid(format!(
                "{} does not offer an evloop handover",
                path.display()
            )));
        }
        let names: Vec<String> = lines.map(str::to_owned).collect();
        if names.len() != fds.len() {
            let msg = format!("{} names for {} sockets", names.len(), fds.len());
            return Err(invalid(msg));
        }
        let listeners = Listeners::received(fds, names).map_err(|e| invalid(e.to_string()))?;
        debug!("took over {} socket(s) from {}", listeners.len(), path.display());
        Ok(Takeover { stream, listeners })
    }
}

/// The new process's side of a handover, between receiving the sockets and
/// serving them: see [`Listeners::take_over`].
#[derive(Debug)]
pub struct Takeover {
    /// The connection to the old process.
    stream: UnixStream,
    /// The sockets received.
    listeners: Listeners,
}

impl Takeover {
    /// The sockets taken over, to start servers on.
    pub fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    /// Tells the old process that this one serves the sockets, so that it
    /// stops accepting and drains, and waits for it to let go of the
    /// control socket's path. Returns the sockets, to hand over in turn.
    ///
    /// # Errors
    ///
    /// Those of writing to the old process (it has exited: then nothing
    /// waits to be told, and the sockets are this process's anyway).
    pub fn serving(mut self) -> io::Result<Listeners> {
        self.stream.write_all(format!("{SERVING}\n").as_bytes())?;
        // The old process closes the connection once it has drained and
        // removed its path; an error reading means the same.
        let mut rest = Vec::new();
        let _ = io::Read::read_to_end(&mut self.stream, &mut rest);
        Ok(self.listeners)
    }
}

/// An offer to hand over, open until a process takes it or this is dropped.
///
/// # The exchange, on the control socket at a path both agree on
///
/// ```text
///  old process (Listeners::hand_over)         new process (Listeners::take_over)
///  listens on PATH                            connects to PATH
///  "evloop-handover 1\n" + a name per line ─► receives the descriptors
///    with the descriptors (SCM_RIGHTS)        starts its servers on them, accepting
///                                         ◄── "serving\n"      (Takeover::serving)
///  drains its servers (ServerHandle::drain)
///  removes PATH, closes the connection    ──► returns: PATH is free for its own
///  exits once its connections are done        hand_over
/// ```
///
/// A new process that fails before saying `serving` (it crashes, its
/// handler factory panics) closes the connection instead, and the old one
/// serves on as if nothing had happened; the next attempt connects again.
#[derive(Debug)]
pub struct Handover {
    /// The control socket's path.
    path: PathBuf,
    /// [`OPEN`], [`TAKEN`] or [`WITHDRAWN`], shared with the thread.
    state: Arc<AtomicU8>,
    /// The thread that waits for a taker.
    thread: Option<JoinHandle<io::Result<bool>>>,
}

impl Handover {
    /// Waits until the handover is done or has failed: `true` once another
    /// process serves the sockets and this one's servers drain.
    ///
    /// # Errors
    ///
    /// What the waiting thread ended with: a broken control socket, or the
    /// drain failing to start.
    pub fn wait(mut self) -> io::Result<bool> {
        let thread = self.thread.take().expect("joined once");
        thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the handover thread panicked")))
    }

    /// Whether the handover has happened (or failed for good).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Handover {
    /// Withdraws the offer: wakes the waiting thread with a connection of
    /// its own, which it takes as the sign to stop and remove the path.
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let withdrawn = self
            .state
            .compare_exchange(OPEN, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        // Once taken, the path may be the taker's own offer: leave it be.
        if withdrawn && !thread.is_finished() {
            let _ = UnixStream::connect(&self.path);
        }
        let _ = thread.join();
    }
}

/// What the waiting thread holds.
struct Offer {
    /// Its own descriptors of the sockets offered.
    sockets: Listeners,
    /// The servers to drain once the taker serves.
    servers: Vec<ServerHandle>,
    /// Their grace period.
    grace: Duration,
    /// The control socket's path, removed when the offer ends.
    path: PathBuf,
}

impl Offer {
    /// Offers the sockets to each process that connects until one takes
    /// them (`Ok(true)`) or the offer is withdrawn (`Ok(false)`).
    fn wait(self, control: &UnixListener, state: &AtomicU8) -> io::Result<bool> {
        let taken = loop {
            let (stream, _) = match control.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            if state.load(Ordering::Acquire) == WITHDRAWN {
                break Ok(false);
            }
            match self.offer(&stream, state) {
                Ok(()) => break Ok(true),
                // The taker gave up before serving: serve on, offer again.
                Err(e) => warn!("handover on {} did not happen: {e}", self.path.display()),
            }
        };
        if !matches!(taken, Ok(true)) {
            // A taker removed it already and may be offering there now.
            let _ = std::fs::remove_file(&self.path);
        }
        taken
    }

    /// Passes the sockets to the process on `stream`; once it serves,
    /// drains the servers.
    fn offer(&self, stream: &UnixStream, state: &AtomicU8) -> io::Result<()> {
        stream.set_read_timeout(Some(PATIENCE))?;
        let mut message = String::from(GREETING);
        for name in self.sockets.names() {
            message.push('\n');
            message.push_str(name);
        }
        let fds: Vec<_> = self.sockets.sockets().iter().map(|(l, _)| l.as_fd()).collect();
        sys::send_with_fds(stream, message.as_bytes(), &fds)?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer)?;
        if answer.trim_end() != SERVING {
            return Err(invalid(format!("the new process answered {answer:?}")));
        }
        // Withdrawn meanwhile: this process is stopping anyway; drain all the same.
        let _ = state.compare_exchange(OPEN, TAKEN, Ordering::AcqRel, Ordering::Acquire);
        // A Unix socket's file is the new process's to remove now.
        for (listener, _) in self.sockets.sockets() {
            listener.disown_socket_file();
        }
        info!("the new process serves; draining (grace {:?})", self.grace);
        for server in &self.servers {
            server.drain(self.grace)?;
        }
        // Free the path before the taker hears back: it offers there next.
        let _ = std::fs::remove_file(&self.path);
        Ok(())
    }
}

/// Listens on `path`, replacing a stale socket file there.
fn bind_control(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                let msg = format!(
                    "{} is in use: a live process offers a handover there",
                    path.display()
                );
                return Err(io::Error::new(io::ErrorKind::AddrInUse, msg));
            }
            std::fs::remove_file(path)?;
            UnixListener::bind(path)
        }
        other => other,
    }
    .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", path.display())))
}

/// An `InvalidData` error saying `msg`.
fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
