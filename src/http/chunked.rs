//! The chunked transfer coding (RFC 9112 §7.1), both ways: [`Dechunker`]
//! decodes a body as it arrives, for the server's requests and the client's
//! responses alike; [`chunk_head`] frames a piece of a body that streams out.
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! last-chunk   = 1*("0") [ chunk-ext ] CRLF
//! ```
//!
//! Decoding is strict where leniency has let requests be smuggled past
//! proxies: every line ends in CRLF, a size is hex digits only (no sign, no
//! `0x`, no overflow), and chunk data is followed by exactly CRLF.
//! Extensions are skipped; trailer fields are checked for shape, bounded,
//! and dropped.

use bytes::{Buf, BytesMut};

/// Longest chunk-size line accepted, extensions included. Extensions carry
/// nothing this server uses; a line longer than this is refused, so a client
/// cannot make the server buffer an endless one.
const MAX_SIZE_LINE: usize = 4096;

/// What the chunked body turned out to be, when it cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// Not the chunked coding: a bad size, extension, line end or trailer.
    Malformed,
    /// The decoded body would pass the limit it was given.
    TooLarge,
    /// The trailer section passed its limit.
    TrailersTooLarge,
}

/// Limits a [`Dechunker`] enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkLimits {
    /// Most decoded body bytes.
    pub(crate) body: u64,
    /// Most bytes of trailer section (every trailer line with its CRLF).
    pub(crate) trailers: usize,
}

/// Where a [`Dechunker`] stands in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk: this many data bytes still to come.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes one chunked body incrementally, consuming its framing from the
/// input and handing out the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dechunker {
    /// Where it stands.
    state: State,
    /// Data bytes decoded so far (the limit applies to these).
    total: u64,
    /// Trailer-section bytes read so far.
    trailer_len: usize,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker {
            state: State::Size,
            total: 0,
            trailer_len: 0,
        }
    }
}

impl Dechunker {
    /// Decoded data bytes so far.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Decodes from the front of `input`, removing what it consumes and
    /// handing every piece of data to `data`, in order, without copying.
    /// Returns `Ok(true)` once the body is complete (the bytes after it stay
    /// in `input`), `Ok(false)` when it needs more input.
    ///
    /// # Errors
    ///
    /// The first [`ChunkError`]; the decoder must not be used after one.
    pub(crate) fn decode(
        &mut self,
        input: &mut BytesMut,
        limits: ChunkLimits,
        mut data: impl FnMut(BytesMut),
    ) -> Result<bool, ChunkError> {
        loop {
            match self.state {
                State::Done => return Ok(true),
                State::Size => {
                    let Some(line) = take_line(input, MAX_SIZE_LINE)? else {
                        return Ok(false);
                    };
                    let size = parse_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                    // Checked after the state moves on, so that a caller
                    // refusing the body can go on skipping it from here.
                    if self
                        .total
                        .checked_add(size)
                        .is_none_or(|total| total > limits.body)
                    {
                        return Err(ChunkError::TooLarge);
                    }
                }
                State::Data(left) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let n = left.min(input.len() as u64);
                    self.total += n;
                    // `n` is at most `input.len()`, a usize.
                    data(input.split_to(n as usize));
                    self.state = if n == left {
                        State::DataEnd
                    } else {
                        State::Data(left - n)
                    };
                }
                State::DataEnd => {
                    if input.len() < 2 {
                        // A lone byte that cannot begin CRLF is wrong already.
                        return match input.first() {
                            Some(&b) if b != b'\r' => Err(ChunkError::Malformed),
                            _ => Ok(false),
                        };
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(ChunkError::Malformed);
                    }
                    input.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    let room = limits.trailers.saturating_sub(self.trailer_len);
                    let line = match take_line(input, room) {
                        Ok(Some(line)) => line,
                        Ok(None) => return Ok(false),
                        Err(_) if input.len() > room => return Err(ChunkError::TrailersTooLarge),
                        Err(e) => return Err(e),
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                    } else {
                        self.trailer_len += line.len() + 2;
                        check_trailer(&line)?;
                    }
                }
            }
        }
    }
}

