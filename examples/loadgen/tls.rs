//! The load generator's TLS (`--tls CA_FILE`), on rustls with ring as the
//! servers use: a client config trusting the given CA, a [`Stream`] that is
//! either a plain socket or TLS over TCP, and the handshake mode
//! (`--tls CA_FILE --handshakes`).
//!
//! Echo and idle connections complete their handshake with blocking I/O
//! while they are opened, one after the other, and run non-blocking after.
//! The handshake mode instead keeps `--conns` connections in flight, each
//! a new TCP connection with a full handshake (resumption is off), one echo
//! of `--size` bytes, `close_notify` and the close; a completed echo counts
//! as one message, so `server_cpu_us_per_msg` is the server's CPU time per
//! handshake.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::options::Opts;
use crate::stream::Socket;
use crate::{Pattern, fail, own_cpu, poll_once, server_sample};

/// What every TLS connection of a run shares.
pub(crate) struct Client {
    /// Roots, no resumption.
    config: Arc<ClientConfig>,
    /// The name checked against the server's certificate: `--addr`'s IP.
    name: ServerName<'static>,
}

impl Client {
    /// A client trusting the PEM certificates in `ca`, checking the
    /// server's certificate against `addr`'s IP address, with resumption
    /// off so that every connection makes a full handshake.
    pub(crate) fn new(ca: &Path, addr: SocketAddr) -> Result<Client, String> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read the CA certificates in {}: {e}", ca.display()))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("{} holds no usable CA certificate", ca.display()));
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        Ok(Client {
            config: Arc::new(config),
            name: ServerName::IpAddress(addr.ip().into()),
        })
    }

    /// A new client connection, its ClientHello queued.
    fn connection(&self) -> io::Result<ClientConnection> {
        ClientConnection::new(Arc::clone(&self.config), self.name.clone()).map_err(io::Error::other)
    }
}

/// A load connection's byte stream: a plain socket, or TLS over TCP.
pub(crate) enum Stream {
    /// Plain TCP or a Unix domain socket.
    Plain(Socket),
    /// TLS; boxed, as rustls's state is large.
    Tls(Box<TlsStream>),
}

/// A TLS connection on a non-blocking socket.
pub(crate) struct TlsStream {
    /// The socket.
    tcp: TcpStream,
    /// rustls's state: records in and out, plaintext in.
    tls: ClientConnection,
}

impl Stream {
    /// Connects to `o`'s server (`--addr` or `--unix`), non-blocking; with
    /// `client`, over TCP after a blocking TLS handshake.
    pub(crate) fn connect(o: &Opts, client: Option<&Client>) -> io::Result<Stream> {
        let Some(client) = client else {
            return Socket::connect(o.addr, o.unix.as_deref()).map(Stream::Plain);
        };
        let mut tcp = std::net::TcpStream::connect_timeout(&o.addr, Duration::from_secs(10))?;
        tcp.set_nodelay(true)?;
        let mut tls = client.connection()?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        tcp.set_nonblocking(true)?;
        let tcp = TcpStream::from_std(tcp);
        Ok(Stream::Tls(Box::new(TlsStream { tcp, tls })))
    }

    /// The socket, to register with a poll.
    pub(crate) fn socket(&mut self) -> &mut dyn Source {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(s) => &mut s.tcp,
        }
    }

    /// Whether a read shorter than the buffer proves the socket drained (as
    /// on plain TCP); over TLS it only says what one record held.
    pub(crate) fn short_read_drains(&self) -> bool {
        matches!(self, Stream::Plain(_))
    }
}

impl Read for Stream {
    /// Plaintext: what rustls holds, else what the socket brings, until
    /// `WouldBlock`; `Ok(0)` at the end of stream (`close_notify`), an
    /// `UnexpectedEof` error at a FIN without it.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = match self {
            Stream::Plain(tcp) => return tcp.read(buf),
            Stream::Tls(s) => s,
        };
        loop {
            match s.tls.reader().read(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                done => return done,
            }
            let n = s.tls.read_tls(&mut s.tcp)?;
            s.tls.process_new_packets().map_err(io::Error::other)?;
            if n == 0 {
                return s.tls.reader().read(buf);
            }
        }
    }
}

