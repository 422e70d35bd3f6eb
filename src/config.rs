//! [`Config`]: per-connection limits and loop tuning.

use std::time::Duration;

use log::debug;
use socket2::SockRef;

/// Limits and tuning for the connections of an event loop.
///
/// Every knob has a default that suits a typical request/response server;
/// the methods document each trade-off. Methods panic on values that cannot
/// work (a zero read size, a low watermark above the high one).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use evloop::Config;
///
/// let config = Config::default()
///     .idle_timeout(Some(Duration::from_secs(30)))
///     .write_watermarks(16 * 1024, 256 * 1024)
///     .max_input(64 * 1024);
/// assert_eq!(config.get_max_input(), 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Smallest free space offered to each `read`.
    pub(crate) read_size: usize,
    /// Bytes read from one connection per turn before moving on.
    pub(crate) read_budget: usize,
    /// Unconsumed input allowed before the connection is closed.
    pub(crate) max_input: usize,
    /// Output above this pauses reading. Invariant: `low_watermark <= high_watermark`.
    pub(crate) high_watermark: usize,
    /// Output at or below this resumes reading and calls `on_drained`.
    pub(crate) low_watermark: usize,
    /// Idle timeout given to every new connection.
    pub(crate) idle_timeout: Option<Duration>,
    /// Longest a TLS handshake may take.
    pub(crate) handshake_timeout: Duration,
    /// Capacity of the `mio::Events` queue: events taken per poll.
    pub(crate) events_capacity: usize,
    /// Whether accepted sockets get `TCP_NODELAY`.
    pub(crate) nodelay: bool,
    /// `SO_SNDBUF` for every connection's socket; `None` leaves the kernel
    /// to size it. Invariant: if set, within `1..=i32::MAX`.
    pub(crate) send_buffer: Option<usize>,
    /// `SO_RCVBUF` for every connection's socket; `None` leaves the kernel
    /// to size it. Invariant: if set, within `1..=i32::MAX`.
    pub(crate) recv_buffer: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            read_size: 16 * 1024,
            read_budget: 256 * 1024,
            max_input: 1024 * 1024,
            high_watermark: 64 * 1024,
            low_watermark: 32 * 1024,
            idle_timeout: Some(Duration::from_secs(60)),
            handshake_timeout: Duration::from_secs(10),
            events_capacity: 1024,
            nodelay: true,
            send_buffer: None,
            recv_buffer: None,
        }
    }
}

