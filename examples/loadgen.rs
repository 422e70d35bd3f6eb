//! Closed-loop echo load generator: one thread, one `mio::Poll`.
//!
//! Opens `--conns` connections (TCP_NODELAY); each keeps `--depth` messages of
//! `--size` bytes in flight and sends the next one whenever a whole echo has
//! come back. Every echoed byte is checked: message `seq` on connection `c` is
//! a window into a fixed pseudo-random alphanumeric table, shifted by
//! `(97 * seq + 13 * c) % 251`, so consecutive messages differ and a lost,
//! duplicated or reordered byte shows up. A mismatch, a connection closed by
//! the server or any I/O error aborts with exit status 1.
//!
//! After `--warmup` seconds a measurement window of `--duration` seconds (or
//! of `--count` messages) starts. With `--pid`, the server's CPU time
//! (`/proc/PID/stat` utime+stime) and context switches (sum over
//! `/proc/PID/task/*/status`) are sampled at the window's edges. One line goes
//! to stdout at the end, e.g.
//!
//! `msgs=123456 secs=5.00 msgs_per_s=24691 p50_us=.. p99_us=.. p999_us=.. max_us=.. server_cpu_us_per_msg=3.21 server_cs_per_1k=12.3 server_cpu_pct=99.0 client_cpu_pct=80.1 errors=0`
//!
//! Run: `cargo run --release --example loadgen -- --addr 127.0.0.1:7001 --pid $(pidof ...)`

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Number of distinct shifts of the pattern table (prime).
const PERIOD: usize = 251;

const USAGE: &str = "usage: loadgen [--addr HOST:PORT] [--conns C] [--size BYTES] [--depth D]
               [--warmup SECS] [--duration SECS | --count N] [--timeout SECS] [--pid PID]
defaults: --addr 127.0.0.1:7000 --conns 100 --size 64 --depth 1 --warmup 1 --duration 5
--count N ends the window after exactly N echoes instead of after --duration;
--timeout (default 120) bounds such a run: exceeding it is an error.";

macro_rules! fail {
    ($($arg:tt)*) => {{
        eprintln!("loadgen: {}", format_args!($($arg)*));
        std::process::exit(1)
    }};
}

struct Opts {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    depth: usize,
    warmup: f64,
    duration: f64,
    count: Option<u64>,
    timeout: f64,
    pid: Option<u32>,
}

fn parse_opts() -> Opts {
    fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
        let v = v.unwrap_or_else(|| fail!("{flag} needs a value\n{USAGE}"));
        v.parse()
            .unwrap_or_else(|_| fail!("bad value {v:?} for {flag}\n{USAGE}"))
    }
    let mut addr = "127.0.0.1:7000".to_string();
    let mut o = Opts {
        addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
        conns: 100,
        size: 64,
        depth: 1,
        warmup: 1.0,
        duration: 5.0,
        count: None,
        timeout: 120.0,
        pid: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let v = args.next();
        match flag.as_str() {
            "--addr" => addr = v.unwrap_or_else(|| fail!("--addr needs a value")),
            "--conns" => o.conns = num(&flag, v),
            "--size" => o.size = num(&flag, v),
            "--depth" => o.depth = num(&flag, v),
            "--warmup" => o.warmup = num(&flag, v),
            "--duration" => o.duration = num(&flag, v),
            "--count" => o.count = Some(num(&flag, v)),
            "--timeout" => o.timeout = num(&flag, v),
            "--pid" => o.pid = Some(num(&flag, v)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ => fail!("unknown argument {flag:?}\n{USAGE}"),
        }
    }
    o.addr = (addr.to_socket_addrs().ok().and_then(|mut a| a.next()))
        .unwrap_or_else(|| fail!("cannot resolve --addr {addr:?}"));
    let secs_ok = |s: f64| s.is_finite() && s >= 0.0;
    if o.conns == 0 || o.size == 0 || o.depth == 0 {
        fail!("--conns, --size and --depth must be at least 1");
    }
    if !secs_ok(o.warmup) || !secs_ok(o.duration) || !secs_ok(o.timeout) {
        fail!("--warmup, --duration and --timeout must be non-negative seconds");
    }
    o
}

