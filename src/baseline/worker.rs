//! The body of a connection thread: register, make the handler, serve the
//! connection, close it, call `on_close`, with every panic caught.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, error};
use socket2::SockRef;

use super::connection::Connection;
use super::link::Link;
use super::shared::Shared;
use crate::conn::{ConnId, ConnState};
use crate::limit::Place;
#[cfg(feature = "tls")]
use crate::tls::{TlsAcceptor, TlsState};
use crate::{CloseReason, Config, Handler};

/// The server's TLS settings, if it serves TLS.
#[cfg(feature = "tls")]
pub(super) type Tls<'a> = Option<&'a TlsAcceptor>;
/// Without the `tls` feature, nothing.
#[cfg(not(feature = "tls"))]
pub(super) type Tls<'a> = ();

/// A connection handed to its thread.
#[derive(Debug)]
pub(super) struct Accepted {
    /// Its serial number in the registry, also its [`ConnId`]'s token.
    pub(super) serial: u64,
    /// Its socket and counters.
    pub(super) link: Arc<Link>,
    /// The peer, as `accept` returned it.
    pub(super) peer: crate::Peer,
    /// Its place under the connection cap, given back when it closes.
    pub(super) place: Place,
}

/// Serves one admitted connection on the calling thread, from making its
/// handler to `on_close`. Never panics: a panic that escapes the handler's
/// callbacks (its factory, its `Drop`) is caught and logged here.
pub(super) fn serve<F, H>(shared: &Shared, config: &Config, factory: &F, tls: Tls<'_>, accepted: Accepted)
where
    F: Fn() -> H,
    H: Handler,
{
    let served = panic::catch_unwind(AssertUnwindSafe(|| {
        serve_unguarded(shared, config, factory, tls, accepted)
    }));
    if served.is_err() {
        shared.count_panic();
        error!("a connection thread panicked outside the handler's callbacks");
    }
}

/// [`serve`] without the last-resort catch.
fn serve_unguarded<F, H>(shared: &Shared, config: &Config, factory: &F, tls: Tls<'_>, accepted: Accepted)
where
    F: Fn() -> H,
    H: Handler,
{
    let Accepted {
        serial,
        link,
        peer,
        place,
    } = accepted;
    let registration = Registration::open(shared, serial, link, place);
    let link = registration.link();
    let id = ConnId::new(0, serial as usize, 0);
    debug!("{id}: accepted from {peer}");
    let Ok(handler) = panic::catch_unwind(AssertUnwindSafe(factory)) else {
        link.counters.panicked();
        error!("{id}: the handler factory panicked; closing this connection");
        let _ = SockRef::from(&link.stream).set_linger(Some(Duration::ZERO));
        return registration.close(CloseReason::Panicked);
    };
    let state = ConnState::new(id, peer, config.idle_timeout);
    #[cfg(feature = "tls")]
    let tls = match tls.map(TlsAcceptor::accept).transpose() {
        Ok(tls) => tls.map(|conn| TlsState::new(conn, None)),
        Err(e) => {
            error!("{id}: cannot start the TLS server side: {e}");
            return registration.close(CloseReason::Tls);
        }
    };
    #[cfg(not(feature = "tls"))]
    let () = tls;
    let connection = Connection::new(
        link,
        shared,
        config,
        handler,
        state,
        #[cfg(feature = "tls")]
        tls,
    );
    // The session calls `on_close`; the socket closes when the registration drops.
    let reason = connection.run();
    registration.close(reason);
}

/// A started connection's place in the registry, held by its thread.
///
/// Dropping it, when the connection has ended or while unwinding from a bug,
/// closes the connection in the registry (counted under its reason, `Panicked`
/// unless [`close`](Registration::close) said otherwise) and then releases
/// the thread's reference to the socket, closing its fd.
#[derive(Debug)]
pub(super) struct Registration<'a> {
    /// Where the connection is registered.
    shared: &'a Shared,
    /// Its serial number there.
    serial: u64,
    /// Its socket and counters.
    link: Option<Arc<Link>>,
    /// The reason it will be counted as closed for.
    reason: CloseReason,
    /// Its place under the connection cap.
    place: Option<Place>,
}

impl<'a> Registration<'a> {
    /// Counts the connection as accepted and open.
    pub(super) fn open(shared: &'a Shared, serial: u64, link: Arc<Link>, place: Place) -> Self {
        shared.opened();
        Registration {
            shared,
            serial,
            link: Some(link),
            reason: CloseReason::Panicked,
            place: Some(place),
        }
    }

    /// The connection's socket and counters.
    pub(super) fn link(&self) -> &Link {
        self.link
            .as_deref()
            .expect("a registration holds its link until dropped")
    }

    /// Closes the connection for `reason`, releasing its socket.
    pub(super) fn close(mut self, reason: CloseReason) {
        self.reason = reason;
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        // The place first, so that a client that saw this connection close
        // may connect again at once; then our reference to the socket goes
        // with the registry's, before the server can be seen to have
        // stopped: `ThreadHandle::wait` returns only once every connection's
        // socket is closed.
        drop(self.place.take());
        self.shared.closed(self.serial, &self.reason, self.link.take());
    }
}
