//! loadgen's command line: the options, their defaults, and the checks that
//! refuse values no run can use and options the chosen mode would ignore.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::{self, Arg, Cli, Error, Parser, bad};

/// This program's name and usage.
pub(crate) const CLI: Cli = Cli {
    name: "loadgen",
    usage: "\
usage: loadgen [--addr HOST:PORT | --unix PATH] [--conns C] [--size BYTES] [--depth D] [--rate MSGS_PER_S]
               [--warmup SECS] [--duration SECS | --count N [--timeout SECS]] [--pid PID]
               [--http PATH] [--tls CA_FILE] [--reconnect N]
       loadgen --udp [--addr HOST:PORT] [--conns C] [--size BYTES] [--rate MSGS_PER_S]
               [--warmup SECS] [--duration SECS] [--pid PID]
       loadgen --idle N [--addr HOST:PORT | --unix PATH] [--duration SECS] [--tls CA_FILE]
       loadgen --tls CA_FILE --handshakes [--addr ..] [--conns C] [--size BYTES] [--warmup ..]
               [--duration .. | --count N [--timeout ..]] [--pid PID]

Echo (or HTTP) load from one thread, every byte checked; prints one line of
results: msgs=.. msgs_per_s=.. p50_us=.. p99_us=.. server_cpu_us_per_msg=..

options:
  --addr HOST:PORT    the server (default 127.0.0.1:7000)
  --unix PATH         the server on a Unix domain socket instead
  --conns C           connections (default 100)
  --size BYTES        bytes per echo message (default 64; not with --http)
  --depth D           messages in flight per connection (default 1)
  --rate MSGS_PER_S   a fixed total rate, latency measured from each message's
                      due time (default: closed loop)
  --warmup SECS       load before the measurement window (default 1)
  --duration SECS     the window's length (default 5)
  --count N           end the window after exactly N messages instead
  --timeout SECS      bound a --count run (default 120): exceeding it fails
  --pid PID           read this server process's CPU time, context switches,
                      threads and memory at the window's edges
  --http PATH         send pipelined keep-alive `GET PATH` requests instead of
                      echo messages (--depth of them in flight per connection);
                      a connection the server closes after answering on it
                      (`Connection: close`, a drain) is replaced, and what it
                      left unanswered is sent again; adds reconnects=,
                      stalled= and resent= to the line
  --udp               UDP echo instead: C sockets send datagrams of --size
                      bytes (at least 16) at --rate (default 10000) in all;
                      adds sent=.. received=.. lost=.. to the line
  --reconnect N       churn: each connection closes after N messages (once all
                      are answered) and a new one replaces it, so new connections
                      arrive all along; adds reconnects= and stalled= (connections
                      whose oldest message waited over 1 s at the end)
  --idle N            open N connections that send nothing, print
                      idle_conns=N once all are up, hold them for --duration
  --tls CA_FILE       speak TLS, trusting the PEM certificates in CA_FILE; the
                      server's certificate must name --addr's IP address
  --handshakes        with --tls: every connection is new, makes a full
                      handshake (no resumption), one echo, and closes; --conns
                      of them at a time; msgs are handshakes
  -h, --help          print this help

Exit status: 0 done, 1 a failed run (a wrong echo, a closed connection), 2 bad arguments.",
};

/// Command-line options.
pub(crate) struct Opts {
    /// The server.
    pub(crate) addr: SocketAddr,
    /// `--addr` as given, for the `Host` header.
    pub(crate) host: String,
    /// A server on a Unix domain socket, instead of `addr`.
    pub(crate) unix: Option<PathBuf>,
    /// Connections to open.
    pub(crate) conns: usize,
    /// Bytes per message.
    pub(crate) size: usize,
    /// Messages in flight per connection (at most, in `--rate` mode).
    pub(crate) depth: usize,
    /// Total messages per second in fixed-rate mode; `None`: closed loop.
    pub(crate) rate: Option<f64>,
    /// Seconds before the window starts.
    pub(crate) warmup: f64,
    /// Length of the window in seconds (hold time in idle mode).
    pub(crate) duration: f64,
    /// Exact number of echoes in the window, instead of `duration`.
    pub(crate) count: Option<u64>,
    /// Bound on a `count` run, in seconds after the warmup.
    pub(crate) timeout: f64,
    /// The server process to read at the window's edges.
    pub(crate) pid: Option<u32>,
    /// Idle mode: connections to open and hold.
    pub(crate) idle: Option<usize>,
    /// HTTP mode: the path to `GET`.
    pub(crate) http: Option<String>,
    /// TLS: the PEM file of the CA certificates to trust.
    pub(crate) tls: Option<PathBuf>,
    /// Handshake mode: a new TLS connection per echo.
    pub(crate) handshakes: bool,
    /// UDP mode: datagrams at a fixed rate.
    pub(crate) udp: bool,
    /// Messages per connection before it is replaced by a new one.
    pub(crate) reconnect: Option<u64>,
}

