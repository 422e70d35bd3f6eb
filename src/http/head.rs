//! A request head's parse in one pass, for the heads most clients send,
//! with `httparse` behind it for every other.
//!
//! [`parse`] takes only a strict subset of what `httparse` accepts — an
//! upper-case method, a printable ASCII target, `HTTP/1.0` or `HTTP/1.1`,
//! headers of token names and printable ASCII values, every line ended by
//! CRLF — and finds in it what `httparse` finds. Anything else (a bare LF,
//! empty lines before the request line, obs-text, an incomplete head, one
//! header too many) gives `None`, and the decoder asks `httparse`, whose
//! verdict stands. What a request may be is thus decided by `httparse`
//! alone; this pass only spares the common head its generality, and
//! reads the headers the server acts on ([`Framing`]) as it goes.

use std::ops::Range;

use super::Version;
use super::framing::Framing;

/// The request line, as ranges within the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The method.
    pub(crate) method: Range<usize>,
    /// The request target.
    pub(crate) target: Range<usize>,
    /// The version.
    pub(crate) version: Version,
    /// The length of the whole head, blank line included.
    pub(crate) len: usize,
}

/// [`CLASS`] bit: an upper-case letter, as in the usual methods.
const UPPER: u8 = 1;
/// [`CLASS`] bit: a printable ASCII character (`!` to `~`), as this pass
/// takes in a target.
const TARGET: u8 = 2;
/// [`CLASS`] bit: a token character (RFC 9110 §5.6.2), as in header names.
const TOKEN: u8 = 4;
/// [`CLASS`] bit: HTAB, SP or a printable ASCII character, as this pass
/// takes in a header value.
const VALUE: u8 = 8;

/// What each byte may be, as [`UPPER`], [`TARGET`], [`TOKEN`] and
/// [`VALUE`] bits: one lookup per byte.
static CLASS: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        if c.is_ascii_uppercase() {
            class |= UPPER;
        }
        if c.is_ascii_graphic() {
            class |= TARGET | VALUE;
        }
        if c.is_ascii_alphanumeric() {
            class |= TOKEN;
        }
        if c == b' ' || c == b'\t' {
            class |= VALUE;
        }
        table[b] = class;
        b += 1;
    }
    let marks = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < marks.len() {
        table[marks[i] as usize] |= TOKEN;
        i += 1;
    }
    table
};

/// Where the run of bytes with one of the `bits` starting at `at` ends.
#[inline(always)]
fn skip(buf: &[u8], at: usize, bits: u8) -> usize {
    let rest = buf.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|&b| CLASS[usize::from(b)] & bits == 0)
        .unwrap_or(rest.len())
}

/// [`skip`] for `bits` that every byte from `low` to `~` has, eight bytes
/// at a time (targets and header values, the long parts of a head, are
/// mostly of that range): the first byte outside it ends the run unless
/// it has one of the `bits` too (a tab in a value).
#[inline(always)]
fn skip_printable(buf: &[u8], mut at: usize, low: u8, bits: u8) -> usize {
    loop {
        let Some(word) = buf.get(at..at + 8) else {
            return skip(buf, at, bits);
        };
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let outside = below(word, low) | above(word, b'~');
        if outside == 0 {
            at += 8;
            continue;
        }
        // The lowest flagged byte is the first outside the range (a false
        // flag only ever follows a true one).
        at += (outside.trailing_zeros() / 8) as usize;
        if class(buf, at) & bits == 0 {
            return at;
        }
        at += 1;
    }
}

/// The class bits of `buf[at]`; none past the end.
#[inline(always)]
fn class(buf: &[u8], at: usize) -> u8 {
    buf.get(at).map_or(0, |&b| CLASS[usize::from(b)])
}

/// `0x01` in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// `0x80` in every byte of a word.
const HIGHS: u64 = ONES << 7;

/// Non-zero if a byte of `word` is below `n` (at most 128): the
/// subtraction borrows into a byte's high bit only from a byte below `n`,
/// or from one whose own high bit is already set.
#[inline(always)]
fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS
}

/// Non-zero if a byte of `word` is above `n` (at most 127): adding
/// `127 - n` sets the high bit of a byte above `n`, which no carry from a
/// byte not above it reaches; bytes of 128 and more have it already.
#[inline(always)]
fn above(word: u64, n: u8) -> u64 {
    (word.wrapping_add(ONES * u64::from(127 - n)) | word) & HIGHS
}

