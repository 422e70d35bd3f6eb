//! Starting a [`Server`]: its listeners, then its event loops (each on a
//! thread of its own, with the acceptor thread under round-robin or
//! least-connections), or the thread-per-connection baseline.

use std::io;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::acceptor::AcceptorThread;
use super::balance::Balance;
use super::bind;
use super::builder::Server;
use super::handle::ServerHandle;
use super::pin::{Pin, pin_current_thread};
use crate::baseline::ThreadServer;
use crate::limit::ConnLimit;
use crate::listener::Listener;
use crate::reactor::{Door, Episodes, Parts};
use crate::{Bind, Config, EventLoop, Handler, Remote};

impl Server {
    /// Starts the thread-per-connection baseline.
    pub(super) fn start_threads<F, H>(self, factory: F) -> io::Result<ServerHandle>
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler,
    {
        if self.pin != Pin::Off {
            let msg =
                "pinning applies to event loops; under Model::Threads each connection has its own thread";
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        let listener = bind::listen_one(self.inherited.as_deref(), &self.bind)?;
        let mut server =
            ThreadServer::from_listener(listener, self.config, factory)?.stack_size(self.stack_size);
        if self.inherited.is_some() {
            server = server.listener_shared();
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls {
            server = server.tls(tls);
        }
        if self.max_connections != usize::MAX {
            server = server.max_connections(self.max_connections);
        }
        Ok(ServerHandle::threads(server.start()?))
    }

    /// Starts the event loops.
    pub(super) fn start_loops<F, H>(self, factory: F) -> io::Result<ServerHandle>
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler,
    {
        let cpus = self.pin.cpus(self.threads)?;
        let listeners = self.listeners()?;
        let local = listeners[0].local()?;
        let mut polls = Vec::with_capacity(self.threads);
        let mut doors = Vec::with_capacity(self.threads);
        for index in 0..self.threads {
            let (poll, door, commands) = Parts::poll_and_door(index as u32)?;
            polls.push((poll, commands));
            doors.push(door);
        }
        let doors: Arc<[Arc<Door>]> = doors.into();
        let remote = Remote::new(Arc::clone(&doors));
        let limit = Arc::new(ConnLimit::new(self.max_connections));
        // One count of accept back-off episodes for every loop's listener,
        // so the server logs each episode once rather than once per loop.
        let episodes = Arc::new(Episodes::default());
        let (mut own_listeners, acceptor) = match self.balance {
            Balance::ReusePort => (listeners.into_iter().map(Some).collect(), None),
            balance => {
                let listener = listeners.into_iter().next().expect("one listener");
                let acceptor =
                    AcceptorThread::start(listener, Arc::clone(&doors), balance, Arc::clone(&limit))?;
                (
                    (0..self.threads).map(|_| None).collect::<Vec<_>>(),
                    Some(acceptor),
                )
            }
        };
        let factory = Arc::new(factory);
        let mut threads = Vec::with_capacity(self.threads);
        for (index, (poll, commands)) in polls.into_iter().enumerate() {
            let parts = Parts {
                poll,
                door: Arc::clone(&doors[index]),
                commands,
                remote: remote.clone(),
                limit: Arc::clone(&limit),
                listener: own_listeners[index].take(),
                episodes: Arc::clone(&episodes),
            };
            #[cfg(feature = "tls")]
            let tls = self.tls.clone();
            #[cfg(not(feature = "tls"))]
            let tls = ();
            let cpu = cpus.as_ref().map(|cpus| cpus[index]);
            match spawn_loop(index, cpu, parts, self.config.clone(), tls, Arc::clone(&factory)) {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    // Stop what already runs, so a failed start leaves nothing behind.
                    let partial = ServerHandle::new(local, doors, remote, acceptor, threads);
                    partial.shutdown(std::time::Duration::ZERO);
                    let _ = partial.join();
                    return Err(e);
                }
            }
        }
        Ok(ServerHandle::new(local, doors, remote, acceptor, threads))
    }

    /// The listeners: one per loop under `ReusePort`, else one. Loops on
    /// a Unix socket, or on an inherited one, share it (each holds a
    /// duplicate of its fd).
    fn listeners(&self) -> io::Result<Vec<Listener>> {
        if let Some(listener) = &self.inherited {
            return bind::share(listener, self.balance, self.threads, &self.config);
        }
        let reuse = self.balance == Balance::ReusePort && self.threads > 1;
        let first = bind::listen_first(&self.bind, reuse)?;
        let mut all = vec![first];
        if reuse {
            for _ in 1..self.threads {
                let next = match &all[0] {
                    Listener::Tcp(l) => Listener::bind(&Bind::Tcp(l.local_addr()?), true)?,
                    unix => unix.try_clone()?,
                };
                all.push(next);
            }
        }
        if self.balance != Balance::ReusePort {
            // The acceptor thread's listener; a loop sizes its own listener's
            // buffers, since accepted sockets inherit them from the handshake.
            self.config.apply_buffer_sizes(socket2::SockRef::from(&all[0]));
        }
        Ok(all)
    }
}

/// A server's TLS settings, if it serves TLS.
#[cfg(feature = "tls")]
type Tls = Option<crate::tls::TlsAcceptor>;
/// Without the `tls` feature, nothing.
#[cfg(not(feature = "tls"))]
type Tls = ();

/// Starts loop `index` on a thread of its own, pinned to `cpu` if given; the
/// loop (and so every handler) is created on that thread, so handlers need
/// not be `Send`.
fn spawn_loop<F, H>(
    index: usize,
    cpu: Option<usize>,
    parts: Parts,
    config: Config,
    tls: Tls,
    factory: Arc<F>,
) -> io::Result<JoinHandle<io::Result<()>>>
where
    F: Fn() -> H + Send + Sync + 'static,
    H: Handler,
{
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("evloop-{index}"))
        .spawn(move || {
            let pinned = cpu.map_or(Ok(()), pin_current_thread);
            let built = pinned.and_then(|()| EventLoop::from_parts(parts, config, move || factory()));
            #[cfg(feature = "tls")]
            let built = built.map(|event_loop| match tls {
                Some(tls) => event_loop.tls(tls),
                None => event_loop,
            });
            #[cfg(not(feature = "tls"))]
            let () = tls;
            match built {
                Ok(event_loop) => {
                    let _ = ready_tx.send(Ok(()));
                    event_loop.run()
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    Err(e)
                }
            }
        })?;
    ready_rx
        .recv()
        .map_err(|_| io::Error::other("loop thread died while starting"))??;
    Ok(thread)
}
