//! Echo load generator: one thread, one `mio::Poll`, checked bytes, HDR latency.
//!
//! Opens `--conns` connections (TCP_NODELAY) and drives them in one of three modes:
//!
//! * **closed loop** (default): each connection keeps `--depth` messages of
//!   `--size` bytes in flight and sends the next one whenever a whole echo has
//!   come back. Latency runs from the moment a message is queued.
//! * **fixed rate** (`--rate MSGS_PER_S`): messages are due at a fixed total
//!   rate, spread round-robin over the connections; a connection sends a due
//!   message as soon as it has fewer than `--depth` in flight. Latency runs
//!   from the time the message was *due*, not from when it could be sent, so a
//!   stalled server is charged for every message it kept waiting (correction
//!   for coordinated omission, as wrk2 does). Between two due times under 1 ms
//!   apart the generator polls without sleeping: it uses a whole core.
//! * **HTTP** (`--http PATH`): instead of echo messages, each connection
//!   sends `GET PATH HTTP/1.1` requests with keep-alive, `--depth` of them
//!   written back to back (pipelined), the next one as each response
//!   completes; closed loop or `--rate` as above. Responses are parsed with
//!   `httparse` (status line, headers, `Content-Length` body); a status other
//!   than 200 counts in `errors=`, a malformed or unframed response (chunked,
//!   no `Content-Length`) aborts. `msgs` are responses. A server may end a
//!   kept-alive connection, as a draining one does: after a response with
//!   `Connection: close` no more requests go on it, and once the server has
//!   closed it (end of stream or reset, on a connection that has had a
//!   response) a new connection takes its place and the requests it left
//!   unanswered are sent again there (they are `GET`s, safe to repeat, as
//!   browsers do). Adds `reconnects=R stalled=S resent=N` to the result line.
//! * **UDP** (`--udp`): `--conns` UDP sockets send datagrams of `--size`
//!   bytes to an echo server at a fixed total `--rate` (default 10,000/s),
//!   spread round-robin; each echo is checked and its latency runs from its
//!   due time. Datagrams not back by the end are counted lost, not retried
//!   (see examples/loadgen/udp.rs).
//! * **churn** (`--reconnect N`, with any of the above): each connection
//!   closes once N messages have been answered and a new one takes its
//!   place, so that new connections keep arriving beside the kept-alive
//!   ones (a restart that refused or reset one would show). Adds
//!   `reconnects=R stalled=S` to the result line: `stalled` counts the
//!   connections whose oldest message in flight waited over 1 s at the end
//!   (a message lost by the server).
//! * **idle** (`--idle N`): opens N connections that send nothing, prints
//!   `idle_conns=N connect_secs=..` once all are connected, and holds them for
//!   `--duration` seconds (or until killed); a connection closed by the server
//!   is an error. For measuring memory per connection.
//! * **TLS** (`--tls CA_FILE`, in `loadgen/tls.rs`): any of the above over
//!   TLS (rustls, ring), each connection's handshake completed while it is
//!   opened; with `--handshakes`, `--conns` connections at a time each make
//!   a new connection, a full handshake, one echo and a close, so that
//!   `msgs` are handshakes.
//!
//! In echo mode every echoed byte is checked: message `seq` on connection `c` is a window
//! into a fixed pseudo-random alphanumeric table, shifted by
//! `(97 * seq + 13 * c) % 251`, so a lost, duplicated or reordered byte shows
//! up. A mismatch, a connection closed by the server or any I/O error aborts
//! with exit status 1; bad arguments exit with status 2.
//!
//! After `--warmup` seconds a measurement window of `--duration` seconds (or of
//! exactly `--count` messages) starts. Latencies go into an HDR histogram (3
//! significant digits). With `--pid`, the server process is read through
//! `evloop::sys` at the window's edges: CPU time, context switches (per thread,
//! summed), threads and resident memory. One line goes to stdout at the end:
//!
//! `msgs=123456 secs=5.00 msgs_per_s=24691 p50_us=.. p99_us=.. p999_us=.. max_us=.. server_cpu_us_per_msg=3.21 server_cs_per_1k=12.3 server_cpu_pct=99.0 server_invol_cs_per_1k=0.1 server_threads=2 server_rss_kb=2048 client_cpu_pct=80.1 connect_secs=0.012 errors=0`
//!
//! (`errors` counts non-200 responses in HTTP mode and is always 0 in echo
//! mode; `target_rate=R` is added in `--rate` mode; server fields are `NA` without
//! `--pid`.) While a run longer than 3 s goes on and stderr is a terminal, a
//! progress line on stderr shows the rate and p99 so far.
//!
//! Run: `cargo run --release --example loadgen -- --addr 127.0.0.1:7001 --pid $(pidof mio_echo)`
//! or, against `hello_http`, `.. -- --addr 127.0.0.1:3000 --http / --depth 16`.
//!
//! Limits: connections are opened one after the other with blocking connects
//! (thousands take a fraction of a second on loopback); one thread drives them
//! all, so check `client_cpu_pct` stays well under 100 or the generator, not
//! the server, is what was measured.

