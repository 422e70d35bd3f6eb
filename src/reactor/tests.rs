//! Tests of the loop's internals that its public behaviour cannot show.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use mio::Token;

use super::EventLoop;
use super::event_loop::live;
use super::token;
use crate::{Config, Conn, Handler};

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
