//! A model-based property test of the session, without sockets: random
//! sequences of peer, socket, timer and handler events, checked against what
//! a connection must guarantee whatever happens.
//!
//! The handler is a probe: it consumes at most `per_call` bytes per
//! `on_data`, echoes what it consumes, and stops consuming while its output
//! is above a limit of its own. The reference model is the record of what
//! the peer sent, what the handler consumed, and what the handler's writes
//! were accepted; the invariants compare the session's behaviour with it:
//!
//! * `on_close` runs exactly once, last; nothing runs after it;
//! * input reaches the handler in order, never duplicated, and — when the
//!   peer ends the stream and the handler keeps consuming — never lost;
//! * output reaches the socket in order, and all of it before a graceful
//!   close;
//! * memory stays bounded by the watermarks and the input limit.
//!
//! `PROPTEST_CASES` deepens the run (`scripts/session_model.sh`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use proptest::prelude::*;

use super::fake::FakeSocket;
use super::{Env, Read, Session};
use crate::conn::{ConnId, ConnState, TimerOwner};
use crate::stats::Counters;
use crate::timer::TimerQueue;
use crate::{CloseReason, Config, Conn, Handler};

// Watermarks, limits and timeouts small enough for random runs to reach.
const LOW: usize = 64;
const HIGH: usize = 256;
const MAX_INPUT: usize = 1024;
const READ_SIZE: usize = 128;
const IDLE: Duration = Duration::from_millis(500);

/// What the probe handler saw and did.
#[derive(Debug, Default)]
struct Record {
    /// Callback names in call order.
    calls: Vec<&'static str>,
    /// The close reason, once `on_close` ran.
    closed: Option<CloseReason>,
    /// Bytes consumed by `on_data`, in order.
    consumed: Vec<u8>,
    /// Bytes written while the connection accepted writes, in order.
    accepted: Vec<u8>,
    /// The handler asked to shut its write half (later writes are refused).
    shut: bool,
    /// Input left when `on_eof` ran.
    left_at_eof: Option<usize>,
    /// The next callback panics.
    panic_next: bool,
}

/// The probe handler.
struct Probe {
    /// Shared with the test.
    record: Rc<RefCell<Record>>,
    /// Most bytes consumed per `on_data`.
    per_call: usize,
    /// Queued output above which it stops consuming.
    out_limit: usize,
}

/// Writes `data` and records it if the connection accepts writes.
fn write(record: &mut Record, conn: &mut Conn<'_>, data: &[u8]) {
    if !conn.is_closing() && !record.shut {
        record.accepted.extend_from_slice(data);
    }
    conn.write(data);
}

impl Handler for Probe {
    fn on_open(&mut self, _: &mut Conn<'_>) {
        self.record.borrow_mut().calls.push("open");
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        let mut r = self.record.borrow_mut();
        r.calls.push("data");
        if std::mem::take(&mut r.panic_next) {
            drop(r);
            panic!("probe panics on purpose");
        }
        if conn.pending_output() <= self.out_limit {
            let taken = input.split_to(self.per_call.min(input.len()));
            r.consumed.extend_from_slice(&taken);
            write(&mut r, conn, &taken);
        }
    }

    fn on_drained(&mut self, _: &mut Conn<'_>) {
        self.record.borrow_mut().calls.push("drained");
    }

    fn on_eof(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
        let mut r = self.record.borrow_mut();
        r.calls.push("eof");
        r.left_at_eof = Some(input.len());
    }

    fn on_timer(&mut self, _: &mut Conn<'_>, _: crate::TimerId) {
        self.record.borrow_mut().calls.push("timer");
    }

    fn on_drain(&mut self, _: &mut Conn<'_>) {
        self.record.borrow_mut().calls.push("drain");
    }

    fn on_close(&mut self, reason: &CloseReason) {
        let mut r = self.record.borrow_mut();
        r.calls.push("close");
        assert!(r.closed.is_none(), "on_close ran twice");
        r.closed = Some(reason.clone());
    }
}

