//! The execution model under test, and a server of either model running on a
//! background thread.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use evloop::baseline::{ThreadHandle, ThreadServer};
use evloop::{Config, Handler, Stats};

use crate::common::{self, Echo, TestServer};

/// Which execution model drives the handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// `evloop::EventLoop`: one thread, readiness events.
    Reactor,
    /// `evloop::baseline::ThreadServer`: a blocking thread per connection.
    Threads,
}

/// Runs `test` alone (serialised with every other test of this binary, since
/// they count the process's fds and threads), then checks that the process's
/// fd count is back where it started: every socket the test and its server
/// opened has been closed.
pub fn isolated(test: impl FnOnce()) {
    let _serial = common::serial();
    let fds = common::open_fds();
    test();
    common::assert_fds_return_to(fds);
}

/// 127.0.0.1 on a free port.
pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A server of either model serving 127.0.0.1. Dropping it shuts it down with
/// no grace period and waits until it has stopped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server itself; `None` once stopped.
    running: Option<Running>,
}

/// A running server of one model.
enum Running {
    Reactor(TestServer),
    Threads(ThreadHandle),
}

impl Server {
    /// Starts a server of `model` with `config` and handlers from `factory`.
    pub fn start<F, H>(model: Model, config: Config, factory: F) -> Server
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler + Send,
    {
        match model {
            Model::Reactor => {
                let server = TestServer::start(config, factory);
                Server {
                    addr: server.addr,
                    running: Some(Running::Reactor(server)),
                }
            }
            Model::Threads => Server::threads(ThreadServer::bind(localhost(), config, factory).unwrap()),
        }
    }

    /// Starts a thread-per-connection server configured by the caller.
    pub fn threads<F, H>(server: ThreadServer<F>) -> Server
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler,
    {
        let handle = server.start().unwrap();
        Server {
            addr: handle.local_addr(),
            running: Some(Running::Threads(handle)),
        }
    }

    /// An echo server of `model` with the default config.
    pub fn echo(model: Model) -> Server {
        Server::start(model, Config::default(), || Echo)
    }

    /// The server's counters.
    pub fn stats(&self) -> Stats {
        match self.running.as_ref().expect("server running") {
            Running::Reactor(server) => server.stats(),
            Running::Threads(handle) => handle.stats(),
        }
    }

    /// The thread server's handle (panics for the reactor).
    pub fn handle(&self) -> &ThreadHandle {
        match self.running.as_ref() {
            Some(Running::Threads(handle)) => handle,
            _ => panic!("not a running thread server"),
        }
    }

    /// Connects a blocking client with a generous read timeout.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// Waits until the counters satisfy `cond`; panics after five seconds.
    #[track_caller]
    pub fn wait_for_stats(&self, what: &str, cond: impl Fn(&Stats) -> bool) -> Stats {
        common::wait_until(what, || Some(self.stats()).filter(|s| cond(s)))
    }

    /// Asks the server to shut down with `grace`, without waiting.
    pub fn begin_shutdown(&self, grace: Duration) {
        match self.running.as_ref().expect("server running") {
            Running::Reactor(server) => server.handle.shutdown(grace),
            Running::Threads(handle) => handle.shutdown(grace),
        }
    }

    /// Shuts down with `grace` and waits until the server has stopped.
    pub fn stop(mut self, grace: Duration) {
        match self.running.take().expect("server running") {
            Running::Reactor(server) => server.stop(grace),
            Running::Threads(handle) => {
                handle.shutdown(grace);
                handle.wait();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(Running::Threads(handle)) = self.running.take() {
            handle.shutdown(Duration::ZERO);
            handle.wait();
        } // a `TestServer` shuts its loop down when dropped
    }
}
