//! [`Batch`]: the responses of one callback, serialised into a per-thread
//! buffer and handed to the connection in one copy; and what each response
//! says about the connection ([`Meta`], [`connection_header`]).

use std::cell::Cell;

use bytes::{Bytes, BytesMut};

use super::chunked::{CHUNK_END, LAST_CHUNK, chunk_head};
use super::date::HttpDate;
use super::{Request, Response, Version};
use crate::Conn;

/// Capacity of [`Batch`]'s buffer kept per thread between callbacks.
const SCRATCH_RETAINED: usize = 64 * 1024;

thread_local! {
    /// The buffer of [`Batch`], kept per thread between callbacks.
    static SCRATCH: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// What the answer to a request needs to know of it once the request
/// itself is gone (answered later, it went to the application).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// The request was `HEAD`: no body goes out.
    pub(crate) head_only: bool,
    /// The client wants the connection kept open.
    pub(crate) keep_alive: bool,
    /// The request's version.
    pub(crate) version: Version,
}

impl Meta {
    /// The answer's view of `request`.
    #[inline]
    pub(crate) fn of(request: &Request) -> Self {
        Meta {
            head_only: &request.head[request.method.clone()] == b"HEAD",
            keep_alive: request.keep_alive(),
            version: request.version(),
        }
    }
}

/// The `Connection` value to send, and whether the connection stays open,
/// for a response that does (`wants_close` false) or does not want it
/// kept.
#[inline]
pub(crate) fn connection_header(meta: Meta, wants_close: bool) -> (Option<&'static str>, bool) {
    let keep_alive = meta.keep_alive && !wants_close;
    let value = match (keep_alive, meta.version) {
        (false, _) => Some("close"),
        (true, Version::Http10) => Some("keep-alive"),
        (true, Version::Http11) => None,
    };
    (value, keep_alive)
}

/// The responses of one callback, serialised into a per-thread buffer and
/// handed to the connection's output in one copy (large bodies follow
/// without copying).
pub(crate) struct Batch {
    /// Serialised responses not yet given to the connection.
    pub(crate) buf: BytesMut,
}

impl Batch {
    /// Borrows this thread's buffer (a fresh one if it is out).
    pub(crate) fn take() -> Self {
        Batch {
            buf: SCRATCH.try_with(Cell::take).unwrap_or_default(),
        }
    }

    /// Bytes gathered and not yet given to the connection.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Adds `response`; see [`Response::encode`].
    #[inline]
    pub(crate) fn push(
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
    pub(crate) fn reject(&mut self, conn: &mut Conn<'_>, status: u16) {
        self.push(
            conn,
            &Response::error(status),
            false,
            Some("close"),
            &HttpDate::now(),
        );
    }

    /// Adds one piece of a streamed body, framed as a chunk if `chunked`;
    /// the piece itself is queued without copying unless small.
    pub(crate) fn push_piece(&mut self, conn: &mut Conn<'_>, piece: Bytes, chunked: bool) {
        if chunked {
            chunk_head(&mut self.buf, piece.len());
        }
        if piece.len() < 1024 {
            self.buf.extend_from_slice(&piece);
        } else {
            self.flush(conn);
            conn.write_bytes(piece);
        }
        if chunked {
            self.buf.extend_from_slice(CHUNK_END);
        }
    }

    /// Adds the end of a chunked body.
    pub(crate) fn push_last_chunk(&mut self) {
        self.buf.extend_from_slice(LAST_CHUNK);
    }

    /// Gives what was gathered to the connection.
    pub(crate) fn flush(&mut self, conn: &mut Conn<'_>) {
        if !self.buf.is_empty() {
            conn.write(&self.buf);
            self.buf.clear();
        }
    }

    /// Flushes, and returns the buffer to this thread unless a burst made it
    /// outsized.
    pub(crate) fn finish(mut self, conn: &mut Conn<'_>) {
        self.flush(conn);
        if self.buf.capacity() <= SCRATCH_RETAINED {
            let _ = SCRATCH.try_with(|scratch| scratch.set(self.buf));
        }
    }
}
