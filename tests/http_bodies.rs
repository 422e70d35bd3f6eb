//! Request bodies over real sockets, on both execution models: chunked
//! uploads decoded (extensions skipped, trailers read, `max_body` on the
//! decoded total), `Expect: 100-continue` with a chunked body, the framing
//! refusals (`Transfer-Encoding` beside `Content-Length`, a coding other
//! than chunked), and refusals that reach a client still sending its body
//! because the server reads past the rest before it closes. Real clients
//! (curl, Python's `http.client` and `requests`) upload the way users do;
//! each is skipped visibly where it is missing.

#![cfg(feature = "http")]

mod common;

use std::io::{BufReader, Read, Write};
use std::time::Duration;

use common::http::{Http, assert_refused, chunked, python, read_reply, read_until_closed, replies, run_tool};
use evloop::Model;
use evloop::http::{HttpConfig, Request, Response};

on_both_models!(
    a_chunked_upload_is_decoded_and_the_connection_kept,
    a_chunked_upload_cut_anywhere_decodes_the_same,
    expect_continue_is_answered_for_a_chunked_body,
    a_chunked_body_over_max_body_gets_413_once_its_total_passes,
    transfer_encoding_beside_content_length_gets_400_and_a_close,
    a_coding_other_than_chunked_gets_501_and_a_close,
    a_body_sent_whole_past_a_413_still_reads_the_status,
    a_chunked_body_sent_whole_past_a_413_still_reads_the_status,
    curl_uploads_chunked_with_t_and_from_stdin,
    python_uploads_chunked_with_http_client_and_requests,
    python_http_client_sees_413_for_a_5_mb_body,
);

/// Answers `<length> <FNV-1a of the body>` for every request, so large
/// bodies can be checked without echoing them.
fn measure(req: &Request) -> Response {
    Response::text(format!("{} {:016x}", req.body().len(), fnv(req.body())))
}

/// FNV-1a, 64 bits: a checksum any client side can compute too.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What [`measure`] answers for `body`.
fn measured(body: &[u8]) -> String {
    format!("{} {:016x}", body.len(), fnv(body))
}

fn a_chunked_upload_is_decoded_and_the_connection_kept(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), common::http::describe);
    let stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    (&stream)
        .write_all(
            b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=\"a b\"\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nChecksum: x\r\n\r\n",
        )
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(
        (reply.status.as_str(), reply.body.as_str()),
        ("HTTP/1.1 200 OK", "POST /up hello world")
    );
    assert_eq!(reply.header("connection"), None);
    (&stream)
        .write_all(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).body, "GET /next ");
}

fn a_chunked_upload_cut_anywhere_decodes_the_same(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), measure);
    let body = common::pattern(300_000, 7);
    let mut raw = b"PUT /big HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend(chunked(&body, 7_919));
    raw.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    let mut stream = server.connect();
    // Pieces that end inside sizes, CRLFs and data alike.
    for piece in raw.chunks(4_099) {
        stream.write_all(piece).unwrap();
    }
    let got = replies(&read_until_closed(&mut stream));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, measured(&body));
    assert_eq!(got[1].body, measured(b""));
}

fn expect_continue_is_answered_for_a_chunked_body(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), common::http::describe);
    let mut stream = server.connect();
    stream
        .write_all(
            b"POST /c HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    let mut interim = [0; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"2\r\nok\r\n0\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(read_reply(&mut reader, false).body, "POST /c ok");
}

fn a_chunked_body_over_max_body_gets_413_once_its_total_passes(model: Model) {
    let server = Http::start_on(model, HttpConfig::default().max_body(10), measure);
    let fits = [
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        chunked(b"0123456789", 4),
    ];
    let stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    (&stream).write_all(&fits.concat()).unwrap();
    assert_eq!(read_reply(&mut reader, false).body, measured(b"0123456789"));
    let over = [
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        chunked(b"0123456789a", 4),
    ];
    (&stream).write_all(&over.concat()).unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert_refused(&rest, "HTTP/1.1 413 Content Too Large");
}

fn transfer_encoding_beside_content_length_gets_400_and_a_close(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), common::http::describe);
    // Were Content-Length believed, "0\r\n\r\n" would end the body and the
    // smuggled request after it would be answered.
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
                0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
    let all = server.exchange(raw);
    assert_refused(&all, "HTTP/1.1 400 Bad Request");
    assert!(!all.contains("smuggled"), "{all}");
}

fn a_coding_other_than_chunked_gets_501_and_a_close(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), common::http::describe);
    for coding in ["gzip", "gzip, chunked", "chunked, identity"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {coding}\r\n\r\n0\r\n\r\n");
        assert_refused(&server.exchange(raw.as_bytes()), "HTTP/1.1 501 Not Implemented");
    }
}

