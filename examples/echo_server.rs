//! An echo server: every byte a client sends comes straight back.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example echo_server                 # 127.0.0.1:7000, one loop per core
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000 --threads 4 --balance least
//! RUST_LOG=debug cargo run --release --example echo_server  # log accepts and closes
//! ```
//!
//! Options (`--help` lists them): `--addr HOST:PORT` (default
//! 127.0.0.1:7000) or `--unix PATH` (a Unix domain socket instead: a stale
//! socket file there is replaced, the file is removed on the way out),
//! `--model reactor|threads` (default reactor; `threads`
//! runs the same handler one OS thread per connection, the baseline the
//! comparison tools measure against), and for the reactor only `--threads N`
//! event loops (default: one per core) and `--balance
//! reuseport|roundrobin|least` (default reuseport where the kernel spreads
//! connections; see `evloop::Balance`). An option that does not apply to the
//! chosen model is refused, not ignored. Bad arguments exit with status 2,
//! a failure to start (say, the address is in use) with status 1.
//!
//! Restarts and socket activation (see `docs/DEPLOY.md`): with `--handover
//! PATH` it takes the listening socket over from an instance running with
//! the same option (that one stops accepting and exits once its clients are
//! done, within 10 s), or binds `--addr` (or `--unix`) if none runs, and offers the socket
//! on `PATH` to the next: `echo_server --handover /tmp/echo.sock &` twice in
//! a row restarts without refusing or dropping a connection (reactor only).
//! Started by systemd's socket activation (`LISTEN_FDS` set, as
//! `systemd-socket-activate -l 127.0.0.1:7000 target/release/examples/echo_server`
//! does), it serves the socket passed instead of `--addr`, and tells a
//! `Type=notify` service manager `READY=1` once serving.
//!
//! With `--tls-cert FILE --tls-key FILE` (PEM: the certificate chain and its
//! private key) it serves TLS instead, on either model: poke it with
//! `openssl s_client -connect 127.0.0.1:7000 -CAfile ca.pem -quiet`, where
//! `ca.pem` holds the certificate's issuer (or the certificate itself, if
//! self-signed). A file that cannot be read or parsed exits with status 1.
//!
//! Poke it from another terminal with `nc 127.0.0.1 7000`: type a line, get it
//! back; Ctrl-D ends your side and the server closes after echoing the rest.
//! `printf 'hello' | nc -N 127.0.0.1 7000` does the same in one line; over
//! a Unix socket, `printf 'hello' | nc -N -U /tmp/echo.sock`.
//!
//! The handler echoes without copying: it splits the received bytes off the
//! input buffer and queues them as `Bytes`. Idle clients are closed after the
//! default idle timeout (60 s). Ctrl-C or SIGTERM shuts down gracefully
//! (connections get 5 s to flush); a second Ctrl-C stops at once. On the way
//! out it logs the server's counters (`evloop::Stats`).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/listen.rs"]
mod listen;

use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use evloop::{Balance, Bind, Conn, Handler, Model, Pin, Server};

use crate::cli::{Arg, Cli, Error, Parser, bad};

/// Echoes whatever arrives.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "echo_server",
    usage: "\
usage: echo_server [--addr HOST:PORT | --unix PATH] [--model reactor|threads] [--threads N] [--balance MODE]
                   [--pin] [--tls-cert FILE --tls-key FILE] [--handover PATH]

An echo server: every byte a client sends comes straight back.

options:
  --addr HOST:PORT   where to listen (default 127.0.0.1:7000)
  --unix PATH        listen on a Unix domain socket at PATH instead
  --model MODEL      reactor: event loops (default);
                     threads: one OS thread per connection
  --threads N        event loops, reactor only (default: one per core)
  --balance MODE     how connections reach the loops, reactor only:
                     reuseport (default on Linux), roundrobin or least
  --pin              pin loop i to the i-th CPU this process may use, reactor
                     only (Linux)
  --tls-cert FILE    serve TLS with this PEM certificate chain (needs --tls-key)
  --tls-key FILE     the PEM private key of --tls-cert
  --handover PATH    take the socket over from the instance offering it on this
                     Unix socket path (or bind --addr or --unix if none does),
                     and offer it there to the next instance, reactor only
  -h, --help         print this help

Try it: printf 'hello\\n' | nc -N 127.0.0.1 7000
Over TLS: openssl s_client -connect 127.0.0.1:7000 -CAfile ca.pem -quiet
Ctrl-C stops it gracefully; RUST_LOG=debug logs every connection.",
};

/// Command-line options.
struct Options {
    /// Where to listen: TCP or a Unix socket.
    bind: Bind,
    /// Event loops; `None` means one per core.
    threads: Option<usize>,
    /// How connections are spread over loops; `None`: the platform's default.
    balance: Option<Balance>,
    /// Event loops or a thread per connection.
    model: Model,
    /// Pin each loop to a CPU.
    pin: bool,
    /// Serve TLS with this certificate chain and key (PEM files).
    tls: Option<(PathBuf, PathBuf)>,
    /// Take over from, and hand over to, instances on this control socket.
    handover: Option<PathBuf>,
}

