//! [`Config`]: per-connection limits and loop tuning.

use std::time::Duration;

/// Limits and tuning for the connections of an event loop.
///
/// Every knob has a default that suits a typical request/response server;
/// the methods document each trade-off. Methods panic on values that cannot
/// work (a zero read size, a low watermark above the high one).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use evloop::Config;
///
/// let config = Config::default()
///     .idle_timeout(Some(Duration::from_secs(30)))
///     .write_watermarks(16 * 1024, 256 * 1024)
///     .max_input(64 * 1024);
/// assert_eq!(config.get_max_input(), 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Smallest free space offered to each `read`.
    pub(crate) read_size: usize,
    /// Bytes read from one connection per turn before moving on.
    pub(crate) read_budget: usize,
    /// Unconsumed input allowed before the connection is closed.
    pub(crate) max_input: usize,
    /// Output above this pauses reading. Invariant: `low_watermark <= high_watermark`.
    pub(crate) high_watermark: usize,
    /// Output at or below this resumes reading and calls `on_drained`.
    pub(crate) low_watermark: usize,
    /// Idle timeout given to every new connection.
    pub(crate) idle_timeout: Option<Duration>,
    /// Capacity of the `mio::Events` queue: events taken per poll.
    pub(crate) events_capacity: usize,
    /// Whether accepted sockets get `TCP_NODELAY`.
    pub(crate) nodelay: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            read_size: 16 * 1024,
            read_budget: 256 * 1024,
            max_input: 1024 * 1024,
            high_watermark: 64 * 1024,
            low_watermark: 32 * 1024,
            idle_timeout: Some(Duration::from_secs(60)),
            events_capacity: 1024,
            nodelay: true,
        }
    }
}

impl Config {
    /// Smallest free space given to each `read` system call.
    ///
    /// Default 16 KiB. Larger reads move bulk data in fewer system calls.
    /// A loop lends one buffer to whichever connection reads; a connection
    /// owns a buffer only while its handler leaves a partial message in it,
    /// so waiting connections cost no read buffer.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0.
    #[track_caller]
    pub fn read_size(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "read_size must be at least 1 byte");
        self.read_size = bytes;
        self
    }

    /// Bytes read from one connection in one turn before the loop moves on.
    ///
    /// Default 256 KiB. A connection that used its budget is served again on
    /// the next turn without waiting for a new event, so a fast sender cannot
    /// starve the others; a smaller budget is fairer, a larger one cheaper.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0.
    #[track_caller]
    pub fn read_budget(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "read_budget must be at least 1 byte");
        self.read_budget = bytes;
        self
    }

    /// Unconsumed input a handler may leave before the connection is closed
    /// with [`CloseReason::InputLimit`](crate::CloseReason::InputLimit).
    ///
    /// Default 1 MiB. It bounds what a peer can make the server hold by
    /// sending a message that never completes.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0.
    #[track_caller]
    pub fn max_input(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "max_input must be at least 1 byte");
        self.max_input = bytes;
        self
    }

    /// Output watermarks: above `high` queued bytes, reading from the
    /// connection pauses (backpressure); once the queue drains to `low`,
    /// reading resumes and [`Handler::on_drained`](crate::Handler::on_drained)
    /// is called.
    ///
    /// Default 32 KiB / 64 KiB. Memory per connection stays near
    /// `high + read_size`; a wider gap means fewer pause/resume cycles.
    ///
    /// # Panics
    ///
    /// Panics if `low > high`.
    #[track_caller]
    pub fn write_watermarks(mut self, low: usize, high: usize) -> Self {
        assert!(low <= high, "low watermark {low} is above high watermark {high}");
        self.low_watermark = low;
        self.high_watermark = high;
        self
    }

    /// Idle timeout for new connections: closed with
    /// [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout) after this
    /// long without a byte read or written. `None` disables it.
    ///
    /// Default 60 s, so a vanished peer cannot hold a socket forever. A
    /// handler can change its own with [`Conn::set_idle_timeout`](crate::Conn::set_idle_timeout).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Events taken from the kernel per poll.
    ///
    /// Default 1024. More means fewer `epoll_wait` calls under heavy load.
    ///
    /// # Panics
    ///
    /// Panics if `events` is 0.
    #[track_caller]
    pub fn events_capacity(mut self, events: usize) -> Self {
        assert!(events > 0, "events_capacity must be at least 1");
        self.events_capacity = events;
        self
    }

    /// Whether accepted sockets get `TCP_NODELAY` (Nagle's algorithm off).
    ///
    /// Default `true`: replies go out at once; the loop already coalesces
    /// everything a callback writes into one system call.
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// The configured [`max_input`](Config::max_input).
    pub fn get_max_input(&self) -> usize {
        self.max_input
    }

    /// The configured watermarks, `(low, high)`.
    pub fn get_write_watermarks(&self) -> (usize, usize) {
        (self.low_watermark, self.high_watermark)
    }

    /// The configured idle timeout.
    pub fn get_idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "above high watermark")]
    fn inverted_watermarks_panic() {
        let _ = Config::default().write_watermarks(10, 5);
    }

    #[test]
    #[should_panic(expected = "read_size")]
    fn zero_read_size_panics() {
        let _ = Config::default().read_size(0);
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = Config::default();
        assert_eq!(c.get_write_watermarks(), (32 * 1024, 64 * 1024));
        assert_eq!(c.get_idle_timeout(), Some(Duration::from_secs(60)));
        assert_eq!(c.get_max_input(), 1024 * 1024);
    }
}
