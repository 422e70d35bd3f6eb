//! [`UdpServer`]: several UDP loops on one address; [`UdpHandle`] and
//! [`UdpSender`] reach them from other threads.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::net::UdpSocket;
use mio::{Interest, Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use super::door::Door;
use super::event_loop::{self, LoopParts, SOCKET, WAKER};
use super::outbox::check_len;
use super::{DatagramHandler, UdpConfig, UdpStats};
use crate::{Pin, sys};

/// A UDP server: `threads` loops, each a thread with its own poller and its
/// own socket, all bound to one address with `SO_REUSEPORT`, so that the
/// kernel spreads the datagrams over them (by a hash of the sender's
/// address and port: one sender's datagrams always reach the same loop).
///
/// # Examples
///
/// An echo server on a free port, asked once and shut down:
///
/// ```
/// use std::net::{SocketAddr, UdpSocket};
/// use evloop::udp::{DatagramHandler, UdpServer, UdpSock};
///
/// struct Echo;
///
/// impl DatagramHandler for Echo {
///     fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr) {
///         let _ = sock.send_to(data, from);
///     }
/// }
///
/// let handle = UdpServer::new("127.0.0.1:0".parse().unwrap()).threads(2).start(|| Echo)?;
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"ping", handle.local_addr())?;
/// let mut buf = [0; 16];
/// let (n, _) = client.recv_from(&mut buf)?;
/// assert_eq!(&buf[..n], b"ping");
/// handle.shutdown();
/// handle.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a UdpServer does nothing until started"]
pub struct UdpServer {
    /// Where to bind.
    addr: SocketAddr,
    /// Loops; `None`: one per core.
    threads: Option<usize>,
    /// CPUs for the loops.
    pin: Pin,
    /// Per-loop settings.
    config: UdpConfig,
    /// The peer every socket is connected to, if any.
    connect: Option<SocketAddr>,
    /// See [`LoopParts::fake_full`].
    #[cfg(test)]
    pub(crate) fake_full: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl UdpServer {
    /// A server for `addr` (port 0: a free port, the same for every loop),
    /// with one loop per core, unpinned, and the default [`UdpConfig`].
    pub fn new(addr: SocketAddr) -> Self {
        UdpServer {
            addr,
            threads: None,
            pin: Pin::Off,
            config: UdpConfig::default(),
            connect: None,
            #[cfg(test)]
            fake_full: None,
        }
    }

    /// Runs `n` loops. Default: one per core
    /// ([`std::thread::available_parallelism`]). More than one needs a
    /// kernel that spreads datagrams over `SO_REUSEPORT` sockets (Linux,
    /// Android, FreeBSD, DragonFly); elsewhere [`start`](UdpServer::start)
    /// refuses it.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn threads(mut self, n: usize) -> Self {
        assert!(n > 0, "a UDP server needs at least one loop");
        self.threads = Some(n);
        self
    }

    /// Pins loop `i` to a CPU, as [`Server::pin`](crate::Server::pin) does
    /// (Linux only). Default: [`Pin::Off`].
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pin = pin;
        self
    }

    /// Sets the per-loop settings: datagram size, batch size, send queue.
    pub fn config(mut self, config: UdpConfig) -> Self {
        self.config = config;
        self
    }

    /// Connects every loop's socket to `peer`: only its datagrams are
    /// received, [`UdpSock::send`](super::UdpSock::send) sends to it, and
    /// the ICMP errors its host sends back (port unreachable:
    /// [`ConnectionRefused`](io::ErrorKind::ConnectionRefused)) reach
    /// [`DatagramHandler::on_error`]. That is how a UDP client runs on a
    /// loop; an unconnected socket hears of no such error.
    pub fn connect(mut self, peer: SocketAddr) -> Self {
        self.connect = Some(peer);
        self
    }

    /// Binds every loop's socket, then starts the loops, each calling
    /// `factory` once on its own thread for its handler.
    ///
    /// # Errors
    ///
    /// Binding or connecting failed (the address is in use, say);
    /// [`Unsupported`](io::ErrorKind::Unsupported) for several loops where
    /// the kernel would not spread datagrams over them; pinning was asked
    /// where it is unsupported; a poller or thread could not be made.
    /// Nothing stays open then.
    pub fn start<F, H>(self, factory: F) -> io::Result<UdpHandle>
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: DatagramHandler + 'static,
    {
        let n = self.loops();
        if n > 1 && !sys::REUSE_PORT_BALANCES {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "several UDP loops need SO_REUSEPORT spreading datagrams, which this OS lacks",
            ));
        }
        let cpus = self.pin.cpus(n)?;
        let parts = self.bind_all(n)?;
        let local = parts[0].local;
        let doors: Vec<Arc<Door>> = parts.iter().map(|p| Arc::clone(&p.door)).collect();
        let factory = Arc::new(factory);
        let mut threads = Vec::with_capacity(n);
        for (i, parts) in parts.into_iter().enumerate() {
            let factory = Arc::clone(&factory);
            let cpu = cpus.as_ref().map(|cpus| cpus[i]);
            let spawned = std::thread::Builder::new()
                .name(format!("evloop-udp-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        pin_to(cpu)?;
                    }
                    event_loop::run(parts, factory())
                });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    let started = UdpHandle::new(local, doors, threads);
                    started.shutdown();
                    let _ = started.join();
                    return Err(e);
                }
            }
        }
        log::debug!("udp server on {local} with {n} loop(s)");
        Ok(UdpHandle::new(local, doors, threads))
    }

    /// The number of loops to run.
    fn loops(&self) -> usize {
        (self.threads).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Binds `n` sockets to one address, each with its poller and door.
    fn bind_all(&self, n: usize) -> io::Result<Vec<LoopParts>> {
        let mut addr = self.addr;
        let mut parts = Vec::with_capacity(n);
        for _ in 0..n {
            let socket = bind(addr, n > 1, self.connect, self.config.recv_buffer_len())?;
            let local = socket.local_addr()?;
            // Port 0 chose a port: every later socket shares it.
            addr = local;
            parts.push(self.parts(socket, local)?);
        }
        Ok(parts)
    }

    /// A loop's poller, door and settings around its bound socket.
    fn parts(&self, mut socket: UdpSocket, local: SocketAddr) -> io::Result<LoopParts> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(LoopParts {
            poll,
            socket,
            door: Arc::new(Door::new(waker)),
            local,
            peer: self.connect,
            config: self.config,
            #[cfg(test)]
            fake_full: self.fake_full.clone(),
        })
    }
}

