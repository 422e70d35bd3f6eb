//! [`Conn`]: what a handler can do to its connection.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::buf::OutputQueue;
use crate::timer::{TimerId, TimerQueue};
use crate::{CloseReason, Remote};

// The models import the id from here, beside the state it names.
pub(crate) use crate::conn_id::ConnId;

/// Who a timer in the loop's queue belongs to and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerOwner {
    /// The owning connection (on a loop, its key carries the generation, so
    /// a timer that outlives its connection is recognised as stale).
    pub(crate) conn: ConnId,
    /// Which of the connection's timers this is.
    pub(crate) kind: TimerKind,
}

/// The kinds of per-connection timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// Set by the handler; delivered to [`Handler::on_timer`](crate::Handler::on_timer).
    User,
    /// The idle-timeout check; re-armed lazily from the last activity.
    Idle,
    /// The connect timeout of an outbound connection still connecting.
    Connect,
    /// The end of a lingering close's wait for the peer.
    Linger,
    /// The TLS handshake timeout of a connection still shaking hands.
    Handshake,
}

/// How a connection was asked to end, by its handler or on its behalf
/// (input limit, shutdown, end of stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// Flush queued output, then close with this reason.
    Close(CloseReason),
    /// Drop queued output and reset the connection.
    Abort,
}

/// What the handler asked for, and the output it queued. The
/// [`Session`](crate::session::Session) reads these after every callback and
/// carries them out.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// This connection's id.
    pub(crate) id: ConnId,
    /// Who is at the other end.
    pub(crate) peer: crate::Peer,
    /// Bytes queued for the socket.
    pub(crate) out: OutputQueue,
    /// The handler paused reading.
    pub(crate) read_paused: bool,
    /// The handler asked to shut down the write half once output is
    /// flushed; writes are refused from then on.
    pub(crate) shutdown_write: bool,
    /// A close or abort was asked for; writes are refused from then on.
    pub(crate) end: Option<End>,
    /// Current idle timeout; `None` disables it.
    pub(crate) idle_timeout: Option<Duration>,
    /// Live handler timers, cancelled when the connection closes.
    pub(crate) timers: Vec<TimerId>,
    /// What the TLS handshake settled, once it completed; `None` for a
    /// plain connection.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Box<crate::tls::TlsInfo>>,
}

impl ConnState {
    /// State of a fresh connection.
    pub(crate) fn new(id: ConnId, peer: crate::Peer, idle: Option<Duration>) -> Self {
        ConnState {
            id,
            peer,
            out: OutputQueue::default(),
            read_paused: false,
            shutdown_write: false,
            end: None,
            idle_timeout: idle,
            timers: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// True once a close or abort was requested: no more reads, no new writes.
    #[inline]
    pub(crate) fn is_closing(&self) -> bool {
        self.end.is_some()
    }

    /// Requests a graceful close with `reason` unless an end is already
    /// underway.
    pub(crate) fn close_with(&mut self, reason: CloseReason) {
        if self.end.is_none() {
            self.end = Some(End::Close(reason));
        }
    }
}

/// A handler's view of its connection, valid for one callback.
///
/// Writes are queued and written when the callback returns (see
/// [`Handler`](crate::Handler) for the full contract). Requests such as
/// [`close`](Conn::close) and [`pause_reading`](Conn::pause_reading) also take
/// effect when the callback returns.
///
/// # Examples
///
/// A line protocol: greet on open, answer each line, close on `quit` once
/// the goodbye is flushed, and drop clients silent for 30 s.
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::time::Duration;
///
/// use evloop::bytes::BytesMut;
/// use evloop::{Conn, Handler, Server};
///
/// struct Lines;
///
/// impl Handler for Lines {
///     fn on_open(&mut self, conn: &mut Conn<'_>) {
///         conn.set_idle_timeout(Some(Duration::from_secs(30)));
///         conn.write(b"hello\n");
///     }
///
///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
///         // Take whole lines; a partial one stays in `input` for next time.
///         while let Some(end) = input.iter().position(|&b| b == b'\n') {
///             let line = input.split_to(end + 1);
///             if &line[..] == b"quit\n" {
///                 conn.write(b"bye\n");
///                 conn.close(); // once "bye" is written
///                 return;
///             }
///             conn.write(format!("{} bytes\n", line.len() - 1).as_bytes());
///         }
///     }
/// }
///
/// let server = Server::new("127.0.0.1:0".parse().unwrap()).threads(1).start(|| Lines)?;
/// let mut client = TcpStream::connect(server.local_addr())?;
/// client.write_all(b"abc\nquit\n")?;
/// let mut reply = String::new();
/// client.read_to_string(&mut reply)?; // to the end of stream: the server closed
/// assert_eq!(reply, "hello\n3 bytes\nbye\n");
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Conn<'a> {
    /// The connection's state and output.
    state: &'a mut ConnState,
    /// The loop's timer queue.
    timers: &'a mut TimerQueue<TimerOwner>,
    /// The loop's clock for this turn.
    now: Instant,
    /// Reaches other connections; `None` where the model has no such door.
    remote: Option<&'a Remote>,
}

impl fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.state.id)
            .field("peer", &self.state.peer)
            .field("pending_output", &self.state.out.len())
            .finish()
    }
}

