//! Hello world over HTTP/1.1: `evloop::http` answering every request with
//! `Hello world!`, one event loop per core (or `--threads N`).
//!
//! Run it:
//!
//! ```text
//! RUST_LOG=debug cargo run --release --example hello_http [-- --addr 127.0.0.1:3000 --threads 1 --nodelay off]
//! ```
//!
//! then, from another terminal:
//!
//! ```text
//! curl -v http://127.0.0.1:3000/
//! wrk -t1 -c64 -d5s http://127.0.0.1:3000/
//! cargo run --release --example loadgen -- --addr 127.0.0.1:3000 --http / --depth 16
//! ```
//!
//! With `--unix PATH` it serves on a Unix domain socket instead (a stale
//! socket file there is replaced, the file is removed on the way out):
//! `curl --unix-socket PATH http://localhost/`.
//! `--handover PATH` restarts it without losing a connection, and systemd's
//! socket activation (`LISTEN_FDS`) hands it its socket, as for
//! `echo_server` (see its docs and `docs/DEPLOY.md`).
//!
//! Ctrl-C stops it (responses in flight get five seconds) and logs the
//! server's counters. `--help` lists the options; bad arguments exit with
//! status 2, a failure to start (the address in use, say) with status 1.
//! Limits: it answers every method and path alike.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/listen.rs"]
mod listen;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::{Arg, Cli, Error, Parser};

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "hello_http",
    usage: "\
usage: hello_http [--addr HOST:PORT | --unix PATH] [--threads N] [--pin] [--nodelay on|off]
                  [--handover PATH] [--delay MS]

Hello world over HTTP/1.1: every request gets `Hello world!`.

options:
  --addr HOST:PORT   where to listen (default 127.0.0.1:3000)
  --unix PATH        listen on a Unix domain socket at PATH instead
  --threads N        event loops (default: one per core)
  --pin              pin loop i to the i-th CPU this process may use (Linux)
  --nodelay on|off   TCP_NODELAY on accepted sockets (default on); off leaves
                     Nagle's algorithm on, as servers that never set it do
  --delay MS         answer each request MS milliseconds late (from a timer on
                     the loop), as a backend that takes its time (default 0)
  --handover PATH    take the socket over from the instance offering it on this
                     Unix socket path (or bind --addr or --unix if none does),
                     and offer it there to the next instance
  -h, --help         print this help

Try it: curl -v http://127.0.0.1:3000/
   or, with --unix PATH: curl --unix-socket PATH http://localhost/",
};

/// Command-line options.
struct Options {
    /// Listening address.
    addr: SocketAddr,
    /// A Unix socket to listen on instead of `addr`.
    unix: Option<PathBuf>,
    /// Event loops; `None` means one per core.
    threads: Option<usize>,
    /// Whether accepted sockets get TCP_NODELAY.
    nodelay: bool,
    /// Pin each loop to a CPU.
    pin: bool,
    /// Take over from, and hand over to, instances on this control socket.
    handover: Option<std::path::PathBuf>,
    /// How late each answer comes, in milliseconds.
    delay_ms: u64,
}

fn main() {
    let options = CLI.parse(parse_options);
    cli::init_logging();
    CLI.or_fail(serve(&options));
}

/// Serves until a signal stops the server.
#[cfg(feature = "http")]
fn serve(options: &Options) -> Result<(), String> {
    use std::time::Duration;

    use evloop::http::{HttpServer, Request, Responder, Response};

    let addr = match &options.unix {
        Some(path) => evloop::Bind::unix(path),
        None => evloop::Bind::Tcp(options.addr),
    };
    let sockets = listen::Sockets::open(addr.clone(), options.handover.as_deref())?;
    let mut server =
        HttpServer::from_server(sockets.server()?).config(evloop::Config::default().nodelay(options.nodelay));
    if let Some(n) = options.threads {
        server = server.threads(n);
    }
    if options.pin {
        server = server.pin(evloop::Pin::Allowed);
    }
    let started = match options.delay_ms {
        0 => server.start(|_req: &Request| Response::text("Hello world!")),
        ms => server.start_deferred(move |_req: Request, responder: Responder| {
            responder.after(Duration::from_millis(ms), |responder| {
                responder.send(Response::text("Hello world!"));
            });
        }),
    };
    let server = started.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    match server.local() {
        evloop::Bind::Tcp(at) => log::info!("serving http://{at}/"),
        unix => log::info!("serving on {unix}: curl --unix-socket {unix} http://localhost/"),
    }
    // As `evloop::http::serve`: five seconds for responses in flight on the
    // first signal, a second one stops at once.
    (server.shutdown_on_signals(Duration::from_secs(5)))
        .map_err(|e| format!("cannot catch Ctrl-C and SIGTERM: {e}"))?;
    // Ready (and handing over) once signals are caught: a stop request
    // that follows the notice finds the handler in place.
    let handover = sockets.serving(std::slice::from_ref(&server))?;
    let stopped = server.join();
    drop(handover);
    log::info!("stopped: {}", server.stats());
    stopped.map_err(|e| format!("the server on {addr} failed: {e}"))
}

/// Without the `http` feature there is nothing to serve.
#[cfg(not(feature = "http"))]
fn serve(options: &Options) -> Result<(), String> {
    let Options {
        addr,
        unix,
        threads,
        nodelay,
        pin,
        handover,
        delay_ms,
    } = options;
    let _ = (unix, threads, nodelay, pin, handover, delay_ms);
    Err(format!(
        "cannot serve HTTP on {addr}: this example needs the `http` feature (on by default)"
    ))
}

/// Parses the command line.
fn parse_options(parser: &mut Parser) -> Result<Options, Error> {
    let mut options = Options {
        addr: "127.0.0.1:3000".parse().unwrap(),
        unix: None,
        threads: None,
        nodelay: true,
        pin: false,
        handover: None,
        delay_ms: 0,
    };
    let mut addr_given = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long("addr") => {
                options.addr = cli::addr(parser, "--addr")?;
                addr_given = true;
            }
            Arg::Long("unix") => options.unix = Some(PathBuf::from(cli::string(parser, "--unix")?)),
            Arg::Long("threads") => options.threads = Some(cli::count(parser, "--threads")?),
            Arg::Long("pin") => options.pin = true,
            Arg::Long("delay") => options.delay_ms = cli::value(parser, "--delay", "milliseconds")?,
            Arg::Long("handover") => {
                options.handover = Some(cli::string(parser, "--handover")?.into());
            }
            Arg::Long("nodelay") => {
                options.nodelay = cli::choice(parser, "--nodelay", &[("on", true), ("off", false)])?
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if addr_given && options.unix.is_some() {
        return Err(cli::bad("--addr and --unix are two places to listen; give one"));
    }
    Ok(options)
}
