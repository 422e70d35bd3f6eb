//! What only the thread model has: a thread per connection that exits with
//! its connection, a connection limit, a stack size, handlers that are not
//! `Send`, a panicking factory, and how `run` and `wait` end.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use evloop::baseline::{MIN_STACK_SIZE, ThreadServer};
use evloop::{CloseReason, Config, Conn, Handler};

use crate::common::{
    self, Echo, Model, TestServer, assert_echoes, finish_and_expect_eof, isolated, localhost, read_exact_n,
};
use crate::handler::{Closes, Scripted, closes_after};

/// Threads of this process whose name is `name` (Linux's `comm`). Counting by
/// name sees only the server's threads, not the test harness's.
fn threads_named(name: &str) -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("thread counting needs Linux /proc");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// Waits until exactly `n` connection threads are alive.
#[track_caller]
fn wait_for_conn_threads(n: usize) {
    common::wait_until(&format!("{n} connection threads"), || {
        (threads_named("evloop-conn") == n).then_some(())
    });
}

#[test]
fn connection_threads_exit_when_their_connections_close() {
    isolated(|| {
        let server = TestServer::echo(Model::Threads);
        let mut clients: Vec<_> = (0..20).map(|_| server.connect()).collect();
        for client in &mut clients {
            assert_echoes(client, b"ping");
        }
        wait_for_conn_threads(20);
        drop(clients);
        wait_for_conn_threads(0);
        assert_eq!(server.stats().open, 0);
        server.stop(Duration::from_secs(1));
        common::wait_until("the acceptor to exit", || {
            (threads_named("evloop-accept") == 0).then_some(())
        });
    });
}

#[test]
fn connections_over_max_connections_are_closed_at_once_and_counted() {
    isolated(|| {
        let server = TestServer::threads(
            ThreadServer::bind(localhost(), Config::default(), || Echo)
                .unwrap()
                .max_connections(2),
        );
        let mut first = server.connect();
        let mut second = server.connect();
        assert_echoes(&mut first, b"1");
        assert_echoes(&mut second, b"2");

        let mut third = server.connect();
        let mut rest = Vec::new();
        let _ = third.read_to_end(&mut rest); // closed at once: end of stream or reset
        assert!(rest.is_empty());
        assert_eq!(server.thread_handle().stats().rejected, 1);
        assert_eq!(server.stats().accepted, 2);

        drop(first);
        server.wait_for_stats("a slot free", |s| s.open == 1);
        let mut fourth = server.connect();
        assert_echoes(&mut fourth, b"4");
        drop((second, third, fourth, server));
    });
}

#[test]
#[should_panic(expected = "below the minimum")]
fn a_stack_below_the_minimum_is_refused() {
    isolated(|| {
        let server = ThreadServer::bind(localhost(), Config::default(), || Echo).unwrap();
        let _ = server.stack_size(MIN_STACK_SIZE - 1);
    });
}

#[test]
#[should_panic(expected = "at least 1")]
fn zero_max_connections_is_refused() {
    isolated(|| {
        let server = ThreadServer::bind(localhost(), Config::default(), || Echo).unwrap();
        let _ = server.max_connections(0);
    });
}

#[test]
fn the_minimum_stack_serves_and_survives_a_panic() {
    isolated(|| {
        let closes = Closes::default();
        let server = ThreadServer::bind(localhost(), Config::default(), Scripted::factory(&closes)).unwrap();
        let server = TestServer::threads(server.stack_size(MIN_STACK_SIZE));
        let mut healthy = server.connect();
        let mut doomed = server.connect();
        assert_eq!(read_exact_n(&mut healthy, 3), b"hi\n");
        assert_eq!(read_exact_n(&mut doomed, 3), b"hi\n");
        doomed.write_all(b"P").unwrap();
        assert_eq!(closes_after(&closes, 1), [CloseReason::Panicked]);
        assert_echoes(&mut healthy, b"still served");
        finish_and_expect_eof(healthy);
    });
}

/// Counts the bytes it has seen in an `Rc`: a handler that is not `Send`.
struct Tally {
    seen: Rc<Cell<usize>>,
}

impl Handler for Tally {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        self.seen.set(self.seen.get() + input.len());
        input.clear();
        conn.write(format!("{}\n", self.seen.get()).as_bytes());
    }
}