/// A non-blocking UDP socket bound to `addr` (sharing it with
/// `SO_REUSEPORT` if `shared`), connected to `peer` if given, with a
/// receive buffer of `recv_buffer` bytes if given.
fn bind(
    addr: SocketAddr,
    shared: bool,
    peer: Option<SocketAddr>,
    recv_buffer: Option<usize>,
) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    if shared {
        sys::set_reuse_port(&socket)?;
    }
    socket.bind(&addr.into())?;
    if let Some(peer) = peer {
        socket.connect(&peer.into())?;
    }
    Ok(UdpSocket::from_std(socket.into()))
}

/// Pins the calling loop thread to `cpu`, naming it in the error.
fn pin_to(cpu: usize) -> io::Result<()> {
    sys::set_cpu_affinity(&[cpu])
        .map_err(|e| io::Error::new(e.kind(), format!("cannot pin a UDP loop to CPU {cpu}: {e}")))
}

/// A running [`UdpServer`]: its address, counters, a [`UdpSender`], and
/// shutdown. Clones share the server.
///
/// Dropping the handles leaves the loops running; [`shutdown`](UdpHandle::shutdown)
/// stops them and [`join`](UdpHandle::join) waits until every socket is closed.
#[derive(Debug, Clone)]
pub struct UdpHandle {
    /// Shared by the clones.
    inner: Arc<Inner>,
}

/// What the clones of a [`UdpHandle`] share.
#[derive(Debug)]
struct Inner {
    /// The address every loop is bound to.
    local: SocketAddr,
    /// One per loop.
    doors: Arc<[Arc<Door>]>,
    /// The loop threads, until joined.
    threads: Mutex<Vec<JoinHandle<io::Result<()>>>>,
}

impl UdpHandle {
    /// A handle on running loops.
    fn new(local: SocketAddr, doors: Vec<Arc<Door>>, threads: Vec<JoinHandle<io::Result<()>>>) -> Self {
        UdpHandle {
            inner: Arc::new(Inner {
                local,
                doors: doors.into(),
                threads: Mutex::new(threads),
            }),
        }
    }

    /// The address the loops are bound to (with the port chosen, if 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The number of loops.
    pub fn loops(&self) -> usize {
        self.inner.doors.len()
    }

    /// The loops' counters summed, each as of its last turn.
    pub fn stats(&self) -> UdpStats {
        let mut sum = UdpStats::default();
        for stats in self.loop_stats() {
            sum.merge(&stats);
        }
        sum
    }

    /// Each loop's counters, in loop order.
    pub fn loop_stats(&self) -> Vec<UdpStats> {
        self.inner.doors.iter().map(|d| d.stats.snapshot()).collect()
    }