fn main() {
    let options = CLI.parse(parse_options);
    cli::init_logging();
    CLI.or_fail(serve(&options));
}

/// Runs the server until a signal stops it.
fn serve(options: &Options) -> Result<(), String> {
    let sockets = listen::Sockets::open(options.bind.clone(), options.handover.as_deref())?;
    let mut server = sockets.server()?.model(options.model);
    if let Some((cert, key)) = &options.tls {
        server = with_tls(server, cert, key)?;
    }
    if let Some(n) = options.threads {
        server = server.threads(n);
    }
    if let Some(balance) = options.balance {
        server = server.balance(balance);
    }
    if options.pin {
        server = server.pin(Pin::Allowed);
    }
    let addr = &options.bind;
    let handle = (server.start(|| Echo)).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    (handle.shutdown_on_signals(Duration::from_secs(5)))
        .map_err(|e| format!("cannot catch Ctrl-C and SIGTERM: {e}"))?;
    // Ready (and handing over) once signals are caught: a stop request
    // that follows the notice finds the handler in place.
    let handover = sockets.serving(std::slice::from_ref(&handle))?;
    match options.model {
        Model::Reactor => log::info!(
            "echo server on {} with {} loop(s)",
            handle.local(),
            handle.loops()
        ),
        Model::Threads => log::info!("echo server on {}, one thread per connection", handle.local()),
    }
    let stopped = handle.join();
    drop(handover);
    log::info!("stopped: {}", handle.stats());
    stopped.map_err(|e| format!("the server on {addr} failed: {e}"))
}

/// The server, serving TLS with the certificate chain and key in `cert`
/// and `key`.
#[cfg(feature = "tls")]
fn with_tls(server: Server, cert: &std::path::Path, key: &std::path::Path) -> Result<Server, String> {
    let config =
        evloop::tls::server_config(cert, key).map_err(|e| format!("cannot load the TLS certificate: {e}"))?;
    Ok(server.tls(config))
}

/// Without the `tls` feature there is no TLS to serve.
#[cfg(not(feature = "tls"))]
fn with_tls(_: Server, _: &std::path::Path, _: &std::path::Path) -> Result<Server, String> {
    Err("built without the tls feature: cannot serve TLS".into())
}

/// Parses the command line.
fn parse_options(parser: &mut Parser) -> Result<Options, Error> {
    let mut options = Options {
        bind: Bind::Tcp("127.0.0.1:7000".parse().unwrap()),
        threads: None,
        balance: None,
        model: Model::Reactor,
        pin: false,
        tls: None,
        handover: None,
    };
    let (mut cert, mut key) = (None, None);
    let (mut addr, mut unix) = (None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long("addr") => addr = Some(cli::addr(parser, "--addr")?),
            Arg::Long("unix") => unix = Some(PathBuf::from(cli::string(parser, "--unix")?)),
            Arg::Long("threads") => options.threads = Some(cli::count(parser, "--threads")?),
            Arg::Long("balance") => options.balance = Some(cli::choice(parser, "--balance", BALANCES)?),
            Arg::Long("model") => options.model = cli::choice(parser, "--model", MODELS)?,
            Arg::Long("pin") => options.pin = true,
            Arg::Long("tls-cert") => cert = Some(PathBuf::from(cli::string(parser, "--tls-cert")?)),
            Arg::Long("tls-key") => key = Some(PathBuf::from(cli::string(parser, "--tls-key")?)),
            Arg::Long("handover") => {
                options.handover = Some(PathBuf::from(cli::string(parser, "--handover")?))
            }
            _ => return Err(arg.unexpected()),
        }
    }
    options.bind = match (addr, unix) {
        (Some(_), Some(_)) => return Err(bad("--addr and --unix are two places to listen; give one")),
        (Some(addr), None) => Bind::Tcp(addr),
        (None, Some(path)) => Bind::unix(path),
        (None, None) => options.bind,
    };
    options.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err(bad("--tls-cert and --tls-key go together")),
    };
    if options.model == Model::Threads {
        let reactor_only = [
            ("--threads", options.threads.is_some()),
            ("--balance", options.balance.is_some()),
            ("--pin", options.pin),
            ("--handover", options.handover.is_some()),
        ];
        if let Some((flag, _)) = reactor_only.iter().find(|(_, given)| *given) {
            return Err(bad(format!(
                "{flag} applies to --model reactor only; --model threads gives each connection its own thread"
            )));
        }
    }
    Ok(options)
}

/// Execution models by name.
const MODELS: &[(&str, Model)] = &[("reactor", Model::Reactor), ("threads", Model::Threads)];

/// Balancing modes by name.
const BALANCES: &[(&str, Balance)] = &[
    ("reuseport", Balance::ReusePort),
    ("roundrobin", Balance::RoundRobin),
    ("least", Balance::LeastConnections),
];