/// Takes one CRLF-terminated line from the front of `input`, CRLF removed;
/// `None` while it is incomplete.
///
/// # Errors
///
/// [`ChunkError::Malformed`] for a line longer than `max` (CRLF excluded),
/// or a LF that is not preceded by CR.
fn take_line(input: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, ChunkError> {
    let max = max.saturating_add(2);
    let window = &input[..input.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) if end == 0 || window[end - 1] != b'\r' => Err(ChunkError::Malformed),
        Some(end) => {
            let mut line = input.split_to(end + 1);
            line.truncate(end - 1);
            Ok(Some(line))
        }
        None if window.len() == max => Err(ChunkError::Malformed),
        None => Ok(None),
    }
}

/// The size of a chunk-size line: hex digits, then optionally whitespace
/// and `;` extensions, which are skipped.
///
/// # Errors
///
/// [`ChunkError::Malformed`] for no digits, a size over `u64::MAX`, or
/// anything but extensions after the digits.
fn parse_size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // Sixteen hex digits fill a u64; leading zeros aside, more overflow.
    let significant = line[..digits].iter().skip_while(|&&b| b == b'0').count();
    if digits == 0 || significant > 16 {
        return Err(ChunkError::Malformed);
    }
    let size = line[..digits]
        .iter()
        .fold(0u64, |size, &b| size << 4 | u64::from(hex_value(b)));
    let rest = &line[digits..];
    let ext = rest.trim_ascii_start();
    let valid_ext = ext.is_empty() && rest.is_empty()
        || ext.first() == Some(&b';')
            && ext
                .iter()
                .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80);
    if !valid_ext {
        return Err(ChunkError::Malformed);
    }
    Ok(size)
}

/// The value of an ASCII hex digit.
fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Checks one trailer line's shape: `name: value`, the name a token, the
/// value free of control characters but tab.
///
/// # Errors
///
/// [`ChunkError::Malformed`] otherwise (an obs-fold line, starting with
/// whitespace, included).
fn check_trailer(line: &[u8]) -> Result<(), ChunkError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ChunkError::Malformed)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let name_ok = !name.is_empty() && name.iter().all(|&b| is_tchar(b));
    let value_ok = value.iter().all(|&b| b == b'\t' || b >= b' ' && b != 0x7f);
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(ChunkError::Malformed)
    }
}

