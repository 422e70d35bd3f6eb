//! The settings of a UDP loop.

/// The largest UDP payload over IPv4: 65,535 bytes less the 8-byte UDP
/// header and the 20-byte IPv4 header.
pub const MAX_IPV4_PAYLOAD: usize = 65_507;

/// The largest UDP payload over IPv6 without jumbograms: 65,535 bytes less
/// the 8-byte UDP header (the IPv6 header is not counted in its length).
pub const MAX_IPV6_PAYLOAD: usize = 65_527;

/// Per-loop settings of a UDP server: datagram size, batch size, send queue.
///
/// # Examples
///
/// ```
/// use evloop::udp::UdpConfig;
///
/// let config = UdpConfig::default().max_datagram(1472).batch(64);
/// assert_eq!(config.max_datagram_len(), 1472);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// See [`UdpConfig::max_datagram`].
    max_datagram: usize,
    /// See [`UdpConfig::batch`].
    batch: usize,
    /// See [`UdpConfig::send_queue`].
    send_queue: usize,
    /// See [`UdpConfig::recv_buffer`].
    recv_buffer: Option<usize>,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_datagram: MAX_IPV4_PAYLOAD,
            batch: 32,
            send_queue: 256,
            recv_buffer: None,
        }
    }
}

impl UdpConfig {
    /// The largest datagram received whole or sent, in bytes. Default
    /// 65,507, the most IPv4 carries, so that nothing is cut; range 1 to
    /// 65,527.
    ///
    /// A longer datagram received is cut by the kernel and counted as
    /// truncated ([`UdpStats::truncated`](super::UdpStats::truncated)), never
    /// delivered as if whole; a longer one sent is refused before any
    /// system call. Each loop holds `batch × max_datagram` bytes of receive
    /// buffers (2 MiB by default), of which only the pages datagrams reach
    /// become resident: a protocol with small datagrams (DNS, 512; QUIC,
    /// 1,472 or so) saves address space and cache by saying so.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0 or over 65,527.
    #[track_caller]
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        assert!(
            (1..=MAX_IPV6_PAYLOAD).contains(&bytes),
            "max_datagram must be 1 to {MAX_IPV6_PAYLOAD} bytes, got {bytes}"
        );
        self.max_datagram = bytes;
        self
    }

    /// Datagrams received per system call (`recvmmsg`'s vector length) and
    /// answered together. Default 32; range 1 to 1,024.
    ///
    /// Larger batches save system calls under load and cost nothing when
    /// idle (a call returns what is there); 1 gives one datagram per call,
    /// as most runtimes do.
    ///
    /// # Panics
    ///
    /// If `n` is 0 or over 1,024.
    #[track_caller]
    pub fn batch(mut self, n: usize) -> Self {
        assert!((1..=1024).contains(&n), "batch must be 1 to 1024, got {n}");
        self.batch = n;
        self
    }

    /// Datagrams a loop holds queued for sending, at most. Default 256;
    /// at least 1.
    ///
    /// The queue holds what the handler sends during one batch until the
    /// batch's `sendmmsg`, and what the kernel would not take when its send
    /// buffer was full (`EAGAIN`): then the loop stops reading until the
    /// queue has drained. A send to a full queue fails with
    /// [`WouldBlock`](std::io::ErrorKind::WouldBlock) and is counted in
    /// [`UdpStats::dropped`](super::UdpStats::dropped). Keep it at least
    /// [`batch`](UdpConfig::batch) times the replies per datagram.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn send_queue(mut self, n: usize) -> Self {
        assert!(n > 0, "send_queue must be at least 1");
        self.send_queue = n;
        self
    }

    /// Asks the kernel for a receive buffer of `bytes` per socket
    /// (`SO_RCVBUF`). Default: the system's (`net.core.rmem_default`,
    /// 208 KiB on most Linux systems, a few hundred small datagrams).
    ///
    /// Datagrams that arrive while the buffer is full are dropped by the
    /// kernel, uncounted here: a loop that loses its CPU for a few
    /// milliseconds under a burst loses datagrams unless the buffer holds
    /// the burst. Linux doubles the value for its bookkeeping and caps it
    /// at `net.core.rmem_max`.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    #[track_caller]
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "recv_buffer must be at least 1 byte");
        self.recv_buffer = Some(bytes);
        self
    }

    /// The receive buffer asked for, if any.
    pub fn recv_buffer_len(&self) -> Option<usize> {
        self.recv_buffer
    }

    /// The largest datagram received whole or sent, in bytes.
    pub fn max_datagram_len(&self) -> usize {
        self.max_datagram
    }

    /// Datagrams received per system call.
    pub fn batch_len(&self) -> usize {
        self.batch
    }

    /// The most datagrams queued for sending.
    pub fn send_queue_len(&self) -> usize {
        self.send_queue
    }
}
