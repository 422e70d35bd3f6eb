//! Outbound connections on the reactor: a dialed connection runs the same
//! `Handler` as an accepted one; refusal and timeout close it with their own
//! reason, never call `on_open`, call `on_close` once, and close the socket.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{Model, TestServer, isolated};
use evloop::{CloseReason, Config, Conn, EventLoop, Handler};

/// What happened to one outbound connection, in order.
type Log = Arc<Mutex<Vec<Event>>>;

/// One callback as the [`Pinger`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Open,
    Data(Vec<u8>),
    Close(CloseReason),
}

/// Sends `ping` once connected, closes once the echo is back, and logs
/// every callback.
struct Pinger {
    log: Log,
    got: Vec<u8>,
}

impl Pinger {
    /// A factory of pingers sharing one log.
    fn factory(log: &Log) -> impl FnMut() -> Pinger + Send + 'static {
        let log = Arc::clone(log);
        move || Pinger {
            log: Arc::clone(&log),
            got: Vec::new(),
        }
    }
}

impl Handler for Pinger {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.log.lock().unwrap().push(Event::Open);
        conn.write(b"ping");
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        self.got.extend_from_slice(&input.split());
        if self.got.len() >= 4 {
            self.log
                .lock()
                .unwrap()
                .push(Event::Data(std::mem::take(&mut self.got)));
            conn.close();
        }
    }

    fn on_close(&mut self, reason: &CloseReason) {
        self.log.lock().unwrap().push(Event::Close(reason.clone()));
    }
}

/// Dials `addr` from a listener-less loop on this thread and runs it until
/// the connection is gone; returns the log and how long it took.
fn dial(addr: SocketAddr, timeout: Duration) -> (Vec<Event>, Duration) {
    let log = Log::default();
    let mut client = EventLoop::new(Config::default(), Pinger::factory(&log)).unwrap();
    let start = Instant::now();
    client.connect(addr, timeout).unwrap();
    client.run_until_idle().unwrap();
    let took = start.elapsed();
    let events = log.lock().unwrap().clone();
    (events, took)
}

/// An address on 127.0.0.1 where nothing listens.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind(common::localhost()).unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn dialed_connection_exchanges_bytes_with_an_echo_server() {
    isolated(|| {
        let server = TestServer::echo(Model::Reactor);
        let (events, _) = dial(server.addr, Duration::from_secs(5));
        assert_eq!(
            events,
            [
                Event::Open,
                Event::Data(b"ping".to_vec()),
                Event::Close(CloseReason::Closed)
            ]
        );
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn refused_connection_closes_with_connect_refused_without_opening() {
    isolated(|| {
        let (events, took) = dial(closed_port(), Duration::from_secs(5));
        assert_eq!(events, [Event::Close(CloseReason::ConnectRefused)]);
        assert!(took < Duration::from_secs(1), "refusal took {took:?}");
    });
}

#[test]
fn unanswered_handshake_closes_with_connect_timeout() {
    isolated(|| {
        // A listener with a backlog of 0 whose queue is full: Linux drops
        // further SYNs, so a connect stays in SYN_SENT and never completes.
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener.bind(&common::localhost().into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let fillers: Vec<_> = (0..2)
            .map(|_| mio::net::TcpStream::connect(addr).unwrap())
            .collect();
        // The queue is full once a filler's handshake has completed.
        common::wait_until("a filler connected, filling the queue", || {
            fillers.iter().any(|f| f.peer_addr().is_ok()).then_some(())
        });

        let timeout = Duration::from_millis(200);
        let (events, took) = dial(addr, timeout);
        if events.first() == Some(&Event::Open) {
            eprintln!("skipped: this kernel completed a handshake on a full backlog");
            return;
        }
        assert_eq!(events, [Event::Close(CloseReason::ConnectTimeout)]);
        assert!(took >= timeout, "timed out early, after {took:?}");
        assert!(took < Duration::from_secs(2), "timed out late, after {took:?}");
        drop(fillers);
    });
}

#[test]
fn loop_handle_dials_from_another_thread_with_the_loops_factory() {
    isolated(|| {
        let server = TestServer::echo(Model::Reactor);
        let log = Log::default();
        let client = EventLoop::new(Config::default(), Pinger::factory(&log)).unwrap();
        let handle = client.handle();
        let thread = std::thread::spawn(move || client.run());
        assert!(handle.connect(server.addr, Duration::from_secs(5)));
        assert!(handle.connect(closed_port(), Duration::from_secs(5)));
        common::wait_until("both connections closed", || {
            Some(()).filter(|_| handle.stats().closed_total() == 2)
        });
        let stats = handle.stats();
        assert_eq!(stats.closed_by(&CloseReason::Closed), 1);
        assert_eq!(stats.closed_by(&CloseReason::ConnectRefused), 1);
        assert_eq!(stats.open, 0);
        handle.shutdown(Duration::ZERO);
        thread.join().unwrap().unwrap();
        let events = log.lock().unwrap();
        assert_eq!(events.iter().filter(|e| **e == Event::Open).count(), 1);
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn many_dials_leave_no_fd_behind() {
    isolated(|| {
        let server = TestServer::echo(Model::Reactor);
        let refused = closed_port();
        let log = Log::default();
        let mut client = EventLoop::new(Config::default(), Pinger::factory(&log)).unwrap();
        for _ in 0..50 {
            client.connect(server.addr, Duration::from_secs(5)).unwrap();
            client.connect(refused, Duration::from_secs(5)).unwrap();
        }
        client.run_until_idle().unwrap();
        drop(client);
        let events = log.lock().unwrap();
        let count = |e: &Event| events.iter().filter(|x| *x == e).count();
        assert_eq!(count(&Event::Close(CloseReason::Closed)), 50);
        assert_eq!(count(&Event::Close(CloseReason::ConnectRefused)), 50);
        assert_eq!(count(&Event::Open), 50);
        server.stop(Duration::from_secs(1));
    });
}
