//! Request bodies in pieces, over real sockets on both execution models:
//! with `HttpConfig::stream_bodies_over`, a deferring application gets a
//! large body (by length or chunked) as it arrives, far past `max_body`,
//! with the server's memory flat; a slow reader slows the client down
//! (backpressure); a reader dropped early skips the rest and the
//! connection goes on; a client that leaves mid-body is an error to the
//! reader; an upload streams straight back as the response; curl uploads
//! from stdin.

#![cfg(feature = "http")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::http::{chunked, read_reply, read_until_closed, replies, run_tool};
use evloop::http::{HttpConfig, HttpServer, Request, Responder, Response};
use evloop::sys::ProcessStats;
use evloop::{Model, ServerHandle};

on_both_models!(
    a_large_upload_reaches_the_application_in_pieces_with_memory_flat,
    a_slow_reader_holds_the_client_back,
    a_reader_dropped_early_skips_the_rest_and_the_connection_goes_on,
    a_client_leaving_mid_body_is_an_error_to_the_reader,
    an_upload_streams_straight_back,
    small_bodies_still_come_whole,
    curl_uploads_from_stdin_in_pieces,
);

/// Bodies over this come in pieces.
const OVER: usize = 64 * 1024;

/// A server of `model` on one loop running the deferring `app` with bodies
/// over [`OVER`] in pieces; shut down (no grace) and joined when dropped.
struct Uploads(ServerHandle);

impl Uploads {
    fn start(model: Model, app: impl Fn(Request, Responder) + Send + Sync + 'static) -> Self {
        let server = HttpServer::new(common::localhost())
            .threads(1)
            .model(model)
            .http_config(HttpConfig::default().stream_bodies_over(Some(OVER)))
            .start_deferred(app)
            .unwrap();
        Uploads(server)
    }

