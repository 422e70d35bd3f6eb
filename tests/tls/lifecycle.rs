//! The TLS lifecycle on both models: the handshake bounded by its timeout,
//! failures closed after our alert and counted, `close_notify` both ways,
//! an end of stream without it reported as truncation, SNI and ALPN seen by
//! the handler, and a certificate swapped without a restart.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use evloop::tls::TlsAcceptor;
use evloop::tls::rustls::ClientConnection;
use evloop::{CloseReason, Config};

use crate::client::Client;
use crate::common::{Model, TestServer, read_to_end};
use crate::on_both_models;
use crate::pki::{self, localhost_name, pki};
use crate::script::{Scripted, Shared, closes_after};

on_both_models!(
    a_client_that_sends_nothing_is_closed_at_the_handshake_timeout,
    a_client_that_stops_mid_handshake_is_closed_at_the_handshake_timeout,
    a_client_that_leaves_mid_handshake_is_closed_as_truncated,
    plaintext_sent_to_the_tls_port_gets_an_alert_and_a_clean_close,
    a_handler_close_sends_close_notify_after_the_output,
    the_peers_close_notify_is_end_of_stream,
    an_end_of_stream_without_close_notify_is_reported_as_truncated,
    the_handler_sees_sni_alpn_and_version,
    a_new_certificate_serves_new_connections_and_spares_open_ones,
);

/// A scripted TLS server with a short handshake timeout.
fn server(model: Model) -> (TestServer, Shared) {
    let log = Shared::default();
    let config = Config::default().handshake_timeout(Duration::from_millis(300));
    let server = TestServer::start_tls(model, config, pki().acceptor(), Scripted::factory(&log));
    (server, log)
}

/// Reads one line from the client, its newline left out.
#[track_caller]
fn read_line(client: &mut Client) -> String {
    let mut line = Vec::new();
    let mut byte = [0];
    loop {
        client.tls.read_exact(&mut byte).unwrap();
        if byte == *b"\n" {
            return String::from_utf8(line).unwrap();
        }
        line.push(byte[0]);
    }
}

/// Connects and reads the greeting line of [`Scripted`].
#[track_caller]
fn greeted(server: &TestServer) -> Client {
    let mut client = Client::connect(server.addr, pki().client_config(&[]));
    assert_eq!(read_line(&mut client), "localhost - TLSv1_3");
    client
}

fn a_client_that_sends_nothing_is_closed_at_the_handshake_timeout(model: Model) {
    let (server, log) = server(model);
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (got, clean) = read_to_end(&mut silent);
    assert!(clean && got.is_empty(), "closed with nothing sent");
    assert_eq!(closes_after(&log, 1), [CloseReason::HandshakeTimeout]);
    assert!(
        log.lock().unwrap().opened.is_empty(),
        "on_open ran without a handshake"
    );
    let stats = server.wait_for_stats("counted", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::HandshakeTimeout), 1);
}

/// Sends a client's first flight (its hello) and nothing more.
fn send_hello(addr: std::net::SocketAddr) -> TcpStream {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut conn = ClientConnection::new(pki().client_config(&[]), localhost_name()).unwrap();
    while conn.wants_write() {
        conn.write_tls(&mut sock).unwrap();
    }
    sock
}

fn a_client_that_stops_mid_handshake_is_closed_at_the_handshake_timeout(model: Model) {
    let (server, log) = server(model);
    let mut stalled = send_hello(server.addr);
    let (got, clean) = read_to_end(&mut stalled);
    assert!(clean, "closed, not reset");
    assert!(!got.is_empty(), "the server's hello came before the close");
    assert_eq!(closes_after(&log, 1), [CloseReason::HandshakeTimeout]);
    assert!(log.lock().unwrap().opened.is_empty());
}

fn a_client_that_leaves_mid_handshake_is_closed_as_truncated(model: Model) {
    let (server, log) = server(model);
    let leaving = send_hello(server.addr);
    leaving.shutdown(Shutdown::Write).unwrap();
    assert_eq!(closes_after(&log, 1), [CloseReason::Truncated]);
    let stats = server.wait_for_stats("counted", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::Truncated), 1);
    drop(leaving);
}