#[path = "common/cli.rs"]
mod cli;
#[cfg(feature = "http")]
#[path = "loadgen/http.rs"]
mod http;
#[path = "loadgen/options.rs"]
mod options;
#[path = "loadgen/stream.rs"]
mod stream;
#[path = "loadgen/tls.rs"]
mod tls;

use std::collections::VecDeque;
use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use evloop::sys::{self, ProcessStats};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use crate::options::{CLI, Opts, parse_opts};
use crate::tls::Stream;

/// Number of distinct shifts of the pattern table (prime).
const PERIOD: usize = 251;
/// Runs at least this long (warmup and window) get a progress line.
const PROGRESS_AFTER: f64 = 3.0;
/// The largest latency the histogram tells apart (one hour, in nanoseconds).
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// Prints a message and exits with status 1 (a failed run).
macro_rules! fail {
    ($($arg:tt)*) => {{
        eprintln!("loadgen: {}", format_args!($($arg)*));
        std::process::exit(1)
    }};
}
pub(crate) use fail;

// After `fail!`, which it uses.
#[path = "loadgen/udp.rs"]
mod udp;

/// Message contents: message `seq` of connection `conn` is `size` bytes of a
/// fixed table, starting at a shift that changes with every message.
struct Pattern {
    /// `size + PERIOD` pseudo-random alphanumeric bytes.
    table: Vec<u8>,
    /// Bytes per message.
    size: usize,
}

impl Pattern {
    fn new(size: usize) -> Self {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let table = (0..size + PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ALPHABET[(x >> 58) as usize]
            })
            .collect();
        Pattern { table, size }
    }

    fn msg(&self, conn: usize, seq: u64) -> &[u8] {
        let shift = (seq.wrapping_mul(97).wrapping_add(conn as u64 * 13) % PERIOD as u64) as usize;
        &self.table[shift..shift + self.size]
    }
}

/// When messages are due in `--rate` mode. Global slot `g` goes to connection
/// `g % conns` as its message `g / conns`, at `start + g / rate`.
struct Schedule {
    /// Due time of slot 0.
    start: Instant,
    /// Messages per second, all connections together.
    rate: f64,
    /// Number of connections.
    conns: u64,
    /// The first slot not yet released to its connection.
    next: u64,
}

impl Schedule {
    /// Due time of global slot `slot`.
    fn slot_time(&self, slot: u64) -> Instant {
        self.start + Duration::from_secs_f64(slot as f64 / self.rate)
    }

    /// Due time of message `seq` of connection `conn`.
    fn due(&self, conn: usize, seq: u64) -> Instant {
        self.slot_time(seq * self.conns + conn as u64)
    }
}