    /// A sender that any thread may use to send from the server's address.
    pub fn sender(&self) -> UdpSender {
        UdpSender {
            doors: Arc::clone(&self.inner.doors),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Asks every loop to stop: each sends what it has queued (without
    /// waiting for a full send buffer to drain), closes its socket and ends.
    /// [`join`](UdpHandle::join) waits for that.
    pub fn shutdown(&self) {
        for door in self.inner.doors.iter() {
            door.stop();
        }
    }

    /// Blocks until every loop thread has ended, which happens only after
    /// [`shutdown`](UdpHandle::shutdown); their sockets, pollers and wakers
    /// are closed by then. Any clone may join; later calls return at once.
    ///
    /// # Errors
    ///
    /// The first error a loop ended with (a broken poller, a failed pin),
    /// or an error if a loop's handler panicked.
    pub fn join(&self) -> io::Result<()> {
        let threads = std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let mut result = Ok(());
        for thread in threads {
            let outcome =
                (thread.join()).unwrap_or_else(|_| Err(io::Error::other("a UDP loop's handler panicked")));
            result = result.and(outcome);
        }
        result
    }

    /// Shuts the server down on the first SIGINT (Ctrl-C) or SIGTERM.
    /// Spawns a thread that waits for the signals.
    ///
    /// # Errors
    ///
    /// Fails if the signal handlers cannot be installed.
    pub fn shutdown_on_signals(&self) -> io::Result<()> {
        let mut signals = sys::TerminationSignals::catch()?;
        let handle = self.clone();
        std::thread::Builder::new()
            .name("evloop-udp-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    log::info!("{signal}: shutting down the UDP server");
                    handle.shutdown();
                }
            })?;
        Ok(())
    }
}

/// Sends datagrams from a [`UdpServer`]'s address, from any thread: each
/// is copied, handed to a loop (the loops in turn) through a channel and a
/// waker, and leaves with that loop's next batch.
///
/// # Examples
///
/// ```
/// use std::net::{SocketAddr, UdpSocket};
/// use evloop::udp::{DatagramHandler, UdpServer, UdpSock};
///
/// struct Quiet;
///
/// impl DatagramHandler for Quiet {
///     fn on_datagram(&mut self, _: &mut UdpSock<'_>, _: &[u8], _: SocketAddr) {}
/// }
///
/// let handle = UdpServer::new("127.0.0.1:0".parse().unwrap()).threads(1).start(|| Quiet)?;
/// let listener = UdpSocket::bind("127.0.0.1:0")?;
/// handle.sender().send_to(b"news", listener.local_addr()?)?;
/// let mut buf = [0; 16];
/// let (n, from) = listener.recv_from(&mut buf)?;
/// assert_eq!((&buf[..n], from), (&b"news"[..], handle.local_addr()));
/// handle.shutdown();
/// handle.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct UdpSender {
    /// The loops' doors.
    doors: Arc<[Arc<Door>]>,
    /// The loop the next datagram goes to, modulo their number.
    next: Arc<AtomicUsize>,
}

/// Datagrams waiting in one loop's door from other threads, at most: a
/// producer faster than the loop is told so rather than queueing without
/// bound.
const HANDED_CAP: usize = 4096;

impl UdpSender {
    /// Sends `data` as one datagram to `to`.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a datagram longer
    /// than the protocol carries (65,507 bytes over IPv4, 65,527 over IPv6);
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) when 4,096 datagrams
    /// already wait for the loop; [`BrokenPipe`](io::ErrorKind::BrokenPipe)
    /// once the server has stopped. A datagram over the loop's
    /// [`UdpConfig::max_datagram`] but within the protocol's limit is
    /// dropped by the loop and counted in
    /// [`UdpStats::dropped`](super::UdpStats::dropped).
    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        self.hand(data, Some(to))
    }

    /// Sends `data` as one datagram to the peer the server's sockets are
    /// connected to ([`UdpServer::connect`]); as [`send_to`](UdpSender::send_to)
    /// otherwise. On sockets not connected, the kernel refuses it and
    /// [`DatagramHandler::on_error`] hears of it.
    ///
    /// # Errors
    ///
    /// As [`send_to`](UdpSender::send_to).
    pub fn send(&self, data: &[u8]) -> io::Result<()> {
        self.hand(data, None)
    }

    /// Checks the size, then hands the datagram to the next loop.
    fn hand(&self, data: &[u8], to: Option<SocketAddr>) -> io::Result<()> {
        check_len(data.len(), usize::MAX, to)?;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.doors.len();
        self.doors[i].hand((data.to_vec(), to), HANDED_CAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receive_buffer_asked_for_is_set_before_binding() {
        let socket = bind("127.0.0.1:0".parse().unwrap(), false, None, Some(64 * 1024)).unwrap();
        let size = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
        // Linux doubles it for bookkeeping; others keep it as asked.
        assert!(size >= 64 * 1024, "SO_RCVBUF {size}");
    }
}
