//! Bodies of unknown length that stream out: [`BodySource`], pulled by the
//! server as the client reads, and two ready-made sources: an iterator
//! ([`body_from_iter`]) and a channel fed by another thread
//! ([`body_channel`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

/// A response body produced piece by piece, pulled by the server.
///
/// The server asks for the next piece only while the connection's queued
/// output is below its high watermark
/// ([`Config::write_watermarks`](crate::Config::write_watermarks)), so a
/// slow client holds at most that much of the body in memory, however long
/// it is. The body goes out chunked to HTTP/1.1 clients and is ended by the
/// close for HTTP/1.0 ones.
///
/// `poll_next` is called on the loop thread: it must not block. When it has
/// nothing yet it returns [`Poll::Pending`] after keeping `cx.waker()`,
/// and wakes it (from any thread) once it has; it is then asked again.
/// This is the shape of `futures::Stream`, so an async stream adapts in a
/// few lines.
///
/// # Examples
///
/// A countdown, one line per piece:
///
/// ```
/// use std::task::{Context, Poll};
/// use bytes::Bytes;
/// use evloop::http::BodySource;
///
/// struct Countdown(u32);
///
/// impl BodySource for Countdown {
///     fn poll_next(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
///         if self.0 == 0 {
///             return Poll::Ready(None);
///         }
///         self.0 -= 1;
///         Poll::Ready(Some(Bytes::from(format!("{}\n", self.0))))
///     }
/// }
/// # let _ = Countdown(3);
/// ```
pub trait BodySource: Send + 'static {
    /// The next piece: `Ready(Some(bytes))` (empty pieces are skipped),
    /// `Ready(None)` at the end, or `Pending` until `cx.waker()` is woken.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>>;
}

/// A body made of an iterator's pieces, pulled one at a time as the client
/// reads: for bodies generated on the loop thread (each `next` must be
/// quick).
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
///
/// let lines = (0..1_000_000).map(|i| Bytes::from(format!("line {i}\n")));
/// let body = evloop::http::body_from_iter(lines);
/// # let _ = body;
/// ```
pub fn body_from_iter<I>(pieces: I) -> IterBody<I::IntoIter>
where
    I: IntoIterator<Item = Bytes>,
    I::IntoIter: Send + 'static,
{
    IterBody(pieces.into_iter())
}

/// The [`BodySource`] of [`body_from_iter`].
#[derive(Debug)]
pub struct IterBody<I>(I);

impl<I> BodySource for IterBody<I>
where
    I: Iterator<Item = Bytes> + Send + 'static,
{
    fn poll_next(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        Poll::Ready(self.0.next())
    }
}

/// A body fed from any thread: what is sent on the [`BodySender`] goes out
/// as the client reads it; the body ends when every sender is dropped.
///
/// At most `capacity` bytes wait between the sender and the server (plus
/// one piece): [`BodySender::send`] blocks while they do, which passes the
/// client's pace back to the producer. Once the client is gone (the
/// connection closed and the body dropped), `send` fails.
///
/// # Examples
///
/// A producer thread ticking once a second (see `examples/sse.rs`):
///
/// ```no_run
/// use std::time::Duration;
/// use evloop::http::{HttpServer, Response, body_channel};
///
/// let server = HttpServer::new("127.0.0.1:3000".parse().unwrap()).start_deferred(|_req, responder| {
///     let (sender, body) = body_channel(4096);
///     responder.stream(Response::new(200).header("Content-Type", "text/event-stream"), body);
///     std::thread::spawn(move || {
///         for tick in 0.. {
///             if sender.send(format!("data: tick {tick}\n\n")).is_err() {
///                 break; // the client left
///             }
///             std::thread::sleep(Duration::from_secs(1));
///         }
///     });
/// })?;
/// # server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn body_channel(capacity: usize) -> (BodySender, ChannelBody) {
    let shared = Arc::new(Channel {
        state: Mutex::new(ChannelState {
            pieces: VecDeque::new(),
            queued: 0,
            senders: 1,
            receiver_alive: true,
            waker: None,
        }),
        space: Condvar::new(),
        capacity: capacity.max(1),
    });
    (
        BodySender {
            channel: Arc::clone(&shared),
        },
        ChannelBody { channel: shared },
    )
}

/// The sending half of a [`body_channel`]; clone it to send from several
/// threads.
pub struct BodySender {
    /// Shared with the body.
    channel: Arc<Channel>,
}

/// The [`BodySource`] half of a [`body_channel`], given to
/// [`Responder::stream`](crate::http::Responder::stream).
pub struct ChannelBody {
    /// Shared with the senders.
    channel: Arc<Channel>,
}

/// The client is gone: what was sent will not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyClosed;

impl fmt::Display for BodyClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response body's receiver is gone")
    }
}