/// One client connection.
struct Conn {
    /// The connection, nonblocking: plain TCP or TLS.
    stream: Stream,
    /// Bytes queued for sending; `out[..out_pos]` is already sent.
    out: Vec<u8>,
    /// See `out`.
    out_pos: usize,
    /// Messages queued so far.
    sent: u64,
    /// Messages whose echo is complete.
    recv: u64,
    /// Bytes of message `recv` received so far.
    recv_off: usize,
    /// In `--rate` mode, messages whose due time has passed (sent or not).
    due: u64,
    /// Start times (due or queued) of the messages in flight, oldest first.
    started: VecDeque<Instant>,
    /// HTTP mode: received bytes not yet part of a whole response.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    input: Vec<u8>,
    /// Messages this socket may still start (`--reconnect`; else unbounded).
    budget: u64,
    /// HTTP mode: responses received on this socket.
    served: u64,
    /// HTTP mode: the server said `Connection: close` on this socket.
    closing: bool,
    /// HTTP mode: the server closed this socket after serving on it; a new
    /// one takes its place.
    ended: bool,
}

/// Counters shared by all connections.
struct Load {
    /// Message contents.
    pat: Pattern,
    /// HTTP mode: the request sent as every message; `None`: echo mode.
    request: Option<Vec<u8>>,
    /// HTTP responses with a status other than 200, warmup included.
    errors: u64,
    /// Latencies of messages completed in the window, in nanoseconds.
    hist: Histogram<u64>,
    /// Whether the measurement window has started.
    in_window: bool,
    /// Messages completed in the window.
    window_msgs: u64,
    /// Messages completed since the start, warmup included.
    completed: u64,
    /// Messages in flight over all connections.
    in_flight: u64,
    /// The window's exact length in messages, if `--count`.
    count: Option<u64>,
    /// Most messages in flight per connection.
    depth: u64,
    /// Due times, in `--rate` mode.
    schedule: Option<Schedule>,
    /// Connections replaced by new ones (`--reconnect`, or closed by an
    /// HTTP server).
    reconnects: u64,
    /// HTTP requests sent again on a new connection, their first one
    /// closed by the server before answering them.
    resent: u64,
}

impl Load {
    /// Whether another message may be started (a `--count` window is exact).
    fn may_send(&self) -> bool {
        match self.count {
            Some(n) if self.in_window => self.window_msgs + self.in_flight < n,
            _ => true,
        }
    }

    /// Queues as many messages on `conn` as its depth and the schedule allow.
    fn refill(&mut self, conn: &mut Conn, idx: usize, now: Instant) {
        while conn.sent - conn.recv < self.depth && conn.budget > 0 && !conn.closing && self.may_send() {
            let start = match &self.schedule {
                None => now,
                Some(_) if conn.sent >= conn.due => return,
                Some(s) => s.due(idx, conn.sent),
            };
            match &self.request {
                Some(request) => conn.out.extend_from_slice(request),
                None => conn.out.extend_from_slice(self.pat.msg(idx, conn.sent)),
            }
            conn.sent += 1;
            conn.budget -= 1;
            conn.started.push_back(start);
            self.in_flight += 1;
        }
    }

    /// Gives every connection the messages that fell due by `now`, and sends them.
    fn release_due(&mut self, conns: &mut [Conn], now: Instant) {
        loop {
            let idx = match &mut self.schedule {
                Some(s) if s.slot_time(s.next) <= now => {
                    s.next += 1;
                    ((s.next - 1) % s.conns) as usize
                }
                _ => return,
            };
            let conn = &mut conns[idx];
            conn.due += 1;
            self.refill(conn, idx, now);
            flush(conn, idx);
        }
    }

    /// When the next message falls due, in `--rate` mode.
    fn next_due(&self) -> Option<Instant> {
        self.schedule.as_ref().map(|s| s.slot_time(s.next))
    }

