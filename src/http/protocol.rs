//! The HTTP/1.1 protocol as a [`Handler`]: one per connection, turning input
//! into requests, calling the application, writing responses in order.
//!
//! One `on_data` answers every complete request in the input (pipelining),
//! in arrival order, since the application is called synchronously. Phases:
//!
//! 1. decode the next request (or stop: incomplete, or refused → error
//!    response, then the rest of a refused body read and dropped within
//!    bounds, then close);
//! 2. call the application, catching a panic (→ 500 and close);
//! 3. write the response, and close after it if either side asked;
//! 4. stop early once queued output passes the high watermark: the reactor
//!    pauses reading and, once the output drains, hands the rest of the
//!    input back to `on_data`;
//! 5. start or cancel the head timer (408) for a partial head left behind.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use bytes::BytesMut;
use log::{debug, error};

use super::date::HttpDate;
use super::decode::{Decoded, Decoder};
use super::discard::{Discard, Rest};
use super::{HttpConfig, Request, Response, Version};
use crate::{Conn, Handler, TimerId};

/// Capacity of [`Batch`]'s buffer kept per thread between `on_data` calls.
const SCRATCH_RETAINED: usize = 64 * 1024;

/// The per-connection HTTP handler, generic over the application function.
pub(crate) struct HttpHandler<F> {
    /// The application, shared by every connection.
    app: Arc<F>,
    /// Protocol limits, shared by every connection.
    config: Arc<HttpConfig>,
    /// Queued output past which pipelined requests wait (the loop's high
    /// watermark, so that `on_drained` is sure to follow).
    output_limit: usize,
    /// Request parser; created when the connection opens (it needs the peer).
    decoder: Option<Decoder>,
    /// The running head timer, while a partial head waits in the input.
    head_timer: Option<TimerId>,
    /// `serve` stopped because output was full: input waits on us, not on
    /// the client, so no head timer runs for it.
    stalled: bool,
    /// A refused request's body being dropped before the close, with the
    /// timer that bounds it.
    discarding: Option<(Discard, TimerId)>,
}

/// How [`HttpHandler::serve`] left the connection.
enum Flow {
    /// Open for more requests.
    Open,
    /// Closing after the output.
    Close,
    /// A request was refused; the client may still send this much of it.
    Refused(Rest),
}

impl<F> HttpHandler<F>
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    /// A handler for one connection.
    pub(crate) fn new(app: Arc<F>, config: Arc<HttpConfig>, output_limit: usize) -> Self {
        HttpHandler {
            app,
            config,
            output_limit,
            decoder: None,
            head_timer: None,
            stalled: false,
            discarding: None,
        }
    }

    /// Answers every complete request in `input`; says how the connection
    /// goes on.
    fn serve(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) -> Flow {
        let mut batch = Batch::take();
        let flow = self.serve_into(conn, input, &mut batch);
        batch.finish(conn);
        flow
    }

    /// [`serve`](Self::serve), gathering the responses in `batch`.
    fn serve_into(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut, batch: &mut Batch) -> Flow {
        let Some(decoder) = self.decoder.as_mut() else {
            return Flow::Close;
        };
        let date = HttpDate::now();
        self.stalled = false;
        while !input.is_empty() {
            if conn.pending_output() + batch.len() > self.output_limit {
                // The reactor pauses reading past its high watermark and hands
                // the rest of the input back to `on_data` once output drains.
                self.stalled = true;
                return Flow::Open;
            }
            let mut request = match decoder.decode(input, &self.config) {
                Decoded::Request(request) => request,
                Decoded::Incomplete => break,
                Decoded::Reject(refusal) => {
                    debug!("{}: refusing request with {}", conn.id(), refusal.status);
                    batch.reject(conn, refusal.status);
                    return Flow::Refused(refusal.rest);
                }
            };
            let keep_alive = respond(&*self.app, conn, batch, &request, &date);
            decoder.recycle(&mut request);
            if !keep_alive {
                return Flow::Close;
            }
        }
        if decoder.take_continue() {
            batch.buf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        Flow::Open
    }

    /// After a refusal: reads past what the client still sends of the
    /// refused request, within bounds, then closes.
    fn refused(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut, rest: Rest) {
        if let Some(timer) = self.head_timer.take() {
            conn.cancel_timer(timer);
        }
        let mut discard = Discard::new(rest, &self.config);
        match discard.as_mut().map(|d| d.consume(input)) {
            Some(false) => {
                // The client reads the refusal, then our end of stream,
                // while the rest of what it sends is dropped.
                conn.shutdown_write();
                let timer = conn.set_timer(self.config.discard_timeout);
                self.discarding = discard.map(|d| (d, timer));
            }
            _ => {
                input.clear();
                conn.close();
            }
        }
    }

    /// Drops what `input` holds of a refused body; closes once it is over.
    fn discard(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if let Some((discard, timer)) = &mut self.discarding
            && discard.consume(input)
        {
            conn.cancel_timer(*timer);
            self.discarding = None;
            // The refusal said `Connection: close`: what follows is dropped.
            input.clear();
            conn.close();
        }
    }

    /// Runs the head timer while a partial head waits in `input`, and only
    /// then.
    fn update_head_timer(&mut self, conn: &mut Conn<'_>, input: &BytesMut) {
        let awaiting = self.decoder.as_ref().is_some_and(Decoder::awaiting_head);
        let partial_head = awaiting && !input.is_empty() && !self.stalled && !conn.is_closing();
        match (partial_head, self.head_timer, self.config.head_timeout) {
            (true, None, Some(timeout)) => self.head_timer = Some(conn.set_timer(timeout)),
            (false, Some(timer), _) => {
                conn.cancel_timer(timer);
                self.head_timer = None;
            }
            _ => {}
        }
    }
}

