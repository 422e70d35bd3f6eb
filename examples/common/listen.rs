//! Where a server example's listening socket comes from, and the restarts
//! it takes part in:
//!
//! * systemd's socket activation, when `LISTEN_FDS` is set
//!   (`systemd-socket-activate -l 127.0.0.1:7000 target/release/examples/echo_server`);
//! * with `--handover PATH`, a running instance that offers its socket on
//!   `PATH`: this one takes it over, serves it, and the old one drains and
//!   exits; none running, this one binds `--addr` (or `--unix PATH`)
//!   itself. Either way it then offers the socket on `PATH` to the next
//!   instance. A Unix socket's file stays through the handovers, removed
//!   by the last instance;
//! * otherwise a bind of `--addr` (or `--unix PATH`), done by the server.
//!
//! Once serving, a service manager that asked (`NOTIFY_SOCKET`, systemd's
//! `Type=notify`) is told `READY=1` and this process's pid.
//!
//! Included by each server example with `#[path = "common/listen.rs"] mod listen;`.

#![allow(dead_code)] // each example uses a different subset

use std::path::{Path, PathBuf};
use std::time::Duration;

use evloop::{Bind, Handover, Listeners, Server, ServerHandle, Takeover};

/// How long an instance that hands over gives its connections to finish.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// The socket an example serves, and where it came from.
pub struct Sockets {
    /// Inherited or bound for a handover; `None`: `Server::new` binds.
    listeners: Option<Listeners>,
    /// The old instance's side of a handover in progress.
    takeover: Option<Takeover>,
    /// `--handover PATH`, where the next instance is offered the socket.
    handover: Option<PathBuf>,
    /// `--addr` or `--unix`.
    bind: Bind,
}

impl Sockets {
    /// Finds the socket to serve: see the module docs.
    pub fn open(bind: Bind, handover: Option<&Path>) -> Result<Sockets, String> {
        let mut sockets = Sockets {
            listeners: None,
            takeover: None,
            handover: handover.map(Path::to_path_buf),
            bind,
        };
        let systemd = Listeners::from_systemd().map_err(|e| format!("cannot take systemd's sockets: {e}"))?;
        if let Some(listeners) = systemd {
            log::info!("serving the socket systemd passed ({} of them)", listeners.len());
            sockets.listeners = Some(listeners);
        } else if let Some(path) = handover {
            match Listeners::take_over(path) {
                Ok(takeover) => {
                    log::info!("taking over the socket offered on {}", path.display());
                    sockets.takeover = Some(takeover);
                }
                Err(e) => {
                    let bind = &sockets.bind;
                    log::info!("{e}; binding {bind}");
                    let bound = match bind {
                        Bind::Tcp(addr) => Listeners::bind(*addr),
                        Bind::Unix(unix) => Listeners::bind_unix(unix.clone()),
                    };
                    sockets.listeners = Some(bound.map_err(|e| format!("cannot listen on {bind}: {e}"))?);
                }
            }
        }
        Ok(sockets)
    }

    /// A server on the socket found, or on `--addr`.
    pub fn server(&self) -> Result<Server, String> {
        let listeners = match (&self.takeover, &self.listeners) {
            (Some(takeover), _) => takeover.listeners(),
            (None, Some(listeners)) => listeners,
            (None, None) => return Ok(Server::bind(self.bind.clone())),
        };
        listeners
            .server(0)
            .map_err(|e| format!("cannot serve the inherited socket: {e}"))
    }

    /// Called once `servers` serve: ends a takeover (the old instance
    /// drains), offers the socket on `--handover PATH`, and tells a service
    /// manager that the service is ready. Keep what it returns until the
    /// servers have stopped.
    pub fn serving(mut self, servers: &[ServerHandle]) -> Result<Option<Handover>, String> {
        if let Some(takeover) = self.takeover.take() {
            let listeners = (takeover.serving()).map_err(|e| format!("cannot finish the takeover: {e}"))?;
            self.listeners = Some(listeners);
        }
        let notice = format!("READY=1\nMAINPID={}", std::process::id());
        if let Err(e) = evloop::sys::notify(&notice) {
            log::warn!("cannot tell the service manager we are ready: {e}");
        }
        let (Some(path), Some(listeners)) = (&self.handover, &self.listeners) else {
            return Ok(None);
        };
        let offer = listeners.hand_over(path, servers.to_vec(), DRAIN_GRACE);
        offer
            .map(Some)
            .map_err(|e| format!("cannot offer a handover on {}: {e}", path.display()))
    }
}