/// Message contents: message `seq` of connection `conn` is `size` bytes of a
/// fixed table, starting at a shift that changes with every message.
struct Pattern {
    table: Vec<u8>,
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

/// Log-linear histogram of nanoseconds: 64 buckets per power of two (<1.6% error).
struct Hist {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

impl Hist {
    fn new() -> Self {
        Hist {
            counts: vec![0; ((64 - SUB_BITS + 1) as u64 * SUB) as usize],
            n: 0,
            max: 0,
        }
    }

    fn record(&mut self, v: u64) {
        let idx = if v < SUB {
            v
        } else {
            let e = 63 - v.leading_zeros();
            (e - SUB_BITS + 1) as u64 * SUB + ((v >> (e - SUB_BITS)) - SUB)
        };
        self.counts[idx as usize] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    /// The value at quantile `q` (middle of its bucket), in nanoseconds.
    fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (idx, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let idx = idx as u64;
                if idx < SUB {
                    return idx;
                }
                let shift = (idx / SUB) as u32 - 1;
                let low = (idx % SUB + SUB) << shift;
                return (low + (1u64 << shift) / 2).min(self.max);
            }
        }
        self.max
    }
}

struct Conn {
    stream: TcpStream,
    /// Bytes queued for sending; `out[..out_pos]` is already sent.
    out: Vec<u8>,
    out_pos: usize,
    /// Messages queued so far, and messages whose echo is complete.
    sent: u64,
    recv: u64,
    /// Bytes of message `recv` received so far.
    recv_off: usize,
    /// Send times of the messages in flight.
    sent_at: VecDeque<Instant>,
}

/// Counters shared by all connections.
struct Load {
    pat: Pattern,
    hist: Hist,
    in_window: bool,
    window_msgs: u64,
    in_flight: u64,
    count: Option<u64>,
}

impl Load {
    /// Whether another message may be started (a `--count` window is exact).
    fn may_send(&self) -> bool {
        match self.count {
            Some(n) if self.in_window => self.window_msgs + self.in_flight < n,
            _ => true,
        }
    }

    fn queue(&mut self, conn: &mut Conn, idx: usize, now: Instant) {
        conn.out.extend_from_slice(self.pat.msg(idx, conn.sent));
        conn.sent += 1;
        conn.sent_at.push_back(now);
        self.in_flight += 1;
    }

    /// Checks echoed bytes, completes messages and starts their successors.
    fn received(&mut self, conn: &mut Conn, idx: usize, mut data: &[u8], now: Instant) {
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
                conn.recv_off = 0;
                conn.recv += 1;
                self.in_flight -= 1;
                let sent_at = conn.sent_at.pop_front().expect("send time of message in flight");
                if self.in_window {
                    self.window_msgs += 1;
                    self.hist
                        .record(now.saturating_duration_since(sent_at).as_nanos() as u64);
                }
                if self.may_send() {
                    self.queue(conn, idx, now);
                }
            }
        }
    }
}

fn flush(conn: &mut Conn, idx: usize) {
    while conn.out_pos < conn.out.len() {
        match conn.stream.write(&conn.out[conn.out_pos..]) {
            Ok(0) => fail!("conn {idx}: write returned 0"),
            Ok(n) => conn.out_pos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => fail!("conn {idx}: write: {e}"),
        }
    }
    conn.out.clear();
    conn.out_pos = 0;
}

