//! loadgen's UDP mode: datagrams to an echo server at a fixed rate,
//! every echo checked, the lost ones counted.
//!
//! `--conns` sockets, each connected to the server (so each hears only the
//! server, and an ICMP error from a server that is not there fails the run
//! at once), share one `mio::Poll`. Global slot `g` is due at
//! `start + g / rate` and goes out on socket `g % conns`; its datagram is
//! `g` (8 bytes, little-endian), the socket's index (8 bytes), then bytes
//! of the shared pattern, so an echo that is wrong, duplicated or came back
//! on the wrong socket fails the run. Latency runs from the due time, as in
//! the TCP `--rate` mode. A send the kernel would not take (`EAGAIN`) is
//! counted as unsent, not retried: a datagram late by a poll would skew
//! the rate.
//!
//! Datagrams due in the window count as sent; those not echoed by the
//! window's end plus a grace of [`GRACE`] count as lost. The result line
//! adds `sent= received= lost= loss_pct= unsent=` to the usual fields; `msgs`
//! and the server's per-message figures count echoes received.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::options::Opts;
use crate::{MAX_LATENCY_NS, Pattern, own_cpu, poll_once, server_fields, server_sample, sleep_until};

/// How long echoes are awaited after the window before the rest count as lost.
const GRACE: Duration = Duration::from_millis(500);

/// The rate when `--rate` is not given, datagrams per second.
const DEFAULT_RATE: f64 = 10_000.0;

/// The counts of one run.
#[derive(Default)]
struct Counts {
    /// Datagrams due in the window and sent.
    sent: u64,
    /// Echoes of those received.
    received: u64,
    /// Datagrams due in the window that the kernel would not take.
    unsent: u64,
}

/// Slots echoed so far, one bit each, to catch duplicates.
#[derive(Default)]
struct Seen {
    /// Bit `g % 64` of word `g / 64` is set once slot `g` has come back.
    bits: Vec<u64>,
}

impl Seen {
    /// Marks `slot`; false if it was already marked.
    fn mark(&mut self, slot: u64) -> bool {
        let (word, bit) = ((slot / 64) as usize, slot % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let fresh = self.bits[word] & (1 << bit) == 0;
        self.bits[word] |= 1 << bit;
        fresh
    }
}

/// The run's fixed parts.
struct Plan {
    /// When slot 0 is due.
    start: Instant,
    /// Datagrams per second, all sockets together.
    rate: f64,
    /// Number of sockets.
    conns: u64,
    /// The first slot due in the window, and the first after it (once known).
    window: (u64, u64),
    /// Datagram contents after the header.
    pat: Pattern,
}

impl Plan {
    /// Due time of `slot`.
    fn due(&self, slot: u64) -> Instant {
        self.start + Duration::from_secs_f64(slot as f64 / self.rate)
    }

    /// The datagram of `slot` into `buf`.
    fn fill(&self, slot: u64, buf: &mut Vec<u8>) {
        let conn = (slot % self.conns) as usize;
        buf.clear();
        buf.extend_from_slice(self.pat.msg(conn, slot));
        buf[..8].copy_from_slice(&slot.to_le_bytes());
        buf[8..16].copy_from_slice(&(conn as u64).to_le_bytes());
    }

