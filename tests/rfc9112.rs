//! Conformance: the rules of RFC 9112 (HTTP/1.1) and RFC 9110 (HTTP
//! semantics) that a server must follow, each test named after its
//! section, over real sockets on both execution models.
//!
//! Sections covered here:
//!
//! | section | rule |
//! |---|---|
//! | 9112 §2.2 | empty lines before the request line are ignored; whitespace before the first header line is refused |
//! | 9112 §3 | a request line with extra whitespace is refused |
//! | 9112 §3.2 | an HTTP/1.1 request without `Host`, with two, or with an invalid one gets 400; HTTP/1.0 may omit it |
//! | 9112 §3.2.1–3.2.4 | the four request-target forms: origin, absolute (its authority wins over `Host`), authority (`CONNECT` only; 501, no tunnels), asterisk (`OPTIONS` only) |
//! | 9112 §5.1 | whitespace between a field name and its colon is refused |
//! | 9112 §5.2 | obs-fold (a header line continued on the next) is refused |
//! | 9110 §5.1, §5.5 | field names are tokens; field values carry no control characters |
//! | 9112 §6.1 | `Transfer-Encoding` beside `Content-Length` is 400; a coding not understood is 501 |
//! | 9112 §6.3 | conflicting `Content-Length`s are 400 |
//! | 9112 §7.1 | the chunked coding is decoded |
//! | 9112 §9.3 | HTTP/1.0 keep-alive on request; HTTP/1.1 persistent by default |
//! | 9110 §2.5, 9112 §2.3 | a higher 1.x minor version is served as HTTP/1.1; another major version gets 505 |
//! | 9110 §7.6.1 | `Connection` is a list of tokens: `close` anywhere in it closes |
//! | 9110 §9.3.2 | HEAD gets the headers GET would, and no body |
//! | 9110 §15.2 | an interim (1xx) status is no final answer: the application's becomes 500 |
//! | 9110 §8.6, §15.3.5, §15.4.5 | 204 and 304 have no body; 204 has no `Content-Length` |
//! | 9110 §10.1.1 | `Expect: 100-continue` is answered before the body is sent |
//!
//! Chunked uploads from real clients, `Expect` with chunked bodies and the
//! refusals of oversized bodies are in `tests/http_bodies.rs`.

#![cfg(feature = "http")]

mod common;

use std::io::{BufReader, Read, Write};

use common::http::{Http, assert_refused, read_reply, replies};
use evloop::Model;
use evloop::http::{HttpConfig, Request, Response};

on_both_models!(
    rfc9112_2_2_empty_lines_before_the_request_line_are_ignored,
    rfc9112_2_2_whitespace_before_the_first_header_is_refused,
    rfc9112_3_a_request_line_with_extra_whitespace_is_refused,
    rfc9112_3_2_an_http_1_1_request_without_host_gets_400,
    rfc9112_3_2_two_hosts_or_an_invalid_one_get_400,
    rfc9112_3_2_an_http_1_0_request_may_omit_host,
    rfc9112_3_2_1_origin_form_gives_path_and_query,
    rfc9112_3_2_2_absolute_form_is_accepted_and_its_authority_wins_over_host,
    rfc9112_3_2_3_authority_form_is_only_for_connect_which_gets_501,
    rfc9112_3_2_4_asterisk_form_is_only_for_options,
    rfc9112_5_1_whitespace_between_field_name_and_colon_gets_400,
    rfc9112_5_2_obs_fold_gets_400,
    rfc9110_5_field_names_are_tokens_and_values_have_no_controls,
    rfc9112_6_1_transfer_encoding_beside_content_length_gets_400,
    rfc9112_6_1_a_coding_not_understood_gets_501,
    rfc9112_6_3_conflicting_content_lengths_get_400,
    rfc9112_7_1_a_chunked_body_is_decoded,
    rfc9112_9_3_http_1_1_persists_and_http_1_0_keeps_alive_on_request,
    rfc9110_2_5_a_higher_minor_version_is_served_as_http_1_1,
    rfc9110_2_5_another_major_version_gets_505,
    rfc9110_7_6_1_connection_is_a_token_list,
    rfc9110_9_3_2_head_gets_the_headers_and_no_body,
    rfc9110_15_2_an_interim_status_from_the_application_becomes_500,
    rfc9110_15_3_5_204_has_neither_body_nor_content_length,
    rfc9110_15_4_5_304_has_no_body,
    rfc9110_10_1_1_expect_100_continue_is_answered_before_the_body,
);

