//! Many loops in one process: balancing, the connection cap, the
//! cross-thread door, graceful shutdown, and consistent stats.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{Echo, assert_fds_return_to, open_fds, pattern, serial, wait_until};
use evloop::{
    Balance, CloseReason, Conn, ConnClosed, ConnId, Handler, Model, Remote, Server, ServerHandle, Stats,
};

/// Ids of opened connections, in order of opening.
type Ids = Arc<Mutex<Vec<ConnId>>>;

/// Records its id; echoes complete lines; `big\n` queues a large reply;
/// `all:<text>\n` sends the line to every other recorded connection.
struct Lines {
    ids: Ids,
}

/// Size of the reply to `big`.
const BIG: usize = 8 * 1024 * 1024;

impl Handler for Lines {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.ids.lock().unwrap().push(conn.id());
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        while let Some(end) = input.iter().position(|&b| b == b'\n') {
            let line = input.split_to(end + 1).freeze();
            if &line[..] == b"big\n" {
                conn.write_bytes(pattern(BIG, 42).into());
            } else if let Some(text) = line.strip_prefix(b"all:") {
                let remote = conn.remote().expect("a reactor has a remote");
                for &id in self.ids.lock().unwrap().iter().filter(|&&id| id != conn.id()) {
                    let _ = remote.write(id, text.to_vec());
                }
            } else {
                conn.write_bytes(line);
            }
        }
    }
}

/// Starts a server of `loops` loops with `balance` running [`Lines`].
fn start_lines(loops: usize, balance: Balance) -> (ServerHandle, Ids) {
    let ids = Ids::default();
    let shared = Arc::clone(&ids);
    let server = Server::new("127.0.0.1:0".parse().unwrap())
        .threads(loops)
        .balance(balance)
        .start(move || Lines {
            ids: Arc::clone(&shared),
        })
        .unwrap();
    (server, ids)
}

/// Connects a client with a read timeout.
fn connect(server: &ServerHandle) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Waits until every loop's stats satisfy `cond` (as a vector, by index).
#[track_caller]
fn wait_loops(server: &ServerHandle, what: &str, cond: impl Fn(&[Stats]) -> bool) -> Vec<Stats> {
    wait_until(what, || Some(server.loop_stats()).filter(|s| cond(s)))
}

/// Shuts down and joins, asserting the loops ended cleanly.
fn stop(server: ServerHandle, grace: Duration) {
    server.shutdown(grace);
    server.join().unwrap();
}

#[test]
fn reuse_port_spreads_connections_over_every_loop() {
    let _serial = serial();
    let server = Server::new("127.0.0.1:0".parse().unwrap())
        .threads(2)
        .balance(Balance::ReusePort);
    let server = server.start(|| Echo).unwrap();
    let clients: Vec<_> = (0..64).map(|_| connect(&server)).collect();
    let per_loop = wait_loops(&server, "64 accepted", |s| {
        s.iter().map(|l| l.accepted).sum::<u64>() == 64
    });
    assert!(
        per_loop.iter().all(|l| l.accepted > 0),
        "a loop got no connection: {per_loop:?}"
    );
    drop(clients);
    stop(server, Duration::from_secs(1));
}

#[test]
fn round_robin_gives_every_loop_its_turn() {
    let _serial = serial();
    let (server, _ids) = start_lines(4, Balance::RoundRobin);
    let clients: Vec<_> = (0..12).map(|_| connect(&server)).collect();
    let per_loop = wait_loops(&server, "12 accepted", |s| {
        s.iter().map(|l| l.accepted).sum::<u64>() == 12
    });
    assert!(per_loop.iter().all(|l| l.accepted == 3), "uneven: {per_loop:?}");
    drop(clients);
    stop(server, Duration::from_secs(1));
}

