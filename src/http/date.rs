//! The `Date` header line, formatted once a second per thread.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `Server` line that follows the date in [`HttpDate::with_server`].
const SERVER_LINE: &[u8] = b"Server: evloop\r\n";

/// Longest `Date` line kept: `Date: `, the 29-byte IMF-fixdate of RFC 9110
/// and CRLF make 37 bytes.
const DATE_MAX: usize = 48;

/// Room for the `Date` line and the `Server` line after it.
const CAPACITY: usize = DATE_MAX + SERVER_LINE.len();

/// A formatted `Date: ...\r\n` header line followed by `Server: evloop`,
/// copied out of a per-thread cache: most responses send both, as one copy.
#[derive(Clone, Copy)]
pub(crate) struct HttpDate {
    /// The `Date` line, then the `Server` line.
    bytes: [u8; CAPACITY],
    /// Length of the `Date` line, at most `DATE_MAX`.
    len: usize,
}

impl HttpDate {
    /// The current date, formatted at most once a second per thread:
    /// formatting a date costs more than the rest of a small response.
    /// Within the second the cached line is for, two comparisons of the
    /// clock's reading decide (a clock set back leaves that second too).
    pub(crate) fn now() -> Self {
        thread_local! {
            /// The second the cached line is for, as `[from, until)`,
            /// and the line.
            static DATE: Cell<(SystemTime, SystemTime, HttpDate)> =
                const { Cell::new((UNIX_EPOCH, UNIX_EPOCH, HttpDate { bytes: [0; CAPACITY], len: 0 })) };
        }
        let now = SystemTime::now();
        DATE.with(|cell| {
            let (from, until, cached) = cell.get();
            if from <= now && now < until {
                return cached;
            }
            let from =
                UNIX_EPOCH + Duration::from_secs(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
            let line = format!("Date: {}\r\n", httpdate::fmt_http_date(now));
            let len = line.len().min(DATE_MAX);
            let mut date = HttpDate {
                bytes: [0; CAPACITY],
                len,
            };
            date.bytes[..len].copy_from_slice(&line.as_bytes()[..len]);
            date.bytes[len..len + SERVER_LINE.len()].copy_from_slice(SERVER_LINE);
            cell.set((from, from + Duration::from_secs(1), date));
            date
        })
    }

    /// Length of [`padded`](Self::padded)'s block.
    pub(crate) const PADDED: usize = CAPACITY;

    /// The `Date` and `Server` lines in a block of fixed size (copied as
    /// one), and how many of its bytes they take.
    #[inline]
    pub(crate) fn padded(&self) -> (&[u8; CAPACITY], usize) {
        (&self.bytes, self.len + SERVER_LINE.len())
    }

    /// The whole `Date` line, CRLF included.
    pub(crate) fn line(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The `Date` line and `Server: evloop`.
    pub(crate) fn with_server(&self) -> &[u8] {
        &self.bytes[..self.len + SERVER_LINE.len()]
    }
}