    /// Whether `slot` is due within the window.
    fn in_window(&self, slot: u64) -> bool {
        (self.window.0..self.window.1).contains(&slot)
    }
}

/// Runs the UDP mode and prints its line.
pub(crate) fn run(o: &Opts) {
    let mut poll = Poll::new().unwrap_or_else(|e| fail!("poll: {e}"));
    let sockets = open(&poll, o);
    let rate = o.rate.unwrap_or(DEFAULT_RATE);
    let start = Instant::now();
    let warm = Duration::from_secs_f64(o.warmup);
    let window_len = Duration::from_secs_f64(o.duration);
    let slot_at = |t: Duration| (t.as_secs_f64() * rate).ceil() as u64;
    let plan = Plan {
        start,
        rate,
        conns: o.conns as u64,
        window: (slot_at(warm), slot_at(warm + window_len)),
        pat: Pattern::new(o.size),
    };
    let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds");
    let (mut counts, mut seen) = (Counts::default(), Seen::default());
    let (mut buf, mut out) = (vec![0u8; 65_536], Vec::with_capacity(o.size));
    let mut events = Events::with_capacity(1024);
    let (mut next, mut edge) = (0u64, None);
    let window_end = start + warm + window_len;
    let end = window_end + GRACE;
    loop {
        let now = Instant::now();
        if edge.is_none() && now >= start + warm {
            edge = Some((o.pid.map(server_sample), own_cpu(), now));
        }
        // Send every slot due by now that falls before the window's end.
        while next < plan.window.1 && plan.due(next) <= now {
            plan.fill(next, &mut out);
            let sent = sockets[(next % plan.conns) as usize].send(&out);
            match sent {
                Ok(_) if plan.in_window(next) => counts.sent += 1,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock && plan.in_window(next) => counts.unsent += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => fail!("udp socket {}: send: {e}", next % plan.conns),
            }
            next += 1;
        }
        if now >= end {
            break;
        }
        let wake = if next < plan.window.1 {
            plan.due(next).min(end)
        } else {
            end
        };
        poll_once(&mut poll, &mut events, sleep_until(now, wake));
        let now = Instant::now();
        for event in events.iter() {
            let idx = event.token().0;
            drain(&sockets[idx], idx, &mut buf, |data| {
                let slot = check(&plan, idx, data);
                if !seen.mark(slot) {
                    fail!("udp socket {idx}: datagram {slot} echoed twice");
                }
                if plan.in_window(slot) {
                    counts.received += 1;
                    let latency = now.saturating_duration_since(plan.due(slot)).as_nanos();
                    hist.saturating_record(latency.min(u64::MAX as u128) as u64);
                }
            });
        }
    }
    let (server_start, cpu_start, window_start) = edge.unwrap_or_else(|| fail!("the window never started"));
    let server = server_start.zip(o.pid.map(server_sample));
    let secs = window_end.duration_since(window_start).as_secs_f64();
    println!(
        "{}",
        report(o, rate, &counts, &hist, secs, own_cpu() - cpu_start, server)
    );
}

/// Opens `o.conns` sockets connected to the server, registered for reading.
fn open(poll: &Poll, o: &Opts) -> Vec<UdpSocket> {
    let local = if o.addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    (0..o.conns)
        .map(|idx| {
            let socket = std::net::UdpSocket::bind(local).unwrap_or_else(|e| fail!("udp bind: {e}"));
            (socket.connect(o.addr)).unwrap_or_else(|e| fail!("udp connect {}: {e}", o.addr));
            (socket.set_nonblocking(true)).unwrap_or_else(|e| fail!("nonblocking: {e}"));
            let mut socket = UdpSocket::from_std(socket);
            (poll
                .registry()
                .register(&mut socket, Token(idx), Interest::READABLE))
            .unwrap_or_else(|e| fail!("register: {e}"));
            socket
        })
        .collect()
}

/// Receives every datagram waiting on `socket`, handing each to `got`.
fn drain(socket: &UdpSocket, idx: usize, buf: &mut [u8], mut got: impl FnMut(&[u8])) {
    loop {
        match socket.recv(buf) {
            Ok(n) => got(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                fail!("udp socket {idx}: the server refused (ICMP port unreachable): is it running?")
            }
            Err(e) => fail!("udp socket {idx}: recv: {e}"),
        }
    }
}

/// Checks an echo received on socket `idx`; returns its slot.
fn check(plan: &Plan, idx: usize, data: &[u8]) -> u64 {
    let size = plan.pat.size;
    if data.len() != size {
        fail!("udp socket {idx}: an echo of {} bytes, sent {size}", data.len());
    }
    let word = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
    let (slot, conn) = (word(0), word(8));
    if conn != idx as u64 || slot % plan.conns != conn {
        fail!("udp socket {idx}: an echo of datagram {slot} of socket {conn}");
    }
    if data[16..] != plan.pat.msg(idx, slot)[16..] {
        fail!("udp socket {idx}: the echo of datagram {slot} differs from what was sent");
    }
    slot
}

/// The result line.
fn report(
    o: &Opts,
    rate: f64,
    counts: &Counts,
    hist: &Histogram<u64>,
    secs: f64,
    client_cpu: f64,
    server: Option<(evloop::sys::ProcessStats, evloop::sys::ProcessStats)>,
) -> String {
    let lost = counts.sent - counts.received;
    let us = |ns: u64| ns as f64 / 1000.0;
    let msgs = counts.received;
    let mut line = format!(
        "sent={} received={msgs} lost={lost} loss_pct={:.3} unsent={} msgs={msgs} secs={secs:.2} msgs_per_s={:.0} \
         p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} target_rate={rate:.0}",
        counts.sent,
        lost as f64 * 100.0 / counts.sent.max(1) as f64,
        counts.unsent,
        msgs as f64 / secs,
        us(hist.value_at_quantile(0.5)),
        us(hist.value_at_quantile(0.99)),
        us(hist.value_at_quantile(0.999)),
        us(hist.max()),
    );
    line += &server_fields(server.as_ref(), msgs, secs);
    line += &format!(
        " client_cpu_pct={:.1} socks={}",
        client_cpu * 100.0 / secs,
        o.conns
    );
    line
}
