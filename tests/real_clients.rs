//! Real HTTP clients and load generators against `evloop::http`, on both
//! execution models: curl (several URLs on one kept-alive connection,
//! `--http1.0`, `-I`), `h2load --h1` (pipelined), `ab -k` (HTTP/1.0
//! keep-alive) and `wrk`. Each gets only 2xx answers and no errors. A tool
//! that is not installed is skipped with a visible `SKIPPED` line; `.ci/run`
//! installs them from the system's packages. (Uploads with curl and Python
//! are in `tests/http_bodies.rs`.)

#![cfg(feature = "http")]

mod common;

use common::http::{Http, run_tool};
use evloop::Model;
use evloop::http::{HttpConfig, Request, Response};

on_both_models!(
    curl_reuses_one_connection_speaks_http_1_0_and_sends_head,
    h2load_h1_pipelined_gets_only_2xx,
    ab_keep_alive_gets_only_2xx_on_kept_connections,
    wrk_gets_only_2xx_and_no_socket_errors,
);

/// Hello world, with the path so curl can tell the answers apart.
fn hello(req: &Request) -> Response {
    Response::text(format!("Hello {}", req.path()))
}

/// A server of `model` running [`hello`].
fn server(model: Model) -> Http {
    Http::start_on(model, HttpConfig::default(), hello)
}

/// Runs `tool` with `args`; its standard output and error together, after
/// asserting it succeeded; `None` (visibly skipped) if it is missing.
#[track_caller]
fn run(tool: &str, args: &[&str]) -> Option<String> {
    let out = run_tool(tool, args, None)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    Some(text)
}

/// The first number after `label` in a tool's report, e.g. `Failed
/// requests:` → 0.
#[track_caller]
fn number_after(report: &str, label: &str) -> f64 {
    let at = report
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"));
    report[at + label.len()..]
        .split(|c: char| c.is_whitespace() || c == ',')
        .find(|word| !word.is_empty())
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in:\n{report}"))
}

fn curl_reuses_one_connection_speaks_http_1_0_and_sends_head(model: Model) {
    let server = server(model);
    let base = server.base();
    let urls: Vec<String> = (0..3).map(|i| format!("{base}/u{i}")).collect();
    let mut args = vec!["-sS", "-v", "--max-time", "5"];
    args.extend(urls.iter().map(String::as_str));
    let Some(out) = run("curl", &args) else {
        return;
    };
    assert!(out.contains("Hello /u0Hello /u1Hello /u2"), "{out}");
    let reused =
        out.matches("Re-using existing connection").count() + out.matches("Reusing existing").count();
    assert_eq!(reused, 2, "curl did not keep the connection:\n{out}");
    let one = &urls[0];
    let out = run("curl", &["-sS", "-i", "--max-time", "5", "--http1.0", one]).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("Connection: close\r\n"),
        "{out}"
    );
    let out = run("curl", &["-sS", "-I", "--max-time", "5", one]).unwrap();
    assert!(out.contains("Content-Length: 9\r\n"), "{out}");
    assert!(!out.contains("Hello"), "HEAD got a body: {out}");
}

fn h2load_h1_pipelined_gets_only_2xx(model: Model) {
    let server = server(model);
    let url = format!("{}/h2load", server.base());
    // -m: requests in flight per connection, pipelined over HTTP/1.1.
    let Some(out) = run(
        "h2load",
        &["--h1", "-n", "4000", "-c", "8", "-m", "8", "-T", "10", &url],
    ) else {
        return;
    };
    assert_eq!(number_after(&out, "requests:"), 4000.0, "{out}");
    assert!(
        out.contains("4000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{out}"
    );
    assert!(
        out.contains("status codes: 4000 2xx, 0 3xx, 0 4xx, 0 5xx"),
        "{out}"
    );
}

fn ab_keep_alive_gets_only_2xx_on_kept_connections(model: Model) {
    let server = server(model);
    let url = format!("{}/ab", server.base());
    let Some(out) = run("ab", &["-k", "-q", "-n", "2000", "-c", "8", "-s", "10", &url]) else {
        return;
    };
    assert_eq!(number_after(&out, "Complete requests:"), 2000.0, "{out}");
    assert_eq!(number_after(&out, "Failed requests:"), 0.0, "{out}");
    // ab speaks HTTP/1.0 and asks for keep-alive: every request reuses.
    assert_eq!(number_after(&out, "Keep-Alive requests:"), 2000.0, "{out}");
    assert!(!out.contains("Non-2xx responses"), "{out}");
}

fn wrk_gets_only_2xx_and_no_socket_errors(model: Model) {
    let server = server(model);
    let url = format!("{}/", server.base());
    // wrk ends by itself after -d.
    let Some(out) = run("wrk", &["-t1", "-c16", "-d1s", &url]) else {
        return;
    };
    assert!(number_after(&out, "Requests/sec:") > 0.0, "{out}");
    // wrk prints these lines only when there were any.
    assert!(!out.contains("Socket errors"), "socket errors:\n{out}");
    assert!(
        !out.contains("Non-2xx or 3xx responses"),
        "error responses:\n{out}"
    );
}