#[test]
fn least_connections_keeps_idle_loops_within_one_connection() {
    let _serial = serial();
    let (server, _ids) = start_lines(3, Balance::LeastConnections);
    let mut clients: Vec<_> = (0..9).map(|_| connect(&server)).collect();
    wait_loops(&server, "9 open", |s| s.iter().map(|l| l.open).sum::<u64>() == 9);
    // Close clients 0, 3, 4, 5: the loops they were on are now uneven...
    for i in [5, 4, 3, 0] {
        clients.remove(i);
    }
    wait_loops(&server, "5 open", |s| s.iter().map(|l| l.open).sum::<u64>() == 5);
    // ...and new connections fill the emptiest loops first.
    clients.extend((0..4).map(|_| connect(&server)));
    let per_loop = wait_loops(&server, "9 open again", |s| {
        s.iter().map(|l| l.open).sum::<u64>() == 9
    });
    let open: Vec<u64> = per_loop.iter().map(|l| l.open).collect();
    assert!(
        open.iter().max().unwrap() - open.iter().min().unwrap() <= 1,
        "open per loop: {open:?}"
    );
    drop(clients);
    stop(server, Duration::from_secs(1));
}

#[test]
fn connections_over_the_cap_are_closed_at_once_and_counted() {
    let _serial = serial();
    for balance in [Balance::ReusePort, Balance::RoundRobin] {
        let server = Server::new("127.0.0.1:0".parse().unwrap())
            .threads(2)
            .balance(balance);
        let server = server.max_connections(3).start(|| Echo).unwrap();
        let kept: Vec<_> = (0..3).map(|_| connect(&server)).collect();
        wait_until("3 open", || Some(server.stats()).filter(|s| s.open == 3));
        let mut refused = connect(&server);
        let mut buf = [0; 1];
        assert_eq!(
            refused.read(&mut buf).unwrap_or(0),
            0,
            "{balance:?}: refused connection left open"
        );
        let stats = wait_until("rejected", || Some(server.stats()).filter(|s| s.rejected == 1));
        assert_eq!(stats.accepted, 3);
        drop(kept);
        wait_until("slots freed", || Some(server.stats()).filter(|s| s.open == 0));
        let mut later = connect(&server);
        wait_until("a slot is free again", || {
            Some(server.stats()).filter(|s| s.open == 1)
        });
        later.write_all(b"ok").unwrap();
        assert_eq!(common::read_exact_n(&mut later, 2), b"ok");
        stop(server, Duration::from_secs(1));
    }
}

#[test]
fn cross_thread_writes_arrive_complete_and_in_order_while_echoing() {
    let _serial = serial();
    let (server, ids) = start_lines(2, Balance::RoundRobin);
    let client = connect(&server);
    let id = wait_until("the connection's id", || ids.lock().unwrap().first().copied());
    let remote = server.remote();
    let writer = std::thread::spawn(move || {
        for n in 0..2000 {
            remote.write(id, format!("r{n}\n")).unwrap();
        }
    });
    let mut sender = client.try_clone().unwrap();
    let echoer = std::thread::spawn(move || {
        for n in 0..2000 {
            sender.write_all(format!("e{n}\n").as_bytes()).unwrap();
        }
    });
    let (mut next_r, mut next_e) = (0, 0);
    for line in BufReader::new(client).lines().take(4000) {
        let line = line.unwrap();
        let (kind, n) = line.split_at(1);
        let n: usize = n.parse().unwrap_or_else(|_| panic!("garbled line {line:?}"));
        let next = if kind == "r" { &mut next_r } else { &mut next_e };
        assert_eq!(n, *next, "{kind} lines out of order");
        *next += 1;
    }
    assert_eq!((next_r, next_e), (2000, 2000));
    writer.join().unwrap();
    echoer.join().unwrap();
    stop(server, Duration::from_secs(1));
}

