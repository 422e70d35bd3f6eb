//! HTTP/1.1 servers on the reactor, and a small client.
//!
//! A request/response layer over [`Server`](crate::Server): the head is
//! parsed by [`httparse`](https://docs.rs/httparse), bodies are framed by
//! `Content-Length` or the chunked coding, and an application is one
//! function: from [`Request`] to [`Response`], called on the loop thread that
//! owns the connection, or from a [`Request`] and a [`Responder`] that
//! answers now or later, from any thread, whole or as a stream
//! ([`BodySource`]).
//!
//! # Example: hello world
//!
//! ```no_run
//! use evloop::http::{Request, Response};
//!
//! evloop::http::serve("127.0.0.1:3000", |_req: &Request| Response::text("Hello world!"))?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How the pieces fit
//!
//! * [`serve`] — run an application with every default until Ctrl-C.
//! * [`HttpServer`] — the same with every [`Server`](crate::Server) option
//!   and [`HttpConfig`]; [`start`](HttpServer::start) returns a
//!   [`ServerHandle`](crate::ServerHandle) for stats and shutdown.
//! * [`Request`] — method, path, query, headers (case-insensitive), body.
//! * [`Response`] — status, headers, body; `Content-Length`, `Date` and
//!   `Server` are added when it is sent.
//! * [`Responder`] — the answer to one request of a deferring application
//!   ([`HttpServer::start_deferred`]): [`send`](Responder::send) now or
//!   later from any thread (it is `Send`), [`after`](Responder::after) a
//!   timer on the loop, or [`stream`](Responder::stream) a body of unknown
//!   length from a [`BodySource`] — an iterator ([`body_from_iter`]) or a
//!   channel fed by another thread ([`body_channel`]) — chunked, pulled
//!   as the client reads.
//! * [`HttpConfig`] — the limits: head size, header count, body size, head
//!   timeout (408), keep-alive timeout, how much of a refused body is read
//!   past, and which bodies reach a deferring application in pieces
//!   ([`RequestBody`], from [`Request::body_reader`]).
//! * [`get`], [`post`], [`ClientRequest`] — a client: one request to an
//!   `http://` URL (or `https://`, with a TLS client config:
//!   `ClientRequest::tls`, feature `tls`), driven by an
//!   [`EventLoop`](crate::EventLoop) on the
//!   caller's thread, returning a [`ClientResponse`] that owns its status,
//!   headers and body (by length, chunked or to the end of the stream,
//!   bounded); redirects are not followed; every failure (refused, timed
//!   out, malformed, too large) is an `io::Error` and no socket outlives
//!   the call.
//!
//! # Guarantees
//!
//! * Responses go out in request order, pipelined requests included,
//!   whatever order a deferring application answers them in.
//! * A streamed body is pulled only while the connection's queued output is
//!   below its high watermark: a slow client holds at most that much of it
//!   in memory, however long it is.
//! * Every refused request gets its status (400, 408, 413, 431, 501) with
//!   `Connection: close` before the connection closes, and the rest of a
//!   refused body is read past (within bounds) so that the client reads it;
//!   a panicking application gets 500 and closes only its own connection.
//! * Memory per connection is bounded by [`HttpConfig::max_head`] plus
//!   [`HttpConfig::max_body`] of input and the loop's high watermark of
//!   queued output (plus one response).

mod answers;
mod app;
mod batch;
mod body;
mod chunked;
mod client;
mod client_exchange;
mod client_response;
mod client_url;
mod date;
pub(crate) mod decode;
mod discard;
mod framing;
mod head;
mod limits;
mod protocol;
mod request;
mod responder;
mod response;
mod serve;
mod status;
mod target;
mod upload;
mod wake;

pub use body::{BodyClosed, BodySender, BodySource, ChannelBody, IterBody, body_channel, body_from_iter};
pub use client::{ClientRequest, DEFAULT_MAX_BODY, get, get_with_max_body, post};
pub use client_response::ClientResponse;
pub use limits::HttpConfig;
pub use request::{Request, Version};
pub use responder::Responder;
pub use response::Response;
pub use serve::{HttpServer, serve};
pub use upload::RequestBody;