impl Write for Stream {
    /// Takes plaintext once the records of earlier writes have left
    /// (`WouldBlock` until then), and sends its records as far as the
    /// socket takes them; [`Write::flush`] sends the rest.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let s = match self {
            Stream::Plain(tcp) => return tcp.write(buf),
            Stream::Tls(s) => s,
        };
        s.send()?;
        let n = s.tls.writer().write(buf)?;
        match s.send() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    /// Sends records still waiting for the socket; `WouldBlock` if some
    /// still wait.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(s) => s.send(),
        }
    }
}

impl TlsStream {
    /// Writes waiting records until none is left or the socket is full.
    fn send(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Drop for TlsStream {
    /// Ends the session with `close_notify`, as far as the socket takes it,
    /// so that the server sees a closed session, not a truncated one, when
    /// a connection is replaced (`--reconnect`) or the run ends. Sent once,
    /// however often asked (rustls sends it once).
    fn drop(&mut self) {
        self.tls.send_close_notify();
        let _ = self.send();
    }
}

/// One connection of the handshake mode, from connect to close.
struct Dial {
    /// The connection.
    stream: TlsStream,
    /// Echoed bytes received so far.
    echoed: usize,
}

/// `--handshakes`: keeps `--conns` connections each doing a full handshake
/// and one echo, replaced as they finish, for `--warmup` then `--duration`
/// seconds (or exactly `--count` handshakes, within `--timeout`); prints the
/// result line (`msgs` are handshakes).
pub(crate) fn run_handshakes(o: &Opts, client: &Client) {
    let mut poll = Poll::new().unwrap_or_else(|e| fail!("poll: {e}"));
    let pat = Pattern::new(o.size);
    let message = pat.msg(0, 0);
    let mut dials: Vec<Dial> = (0..o.conns)
        .map(|slot| dial(&poll, o.addr, client, slot, message))
        .collect();
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(o.warmup);
    let mut window: Option<(Instant, Option<evloop::sys::ProcessStats>, f64)> = None;
    let (mut done, mut window_done) = (0u64, 0u64);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        let now = Instant::now();
        let deadline = match window {
            None if now >= warm_end => {
                window = Some((now, o.pid.map(server_sample), own_cpu()));
                now + Duration::from_secs_f64(o.duration)
            }
            None => warm_end,
            Some(_) if o.count.is_some_and(|n| window_done >= n) => break now,
            Some((began, ..)) if o.count.is_some() && now >= began + Duration::from_secs_f64(o.timeout) => {
                fail!(
                    "--count: only {window_done} handshakes after --timeout {}s",
                    o.timeout
                )
            }
            Some((began, ..)) if o.count.is_some() => began + Duration::from_secs_f64(o.timeout),
            Some((began, ..)) if now >= began + Duration::from_secs_f64(o.duration) => break now,
            Some((began, ..)) => began + Duration::from_secs_f64(o.duration),
        };
        poll_once(&mut poll, &mut events, deadline.saturating_duration_since(now));
        for event in events.iter() {
            let slot = event.token().0;
            let counted_out = o.count.is_some_and(|n| window_done >= n);
            if counted_out || !advance(&mut dials[slot], slot, message, &mut buf) {
                continue;
            }
            finish(&poll, &mut dials[slot]);
            dials[slot] = dial(&poll, o.addr, client, slot, message);
            done += 1;
            window_done += u64::from(window.is_some());
        }
    };
    let (began, server_before, client_before) = window.expect("the window started before it ended");
    let secs = end.duration_since(began).as_secs_f64();
    let client_cpu = own_cpu() - client_before;
    let server = server_before.zip(o.pid.map(server_sample));
    println!("{}", report(window_done, done, secs, client_cpu, server));
}

/// Opens connection number `slot`, queues its ClientHello and `message`
/// (sent once the handshake allows), and sends what it can.
fn dial(poll: &Poll, addr: SocketAddr, client: &Client, slot: usize, message: &[u8]) -> Dial {
    let tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| fail!("connect {addr} (handshake slot {slot}): {e}"));
    let setup = tcp.set_nodelay(true).and_then(|()| tcp.set_nonblocking(true));
    setup.unwrap_or_else(|e| fail!("socket options: {e}"));
    let mut tcp = TcpStream::from_std(tcp);
    let interest = Interest::READABLE | Interest::WRITABLE;
    (poll.registry().register(&mut tcp, Token(slot), interest)).unwrap_or_else(|e| fail!("register: {e}"));
    let mut tls = client.connection().unwrap_or_else(|e| fail!("TLS client: {e}"));
    tls.writer()
        .write_all(message)
        .unwrap_or_else(|e| fail!("queue the echo: {e}"));
    let mut stream = TlsStream { tcp, tls };
    match stream.send() {
        Err(e) if e.kind() != ErrorKind::WouldBlock => fail!("handshake slot {slot}: {e}"),
        _ => {}
    }
    Dial { stream, echoed: 0 }
}