fn plaintext_sent_to_the_tls_port_gets_an_alert_and_a_clean_close(model: Model) {
    let (server, log) = server(model);
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    plain.shutdown(Shutdown::Write).unwrap();
    let (got, clean) = read_to_end(&mut plain);
    assert!(clean, "closed, not reset");
    assert_eq!(got.first(), Some(&0x15), "a TLS alert record: {got:?}");
    assert_eq!(closes_after(&log, 1), [CloseReason::Tls]);
    let stats = server.wait_for_stats("counted", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::Tls), 1);
    assert!(log.lock().unwrap().opened.is_empty());
}

fn a_handler_close_sends_close_notify_after_the_output(model: Model) {
    let (server, log) = server(model);
    let mut client = greeted(&server);
    client.tls.write_all(b"one\nC").unwrap();
    client.tls.flush().unwrap();
    let rest = client
        .read_to_end()
        .expect("ended with the server's close_notify");
    assert_eq!(rest, b"one\nbye\n");
    assert_eq!(closes_after(&log, 1), [CloseReason::Closed]);
}

fn the_peers_close_notify_is_end_of_stream(model: Model) {
    let (server, log) = server(model);
    let mut client = greeted(&server);
    client.tls.write_all(b"line\nrest").unwrap();
    client.close_notify();
    let echoed = client
        .read_to_end()
        .expect("ended with the server's close_notify");
    assert_eq!(echoed, b"line\n");
    assert_eq!(closes_after(&log, 1), [CloseReason::PeerClosed]);
    assert_eq!(
        log.lock().unwrap().eofs,
        [b"rest".to_vec()],
        "on_eof saw the unfinished line"
    );
}

fn an_end_of_stream_without_close_notify_is_reported_as_truncated(model: Model) {
    let (server, log) = server(model);
    let mut client = greeted(&server);
    client.tls.write_all(b"line\nrest").unwrap();
    client.tls.flush().unwrap();
    client.tls.sock.shutdown(Shutdown::Write).unwrap();
    let echoed = client
        .read_to_end()
        .expect("the server still ends with close_notify");
    assert_eq!(echoed, b"line\n");
    assert_eq!(closes_after(&log, 1), [CloseReason::Truncated]);
    assert_eq!(
        log.lock().unwrap().eofs,
        [b"rest".to_vec()],
        "on_eof ran all the same"
    );
    let stats = server.wait_for_stats("counted", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::Truncated), 1);
}

fn the_handler_sees_sni_alpn_and_version(model: Model) {
    let log = Shared::default();
    let acceptor = TlsAcceptor::new(pki().server_config(&[b"evloop-test", b"http/1.1"]));
    let server = TestServer::start_tls(model, Config::default(), acceptor, Scripted::factory(&log));
    let mut client = Client::connect(server.addr, pki().client_config(&[b"evloop-test"]));
    assert_eq!(read_line(&mut client), "localhost evloop-test TLSv1_3");
    assert_eq!(log.lock().unwrap().opened, ["localhost evloop-test TLSv1_3"]);
}

fn a_new_certificate_serves_new_connections_and_spares_open_ones(model: Model) {
    let log = Shared::default();
    let acceptor = pki().acceptor();
    let server = TestServer::start_tls(
        model,
        Config::default(),
        acceptor.clone(),
        Scripted::factory(&log),
    );
    let mut before = greeted(&server);

    let renewed = pki::make("evloop-renewed-ca");
    acceptor.set_config(renewed.server_config(&[]));
    let new_client = Client::connect(server.addr, renewed.client_config(&[]));
    drop(new_client);
    // A client that trusts only the old CA is refused the new certificate.
    let mut old_trust = Client::start(server.addr, pki().client_config(&[]));
    let refused = loop {
        match old_trust.tls.conn.complete_io(&mut old_trust.tls.sock) {
            Err(e) => break e,
            Ok(_) if !old_trust.tls.conn.is_handshaking() => panic!("trusted a certificate of another CA"),
            Ok(_) => {}
        }
    };
    assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");
    // The connection made before the swap goes on with the old one.
    assert_eq!(before.echo(b"still here\n"), b"still here\n");
    drop(before);
    let closes = closes_after(&log, 3);
    assert!(
        closes.contains(&CloseReason::Tls),
        "the refused handshake: {closes:?}"
    );
    assert!(
        Arc::ptr_eq(&acceptor.config(), &acceptor.clone().config()),
        "clones share the setting"
    );
}
