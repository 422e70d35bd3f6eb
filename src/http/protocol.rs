//! The HTTP/1.1 protocol as a [`Handler`]: one per connection, turning input
//! into requests, calling the application, writing responses in order.
//!
//! One `on_data` takes every complete request in the input (pipelining),
//! in arrival order. Phases:
//!
//! 1. decode the next request (or stop: incomplete, or refused → error
//!    response, then the rest of a refused body read and dropped within
//!    bounds, then close);
//! 2. call the application, catching a panic (→ 500 and close): an
//!    immediate one answers at once; a deferring one gets a
//!    [`Responder`](super::Responder), and its answer waits its turn in
//!    [`Answers`];
//! 3. write the responses that are ready, in request order, and close
//!    after one if either side asked; pull a streamed body while output
//!    allows;
//! 4. stop early once queued output passes the high watermark, or when
//!    [`MAX_AWAITED`](super::answers::MAX_AWAITED) answers are awaited: the
//!    session hands the rest of the input back once output drains or
//!    reading resumes;
//! 5. pause reading while answers are awaited (so the client's end of
//!    stream, too, waits for them), resume once none is;
//! 6. start or cancel the head timer (408) for a partial head left behind.
//!
//! A deferred answer or a body piece reaches the handler in `on_timer`
//! (see [`super::wake`]); output draining, in `on_drained`. Both run phases
//! 3 and 5.
//!
//! When the server drains (`on_drain`), a connection with a request in
//! progress has the request that leaves no more input behind it (the last
//! one received) answered with `Connection: close`, and closes after it. A
//! connection with none (idle between keep-alive requests, or accepted just
//! before the drain) is given
//! [`next_request_at_drain`](super::HttpConfig::next_request_at_drain) (1 s
//! by default) for one more request, answered the same way, and closes when
//! that runs out: closing it at once would race with a request already on
//! its way, which would meet a closed socket.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use bytes::BytesMut;
use log::{debug, error};

use super::answers::Answers;
use super::app::App;
use super::batch::{Batch, Meta, connection_header};
use super::date::HttpDate;
use super::decode::{Decoded, Decoder, Input};
use super::discard::{Discard, Rest};
use super::upload::{Pipe, Upload};
use super::{HttpConfig, Request};
use crate::{Conn, Handler, TimerId};

/// The per-connection HTTP handler, generic over the application.
pub(crate) struct HttpHandler<A> {
    /// The application, shared by every connection.
    app: Arc<A>,
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
    /// Answers awaited from a deferring application; created at open.
    answers: Option<Answers>,
    /// The body of the last request, arriving in pieces for the application.
    upload: Option<Upload>,
    /// Input was left unconsumed by the last `on_data`: part of a request,
    /// or requests waiting for the output to drain.
    unread: bool,
    /// The server is draining: the last request received is answered with
    /// `Connection: close`.
    draining: bool,
    /// Draining, a connection with no request in progress waits this timer
    /// for one more ([`HttpConfig::next_request_at_drain`]).
    next_request_timer: Option<TimerId>,
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

impl<A: App> HttpHandler<A> {
    /// A handler for one connection.
    pub(crate) fn new(app: Arc<A>, config: Arc<HttpConfig>, output_limit: usize) -> Self {
        HttpHandler {
            app,
            config,
            output_limit,
            decoder: None,
            head_timer: None,
            stalled: false,
            discarding: None,
            answers: None,
            upload: None,
            unread: false,
            draining: false,
            next_request_timer: None,
        }
    }

    /// Answers every complete request in `input`; says how the connection
    /// goes on.
    fn serve(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) -> Flow {
        let mut batch = Batch::take();
        let mut flow = self.serve_into(conn, input, &mut batch);
        if let (Flow::Open, Some(answers)) = (&flow, &mut self.answers)
            && !answers.send_ready(conn, &mut batch, self.output_limit)
        {
            flow = Flow::Close;
        }
        batch.finish(conn);
        flow
    }

