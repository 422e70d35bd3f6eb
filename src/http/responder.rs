//! [`Responder`]: the answer to one request, given now or later, from the
//! loop or from any thread, whole or as a stream.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use super::{BodySource, Response};

/// A task run on the connection's loop when its timer fires.
pub(crate) type LoopTask = Box<dyn FnOnce(Responder) + Send>;

/// The answer a [`Responder`] gave.
pub(crate) struct Reply {
    /// The head, and the whole body unless `stream` is set.
    pub(crate) response: Response,
    /// A body of unknown length, streamed after the head.
    pub(crate) stream: Option<Box<dyn BodySource>>,
}

/// Where one request's answer is: shared by its [`Responder`] and the
/// connection's handler.
#[derive(Default)]
pub(crate) struct Slot {
    /// The state, under a lock: the responder may be on any thread.
    state: Mutex<SlotState>,
}

/// What became of a request's answer.
#[derive(Default)]
pub(crate) enum SlotState {
    /// Not given yet.
    #[default]
    Waiting,
    /// Given; not yet taken by the handler.
    Ready(Reply),
    /// To be given by this task, run on the loop after this delay.
    After(Duration, LoopTask),
    /// The responder was dropped without answering.
    Abandoned,
}

impl Slot {
    /// The state, whatever a panicking holder left.
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a given answer, or the news that none will come, leaving
    /// `Waiting`; `None` while the answer is still to come.
    pub(crate) fn take_settled(&self) -> Option<SlotState> {
        let mut state = self.lock();
        match *state {
            SlotState::Ready(_) | SlotState::Abandoned => Some(std::mem::take(&mut *state)),
            _ => None,
        }
    }

    /// Takes a loop task asked for with [`Responder::after`], leaving
    /// `Waiting`.
    pub(crate) fn take_task(&self) -> Option<(Duration, LoopTask)> {
        let mut state = self.lock();
        match std::mem::take(&mut *state) {
            SlotState::After(delay, task) => Some((delay, task)),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Leaves `state` for the handler.
    pub(crate) fn set(&self, state: SlotState) {
        *self.lock() = state;
    }
}

/// The answer to one request of an application started with
/// [`HttpServer::start_deferred`](super::HttpServer::start_deferred):
/// give it now or later, from the loop or from any thread (it is `Send`).
///
/// # Behaviour
///
/// * Answers leave in request order: a pipelined request answered before
///   an earlier one waits for it.
/// * [`send`](Responder::send) answers with a whole response;
///   [`stream`](Responder::stream) with a head and a body of unknown length,
///   pulled as the client reads; [`after`](Responder::after) runs a task on
///   the connection's loop after a delay, which answers then.
/// * A responder dropped without answering answers 500 and closes the
///   connection, as a panicking application does.
/// * The connection's limits still hold while an answer is awaited: the
///   keep-alive timeout closes a connection on which nothing moves for that
///   long, and a server shutdown closes it after its grace period, unsent
///   answers with it. Answering a closed connection does nothing.
///
/// # Examples
///
/// An answer from another thread, after a slow call:
///
/// ```no_run
/// use std::time::Duration;
/// use evloop::http::{HttpServer, Response};
///
/// let server = HttpServer::new("127.0.0.1:3000".parse().unwrap()).start_deferred(|req, responder| {
///     if req.path() == "/slow" {
///         std::thread::spawn(move || {
///             std::thread::sleep(Duration::from_secs(1)); // a backend call
///             responder.send(Response::text("late"));
///         });
///     } else {
///         responder.send(Response::text("at once"));
///     }
/// })?;
/// # server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Responder {
    /// Where the answer goes.
    slot: Arc<Slot>,
    /// Tells the connection that its answer is there.
    waker: Waker,
    /// The answer was given (or handed to a task): dropping does nothing.
    answered: bool,
}

impl Responder {
    /// A responder for `slot`, waking the connection through `waker`.
    pub(crate) fn new(slot: Arc<Slot>, waker: Waker) -> Self {
        Responder {
            slot,
            waker,
            answered: false,
        }
    }

    /// Answers with `response`.
    pub fn send(self, response: Response) {
        self.settle(SlotState::Ready(Reply {
            response,
            stream: None,
        }));
    }

    /// Answers with `response`'s status and headers, then `body`, pulled
    /// piece by piece as the client reads (see [`BodySource`]);
    /// `response`'s own body is ignored.
    ///
    /// HTTP/1.1 clients get the body chunked (`Transfer-Encoding:
    /// chunked`), and the connection stays open after it; HTTP/1.0 clients
    /// get it ended by the close. A `HEAD` request, or a status without a
    /// body (1xx, 204, 304), gets the head alone and `body` is dropped.
    pub fn stream(self, response: Response, body: impl BodySource) {
        self.settle(SlotState::Ready(Reply {
            response,
            stream: Some(Box::new(body)),
        }));
    }

    /// Runs `task` on the connection's loop thread after `delay`, with this
    /// responder: a timer on the loop, for answers that only need to wait.
    /// The task answers (or defers again).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use evloop::http::{HttpServer, Response};
    ///
    /// HttpServer::new("127.0.0.1:3000".parse().unwrap()).start_deferred(|_req, responder| {
    ///     responder.after(Duration::from_millis(100), |responder| {
    ///         responder.send(Response::text("a tenth of a second later"));
    ///     });
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn after(self, delay: Duration, task: impl FnOnce(Responder) + Send + 'static) {
        self.settle(SlotState::After(delay, Box::new(task)));
    }

    /// Leaves `state` for the handler and wakes the connection.
    fn settle(mut self, state: SlotState) {
        self.answered = true;
        self.slot.set(state);
        self.waker.wake_by_ref();
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            self.slot.set(SlotState::Abandoned);
            self.waker.wake_by_ref();
        }
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}
