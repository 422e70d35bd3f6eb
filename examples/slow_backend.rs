//! Answers that come later: `/slow` asks a "backend" on a worker thread
//! that takes two seconds, and is answered from that thread; `/timer` is
//! answered from a timer on the loop after half a second; every other path
//! is answered at once. All on one event loop, which keeps serving while
//! the slow answers are awaited. Shows `HttpServer::start_deferred`,
//! `Responder::send` from another thread and `Responder::after`.
//!
//! Run it:
//!
//! ```text
//! cargo run --example slow_backend [-- 127.0.0.1:3000]
//! ```
//!
//! then, from another terminal:
//!
//! ```text
//! curl http://127.0.0.1:3000/slow &  # answers after 2 s
//! curl http://127.0.0.1:3000/fast    # answers at once meanwhile
//! curl http://127.0.0.1:3000/timer   # after 0.5 s
//! ```
//!
//! Limits: the "backend" is a sleep on a pool of four threads fed by a
//! channel; Ctrl-C stops the server.

#[cfg(feature = "http")]
fn main() -> std::io::Result<()> {
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use evloop::http::{HttpServer, Request, Responder, Response};

    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    // The backend: four workers taking jobs from one channel.
    let (jobs, queue) = mpsc::channel::<(String, Responder)>();
    let queue = Arc::new(Mutex::new(queue));
    for _ in 0..4 {
        let queue = Arc::clone(&queue);
        std::thread::spawn(move || {
            loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((path, responder)) = job else {
                    return;
                };
                std::thread::sleep(Duration::from_secs(2)); // the slow call
                responder.send(Response::text(format!("{path}: the backend answered\n")));
            }
        });
    }
    let jobs = Mutex::new(jobs);

    let server = HttpServer::new(addr.parse().expect("an address such as 127.0.0.1:3000"))
        .threads(1)
        .start_deferred(move |req: Request, responder: Responder| match req.path() {
            "/slow" => {
                let job = (req.path().to_owned(), responder);
                if let Err(mpsc::SendError((_, responder))) =
                    jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job)
                {
                    responder.send(Response::new(503));
                }
            }
            "/timer" => responder.after(Duration::from_millis(500), |responder| {
                responder.send(Response::text("half a second later\n"));
            }),
            path => responder.send(Response::text(format!("{path}: at once\n"))),
        })?;
    log::info!(
        "serving http://{}/ (try /slow, /timer, /fast)",
        server.local_addr()
    );
    server.shutdown_on_signals(Duration::from_secs(3))?;
    server.join()
}

#[cfg(not(feature = "http"))]
fn main() {
    eprintln!("slow_backend needs the `http` feature (on by default)");
}
