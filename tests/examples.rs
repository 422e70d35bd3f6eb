//! Every example is a command-line tool that behaves like one: `--help` and
//! `-h` print its usage and exit 0; an unknown option, a stray argument, a
//! missing value or an option that does not apply to the chosen mode is
//! refused with one line naming it and exit 2; a failure once running (the
//! address in use, a host that does not resolve) is one line naming what
//! failed, and exit 1.
//!
//! The examples are built by `cargo test` before it runs the tests, into
//! `target/<profile>/examples/`; a run that did not build them (`cargo test
//! --test examples` on a fresh checkout) skips these tests with a note on
//! stderr: build them with `cargo build --examples`.
#![cfg(unix)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::output_text;

/// Every example with a command line.
const EXAMPLES: &[&str] = &[
    "echo_server",
    "hello_http",
    "hello_https",
    "chat",
    "http_get",
    "mio_echo",
    "tokio_echo",
    "tokio_tls_echo",
    "udp_echo",
    "tokio_udp_echo",
    "loadgen",
    "compare",
];

/// The examples that serve on `--addr`.
const SERVERS: &[&str] = &[
    "echo_server",
    "hello_http",
    "hello_https",
    "chat",
    "mio_echo",
    "tokio_echo",
];

/// The examples that serve UDP on `--addr`.
const UDP_SERVERS: &[&str] = &["udp_echo", "tokio_udp_echo"];

/// The directory the examples are built into, if they are all there.
fn examples_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/examples-HASH -> target/<profile>/examples
    let dir = exe.parent()?.parent()?.join("examples");
    if let Some(missing) = EXAMPLES.iter().find(|e| !dir.join(e).is_file()) {
        eprintln!(
            "SKIPPED: {missing} is not built in {}; run `cargo build --examples`",
            dir.display()
        );
        return None;
    }
    Some(dir)
}

