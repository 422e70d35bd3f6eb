//! Tests of the loop's internals that its public behaviour cannot show.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use mio::Token;

use super::event_loop::live;
use super::token;
use super::{Command, EventLoop, Slot};
use crate::limit::ConnLimit;
use crate::{CloseReason, Config, Conn, Handler, Peer};

impl<F, H> EventLoop<F, H>
where
    F: FnMut() -> H,
    H: Handler,
{
    /// Test access: handles an event for `token` as if the poller reported it.
    pub(crate) fn inject_readable(&mut self, token: Token) -> bool {
        match live(&mut self.conns, token) {
            Some(conn) => {
                conn.ready(&mut self.core, true, false, false, false);
                true
            }
            None => {
                self.core.counters.stale_events += 1;
                false
            }
        }
    }
}

/// Counts the bytes its connections receive.
struct Counting(Arc<AtomicUsize>);

impl Handler for Counting {
    fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
        self.0.fetch_add(input.len(), Ordering::SeqCst);
        input.clear();
    }
}

/// Turns the loop until `done` holds, for at most five seconds.
fn turn_until<F: FnMut() -> H, H: Handler>(
    el: &mut EventLoop<F, H>,
    mut done: impl FnMut(&EventLoop<F, H>) -> bool,
) {
    let start = Instant::now();
    while !done(el) {
        assert!(start.elapsed() < Duration::from_secs(5), "condition not reached");
        el.turn().unwrap();
    }
}

#[test]
fn stale_event_for_reused_key_is_not_delivered() {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let config = Config::default().idle_timeout(None);
    let mut el = EventLoop::bind("127.0.0.1:0".parse().unwrap(), config, move || {
        Counting(Arc::clone(&counter))
    })
    .unwrap();
    let addr = el.local_addr();

    // Connection A takes slab key 0; it closes and is released.
    let a = std::net::TcpStream::connect(addr).unwrap();
    turn_until(&mut el, |el| el.conns.len() == 1);
    let old_token = el.conns[0].token();
    drop(a);
    turn_until(&mut el, |el| el.conns.is_empty());

    // Connection B reuses key 0 under a new generation, with bytes waiting.
    let mut b = std::net::TcpStream::connect(addr).unwrap();
    turn_until(&mut el, |el| el.conns.len() == 1);
    let new_token = el.conns[0].token();
    assert_eq!(
        token::decode(new_token).0,
        token::decode(old_token).0,
        "key reused"
    );
    assert_ne!(new_token, old_token);
    b.write_all(b"for B only").unwrap();
    let start = Instant::now();
    while !el.conns[0].has_unread() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B's bytes never arrived"
        );
        std::thread::yield_now();
    }

    // An event still naming A must not reach B.
    assert!(!el.inject_readable(old_token));
    assert_eq!(el.core.counters.stale_events, 1);
    assert_eq!(received.load(Ordering::SeqCst), 0, "B's handler saw A's event");

    // B's own event is delivered.
    assert!(el.inject_readable(new_token));
    assert_eq!(received.load(Ordering::SeqCst), 10);
}

#[test]
fn a_loop_moved_to_another_thread_is_woken_by_the_thread_it_left() {
    // Turned on this thread, then run on another: a shutdown sent from this
    // thread must wake it, not be taken for the loop's own command.
    let config = Config::default().idle_timeout(None);
    let mut el = EventLoop::bind(
        "127.0.0.1:0".parse().unwrap(),
        config,
        || Counting(Arc::default()),
    )
    .unwrap();
    el.run_until_idle().unwrap();
    let handle = el.handle();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let result = el.run();
        let _ = done_tx.send(());
        result
    });
    // Let the loop block in its poll, then ask it to stop from here.
    std::thread::sleep(Duration::from_millis(100));
    handle.shutdown(Duration::ZERO);
    assert!(
        done_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "the loop slept through a shutdown sent from the thread it was turned on"
    );
    runner.join().unwrap().unwrap();
}

/// The callbacks of a [`Recording`] handler, by name, in order.
type Calls = Arc<Mutex<Vec<&'static str>>>;

/// Records its callbacks, by name, in order; closes at a drain.
struct Recording(Calls);

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

    fn on_close(&mut self, _: &CloseReason) {
        self.0.lock().unwrap().push("close");
    }
}

/// A loop without a listener, as a round-robin server's loops are, whose
/// handlers record into the returned list; drained before it returns.
fn drained_loop() -> (EventLoop<impl FnMut() -> Recording, Recording>, Calls) {
    let calls = Calls::default();
    let log = Arc::clone(&calls);
    // The idle timeout ends a connection that never hears of the drain.
    let config = Config::default().idle_timeout(Some(Duration::from_secs(1)));
    let mut el = EventLoop::new(config, move || Recording(Arc::clone(&log))).unwrap();
    el.core.door().send(Command::StopAccepting);
    turn_until(&mut el, |el| el.draining);
    (el, calls)
}

/// Turns the loop until a handler recorded its close and the loop let it go.
fn turn_until_closed<F: FnMut() -> H, H: Handler>(el: &mut EventLoop<F, H>, calls: &Mutex<Vec<&str>>) {
    turn_until(el, |el| {
        el.conns.is_empty() && calls.lock().unwrap().contains(&"close")
    });
}

/// Reads `stream` to its end, which must be clean and carry nothing.
#[track_caller]
fn assert_closed_cleanly(mut stream: TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("an end of stream, not a reset");
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn a_connection_handed_over_after_the_drain_began_hears_of_it_right_after_on_open() {
    // The acceptor thread of a round-robin server may accept a connection
    // just before it stops and hand it to a loop that has already read its
    // StopAccepting.
    let (mut el, calls) = drained_loop();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let slot = Slot::take(&Arc::new(ConnLimit::new(1)), &el.core.door().occupancy).unwrap();
    el.core
        .door()
        .send(Command::Adopt(accepted.into(), Peer::Tcp(peer), slot));
    turn_until_closed(&mut el, &calls);
    assert_eq!(*calls.lock().unwrap(), ["open", "drain", "close"]);
    assert_closed_cleanly(client);
}

#[test]
fn a_connection_dialled_after_the_drain_began_hears_of_it_right_after_on_open() {
    let (mut el, calls) = drained_loop();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    el.connect(listener.local_addr().unwrap(), Duration::from_secs(5))
        .unwrap();
    let (server_side, _) = listener.accept().unwrap();
    turn_until_closed(&mut el, &calls);
    assert_eq!(*calls.lock().unwrap(), ["open", "drain", "close"]);
    assert_closed_cleanly(server_side);
}