/// True for a `tchar` of RFC 9110 §5.6.2: the characters of a token.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Writes the framing that goes before a chunk of `len` bytes (non-zero):
/// its size in hex and CRLF. The chunk's data follows, then [`CHUNK_END`].
pub(crate) fn chunk_head(out: &mut BytesMut, len: usize) {
    debug_assert!(len > 0, "a zero-length chunk would end the body");
    let mut digits = [0u8; 2 * size_of::<usize>()];
    let mut at = digits.len();
    let mut left = len;
    while left > 0 {
        at -= 1;
        digits[at] = b"0123456789abcdef"[left & 0xf];
        left >>= 4;
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

/// What follows a chunk's data.
pub(crate) const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk and an empty trailer section: the end of a chunked body.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: ChunkLimits = ChunkLimits {
        body: 1 << 20,
        trailers: 256,
    };

    /// Decodes `raw` fed in pieces ending at `cuts`; the body and what is
    /// left after it, or the error.
    fn decode_in_pieces(
        raw: &[u8],
        cuts: &[usize],
        limits: ChunkLimits,
    ) -> Result<(Vec<u8>, Vec<u8>), ChunkError> {
        let mut dechunker = Dechunker::default();
        let mut input = BytesMut::new();
        let mut body = Vec::new();
        let mut at = 0;
        for end in cuts.iter().map(|&c| c.min(raw.len())).chain([raw.len()]) {
            input.extend_from_slice(&raw[at..end.max(at)]);
            at = end.max(at);
            if dechunker.decode(&mut input, limits, |piece| body.extend_from_slice(&piece))? {
                assert_eq!(dechunker.total(), body.len() as u64);
                input.extend_from_slice(&raw[at..]);
                return Ok((body, input.to_vec()));
            }
        }
        Ok((body, b"<incomplete>".to_vec()))
    }

    fn decode(raw: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ChunkError> {
        decode_in_pieces(raw, &[], LIMITS)
    }

    #[test]
    fn chunks_extensions_and_trailers_decode_to_the_data() {
        let raw = b"5;name=value\r\nhello\r\n6 ; quoted=\"a;b\"\r\n world\r\n0\r\nExpires: never\r\nX: 1\r\n\r\nNEXT";
        assert_eq!(decode(raw), Ok((b"hello world".to_vec(), b"NEXT".to_vec())));
        assert_eq!(decode(b"A\r\n0123456789\r\n00\r\n\r\n").unwrap().0, b"0123456789");
    }

    #[test]
    fn sizes_are_strict_hex_without_overflow() {
        for bad in [
            &b"-5\r\nhello\r\n0\r\n\r\n"[..],
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"10000000000000000\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXY0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"0\r\n folded: no\r\n\r\n",
            b"0\r\nno colon\r\n\r\n",
        ] {
            assert_eq!(
                decode(bad),
                Err(ChunkError::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let max = b"ffffffffffffffff\r\n";
        assert_eq!(decode(max), Err(ChunkError::TooLarge));
        assert_eq!(
            decode(b"0000000000000000000000001\r\nx\r\n0\r\n\r\n").unwrap().0,
            b"x"
        );
    }

    #[test]
    fn the_limit_counts_decoded_bytes_not_framing() {
        let limits = ChunkLimits {
            body: 10,
            trailers: 16,
        };
        let ten = b"5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n";
        assert_eq!(decode_in_pieces(ten, &[], limits).unwrap().0, b"0123456789");
        let eleven = b"5\r\n01234\r\n6\r\n56789a\r\n0\r\n\r\n";
        assert_eq!(decode_in_pieces(eleven, &[], limits), Err(ChunkError::TooLarge));
        let trailers = b"0\r\nX-Long-Trailer: 0123456789\r\n\r\n";
        assert_eq!(
            decode_in_pieces(trailers, &[], limits),
            Err(ChunkError::TrailersTooLarge)
        );
    }

    #[test]
    fn an_endless_size_line_is_refused() {
        let mut raw = b"5;".to_vec();
        raw.extend(std::iter::repeat_n(b'x', MAX_SIZE_LINE + 10));
        assert_eq!(decode(&raw), Err(ChunkError::Malformed));
    }

    #[test]
    fn chunk_heads_are_lowercase_hex() {
        for (len, head) in [
            (1, "1\r\n"),
            (255, "ff\r\n"),
            (4096, "1000\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            let mut out = BytesMut::new();
            chunk_head(&mut out, len);
            assert_eq!(out, head.as_bytes());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        /// Whatever the chunk sizes and however the bytes are cut, the
        /// data comes out whole and the bytes after the body stay.
        #[test]
        fn any_chunking_cut_anywhere_decodes_to_the_data(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            sizes in proptest::collection::vec(1usize..80, 1..12),
            mut cuts in proptest::collection::vec(0usize..900, 0..10),
        ) {
            let mut raw = BytesMut::new();
            let mut rest = &data[..];
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at((*size).min(rest.len()));
                chunk_head(&mut raw, chunk.len());
                raw.extend_from_slice(chunk);
                raw.extend_from_slice(CHUNK_END);
                rest = tail;
            }
            raw.extend_from_slice(LAST_CHUNK);
            raw.extend_from_slice(b"GET");
            cuts.sort_unstable();
            let got = decode_in_pieces(&raw, &cuts, LIMITS);
            prop_assert_eq!(got, Ok((data, b"GET".to_vec())));
        }
    }
}
