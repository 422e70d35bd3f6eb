//! Server-sent events: a clock that ticks every second, streamed to every
//! client of `/clock` as a body of unknown length (chunked), pulled by the
//! server as the client reads. Shows `HttpServer::start_deferred`,
//! `Responder::stream` and `body_channel`.
//!
//! Run it:
//!
//! ```text
//! cargo run --example sse [-- 127.0.0.1:3000]
//! ```
//!
//! then, from another terminal (`-N` shows events as they come):
//!
//! ```text
//! curl -N http://127.0.0.1:3000/clock
//! ```
//!
//! or open the address in a browser, whose page listens with
//! `EventSource`. Each client gets a thread that sends one event a second
//! and ends when the client leaves (its `send` fails). Ctrl-C stops the
//! server. Limits: one producer thread per client, fine for a demo; a real
//! service would feed many clients from one ticker.

#[cfg(feature = "http")]
fn main() -> std::io::Result<()> {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use evloop::http::{HttpServer, Request, Responder, Response, body_channel};

    const PAGE: &str = "<!doctype html><title>clock</title><pre id=t></pre><script>\
        new EventSource('/clock').onmessage = (e) => { t.textContent = e.data; };</script>";

    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let server = HttpServer::new(addr.parse().expect("an address such as 127.0.0.1:3000")).start_deferred(
        |req: Request, responder: Responder| {
            if req.path() != "/clock" {
                return responder.send(Response::new(200).header("Content-Type", "text/html").body(PAGE));
            }
            let (sender, body) = body_channel(4096);
            let head = Response::new(200)
                .header("Content-Type", "text/event-stream")
                .header("Cache-Control", "no-cache");
            responder.stream(head, body);
            std::thread::spawn(move || {
                loop {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                    let event = format!("data: {} seconds since the epoch\n\n", now.as_secs());
                    if sender.send(event).is_err() {
                        log::info!("a clock client left");
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        },
    )?;
    log::info!("serving http://{}/clock", server.local_addr());
    server.shutdown_on_signals(Duration::from_secs(1))?;
    server.join()
}

#[cfg(not(feature = "http"))]
fn main() {
    eprintln!("sse needs the `http` feature (on by default)");
}