    /// Checks echoed bytes, completes messages and starts their successors.
    fn received(&mut self, conn: &mut Conn, idx: usize, mut data: &[u8], now: Instant) {
        #[cfg(feature = "http")]
        if self.request.is_some() {
            return self.received_http(conn, idx, data, now);
        }
        while !data.is_empty() {
            if conn.recv == conn.sent {
                fail!("conn {idx}: {} bytes echoed that were never sent", data.len());
            }
            let expect = &self.pat.msg(idx, conn.recv)[conn.recv_off..];
            let take = expect.len().min(data.len());
            if data[..take] != expect[..take] {
                let i = (0..take).find(|&i| data[i] != expect[i]).unwrap_or(0);
                fail!(
                    "data mismatch: conn {idx} message {} byte {}: expected {:#04x}, got {:#04x}",
                    conn.recv,
                    conn.recv_off + i,
                    expect[i],
                    data[i]
                );
            }
            data = &data[take..];
            conn.recv_off += take;
            if conn.recv_off == self.pat.size {
                self.complete(conn, now);
                self.refill(conn, idx, now);
            }
        }
    }

    /// HTTP mode: cuts whole responses out of `conn`'s input, completes their
    /// requests and starts their successors.
    #[cfg(feature = "http")]
    fn received_http(&mut self, conn: &mut Conn, idx: usize, data: &[u8], now: Instant) {
        conn.input.extend_from_slice(data);
        let mut pos = 0;
        while let Some(resp) = http::parse(&conn.input[pos..]).unwrap_or_else(|e| fail!("conn {idx}: {e}")) {
            pos += resp.len;
            if resp.interim {
                continue;
            }
            if conn.recv == conn.sent {
                fail!("conn {idx}: a response (status {}) to no request", resp.status);
            }
            // No more requests on it; those already sent go again on the
            // next connection once the server has closed this one.
            conn.closing |= resp.close;
            conn.served += 1;
            if resp.status != 200 {
                self.errors += 1;
            }
            self.complete(conn, now);
            self.refill(conn, idx, now);
        }
        conn.input.drain(..pos);
    }

    /// Records the message whose last byte just arrived.
    fn complete(&mut self, conn: &mut Conn, now: Instant) {
        conn.recv_off = 0;
        conn.recv += 1;
        self.in_flight -= 1;
        self.completed += 1;
        let start = conn.started.pop_front().expect("start time of message in flight");
        if self.in_window {
            self.window_msgs += 1;
            let latency = now.saturating_duration_since(start).as_nanos();
            self.hist.saturating_record(latency.min(u64::MAX as u128) as u64);
        }
    }
}

/// Writes what `conn` has queued until done or the socket is full.
fn flush(conn: &mut Conn, idx: usize) {
    if conn.ended {
        return;
    }
    match conn.stream.flush() {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => return,
        Err(_) if may_end(conn) => {
            conn.ended = true;
            return;
        }
        Err(e) => fail!("conn {idx}: write: {e}"),
    }
    while conn.out_pos < conn.out.len() {
        match conn.stream.write(&conn.out[conn.out_pos..]) {
            Ok(0) => fail!("conn {idx}: write returned 0"),
            Ok(n) => conn.out_pos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) if may_end(conn) => {
                conn.ended = true;
                return;
            }
            Err(e) => fail!("conn {idx}: write: {e}"),
        }
    }
    conn.out.clear();
    conn.out_pos = 0;
}

/// Reads everything `conn` has received and hands it to `load`. In HTTP
/// mode a server may close a connection it has served on: `conn` is then
/// marked `ended`, for [`rejoin`]. `hung_up`: the event that woke us says
/// the peer's end of stream (or an error) has arrived too.
fn drain(conn: &mut Conn, idx: usize, load: &mut Load, buf: &mut [u8], now: Instant, hung_up: bool) {
    loop {
        match conn.stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Ok(0) | Err(_) if may_end(conn) => {
                conn.ended = true;
                return;
            }
            Ok(0) => fail!("conn {idx}: closed by the server"),
            Ok(n) => {
                load.received(conn, idx, &buf[..n], now);
                // epoll(7): on a stream socket a short read means the socket
                // is drained, so skip the read that would only say WouldBlock.
                // Not when the end of stream came with the data (a last
                // answer saying `Connection: close`, then FIN, read as one):
                // edge-triggered, no later event would bring it.
                if n < buf.len() && !hung_up && conn.stream.short_read_drains() {
                    return;
                }
            }
            Err(e) => fail!("conn {idx}: read: {e}"),
        }
    }
}

