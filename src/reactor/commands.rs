//! What other threads and handlers ask of an [`EventLoop`]: the commands
//! sent through [`Remote`](crate::Remote) and [`LoopHandle`](super::LoopHandle),
//! carried out in the dispatch phase, and the shutdown and drain they start.

use log::{debug, trace, warn};
use mio::Token;

use super::event_loop::{EventLoop, live};
use super::handle::Command;
use super::token;
use crate::Handler;

impl<F, H> EventLoop<F, H>
where
    F: FnMut() -> H,
    H: Handler,
{
    /// Carries out every queued command.
    pub(super) fn run_commands(&mut self) {
        self.core.door().clear_wake();
        while let Ok(cmd) = self.commands.try_recv() {
            self.core.counters.commands += 1;
            self.run_command(cmd);
        }
        if self.shutdown_deadline.is_some() && !self.shutting_down {
            self.begin_shutdown();
        }
    }

    /// Carries out one command.
    fn run_command(&mut self, cmd: Command) {
        let (token, task): (Token, crate::reactor::handle::Task) = match cmd {
            Command::Shutdown(grace) => {
                let deadline = self.core.now + grace;
                self.shutdown_deadline = Some(self.shutdown_deadline.map_or(deadline, |d| d.min(deadline)));
                return;
            }
            Command::StopAccepting => return self.stop_accepting(),
            Command::Adopt(stream, peer, slot) => return self.adopt(stream, peer, slot),
            Command::Connect(addr, timeout) => {
                if let Err(e) = self.connect(addr, timeout) {
                    warn!("loop {}: cannot connect to {addr}: {e}", self.core.door().index);
                }
                return;
            }
            Command::ConnectUnix(addr, timeout) => {
                if let Err(e) = self.connect_unix(addr, timeout) {
                    warn!("loop {}: cannot connect: {e}", self.core.door().index);
                }
                return;
            }
            #[cfg(feature = "tls")]
            Command::ConnectTls(dial) => {
                let (addr, timeout) = (dial.addr, dial.timeout);
                if let Err(e) = self.connect_tls(addr, timeout, dial.config, dial.server_name) {
                    warn!("loop {}: cannot connect to {addr}: {e}", self.core.door().index);
                }
                return;
            }
            Command::Write(token, data) => (token, Box::new(move |conn| conn.write_bytes(data))),
            Command::Close(token) => (token, Box::new(|conn| conn.close())),
            Command::Run(token, task) => (token, task),
        };
        match live(&mut self.conns, token) {
            Some(conn) => conn.run_task(&mut self.core, task),
            None => trace!(
                "command for closed connection {} dropped",
                token::id(self.core.door().index, token)
            ),
        }
    }

    /// Stops accepting and asks every connection to flush and close.
    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.close(self.core.registry());
        }
        debug!(
            "loop {}: shutting down {} connection(s)",
            self.core.door().index,
            self.conns.len()
        );
        for (_, conn) in self.conns.iter_mut() {
            conn.shutdown(&mut self.core);
        }
    }

    /// Closes the listener, tells every open connection (`on_drain`) and
    /// serves them on until each closes: the loop ends with the last one
    /// (or at a later shutdown).
    fn stop_accepting(&mut self) {
        if std::mem::replace(&mut self.draining, true) {
            return;
        }
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.close(self.core.registry());
        }
        debug!(
            "loop {}: stopped accepting; draining {} connection(s)",
            self.core.door().index,
            self.conns.len()
        );
        for (_, conn) in self.conns.iter_mut() {
            conn.drain(&mut self.core);
        }
    }

    /// True once shutdown or a drain has begun and every connection is gone.
    pub(super) fn is_done(&self) -> bool {
        (self.shutting_down || self.draining) && self.conns.is_empty()
    }
}
