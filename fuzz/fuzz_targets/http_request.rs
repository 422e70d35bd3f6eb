//! Fuzzes the HTTP request path: the parser, every limit of `HttpConfig`,
//! and pipelining, over input that arrives in arbitrary pieces.
//!
//! Input layout: 3 bytes of limits (max_headers, max_head, max_body), one
//! byte `n`, then `n` cut points of 2 bytes each, then the bytes a client
//! sent on one connection. Each run checks that
//!
//! * decoding never panics, and every request it yields keeps the limits
//!   and its own framing (checked inside `decode_chunked`);
//! * the requests and the rejection are the same whether the bytes arrive
//!   at once, in the fuzzed pieces, or (for short inputs) a byte at a time.
//!
//! Run: `cargo +nightly fuzz run http_request` (or scripts/fuzz.sh).

#![no_main]

use evloop::fuzzing::decode_chunked;
use evloop::http::HttpConfig;
use libfuzzer_sys::fuzz_target;

/// Inputs up to this long are also fed one byte at a time; each byte
/// re-parses the head, so longer ones would slow the fuzzer down.
const BYTEWISE_MAX: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((config, cuts, input)) = split(data) else {
        return;
    };
    let whole = decode_chunked(input, &[], &config);
    let pieces = decode_chunked(input, &cuts, &config);
    assert_eq!(whole, pieces, "cut at {cuts:?}");
    if input.len() <= BYTEWISE_MAX {
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(whole, decode_chunked(input, &every, &config), "a byte at a time");
    }
});

/// Splits the fuzzer's bytes into limits, sorted cut points and the input.
fn split(data: &[u8]) -> Option<(HttpConfig, Vec<usize>, &[u8])> {
    let (&[headers, head, body, n], rest) = data.split_first_chunk::<4>()?;
    // Small limits so that the fuzzer reaches each of them; max_headers
    // crosses the decoder's 64 stack slots, max_head spans 8..=8168.
    let config = HttpConfig::default()
        .max_headers(1 + usize::from(headers) % 80)
        .max_head(8 + 32 * usize::from(head))
        .max_body(usize::from(body) * 4);
    let cut_bytes = rest.get(..2 * usize::from(n))?;
    let mut cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    cuts.sort_unstable();
    Some((config, cuts, &rest[cut_bytes.len()..]))
}