/// True if the server may end `conn` (a read or write saw its end of stream
/// or an error): in HTTP mode, once it has answered a request on it.
fn may_end(conn: &Conn) -> bool {
    conn.served > 0
}

/// HTTP mode: replaces a connection the server closed with a new one, on
/// which the requests it left unanswered go again.
fn rejoin(poll: &Poll, o: &Opts, tls: Option<&tls::Client>, conn: &mut Conn, idx: usize, load: &mut Load) {
    let _ = poll.registry().deregister(conn.stream.socket());
    let what = format!("conn {idx}, reconnect {}", load.reconnects + 1);
    conn.stream = connect_one(poll, o, tls, idx, Interest::READABLE | Interest::WRITABLE, &what);
    let unanswered = conn.sent - conn.recv;
    load.resent += unanswered;
    load.in_flight -= unanswered;
    conn.sent = conn.recv;
    conn.budget += unanswered;
    conn.out.clear();
    conn.out_pos = 0;
    conn.input.clear();
    (conn.served, conn.closing, conn.ended) = (0, false, false);
    load.reconnects += 1;
    let kept = std::mem::take(&mut conn.started);
    load.refill(conn, idx, Instant::now());
    // A request sent again keeps the time it started the first time.
    for (start, first) in conn.started.iter_mut().zip(kept) {
        *start = first;
    }
    flush(conn, idx);
}

/// Opens `n` connections to `o`'s server (with `tls`, over TLS, handshake
/// done), registered with `interest`.
fn connect_all(
    poll: &Poll,
    o: &Opts,
    n: usize,
    interest: Interest,
    tls: Option<&tls::Client>,
) -> Vec<Stream> {
    (0..n)
        .map(|idx| connect_one(poll, o, tls, idx, interest, &format!("conn {idx} of {n}")))
        .collect()
}

/// Opens connection `idx` to `o`'s server (with `tls`, over TLS, handshake
/// done), registered with `interest`; `what` names it in a failure.
fn connect_one(
    poll: &Poll,
    o: &Opts,
    tls: Option<&tls::Client>,
    idx: usize,
    interest: Interest,
    what: &str,
) -> Stream {
    let mut stream = Stream::connect(o, tls).unwrap_or_else(|e| {
        let to = (o.unix.as_ref()).map_or(o.addr.to_string(), |p| p.display().to_string());
        fail!("connect {to} ({what}): {e}")
    });
    (poll.registry().register(stream.socket(), Token(idx), interest))
        .unwrap_or_else(|e| fail!("register: {e}"));
    stream
}

/// `--reconnect`: once `conn` has used up its messages and every one is
/// answered, closes it and opens a new one in its place.
fn churn(
    poll: &Poll,
    o: &Opts,
    tls: Option<&tls::Client>,
    conn: &mut Conn,
    idx: usize,
    load: &mut Load,
    now: Instant,
) {
    let Some(per_conn) = o.reconnect else { return };
    if conn.budget > 0 || conn.sent != conn.recv {
        return;
    }
    let _ = poll.registry().deregister(conn.stream.socket());
    let what = format!("conn {idx}, reconnect {}", load.reconnects + 1);
    conn.stream = connect_one(poll, o, tls, idx, Interest::READABLE | Interest::WRITABLE, &what);
    conn.input.clear();
    (conn.served, conn.closing) = (0, false);
    conn.budget = per_conn;
    load.reconnects += 1;
    load.refill(conn, idx, now);
    flush(conn, idx);
}

