//! Request bodies that reach the application in pieces as they arrive:
//! [`RequestBody`], the reading end, and the pipe the connection feeds,
//! with backpressure: past [`PIPE_CAPACITY`] bytes unread, the connection
//! stops reading from the socket until the application takes some.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::BodySource;

/// Bytes of a body that may wait for the application before the connection
/// stops reading: four reads' worth at the default read size.
pub(crate) const PIPE_CAPACITY: usize = 256 * 1024;

/// What the connection and the reader share.
pub(crate) struct Pipe {
    /// The pieces and how the body ends, under a lock.
    state: Mutex<PipeState>,
    /// Signalled when a piece or the end arrives (for blocking readers).
    arrived: Condvar,
    /// A [`RequestBody`] was handed out: no other will be.
    taken: AtomicBool,
    /// Wakes the connection when room frees up or the reader goes.
    conn: Waker,
}

/// The pipe's state under its lock.
struct PipeState {
    /// Pieces arrived and not yet read.
    pieces: VecDeque<Bytes>,
    /// Their total length.
    queued: usize,
    /// How the body ended, once it has: whole, or with this error.
    end: Option<Result<(), io::ErrorKind>>,
    /// The reader was dropped: pieces are dropped on arrival.
    reader_gone: bool,
    /// A polling reader's waker, left by a `Pending` poll.
    reader: Option<Waker>,
}

impl Pipe {
    /// An empty pipe whose connection is woken through `conn`.
    pub(crate) fn new(conn: Waker) -> Arc<Self> {
        Arc::new(Pipe {
            state: Mutex::new(PipeState {
                pieces: VecDeque::new(),
                queued: 0,
                end: None,
                reader_gone: false,
                reader: None,
            }),
            arrived: Condvar::new(),
            taken: AtomicBool::new(false),
            conn,
        })
    }

    /// The state, whatever a panicking holder left.
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reading end, the first time only.
    pub(crate) fn reader(self: &Arc<Self>) -> Option<RequestBody> {
        (!self.taken.swap(true, Ordering::SeqCst)).then(|| RequestBody {
            pipe: Arc::clone(self),
            done: false,
        })
    }

    /// Adds a piece that arrived (dropped if the reader is gone).
    pub(crate) fn push(&self, piece: Bytes) {
        let mut state = self.lock();
        if state.reader_gone || piece.is_empty() {
            return;
        }
        state.queued += piece.len();
        state.pieces.push_back(piece);
        self.notify(state);
    }

    /// Ends the body: whole, or cut short by `error`.
    pub(crate) fn finish(&self, result: Result<(), io::ErrorKind>) {
        let mut state = self.lock();
        state.end.get_or_insert(result);
        self.notify(state);
    }

    /// True while more pieces may be fed: the reader keeps up, or is gone.
    pub(crate) fn has_room(&self) -> bool {
        let state = self.lock();
        state.reader_gone || state.queued < PIPE_CAPACITY
    }

