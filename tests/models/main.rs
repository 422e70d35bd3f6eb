//! The behavioural suite: what a server does for its handlers and clients,
//! checked over real sockets on both execution models.
//!
//! Each shared scenario is written once, as a function of the execution
//! [`Model`](common::Model), and run against both [`evloop::EventLoop`] and
//! [`evloop::baseline::ThreadServer`] by [`on_both_models!`] (from
//! `tests/common`): the tests are named `<area>::reactor::<scenario>` and
//! `<area>::threads::<scenario>`. Where the
//! models differ in a detail (a counter only the reactor keeps), the scenario
//! says so with a `match` on the model. Scenarios that only the thread model
//! has (its threads, stack size, connection limit) live in [`threads`]; the
//! reactor's own (many loops) are in `tests/server.rs`. Running out of fds,
//! on both models, is in `tests/emfile/`, where each server runs in a child
//! process with its own fd limit.
//!
//! Every test runs [`isolated`](common::isolated): alone, since tests count
//! the process's fds and threads, and checked to close every fd it opened.

#[path = "../common/mod.rs"]
mod common;

mod echo;
mod handler;
mod limits;
mod shutdown;
mod threads;