/// Server CPU seconds (utime+stime) and context switches summed over its threads.
fn server_sample(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| fail!("cannot read /proc/{pid}/stat: {e}"));
    // Fields after "(comm)": state is field 3, so utime (14) and stime (15) are 11 and 12.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> u64 {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| fail!("cannot parse /proc/{pid}/stat"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (tick(11) + tick(12)) as f64 / hz;

    let mut switches = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| fail!("cannot list /proc/{pid}/task: {e}"));
    for task in tasks.flatten() {
        // A thread may exit between listing and reading: skip it.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            if let Some((key, value)) = line.split_once(':') {
                if key == "voluntary_ctxt_switches" || key == "nonvoluntary_ctxt_switches" {
                    switches += value.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    (cpu, switches)
}

fn own_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Where the measurement window started.
struct Window {
    start: Instant,
    server: Option<(f64, u64)>,
    client_cpu: f64,
}

fn main() {
    let o = parse_opts();
    let mut poll = Poll::new().unwrap_or_else(|e| fail!("poll: {e}"));
    let mut conns = Vec::with_capacity(o.conns);
    for idx in 0..o.conns {
        let std_stream = std::net::TcpStream::connect_timeout(&o.addr, Duration::from_secs(5))
            .unwrap_or_else(|e| fail!("connect {} (conn {idx}): {e}", o.addr));
        std_stream
            .set_nodelay(true)
            .unwrap_or_else(|e| fail!("TCP_NODELAY: {e}"));
        std_stream
            .set_nonblocking(true)
            .unwrap_or_else(|e| fail!("nonblocking: {e}"));
        let mut stream = TcpStream::from_std(std_stream);
        poll.registry()
            .register(&mut stream, Token(idx), Interest::READABLE | Interest::WRITABLE)
            .unwrap_or_else(|e| fail!("register: {e}"));
        conns.push(Conn {
            stream,
            out: Vec::with_capacity(o.size * o.depth),
            out_pos: 0,
            sent: 0,
            recv: 0,
            recv_off: 0,
            sent_at: VecDeque::with_capacity(o.depth),
        });
    }

    let mut load = Load {
        pat: Pattern::new(o.size),
        hist: Hist::new(),
        in_window: false,
        window_msgs: 0,
        in_flight: 0,
        count: o.count,
    };
    let begin = |load: &mut Load| {
        load.in_window = true;
        Window {
            server: o.pid.map(server_sample),
            client_cpu: own_cpu(),
            start: Instant::now(),
        }
    };
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(o.warmup);
    let hard_end = warm_end + Duration::from_secs_f64(o.timeout);
    let mut window = (o.warmup == 0.0).then(|| begin(&mut load));

    for (idx, conn) in conns.iter_mut().enumerate() {
        for _ in 0..o.depth {
            if load.may_send() {
                load.queue(conn, idx, start);
            }
        }
        flush(conn, idx);
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        let now = Instant::now();
        if window.is_none() && now >= warm_end {
            window = Some(begin(&mut load));
        }
        let deadline = match (&window, o.count) {
            (None, _) => warm_end,
            (Some(_), Some(n)) if load.window_msgs >= n => break now,
            (Some(_), Some(n)) if now >= hard_end => {
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
        match poll.poll(&mut events, Some(deadline.saturating_duration_since(now))) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => fail!("poll: {e}"),
            Ok(()) => {}
        }
        let now = Instant::now();
        for event in events.iter() {
            let idx = event.token().0;
            let conn = &mut conns[idx];
            loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => fail!("conn {idx}: closed by the server"),
                    Ok(n) => {
                        load.received(conn, idx, &buf[..n], now);
                        // epoll(7): on a stream socket a short read means the
                        // socket is drained, so skip the read that would only
                        // say WouldBlock (a syscall per message saved).
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => fail!("conn {idx}: read: {e}"),
                }
            }
            flush(conn, idx);
        }
    };

    let w = window.expect("window started before it ended");
    let server_end = o.pid.map(server_sample);
    let client_cpu = own_cpu() - w.client_cpu;
    let secs = end.duration_since(w.start).as_secs_f64();
    drop(conns);

    let msgs = load.window_msgs;
    let us = |ns: u64| ns as f64 / 1000.0;
    let h = &load.hist;
    let mut line = format!(
        "msgs={msgs} secs={secs:.2} msgs_per_s={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1}",
        msgs as f64 / secs,
        us(h.quantile(0.5)),
        us(h.quantile(0.99)),
        us(h.quantile(0.999)),
        us(h.max),
    );
    match (w.server, server_end) {
        (Some((cpu0, cs0)), Some((cpu1, cs1))) if msgs > 0 => {
            line += &format!(
                " server_cpu_us_per_msg={:.3} server_cs_per_1k={:.2} server_cpu_pct={:.1}",
                (cpu1 - cpu0) * 1e6 / msgs as f64,
                (cs1 as f64 - cs0 as f64) * 1000.0 / msgs as f64,
                (cpu1 - cpu0) * 100.0 / secs,
            )
        }
        _ => line += " server_cpu_us_per_msg=NA server_cs_per_1k=NA server_cpu_pct=NA",
    }
    line += &format!(" client_cpu_pct={:.1} errors=0", client_cpu * 100.0 / secs);
    println!("{line}");
}
