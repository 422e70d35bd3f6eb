//! Hello world over HTTPS: `evloop::http` answering every request with
//! `Hello world!` over TLS (rustls), on either execution model.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example hello_https                  # 127.0.0.1:3443, a certificate made for it
//! cargo run --release --example hello_https -- --cert cert.pem --key key.pem --model threads
//! ```
//!
//! Without `--cert FILE --key FILE` (PEM: the certificate chain and its
//! private key) it makes a self-signed certificate for `localhost` and
//! 127.0.0.1 at start, writes it to `hello_https-cert.pem` in the temporary
//! directory (`$TMPDIR`, else `/tmp`) and logs the file's name, so that
//! from another terminal
//!
//! ```text
//! curl --cacert /tmp/hello_https-cert.pem https://localhost:3443/
//! ```
//!
//! trusts it (the key stays in memory; each start makes a new pair).
//!
//! Ctrl-C stops it (responses in flight get five seconds) and logs the
//! server's counters. `--help` lists the options; bad arguments exit with
//! status 2, a failure to start (the address in use, a certificate that
//! cannot be loaded) with status 1. Limits: it answers every method and
//! path alike, and offers HTTP/1.1 only (no ALPN, no HTTP/2).

#[path = "common/cli.rs"]
mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::{Arg, Cli, Error, Parser, bad};

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "hello_https",
    usage: "\
usage: hello_https [--addr HOST:PORT] [--cert FILE --key FILE]
                   [--model reactor|threads] [--threads N]

Hello world over HTTPS: every request gets `Hello world!` over TLS.

options:
  --addr HOST:PORT         where to listen (default 127.0.0.1:3443)
  --cert FILE              the PEM certificate chain to serve (needs --key)
  --key FILE               the PEM private key of --cert; without both, a
                           self-signed certificate for localhost and 127.0.0.1
                           is made and written to a file the log names
  --model reactor|threads  event loops (default) or a thread per connection
  --threads N              event loops (default: one per core; reactor only)
  -h, --help               print this help

Try it: curl --cacert CERT-FILE https://localhost:3443/",
};

/// Command-line options.
struct Options {
    /// Listening address.
    addr: SocketAddr,
    /// The certificate chain and key files; `None` makes a self-signed pair.
    pem: Option<(PathBuf, PathBuf)>,
    /// Reactor or thread per connection.
    threaded: bool,
    /// Event loops; `None` means one per core.
    threads: Option<usize>,
}

fn main() {
    let options = CLI.parse(parse_options);
    cli::init_logging();
    CLI.or_fail(serve(&options));
}

/// Serves until a signal stops the server.
#[cfg(all(feature = "http", feature = "tls"))]
fn serve(options: &Options) -> Result<(), String> {
    use std::time::Duration;

    use evloop::Model;
    use evloop::http::{HttpServer, Request, Response};

    let (config, made) = match &options.pem {
        Some((cert, key)) => (
            evloop::tls::server_config(cert, key)
                .map_err(|e| format!("cannot load the TLS certificate: {e}"))?,
            None,
        ),
        None => {
            let (cert, key) = self_signed()?;
            let config = evloop::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes())
                .map_err(|e| format!("cannot use the certificate made: {e}"))?;
            (config, Some(cert))
        }
    };
    let addr = options.addr;
    let model = if options.threaded {
        Model::Threads
    } else {
        Model::Reactor
    };
    let mut server = HttpServer::new(addr).model(model).tls(config);
    if let Some(n) = options.threads {
        server = server.threads(n);
    }
    let server = (server.start(|_req: &Request| Response::text("Hello world!")))
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    // Written once listening, so that a server that cannot start leaves
    // nothing behind and says one thing.
    let port = server.local_addr().port();
    match made {
        Some(cert) => {
            let file = std::env::temp_dir().join("hello_https-cert.pem");
            std::fs::write(&file, cert).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            log::info!(
                "serving https://localhost:{port}/ with a self-signed certificate in {0}; \
                 try: curl --cacert {0} https://localhost:{port}/",
                file.display()
            );
        }
        None => log::info!("serving https://{}/", server.local_addr()),
    }
    // As `evloop::http::serve`: five seconds for responses in flight on the
    // first signal, a second one stops at once.
    (server.shutdown_on_signals(Duration::from_secs(5)))
        .map_err(|e| format!("cannot catch Ctrl-C and SIGTERM: {e}"))?;
    let stopped = server.join();
    log::info!("stopped: {}", server.stats());
    stopped.map_err(|e| format!("the server on {addr} failed: {e}"))
}

/// A self-signed certificate for `localhost` and 127.0.0.1 and its key, as
/// PEM.
#[cfg(all(feature = "http", feature = "tls"))]
fn self_signed() -> Result<(String, String), String> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| format!("cannot make a certificate: {e}"))?;
    Ok((made.cert.pem(), made.key_pair.serialize_pem()))
}

/// Without the `http` and `tls` features there is nothing to serve.
#[cfg(not(all(feature = "http", feature = "tls")))]
fn serve(options: &Options) -> Result<(), String> {
    let Options {
        addr,
        pem,
        threaded,
        threads,
    } = options;
    let _ = (pem, threaded, threads);
    Err(format!(
        "cannot serve HTTPS on {addr}: this example needs the `http` and `tls` features (on by default)"
    ))
}

/// Parses the command line.
fn parse_options(parser: &mut Parser) -> Result<Options, Error> {
    let mut options = Options {
        addr: "127.0.0.1:3443".parse().unwrap(),
        pem: None,
        threaded: false,
        threads: None,
    };
    let (mut cert, mut key) = (None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long("addr") => options.addr = cli::addr(parser, "--addr")?,
            Arg::Long("cert") => cert = Some(PathBuf::from(cli::string(parser, "--cert")?)),
            Arg::Long("key") => key = Some(PathBuf::from(cli::string(parser, "--key")?)),
            Arg::Long("model") => {
                let choices = [("reactor", false), ("threads", true)];
                options.threaded = cli::choice(parser, "--model", &choices)?;
            }
            Arg::Long("threads") => options.threads = Some(cli::count(parser, "--threads")?),
            _ => return Err(arg.unexpected()),
        }
    }
    options.pem = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err(bad("--cert and --key go together")),
    };
    if options.threaded && options.threads.is_some() {
        return Err(bad("--threads applies to --model reactor only"));
    }
    Ok(options)
}