#[test]
fn a_handler_broadcasts_to_connections_on_other_loops() {
    let _serial = serial();
    let (server, ids) = start_lines(2, Balance::RoundRobin);
    let mut a = connect(&server);
    let b = connect(&server);
    let c = connect(&server);
    let seen = wait_until("3 ids", || {
        Some(ids.lock().unwrap().clone()).filter(|i| i.len() == 3)
    });
    // Round-robin put a and c on loop 0 and b on loop 1: a's line crosses loops.
    assert!(
        seen.iter().any(|id| id.loop_index() != seen[0].loop_index()),
        "all on one loop: {seen:?}"
    );
    a.write_all(b"all:hello\n").unwrap();
    for client in [b, c] {
        let mut line = String::new();
        BufReader::new(client).read_line(&mut line).unwrap();
        assert_eq!(line, "hello\n");
    }
    stop(server, Duration::from_secs(1));
}

#[test]
fn writes_to_a_closed_connection_are_an_error() {
    let _serial = serial();
    let (server, ids) = start_lines(2, Balance::ReusePort);
    let client = connect(&server);
    let id = wait_until("the connection's id", || ids.lock().unwrap().first().copied());
    let remote: Remote = server.remote();
    assert_eq!(remote.write(id, "hi\n"), Ok(()));
    drop(client);
    wait_until("closed", || Some(server.stats()).filter(|s| s.open == 0));
    assert_eq!(remote.write(id, "late"), Err(ConnClosed(id)));
    assert_eq!(remote.close(id), Err(ConnClosed(id)));
    assert!(remote.run(id, |conn| conn.close()).is_err());
    stop(server, Duration::from_secs(1));
}

#[test]
fn graceful_shutdown_delivers_every_queued_byte_before_the_fin() {
    let _serial = serial();
    let fds = open_fds();
    let (server, _ids) = start_lines(2, Balance::RoundRobin);
    let mut clients: Vec<_> = (0..4).map(|_| connect(&server)).collect();
    for client in &mut clients {
        client.write_all(b"big\n").unwrap();
    }
    wait_until("replies queued", || {
        Some(server.stats()).filter(|s| s.bytes_read == 16)
    });
    server.shutdown(Duration::from_secs(20));
    let expected = pattern(BIG, 42);
    for mut client in clients {
        let mut got = Vec::new();
        client.read_to_end(&mut got).expect("a clean end of stream");
        assert!(
            got.len() == BIG && got == expected,
            "got {} of {BIG} bytes",
            got.len()
        );
    }
    server.join().unwrap();
    let stats = server.stats();
    assert_eq!(stats.closed_by(&CloseReason::Shutdown), 4);
    drop(server);
    assert_fds_return_to(fds);
}

#[test]
fn a_client_that_never_reads_is_cut_at_the_grace_period() {
    let _serial = serial();
    let fds = open_fds();
    let (server, _ids) = start_lines(2, Balance::RoundRobin);
    let mut stuck = connect(&server);
    stuck.write_all(b"big\n").unwrap();
    wait_until("reply queued", || {
        Some(server.stats()).filter(|s| s.bytes_read == 4)
    });
    let start = Instant::now();
    server.shutdown(Duration::from_millis(300));
    server.join().unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "join took {took:?}"
    );
    assert_eq!(server.stats().closed_by(&CloseReason::Shutdown), 1);
    // The client sees its partial reply end in a reset, not a clean end.
    let mut got = Vec::new();
    assert!(stuck.read_to_end(&mut got).is_err() || got.len() < BIG);
    drop((stuck, server));
    assert_fds_return_to(fds);
}

#[test]
fn accepted_equals_closed_plus_open_once_quiet() {
    let _serial = serial();
    let (server, _ids) = start_lines(2, Balance::LeastConnections);
    let mut clients: Vec<_> = (0..10).map(|_| connect(&server)).collect();
    clients.truncate(4);
    let stats = wait_until("quiet", || {
        Some(server.stats()).filter(|s| s.accepted == 10 && s.open == 4)
    });
    assert_eq!(stats.accepted, stats.closed_total() + stats.open);
    for per_loop in server.loop_stats() {
        assert_eq!(per_loop.accepted, per_loop.closed_total() + per_loop.open);
    }
    drop(clients);
    stop(server, Duration::from_secs(1));
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<ServerHandle>();
    assert_send_sync::<Remote>();
    assert_send_sync::<evloop::LoopHandle>();
}

