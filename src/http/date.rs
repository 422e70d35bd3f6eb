//! The `Date` header line, formatted once a second per thread.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest `Date` line kept: `Date: `, the 29-byte IMF-fixdate of RFC 9110
/// and CRLF make 37 bytes.
const DATE_CAPACITY: usize = 48;

/// A formatted `Date: ...\r\n` header line, copied out of a per-thread
/// cache.
#[derive(Clone, Copy)]
pub(crate) struct HttpDate {
    /// The line's bytes, the first `len` of them used.
    bytes: [u8; DATE_CAPACITY],
    /// Bytes used, at most `DATE_CAPACITY`.
    len: usize,
}

impl HttpDate {
    /// The current date, formatted at most once a second per thread:
    /// formatting a date costs more than the rest of a small response.
    pub(crate) fn now() -> Self {
        thread_local! {
            static DATE: Cell<(u64, HttpDate)> =
                const { Cell::new((u64::MAX, HttpDate { bytes: [0; DATE_CAPACITY], len: 0 })) };
        }
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        DATE.with(|cell| {
            let (cached_second, cached) = cell.get();
            if cached_second == second {
                return cached;
            }
            let line = format!("Date: {}\r\n", httpdate::fmt_http_date(now));
            let len = line.len().min(DATE_CAPACITY);
            let mut date = HttpDate {
                bytes: [0; DATE_CAPACITY],
                len,
            };
            date.bytes[..len].copy_from_slice(&line.as_bytes()[..len]);
            cell.set((second, date));
            date
        })
    }

    /// The whole header line, CRLF included.
    pub(crate) fn line(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}
