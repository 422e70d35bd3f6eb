//! A drain (`ServerHandle::drain`) of an HTTPS server over real sockets:
//! an idle keep-alive connection that sends nothing more gets
//! `close_notify` once its second for one more request is out, then the
//! end of stream; a deferred answer in flight goes out whole with
//! `Connection: close`, then `close_notify`; and a connection whose
//! handshake ends after the drain began hears of the drain right after
//! `on_open` — its first request answered with `Connection: close`, a
//! plain handler's callbacks in that order. Event loops only: the thread
//! model cannot drain.
#![cfg(feature = "http")]

use std::io::{BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use evloop::bytes::BytesMut;
use evloop::http::{HttpServer, Request, Responder, Response};
use evloop::{Balance, Conn, Handler, Server, ServerHandle};

use crate::client::Client;
use crate::common::http::{Reply, read_reply};
use crate::common::{DRAIN_GRACE as GRACE, assert_ends_before_the_grace, isolated, localhost, wait_until};
use crate::pki::pki;

/// Names the path of each request.
fn describe(req: &Request) -> Response {
    Response::text(format!("{} {}", req.method(), req.path()))
}

/// Sends a GET of `path` over `client`.
fn get(client: &mut Client, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client.tls.write_all(request.as_bytes()).unwrap();
    client.tls.flush().unwrap();
}

/// Reads the rest of the TLS stream, which must end with the server's
/// `close_notify` (not a bare end of stream, nor a reset), and returns the
/// one response in it.
#[track_caller]
fn last_reply(client: &mut Client) -> Reply {
    let all = client
        .read_to_end()
        .expect("the stream ends with the server's close_notify");
    let mut reader = all.as_slice();
    let reply = read_reply(&mut reader, false);
    assert!(
        reader.is_empty(),
        "nothing after the last response: {:?}",
        String::from_utf8_lossy(&all)
    );
    reply
}

/// An HTTPS server on one loop, with the test PKI's certificate.
fn https() -> HttpServer {
    HttpServer::new(localhost()).threads(1).tls(pki().acceptor())
}

#[test]
fn an_idle_keep_alive_tls_connection_gets_close_notify_at_the_drain() {
    isolated(|| {
        let server = https().start(describe).unwrap();
        let mut client = Client::connect(server.local_addr(), pki().client_config(&[]));
        get(&mut client, "/first");
        let reply = read_reply(&mut BufReader::new(&mut client.tls), false);
        assert_eq!(reply.body, "GET /first");
        assert_eq!(reply.header("connection"), None, "kept alive before the drain");

        let began = Instant::now();
        server.drain(GRACE).unwrap();
        let rest = client
            .read_to_end()
            .expect("the stream ends with the server's close_notify");
        assert!(rest.is_empty(), "{rest:?}");
        assert_ends_before_the_grace(&server, began);
    });
}

#[test]
fn a_deferred_tls_answer_in_flight_goes_out_whole_with_connection_close() {
    isolated(|| {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let app = {
            let kept = Arc::clone(&kept);
            move |req: Request, responder: Responder| {
                kept.lock().unwrap().push((req.path().to_owned(), responder));
            }
        };
        let server = https().start_deferred(app).unwrap();
        let mut client = Client::connect(server.local_addr(), pki().client_config(&[]));
        get(&mut client, "/slow");
        let (path, responder) = wait_until("the request handed to the app", || kept.lock().unwrap().pop());

        let began = Instant::now();
        server.drain(GRACE).unwrap();
        // The connection stays open for its answer.
        std::thread::sleep(Duration::from_millis(200));
        responder.send(Response::text(format!("late answer to {path}")));

        let reply = last_reply(&mut client);
        assert_eq!(reply.status, "HTTP/1.1 200 OK");
        assert_eq!(reply.body, "late answer to /slow");
        assert_eq!(reply.header("connection"), Some("close"));
        assert_ends_before_the_grace(&server, began);
    });
}

/// Completes the handshake of a client started with [`Client::start`].
#[track_caller]
fn shake_hands(client: &mut Client) {
    while client.tls.conn.is_handshaking() {
        client
            .tls
            .conn
            .complete_io(&mut client.tls.sock)
            .expect("TLS handshake");
    }
}

/// Connects to `server` without shaking hands, waits until a loop holds the
/// connection, then drains the server and waits until every loop has
/// carried out its StopAccepting (one command more in its published
/// counters), so that the handshake ends after the drain began.
fn connect_then_drain(server: &ServerHandle) -> Client {
    let client = Client::start(server.local_addr(), pki().client_config(&[]));
    wait_until("the connection accepted", || {
        Some(()).filter(|()| server.stats().accepted == 1)
    });
    let commands =
        |server: &ServerHandle| -> Vec<u64> { server.loop_stats().iter().map(|s| s.commands).collect() };
    let before = commands(server);
    server.drain(GRACE).unwrap();
    wait_until("every loop told of the drain", || {
        let now = commands(server);
        Some(()).filter(|()| now.iter().zip(&before).all(|(now, before)| now > before))
    });
    client
}

#[test]
fn a_tls_connection_opened_after_the_drain_answers_its_first_request_with_close() {
    isolated(|| {
        let server = https().start(describe).unwrap();
        let began = Instant::now();
        let mut client = connect_then_drain(&server);
        shake_hands(&mut client);
        get(&mut client, "/late");
        let reply = last_reply(&mut client);
        assert_eq!(reply.body, "GET /late");
        assert_eq!(reply.header("connection"), Some("close"));
        assert_ends_before_the_grace(&server, began);
    });
}

/// Records its callbacks, by name, in order.
struct Recording(Arc<Mutex<Vec<&'static str>>>);

impl Handler for Recording {
    fn on_open(&mut self, _: &mut Conn<'_>) {
        self.0.lock().unwrap().push("open");
    }

    fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
        input.clear();
    }

    fn on_drain(&mut self, conn: &mut Conn<'_>) {
        self.0.lock().unwrap().push("drain");
        conn.close();
    }

    fn on_close(&mut self, _: &evloop::CloseReason) {
        self.0.lock().unwrap().push("close");
    }
}

#[test]
fn a_tls_connection_handed_to_a_loop_and_opened_after_the_drain_hears_of_it_after_on_open() {
    isolated(|| {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let calls = Arc::clone(&calls);
            Server::new(localhost())
                .threads(2)
                .balance(Balance::RoundRobin)
                .tls(pki().acceptor())
                .start(move || Recording(Arc::clone(&calls)))
                .unwrap()
        };
        let began = Instant::now();
        let mut client = connect_then_drain(&server);
        assert!(calls.lock().unwrap().is_empty(), "nothing before on_open");
        shake_hands(&mut client);
        let rest = client
            .read_to_end()
            .expect("closed by on_drain, with close_notify");
        assert!(rest.is_empty(), "{rest:?}");
        assert_ends_before_the_grace(&server, began);
        assert_eq!(*calls.lock().unwrap(), ["open", "drain", "close"]);
    });
}
