//! A TLS echo server on tokio's current-thread runtime and tokio-rustls: what
//! a Rust user would most likely pick instead of evloop for TLS, and what
//! `compare --tls` and `scripts/measure_tls.sh` measure evloop's TLS against.
//!
//! One OS thread runs every connection as a task: the handshake
//! (`TlsAcceptor::accept`), then `read` into a 16 KiB buffer and `write_all`
//! it back until end of stream, then `close_notify`. It is the idiomatic
//! tokio-rustls echo, as `tokio_echo` is the idiomatic plain one, with
//! TCP_NODELAY set like the other servers and no tuning. The rustls config is
//! the one `echo_server --tls-cert` builds (`evloop::tls::server_config`:
//! ring, TLS 1.3 and 1.2, session tickets as rustls sends them by default),
//! so a comparison measures the two drivers, not two configurations.
//!
//! Run with a PEM certificate chain and key (`scripts/measure_tls.sh` shows
//! how to make a CA and a certificate it signs with `openssl`):
//!
//! ```text
//! cargo run --release --example tokio_tls_echo -- --cert cert.pem --key key.pem
//! cargo run --release --example tokio_tls_echo -- --addr 127.0.0.1:7002 --cert cert.pem --key key.pem
//! ```
//!
//! Poke it with `openssl s_client -connect 127.0.0.1:7000 -CAfile ca.pem
//! -quiet`, or load it with `cargo run --release --example loadgen -- --tls
//! ca.pem` (add `--handshakes` for a new connection per echo).
//!
//! Limits: one thread; a failed handshake closes that connection silently;
//! accept errors such as running out of fds are logged and retried after
//! 100 ms; no handshake or idle timeout; runs until killed. `--help` prints
//! the usage; bad arguments exit with status 2, a failure such as the
//! address in use or a certificate that cannot be loaded with status 1.

#[path = "common/cli.rs"]
mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::{Arg, Cli, Error, Parser, bad};

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "tokio_tls_echo",
    usage: "\
usage: tokio_tls_echo [--addr HOST:PORT] --cert FILE --key FILE

A TLS echo server on tokio's current-thread runtime and tokio-rustls, for comparison.

options:
  --addr HOST:PORT   where to listen (default 127.0.0.1:7000)
  --cert FILE        the PEM certificate chain to serve
  --key FILE         its PEM private key
  -h, --help         print this help",
};

/// What the command line asks for (parsed, and checked, with or without the
/// `tls` feature).
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
struct Options {
    /// Where to listen.
    addr: SocketAddr,
    /// The PEM certificate chain.
    cert: PathBuf,
    /// Its PEM private key.
    key: PathBuf,
}

fn main() {
    let options = CLI.parse(parse_options);
    serve(&options);
}

/// Serves TLS echo on `options.addr` until killed; exits with status 1 on a
/// failure to start.
#[cfg(feature = "tls")]
fn serve(options: &Options) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let runtime = CLI.or_fail(runtime.map_err(|e| format!("cannot start tokio: {e}")));
    let config = evloop::tls::server_config(&options.cert, &options.key);
    let config = CLI.or_fail(config.map_err(|e| format!("cannot load the TLS certificate: {e}")));
    runtime.block_on(serving::run(
        options.addr,
        tokio_rustls::TlsAcceptor::from(config),
    ));
}

/// Without the `tls` feature there is no certificate loader to share with
/// `echo_server`.
#[cfg(not(feature = "tls"))]
fn serve(_: &Options) {
    CLI.fail("built without the tls feature: cannot serve TLS")
}

/// The server proper: the accept loop and one task per connection.
#[cfg(feature = "tls")]
mod serving {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;

    use crate::CLI;

    /// Accepts connections on `addr` forever, each echoed by its own task.
    pub(crate) async fn run(addr: SocketAddr, acceptor: TlsAcceptor) {
        let bound = TcpListener::bind(addr).await;
        let listener = CLI.or_fail(bound.map_err(|e| format!("cannot listen on {addr}: {e}")));
        let local = listener.local_addr().unwrap_or(addr);
        eprintln!("tokio_tls_echo listening on {local}");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(echo(acceptor.clone(), stream));
                }
                Err(e) => {
                    // EMFILE and friends: wait for fds to free up instead of spinning.
                    eprintln!("tokio_tls_echo: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Completes the handshake, echoes until the peer closes or an error
    /// occurs, and ends with `close_notify`.
    async fn echo(acceptor: TlsAcceptor, stream: TcpStream) {
        if stream.set_nodelay(true).is_err() {
            return;
        }
        let Ok(mut tls) = acceptor.accept(stream).await else {
            return;
        };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) => break,
                Err(_) => return,
                Ok(n) => {
                    // tokio-rustls may keep records back once the socket is
                    // full; flush sends them rather than waiting for the next write.
                    if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tls.shutdown().await;
    }
}

/// Parses the command line.
fn parse_options(parser: &mut Parser) -> Result<Options, Error> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 7000));
    let (mut cert, mut key) = (None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long("addr") => addr = cli::addr(parser, "--addr")?,
            Arg::Long("cert") => cert = Some(PathBuf::from(cli::string(parser, "--cert")?)),
            Arg::Long("key") => key = Some(PathBuf::from(cli::string(parser, "--key")?)),
            _ => return Err(arg.unexpected()),
        }
    }
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Options { addr, cert, key }),
        _ => Err(bad("--cert and --key are both needed")),
    }
}
