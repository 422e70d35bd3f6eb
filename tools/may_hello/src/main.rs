//! `Hello world!` over HTTP/1.1 on may_minihttp (stackful coroutines on
//! `may`), the comparison point of `scripts/measure_http.sh MAY=1`.
//!
//! Usage: `may_hello [--addr HOST:PORT] [--threads N]` (defaults
//! 127.0.0.1:3000, one worker).

use std::io;

use may_minihttp::{HttpServer, HttpService, Request, Response};

/// Answers every request with `Hello world!`.
#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, _req: Request, res: &mut Response) -> io::Result<()> {
        res.header("Content-Type: text/plain; charset=utf-8");
        res.body("Hello world!");
        Ok(())
    }
}

fn main() {
    let (mut addr, mut threads) = ("127.0.0.1:3000".to_string(), 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => addr = value,
            "--threads" => threads = value.parse().expect("--threads takes a number"),
            _ => panic!("unknown argument {flag:?}; usage: may_hello [--addr HOST:PORT] [--threads N]"),
        }
    }
    may::config().set_workers(threads);
    let server = HttpServer(Hello).start(&addr).expect("bind");
    eprintln!("may_hello: serving http://{addr}/ on {threads} worker(s)");
    server.join().expect("server thread");
}