#[test]
fn remote_close_and_a_panicking_remote_closure_close_only_their_target() {
    let _serial = serial();
    let (server, ids) = start_lines(2, Balance::RoundRobin);
    // One at a time, so that ids[i] is the i-th client's.
    let mut clients = Vec::new();
    for n in 1..=3 {
        clients.push(connect(&server));
        wait_until("its id", || Some(()).filter(|_| ids.lock().unwrap().len() == n));
    }
    let (mut closed, mut panicked, mut healthy) = (clients.remove(0), clients.remove(0), clients.remove(0));
    let seen = ids.lock().unwrap().clone();
    let remote = server.remote();
    remote.write(seen[0], "bye\n").unwrap();
    remote.close(seen[0]).unwrap();
    remote
        .run(seen[1], |_| panic!("a remote closure panics"))
        .unwrap();
    let mut got = Vec::new();
    closed.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye\n", "output queued before close() is flushed first");
    let _ = panicked.read_to_end(&mut Vec::new()); // a reset or an end of stream
    let stats = wait_until("2 closed", || {
        Some(server.stats()).filter(|s| s.closed_total() == 2)
    });
    assert_eq!(stats.closed_by(&CloseReason::Closed), 1);
    assert_eq!(stats.closed_by(&CloseReason::Panicked), 1);
    healthy.write_all(b"alive\n").unwrap();
    assert_eq!(common::read_exact_n(&mut healthy, 6), b"alive\n");
    stop(server, Duration::from_secs(1));
}

/// Answers the first bytes with `refused` and closes, whatever else arrives.
struct RefuseAtOnce;

impl Handler for RefuseAtOnce {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        input.clear();
        conn.write(b"refused");
        conn.close();
    }
}

on_both_models!(closing_while_the_peer_still_sends_delivers_the_reply_instead_of_a_reset);

/// Five requests whose bodies are far larger than one read: the server
/// replies and closes with most of each unread, which without a lingering
/// close makes the kernel reset the connection.
fn closing_while_the_peer_still_sends_delivers_the_reply_instead_of_a_reset(model: Model) {
    let server = Server::new("127.0.0.1:0".parse().unwrap())
        .threads(1)
        .model(model);
    let server = server.start(|| RefuseAtOnce).unwrap();
    for _ in 0..5 {
        let mut client = connect(&server);
        let _ = client.write_all(&pattern(256 * 1024, 9));
        let _ = client.shutdown(std::net::Shutdown::Write);
        let mut got = Vec::new();
        let end = client.read_to_end(&mut got);
        assert!(end.is_ok(), "{model:?}: {end:?} instead of a clean end of stream");
        assert_eq!(got, b"refused", "{model:?}");
    }
    let stats = wait_until("5 closed", || {
        Some(server.stats()).filter(|s| s.closed_total() == 5)
    });
    assert_eq!(stats.closed_by(&CloseReason::Closed), 5);
    stop(server, Duration::from_secs(1));
}

#[test]
fn a_lingering_close_gives_up_on_a_peer_that_never_finishes() {
    let _serial = serial();
    let server = Server::new("127.0.0.1:0".parse().unwrap())
        .threads(1)
        .start(|| RefuseAtOnce)
        .unwrap();
    let mut client = connect(&server);
    client.write_all(&pattern(256 * 1024, 3)).unwrap(); // more than one read: left unread
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap(); // the reply, then our end of stream
    assert_eq!(got, b"refused");
    // The server still holds the socket, discarding, until the linger time.
    let start = Instant::now();
    assert_eq!(server.stats().closed_total(), 0, "closed without lingering");
    let stats = wait_until("closed after lingering", || {
        Some(server.stats()).filter(|s| s.closed_total() == 1)
    });
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "lingered {:?}",
        start.elapsed()
    );
    assert_eq!(stats.closed_by(&CloseReason::Closed), 1);
    drop(client);
    stop(server, Duration::from_secs(1));
}
