//! Real TLS clients against the server, on both models: `openssl s_client`
//! echoes and says goodbye with `close_notify`, refuses a certificate it
//! does not trust in the middle of the handshake, and, killed, leaves
//! without `close_notify`; Python's `ssl` echoes with SNI and ALPN and
//! unwraps. Each close is counted under its reason. A client that is not
//! installed makes its test print SKIPPED and pass (`.ci/run` installs
//! both from the system's packages).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use evloop::tls::TlsAcceptor;
use evloop::{CloseReason, Config};

use crate::common::{Model, TestServer};
use crate::on_both_models;
use crate::pki::{self, pki};
use crate::script::{Scripted, Shared, closes_after};

on_both_models!(
    openssl_s_client_echoes_and_closes_with_close_notify,
    openssl_s_client_killed_leaves_without_close_notify,
    openssl_s_client_refusing_the_certificate_mid_handshake_is_counted,
    python_ssl_echoes_with_sni_and_alpn_and_unwraps,
);

/// True if `tool` runs; otherwise prints SKIPPED for the test.
fn installed(tool: &str, version: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("SKIPPED: {tool} not installed");
    }
    ok
}

/// A scripted TLS server offering ALPN `evloop-test`.
fn server(model: Model) -> (TestServer, Shared) {
    let log = Shared::default();
    let acceptor = TlsAcceptor::new(pki().server_config(&[b"evloop-test"]));
    let config = Config::default().handshake_timeout(Duration::from_secs(5));
    let server = TestServer::start_tls(model, config, acceptor, Scripted::factory(&log));
    (server, log)
}

/// `openssl s_client` to `server`, trusting `ca`, its stdin and stdout
/// piped; `extra` options last.
fn s_client(server: &TestServer, ca: &std::path::Path, extra: &[&str]) -> std::process::Child {
    Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.addr.to_string(),
            "-servername",
            "localhost",
        ])
        .args(["-alpn", "evloop-test", "-verify_return_error", "-CAfile"])
        .arg(ca)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openssl")
}

/// Reads lines from `out` until one equals `want`; panics at its end.
#[track_caller]
fn expect_line(out: &mut impl BufRead, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "no line {want:?} from the client"
        );
        if line.trim_end() == want {
            return;
        }
    }
}

fn openssl_s_client_echoes_and_closes_with_close_notify(model: Model) {
    if !installed("openssl", "version") {
        return;
    }
    let (server, log) = server(model);
    let mut client = s_client(&server, &pki().ca_file, &["-quiet", "-no_ign_eof"]);
    let mut out = BufReader::new(client.stdout.take().unwrap());
    expect_line(&mut out, "localhost evloop-test TLSv1_3");
    client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello from openssl\n")
        .unwrap();
    expect_line(&mut out, "hello from openssl");
    drop(client.stdin.take()); // end of input: s_client sends close_notify
    assert!(client.wait().unwrap().success());
    assert_eq!(closes_after(&log, 1), [CloseReason::PeerClosed]);
}

fn openssl_s_client_killed_leaves_without_close_notify(model: Model) {
    if !installed("openssl", "version") {
        return;
    }
    let (server, log) = server(model);
    let mut client = s_client(&server, &pki().ca_file, &["-quiet"]);
    let mut out = BufReader::new(client.stdout.take().unwrap());
    expect_line(&mut out, "localhost evloop-test TLSv1_3");
    client.stdin.as_mut().unwrap().write_all(b"partial line").unwrap();
    client.stdin.as_mut().unwrap().flush().unwrap();
    crate::common::wait_until("the partial line read", || {
        Some(()).filter(|()| server.stats().bytes_read >= 12)
    });
    client.kill().unwrap(); // SIGKILL to our own child, by its PID
    client.wait().unwrap();
    assert_eq!(closes_after(&log, 1), [CloseReason::Truncated]);
    assert_eq!(
        log.lock().unwrap().eofs,
        [b"partial line".to_vec()],
        "on_eof saw it"
    );
    let stats = server.wait_for_stats("counted", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::Truncated), 1);
}

fn openssl_s_client_refusing_the_certificate_mid_handshake_is_counted(model: Model) {
    if !installed("openssl", "version") {
        return;
    }
    let (server, log) = server(model);
    let stranger = pki::make("evloop-untrusted-ca");
    let client = s_client(&server, &stranger.ca_file, &["-quiet"]);
    let output = client.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "s_client trusted a certificate of another CA"
    );
    assert_eq!(closes_after(&log, 1), [CloseReason::Tls]);
    assert!(
        log.lock().unwrap().opened.is_empty(),
        "on_open ran for a refused handshake"
    );
    let stats = server.wait_for_stats("counted", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::Tls), 1);
}

/// Connects with Python's `ssl`, reads the greeting, echoes a line, prints
/// both and the ALPN protocol, then unwraps: `close_notify` both ways.
const PYTHON_CLIENT: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(["evloop-test"])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as raw:
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    def line():
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                raise SystemExit("stream ended early")
            got += chunk
        return got.decode().strip()
    greeting = line()
    s.sendall(b"hello from python\n")
    print(greeting)
    print(line())
    print(s.selected_alpn_protocol())
    s.unwrap()
    print("unwrapped")
"#;

fn python_ssl_echoes_with_sni_and_alpn_and_unwraps(model: Model) {
    if !installed("python3", "--version") {
        return;
    }
    let (server, log) = server(model);
    let output = Command::new("python3")
        .args(["-c", PYTHON_CLIENT, &server.addr.port().to_string()])
        .arg(&pki().ca_file)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "localhost evloop-test TLSv1_3",
            "hello from python",
            "evloop-test",
            "unwrapped"
        ]
    );
    assert_eq!(closes_after(&log, 1), [CloseReason::PeerClosed]);
}
