//! The session: one connection's whole policy, written once, with no I/O of
//! its own.
//!
//! A [`Session`] holds the handler, what the handler asked for, the input it
//! has not consumed, the output still to write, and the connection's
//! lifecycle as a [`Phase`](phase::Phase). It decides which callback runs
//! when, when input is handed over again, how a close proceeds (flush, shut the write half,
//! linger, finish), what the timers mean, the limits, and the counting.
//!
//! The execution models are *drivers*: they own the socket, move bytes
//! through a [`Transport`] they lend the session for each call, and feed it
//! events. The reactor feeds readiness and makes non-blocking calls; the
//! thread baseline makes blocking calls bounded by the next deadline. Both
//! drive this same type, so both behave alike by construction.
//!
//! # Lifecycle
//!
//! ```text
//!  Connecting ──connected──► (Handshaking) ─────────────► Open
//!      │ └────refused / error / connect timeout───────► Finished
//!  Handshaking ──TLS failure, alert held──► Closing(Tls)
//!      └────handshake timeout / end of stream / error──► Finished
//!  Open ──peer's FIN read──► ReadClosed ──input offered, on_eof──► Closing(PeerClosed | Truncated)
//!   │                            │
//!   ├──close / input limit / shutdown / TLS failure──► Closing(reason) ──output flushed──► Finished
//!   │                            │            └─peer may still send─► Lingering ─FIN, 1 MiB, 2 s─► Finished
//!   └──abort / panic / error / idle (from any phase)──────────────────────► Finished
//! ```
//!
//! An accepted connection starts in Open, or in Handshaking when its
//! transport has a handshake to make first (TLS: [`Transport::handshaking`]);
//! an outbound one in Connecting, then the same. `on_open` runs on entering
//! Open, so a handler never sees a connection whose handshake failed.
//!
//! | event | Connecting | Handshaking | Open | ReadClosed | Closing | Lingering |
//! |---|---|---|---|---|---|---|
//! | connected | → Handshaking or Open, `on_open` | – | – | – | – | – |
//! | bytes read | – | handshake records; done → Open, `on_open`, input offered | `on_data` while it consumes | – | – | discarded |
//! | end of stream | – | → Finished (`PeerClosed`, `Truncated`) | → ReadClosed | – | – | → Finished |
//! | TLS failure (alert to send) | – | → Closing(`Tls`) | → Closing(`Tls`) | → Closing(`Tls`) | – | → Finished |
//! | output drained | – | – | `on_drained`, input offered again | same, then `on_eof` | `close_notify`, then close or linger | – |
//! | handler resumes reading | – | – | input offered again, socket read again | input offered, then `on_eof` | – | – |
//! | server drains (once) | noted: `on_drain` after `on_open` | noted: `on_drain` after `on_open` | `on_drain` | `on_drain` | – | – |
//! | `close()`, input limit, shutdown | → Finished | → Finished | → Closing | → Closing | – | – |
//! | abort, panic, socket error | → Finished | → Finished | → Finished | → Finished | → Finished | → Finished |
//! | idle timer | – | – | → Finished | → Finished | → Finished | – |
//! | handshake timer | – | → Finished (`HandshakeTimeout`) | – | – | – | – |
//! | linger timer | – | – | – | – | → Finished | – |
//!
//! End of stream is `PeerClosed` after the peer's TLS `close_notify` (or on
//! a plain connection), `Truncated` without it; both offer the input and
//! run `on_eof` alike. A graceful close ends a TLS stream with our
//! `close_notify` ([`Transport::end_output`]) before the FIN or the close;
//! the records a TLS transport holds ([`Transport::held`]) count as output
//! waiting, against the watermarks too.
//!
//! The write half moves on its own ([`WriteHalf`](phase::WriteHalf)): open,
//! then shut once a requested [`shutdown_write`](crate::Conn::shutdown_write)
//! has flushed, or when lingering begins.
//!
//! # End of stream loses nothing
//!
//! Input that arrived before the peer's FIN is offered to `on_data` for as
//! long as the handler consumes it — again after output drains, if it
//! stopped because output was full — and only then does `on_eof` run, with
//! whatever is left (a last line without its newline, say). What the handler
//! still leaves after `on_eof` is discarded, counted in
//! [`Stats::input_discarded`](crate::Stats::input_discarded) and logged at
//! debug level.

#[cfg(test)]
mod fake;
mod handshake;
mod input;
mod machine;
mod output;
mod phase;
#[cfg(test)]
mod tests;
mod transport;

pub(crate) use machine::Session;

pub(crate) use transport::{Env, Read, Transport};
