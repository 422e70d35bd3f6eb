//! The decoder's tests: limits and their statuses, `100 Continue`, chunked
//! bodies, and decoding that does not depend on how the input is cut.

use super::*;
use crate::fuzzing::{Outcome, decode_chunked};
use crate::http::discard::Rest;
use crate::http::framing::Refusal;
use proptest::prelude::*;

/// The status `raw` is rejected with, if any, as `reject N`.
fn rejection(raw: &str, config: &HttpConfig) -> Option<String> {
    match decode_chunked(raw.as_bytes(), &[], config).outcomes.pop() {
        Some(Outcome::Reject(status)) => Some(format!("reject {status}")),
        _ => None,
    }
}

#[test]
fn each_limit_and_malformation_has_its_status() {
    let c = HttpConfig::default().max_head(80).max_body(10).max_headers(3);
    let reject = |raw: &str| rejection(raw, &c);
    assert_eq!(
        reject("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n").as_deref(),
        Some("reject 431")
    );
    assert_eq!(
        reject(&format!("GET /{} HTTP/1.1\r\nHost: h\r\n", "a".repeat(80))).as_deref(),
        Some("reject 431")
    );
    assert_eq!(
        reject("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n").as_deref(),
        Some("reject 413")
    );
    assert_eq!(
        reject("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n").as_deref(),
        Some("reject 400")
    );
    assert_eq!(
        reject("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").as_deref(),
        Some("reject 400")
    );
    assert_eq!(
        reject("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n").as_deref(),
        Some("reject 501")
    );
    assert_eq!(
        reject("GET\0 / HTTP/1.1\r\nHost: h\r\n\r\n").as_deref(),
        Some("reject 400")
    );
    assert_eq!(
        reject("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"),
        None
    );
    assert_eq!(
        reject("GET / HTTP/1.1\r\nHost: h\r\ncontent-length: 2\r\nContent-Length: 2\r\n\r\n"),
        None
    );
}

#[test]
fn expect_continue_is_reported_once_while_the_body_is_missing() {
    let mut decoder = Decoder::new("127.0.0.1:1".parse().unwrap(), None);
    let mut input =
        BytesMut::from("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert!(matches!(
        decoder.decode(&mut input, &HttpConfig::default()),
        Decoded::Incomplete
    ));
    assert!(decoder.take_continue());
    assert!(!decoder.take_continue());
    input.extend_from_slice(b"ok");
    assert!(matches!(
        decoder.decode(&mut input, &HttpConfig::default()),
        Decoded::Request(_)
    ));
}

#[test]
fn a_malformed_head_past_max_head_gets_431_however_it_arrives() {
    // Found by fuzz/fuzz_targets/http_request.rs: the NUL lies past
    // max_head, so whole it got 400 and byte by byte 431.
    let c = HttpConfig::default().max_head(40);
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nContent-Length: 5\0\r\n\r\n";
    let every: Vec<usize> = (1..raw.len()).collect();
    let reject = vec![Outcome::Reject(431)];
    assert_eq!(decode_chunked(raw, &[], &c).outcomes, reject);
    assert_eq!(decode_chunked(raw, &every, &c).outcomes, reject);
}

/// Decodes every request of `raw`, then returns them and what refused the
/// rest (if anything).
fn decode_all(raw: &[u8], config: &HttpConfig) -> (Vec<Request>, Option<Refusal>) {
    let mut decoder = Decoder::new("127.0.0.1:1".parse().unwrap(), None);
    let mut input = BytesMut::from(raw);
    let mut requests = Vec::new();
    loop {
        match decoder.decode(&mut input, config) {
            Decoded::Request(request) => requests.push(request),
            Decoded::Incomplete => return (requests, None),
            Decoded::Reject(refusal) => return (requests, Some(refusal)),
            other => panic!("a body in pieces that was not asked for: {other:?}"),
        }
    }
}

#[test]
fn chunked_bodies_decode_and_pipelined_requests_follow_them() {
    let raw = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nChecksum: 1\r\n\r\n\
                POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
                POST /c HTTP/1.1\r\nHost: h\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n";
    let (requests, refusal) = decode_all(raw, &HttpConfig::default());
    assert_eq!(refusal, None);
    let bodies: Vec<_> = requests.iter().map(|r| (r.path(), &r.body()[..])).collect();
    assert_eq!(bodies, [("/a", &b"hello world"[..]), ("/b", b"abc"), ("/c", b"")]);
}

