//! The signals that ask a server to stop: `SIGINT` (Ctrl-C) and `SIGTERM`.

use std::io;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// `SIGINT` and `SIGTERM`, caught from the moment this is made: instead of
/// ending the process, each arrival is handed to the thread that iterates
/// over [`forever`](TerminationSignals::forever).
#[derive(Debug)]
pub(crate) struct TerminationSignals {
    /// signal-hook's handlers, which queue the signals they catch.
    signals: Signals,
}

impl TerminationSignals {
    /// Installs the handlers.
    ///
    /// # Errors
    ///
    /// Those of `sigaction`, or of the pipe the handlers write to.
    pub(crate) fn catch() -> io::Result<Self> {
        Ok(TerminationSignals {
            signals: Signals::new([SIGINT, SIGTERM])?,
        })
    }

    /// The signals as they arrive, by name (`"SIGINT"` or `"SIGTERM"`);
    /// each step blocks until the next one. It never ends.
    pub(crate) fn forever(&mut self) -> impl Iterator<Item = &'static str> + '_ {
        self.signals
            .forever()
            .map(|signal| if signal == SIGINT { "SIGINT" } else { "SIGTERM" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_signal_is_named_instead_of_ending_the_process() {
        let mut signals = TerminationSignals::catch().unwrap();
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert_eq!(signals.forever().next(), Some("SIGTERM"));
    }
}