#[test]
fn a_handler_that_is_not_send_is_served() {
    isolated(|| {
        let factory = || Tally { seen: Rc::default() };
        let server =
            TestServer::threads(ThreadServer::bind(localhost(), Config::default(), factory).unwrap());
        let mut client = server.connect();
        client.write_all(b"abc").unwrap();
        assert_eq!(read_exact_n(&mut client, 2), b"3\n");
        client.write_all(b"de").unwrap();
        assert_eq!(read_exact_n(&mut client, 2), b"5\n");
    });
}

#[test]
fn a_panicking_factory_closes_only_that_connection() {
    isolated(|| {
        let calls = AtomicUsize::new(0);
        let factory = move || {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("factory failed");
            }
            Echo
        };
        let server =
            TestServer::threads(ThreadServer::bind(localhost(), Config::default(), factory).unwrap());
        let mut doomed = server.connect();
        let mut rest = Vec::new();
        let _ = doomed.read_to_end(&mut rest);
        let stats = server.wait_for_stats("closed", |s| s.closed_by(&CloseReason::Panicked) == 1);
        assert_eq!((stats.panics, stats.accepted), (1, 1));
        let mut healthy = server.connect();
        assert_echoes(&mut healthy, b"fine");
    });
}

#[test]
fn a_connection_that_gets_no_thread_is_closed_and_counted() {
    isolated(|| {
        // A stack the size of the whole address space cannot be mapped: starting
        // every connection thread fails.
        let huge = ThreadServer::bind(localhost(), Config::default(), || Echo)
            .unwrap()
            .stack_size(1 << 47);
        let server = TestServer::threads(huge);
        let mut client = server.connect();
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest); // closed at once
        assert!(rest.is_empty());
        // Refused, counted, and accepting paused as when fds run out.
        let stats = server.wait_for_stats("a pause", |s| s.accept_backoffs >= 1);
        assert_eq!((stats.accepted, stats.open), (0, 0));
        assert_eq!(server.thread_handle().stats().rejected, 1);
        drop((client, server));
    });
}

#[test]
fn an_idle_timeout_too_long_to_represent_never_expires() {
    isolated(|| {
        let config = Config::default().idle_timeout(Some(Duration::MAX));
        let server = TestServer::threads(ThreadServer::bind(localhost(), config, || Echo).unwrap());
        let mut client = server.connect();
        assert_echoes(&mut client, b"still open");
        finish_and_expect_eof(client);
    });
}

#[test]
fn run_returns_at_once_after_an_early_shutdown() {
    isolated(|| {
        let server = ThreadServer::bind(localhost(), Config::default(), || Echo).unwrap();
        let handle = server.handle();
        handle.shutdown(Duration::from_secs(10));
        let start = Instant::now();
        server.run().unwrap();
        handle.wait();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "run waited for {:?}",
            start.elapsed()
        );
        drop(handle);
    });
}

#[test]
fn wait_returns_when_the_server_is_dropped_unrun() {
    isolated(|| {
        let server = ThreadServer::bind(localhost(), Config::default(), || Echo).unwrap();
        let handle = server.handle();
        drop(server);
        handle.wait();
        assert_eq!(handle.stats(), Default::default());
        assert!(
            std::net::TcpStream::connect(handle.local_addr()).is_err(),
            "listener closed"
        );
    });
}

/// `wait` returns only once every connection's socket is closed, not merely
/// once its thread has said so: the fd count is back at once, with no
/// polling.
#[test]
fn wait_returns_after_every_connection_socket_is_closed() {
    isolated(|| {
        for _ in 0..20 {
            let fds = common::open_fds();
            let handle = ThreadServer::bind(localhost(), Config::default(), || Echo)
                .unwrap()
                .start()
                .unwrap();
            let mut clients: Vec<_> = (0..8)
                .map(|_| std::net::TcpStream::connect(handle.local_addr()).unwrap())
                .collect();
            for client in &mut clients {
                assert_echoes(client, b"x");
            }
            handle.shutdown(Duration::ZERO);
            handle.wait();
            drop(handle);
            // Only the clients' own sockets are left.
            assert_eq!(
                common::open_fds(),
                fds + clients.len(),
                "a server fd outlived wait()"
            );
        }
    });
}