/// `HTTP/1.1`, as a little-endian word.
const HTTP_1_1: u64 = u64::from_le_bytes(*b"HTTP/1.1");
/// `HTTP/1.0`, as a little-endian word.
const HTTP_1_0: u64 = u64::from_le_bytes(*b"HTTP/1.0");

/// `CRLF`, as a little-endian pair of bytes.
const CRLF: u16 = u16::from_le_bytes(*b"\r\n");

/// Whether `buf` holds CRLF at `at`; `None` past the end.
#[inline(always)]
fn crlf(buf: &[u8], at: usize) -> Option<bool> {
    let pair: [u8; 2] = buf.get(at..at + 2)?.try_into().ok()?;
    Some(u16::from_le_bytes(pair) == CRLF)
}

/// Parses a complete head at the start of `buf` if it is of the common
/// kind, pushing its headers (at most `max_headers`) onto `headers` as
/// name and value ranges, each seen by `framing`; `None` for any other
/// input, with `headers` and `framing` then to be discarded.
pub(crate) fn parse<'a>(
    buf: &'a [u8],
    max_headers: usize,
    headers: &mut Vec<(Range<usize>, Range<usize>)>,
    framing: &mut Framing<'a>,
) -> Option<Line> {
    // The commonest method and header are known at a glance.
    let method_end = if buf.starts_with(b"GET ") {
        3
    } else {
        skip(buf, 0, UPPER)
    };
    if method_end == 0 || buf.get(method_end) != Some(&b' ') {
        return None;
    }
    let target_end = skip_printable(buf, method_end + 1, b'!', TARGET);
    if target_end == method_end + 1 || buf.get(target_end) != Some(&b' ') {
        return None;
    }
    let word = buf.get(target_end + 1..target_end + 9)?;
    let version = match u64::from_le_bytes(word.try_into().ok()?) {
        HTTP_1_1 => Version::Http11,
        HTTP_1_0 => Version::Http10,
        _ => return None,
    };
    if !crlf(buf, target_end + 9)? {
        return None;
    }
    let mut at = target_end + 11;
    loop {
        if crlf(buf, at)? {
            return Some(Line {
                method: 0..method_end,
                target: method_end + 1..target_end,
                version,
                len: at + 2,
            });
        }
        let name_end = match buf.get(at..at + 5) {
            Some(b"Host:") => at + 4,
            _ => skip(buf, at, TOKEN),
        };
        if name_end == at || buf.get(name_end) != Some(&b':') || headers.len() == max_headers {
            return None;
        }
        let name = at..name_end;
        let start = skip_blanks(buf, name_end + 1);
        let end = skip_printable(buf, start, b' ', VALUE);
        if !crlf(buf, end)? {
            return None;
        }
        let value = start..trim_end(buf, start, end);
        framing.see(&buf[name.clone()], &buf[value.clone()]);
        headers.push((name, value));
        at = end + 2;
    }
}

