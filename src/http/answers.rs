//! [`Answers`]: the answers a deferring application owes one connection,
//! sent in request order as they become ready, and the body streaming at
//! the head of the line, pulled as the output drains.
//!
//! Each request handed to the application gets a [`Slot`] at the back of
//! the queue. When anything may have changed — a wake, a timer, output
//! drained, new requests — [`Answers::send_ready`] starts the loop tasks
//! that were asked for, then sends from the front: every ready answer in
//! turn, and a streamed body until it ends, waits for its source, or fills
//! the output to the high watermark. An answer ready behind one that is not
//! waits for it.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use log::error;

use super::batch::{Batch, Meta, connection_header};
use super::date::HttpDate;
use super::responder::{LoopTask, Reply, Slot, SlotState};
use super::wake::{ConnWaker, MAX_POLL, MIN_POLL};
use super::{BodySource, Responder, Response, Version};
use crate::{Conn, TimerId};

/// Most requests of one connection whose answers are awaited at once;
/// pipelined requests past it wait in the input, reading paused.
pub(crate) const MAX_AWAITED: usize = 32;

/// One request whose answer is awaited.
struct Awaited {
    /// Where its answer arrives.
    slot: Arc<Slot>,
    /// What the answer needs to know of the request.
    meta: Meta,
}

/// A body streaming out.
struct Streaming {
    /// Where the pieces come from.
    source: Box<dyn BodySource>,
    /// Pieces go out as chunks (HTTP/1.1); else the close ends the body.
    chunked: bool,
    /// The connection stays open once the body has ended.
    keep_alive: bool,
}

/// What became of a streamed body after a round of pulling.
enum Pump {
    /// It ended; the last chunk is written.
    Ended,
    /// It waits for its source or for the output to drain.
    Waiting,
    /// Its source panicked: the body cannot be finished.
    Failed,
}

/// The answers one connection awaits, in request order.
pub(crate) struct Answers {
    /// Wakes this connection when an answer or a body piece is ready.
    waker: Arc<ConnWaker>,
    /// `waker` as the standard type handed to responders and sources.
    std_waker: Waker,
    /// Requests whose answers have not been sent, oldest first.
    queue: VecDeque<Awaited>,
    /// The body streaming at the head of the line, if any.
    stream: Option<Streaming>,
    /// Loop tasks waiting for their timers ([`Responder::after`]).
    tasks: Vec<(TimerId, Arc<Slot>, LoopTask)>,
    /// The look-again timer where wakes cannot reach ([`ConnWaker::must_poll`]),
    /// with its interval.
    poll: Option<(TimerId, Duration)>,
    /// The last interval of the look-again timer.
    poll_interval: Duration,
    /// A request asked to close: none after it is taken.
    pub(crate) last: bool,
}

impl Answers {
    /// Answers for the connection `conn`.
    pub(crate) fn new(conn: &Conn<'_>) -> Self {
        let waker = ConnWaker::new(conn.remote().cloned(), conn.id());
        Answers {
            std_waker: Waker::from(Arc::clone(&waker)),
            waker,
            queue: VecDeque::new(),
            stream: None,
            tasks: Vec::new(),
            poll: None,
            poll_interval: MIN_POLL,
            last: false,
        }
    }

    /// A waker for this connection, for pipes of bodies in pieces.
    pub(crate) fn waker(&self) -> Waker {
        self.std_waker.clone()
    }

