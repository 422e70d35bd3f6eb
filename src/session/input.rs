//! The input side of a [`Session`]: offering input to the handler while it
//! consumes, the end of stream, and discarding while lingering.

use log::{debug, trace};

use super::machine::Session;
use super::phase::Phase;
use super::transport::{Env, Read, Transport};
use crate::{CloseReason, Handler};

impl<H: Handler> Session<H> {
    /// Offers the input to `on_data` for as long as the handler consumes
    /// some and may go on, then enforces the input limit.
    ///
    /// Output of consecutive calls is written together, once the loop ends
    /// or output passes the high watermark. A handler that declines the
    /// input while its output waits is offered it once more if that output
    /// then goes out at once; otherwise when the socket has taken it
    /// ([`writable`](Self::writable)).
    pub(super) fn deliver(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        let mut retried = false;
        loop {
            let before = self.input.len();
            if !self.invoke(env, io, |h, conn, input| h.on_data(conn, input)) {
                return;
            }
            self.requests(env, io);
            if self.input.len() > env.config.max_input && self.phase.takes_input() {
                debug!(
                    "{}: {} unconsumed input bytes, over the limit",
                    self.state.id,
                    self.input.len()
                );
                self.state.close_with(CloseReason::InputLimit);
                return self.apply(env, io);
            }
            let progressed = self.input.len() < before;
            if self.input.is_empty() || !self.may_deliver() {
                break;
            }
            if progressed {
                retried = false;
                if self.state.out.len() <= env.config.high_watermark {
                    continue;
                }
            } else if retried {
                break;
            }
            let waiting = self.has_output();
            self.progress(env, io);
            if !waiting || self.has_output() || !self.may_deliver() {
                break;
            }
            retried = !progressed;
        }
        self.progress(env, io);
        if self.phase.is_read_closed() {
            self.end_of_input(env, io);
        }
    }

    /// The peer's end of stream was read; `truncated` if it came without
    /// TLS's `close_notify`.
    pub(super) fn peer_closed(&mut self, env: &mut Env<'_>, io: &mut impl Transport, truncated: bool) {
        if truncated {
            debug!("{}: end of stream without TLS close_notify", self.state.id);
        } else {
            trace!("{}: end of stream", self.state.id);
        }
        self.phase = Phase::ReadClosed { truncated };
        self.end_of_input(env, io);
    }

    /// After the peer's end of stream: once the handler has been offered all
    /// it can take (it is not paused, and consumed nothing more with its
    /// output flushed), `on_eof` sees what is left; what it still leaves is discarded and
    /// counted, and the connection closes once output is flushed.
    pub(super) fn end_of_input(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        let Phase::ReadClosed { truncated } = self.phase else {
            return;
        };
        if !self.may_deliver() {
            return;
        }
        if !self.input.is_empty() && self.has_output() {
            // The handler may be waiting for its output to go: offer the
            // input again once it has ([`writable`](Self::writable)).
            return;
        }
        if std::mem::take(&mut self.deferred.redeliver) && !self.input.is_empty() {
            // Output drained since the handler last declined the input.
            return self.deliver(env, io);
        }
        self.call(env, io, |h, conn, input| h.on_eof(conn, input));
        if !self.input.is_empty() && !self.is_finished() {
            let n = self.input.len();
            env.counters.input_discarded += n as u64;
            debug!(
                "{}: {n} input bytes left unconsumed at end of stream, discarded",
                self.state.id
            );
            self.input.clear();
        }
        let reason = if truncated {
            CloseReason::Truncated
        } else {
            CloseReason::PeerClosed
        };
        self.state.close_with(reason);
        self.apply(env, io);
    }

    /// True while input may be handed to the handler.
    pub(super) fn may_deliver(&self) -> bool {
        self.phase.takes_input() && !self.backpressured && !self.state.read_paused && self.state.end.is_none()
    }

    /// Reads once and drops what a lingering peer sends; finishes at its end
    /// of stream, on an error, or when the allowance is spent.
    pub(super) fn discard(&mut self, env: &mut Env<'_>, io: &mut impl Transport) -> Read {
        self.borrow_scratch(env);
        let read = io.read(&mut self.input, env.config.read_size);
        io.refresh(&mut env.now);
        self.input.clear();
        self.return_scratch(env);
        let Phase::Lingering { reason, left, .. } = &mut self.phase else {
            return Read::WouldBlock;
        };
        match read {
            Ok(read @ (Read::Data { n, .. } | Read::Again { n, .. })) => {
                env.counters.reads += 1;
                *left = left.saturating_sub(n);
                if *left == 0 {
                    let reason = reason.clone();
                    self.finish(env, reason);
                }
                read
            }
            Ok(Read::WouldBlock) => Read::WouldBlock,
            Ok(Read::Eof | Read::Truncated) | Err(_) => {
                let reason = reason.clone();
                self.finish(env, reason);
                Read::Eof
            }
        }
    }

    /// Reads into the lent buffer when this connection holds no input.
    pub(super) fn borrow_scratch(&mut self, env: &mut Env<'_>) {
        if self.input.is_empty() {
            std::mem::swap(&mut self.input, env.scratch);
        }
    }

    /// Hands the buffer back if the handler consumed everything: a waiting
    /// connection then holds no read buffer at all.
    pub(super) fn return_scratch(&mut self, env: &mut Env<'_>) {
        if self.input.is_empty() && self.input.capacity() > env.scratch.capacity() {
            std::mem::swap(&mut self.input, env.scratch);
        }
    }
}
