//! The [`Handler`] trait: the one API both execution models drive.

use bytes::BytesMut;

use crate::{CloseReason, Conn, TimerId};

/// Application logic for one connection.
///
/// A server makes one handler per connection with its factory (any
/// `FnMut() -> H`), then calls it as things happen to that connection. Every
/// callback receives a [`Conn`] through which the handler writes, closes,
/// pauses reading and sets timers.
///
/// # Behaviour
///
/// * Callbacks for one connection never overlap and always run on the loop
///   thread that owns it, so a handler needs no locking of its own state.
/// * Writes made in a callback are queued and written to the socket as soon as
///   the callback returns, in the same turn: one system call for everything
///   the callback wrote. Only what the socket does not take stays buffered.
/// * A callback should return quickly: the loop serves every other connection
///   on its thread only between callbacks. Move slow work to another thread.
/// * A panic in a callback is caught at the callback boundary; that connection
///   is aborted (its output dropped) and closed with
///   [`CloseReason::Panicked`]. Other connections are not affected.
/// * [`on_close`](Handler::on_close) is called exactly once, last, for every
///   connection that was created, whatever the path that closed it — an
///   outbound connection that never connected included
///   ([`CloseReason::ConnectRefused`], [`CloseReason::ConnectTimeout`]) and a
///   TLS connection whose handshake failed ([`CloseReason::Tls`],
///   [`CloseReason::HandshakeTimeout`], [`CloseReason::Truncated`]),
///   though it never saw [`on_open`](Handler::on_open).
///
/// # Examples
///
/// An echo server's handler, zero-copy: the input is split off and queued as
/// `Bytes`, so the payload is never copied.
///
/// ```
/// use evloop::{Conn, Handler};
/// use evloop::bytes::BytesMut;
///
/// struct Echo;
///
/// impl Handler for Echo {
///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
///         conn.write_bytes(input.split().freeze());
///     }
/// }
///
/// let event_loop = evloop::EventLoop::bind("127.0.0.1:0".parse().unwrap(), Default::default(), || Echo)?;
/// # drop(event_loop);
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Handler: 'static {
    /// The connection is established; called once, before any other callback.
    ///
    /// For an outbound connection ([`EventLoop::connect`](crate::EventLoop::connect))
    /// this means *connected*: the handshake completed. One that fails to
    /// connect never sees `on_open`, only [`on_close`](Handler::on_close).
    /// On a TLS connection (inbound or outbound) `on_open` runs once the TLS
    /// handshake has completed as well, and one whose handshake fails or
    /// times out sees only `on_close`.
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// Bytes arrived. `input` holds everything received and not yet consumed:
    /// take what forms complete messages (`split_to`, `advance`, `clear`) and
    /// leave the rest, which is kept and extended on the next call.
    ///
    /// As long as a call consumes something and input is left, `on_data` is
    /// called again at once (as Netty's decoders are), so a handler may take
    /// one message per call. Output written by consecutive calls goes out
    /// together when they end. A handler that stops consuming because its
    /// own output is full is offered the input again once that output has
    /// gone, even if no new bytes arrive.
    ///
    /// Unconsumed input beyond [`Config::max_input`](crate::Config::max_input)
    /// closes the connection with [`CloseReason::InputLimit`].
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut);

    /// Output that had risen above the high watermark has drained to the low
    /// watermark: the moment to write more. Reading resumes, and input left
    /// unconsumed while output was full is handed to `on_data` again, so a
    /// handler may simply stop consuming when `pending_output` is high.
    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// The peer shut down its write half (end of stream), and the handler has
    /// been offered every byte that came before it.
    ///
    /// `input` holds what the handler left unconsumed: a last line without its
    /// newline, say, or a message the peer never finished. Consume what makes
    /// sense; whatever is still left when this returns is discarded (counted
    /// in [`Stats::input_discarded`](crate::Stats::input_discarded)).
    ///
    /// Before this runs, input that arrived before the end of stream is
    /// handed to [`on_data`](Handler::on_data) for as long as the handler
    /// consumes it — again after output drains, if the handler stopped
    /// because its output was full — so a handler that answers a batch of
    /// requests followed by the peer's half-close answers every one.
    ///
    /// Output written here is still delivered; once all output is flushed
    /// the connection closes with [`CloseReason::PeerClosed`].
    ///
    /// # Examples
    ///
    /// A line handler that treats a final line without its newline as a line:
    ///
    /// ```
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Conn, Handler};
    ///
    /// struct Lines;
    ///
    /// impl Handler for Lines {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         while let Some(end) = input.iter().position(|&b| b == b'\n') {
    ///             let line = input.split_to(end + 1);
    ///             conn.write(&line);
    ///         }
    ///     }
    ///
    ///     fn on_eof(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         if !input.is_empty() {
    ///             conn.write(&input.split());
    ///             conn.write(b"\n");
    ///         }
    ///     }
    /// }
    /// # let _ = Lines;
    /// ```
    fn on_eof(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        let _ = (conn, input);
    }

    /// The server began to drain ([`ServerHandle::drain`](crate::ServerHandle::drain)):
    /// it accepts no more connections and serves the open ones until they
    /// close. Called once for each open connection when the drain begins,
    /// and for a connection opened on a draining loop right after its
    /// [`on_open`](Handler::on_open) (an accepted one handed over late, an
    /// outbound one once connected, a TLS one once its handshake is done).
    ///
    /// The moment for a protocol with requests to finish what is in
    /// progress and close, so that its client, which will reach the new
    /// server on its next connection, does not wait for the grace period to
    /// end and be reset. The default does nothing: the connection is served
    /// on until its peer or handler closes it. Not called for a connection
    /// already closing, nor under [`Model::Threads`](crate::Model::Threads),
    /// which cannot drain.
    ///
    /// The HTTP server implements it: a connection with a request in
    /// progress answers it (and the requests already received behind it)
    /// with `Connection: close`, then closes; an idle one (between
    /// keep-alive requests, or fresh) is given a second for one more
    /// request (`http::HttpConfig::next_request_at_drain`), answered the
    /// same way, so that a request already on its way does not meet a
    /// closed socket, and closes when the second runs out.
    ///
    /// # Examples
    ///
    /// A line protocol that says goodbye and closes once its output is
    /// flushed:
    ///
    /// ```
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Conn, Handler};
    ///
    /// struct Lines;
    ///
    /// impl Handler for Lines {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         while let Some(end) = input.iter().position(|&b| b == b'\n') {
    ///             conn.write(&input.split_to(end + 1));
    ///         }
    ///     }
    ///
    ///     fn on_drain(&mut self, conn: &mut Conn<'_>) {
    ///         conn.write(b"server restarting, goodbye\n");
    ///         conn.close();
    ///     }
    /// }
    /// # let _ = Lines;
    /// ```
    fn on_drain(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// A timer set with [`Conn::set_timer`] expired.
    fn on_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        let _ = (conn, timer);
    }

    /// The connection is closed and its socket released; the last callback.
    fn on_close(&mut self, reason: &CloseReason) {
        let _ = reason;
    }
}
