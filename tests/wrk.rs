//! A real load generator against `evloop::http`: `wrk` with 16 keep-alive
//! connections for one second gets only 200s and no socket errors. Skipped
//! (with a note) where `wrk` is not installed.

#![cfg(feature = "http")]

use std::process::Command;
use std::time::Duration;

use evloop::http::{HttpServer, Request, Response};

/// Whether `wrk` can be run.
fn wrk_installed() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

/// The number after `label` in wrk's report, e.g. `Requests/sec:` → 1234.5.
fn number_after(report: &str, label: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.trim_start().starts_with(label))?;
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn wrk_gets_only_200s_and_no_socket_errors() {
    if !wrk_installed() {
        println!("SKIPPED: wrk not installed");
        return;
    }
    let server = HttpServer::new("127.0.0.1:0".parse().unwrap())
        .threads(1)
        .start(|_req: &Request| Response::text("Hello world!"))
        .unwrap();
    let url = format!("http://{}/", server.local_addr());
    // wrk ends by itself after -d; `timeout` would need coreutils, and a
    // hang here would show as the test harness's own timeout.
    let out = Command::new("wrk")
        .args(["-t1", "-c16", "-d1s", &url])
        .output()
        .expect("wrk runs");
    server.shutdown(Duration::ZERO);
    server.join().unwrap();

    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rate =
        number_after(&report, "Requests/sec:").unwrap_or_else(|| panic!("no Requests/sec in {report}"));
    assert!(rate > 0.0, "no requests answered:\n{report}");
    // wrk prints these lines only when there were any.
    assert!(!report.contains("Socket errors"), "socket errors:\n{report}");
    assert!(
        !report.contains("Non-2xx or 3xx responses"),
        "error responses:\n{report}"
    );
}