impl<'a> Conn<'a> {
    /// Wraps a connection's state for one callback.
    #[inline]
    pub(crate) fn new(
        state: &'a mut ConnState,
        timers: &'a mut TimerQueue<TimerOwner>,
        now: Instant,
        remote: Option<&'a Remote>,
    ) -> Self {
        Conn {
            state,
            timers,
            now,
            remote,
        }
    }

    /// A handle that reaches every connection of this server by id, for
    /// example to broadcast to connections on other loops. `None` on the
    /// thread-per-connection baseline, which has no such door.
    pub fn remote(&self) -> Option<&'a Remote> {
        self.remote
    }

    /// This connection's id.
    #[inline]
    pub fn id(&self) -> ConnId {
        self.state.id
    }

    /// The TCP peer's address.
    ///
    /// Over a Unix domain socket, which has no IP address, this is the
    /// unspecified `0.0.0.0:0`: [`peer`](Conn::peer) tells the two apart
    /// and gives a Unix peer's credentials.
    #[inline]
    pub fn peer_addr(&self) -> SocketAddr {
        self.state.peer.socket_addr()
    }

    /// Who is at the other end: a TCP address, or a peer over a Unix
    /// domain socket with its credentials.
    ///
    /// # Examples
    ///
    /// Serves only the user the server runs as, over a Unix socket:
    ///
    /// ```
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Conn, Handler};
    ///
    /// struct SameUser(u32);
    /// impl Handler for SameUser {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         if conn.peer().cred().map(|c| c.uid) != Some(self.0) {
    ///             conn.abort();
    ///         }
    ///     }
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         conn.write_bytes(input.split().freeze());
    ///     }
    /// }
    /// # let _ = SameUser(0);
    /// ```
    pub fn peer(&self) -> crate::Peer {
        self.state.peer
    }

    /// The process, user and group ids of the peer over a Unix domain
    /// socket (`SO_PEERCRED`, read when the connection was accepted or
    /// made); `None` over TCP, or where the OS does not tell them.
    pub fn peer_cred(&self) -> Option<crate::sys::PeerCred> {
        self.state.peer.cred()
    }

    /// What the TLS handshake settled — the server name the client asked
    /// for (SNI), the application protocol agreed (ALPN), the protocol
    /// version and cipher suite — or `None` on a plain connection.
    ///
    /// On a TLS connection the handler's first callback,
    /// [`on_open`](crate::Handler::on_open), runs once the handshake has
    /// completed, so this is `Some` in every callback of a TLS connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Conn, Handler};
    ///
    /// /// Greets by the name the client asked for, then echoes.
    /// struct Greet;
    ///
    /// impl Handler for Greet {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         let name = conn.tls().and_then(|tls| tls.server_name()).unwrap_or("stranger");
    ///         conn.write(format!("hello, {name}\n").as_bytes());
    ///     }
    ///
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         conn.write_bytes(input.split().freeze());
    ///     }
    /// }
    /// # let _ = Greet;
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&crate::tls::TlsInfo> {
        self.state.tls.as_deref()
    }

    /// Queues a copy of `data` for writing.
    ///
    /// Ignored once the connection is closing (after [`close`](Conn::close),
    /// [`abort`](Conn::abort) or [`shutdown_write`](Conn::shutdown_write)).
    #[inline]
    pub fn write(&mut self, data: &[u8]) {
        if self.accepts_writes() {
            self.state.out.push_copy(data);
        }
    }

    /// Queues `data` for writing without copying it.
    ///
    /// Several queued `Bytes` go out in one vectored write. Ignored once the
    /// connection is closing, like [`write`](Conn::write).
    #[inline]
    pub fn write_bytes(&mut self, data: Bytes) {
        if self.accepts_writes() {
            self.state.out.push_bytes(data);
        }
    }

    /// Bytes queued and not yet taken by the socket.
    #[inline]
    pub fn pending_output(&self) -> usize {
        self.state.out.len()
    }

    /// Closes the connection once its queued output is flushed; nothing more
    /// is delivered to the handler, which then sees
    /// [`CloseReason::Closed`](crate::CloseReason::Closed).
    ///
    /// If the peer's bytes are still unread, the connection closes by
    /// lingering, as web servers do: it shuts down its write half (the peer reads the
    /// output, then end of stream) and reads and discards the peer's bytes
    /// until the peer's end of stream, for at most 2 s and 1 MiB, before
    /// closing the socket. Closing with unread input would make the kernel
    /// send a reset, which can destroy the response before the peer reads it.
    pub fn close(&mut self) {
        self.state.close_with(CloseReason::Closed);
    }

    /// Closes the connection now: queued output is dropped and the peer gets a
    /// reset (`SO_LINGER` 0). The handler sees [`CloseReason::Aborted`](crate::CloseReason::Aborted).
    pub fn abort(&mut self) {
        self.state.end = Some(End::Abort);
        self.state.out.clear();
    }

    /// Shuts down the write half once queued output is flushed (the peer reads
    /// end of stream) while reading goes on. Later writes are ignored.
    pub fn shutdown_write(&mut self) {
        self.state.shutdown_write = true;
    }

    /// Stops reading from the socket until [`resume_reading`](Conn::resume_reading).
    /// Unread bytes wait in the kernel, and TCP flow control slows the peer.
    pub fn pause_reading(&mut self) {
        self.state.read_paused = true;
    }

    /// Resumes reading after [`pause_reading`](Conn::pause_reading).
    pub fn resume_reading(&mut self) {
        self.state.read_paused = false;
    }

    /// True while the handler has reading paused.
    pub fn is_reading_paused(&self) -> bool {
        self.state.read_paused
    }

    /// True once the connection is closing; writes are ignored from then on.
    #[inline]
    pub fn is_closing(&self) -> bool {
        self.state.is_closing()
    }

    /// Sets a timer that calls [`Handler::on_timer`](crate::Handler::on_timer)
    /// after `after`, with the returned id. Timers of a closed connection are
    /// cancelled.
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        let owner = TimerOwner {
            conn: self.state.id,
            kind: TimerKind::User,
        };
        let id = self.timers.insert(crate::timer::deadline(self.now, after), owner);
        self.state.timers.push(id);
        id
    }

    /// Cancels a timer; returns false if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        let Some(pos) = self.state.timers.iter().position(|&t| t == id) else {
            return false;
        };
        self.state.timers.swap_remove(pos);
        self.timers.cancel(id).is_some()
    }

    /// Sets (or with `None` disables) the idle timeout: the connection closes
    /// with [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout) when no
    /// byte is read or written for that long. Starts from the server's
    /// [`Config::idle_timeout`](crate::Config::idle_timeout).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.state.idle_timeout = timeout;
    }

    /// The current idle timeout.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.state.idle_timeout
    }

    /// True while writes are still accepted.
    #[inline]
    fn accepts_writes(&self) -> bool {
        !self.state.is_closing() && !self.state.shutdown_write
    }
}