impl Config {
    /// Smallest free space given to each `read` system call.
    ///
    /// Default 16 KiB. Larger reads move bulk data in fewer system calls.
    /// A loop lends one buffer to whichever connection reads; a connection
    /// owns a buffer only while its handler leaves a partial message in it,
    /// so waiting connections cost no read buffer.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0.
    #[track_caller]
    pub fn read_size(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "read_size must be at least 1 byte");
        self.read_size = bytes;
        self
    }

    /// Bytes read from one connection in one turn before the loop moves on.
    ///
    /// Default 256 KiB. A connection that used its budget is served again on
    /// the next turn without waiting for a new event, so a fast sender cannot
    /// starve the others; a smaller budget is fairer, a larger one cheaper.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0.
    #[track_caller]
    pub fn read_budget(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "read_budget must be at least 1 byte");
        self.read_budget = bytes;
        self
    }

    /// Unconsumed input a handler may leave before the connection is closed
    /// with [`CloseReason::InputLimit`](crate::CloseReason::InputLimit).
    ///
    /// Default 1 MiB. It bounds what a peer can make the server hold by
    /// sending a message that never completes.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0.
    #[track_caller]
    pub fn max_input(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "max_input must be at least 1 byte");
        self.max_input = bytes;
        self
    }

    /// Output watermarks: above `high` queued bytes, reading from the
    /// connection pauses (backpressure); once the queue drains to `low`,
    /// reading resumes and [`Handler::on_drained`](crate::Handler::on_drained)
    /// is called.
    ///
    /// Default 32 KiB / 64 KiB. A wider gap means fewer pause/resume cycles.
    ///
    /// What a slow reader (a peer that sends and never reads) makes the
    /// server hold in user space stays near `high` plus one
    /// [`read_budget`](Config::read_budget), whatever it sends. Its socket
    /// pins kernel memory as well, a full send buffer, which only
    /// [`send_buffer`](Config::send_buffer) caps.
    ///
    /// # Panics
    ///
    /// Panics if `low > high`.
    #[track_caller]
    pub fn write_watermarks(mut self, low: usize, high: usize) -> Self {
        assert!(low <= high, "low watermark {low} is above high watermark {high}");
        self.low_watermark = low;
        self.high_watermark = high;
        self
    }

    /// Idle timeout for new connections: closed with
    /// [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout) after this
    /// long without a byte read or written. `None` disables it.
    ///
    /// Default 60 s, so a vanished peer cannot hold a socket forever. A
    /// handler can change its own with [`Conn::set_idle_timeout`](crate::Conn::set_idle_timeout).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Longest a TLS handshake may take, from the moment the connection is
    /// accepted (or, outbound, connected) until it completes: a connection
    /// still shaking hands then closes with
    /// [`CloseReason::HandshakeTimeout`](crate::CloseReason::HandshakeTimeout).
    /// Applies to TLS connections only.
    ///
    /// Default 10 s, as the handshake needs a round trip or two: long
    /// enough for a slow network, short enough that clients which connect
    /// and stall (on purpose or not) hold no socket for long. The idle
    /// timeout runs as well, but only from `on_open`.
    ///
    /// # Panics
    ///
    /// Panics if `timeout` is zero.
    #[track_caller]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "handshake_timeout must be above zero");
        self.handshake_timeout = timeout;
        self
    }

    /// Events taken from the kernel per poll.
    ///
    /// Default 1024. More means fewer `epoll_wait` calls under heavy load.
    ///
    /// # Panics
    ///
    /// Panics if `events` is 0.
    #[track_caller]
    pub fn events_capacity(mut self, events: usize) -> Self {
        assert!(events > 0, "events_capacity must be at least 1");
        self.events_capacity = events;
        self
    }

    /// Whether accepted sockets get `TCP_NODELAY` (Nagle's algorithm off).
    ///
    /// Default `true`: replies go out at once; the loop already coalesces
    /// everything a callback writes into one system call.
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Size of the kernel send buffer (`SO_SNDBUF`) of every connection's
    /// socket, accepted or outbound; `None` leaves it to the kernel.
    ///
    /// Default `None`: the kernel's auto-tuning, which on Linux starts a
    /// socket at the middle value of `net.ipv4.tcp_wmem` (16 KiB) and grows
    /// it, up to the last (4 MiB), as the connection needs. A slow reader
    /// drives its socket to that maximum and keeps it full: kernel memory
    /// per slow reader that the server cannot otherwise cap, beyond what the
    /// [write watermarks](Config::write_watermarks) bound in user space.
    ///
    /// Setting a size caps that memory and turns auto-tuning off for the
    /// socket. The trade-off is throughput on long, fast paths: a send
    /// buffer below the bandwidth-delay product limits a bulk transfer to
    /// one buffer per round trip. Linux doubles the value (the other half is
    /// its own bookkeeping), clamps it to `net.core.wmem_max` (208 KiB on a
    /// stock kernel; a larger size needs that sysctl raised) and raises it to
    /// its minimum of about 4.5 KiB.
    ///
    /// Both buffer sizes are set on the listener of an
    /// [`EventLoop`](crate::EventLoop) or
    /// [`ThreadServer`](crate::baseline::ThreadServer) (and each loop's own
    /// listener in a [`Server`](crate::Server) that balances with
    /// `ReusePort`), which every accepted socket inherits from its handshake
    /// on; on an outbound socket before it connects; and on every
    /// connection's socket once accepted or connected, the one point for
    /// sockets that a `Server`'s acceptor thread hands to its loops. A size
    /// that cannot be set is logged at debug level and the connection served
    /// anyway.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is `Some(0)` or above `i32::MAX` (the kernel takes
    /// an `int`).
    #[track_caller]
    pub fn send_buffer(mut self, bytes: Option<usize>) -> Self {
        self.send_buffer = checked_buffer_size("send_buffer", bytes);
        self
    }

    /// Size of the kernel receive buffer (`SO_RCVBUF`) of every connection's
    /// socket, accepted or outbound; `None` leaves it to the kernel.
    ///
    /// Default `None`: the kernel's auto-tuning, which on Linux starts a
    /// socket at the middle value of `net.ipv4.tcp_rmem` (128 KiB) and grows
    /// it, up to the last, as fast as the handler consumes. When reading
    /// pauses (backpressure, [`Conn::pause_reading`](crate::Conn::pause_reading))
    /// the peer fills whatever the buffer has grown to.
    ///
    /// Setting a size caps that memory and turns auto-tuning off for the
    /// socket; the window offered to the peer stays within it, so an upload
    /// over a long, fast path slows down once the size is below the
    /// bandwidth-delay product. Linux doubles the value, clamps it to
    /// `net.core.rmem_max` and raises it to its minimum of about 2.3 KiB.
    /// It is set where [`send_buffer`](Config::send_buffer) says; where only
    /// the accepted socket gets it (a `Server`'s acceptor thread), the window
    /// offered in the handshake, which the kernel never takes back, still
    /// follows the kernel's default.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is `Some(0)` or above `i32::MAX`.
    #[track_caller]
    pub fn recv_buffer(mut self, bytes: Option<usize>) -> Self {
        self.recv_buffer = checked_buffer_size("recv_buffer", bytes);
        self
    }

    /// The configured [`max_input`](Config::max_input).
    pub fn get_max_input(&self) -> usize {
        self.max_input
    }

    /// The configured watermarks, `(low, high)`.
    pub fn get_write_watermarks(&self) -> (usize, usize) {
        (self.low_watermark, self.high_watermark)
    }

    /// The configured idle timeout.
    pub fn get_idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The configured [`handshake_timeout`](Config::handshake_timeout).
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The configured [`send_buffer`](Config::send_buffer).
    pub fn get_send_buffer(&self) -> Option<usize> {
        self.send_buffer
    }

    /// The configured [`recv_buffer`](Config::recv_buffer).
    pub fn get_recv_buffer(&self) -> Option<usize> {
        self.recv_buffer
    }

    /// Sets `TCP_NODELAY`, if configured, on a connected socket, accepted or
    /// outbound, in either execution model. Its buffer sizes need no call:
    /// an accepted socket inherits them from its listener and an outbound
    /// one had them before its SYN ([`apply_buffer_sizes`]). An option that
    /// cannot be set is logged at debug level and skipped: it tunes, it is
    /// not needed to serve.
    ///
    /// [`apply_buffer_sizes`]: Config::apply_buffer_sizes
    pub(crate) fn apply_socket_options(&self, socket: SockRef<'_>) {
        if self.nodelay {
            log_failure(&socket, "TCP_NODELAY", socket.set_tcp_nodelay(true));
        }
    }

    /// Sets the kernel buffer sizes of this config, if any, on `socket`,
    /// logging at debug level one that cannot be set.
    ///
    /// On a connected socket they bound what it queues from then on. On a
    /// listener they pass to every socket it accepts, and on a socket not
    /// yet connected they hold from its first segment: only then does the
    /// receive window offered in the handshake follow `recv_buffer`, as the
    /// kernel never takes back window it has offered.
    pub(crate) fn apply_buffer_sizes(&self, socket: SockRef<'_>) {
        if let Some(bytes) = self.send_buffer {
            log_failure(&socket, "SO_SNDBUF", socket.set_send_buffer_size(bytes));
        }
        if let Some(bytes) = self.recv_buffer {
            log_failure(&socket, "SO_RCVBUF", socket.set_recv_buffer_size(bytes));
        }
    }
}