#[test]
fn max_body_applies_to_the_decoded_total_and_the_rest_can_be_skipped() {
    let config = HttpConfig::default().max_body(8);
    let fits = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n0123\r\n4\r\n4567\r\n0\r\n\r\n";
    assert_eq!(decode_all(fits, &config).0[0].body().len(), 8);
    let over = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n0123\r\n5\r\n45678\r\n0\r\n\r\n";
    let refusal = decode_all(over, &config).1.unwrap();
    assert_eq!(refusal.status, 413);
    assert!(matches!(refusal.rest, Rest::Chunked(_)), "{refusal:?}");
}

#[test]
fn framing_refusals_say_what_may_follow() {
    let config = HttpConfig::default().max_body(8);
    let refusal = |raw: &str| decode_all(raw.as_bytes(), &config).1.unwrap();
    assert_eq!(
        refusal("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n"),
        Refusal {
            status: 413,
            rest: Rest::Length(9)
        }
    );
    // Told no before sending the body, the client sends nothing more.
    assert_eq!(
        refusal("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n"),
        Refusal::bare(413)
    );
    assert_eq!(
        refusal("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
        Refusal {
            status: 400,
            rest: Rest::Unknown
        }
    );
    assert_eq!(
        refusal("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").status,
        400
    );
}

#[test]
fn expect_continue_works_for_a_chunked_body() {
    let mut decoder = Decoder::new("127.0.0.1:1".parse().unwrap(), None);
    let config = HttpConfig::default();
    let mut input = BytesMut::from(
        "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert!(matches!(decoder.decode(&mut input, &config), Decoded::Incomplete));
    assert!(decoder.take_continue());
    input.extend_from_slice(b"2\r\nok\r\n0\r\n\r\n");
    match decoder.decode(&mut input, &config) {
        Decoded::Request(request) => assert_eq!(&request.body()[..], b"ok"),
        other => panic!("expected the request, got {other:?}"),
    }
}

/// Pieces of HTTP/1.x, well-formed and not, that inputs are made of.
const FRAGMENTS: &[&[u8]] = &[
    b"GET /a?b=c HTTP/1.1\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\n",
    b"POST / HTTP/1.0\r\n",
    b"HEAD /h HTTP/1.1\r\n",
    b"Host: h\r\n",
    b"Content-Length: 3\r\n",
    b"content-length: 03\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
    b"Content-Length: +3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"5\r\nhello\r\n",
    b"3;ext=1\r\nabc\r\n",
    b"0\r\n\r\n",
    b"0\r\nTrailer: t\r\n\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close, keep-alive\r\n",
    b"X: \x80\xff\r\n",
    b"\r\n",
    b"\r\n\r\n",
    b"abc",
    b"\0",
    b" ",
    b":",
];

/// A connection's input made of [`FRAGMENTS`].
fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    /// The fuzz target's property, in the normal suite: whatever the
    /// bytes and limits, the requests and rejection are the same
    /// whole, in random pieces and a byte at a time (and every request
    /// keeps the limits, checked by `decode_chunked`).
    #[test]
    fn any_input_decodes_the_same_whole_in_pieces_and_byte_by_byte(
        raw in input(),
        mut cuts in proptest::collection::vec(0usize..600, 0..8),
        max_head in 8usize..400,
        max_headers in 1usize..8,
        max_body in 0usize..8,
    ) {
        let c = HttpConfig::default().max_head(max_head).max_headers(max_headers).max_body(max_body);
        cuts.sort_unstable();
        let every: Vec<usize> = (1..raw.len()).collect();
        let whole = decode_chunked(&raw, &[], &c);
        prop_assert_eq!(&decode_chunked(&raw, &cuts, &c), &whole);
        prop_assert_eq!(&decode_chunked(&raw, &every, &c), &whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 64 }))]

    #[test]
    fn pipelined_requests_decode_the_same_however_the_input_is_cut(
        mut cuts in proptest::collection::vec(0usize..400, 0..12)
    ) {
        let mut raw = Vec::new();
        for i in 0..6 {
            let body = "x".repeat(i * 3);
            raw.extend_from_slice(
                format!("POST /r{i}?q={i} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                    .as_bytes(),
            );
        }
        cuts.sort_unstable();
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(raw.len())).collect();
        let whole = decode_chunked(&raw, &[], &HttpConfig::default());
        prop_assert_eq!(whole.outcomes.len(), 6);
        prop_assert_eq!(decode_chunked(&raw, &cuts, &HttpConfig::default()), whole);
    }
}