/// Answers `METHOD PATH QUERY HOST BODY`; `/status/N` answers status N
/// with a body, to see what the server lets through.
fn app(req: &Request) -> Response {
    if let Some(status) = req.path().strip_prefix("/status/") {
        return Response::new(status.parse().unwrap()).body("a body");
    }
    Response::text(format!(
        "{} {} {} {} {}",
        req.method(),
        req.path(),
        req.query().unwrap_or("-"),
        req.host().unwrap_or("-"),
        String::from_utf8_lossy(req.body())
    ))
}

/// A server of `model` running [`app`].
fn server(model: Model) -> Http {
    Http::start_on(model, HttpConfig::default(), app)
}

/// Sends `raw` (which ends with `Connection: close` or a refusal) and
/// returns every reply.
#[track_caller]
fn answers(model: Model, raw: &str) -> Vec<common::http::Reply> {
    replies(&server(model).exchange(raw.as_bytes()))
}

/// The body of the single reply to `raw`, which must be a 200.
#[track_caller]
fn answered(model: Model, raw: &str) -> String {
    let got = answers(model, raw);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].status, "HTTP/1.1 200 OK", "{got:?}");
    got[0].body.clone()
}

/// Asserts that `raw` is refused with `status` and a close.
#[track_caller]
fn refused(model: Model, raw: &str, status: &str) {
    assert_refused(&server(model).exchange(raw.as_bytes()), status);
}

const BAD: &str = "HTTP/1.1 400 Bad Request";