/// `bytes` if it is a size the kernel can take for a socket buffer.
#[track_caller]
fn checked_buffer_size(knob: &str, bytes: Option<usize>) -> Option<usize> {
    if let Some(bytes) = bytes {
        assert!(bytes > 0, "{knob} must be at least 1 byte");
        assert!(
            i32::try_from(bytes).is_ok(),
            "{knob} of {bytes} bytes is above the kernel's limit of {}",
            i32::MAX
        );
    }
    bytes
}

/// Logs at debug level a socket option that could not be set.
fn log_failure(socket: &SockRef<'_>, option: &str, result: std::io::Result<()>) {
    if let Err(e) = result {
        let addr = |a: std::io::Result<socket2::SockAddr>| match a.ok().and_then(|a| a.as_socket()) {
            Some(a) => a.to_string(),
            None => "?".into(),
        };
        let (local, peer) = (addr(socket.local_addr()), addr(socket.peer_addr()));
        debug!("cannot set {option} on the socket {local} -> {peer}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "above high watermark")]
    fn inverted_watermarks_panic() {
        let _ = Config::default().write_watermarks(10, 5);
    }

    #[test]
    #[should_panic(expected = "read_size")]
    fn zero_read_size_panics() {
        let _ = Config::default().read_size(0);
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = Config::default();
        assert_eq!(c.get_write_watermarks(), (32 * 1024, 64 * 1024));
        assert_eq!(c.get_idle_timeout(), Some(Duration::from_secs(60)));
        assert_eq!(c.get_max_input(), 1024 * 1024);
        assert_eq!(c.get_handshake_timeout(), Duration::from_secs(10));
        assert_eq!(c.get_send_buffer(), None, "the kernel sizes send buffers");
        assert_eq!(c.get_recv_buffer(), None, "the kernel sizes receive buffers");
    }

    #[test]
    fn buffer_sizes_are_kept_and_can_be_unset() {
        let c = Config::default()
            .send_buffer(Some(64 * 1024))
            .recv_buffer(Some(1));
        assert_eq!(c.get_send_buffer(), Some(64 * 1024));
        assert_eq!(c.get_recv_buffer(), Some(1));
        let c = c.send_buffer(None).recv_buffer(None);
        assert_eq!((c.get_send_buffer(), c.get_recv_buffer()), (None, None));
    }

    #[test]
    fn largest_buffer_size_the_kernel_takes_is_accepted() {
        let max = i32::MAX as usize;
        let c = Config::default().send_buffer(Some(max)).recv_buffer(Some(max));
        assert_eq!((c.get_send_buffer(), c.get_recv_buffer()), (Some(max), Some(max)));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn buffer_sizes_reach_the_socket_doubled_by_linux() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = SockRef::from(&socket);
        let config = Config::default()
            .send_buffer(Some(64 * 1024))
            .recv_buffer(Some(32 * 1024));
        config.apply_buffer_sizes(SockRef::from(&socket));
        assert_eq!(sock.send_buffer_size().unwrap(), 128 * 1024);
        assert_eq!(sock.recv_buffer_size().unwrap(), 64 * 1024);
    }

    #[test]
    fn unset_buffer_sizes_leave_the_socket_alone() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = SockRef::from(&socket);
        let before = (sock.send_buffer_size().unwrap(), sock.recv_buffer_size().unwrap());
        Config::default().apply_buffer_sizes(SockRef::from(&socket));
        let after = (sock.send_buffer_size().unwrap(), sock.recv_buffer_size().unwrap());
        assert_eq!(after, before);
    }

    #[test]
    #[should_panic(expected = "send_buffer must be at least 1 byte")]
    fn zero_send_buffer_panics() {
        let _ = Config::default().send_buffer(Some(0));
    }

    #[test]
    #[should_panic(expected = "recv_buffer must be at least 1 byte")]
    fn zero_recv_buffer_panics() {
        let _ = Config::default().recv_buffer(Some(0));
    }

    #[test]
    #[should_panic(expected = "send_buffer of 2147483648 bytes is above the kernel's limit")]
    fn send_buffer_beyond_an_int_panics() {
        let _ = Config::default().send_buffer(Some(i32::MAX as usize + 1));
    }

    #[test]
    #[should_panic(expected = "recv_buffer of 2147483648 bytes is above the kernel's limit")]
    fn recv_buffer_beyond_an_int_panics() {
        let _ = Config::default().recv_buffer(Some(i32::MAX as usize + 1));
    }
}