impl std::error::Error for BodyClosed {}

/// What the senders and the body share.
struct Channel {
    /// The pieces and who is still there.
    state: Mutex<ChannelState>,
    /// Signalled when queued bytes are taken, or the body goes away.
    space: Condvar,
    /// Bytes that may wait before `send` blocks.
    capacity: usize,
}

/// The channel's state under its lock.
struct ChannelState {
    /// Pieces sent and not yet pulled.
    pieces: VecDeque<Bytes>,
    /// Their total length.
    queued: usize,
    /// Live senders; the body ends when none is left and `pieces` is empty.
    senders: usize,
    /// The body has not been dropped.
    receiver_alive: bool,
    /// The server's waker, left by a `Pending` poll.
    waker: Option<Waker>,
}

impl Channel {
    /// The state, whatever a panicking holder left.
    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BodySender {
    /// Queues `piece`, blocking while the channel holds its capacity.
    ///
    /// # Errors
    ///
    /// [`BodyClosed`] once the body was dropped (the client left, or the
    /// connection closed).
    pub fn send(&self, piece: impl Into<Bytes>) -> Result<(), BodyClosed> {
        let piece = piece.into();
        let mut state = self.channel.lock();
        while state.receiver_alive && state.queued >= self.channel.capacity {
            state = self
                .channel
                .space
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.push(state, piece)
    }

    /// Queues `piece` unless the channel holds its capacity already.
    ///
    /// # Errors
    ///
    /// `Err(Some(piece))` back when full; `Err(None)` once the body was
    /// dropped.
    pub fn try_send(&self, piece: impl Into<Bytes>) -> Result<(), Option<Bytes>> {
        let piece = piece.into();
        let state = self.channel.lock();
        if state.receiver_alive && state.queued >= self.channel.capacity {
            return Err(Some(piece));
        }
        self.push(state, piece).map_err(|BodyClosed| None)
    }

    /// Adds `piece` under the lock and wakes the server.
    fn push(&self, mut state: MutexGuard<'_, ChannelState>, piece: Bytes) -> Result<(), BodyClosed> {
        if !state.receiver_alive {
            return Err(BodyClosed);
        }
        state.queued += piece.len();
        state.pieces.push_back(piece);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl Clone for BodySender {
    fn clone(&self) -> Self {
        self.channel.lock().senders += 1;
        BodySender {
            channel: Arc::clone(&self.channel),
        }
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let mut state = self.channel.lock();
        state.senders -= 1;
        let waker = if state.senders == 0 {
            state.waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl BodySource for ChannelBody {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut state = self.channel.lock();
        if let Some(piece) = state.pieces.pop_front() {
            state.queued -= piece.len();
            drop(state);
            self.channel.space.notify_all();
            return Poll::Ready(Some(piece));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ChannelBody {
    fn drop(&mut self) {
        let mut state = self.channel.lock();
        state.receiver_alive = false;
        state.pieces.clear();
        drop(state);
        self.channel.space.notify_all();
    }
}

impl fmt::Debug for BodySender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodySender").finish_non_exhaustive()
    }
}

impl fmt::Debug for ChannelBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.channel.lock();
        f.debug_struct("ChannelBody")
            .field("queued", &state.queued)
            .field("senders", &state.senders)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_channel_delivers_in_order_wakes_the_puller_and_ends_with_its_senders() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let (sender, mut body) = body_channel(10);
        assert_eq!(body.poll_next(&mut cx), Poll::Pending);
        sender.send("ab").unwrap();
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        let second = sender.clone();
        second.send("cd").unwrap();
        assert_eq!(body.poll_next(&mut cx), Poll::Ready(Some(Bytes::from("ab"))));
        assert_eq!(body.poll_next(&mut cx), Poll::Ready(Some(Bytes::from("cd"))));
        drop(sender);
        assert_eq!(body.poll_next(&mut cx), Poll::Pending);
        drop(second);
        assert_eq!(body.poll_next(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn a_full_channel_blocks_its_sender_until_pulled_and_fails_once_dropped() {
        let (sender, mut body) = body_channel(4);
        sender.send("1234").unwrap();
        assert_eq!(sender.try_send("5"), Err(Some(Bytes::from("5"))));
        let blocked = std::thread::spawn(move || {
            sender.send("5678").unwrap();
            sender.send("9").map(|()| sender)
        });
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut got = Vec::new();
        while got.len() < 2 {
            if let Poll::Ready(Some(piece)) = body.poll_next(&mut cx) {
                got.push(piece);
            }
        }
        assert_eq!(got, ["1234", "5678"]);
        drop(body);
        // The third send either went in before the drop or failed after it.
        let _ = blocked.join().unwrap();
    }
}