    /// True when nothing is awaited or streaming.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.stream.is_none()
    }

    /// True when no more requests should be handed to the application
    /// until some answers have gone.
    pub(crate) fn is_full(&self) -> bool {
        self.last || self.queue.len() >= MAX_AWAITED
    }

    /// Queues a request described by `meta` and returns its responder.
    pub(crate) fn responder(&mut self, meta: Meta) -> Responder {
        let slot = Arc::new(Slot::default());
        self.queue.push_back(Awaited {
            slot: Arc::clone(&slot),
            meta,
        });
        self.last |= !meta.keep_alive;
        Responder::new(slot, self.std_waker.clone())
    }

    /// Queues the refusal of a request that came behind awaited answers:
    /// `status`, then the close.
    pub(crate) fn refuse(&mut self, status: u16) {
        let slot = Arc::new(Slot::default());
        let reply = Reply {
            response: Response::error(status).header("Connection", "close"),
            stream: None,
        };
        slot.set(SlotState::Ready(reply));
        self.queue.push_back(Awaited {
            slot,
            meta: Meta {
                head_only: false,
                keep_alive: false,
                version: Version::Http11,
            },
        });
        self.last = true;
    }

    /// Makes the last request awaited the last of the connection: its
    /// answer says `Connection: close`, and the connection closes after it
    /// (after a body already streaming, if none is awaited).
    pub(crate) fn close_after_last(&mut self) {
        match self.queue.back_mut() {
            Some(awaited) => awaited.meta.keep_alive = false,
            None => {
                if let Some(stream) = &mut self.stream {
                    stream.keep_alive = false;
                }
            }
        }
        self.last = true;
    }

    /// Sends, in order, every answer that is ready, and as much of a
    /// streamed body as the output takes up to `output_limit`. Returns
    /// false when the connection must close once its output is flushed.
    pub(crate) fn send_ready(&mut self, conn: &mut Conn<'_>, batch: &mut Batch, output_limit: usize) -> bool {
        self.waker.looking();
        self.start_tasks(conn);
        let date = HttpDate::now();
        loop {
            if let Some(stream) = &mut self.stream {
                match pump(stream, conn, batch, output_limit, &self.std_waker) {
                    Pump::Waiting => return true,
                    Pump::Failed => {
                        conn.abort();
                        return false;
                    }
                    Pump::Ended => {
                        let keep_alive = stream.keep_alive;
                        self.stream = None;
                        if !keep_alive {
                            return false;
                        }
                    }
                }
            }
            let Some(front) = self.queue.front() else {
                return true;
            };
            let Some(state) = front.slot.take_settled() else {
                return true;
            };
            let meta = front.meta;
            self.queue.pop_front();
            let open = match state {
                SlotState::Ready(reply) => self.send(conn, batch, meta, reply, &date),
                _ => {
                    error!("{}: a responder was dropped without answering", conn.id());
                    batch.reject(conn, 500);
                    false
                }
            };
            if !open {
                return false;
            }
        }
    }

    /// Runs the loop task of timer `id`, if it is one; looks again if it is
    /// the look-again timer. Returns whether the timer was ours.
    pub(crate) fn timer(&mut self, conn: &mut Conn<'_>, id: TimerId) -> bool {
        if self.poll.is_some_and(|(poll, _)| poll == id) {
            self.poll = None;
            return true;
        }
        let Some(at) = self.tasks.iter().position(|(t, ..)| *t == id) else {
            return false;
        };
        let (_, slot, task) = self.tasks.swap_remove(at);
        let responder = Responder::new(slot, self.std_waker.clone());
        if panic::catch_unwind(AssertUnwindSafe(|| task(responder))).is_err() {
            // The responder went down with it: its request gets a 500.
            error!("{}: an HTTP loop task panicked", conn.id());
        }
        true
    }

    /// Where wakes cannot reach the connection, keeps a timer to look again
    /// while something is awaited: every millisecond after progress, backing
    /// off to [`MAX_POLL`].
    pub(crate) fn keep_polling(&mut self, conn: &mut Conn<'_>, progressed: bool) {
        if !self.waker.must_poll() {
            return;
        }
        self.poll_interval = if progressed {
            MIN_POLL
        } else {
            (self.poll_interval * 2).min(MAX_POLL)
        };
        let awaiting = !self.is_idle() || !self.tasks.is_empty();
        match self.poll {
            None if awaiting => self.poll = Some((conn.set_timer(self.poll_interval), self.poll_interval)),
            Some((timer, _)) if !awaiting => {
                conn.cancel_timer(timer);
                self.poll = None;
            }
            _ => {}
        }
    }

    /// Sets a timer for every loop task asked for since the last look.
    fn start_tasks(&mut self, conn: &mut Conn<'_>) {
        for awaited in &self.queue {
            if let Some((delay, task)) = awaited.slot.take_task() {
                let timer = conn.set_timer(delay);
                self.tasks.push((timer, Arc::clone(&awaited.slot), task));
            }
        }
    }

    /// Sends one answer; returns whether the connection stays open.
    fn send(
        &mut self,
        conn: &mut Conn<'_>,
        batch: &mut Batch,
        meta: Meta,
        reply: Reply,
        date: &HttpDate,
    ) -> bool {
        let response = reply.response;
        if response.status() < 200 {
            error!(
                "{}: the application answered with {}, which is not a final status",
                conn.id(),
                response.status()
            );
            batch.reject(conn, 500);
            return false;
        }
        let Some(source) = reply.stream else {
            let (connection, keep_alive) = connection_header(meta, response.wants_close());
            batch.push(conn, &response, meta.head_only, connection, date);
            return keep_alive;
        };
        let chunked = meta.version == Version::Http11;
        let body_follows = !meta.head_only && !response.has_no_body();
        // Without chunks, only the close can end the body.
        let (connection, keep_alive) =
            connection_header(meta, response.wants_close() || body_follows && !chunked);
        response.encode_streamed(&mut batch.buf, chunked, connection, date);
        if body_follows {
            self.stream = Some(Streaming {
                source,
                chunked,
                keep_alive,
            });
            return true;
        }
        keep_alive
    }
}

/// Pulls pieces of `stream` into the output while it holds no more than
/// `output_limit`.
fn pump(
    stream: &mut Streaming,
    conn: &mut Conn<'_>,
    batch: &mut Batch,
    output_limit: usize,
    waker: &Waker,
) -> Pump {
    let mut cx = Context::from_waker(waker);
    while conn.pending_output() + batch.len() <= output_limit {
        match panic::catch_unwind(AssertUnwindSafe(|| stream.source.poll_next(&mut cx))) {
            Ok(Poll::Ready(Some(piece))) if piece.is_empty() => {}
            Ok(Poll::Ready(Some(piece))) => batch.push_piece(conn, piece, stream.chunked),
            Ok(Poll::Ready(None)) => {
                if stream.chunked {
                    batch.push_last_chunk();
                }
                return Pump::Ended;
            }
            Ok(Poll::Pending) => return Pump::Waiting,
            Err(_) => {
                error!("{}: a streamed body's source panicked", conn.id());
                return Pump::Failed;
            }
        }
    }
    Pump::Waiting
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answers")
            .field("awaited", &self.queue.len())
            .field("streaming", &self.stream.is_some())
            .field("tasks", &self.tasks.len())
            .finish()
    }
}