fn rfc9112_2_2_empty_lines_before_the_request_line_are_ignored(model: Model) {
    let body = answered(
        model,
        "\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(body, "GET /a - h ");
}

fn rfc9112_2_2_whitespace_before_the_first_header_is_refused(model: Model) {
    refused(model, "GET / HTTP/1.1\r\n Host: h\r\n\r\n", BAD);
}

fn rfc9112_3_a_request_line_with_extra_whitespace_is_refused(model: Model) {
    refused(model, "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", BAD);
    refused(model, "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", BAD);
}

fn rfc9112_3_2_an_http_1_1_request_without_host_gets_400(model: Model) {
    refused(model, "GET / HTTP/1.1\r\n\r\n", BAD);
}

fn rfc9112_3_2_two_hosts_or_an_invalid_one_get_400(model: Model) {
    refused(model, "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", BAD);
    // An empty Host is valid: a target URI without authority.
    assert_eq!(
        answered(model, "GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"),
        "GET / -  "
    );
}

fn rfc9112_3_2_an_http_1_0_request_may_omit_host(model: Model) {
    assert_eq!(answered(model, "GET /old HTTP/1.0\r\n\r\n"), "GET /old - - ");
}

fn rfc9112_3_2_1_origin_form_gives_path_and_query(model: Model) {
    let body = answered(
        model,
        "GET /p/q?x=1&y HTTP/1.1\r\nHost: h:81\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(body, "GET /p/q x=1&y h:81 ");
}

fn rfc9112_3_2_2_absolute_form_is_accepted_and_its_authority_wins_over_host(model: Model) {
    let body = answered(
        model,
        "GET http://example.com:8080/a?b HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(body, "GET /a b example.com:8080 ");
    let body = answered(
        model,
        "GET HTTP://h HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(body, "GET / - h ");
    refused(model, "GET ftp://h/a HTTP/1.1\r\nHost: h\r\n\r\n", BAD);
}

fn rfc9112_3_2_3_authority_form_is_only_for_connect_which_gets_501(model: Model) {
    refused(
        model,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "HTTP/1.1 501 Not Implemented",
    );
    refused(model, "GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", BAD);
    refused(model, "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", BAD);
}

fn rfc9112_3_2_4_asterisk_form_is_only_for_options(model: Model) {
    let body = answered(
        model,
        "OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(body, "OPTIONS * - h ");
    refused(model, "GET * HTTP/1.1\r\nHost: h\r\n\r\n", BAD);
}

fn rfc9112_5_1_whitespace_between_field_name_and_colon_gets_400(model: Model) {
    refused(model, "GET / HTTP/1.1\r\nHost : h\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n", BAD);
}

fn rfc9112_5_2_obs_fold_gets_400(model: Model) {
    refused(model, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n", BAD);
}

fn rfc9110_5_field_names_are_tokens_and_values_have_no_controls(model: Model) {
    refused(model, "GET / HTTP/1.1\r\nHost: h\r\nX\"A: 1\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\x002\r\n\r\n", BAD);
    refused(model, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\x7f\r\n\r\n", BAD);
}

fn rfc9112_6_1_transfer_encoding_beside_content_length_gets_400(model: Model) {
    refused(
        model,
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        BAD,
    );
    // In HTTP/1.0 the framing is faulty whatever it says.
    refused(
        model,
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        BAD,
    );
}

fn rfc9112_6_1_a_coding_not_understood_gets_501(model: Model) {
    refused(
        model,
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 501 Not Implemented",
    );
}

fn rfc9112_6_3_conflicting_content_lengths_get_400(model: Model) {
    refused(
        model,
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        BAD,
    );
    refused(
        model,
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na",
        BAD,
    );
}

fn rfc9112_7_1_a_chunked_body_is_decoded(model: Model) {
    let body = answered(
        model,
        "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         3;a=b\r\nabc\r\n2\r\nde\r\n0\r\nT: t\r\n\r\n",
    );
    assert_eq!(body, "POST /c - h abcde");
}

fn rfc9112_9_3_http_1_1_persists_and_http_1_0_keeps_alive_on_request(model: Model) {
    let server = server(model);
    let stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..2 {
        (&stream)
            .write_all(b"GET /k HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(
            (reply.body.as_str(), reply.header("connection")),
            ("GET /k - h ", None)
        );
    }
    (&stream)
        .write_all(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_reply(&mut reader, false).header("connection"),
        Some("keep-alive")
    );
    (&stream).write_all(b"GET /end HTTP/1.0\r\n\r\n").unwrap();
    let last = read_reply(&mut reader, false);
    assert_eq!(last.header("connection"), Some("close"));
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

fn rfc9110_2_5_a_higher_minor_version_is_served_as_http_1_1(model: Model) {
    let got = answers(model, "GET /v HTTP/1.7\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_eq!(
        (got[0].status.as_str(), got[0].body.as_str()),
        ("HTTP/1.1 200 OK", "GET /v - h ")
    );
    // Served as 1.1, it needs a Host like any 1.1 request.
    refused(model, "GET /v HTTP/1.9\r\n\r\n", BAD);
}

fn rfc9110_2_5_another_major_version_gets_505(model: Model) {
    for version in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"] {
        refused(
            model,
            &format!("GET / {version}\r\nHost: h\r\n\r\n"),
            "HTTP/1.1 505 HTTP Version Not Supported",
        );
    }
    refused(model, "GET / HTTP/1.10\r\nHost: h\r\n\r\n", BAD);
}

fn rfc9110_7_6_1_connection_is_a_token_list(model: Model) {
    let got = answers(
        model,
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, Close , x\r\n\r\n",
    );
    assert_eq!(got[0].header("connection"), Some("close"));
    let server = server(model);
    let stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    (&stream)
        .write_all(b"GET / HTTP/1.0\r\nConnection: Upgrade,,Keep-Alive\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_reply(&mut reader, false).header("connection"),
        Some("keep-alive")
    );
}

fn rfc9110_9_3_2_head_gets_the_headers_and_no_body(model: Model) {
    let all = server(model).exchange(b"HEAD /h HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    let (head, rest) = all.split_once("\r\n\r\n").unwrap();
    // "HEAD /h - h ", as GET would have it.
    assert!(head.ends_with("\r\nContent-Length: 12"), "{head}");
    assert_eq!(rest, "", "a HEAD response carried a body");
}

fn rfc9110_15_2_an_interim_status_from_the_application_becomes_500(model: Model) {
    refused(
        model,
        "GET /status/103 HTTP/1.1\r\nHost: h\r\n\r\n",
        "HTTP/1.1 500 Internal Server Error",
    );
}

fn rfc9110_15_3_5_204_has_neither_body_nor_content_length(model: Model) {
    let all = server(model).exchange(b"GET /status/204 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    let (head, rest) = all.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 204 No Content\r\n"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("content-length"), "{head}");
    assert_eq!(rest, "");
}

fn rfc9110_15_4_5_304_has_no_body(model: Model) {
    let all = server(model).exchange(
        b"GET /status/304 HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    let (head, rest) = all.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{head}");
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n"),
        "a body followed the 304: {rest}"
    );
}

fn rfc9110_10_1_1_expect_100_continue_is_answered_before_the_body(model: Model) {
    let server = server(model);
    let mut stream = server.connect();
    stream
        .write_all(b"PUT /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    let mut interim = [0; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"ok").unwrap();
    assert_eq!(
        read_reply(&mut BufReader::new(stream), false).body,
        "PUT /e - h ok"
    );
}
