//! The two shapes of application the HTTP handler drives: [`Immediate`],
//! a function from request to response, and [`Deferred`], a function given
//! the request and a [`Responder`] to answer with now or later.

use super::{Request, Responder, Response};

/// An application, as the HTTP handler calls it. Which method is called is
/// fixed by [`DEFERS`](App::DEFERS), known at compile time, so the
/// immediate path pays nothing for the deferred one.
pub(crate) trait App: Send + Sync + 'static {
    /// Whether answers may come later: the handler then keeps answers in
    /// order and makes a waker for the connection.
    const DEFERS: bool;

    /// The response to `request`, now (called when `DEFERS` is false).
    fn now(&self, request: &Request) -> Response;

    /// Hands `request` and its responder to the application (called when
    /// `DEFERS` is true).
    fn later(&self, request: Request, responder: Responder);
}

/// A `Fn(&Request) -> Response` application.
#[derive(Debug)]
pub(crate) struct Immediate<F>(pub(crate) F);

impl<F> App for Immediate<F>
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    const DEFERS: bool = false;

    #[inline]
    fn now(&self, request: &Request) -> Response {
        (self.0)(request)
    }

    fn later(&self, request: Request, responder: Responder) {
        responder.send(self.now(&request));
    }
}

/// A `Fn(Request, Responder)` application.
#[derive(Debug)]
pub(crate) struct Deferred<F>(pub(crate) F);

impl<F> App for Deferred<F>
where
    F: Fn(Request, Responder) + Send + Sync + 'static,
{
    const DEFERS: bool = true;

    fn now(&self, _request: &Request) -> Response {
        // Never called: the handler asks a deferring application `later`.
        Response::error(500)
    }

    fn later(&self, request: Request, responder: Responder) {
        (self.0)(request, responder);
    }
}