/// Past the SP and HTAB at `at`.
#[inline(always)]
fn skip_blanks(buf: &[u8], mut at: usize) -> usize {
    while matches!(buf.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    at
}

/// The end of `buf[start..end]` without its trailing SP and HTAB.
#[inline(always)]
fn trim_end(buf: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && matches!(buf[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use super::*;
    use proptest::prelude::*;

    /// A parsed head: the line, then each header's name and value.
    type Parsed = (Line, Vec<(Vec<u8>, Vec<u8>)>);

    /// What this pass makes of `raw`.
    fn fast(raw: &[u8], max_headers: usize) -> Option<Parsed> {
        let mut headers = Vec::new();
        let line = parse(raw, max_headers, &mut headers, &mut Framing::default())?;
        let headers = headers
            .into_iter()
            .map(|(n, v)| (raw[n].to_vec(), raw[v].to_vec()))
            .collect();
        Some((line, headers))
    }

    /// What `httparse` makes of `raw`, in the same shape; `None` unless
    /// complete.
    fn reference(raw: &[u8], max_headers: usize) -> Option<Parsed> {
        let mut slots = vec![MaybeUninit::uninit(); max_headers];
        let mut parsed = httparse::Request::new(&mut []);
        let Ok(httparse::Status::Complete(len)) = parsed.parse_with_uninit_headers(raw, &mut slots) else {
            return None;
        };
        let at = |part: &[u8]| part.as_ptr() as usize - raw.as_ptr() as usize;
        let (method, target) = (parsed.method?.as_bytes(), parsed.path?.as_bytes());
        let line = Line {
            method: at(method)..at(method) + method.len(),
            target: at(target)..at(target) + target.len(),
            version: if parsed.version? == 0 {
                Version::Http10
            } else {
                Version::Http11
            },
            len,
        };
        let headers = parsed
            .headers
            .iter()
            .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
            .collect();
        Some((line, headers))
    }

    #[test]
    fn a_common_head_parses_as_httparse_parses_it() {
        let raw = b"GET /a?b=c HTTP/1.1\r\nHost: example.com:80\r\nX-Empty:\r\nX-Pad: \t v w \t\r\n\r\nrest";
        let parsed = fast(raw, 8).expect("a common head");
        assert_eq!(Some(parsed.clone()), reference(raw, 8));
        assert_eq!(&raw[parsed.0.target.clone()], b"/a?b=c");
        assert_eq!(parsed.1[2], (b"X-Pad".to_vec(), b"v w".to_vec()));
    }

    #[test]
    fn words_tell_bytes_outside_a_range() {
        let word = |bytes: &[u8; 8]| u64::from_le_bytes(*bytes);
        assert_eq!(below(word(b"abcdefgh"), b'!'), 0);
        assert_ne!(below(word(b"abc defg"), b'!'), 0);
        assert_ne!(below(word(b"abcdefg\0"), b' '), 0);
        assert_eq!(above(word(b"~~~~~~~~"), b'~'), 0);
        assert_ne!(above(word(b"~~~\x7f~~~~"), b'~'), 0);
        assert_ne!(above(word(b"\xff~~~~~~~"), b'~'), 0);
        for b in 0..=255u8 {
            let w = word(&[b'a', b'a', b'a', b, b'a', b'a', b'a', b'a']);
            assert_eq!(below(w, b'!') != 0, b < b'!', "{b}");
            assert_eq!(above(w, b'~') != 0, b > b'~', "{b}");
        }
    }

    #[test]
    fn anything_else_is_left_to_httparse() {
        for raw in [
            &b"\r\nGET / HTTP/1.1\r\n\r\n"[..],
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\n\r\n",
            b"GET /\x80 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: \x80\r\n\r\n",
            b"GET / HTTP/1.1\r\nX : y\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: y\r\n z\r\n\r\n",
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n",
            b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n",
            b"GET /0123456789\x7f HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: 0123456789\x7f\r\n\r\n",
        ] {
            assert_eq!(fast(raw, 1), None, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    /// Bytes that heads are made of, common and not.
    fn head() -> impl Strategy<Value = Vec<u8>> {
        let parts: &[&[u8]] = &[
            b"GET",
            b"POST",
            b"get",
            b" ",
            b"  ",
            b"/",
            b"/a?b",
            b"*",
            b"\x80",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"HTTP/2.0",
            b"\r\n",
            b"\n",
            b"\r",
            b"Host",
            b":",
            b": ",
            b"\t",
            b"h:1",
            b"x y ",
            b"\0",
            b"(",
            b"/0123456789abcdef",
            b"0123456789 abcdef\t",
            b"\x7f",
        ];
        proptest::collection::vec(proptest::sample::select(parts), 0..16).prop_map(|p| p.concat())
    }

    proptest! {
        /// Whatever the bytes, this pass either declines or agrees with
        /// `httparse`.
        #[test]
        fn the_fast_pass_declines_or_agrees_with_httparse(
            raw in head(),
            max_headers in 0usize..4,
        ) {
            if let Some(parsed) = fast(&raw, max_headers) {
                prop_assert_eq!(Some(parsed), reference(&raw, max_headers));
            }
        }

        /// A common head is taken by this pass, as `httparse` takes it.
        #[test]
        fn common_heads_take_the_fast_pass(
            method in "[A-Z]{1,7}",
            target in "/[!-~]{0,20}",
            headers in proptest::collection::vec(("[A-Za-z0-9-]{1,10}", "[ -~]{0,20}"), 0..4),
        ) {
            let mut raw = format!("{method} {target} HTTP/1.1\r\n");
            for (name, value) in &headers {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            raw.push_str("\r\n");
            let parsed = fast(raw.as_bytes(), 4);
            prop_assert!(parsed.is_some());
            prop_assert_eq!(parsed, reference(raw.as_bytes(), 4));
        }
    }
}