    /// [`serve`](Self::serve), gathering the responses in `batch`.
    fn serve_into(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut, batch: &mut Batch) -> Flow {
        let Some(decoder) = self.decoder.as_mut() else {
            return Flow::Close;
        };
        // The requests read are cut off the input when this ends.
        let mut input = Input::new(input);
        let date = HttpDate::now();
        self.stalled = false;
        while !input.is_empty() {
            let full = conn.pending_output() + batch.len() > self.output_limit;
            let waiting = match &self.upload {
                Some(upload) => !upload.0.has_room(),
                None => self.answers.as_ref().is_some_and(Answers::is_full),
            };
            if full || waiting {
                // Input waits on us: the session hands it back once output
                // drains (past its high watermark) or reading resumes.
                self.stalled = true;
                return Flow::Open;
            }
            match decoder.next(&mut input, &self.config) {
                Decoded::Request(()) => {}
                Decoded::Incomplete => break,
                Decoded::Reject(refusal) => {
                    debug!("{}: refusing request with {}", conn.id(), refusal.status);
                    if let Some(upload) = self.upload.take() {
                        upload.0.finish(Err(std::io::ErrorKind::InvalidData));
                    }
                    if let Some(answers) = self.answers.as_mut().filter(|a| !a.is_idle()) {
                        // Its turn comes after the answers awaited.
                        answers.refuse(refusal.status);
                        input.buf().clear();
                        return Flow::Open;
                    }
                    batch.reject(conn, refusal.status);
                    return Flow::Refused(refusal.rest);
                }
                Decoded::Streamed(()) => {
                    if let Some(answers) = self.answers.as_mut() {
                        let mut request = decoder.take_request();
                        let pipe = Pipe::new(answers.waker());
                        request.pieces = Some(Arc::clone(&pipe));
                        self.upload = Some(Upload(pipe));
                        let last = self.draining && input.is_empty();
                        hand_over(&*self.app, conn, answers, request, last);
                    }
                    continue;
                }
                Decoded::Piece(piece, last) => {
                    if let Some(upload) = &self.upload {
                        upload.0.push(piece);
                    }
                    if let Some(upload) = self.upload.take_if(|_| last) {
                        upload.0.finish(Ok(()));
                    }
                    continue;
                }
            }
            // Draining, the request that leaves nothing behind it is the last.
            let last = self.draining && input.is_empty();
            if A::DEFERS {
                if let Some(answers) = self.answers.as_mut() {
                    hand_over(&*self.app, conn, answers, decoder.take_request(), last);
                }
                continue;
            }
            // Answered at once, the request stays where it was parsed.
            let keep_alive = respond(&*self.app, conn, batch, decoder.request(), &date, last);
            decoder.done();
            if !keep_alive {
                return Flow::Close;
            }
        }
        if decoder.take_continue() {
            batch.buf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        Flow::Open
    }

    /// Sends the answers that became ready and the body pieces the output
    /// takes; closes if one of them said so; pauses or resumes reading.
    fn answer(&mut self, conn: &mut Conn<'_>) {
        let Some(answers) = self.answers.as_mut() else {
            return;
        };
        let before = conn.pending_output();
        let mut batch = Batch::take();
        let open = answers.send_ready(conn, &mut batch, self.output_limit);
        let progressed = batch.len() > 0 || conn.pending_output() != before;
        batch.finish(conn);
        if !open {
            conn.close();
        }
        self.follow_answers(conn, progressed);
    }

    /// Reading is paused while answers are awaited (requests behind them
    /// wait in the socket, the client's end of stream too), and resumed
    /// when none is; where wakes cannot come, a timer looks again.
    fn follow_answers(&mut self, conn: &mut Conn<'_>, progressed: bool) {
        let Some(answers) = self.answers.as_mut() else {
            return;
        };
        // A body arriving in pieces is read while the pipe has room, its
        // answer awaited or not.
        let pause = match &self.upload {
            Some(upload) => !upload.0.has_room(),
            None => !answers.is_idle(),
        };
        if pause != conn.is_reading_paused() {
            if pause {
                conn.pause_reading();
            } else {
                conn.resume_reading();
            }
        }
        answers.keep_polling(conn, progressed);
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
        let answered = self.answers.as_ref().is_none_or(Answers::is_idle);
        let partial_head = awaiting && answered && !input.is_empty() && !self.stalled && !conn.is_closing();
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

impl<A: App> Handler for HttpHandler<A> {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let stream_over = if A::DEFERS {
            self.config.stream_bodies_over
        } else {
            None
        };
        self.decoder = Some(Decoder::new(conn.peer_addr(), stream_over));
        if A::DEFERS {
            self.answers = Some(Answers::new(conn));
        }
        conn.set_idle_timeout(self.config.keep_alive_timeout);
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if let Some(timer) = self.next_request_timer.take() {
            conn.cancel_timer(timer);
        }
        if self.discarding.is_some() {
            return self.discard(conn, input);
        }
        match self.serve(conn, input) {
            Flow::Open => {}
            Flow::Close => {
                input.clear();
                conn.close();
            }
            Flow::Refused(rest) => return self.refused(conn, input, rest),
        }
        if self.upload.is_none() && self.answers.as_ref().is_some_and(|a| a.last) {
            // Nothing after a request that closes is answered.
            input.clear();
        }
        self.follow_answers(conn, true);
        self.update_head_timer(conn, input);
        self.unread = !input.is_empty();
    }

    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        self.answer(conn);
    }

    fn on_drain(&mut self, conn: &mut Conn<'_>) {
        self.draining = true;
        let busy = self.unread
            || self.discarding.is_some()
            || self.upload.is_some()
            || self.decoder.as_ref().is_some_and(|d| !d.awaiting_head())
            || self.answers.as_ref().is_some_and(|a| !a.is_idle());
        if !busy {
            self.next_request_timer = Some(conn.set_timer(self.config.next_request_at_drain));
            return;
        }
        if !self.unread
            && let Some(answers) = self.answers.as_mut()
        {
            // Every request received is awaited: the last of them closes.
            answers.close_after_last();
        }
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        if self.next_request_timer == Some(timer) {
            debug!("{}: no request after the drain; closing", conn.id());
            self.next_request_timer = None;
            conn.close();
        } else if self.discarding.as_ref().is_some_and(|(_, t)| *t == timer) {
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
        } else if let Some(answers) = self.answers.as_mut() {
            // A loop task's timer, the look-again timer, or a wake.
            answers.timer(conn, timer);
            self.answer(conn);
        }
    }
}

impl<A> std::fmt::Debug for HttpHandler<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandler")
            .field("decoder", &self.decoder)
            .field("head_timer", &self.head_timer)
            .field("answers", &self.answers)
            .finish_non_exhaustive()
    }
}

