//! Reading past a refused request's body, so that the client reads the
//! refusal.
//!
//! A client that sends its whole body before it reads anything (Python's
//! `http.client`, Java's `HttpURLConnection`) is still sending when a 413
//! leaves. Were the server to close at once, the unread bytes would make
//! its kernel answer with a reset, and the client would see a broken pipe
//! instead of the status. So after a refusal caused by the body, the
//! connection reads and drops the rest of that body — up to
//! [`HttpConfig::max_discard`] bytes and [`HttpConfig::discard_timeout`] —
//! then closes.

use bytes::BytesMut;

use super::HttpConfig;
use super::chunked::{ChunkLimits, Dechunker};

/// What the client may still send after a refused request's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rest {
    /// Nothing is owed: close (lingering on anything that still comes).
    Nothing,
    /// A body of this many bytes.
    Length(u64),
    /// The rest of a chunked body, from where this decoder stands.
    Chunked(Dechunker),
    /// A body whose end cannot be known: read until the client's end of
    /// stream or the bounds.
    Unknown,
}

/// A refused request's body being read and dropped.
#[derive(Debug)]
pub(crate) struct Discard {
    /// How the rest is delimited.
    rest: Rest,
    /// Bytes that may still be dropped before giving up.
    budget: u64,
}

impl Discard {
    /// Starts discarding `rest` within `config`'s bounds; `None` when there
    /// is nothing to discard, or a declared length passes the bound (then
    /// reading it would be wasted: the client will not see the answer).
    pub(crate) fn new(rest: Rest, config: &HttpConfig) -> Option<Self> {
        let budget = config.max_discard as u64;
        match rest {
            Rest::Nothing | Rest::Length(0) => None,
            Rest::Length(len) if len > budget => None,
            _ if budget == 0 => None,
            rest => Some(Discard { rest, budget }),
        }
    }

    /// Drops what `input` holds of the rest; returns true once the rest is
    /// over (its end reached, or the byte bound spent). Bytes after the
    /// body's end stay in `input`.
    pub(crate) fn consume(&mut self, input: &mut BytesMut) -> bool {
        let before = input.len() as u64;
        let ended = match &mut self.rest {
            Rest::Nothing => true,
            Rest::Length(left) => {
                let n = (*left).min(before);
                // `n` is at most `input.len()`, a usize.
                let _ = input.split_to(n as usize);
                *left -= n;
                *left == 0
            }
            Rest::Chunked(dechunker) => {
                let limits = ChunkLimits {
                    body: u64::MAX,
                    trailers: usize::MAX,
                };
                // Whatever is wrong with it, the client is told already.
                dechunker.decode(input, limits, drop).unwrap_or(true)
            }
            Rest::Unknown => {
                input.clear();
                false
            }
        };
        let dropped = before - input.len() as u64;
        self.budget = self.budget.saturating_sub(dropped);
        ended || self.budget == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_body_is_skipped_exactly() {
        let config = HttpConfig::default();
        let mut discard = Discard::new(Rest::Length(10), &config).unwrap();
        let mut input = BytesMut::from(&b"01234"[..]);
        assert!(!discard.consume(&mut input));
        input.extend_from_slice(b"56789GET");
        assert!(discard.consume(&mut input));
        assert_eq!(&input[..], b"GET");
    }

    #[test]
    fn a_chunked_rest_ends_at_its_last_chunk() {
        let config = HttpConfig::default();
        let mut discard = Discard::new(Rest::Chunked(Dechunker::default()), &config).unwrap();
        let mut input = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\nNEXT"[..]);
        assert!(discard.consume(&mut input));
        assert_eq!(&input[..], b"NEXT");
    }

    #[test]
    fn the_bound_ends_an_unknown_or_too_long_rest() {
        let config = HttpConfig::default().max_discard(8);
        assert!(Discard::new(Rest::Length(9), &config).is_none());
        assert!(Discard::new(Rest::Nothing, &config).is_none());
        let mut discard = Discard::new(Rest::Unknown, &config).unwrap();
        assert!(!discard.consume(&mut BytesMut::from(&b"0123"[..])));
        assert!(discard.consume(&mut BytesMut::from(&b"4567"[..])));
        assert!(Discard::new(Rest::Unknown, &HttpConfig::default().max_discard(0)).is_none());
    }
}