    fn connect(&self) -> std::net::TcpStream {
        let stream = std::net::TcpStream::connect(self.0.local_addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        self.0.shutdown(Duration::ZERO);
        let _ = self.0.join();
    }
}

/// FNV-1a, 64 bits, continued from `h`.
fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Answers `<length> <hash> <pieces>`: whole bodies at once, bodies in
/// pieces read on another thread.
fn measure(req: Request, responder: Responder) {
    let Some(body) = req.body_reader() else {
        let answer = format!("{} {:016x} whole", req.body().len(), fnv(FNV_START, req.body()));
        return responder.send(Response::text(answer));
    };
    std::thread::spawn(move || {
        let (mut len, mut hash, mut pieces) = (0, FNV_START, 0);
        for piece in body {
            let Ok(piece) = piece else {
                return;
            };
            len += piece.len();
            hash = fnv(hash, &piece);
            pieces += 1;
        }
        responder.send(Response::text(format!("{len} {hash:016x} {pieces}")));
    });
}

fn a_large_upload_reaches_the_application_in_pieces_with_memory_flat(model: Model) {
    let server = Uploads::start(model, measure);
    let body = common::pattern(32 << 20, 11);
    let expected_hash = format!("{:016x}", fnv(FNV_START, &body));
    for framing in ["length", "chunked"] {
        let before = ProcessStats::current().unwrap().rss;
        let stream = server.connect();
        let mut writer = stream.try_clone().unwrap();
        let (head, wire) = if framing == "length" {
            let head = format!(
                "PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            (head, body.clone())
        } else {
            let head = "PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
            (head, chunked(&body, 100_000))
        };
        let sender = std::thread::spawn(move || {
            writer.write_all(head.as_bytes()).unwrap();
            for piece in wire.chunks(1 << 20) {
                writer.write_all(piece).unwrap();
            }
        });
        let mut reader = BufReader::new(stream);
        let mut rss_most = before;
        let reply = loop {
            if reader.fill_buf().map(|b| !b.is_empty()).unwrap_or(true) {
                break read_reply(&mut reader, false);
            }
        };
        rss_most = rss_most.max(ProcessStats::current().unwrap().rss);
        sender.join().unwrap();
        let fields: Vec<&str> = reply.body.split(' ').collect();
        assert_eq!(
            (fields[0], fields[1]),
            (&*body.len().to_string(), &*expected_hash),
            "{framing}"
        );
        assert!(
            fields[2].parse::<usize>().unwrap() > 1,
            "{framing}: came in {} piece(s)",
            fields[2]
        );
        let growth = rss_most.saturating_sub(before);
        common::figure(
            "32 MiB upload in pieces",
            &format!("RSS growth, {framing} (MiB)"),
            growth >> 20,
        );
        // The body is 32 times max_body; the server holds a pipe's worth.
        assert!(
            !common::memory_is_measurable() || growth < 24 << 20,
            "{framing}: resident memory grew by {growth} bytes"
        );
    }
}

fn a_slow_reader_holds_the_client_back(model: Model) {
    let consumed = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&consumed);
    let server = Uploads::start(model, move |req, responder| {
        let body = req.body_reader().expect("a body in pieces");
        let counter = Arc::clone(&counter);
        std::thread::spawn(move || {
            let start = Instant::now();
            for piece in body {
                counter.fetch_add(piece.unwrap().len() as u64, Ordering::SeqCst);
                if start.elapsed() < Duration::from_millis(600) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            responder.send(Response::text("done"));
        });
    });
    let total = 16usize << 20;
    let stream = server.connect();
    socket2::SockRef::from(&stream)
        .set_send_buffer_size(64 * 1024)
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let sent_counter = Arc::clone(&sent);
    let sender = std::thread::spawn(move || {
        let head = format!("POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: {total}\r\n\r\n");
        writer.write_all(head.as_bytes()).unwrap();
        for piece in vec![b's'; total].chunks(16 * 1024) {
            writer.write_all(piece).unwrap();
            sent_counter.fetch_add(piece.len() as u64, Ordering::SeqCst);
        }
    });
    std::thread::sleep(Duration::from_millis(400));
    let ahead = sent
        .load(Ordering::SeqCst)
        .saturating_sub(consumed.load(Ordering::SeqCst));
    common::figure(
        "slow upload reader",
        "sent ahead of the reader (KiB)",
        ahead >> 10,
    );
    // The pipe (256 KiB), the session's input and the kernel's buffers at
    // both ends; without backpressure the whole 16 MiB would be sent.
    assert!(
        ahead < 8 << 20,
        "the client sent {ahead} bytes ahead of a slow reader"
    );
    sender.join().unwrap();
    assert_eq!(read_reply(&mut BufReader::new(stream), false).body, "done");
    assert_eq!(consumed.load(Ordering::SeqCst), total as u64);
}

fn a_reader_dropped_early_skips_the_rest_and_the_connection_goes_on(model: Model) {
    let server = Uploads::start(model, |req, responder| {
        drop(req.body_reader());
        responder.send(Response::text(format!("{} skipped", req.path())));
    });
    let stream = server.connect();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let body = vec![b'x'; 4 << 20];
        writer
            .write_all(
                format!(
                    "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .unwrap();
        writer.write_all(&body).unwrap();
        writer
            .write_all(b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .unwrap();
    });
    let mut stream = stream;
    let got = replies(&read_until_closed(&mut stream));
    sender.join().unwrap();
    let bodies: Vec<&str> = got.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["/a skipped", "/b skipped"]);
}

fn a_client_leaving_mid_body_is_an_error_to_the_reader(model: Model) {
    let failed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&failed);
    let server = Uploads::start(model, move |req, responder| {
        let body = req.body_reader().expect("a body in pieces");
        let flag = Arc::clone(&flag);
        std::thread::spawn(move || {
            for piece in body {
                if piece.is_err() {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            responder.send(Response::text("whole?"));
        });
    });
    let mut stream = server.connect();
    stream
        .write_all(b"POST /cut HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    stream.write_all(&[b'c'; 300_000]).unwrap();
    drop(stream);
    common::wait_until("the reader told of the cut", || {
        failed.load(Ordering::SeqCst).then_some(())
    });
}

fn an_upload_streams_straight_back(model: Model) {
    let server = Uploads::start(model, |req, responder| match req.body_reader() {
        Some(body) => responder.stream(Response::new(200), body),
        None => responder.send(Response::new(200).body(req.body().clone())),
    });
    let body = common::pattern(3 << 20, 5);
    let stream = server.connect();
    let mut writer = stream.try_clone().unwrap();
    let wire = chunked(&body, 50_000);
    let sender = std::thread::spawn(move || {
        writer
            .write_all(b"PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        writer.write_all(&wire).unwrap();
    });
    let mut reader = BufReader::new(stream);
    let head = read_reply(&mut reader, true);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let mut echoed = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).unwrap();
        if size == 0 {
            break;
        }
        echoed.extend_from_slice(&chunk[..size]);
    }
    sender.join().unwrap();
    assert!(
        echoed == body,
        "the echo differs ({} of {} bytes)",
        echoed.len(),
        body.len()
    );
}

fn small_bodies_still_come_whole(model: Model) {
    let server = Uploads::start(model, measure);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        .unwrap();
    let got = replies(&read_until_closed(&mut stream));
    assert_eq!(got[0].body, format!("5 {:016x} whole", fnv(FNV_START, b"hello")));
}

fn curl_uploads_from_stdin_in_pieces(model: Model) {
    let server = Uploads::start(model, measure);
    let body = common::pattern(2 << 20, 9);
    let url = format!("http://{}/stdin", server.0.local_addr());
    let Some(out) = run_tool("curl", &["-sS", "--max-time", "20", "-T", "-", &url], Some(&body)) else {
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer = String::from_utf8_lossy(&out.stdout);
    let expected = format!("{} {:016x}", body.len(), fnv(FNV_START, &body));
    assert!(answer.starts_with(&expected), "{answer} instead of {expected}");
}