/// Hands `request` to a deferring application with a responder queued in
/// `answers`, its answer closing the connection if it is the `last`; a
/// panic drops the responder, which answers 500 in its turn.
fn hand_over<A: App>(app: &A, conn: &mut Conn<'_>, answers: &mut Answers, request: Request, last: bool) {
    let mut meta = Meta::of(&request);
    meta.keep_alive &= !last;
    let responder = answers.responder(meta);
    if panic::catch_unwind(AssertUnwindSafe(|| app.later(request, responder))).is_err() {
        error!("{}: HTTP handler panicked", conn.id());
        // The 500 closes the connection: take no more requests.
        answers.last = true;
    }
}

/// Calls an immediate application for `request` and adds its response to
/// `batch` (500 if it panicked), closing the connection if it is the
/// `last`; returns whether the connection stays open.
#[inline]
fn respond<A: App>(
    app: &A,
    conn: &mut Conn<'_>,
    batch: &mut Batch,
    request: &Request,
    date: &HttpDate,
    last: bool,
) -> bool {
    // The app is caught here rather than by the session, which would reset
    // the connection without a response.
    let response = match panic::catch_unwind(AssertUnwindSafe(|| app.now(request))) {
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
    let meta = Meta::of(request);
    let (connection, keep_alive) = connection_header(meta, response.wants_close() || last);
    batch.push(conn, &response, meta.head_only, connection, date);
    keep_alive
}