/// Moves connection `slot` on after a readiness event: reads what came,
/// checks the echo, sends what waits. True once the whole echo is back.
fn advance(d: &mut Dial, slot: usize, message: &[u8], buf: &mut [u8]) -> bool {
    let s = &mut d.stream;
    loop {
        match s.tls.read_tls(&mut s.tcp) {
            Ok(0) => fail!("handshake slot {slot}: closed by the server"),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => fail!("handshake slot {slot}: read: {e}"),
        }
        let state = (s.tls.process_new_packets()).unwrap_or_else(|e| fail!("handshake slot {slot}: {e}"));
        let plain = state.plaintext_bytes_to_read().min(buf.len());
        if plain > 0 {
            let n = (s.tls.reader().read(&mut buf[..plain])).unwrap_or_else(|e| fail!("read: {e}"));
            if d.echoed + n > message.len() || buf[..n] != message[d.echoed..d.echoed + n] {
                fail!("handshake slot {slot}: a wrong echo");
            }
            d.echoed += n;
        }
    }
    match s.send() {
        Err(e) if e.kind() != ErrorKind::WouldBlock => fail!("handshake slot {slot}: write: {e}"),
        _ => d.echoed == message.len(),
    }
}

/// Ends a finished connection: `close_notify` as far as the socket takes
/// it, then the close.
fn finish(poll: &Poll, d: &mut Dial) {
    d.stream.tls.send_close_notify();
    let _ = d.stream.send();
    let _ = poll.registry().deregister(&mut d.stream.tcp);
}

/// The handshake mode's result line, with the same keys as the echo modes'
/// where they mean the same.
fn report(
    msgs: u64,
    total: u64,
    secs: f64,
    client_cpu: f64,
    server: Option<(evloop::sys::ProcessStats, evloop::sys::ProcessStats)>,
) -> String {
    let mut line = format!(
        "msgs={msgs} secs={secs:.2} msgs_per_s={:.0} handshakes_total={total}",
        msgs as f64 / secs
    );
    match server {
        Some((before, after)) if msgs > 0 => {
            let cpu = after.cpu_since(&before).total().as_secs_f64();
            line += &format!(
                " server_cpu_us_per_msg={:.3} server_cs_per_1k={:.2} server_cpu_pct={:.1}",
                cpu * 1e6 / msgs as f64,
                after.switches_since(&before).total() as f64 * 1000.0 / msgs as f64,
                cpu * 100.0 / secs,
            );
        }
        _ => line += " server_cpu_us_per_msg=NA server_cs_per_1k=NA server_cpu_pct=NA",
    }
    line + &format!(" client_cpu_pct={:.1} errors=0", client_cpu * 100.0 / secs)
}
