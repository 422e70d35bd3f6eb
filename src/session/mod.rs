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
//!  Connecting ──connected────────────────────────────► Open
//!      │ └────refused / error / connect timeout───────► Finished
//!  Open ──peer's FIN read──► ReadClosed ──input offered, on_eof──► Closing(PeerClosed)
//!   │                            │
//!   ├──close / input limit / shutdown──► Closing(reason) ──output flushed──► Finished
//!   │                            │            └─peer may still send─► Lingering ─FIN, 1 MiB, 2 s─► Finished
//!   └──abort / panic / error / idle (from any phase)──────────────────────► Finished
//! ```
//!
//! | event | Connecting | Open | ReadClosed | Closing | Lingering |
//! |---|---|---|---|---|---|
//! | connected | → Open, `on_open` | – | – | – | – |
//! | bytes read | – | `on_data` while it consumes | – | – | discarded |
//! | end of stream | – | → ReadClosed | – | – | → Finished |
//! | output drained | – | `on_drained`, input offered again | same, then `on_eof` | close or linger | – |
//! | handler resumes reading | – | input offered again, socket read again | input offered, then `on_eof` | – | – |
//! | `close()`, input limit, shutdown | → Finished | → Closing | → Closing | – | – |
//! | abort, panic, socket error | → Finished | → Finished | → Finished | → Finished | → Finished |
//! | idle timer | – | → Finished | → Finished | → Finished | – |
//! | linger timer | – | – | – | – | → Finished |
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
mod input;
mod machine;
mod output;
mod phase;
#[cfg(test)]
mod tests;
mod transport;

pub(crate) use machine::Session;

pub(crate) use transport::{Env, Read, Transport};
