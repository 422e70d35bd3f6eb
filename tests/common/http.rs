//! For the tests of `evloop::http`: a server of either model, the test
//! application, reading HTTP/1.1 responses off a blocking client socket,
//! and running real clients (curl, Python) where they are installed.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::Duration;

use evloop::http::{HttpConfig, HttpServer, Request, Response};
use evloop::{Model, ServerHandle};

/// A running HTTP server, shut down (no grace) and joined when dropped.
pub struct Http(pub ServerHandle);

impl Http {
    /// Serves `app` with `config` on one loop.
    pub fn start(config: HttpConfig, app: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Http {
        Http::start_on(Model::Reactor, config, app)
    }

    /// Serves `app` with `config` on one loop of `model` (the thread model
    /// has no loops: a thread per connection).
    pub fn start_on(
        model: Model,
        config: HttpConfig,
        app: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Http {
        Http(
            HttpServer::new(super::localhost())
                .threads(1)
                .model(model)
                .http_config(config)
                .start(app)
                .unwrap(),
        )
    }

    /// Serves [`describe`] with the default config.
    pub fn describing() -> Http {
        Http::start(HttpConfig::default(), describe)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// `http://` and the address, for clients.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// A client with a bounded read timeout.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// Sends `raw` on a fresh connection and reads until the server closes.
    pub fn exchange(&self, raw: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(raw).unwrap();
        read_until_closed(&mut stream)
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.0.shutdown(Duration::ZERO);
        let _ = self.0.join();
    }
}

/// The test application: answers `METHOD TARGET BODY`; `/panic` panics.
pub fn describe(req: &Request) -> Response {
    if req.path() == "/panic" {
        panic!("the application failed");
    }
    let body = String::from_utf8_lossy(req.body());
    Response::text(format!("{} {} {}", req.method(), req.target(), body))
}

/// Reads to end of stream, asserting the server did close within the
/// read timeout.
#[track_caller]
pub fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    if let Err(e) = stream.read_to_end(&mut got) {
        panic!(
            "the server did not close cleanly ({e}); got {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    String::from_utf8(got).unwrap()
}

/// Every response in a complete byte stream.
pub fn replies(all: &str) -> Vec<Reply> {
    let mut reader = all.as_bytes();
    let mut out = Vec::new();
    while !reader.is_empty() {
        out.push(read_reply(&mut reader, false));
    }
    out
}

/// Asserts `reply` is the single response in `all`, with `status`, saying
/// `Connection: close`.
#[track_caller]
pub fn assert_refused(all: &str, status: &str) {
    let got = replies(all);
    assert_eq!(got.len(), 1, "{all:?}");
    assert_eq!(got[0].status, status);
    assert_eq!(got[0].header("connection"), Some("close"));
    assert_eq!(
        got[0].header("content-length").unwrap().parse::<usize>().unwrap(),
        got[0].body.len()
    );
}

/// Runs `program` with `args` (and `stdin` fed to it, if any); `None`, after
/// printing `SKIPPED` visibly, if the program is not installed.
pub fn run_tool(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Option<Output> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(_) => {
            println!("SKIPPED: {program} not installed");
            eprintln!("SKIPPED: {program} not installed");
            return None;
        }
    };
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || pipe.write_all(&input));
    }
    Some(child.wait_with_output().unwrap())
}

/// Runs a Python 3 script (with `args`); `None` (visibly skipped) without
/// Python. Asserts that it succeeded and returns its standard output.
#[track_caller]
pub fn python(script: &str, args: &[&str]) -> Option<String> {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let out = run_tool("python3", &all, None)?;
    assert!(
        out.status.success(),
        "python failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One response as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// E.g. `HTTP/1.1 200 OK`.
    pub status: String,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`, or none for `HEAD`).
    pub body: String,
}

impl Reply {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response; `head_only` for a reply to `HEAD`.
#[track_caller]
pub fn read_reply(reader: &mut impl BufRead, head_only: bool) -> Reply {
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut reply = Reply {
        status: status.trim_end().to_owned(),
        headers,
        body: String::new(),
    };
    let len: usize = reply.header("content-length").map_or(0, |v| v.parse().unwrap());
    if !head_only {
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        reply.body = String::from_utf8(body).unwrap();
    }
    reply
}

/// A server run by another program (Node, Python) for the client's tests:
/// killed (by its PID) and reaped when dropped; the scripts also exit by
/// themselves after a while, should the test die first.
pub struct ExternalServer {
    /// The process.
    child: std::process::Child,
    /// The port it printed on its first line.
    pub port: u16,
}

impl ExternalServer {
    /// Runs `program` with `args`, which must print the port it listens on
    /// as its first line; `None` (visibly skipped) if the program is
    /// missing.
    pub fn start(program: &str, args: &[&str]) -> Option<ExternalServer> {
        let mut child = match Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(_) => {
                println!("SKIPPED: {program} not installed");
                eprintln!("SKIPPED: {program} not installed");
                return None;
            }
        };
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{program} printed {line:?} instead of its port"));
        Some(ExternalServer { child, port })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ExternalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `body` in the chunked coding, cut into chunks of `size` bytes.
pub fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}