/// Runs `example` with `args` to its end, killing it (by its PID) if it
/// takes over 20 s: a server that should have refused to start.
#[track_caller]
fn run(example: &str, args: &[&str]) -> Output {
    let dir = examples_dir().expect("checked by the caller");
    let mut child = Command::new(dir.join(example))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait for the example").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("reap the example");
            panic!(
                "{example} {args:?} still ran after 20 s:\n{}",
                output_text(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("collect the example's output")
}

/// Asserts that `example args` exits with `code` and one line on stderr
/// that starts with the example's name and holds every one of `says`.
#[track_caller]
fn assert_one_line(example: &str, args: &[&str], code: i32, says: &[&str]) {
    let output = run(example, args);
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(code), "{example} {args:?}:\n{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{example} {args:?}: one line:\n{all}");
    assert!(
        stderr.starts_with(&format!("{example}: ")),
        "{example} {args:?}:\n{all}"
    );
    for said in says {
        assert!(
            stderr.contains(said),
            "{example} {args:?} should say {said:?}:\n{all}"
        );
    }
}

#[test]
fn every_example_answers_help_with_its_usage_and_status_0() {
    if examples_dir().is_none() {
        return;
    }
    for example in EXAMPLES {
        for flag in ["--help", "-h"] {
            let output = run(example, &[flag]);
            let all = output_text(&output);
            assert_eq!(output.status.code(), Some(0), "{example} {flag}:\n{all}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                stdout.starts_with(&format!("usage: {example}")),
                "{example} {flag}:\n{all}"
            );
            assert!(stdout.contains("-h, --help") || *example == "compare", "{all}");
            assert!(output.stderr.is_empty(), "{example} {flag}:\n{all}");
        }
    }
}

#[test]
fn every_example_refuses_an_unknown_option_in_one_line_with_status_2() {
    if examples_dir().is_none() {
        return;
    }
    for example in EXAMPLES {
        assert_one_line(
            example,
            &["--no-such-option"],
            2,
            &["unknown option --no-such-option", "--help"],
        );
    }
}

#[test]
fn every_example_refuses_a_stray_argument_in_one_line_with_status_2() {
    if examples_dir().is_none() {
        return;
    }
    for example in EXAMPLES {
        // http_get takes one URL, so the stray argument is a second one.
        let args: &[&str] = match *example {
            "http_get" => &["http://127.0.0.1:1/", "stray"],
            _ => &["stray"],
        };
        assert_one_line(example, args, 2, &["unexpected argument \"stray\""]);
    }
}

#[test]
fn an_option_without_its_value_or_with_a_bad_one_is_named() {
    if examples_dir().is_none() {
        return;
    }
    for example in SERVERS
        .iter()
        .chain(UDP_SERVERS)
        .chain(&["loadgen", "tokio_tls_echo"])
    {
        assert_one_line(example, &["--addr"], 2, &["--addr needs a value"]);
        assert_one_line(
            example,
            &["--addr", "127.0.0.1:99999"],
            2,
            &["bad --addr \"127.0.0.1:99999\"", "HOST:PORT"],
        );
    }
    assert_one_line("echo_server", &["--threads", "0"], 2, &["bad --threads 0"]);
    assert_one_line("echo_server", &["--model", "fibers"], 2, &["reactor or threads"]);
    assert_one_line("hello_http", &["--nodelay", "maybe"], 2, &["on or off"]);
    assert_one_line("hello_https", &["--model", "fibers"], 2, &["reactor or threads"]);
    assert_one_line("loadgen", &["--conns", "x"], 2, &["bad --conns \"x\""]);
    assert_one_line("udp_echo", &["--threads", "0"], 2, &["bad --threads 0"]);
    assert_one_line("udp_echo", &["--batch", "2000"], 2, &["bad --batch 2000"]);
}

#[test]
fn options_that_do_not_apply_to_the_chosen_mode_are_refused() {
    if examples_dir().is_none() {
        return;
    }
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "echo_server",
            &["--addr", "127.0.0.1:0", "--unix", "/tmp/x.sock"],
            "--addr and --unix are two places to listen",
        ),
        (
            "hello_http",
            &["--unix", "/tmp/x.sock", "--addr", "127.0.0.1:0"],
            "--addr and --unix are two places to listen",
        ),
        (
            "loadgen",
            &["--addr", "127.0.0.1:1", "--unix", "/tmp/x.sock"],
            "--addr and --unix are two servers",
        ),
        (
            "echo_server",
            &["--model", "threads", "--threads", "2"],
            "--threads applies to --model reactor only",
        ),
        (
            "echo_server",
            &["--balance", "least", "--model", "threads"],
            "--balance applies to --model reactor only",
        ),
        (
            "echo_server",
            &["--model", "threads", "--pin"],
            "--pin applies to --model reactor only",
        ),
        (
            "echo_server",
            &["--model", "threads", "--handover", "/tmp/never.sock"],
            "--handover applies to --model reactor only",
        ),
        (
            "loadgen",
            &["--idle", "5", "--rate", "10"],
            "--rate does not apply to --idle",
        ),
        (
            "loadgen",
            &["--http", "/", "--size", "10"],
            "--size does not apply to --http",
        ),
        ("loadgen", &["--count", "5", "--duration", "1"], "give one"),
        (
            "loadgen",
            &["--udp", "--depth", "2"],
            "--depth does not apply to --udp",
        ),
        ("loadgen", &["--udp", "--size", "8"], "at least 16 with --udp"),
        (
            "loadgen",
            &["--timeout", "3"],
            "--timeout bounds a --count run only",
        ),
        ("loadgen", &["--handshakes"], "--handshakes needs --tls"),
        (
            "loadgen",
            &["--tls", "ca.pem", "--handshakes", "--depth", "2"],
            "--depth does not apply to --handshakes",
        ),
        (
            "compare",
            &["--idle", "--warmup", "1"],
            "--warmup does not apply to --idle",
        ),
    ];
    // Without the `http` feature loadgen refuses --http before its checks.
    let built = |args: &[&str]| cfg!(feature = "http") || !args.contains(&"--http");
    for (example, args, says) in cases.iter().filter(|(_, args, _)| built(args)) {
        assert_one_line(example, args, 2, &[says]);
    }
}

