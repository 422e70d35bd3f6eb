//! The thread-per-connection baseline passes the reactor's behavioural tests.
//!
//! Each shared scenario is written once, as a function of the execution
//! [`Model`](model::Model), and run against both [`evloop::EventLoop`] and
//! [`evloop::baseline::ThreadServer`]: the tests are named
//! `<area>::reactor::<scenario>` and `<area>::threads::<scenario>`. Scenarios
//! that only the thread model has (its threads, stack size, connection limit)
//! live in [`threads`], and running out of fds in [`emfile`].
//!
//! Every test runs [`isolated`](model::isolated): alone, since tests count
//! the process's fds and threads, and checked to close every fd it opened.

/// Runs each named scenario, a `fn(Model)` in the invoking module, once per
/// execution model, as `reactor::<scenario>` and `threads::<scenario>`, each
/// run [`isolated`](model::isolated).
macro_rules! on_both_models {
    ($($scenario:ident),+ $(,)?) => {
        /// The scenarios on the event loop.
        mod reactor {
            use crate::model::{Model, isolated};
            $(#[test] fn $scenario() { isolated(|| super::$scenario(Model::Reactor)) })+
        }
        /// The scenarios on the thread-per-connection baseline.
        mod threads {
            use crate::model::{Model, isolated};
            $(#[test] fn $scenario() { isolated(|| super::$scenario(Model::Threads)) })+
        }
    };
}

#[path = "../common/mod.rs"]
mod common;

mod echo;
mod emfile;
mod handler;
mod model;
mod shutdown;
mod threads;