/// Connections whose oldest message in flight started over a second before
/// `now`, or (`--rate`) whose oldest message not yet sent fell due that
/// long ago: messages the server has lost, or a stall.
fn stalled(conns: &[Conn], schedule: Option<&Schedule>, now: Instant) -> usize {
    let oldest = |(idx, c): &(usize, &Conn)| match (c.started.front(), schedule) {
        (Some(&t), _) => Some(t),
        (None, Some(s)) if c.due > c.sent => Some(s.due(*idx, c.sent)),
        _ => None,
    };
    let stuck = |t: Instant| now.saturating_duration_since(t) > Duration::from_secs(1);
    conns
        .iter()
        .enumerate()
        .filter_map(|c| oldest(&c))
        .filter(|&t| stuck(t))
        .count()
}

/// Polls, retrying on EINTR.
fn poll_once(poll: &mut Poll, events: &mut Events, timeout: Duration) {
    match poll.poll(events, Some(timeout)) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Interrupted => {}
        Err(e) => fail!("poll: {e}"),
    }
}

/// How long to sleep in poll until `deadline`: whole milliseconds, as epoll
/// rounds up to them, and no sleep at all when it is under 1 ms away.
fn sleep_until(now: Instant, deadline: Instant) -> Duration {
    let ms = deadline.saturating_duration_since(now).as_millis();
    Duration::from_millis(ms.min(u64::MAX as u128) as u64)
}

/// The request HTTP mode sends; `None` in echo mode.
fn http_request(o: &Opts) -> Option<Vec<u8>> {
    #[cfg(feature = "http")]
    return o.http.as_deref().map(|path| http::request(path, &o.host));
    #[cfg(not(feature = "http"))]
    return o
        .http
        .as_ref()
        .map(|_| unreachable!("check_opts refuses --http without the feature"));
}

/// The server's state as read at one edge of the window.
fn server_sample(pid: u32) -> ProcessStats {
    ProcessStats::of(pid).unwrap_or_else(|e| fail!("cannot read server process {pid}: {e}"))
}

/// This process's CPU time in seconds.
fn own_cpu() -> f64 {
    sys::cpu_time().map_or(0.0, |t| t.total().as_secs_f64())
}

/// Where the measurement window started.
struct Window {
    /// When it started.
    start: Instant,
    /// The server at that moment, with `--pid`.
    server: Option<ProcessStats>,
    /// This process's CPU seconds at that moment.
    client_cpu: f64,
}

/// A one-line progress report on stderr, redrawn every second.
struct Progress {
    /// Off unless stderr is a terminal and the run is long enough.
    enabled: bool,
    /// When to redraw next.
    next: Instant,
    /// Messages completed at the last redraw, for the rate since.
    last_msgs: u64,
}

impl Progress {
    fn new(o: &Opts, now: Instant) -> Progress {
        let length = o.warmup + if o.count.is_some() { o.timeout } else { o.duration };
        Progress {
            enabled: std::io::stderr().is_terminal() && length > PROGRESS_AFTER,
            next: now + Duration::from_secs(1),
            last_msgs: 0,
        }
    }

    /// Redraws the line if a second has passed.
    fn tick(&mut self, now: Instant, begun: Instant, load: &Load) {
        if !self.enabled || now < self.next {
            return;
        }
        let phase = if load.in_window { "window" } else { "warmup" };
        let p99 = load.hist.value_at_quantile(0.99) as f64 / 1000.0;
        eprint!(
            "\r\x1b[K[{:5.1}s] {phase}: {} msgs/s, window {} msgs, p99 {p99:.1} us",
            now.duration_since(begun).as_secs_f64(),
            load.completed - self.last_msgs,
            load.window_msgs,
        );
        self.last_msgs = load.completed;
        self.next = now + Duration::from_secs(1);
    }