/// Sends `head` and `body` whole from another thread, as a client that
/// reads only after sending would; then reads everything the server says.
/// Returns it, and whether the send completed.
fn send_whole_then_read(server: &Http, head: &[u8], body: Vec<u8>) -> (String, bool) {
    let mut stream = server.connect();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = head.to_vec();
    let sender = std::thread::spawn(move || writer.write_all(&head).and_then(|()| writer.write_all(&body)));
    let sent = sender.join().unwrap().is_ok();
    (read_until_closed(&mut stream), sent)
}

fn a_body_sent_whole_past_a_413_still_reads_the_status(model: Model) {
    let server = Http::start_on(model, HttpConfig::default().max_body(1000), measure);
    let body = vec![b'x'; 3_000_000];
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (all, sent) = send_whole_then_read(&server, head.as_bytes(), body);
    assert!(sent, "the server closed while the body was still being sent");
    assert_refused(&all, "HTTP/1.1 413 Content Too Large");
}

fn a_chunked_body_sent_whole_past_a_413_still_reads_the_status(model: Model) {
    let server = Http::start_on(model, HttpConfig::default().max_body(1000), measure);
    let body = chunked(&vec![b'y'; 2_000_000], 65_536);
    let head = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (all, sent) = send_whole_then_read(&server, head, body);
    assert!(sent, "the server closed while the body was still being sent");
    assert_refused(&all, "HTTP/1.1 413 Content Too Large");
}

fn curl_uploads_chunked_with_t_and_from_stdin(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), measure);
    let body = common::pattern(200_000, 3);
    let dir = std::env::temp_dir().join(format!("evloop-curl-{}-{model:?}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("upload.bin");
    std::fs::write(&file, &body).unwrap();
    let (file_arg, at_file) = (file.to_str().unwrap().to_owned(), format!("@{}", file.display()));
    let url = format!("{}/up", server.base());
    let runs: [(&[&str], Option<&[u8]>); 3] = [
        (
            &["-H", "Transfer-Encoding: chunked", "--data-binary", &at_file],
            None,
        ),
        (&["-T", &file_arg], None),
        (&["-T", "-"], Some(&body)),
    ];
    for (args, stdin) in runs {
        let mut all = vec!["-sS", "--max-time", "10", "--fail", &url];
        all.extend_from_slice(args);
        let Some(out) = run_tool("curl", &all, stdin) else {
            break;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout, measured(&body), "curl {args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Python that uploads a 100,000-byte pattern three ways and prints each
/// answer: `http.client` with `encode_chunked=True`, `requests` (if
/// installed) with a generator body, both chunked.
const PY_CHUNKED: &str = r#"
import http.client, sys
host, port = sys.argv[1], int(sys.argv[2])
body = bytes((i * 7 + 3) % 251 for i in range(100000))
conn = http.client.HTTPConnection(host, port, timeout=10)
pieces = [body[i:i + 8191] for i in range(0, len(body), 8191)]
conn.request("POST", "/py", body=iter(pieces), encode_chunked=True,
             headers={"Transfer-Encoding": "chunked"})
r = conn.getresponse()
print(r.status, r.read().decode())
conn.request("POST", "/py", body=iter([b"a", b"bc"]), encode_chunked=True)
r = conn.getresponse()
print(r.status, r.read().decode())
try:
    import requests
except ImportError:
    print("200 no-requests")
    sys.exit(0)
def gen():
    for p in pieces:
        yield p
r = requests.post("http://%s:%d/rq" % (host, port), data=gen(), timeout=10)
print(r.status_code, r.text)
"#;

fn python_uploads_chunked_with_http_client_and_requests(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), measure);
    let port = server.addr().port().to_string();
    let Some(out) = python(PY_CHUNKED, &["127.0.0.1", &port]) else {
        return;
    };
    let body: Vec<u8> = (0..100_000u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("200 {}", measured(&body)), "{out}");
    assert_eq!(lines[1], format!("200 {}", measured(b"abc")), "{out}");
    if lines[2] == "200 no-requests" {
        println!("SKIPPED: Python requests not installed");
    } else {
        assert_eq!(lines[2], format!("200 {}", measured(&body)), "{out}");
    }
}

/// Python's `http.client` sending a 5 MB body whole before it reads, as
/// it does; prints the status it gets (or the error instead).
const PY_OVER_LIMIT: &str = r#"
import http.client, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=20)
try:
    conn.request("POST", "/big", body=b"z" * (5 * 1024 * 1024))
    r = conn.getresponse()
    print(r.status, r.getheader("Connection"))
except Exception as e:
    print("error", type(e).__name__, e)
"#;

fn python_http_client_sees_413_for_a_5_mb_body(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), measure);
    let port = server.addr().port().to_string();
    let Some(out) = python(PY_OVER_LIMIT, &["127.0.0.1", &port]) else {
        return;
    };
    assert_eq!(out.trim(), "413 close");
}