#[test]
fn a_server_on_an_address_in_use_says_which_and_exits_1() {
    if examples_dir().is_none() {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let says = format!("cannot listen on {addr}: ");
    // Without their features the HTTP examples say they cannot serve at all.
    let unbuilt: &[&str] = match (cfg!(feature = "http"), cfg!(feature = "tls")) {
        (true, true) => &[],
        (true, false) => &["hello_https"],
        (false, _) => &["hello_http", "hello_https"],
    };
    let serving = SERVERS.iter().filter(|e| !unbuilt.contains(e));
    for example in serving {
        assert_one_line(example, &["--addr", &addr], 1, &[&says]);
    }
    assert_one_line(
        "echo_server",
        &["--addr", &addr, "--model", "threads"],
        1,
        &[&says],
    );
}

#[test]
fn a_udp_server_on_an_address_in_use_says_which_and_exits_1() {
    if examples_dir().is_none() {
        return;
    }
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let says = format!("cannot listen on {addr}: ");
    for example in UDP_SERVERS {
        assert_one_line(example, &["--addr", &addr], 1, &[&says]);
    }
}

/// Each UDP echo example, on a free port, echoes a datagram; udp_echo with
/// two loops, and stopped by SIGTERM, logs its counters and exits 0.
#[test]
fn udp_echo_servers_echo_a_datagram() {
    if examples_dir().is_none() {
        return;
    }
    for (example, args) in [("udp_echo", &["--threads", "2"][..]), ("tokio_udp_echo", &[])] {
        let addr = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut server = Command::new(examples_dir().unwrap().join(example))
            .args(["--addr", &addr.to_string()])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 64];
        // Datagrams sent before the server binds are lost: ask until answered.
        let echoed = loop {
            client.send_to(b"hello udp", addr).unwrap();
            if let Ok((n, from)) = client.recv_from(&mut buf) {
                break (buf[..n].to_vec(), from);
            }
            if Instant::now() > deadline {
                let _ = server.kill(); // our own child, by its PID
                panic!("{example} never echoed");
            }
        };
        // SIGTERM, by the child's own PID: the example stops and logs its
        // counters, once it has its handler (answering comes just before).
        if example == "udp_echo" {
            wait_until_sigterm_is_caught(libc::pid_t::try_from(server.id()).unwrap());
        }
        let _ = Command::new("kill").arg(server.id().to_string()).status();
        let output = server.wait_with_output().unwrap();
        assert_eq!(echoed, (b"hello udp".to_vec(), addr), "{example}");
        if example == "udp_echo" {
            let all = output_text(&output);
            assert_eq!(output.status.code(), Some(0), "{all}");
            assert!(all.contains("stopped: datagrams in "), "{all}");
        }
    }
}

/// loadgen --udp against udp_echo: every echo checked, the counts add up.
#[test]
fn loadgen_udp_counts_what_it_sent_received_and_lost() {
    if examples_dir().is_none() {
        return;
    }
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut server = Command::new(examples_dir().unwrap().join("udp_echo"))
        .args(["--addr", &addr.to_string(), "--threads", "1"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bound: wait until it answers before loading it.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while probe.send_to(b"?", addr).is_ok() && probe.recv_from(&mut [0; 8]).is_err() {
        assert!(Instant::now() < deadline, "udp_echo never answered");
    }
    let args = [
        "--udp",
        "--addr",
        &addr.to_string(),
        "--conns",
        "4",
        "--rate",
        "2000",
    ];
    let output = run(
        "loadgen",
        &[&args[..], &["--warmup", "0", "--duration", "0.5"]].concat(),
    );
    let _ = server.kill(); // our own child, by its PID
    let _ = server.wait();
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let line = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> u64 {
        let value = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")));
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {all}"))
    };
    assert_eq!(field("sent"), field("received") + field("lost"), "{all}");
    assert!(field("sent") >= 900 && field("received") > 0, "{all}");
}

/// loadgen --http against a server that answers each connection's one
/// request with `Connection: close` and closes it at once, so the answer
/// and the end of stream arrive together: loadgen opens a new connection
/// every time and keeps to its rate, none left hanging.
#[cfg(feature = "http")]
#[test]
fn loadgen_http_replaces_a_connection_closed_with_its_answer() {
    use std::io::{Read, Write};
    if examples_dir().is_none() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut buf = [0; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let _ = stream.write_all(answer);
            // Dropped here: the FIN follows the answer at once.
        }
    });
    let args = ["--addr", &addr.to_string(), "--http", "/", "--conns", "2"];
    let rate = ["--rate", "100", "--warmup", "0", "--duration", "1"];
    let output = run("loadgen", &[&args[..], &rate[..]].concat());
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let line = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> u64 {
        let value = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")));
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {all}"))
    };
    // 100 requests fall due in the second; a connection left hanging
    // after its close would stop its half of them.
    assert!(field("msgs") >= 90, "{all}");
    assert!(field("reconnects") + 2 >= field("msgs"), "{all}");
    assert_eq!(field("stalled"), 0, "{all}");
}