/// One thing that can happen to a connection.
#[derive(Debug, Clone)]
enum Event {
    /// The peer sends bytes.
    PeerSends(Vec<u8>),
    /// The peer shuts its write half.
    PeerFin,
    /// The socket reports an error (a reset).
    PeerReset,
    /// The socket is readable: read as the reactor does.
    Readable(usize),
    /// The socket can take `room` more bytes.
    Writable(usize),
    /// The driver's deferred round.
    Deferred,
    /// Time passes; expired timers run.
    Tick(u64),
    /// The server shuts down.
    Shutdown,
    /// The server drains.
    Drain,
    /// The handler acts (through a task, as `Remote` runs it).
    Act(Action),
}

/// What a handler can do.
#[derive(Debug, Clone, Copy)]
enum Action {
    Write(u8, usize),
    Close,
    Abort,
    Pause,
    Resume,
    ShutdownWrite,
    Panic,
    Timer(u64),
}

/// Handler actions; the ones that end a connection are rarer.
fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => (any::<u8>(), 1..300usize).prop_map(|(b, n)| Action::Write(b, n)),
        2 => Just(Action::Close),
        1 => Just(Action::Abort),
        6 => Just(Action::Pause),
        9 => Just(Action::Resume),
        2 => Just(Action::ShutdownWrite),
        1 => Just(Action::Panic),
        6 => (1..400u64).prop_map(Action::Timer),
    ]
}

/// Events, weighted so that a run usually lasts: the ones that end a
/// connection at once are rare.
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        40 => prop::collection::vec(any::<u8>(), 1..400).prop_map(Event::PeerSends),
        3 => Just(Event::PeerFin),
        1 => Just(Event::PeerReset),
        40 => (1..200usize).prop_map(Event::Readable),
        30 => (0..600usize).prop_map(Event::Writable),
        20 => Just(Event::Deferred),
        8 => (1..300u64).prop_map(Event::Tick),
        1 => Just(Event::Shutdown),
        2 => Just(Event::Drain),
        20 => action().prop_map(Event::Act),
    ]
}

/// The session under test with everything a driver would lend it.
struct Harness {
    session: Session<Probe>,
    socket: FakeSocket,
    record: Rc<RefCell<Record>>,
    timers: TimerQueue<TimerOwner>,
    counters: Counters,
    scratch: BytesMut,
    config: Config,
    now: Instant,
    /// Bytes written by `Act(Write)`, beyond what the echo writes.
    extra_output: usize,
    /// Most bytes one `on_data` consumes, and so echoes.
    per_call: usize,
}

impl Harness {
    fn new(per_call: usize, out_limit: usize, idle: bool) -> Harness {
        let record = Rc::new(RefCell::new(Record::default()));
        let probe = Probe {
            record: Rc::clone(&record),
            per_call,
            out_limit,
        };
        let config = Config::default()
            .write_watermarks(LOW, HIGH)
            .max_input(MAX_INPUT)
            .read_size(READ_SIZE)
            .read_budget(4 * READ_SIZE)
            .idle_timeout(idle.then_some(IDLE));
        let now = Instant::now();
        let peer = crate::Peer::Tcp("127.0.0.1:9".parse().unwrap());
        let state = ConnState::new(ConnId::new(0, 1, 1), peer, config.idle_timeout);
        let mut h = Harness {
            session: Session::new(probe, state, now),
            socket: FakeSocket {
                read_chunk: READ_SIZE,
                ..FakeSocket::default()
            },
            record,
            timers: TimerQueue::new(),
            counters: Counters::default(),
            scratch: BytesMut::new(),
            config,
            now,
            extra_output: 0,
            per_call,
        };
        h.with(|s, env, io| s.open(env, io));
        h
    }