/// Parses and checks the command line.
pub(crate) fn parse_opts(parser: &mut Parser) -> Result<Opts, Error> {
    let mut o = Opts {
        addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
        host: "127.0.0.1:7000".to_string(),
        unix: None,
        conns: 100,
        size: 64,
        depth: 1,
        rate: None,
        warmup: 1.0,
        duration: 5.0,
        count: None,
        timeout: 120.0,
        pid: None,
        idle: None,
        http: None,
        tls: None,
        handshakes: false,
        udp: false,
        reconnect: None,
    };
    let mut given = Vec::new();
    while let Some(arg) = parser.next()? {
        let flag = match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long(name) => format!("--{name}"),
            _ => return Err(arg.unexpected()),
        };
        set(&mut o, parser, &flag)?;
        given.push(flag);
    }
    check_values(&o)?;
    check_mode(&o, &given)?;
    Ok(o)
}

/// Reads the value of `flag` into `o`.
fn set(o: &mut Opts, parser: &mut Parser, flag: &str) -> Result<(), Error> {
    const SECS: &str = "seconds, such as 1 or 0.5";
    match flag {
        "--addr" => {
            let text = cli::string(parser, flag)?;
            o.addr = cli::resolve(flag, &text)?;
            o.host = text;
        }
        "--unix" => o.unix = Some(PathBuf::from(cli::string(parser, flag)?)),
        "--conns" => o.conns = cli::count(parser, flag)?,
        "--size" => o.size = cli::count(parser, flag)?,
        "--depth" => o.depth = cli::count(parser, flag)?,
        "--rate" => o.rate = Some(cli::value(parser, flag, "messages per second")?),
        "--warmup" => o.warmup = cli::value(parser, flag, SECS)?,
        "--duration" => o.duration = cli::value(parser, flag, SECS)?,
        "--count" => o.count = Some(cli::value(parser, flag, "a whole number")?),
        "--timeout" => o.timeout = cli::value(parser, flag, SECS)?,
        "--pid" => o.pid = Some(cli::value(parser, flag, "a process id")?),
        "--idle" => o.idle = Some(cli::count(parser, flag)?),
        "--http" => o.http = Some(cli::string(parser, flag)?),
        "--tls" => o.tls = Some(PathBuf::from(cli::string(parser, flag)?)),
        "--handshakes" => o.handshakes = true,
        "--udp" => o.udp = true,
        "--reconnect" => o.reconnect = Some(cli::count(parser, flag)? as u64),
        _ => return Err(bad(format!("unknown option {flag}"))),
    }
    Ok(())
}

/// Refuses values no run can use.
fn check_values(o: &Opts) -> Result<(), Error> {
    let secs_ok = |s: f64| s.is_finite() && s >= 0.0;
    if !secs_ok(o.warmup) || !secs_ok(o.duration) || !secs_ok(o.timeout) {
        return Err(bad(
            "--warmup, --duration and --timeout must be non-negative seconds",
        ));
    }
    if o.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(bad("--rate must be a positive number of messages per second"));
    }
    if let Some(path) = &o.http {
        if !cfg!(feature = "http") {
            return Err(bad("--http needs the `http` feature (on by default)"));
        }
        let odd = |b: u8| b.is_ascii_whitespace() || b.is_ascii_control();
        if !path.starts_with('/') || path.bytes().any(odd) {
            return Err(bad(format!(
                "--http takes a path starting with '/', without spaces: got {path:?}"
            )));
        }
    }
    Ok(())
}

/// Refuses options that the chosen mode would ignore.
fn check_mode(o: &Opts, given: &[String]) -> Result<(), Error> {
    let has = |flag: &str| given.iter().any(|g| g == flag);
    let refuse = |flag: &str, why: &str| Err(bad(format!("{flag} {why}")));
    if o.idle.is_some() {
        let idle_ok = ["--idle", "--addr", "--unix", "--duration", "--tls"];
        if let Some(flag) = given.iter().find(|g| !idle_ok.contains(&g.as_str())) {
            return refuse(
                flag,
                "does not apply to --idle, which only takes --addr or --unix, --duration and --tls",
            );
        }
    }
    if o.handshakes {
        if o.tls.is_none() {
            return refuse("--handshakes", "needs --tls CA_FILE");
        }
        let ok = [
            "--handshakes",
            "--tls",
            "--addr",
            "--conns",
            "--size",
            "--warmup",
            "--duration",
            "--count",
            "--timeout",
            "--pid",
        ];
        if let Some(flag) = given.iter().find(|g| !ok.contains(&g.as_str())) {
            return refuse(flag, "does not apply to --handshakes");
        }
    }
    if o.udp {
        let tcp_only = [
            "--http",
            "--idle",
            "--depth",
            "--count",
            "--timeout",
            "--tls",
            "--handshakes",
            "--unix",
            "--reconnect",
        ];
        if let Some(flag) = given.iter().find(|g| tcp_only.contains(&g.as_str())) {
            return refuse(flag, "does not apply to --udp");
        }
        if o.size < 16 {
            return refuse(
                "--size",
                "must be at least 16 with --udp: a datagram carries its sequence number and socket",
            );
        }
    }
    if has("--addr") && has("--unix") {
        return refuse("--addr", "and --unix are two servers; give one");
    }
    if has("--tls") && has("--unix") {
        return refuse("--tls", "runs over TCP; --unix connections are plain");
    }
    if o.http.is_some() && has("--size") {
        return refuse("--size", "does not apply to --http: the request is the message");
    }
    if o.count.is_some() && has("--duration") {
        return refuse("--duration", "and --count both end the window; give one");
    }
    if o.count.is_none() && has("--timeout") {
        return refuse("--timeout", "bounds a --count run only");
    }
    Ok(())
}
