//! Outbound TLS from a loop, with a root store the caller provides: a
//! trusted server opens and echoes, an untrusted one fails the handshake
//! and the handler sees only `on_close`, and `LoopHandle::connect_tls`
//! reaches a running loop from another thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use evloop::bytes::BytesMut;
use evloop::{CloseReason, Config, Conn, EventLoop, Handler};

use crate::common::{Echo, Model, TestServer};
use crate::on_both_models;
use crate::pki::{self, localhost_name, pki};

on_both_models!(
    a_loop_dials_tls_echoes_and_closes_with_close_notify,
    a_server_of_another_ca_fails_the_handshake_and_never_opens,
    a_loop_handle_dials_tls_from_another_thread,
);

/// What a [`Ping`] client saw.
type Seen = Arc<Mutex<Vec<String>>>;

/// Sends a line once connected, closes once it comes back; notes what
/// happened.
struct Ping(Seen);

impl Handler for Ping {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let tls = conn.tls().expect("a TLS connection");
        self.0
            .lock()
            .unwrap()
            .push(format!("open {}", tls.server_name().unwrap()));
        conn.write(b"ping\n");
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if input.ends_with(b"\n") {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&input.split()).into_owned());
            conn.close();
        }
    }

    fn on_close(&mut self, reason: &CloseReason) {
        self.0.lock().unwrap().push(format!("close {reason:?}"));
    }
}

fn a_loop_dials_tls_echoes_and_closes_with_close_notify(model: Model) {
    let server = TestServer::start_tls(model, Config::default(), pki().acceptor(), || Echo);
    let seen = Seen::default();
    let log = Arc::clone(&seen);
    let mut client = EventLoop::new(Config::default(), move || Ping(Arc::clone(&log))).unwrap();
    let timeout = Duration::from_secs(5);
    client
        .connect_tls(server.addr, timeout, pki().client_config(&[]), localhost_name())
        .unwrap();
    client.run_until_idle().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["open localhost", "ping\n", "close Closed"]
    );
    // Our close_notify reached the server: its end of stream was clean.
    let stats = server.wait_for_stats("closed", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::PeerClosed), 1, "{stats:#}");
}

fn a_server_of_another_ca_fails_the_handshake_and_never_opens(model: Model) {
    let stranger = pki::make("evloop-stranger-ca");
    let acceptor = evloop::tls::TlsAcceptor::new(stranger.server_config(&[]));
    let server = TestServer::start_tls(model, Config::default(), acceptor, || Echo);
    let seen = Seen::default();
    let log = Arc::clone(&seen);
    let mut client = EventLoop::new(Config::default(), move || Ping(Arc::clone(&log))).unwrap();
    let timeout = Duration::from_secs(5);
    client
        .connect_tls(server.addr, timeout, pki().client_config(&[]), localhost_name())
        .unwrap();
    client.run_until_idle().unwrap();
    assert_eq!(*seen.lock().unwrap(), ["close Tls"]);
    assert_eq!(client.handle().stats().closed_by(&CloseReason::Tls), 1);
    // The server hears our alert: its handshake fails too.
    let stats = server.wait_for_stats("closed", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::Tls), 1, "{stats:#}");
}

fn a_loop_handle_dials_tls_from_another_thread(model: Model) {
    let server = TestServer::start_tls(model, Config::default(), pki().acceptor(), || Echo);
    let seen = Seen::default();
    let log = Arc::clone(&seen);
    let listener = EventLoop::bind(crate::common::localhost(), Config::default(), move || {
        Ping(Arc::clone(&log))
    })
    .unwrap();
    let handle = listener.handle();
    let thread = std::thread::spawn(move || listener.run());
    assert!(handle.connect_tls(
        server.addr,
        Duration::from_secs(5),
        pki().client_config(&[]),
        localhost_name()
    ));
    crate::common::wait_until("the round trip", || {
        Some(()).filter(|()| seen.lock().unwrap().len() == 3)
    });
    assert_eq!(
        *seen.lock().unwrap(),
        ["open localhost", "ping\n", "close Closed"]
    );
    handle.shutdown(Duration::ZERO);
    thread.join().unwrap().unwrap();
}
