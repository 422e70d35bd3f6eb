//! [`ConnId`]: which connection, on which loop.

use std::fmt;

/// Identifies a connection within its [`Server`](crate::Server) (or lone
/// [`EventLoop`](crate::EventLoop)): which loop owns it, and its slot and
/// generation there.
///
/// An id names one connection only: once that connection closes, its id never
/// names another, even though the slot it occupied is reused. Ids of two
/// separate servers in one process may be equal; each server's
/// [`Remote`](crate::Remote) reaches only its own connections.
///
/// Ids print one way everywhere, in evloop's logs as in yours:
/// `loop.slot.generation` ([`Display`](fmt::Display), e.g. `1.42.7`), or
/// `ConnId(1.42.7)` as [`Debug`](fmt::Debug).
///
/// # Examples
///
/// A handler that tells each client its id:
///
/// ```
/// use std::io::Read;
/// use std::net::TcpStream;
/// use std::time::Duration;
///
/// use evloop::bytes::BytesMut;
/// use evloop::{Conn, Handler, Server};
///
/// struct WhoAmI;
///
/// impl Handler for WhoAmI {
///     fn on_open(&mut self, conn: &mut Conn<'_>) {
///         let id = conn.id();
///         conn.write(format!("you are {id} on loop {}\n", id.loop_index()).as_bytes());
///         conn.close();
///     }
///
///     fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
///         input.clear();
///     }
/// }
///
/// let server = Server::new("127.0.0.1:0".parse().unwrap()).threads(1).start(|| WhoAmI)?;
/// let mut reply = String::new();
/// TcpStream::connect(server.local_addr())?.read_to_string(&mut reply)?;
/// // Loop 0 (the only one), then the slot and its generation.
/// let id = reply.strip_prefix("you are 0.").expect(&reply);
/// assert!(id.ends_with(" on loop 0\n"), "{reply}");
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// Index of the loop that owns the connection.
    loop_index: u32,
    /// Which use of its slot this is: a slot is reused, an id never.
    generation: u32,
    /// The connection's slot: on a loop, its slab key; on the thread
    /// baseline, its serial number (with generation 0).
    slot: usize,
}

impl ConnId {
    /// Makes the id of the connection in `slot`, of `generation`, on loop
    /// `loop_index`.
    pub(crate) fn new(loop_index: u32, slot: usize, generation: u32) -> Self {
        ConnId {
            loop_index,
            generation,
            slot,
        }
    }

    /// Index of the event loop that owns this connection.
    pub fn loop_index(&self) -> u32 {
        self.loop_index
    }

    /// The connection's slot (see the field).
    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    /// Which use of its slot this connection is.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }
}

/// Shown as its [`Display`](fmt::Display) form, e.g. `ConnId(1.42.7)`.
impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({self})")
    }
}

/// Shown as `loop.slot.generation`, e.g. `1.42.7`.
impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.loop_index, self.slot, self.generation)
    }
}
