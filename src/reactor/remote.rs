//! [`Remote`]: reach any connection of a server from any thread.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use mio::Token;

use super::handle::{Command, Door};
use crate::{Conn, ConnId};

/// A cloneable, thread-safe handle that reaches every connection of a
/// [`Server`](crate::Server) (or of a lone [`EventLoop`](crate::EventLoop)) by
/// its [`ConnId`]: write to it, close it, or run a closure with its [`Conn`]
/// on the loop that owns it.
///
/// # Behaviour
///
/// * Commands for one connection are carried out in the order they were
///   sent, after the output the connection queued before they arrived.
/// * A command is refused with [`ConnClosed`] if the connection is already
///   closed. One sent while it closes is dropped with its connection.
/// * From a handler ([`Conn::remote`]) reaching a connection of the same loop
///   costs no system call; reaching another loop costs at most one wake-up
///   of that loop, shared by every command sent before it runs.
///
/// # Examples
///
/// Push a line to a client from outside its loop, by the id its handler
/// reported, then close it:
///
/// ```
/// use std::io::Read;
/// use std::net::TcpStream;
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// use evloop::bytes::BytesMut;
/// use evloop::{Conn, ConnId, Handler, Server};
///
/// /// Reports its connection's id, and ignores what the client sends.
/// struct Announce(mpsc::Sender<ConnId>);
///
/// impl Handler for Announce {
///     fn on_open(&mut self, conn: &mut Conn<'_>) {
///         let _ = self.0.send(conn.id());
///     }
///
///     fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
///         input.clear();
///     }
/// }
///
/// let (tx, ids) = mpsc::channel();
/// let server = Server::new("127.0.0.1:0".parse().unwrap())
///     .threads(2)
///     .start(move || Announce(tx.clone()))?;
/// let mut client = TcpStream::connect(server.local_addr())?;
/// let id = ids.recv().expect("an id");
///
/// let remote = server.remote(); // or `conn.remote()` inside a handler
/// remote.write(id, "pushed\n").expect("still open");
/// remote.close(id).expect("still open"); // after the write is flushed
/// let mut got = String::new();
/// client.read_to_string(&mut got)?;
/// assert_eq!(got, "pushed\n");
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Remote {
    /// Every loop's door, by loop index.
    doors: Arc<[Arc<Door>]>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("loops", &self.doors.len())
            .finish()
    }
}

/// The connection a command was addressed to is closed (or never existed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnClosed(pub ConnId);

impl fmt::Display for ConnClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection {} is closed", self.0)
    }
}

impl Error for ConnClosed {}

impl Remote {
    /// Wraps the doors of a server's loops.
    pub(crate) fn new(doors: Arc<[Arc<Door>]>) -> Self {
        Remote { doors }
    }

    /// Queues `data` on connection `id`.
    ///
    /// # Errors
    ///
    /// [`ConnClosed`] if the connection is closed.
    pub fn write(&self, id: ConnId, data: impl Into<Bytes>) -> Result<(), ConnClosed> {
        self.send(id, |token| Command::Write(token, data.into()))
    }

    /// Closes connection `id` once the output queued before this call is flushed.
    ///
    /// # Errors
    ///
    /// [`ConnClosed`] if the connection is already closed.
    pub fn close(&self, id: ConnId) -> Result<(), ConnClosed> {
        self.send(id, Command::Close)
    }

    /// Runs `f` with connection `id`'s [`Conn`] on the loop that owns it, as
    /// if it were a handler callback: what it writes is flushed when it
    /// returns, and a panic in it closes only that connection.
    ///
    /// # Errors
    ///
    /// [`ConnClosed`] if the connection is closed.
    pub fn run(&self, id: ConnId, f: impl FnOnce(&mut Conn<'_>) + Send + 'static) -> Result<(), ConnClosed> {
        self.send(id, |token| Command::Run(token, Box::new(f)))
    }

    /// Number of loops this handle reaches.
    pub fn loops(&self) -> usize {
        self.doors.len()
    }

    /// Routes a command to the loop that owns `id`.
    fn send(&self, id: ConnId, cmd: impl FnOnce(Token) -> Command) -> Result<(), ConnClosed> {
        let door = self.doors.get(id.loop_index() as usize).ok_or(ConnClosed(id))?;
        let token = super::token::of(id);
        if door.send_to(token, cmd(token)) {
            Ok(())
        } else {
            Err(ConnClosed(id))
        }
    }
}