    /// Erases the line.
    fn clear(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}

fn main() {
    let o = CLI.parse(parse_opts);
    if o.udp {
        return udp::run(&o);
    }
    let tls = (o.tls.as_deref()).map(|ca| tls::Client::new(ca, o.addr).unwrap_or_else(|e| fail!("{e}")));
    match (o.idle, &tls) {
        (Some(n), _) => hold_idle(&o, n, tls.as_ref()),
        (None, Some(client)) if o.handshakes => tls::run_handshakes(&o, client),
        (None, _) => run_load(&o, tls.as_ref()),
    }
}

/// `--idle N`: connects, reports, holds the connections for `--duration`.
fn hold_idle(o: &Opts, n: usize, tls: Option<&tls::Client>) {
    let mut poll = Poll::new().unwrap_or_else(|e| fail!("poll: {e}"));
    let start = Instant::now();
    let mut streams = connect_all(&poll, o, n, Interest::READABLE, tls);
    println!("idle_conns={n} connect_secs={:.3}", start.elapsed().as_secs_f64());
    std::io::stdout().flush().unwrap_or_else(|e| fail!("stdout: {e}"));

    let end = Instant::now() + Duration::from_secs_f64(o.duration);
    let mut events = Events::with_capacity(1024);
    let mut byte = [0u8; 1];
    while Instant::now() < end {
        poll_once(
            &mut poll,
            &mut events,
            end.saturating_duration_since(Instant::now()),
        );
        for event in events.iter() {
            let idx = event.token().0;
            match streams[idx].read(&mut byte) {
                Ok(0) => fail!("idle conn {idx}: closed by the server"),
                Ok(_) => fail!("idle conn {idx}: the server sent data"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => fail!("idle conn {idx}: {e}"),
            }
        }
    }
}

/// The closed-loop and fixed-rate modes.
fn run_load(o: &Opts, tls: Option<&tls::Client>) {
    let mut poll = Poll::new().unwrap_or_else(|e| fail!("poll: {e}"));
    let connect_start = Instant::now();
    let streams = connect_all(&poll, o, o.conns, Interest::READABLE | Interest::WRITABLE, tls);
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let mut conns: Vec<Conn> = (streams.into_iter())
        .map(|stream| Conn {
            stream,
            out: Vec::with_capacity(o.size * o.depth),
            out_pos: 0,
            sent: 0,
            recv: 0,
            recv_off: 0,
            due: 0,
            started: VecDeque::with_capacity(o.depth),
            input: Vec::new(),
            budget: o.reconnect.unwrap_or(u64::MAX),
            served: 0,
            closing: false,
            ended: false,
        })
        .collect();

    let start = Instant::now();
    let mut load = Load {
        pat: Pattern::new(o.size),
        request: http_request(o),
        errors: 0,
        hist: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds"),
        in_window: false,
        window_msgs: 0,
        completed: 0,
        in_flight: 0,
        count: o.count,
        depth: o.depth as u64,
        schedule: o.rate.map(|rate| Schedule {
            start,
            rate,
            conns: o.conns as u64,
            next: 0,
        }),
        reconnects: 0,
        resent: 0,
    };
    let begin = |load: &mut Load| {
        load.in_window = true;
        Window {
            server: o.pid.map(server_sample),
            client_cpu: own_cpu(),
            start: Instant::now(),
        }
    };
    let warm_end = start + Duration::from_secs_f64(o.warmup);
    let hard_end = warm_end + Duration::from_secs_f64(o.timeout);
    let mut window = (o.warmup == 0.0).then(|| begin(&mut load));
    let mut progress = Progress::new(o, start);

    for (idx, conn) in conns.iter_mut().enumerate() {
        load.refill(conn, idx, start);
        flush(conn, idx);
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        let now = Instant::now();
        if window.is_none() && now >= warm_end {
            window = Some(begin(&mut load));
        }
        load.release_due(&mut conns, now);
        progress.tick(now, start, &load);
        let deadline = match (&window, o.count) {
            (None, _) => warm_end,
            (Some(_), Some(n)) if load.window_msgs >= n => break now,
            (Some(_), Some(n)) if now >= hard_end => {
                progress.clear();
                fail!(
                    "--count {n}: only {} echoes after --timeout {}s",
                    load.window_msgs,
                    o.timeout
                )
            }
            (Some(_), Some(_)) => hard_end,
            (Some(w), None) => {
                let end = w.start + Duration::from_secs_f64(o.duration);
                if now >= end {
                    break now;
                }
                end
            }
        };
        let wake = load.next_due().map_or(deadline, |due| due.min(deadline));
        let wake = if progress.enabled {
            wake.min(progress.next)
        } else {
            wake
        };
        poll_once(&mut poll, &mut events, sleep_until(now, wake));
        let now = Instant::now();
        for event in events.iter() {
            let idx = event.token().0;
            let conn = &mut conns[idx];
            let hung_up = event.is_read_closed() || event.is_error();
            drain(conn, idx, &mut load, &mut buf, now, hung_up);
            if conn.ended {
                rejoin(&poll, o, tls, conn, idx, &mut load);
                continue;
            }
            flush(conn, idx);
            churn(&poll, o, tls, conn, idx, &mut load, now);
        }
    };
    progress.clear();

    let w = window.expect("window started before it ended");
    let outcome = Outcome {
        secs: end.duration_since(w.start).as_secs_f64(),
        client_cpu: own_cpu() - w.client_cpu,
        connect_secs,
        server: w.server.zip(o.pid.map(server_sample)),
    };
    let mut line = report(o, &load, &outcome);
    if o.reconnect.is_some() || load.request.is_some() {
        line += &format!(
            " reconnects={} stalled={}",
            load.reconnects,
            stalled(&conns, load.schedule.as_ref(), end)
        );
    }
    if load.request.is_some() {
        line += &format!(" resent={}", load.resent);
    }
    drop(conns);
    println!("{line}");
}

/// What a run measured besides the latencies.
struct Outcome {
    /// Length of the window.
    secs: f64,
    /// This process's CPU seconds in the window.
    client_cpu: f64,
    /// Seconds it took to open every connection.
    connect_secs: f64,
    /// The server at the window's start and end, with `--pid`.
    server: Option<(ProcessStats, ProcessStats)>,
}

/// The result line: `key=value` pairs separated by spaces.
fn report(o: &Opts, load: &Load, outcome: &Outcome) -> String {
    let (secs, msgs) = (outcome.secs, load.window_msgs);
    let us = |ns: u64| ns as f64 / 1000.0;
    let h = &load.hist;
    let mut line = format!(
        "msgs={msgs} secs={secs:.2} msgs_per_s={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1}",
        msgs as f64 / secs,
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
    );
    if let Some(rate) = o.rate {
        line += &format!(" target_rate={rate:.0}");
    }
    line += &server_fields(outcome.server.as_ref(), msgs, secs);
    line += &format!(
        " client_cpu_pct={:.1} connect_secs={:.3} errors={}",
        outcome.client_cpu * 100.0 / secs,
        outcome.connect_secs,
        load.errors,
    );
    line
}

/// The result line's server fields: its CPU time, context switches,
/// threads and memory over the window, per message where it applies (`NA`
/// without `--pid` or messages).
fn server_fields(server: Option<&(ProcessStats, ProcessStats)>, msgs: u64, secs: f64) -> String {
    match server {
        Some((before, after)) if msgs > 0 => {
            let cpu = after.cpu_since(before).total().as_secs_f64();
            let switches = after.switches_since(before);
            let per_1k = |n: u64| n as f64 * 1000.0 / msgs as f64;
            format!(
                " server_cpu_us_per_msg={:.3} server_cs_per_1k={:.2} server_cpu_pct={:.1} \
                 server_invol_cs_per_1k={:.2} server_threads={} server_rss_kb={}",
                cpu * 1e6 / msgs as f64,
                per_1k(switches.total()),
                cpu * 100.0 / secs,
                per_1k(switches.involuntary),
                after.threads,
                after.rss / 1024,
            )
        }
        _ => " server_cpu_us_per_msg=NA server_cs_per_1k=NA server_cpu_pct=NA \
              server_invol_cs_per_1k=NA server_threads=NA server_rss_kb=NA"
            .to_string(),
    }
}
