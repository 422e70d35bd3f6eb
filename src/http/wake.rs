//! [`ConnWaker`]: how an answer given later, or a body piece that became
//! ready, reaches the connection it is for, from any thread.
//!
//! On an event loop the wake goes through [`Remote`]: a closure run on the
//! connection's loop sets a timer due at once, and the HTTP handler, in
//! `on_timer`, looks at what became ready. Wakes coalesce: one is in flight
//! at a time, until the handler has looked.
//!
//! The thread-per-connection baseline has no such door (its threads block
//! in `read`), so there the handler looks by itself while something is
//! awaited, on a short timer: every millisecond at first, backing off to
//! every [`MAX_POLL`] while nothing comes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Wake;
use std::time::Duration;

use crate::{ConnId, Remote};

/// The first interval of the baseline's look for answers.
pub(crate) const MIN_POLL: Duration = Duration::from_millis(1);

/// The longest interval of the baseline's look for answers.
pub(crate) const MAX_POLL: Duration = Duration::from_millis(16);

/// Wakes one HTTP connection from any thread.
#[derive(Debug)]
pub(crate) struct ConnWaker {
    /// The door to the connection's loop; `None` on the baseline.
    remote: Option<Remote>,
    /// The connection.
    id: ConnId,
    /// A wake is on its way and the handler has not looked since.
    scheduled: AtomicBool,
}

impl ConnWaker {
    /// A waker for connection `id`, reached through `remote` if any.
    pub(crate) fn new(remote: Option<Remote>, id: ConnId) -> Arc<Self> {
        Arc::new(ConnWaker {
            remote,
            id,
            scheduled: AtomicBool::new(false),
        })
    }

    /// True where wakes cannot reach the connection: its handler must look
    /// for answers on a timer.
    pub(crate) fn must_poll(&self) -> bool {
        self.remote.is_none()
    }

    /// Called by the handler before it looks at what may be ready: wakes
    /// from then on schedule a new look.
    pub(crate) fn looking(&self) {
        self.scheduled.store(false, Ordering::SeqCst);
    }
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(remote) = &self.remote {
            // A closed connection refuses the command; nothing is waiting.
            let _ = remote.run(self.id, |conn| {
                conn.set_timer(Duration::ZERO);
            });
        }
    }
}