#[cfg(feature = "http")]
#[test]
fn http_get_needs_a_url_and_names_what_it_could_not_reach() {
    if examples_dir().is_none() {
        return;
    }
    assert_one_line("http_get", &[], 2, &["a URL is needed"]);
    assert_one_line("http_get", &["https://example.com/"], 2, &["only http:// URLs"]);
    assert_one_line(
        "http_get",
        &["http://no-such-host.invalid/"],
        1,
        &["GET http://no-such-host.invalid/: cannot resolve no-such-host.invalid:80"],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The listener is gone: nothing listens there now.
    let url = format!("http://127.0.0.1:{port}/");
    assert_one_line(
        "http_get",
        &[&url],
        1,
        &[&format!("connection to 127.0.0.1:{port} refused")],
    );
}

#[test]
fn echo_server_tls_options_go_together_and_name_a_file_it_cannot_load() {
    if examples_dir().is_none() {
        return;
    }
    assert_one_line(
        "echo_server",
        &["--tls-cert", "cert.pem"],
        2,
        &["--tls-cert and --tls-key go together"],
    );
    assert_one_line(
        "echo_server",
        &["--tls-key", "key.pem"],
        2,
        &["--tls-cert and --tls-key go together"],
    );
    assert_one_line("echo_server", &["--tls-cert"], 2, &["--tls-cert needs a value"]);
    assert_one_line(
        "tokio_tls_echo",
        &["--cert", "c.pem"],
        2,
        &["--cert and --key are both needed"],
    );
    if cfg!(feature = "tls") {
        let missing = ["--cert", "/no/such/cert.pem", "--key", "/no/such/key.pem"];
        assert_one_line(
            "tokio_tls_echo",
            &missing,
            1,
            &["cannot load the TLS certificate", "/no/such/cert.pem"],
        );
    }
    if cfg!(feature = "tls") {
        assert_one_line(
            "echo_server",
            &[
                "--addr",
                "127.0.0.1:0",
                "--tls-cert",
                "/no/such/cert.pem",
                "--tls-key",
                "/no/such/key.pem",
            ],
            1,
            &["cannot load the TLS certificate", "/no/such/cert.pem"],
        );
    }
}

/// The TLS echo servers, `echo_server` on both models and `tokio_tls_echo`,
/// with a certificate made for the test: a rustls client trusting it gets
/// its bytes back.
#[cfg(feature = "tls")]
#[test]
fn tls_echo_servers_serve_with_the_certificate_they_are_given() {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use evloop::tls::rustls::{ClientConnection, RootCertStore, StreamOwned};

    if examples_dir().is_none() {
        return;
    }
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("evloop-echo-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
    let (cert_file, key_file) = (cert_file.to_str().unwrap(), key_file.to_str().unwrap());
    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config: Arc<_> = evloop::tls::client_config(roots);
    let servers: [(&str, &[&str]); 3] = [
        (
            "echo_server",
            &[
                "--model",
                "reactor",
                "--tls-cert",
                cert_file,
                "--tls-key",
                key_file,
            ],
        ),
        (
            "echo_server",
            &[
                "--model",
                "threads",
                "--tls-cert",
                cert_file,
                "--tls-key",
                key_file,
            ],
        ),
        ("tokio_tls_echo", &["--cert", cert_file, "--key", key_file]),
    ];
    for (example, args) in servers {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = examples_dir().unwrap();
        let mut server = Command::new(dir.join(example))
            .args(["--addr", &addr])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let sock = loop {
            match std::net::TcpStream::connect(&addr) {
                Ok(sock) => break sock,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("{example} {args:?} did not listen: {e}"),
            }
        };
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = ClientConnection::new(Arc::clone(&config), "localhost".try_into().unwrap()).unwrap();
        let mut tls = StreamOwned::new(conn, sock);
        tls.write_all(b"hello over tls").unwrap();
        let mut got = [0; 14];
        tls.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello over tls", "{example} {args:?}");
        if example == "tokio_tls_echo" {
            // Its address is now in use: a second one says so.
            let again = [&["--addr", &addr][..], args].concat();
            assert_one_line(example, &again, 1, &[&format!("cannot listen on {addr}: ")]);
        }
        let _ = server.kill(); // our own child, by its PID
        let _ = server.wait();
    }
}

#[test]
fn hello_https_options_go_together_and_name_a_file_it_cannot_load() {
    if examples_dir().is_none() {
        return;
    }
    for args in [&["--cert", "cert.pem"][..], &["--key", "key.pem"]] {
        assert_one_line("hello_https", args, 2, &["--cert and --key go together"]);
    }
    assert_one_line(
        "hello_https",
        &["--model", "threads", "--threads", "2"],
        2,
        &["--threads applies to --model reactor only"],
    );
    if cfg!(all(feature = "http", feature = "tls")) {
        assert_one_line(
            "hello_https",
            &[
                "--addr",
                "127.0.0.1:0",
                "--cert",
                "/no/such/cert.pem",
                "--key",
                "/no/such/key.pem",
            ],
            1,
            &["cannot load the TLS certificate", "/no/such/cert.pem"],
        );
    }
}

/// hello_https without a certificate, on both models: it writes the one it
/// made where `$TMPDIR` says, and evloop's client trusting that file gets
/// `Hello world!` over HTTPS from `localhost`.
#[cfg(all(feature = "http", feature = "tls"))]
#[test]
fn hello_https_serves_with_the_certificate_it_makes_and_names() {
    use evloop::tls::rustls::RootCertStore;

    if examples_dir().is_none() {
        return;
    }
    for model in ["reactor", "threads"] {
        let tmp = std::env::temp_dir().join(format!("evloop-hello-https-{}-{model}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let cert_file = tmp.join("hello_https-cert.pem");
        let _ = std::fs::remove_file(&cert_file);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut server = Command::new(examples_dir().unwrap().join("hello_https"))
            .args(["--addr", &addr, "--model", model])
            .env("TMPDIR", &tmp)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        // The file is written once the server listens.
        let pem = loop {
            match std::fs::read(&cert_file) {
                Ok(pem) if !pem.is_empty() => break pem,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => panic!("hello_https --model {model} wrote no {}", cert_file.display()),
            }
        };
        let mut roots = RootCertStore::empty();
        for cert in evloop::tls::certificates(&pem).unwrap() {
            roots.add(cert).unwrap();
        }
        let response = evloop::http::ClientRequest::get(&format!("https://localhost:{port}/"))
            .tls(evloop::tls::client_config(roots))
            .timeout(Duration::from_secs(10))
            .send();
        let _ = server.kill(); // our own child, by its PID
        let _ = server.wait();
        let response = response.unwrap_or_else(|e| panic!("--model {model}: {e}"));
        assert_eq!(&response.body()[..], b"Hello world!", "--model {model}");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

/// Starts `example --unix PATH ARGS` and waits until its socket file
/// appears; returns the child and the path.
fn start_on_unix_socket(example: &str, args: &[&str]) -> (std::process::Child, PathBuf) {
    let dir = std::env::temp_dir().join(format!("evloop-examples-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{example}-{}.sock", args.join("-")));
    let _ = std::fs::remove_file(&path);
    let child = Command::new(examples_dir().unwrap().join(example))
        .arg("--unix")
        .arg(&path)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&path).is_err() {
        assert!(Instant::now() < deadline, "{example} --unix did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, path)
}

/// Waits until process `pid` catches SIGTERM (the kernel lists it in
/// `SigCgt`, bit 15 - 1): a server installs its handler just after it starts
/// serving, and a SIGTERM before that would kill it outright.
fn wait_until_sigterm_is_caught(pid: libc::pid_t) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let caught = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .unwrap_or("0");
        u64::from_str_radix(mask.trim(), 16).is_ok_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0)
    };
    while !caught() {
        assert!(Instant::now() < deadline, "process {pid} never caught SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops our own child with SIGTERM, by its PID, so that it shuts down
/// gracefully, and asserts that it removed its socket file.
fn stop_gracefully(mut child: std::process::Child, path: &std::path::Path) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // The server catches SIGTERM from just after it starts listening.
    wait_until_sigterm_is_caught(pid);
    // SAFETY: kill takes no pointers; the PID is our own unreaped child's.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "{} outlived its server", path.display());
}

#[test]
fn echo_server_serves_a_unix_socket_on_both_models() {
    use std::io::{Read, Write};
    if examples_dir().is_none() {
        return;
    }
    for model in ["reactor", "threads"] {
        let (child, path) = start_on_unix_socket("echo_server", &["--model", model]);
        let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        client.write_all(b"over a unix socket").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"over a unix socket", "--model {model}");
        stop_gracefully(child, &path);
    }
}

#[cfg(feature = "http")]
#[test]
fn hello_http_answers_curl_over_a_unix_socket() {
    if examples_dir().is_none() {
        return;
    }
    let (child, path) = start_on_unix_socket("hello_http", &["--threads", "1"]);
    let curl = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--unix-socket"])
        .arg(&path)
        .args(["http://localhost/", "http://localhost/again"])
        .output();
    let output = match curl {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("SKIPPED: curl not installed");
            eprintln!("SKIPPED: curl not installed");
            stop_gracefully(child, &path);
            return;
        }
        Err(e) => panic!("running curl: {e}"),
    };
    assert!(output.status.success(), "{}", output_text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Hello world!Hello world!"
    );
    stop_gracefully(child, &path);
}