    /// Wakes the reader, blocking or polling, after a change.
    fn notify(&self, mut state: MutexGuard<'_, PipeState>) {
        let waker = state.reader.take();
        drop(state);
        self.arrived.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The next piece or the end, without waiting; wakes the connection if
    /// taking it made room.
    fn take(&self, state: &mut PipeState) -> Option<Option<io::Result<Bytes>>> {
        if let Some(piece) = state.pieces.pop_front() {
            let was_full = state.queued >= PIPE_CAPACITY;
            state.queued -= piece.len();
            if was_full && state.queued < PIPE_CAPACITY {
                self.conn.wake_by_ref();
            }
            return Some(Some(Ok(piece)));
        }
        match state.end {
            Some(Ok(())) => Some(None),
            Some(Err(kind)) => Some(Some(Err(io::Error::new(
                kind,
                "the request body did not arrive whole",
            )))),
            None => None,
        }
    }
}

/// The connection's side of a pipe: ends the body with an error if the
/// connection goes before the body has arrived.
pub(crate) struct Upload(pub(crate) Arc<Pipe>);

impl Drop for Upload {
    fn drop(&mut self) {
        self.0.finish(Err(io::ErrorKind::UnexpectedEof));
    }
}

/// A request body arriving in pieces: given by
/// [`Request::body_reader`](super::Request::body_reader) for a request
/// whose body is larger than
/// [`HttpConfig::stream_bodies_over`](super::HttpConfig::stream_bodies_over).
///
/// Pieces come in the order they arrived, the chunked coding decoded. At
/// most 256 KiB wait unread: past that the connection stops reading from
/// the socket, and TCP slows the client down, until the application takes
/// some (backpressure). Read it from another thread with the blocking
/// [`Iterator`], or on the loop with [`poll_piece`](RequestBody::poll_piece);
/// it is also a [`BodySource`], so an upload can be streamed straight back.
///
/// Dropping it before the end drops the rest of the body as it arrives;
/// the connection goes on with the next request.
///
/// # Examples
///
/// Counting an upload's bytes on another thread:
///
/// ```
/// use evloop::http::{Request, Responder, Response};
///
/// fn count(req: Request, responder: Responder) {
///     let Some(body) = req.body_reader() else {
///         return responder.send(Response::text(format!("{} bytes", req.body().len())));
///     };
///     std::thread::spawn(move || {
///         let mut total = 0;
///         for piece in body {
///             match piece {
///                 Ok(piece) => total += piece.len(),
///                 Err(_) => return, // the client went away
///             }
///         }
///         responder.send(Response::text(format!("{total} bytes")));
///     });
/// }
/// # let _ = count;
/// ```
pub struct RequestBody {
    /// Shared with the connection.
    pipe: Arc<Pipe>,
    /// The end or an error was given: nothing more comes.
    done: bool,
}

impl RequestBody {
    /// What the pipe has next, the end or an error only once.
    fn next_now(&mut self, state: &mut PipeState) -> Option<Option<io::Result<Bytes>>> {
        if self.done {
            return Some(None);
        }
        let next = self.pipe.take(state)?;
        self.done = !matches!(next, Some(Ok(_)));
        Some(next)
    }

    /// The next piece without blocking: `Ready(Some(Ok(piece)))`,
    /// `Ready(None)` at the end, `Ready(Some(Err(_)))` if the body was cut
    /// short (the connection closed), or `Pending` until `cx`'s waker is
    /// woken.
    pub fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let pipe = Arc::clone(&self.pipe);
        let mut state = pipe.lock();
        match self.next_now(&mut state) {
            Some(next) => Poll::Ready(next),
            None => {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Blocks until the next piece; for threads other than a loop's. After
/// the end, or an error, it yields `None`.
impl Iterator for RequestBody {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<io::Result<Bytes>> {
        let pipe = Arc::clone(&self.pipe);
        let mut state = pipe.lock();
        loop {
            if let Some(next) = self.next_now(&mut state) {
                return next;
            }
            state = pipe.arrived.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The body as a response body: a body cut short ends the stream early.
impl BodySource for RequestBody {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.poll_piece(cx).map(|next| next.and_then(Result::ok))
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let mut state = self.pipe.lock();
        state.reader_gone = true;
        state.pieces.clear();
        state.queued = 0;
        drop(state);
        self.pipe.conn.wake_by_ref();
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pipe.lock();
        f.debug_struct("RequestBody")
            .field("queued", &state.queued)
            .field("ended", &state.end.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_come_in_order_then_the_end_or_the_error() {
        let pipe = Pipe::new(Waker::noop().clone());
        let mut reader = pipe.reader().unwrap();
        assert!(pipe.reader().is_none(), "a second reader");
        pipe.push(Bytes::from("ab"));
        pipe.push(Bytes::from("cd"));
        pipe.finish(Ok(()));
        let got: Vec<Bytes> = (&mut reader).map(Result::unwrap).collect();
        assert_eq!(got, ["ab", "cd"]);
        let cut = Pipe::new(Waker::noop().clone());
        let mut reader = cut.reader().unwrap();
        drop(Upload(Arc::clone(&cut)));
        let err = reader.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(reader.next().is_none(), "an error is the last item");
    }

    #[test]
    fn a_full_pipe_has_no_room_until_read_or_dropped() {
        let pipe = Pipe::new(Waker::noop().clone());
        let mut reader = pipe.reader().unwrap();
        pipe.push(Bytes::from(vec![0; PIPE_CAPACITY]));
        assert!(!pipe.has_room());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(reader.poll_piece(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert!(pipe.has_room());
        pipe.push(Bytes::from(vec![0; PIPE_CAPACITY]));
        drop(reader);
        assert!(pipe.has_room());
    }
}