impl<F> Handler for HttpHandler<F>
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.decoder = Some(Decoder::new(conn.peer_addr()));
        conn.set_idle_timeout(self.config.keep_alive_timeout);
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if self.discarding.is_some() {
            return self.discard(conn, input);
        }
        match self.serve(conn, input) {
            Flow::Open => self.update_head_timer(conn, input),
            Flow::Close => {
                input.clear();
                conn.close();
                self.update_head_timer(conn, input);
            }
            Flow::Refused(rest) => self.refused(conn, input, rest),
        }
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        if self.discarding.as_ref().is_some_and(|(_, t)| *t == timer) {
            debug!("{}: the refused body did not end in time", conn.id());
            self.discarding = None;
            conn.close();
        } else if self.head_timer == Some(timer) {
            self.head_timer = None;
            debug!("{}: request head not complete in time", conn.id());
            let mut batch = Batch::take();
            batch.reject(conn, 408);
            batch.finish(conn);
            conn.close();
        }
    }
}

impl<F> std::fmt::Debug for HttpHandler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandler")
            .field("decoder", &self.decoder)
            .field("head_timer", &self.head_timer)
            .finish_non_exhaustive()
    }
}

/// Calls the application for `request` and adds its response to `batch`
/// (500 if it panicked); returns whether the connection stays open.
fn respond<F>(app: &F, conn: &mut Conn<'_>, batch: &mut Batch, request: &Request, date: &HttpDate) -> bool
where
    F: Fn(&Request) -> Response,
{
    // The app is caught here rather than by the reactor, which would reset
    // the connection without a response.
    let response = match panic::catch_unwind(AssertUnwindSafe(|| app(request))) {
        Ok(response) => response,
        Err(_) => {
            error!(
                "{}: HTTP handler panicked on {} {}",
                conn.id(),
                request.method(),
                request.target()
            );
            batch.reject(conn, 500);
            return false;
        }
    };
    if response.status() < 200 {
        // An interim status is no answer: the client would wait for one.
        error!(
            "{}: the application answered {} {} with {}, which is not a final status",
            conn.id(),
            request.method(),
            request.target(),
            response.status()
        );
        batch.reject(conn, 500);
        return false;
    }
    let keep_alive = request.keep_alive() && !response.wants_close();
    let connection = match (keep_alive, request.version()) {
        (false, _) => Some("close"),
        (true, Version::Http10) => Some("keep-alive"),
        (true, Version::Http11) => None,
    };
    let head_only = &request.head[request.method.clone()] == b"HEAD";
    batch.push(conn, &response, head_only, connection, date);
    keep_alive
}

thread_local! {
    /// The buffer of [`Batch`], kept per thread between `on_data` calls.
    static SCRATCH: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// The responses of one `on_data`, serialised into a per-thread buffer and
/// handed to the connection's output in one copy (large bodies follow
/// without copying).
struct Batch {
    /// Serialised responses not yet given to the connection.
    buf: BytesMut,
}

impl Batch {
    /// Borrows this thread's buffer (a fresh one if it is out).
    fn take() -> Self {
        Batch {
            buf: SCRATCH.try_with(Cell::take).unwrap_or_default(),
        }
    }

    /// Bytes gathered and not yet given to the connection.
    fn len(&self) -> usize {
        self.buf.len()
    }

    /// Adds `response`; see [`Response::encode`].
    fn push(
        &mut self,
        conn: &mut Conn<'_>,
        response: &Response,
        head_only: bool,
        connection: Option<&str>,
        date: &HttpDate,
    ) {
        if let Some(body) = response.encode(&mut self.buf, head_only, connection, date) {
            self.flush(conn);
            conn.write_bytes(body);
        }
    }

    /// Adds an error response with `status` that announces the close.
    fn reject(&mut self, conn: &mut Conn<'_>, status: u16) {
        self.push(
            conn,
            &Response::error(status),
            false,
            Some("close"),
            &HttpDate::now(),
        );
    }

    /// Gives what was gathered to the connection.
    fn flush(&mut self, conn: &mut Conn<'_>) {
        if !self.buf.is_empty() {
            conn.write(&self.buf);
            self.buf.clear();
        }
    }

    /// Flushes, and returns the buffer to this thread unless a burst made it
    /// outsized.
    fn finish(mut self, conn: &mut Conn<'_>) {
        self.flush(conn);
        if self.buf.capacity() <= SCRATCH_RETAINED {
            let _ = SCRATCH.try_with(|scratch| scratch.set(self.buf));
        }
    }
}