    /// Calls into the session as a driver does.
    fn with<R>(&mut self, f: impl FnOnce(&mut Session<Probe>, &mut Env<'_>, &mut FakeSocket) -> R) -> R {
        let mut env = Env {
            now: self.now,
            config: &self.config,
            timers: &mut self.timers,
            counters: &mut self.counters,
            scratch: &mut self.scratch,
            remote: None,
        };
        f(&mut self.session, &mut env, &mut self.socket)
    }

    /// Reads as the reactor does: until a short read, the budget, or the
    /// session stops wanting input.
    fn readable(&mut self, chunk: usize) {
        self.socket.read_chunk = chunk;
        let mut budget = self.config.read_budget;
        while self.session.wants_read() {
            match self.with(|s, env, io| s.read(env, io)) {
                Read::Data { n, short } | Read::Again { n, short } => {
                    budget = budget.saturating_sub(n);
                    if (short && !self.socket.fin) || budget == 0 {
                        return;
                    }
                }
                Read::Eof | Read::Truncated | Read::WouldBlock => return,
            }
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::PeerSends(bytes) if !self.socket.fin => {
                self.socket.incoming.extend(&bytes);
                self.socket.sent.extend(&bytes);
            }
            Event::PeerSends(_) => {}
            Event::PeerFin => self.socket.fin = true,
            Event::PeerReset => self.with(|s, env, _| s.failed(env, CloseReason::Reset)),
            Event::Readable(chunk) => self.readable(chunk),
            Event::Writable(room) => {
                self.socket.room = room;
                self.with(|s, env, io| s.writable(env, io));
            }
            Event::Deferred => {
                if self.session.has_deferred() {
                    self.with(|s, env, io| s.serve_deferred(env, io));
                    self.readable(READ_SIZE);
                }
            }
            Event::Tick(ms) => {
                self.now += Duration::from_millis(ms);
                while let Some((id, owner)) = self.timers.pop_expired(self.now) {
                    self.with(|s, env, io| s.timer(env, io, id, owner.kind));
                }
            }
            Event::Shutdown => self.with(|s, env, io| s.shutdown(env, io)),
            Event::Drain => self.with(|s, env, io| s.drain(env, io)),
            Event::Act(action) => self.act(action),
        }
    }

    fn act(&mut self, action: Action) {
        let record = Rc::clone(&self.record);
        if let Action::Write(_, n) = action {
            self.extra_output += n;
        }
        self.with(|s, env, io| {
            s.run_task(env, io, move |conn| {
                let mut r = record.borrow_mut();
                match action {
                    Action::Write(byte, n) => write(&mut r, conn, &vec![byte; n]),
                    Action::Close => conn.close(),
                    Action::Abort => conn.abort(),
                    Action::Pause => conn.pause_reading(),
                    Action::Resume => conn.resume_reading(),
                    Action::ShutdownWrite => {
                        r.shut = true;
                        conn.shutdown_write();
                    }
                    Action::Panic => r.panic_next = true,
                    Action::Timer(ms) => drop(conn.set_timer(Duration::from_millis(ms))),
                }
            })
        });
    }

    /// The peer finishes and reads everything; the handler resumes. Then
    /// time runs out, and last the server's grace period.
    fn settle(&mut self) {
        self.apply(Event::PeerFin);
        self.apply(Event::Act(Action::Resume));
        for _ in 0..10_000 {
            if self.session.is_finished() {
                return;
            }
            self.apply(Event::Writable(usize::MAX));
            self.apply(Event::Deferred);
            self.readable(READ_SIZE);
        }
        self.apply(Event::Tick(10_000));
        if !self.session.is_finished() {
            self.with(|s, env, io| s.force_close(env, io));
        }
    }

    /// The bounds that hold after every event.
    fn check_bounds(&self) {
        if self.session.is_finished() {
            return;
        }
        let input = self.session.pending_input();
        assert!(input <= MAX_INPUT + READ_SIZE, "input {input} far over the limit");
        if input > MAX_INPUT {
            assert!(
                !self.session.phase().takes_input(),
                "input over the limit, connection not closing"
            );
        }
        // One callback may write past the high watermark before the loop
        // stops offering input: by its echo, plus whatever actions wrote.
        let bound = HIGH + self.per_call + self.extra_output;
        assert!(self.session.pending_output() <= bound, "output over {bound}");
    }

    /// The invariants that hold once the connection has ended.
    fn check_end(&self) {
        let r = self.record.borrow();
        let reason = r.closed.clone().expect("on_close ran");
        assert_eq!(r.calls.iter().filter(|&&c| c == "close").count(), 1);
        assert_eq!(r.calls.last(), Some(&"close"), "a callback ran after on_close");
        assert!(self.session.is_finished());
        assert!(self.timers.is_empty(), "{} timers left behind", self.timers.len());
        // Input: in order, never duplicated.
        assert!(
            self.socket.sent.starts_with(&r.consumed),
            "input reordered or duplicated"
        );
        // Output: in order.
        assert!(
            r.accepted.starts_with(&self.socket.written),
            "output reordered or invented"
        );
        let graceful = matches!(
            reason,
            CloseReason::PeerClosed | CloseReason::Closed | CloseReason::InputLimit | CloseReason::Shutdown
        );
        if graceful && !self.socket.reset {
            assert_eq!(
                self.socket.written.len(),
                r.accepted.len(),
                "output not flushed before {reason}"
            );
        }
        if reason == CloseReason::PeerClosed {
            assert_eq!(
                r.left_at_eof,
                Some(0),
                "on_eof saw input the handler would have consumed"
            );
            assert_eq!(
                r.consumed.len(),
                self.socket.sent.len(),
                "input lost at end of stream"
            );
            assert_eq!(self.counters.input_discarded, 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_session_keeps_its_guarantees_under_any_events(
        per_call in 1..200usize,
        out_limit in 0..(2 * HIGH),
        idle in any::<bool>(),
        events in prop::collection::vec(event(), 0..120),
    ) {
        let mut h = Harness::new(per_call, out_limit, idle);
        for event in events {
            h.apply(event);
            h.check_bounds();
        }
        h.settle();
        h.check_end();
    }
}

#[test]
fn a_pipelined_batch_then_end_of_stream_loses_nothing() {
    let mut h = Harness::new(3, 32, false);
    let batch: Vec<u8> = (0..5_000u32).map(|i| i as u8).collect();
    h.apply(Event::PeerSends(batch.clone()));
    h.apply(Event::PeerFin);
    h.settle();
    h.check_end();
    assert_eq!(h.socket.written, batch, "every byte echoed, in order");
    assert_eq!(h.record.borrow().closed, Some(CloseReason::PeerClosed));
}

#[test]
fn on_drain_runs_once_however_often_the_drain_is_told() {
    let mut h = Harness::new(3, 32, false);
    h.apply(Event::Drain);
    h.apply(Event::Drain);
    assert_eq!(h.record.borrow().calls, ["open", "drain"]);
    // The connection is served on as before.
    h.apply(Event::PeerSends(b"abc".to_vec()));
    h.apply(Event::Readable(READ_SIZE));
    assert_eq!(h.record.borrow().consumed, b"abc");
}

#[test]
fn a_connection_told_of_the_drain_before_it_opens_hears_it_after_on_open() {
    let mut h = Harness::new(3, 32, false);
    let until = h.now + Duration::from_secs(1);
    let probe = Probe {
        record: Rc::clone(&h.record),
        per_call: 3,
        out_limit: 32,
    };
    let state = ConnState::new(ConnId::new(0, 2, 1), h.session.peer(), None);
    h.session = h.with(|_, env, _| Session::connecting(probe, state, env, until));
    h.record.borrow_mut().calls.clear();
    h.apply(Event::Drain);
    assert!(h.record.borrow().calls.is_empty(), "no callback before on_open");
    h.with(|s, env, io| s.connected(env, io));
    assert_eq!(h.record.borrow().calls, ["open", "drain"]);
}

#[test]
fn a_closing_connection_is_not_told_of_the_drain() {
    let mut h = Harness::new(3, 32, false);
    h.apply(Event::Shutdown);
    h.apply(Event::Drain);
    assert!(!h.record.borrow().calls.contains(&"drain"));
}
