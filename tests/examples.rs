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

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every example with a command line.
const EXAMPLES: &[&str] = &[
    "echo_server",
    "hello_http",
    "hello_https",
    "chat",
    "http_get",
    "mio_echo",
    "tokio_echo",
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
            panic!("{example} {args:?} still ran after 20 s:\n{}", text(&output));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("collect the example's output")
}

/// Status, stdout and stderr, for assertion messages.
fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that `example args` exits with `code` and one line on stderr
/// that starts with the example's name and holds every one of `says`.
#[track_caller]
fn assert_one_line(example: &str, args: &[&str], code: i32, says: &[&str]) {
    let output = run(example, args);
    let all = text(&output);
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
            let all = text(&output);
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
    for example in SERVERS.iter().chain(&["loadgen"]) {
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
}

#[test]
fn options_that_do_not_apply_to_the_chosen_mode_are_refused() {
    if examples_dir().is_none() {
        return;
    }
    let cases: &[(&str, &[&str], &str)] = &[
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
            &["--timeout", "3"],
            "--timeout bounds a --count run only",
        ),
        (
            "compare",
            &["--idle", "--warmup", "1"],
            "--warmup does not apply to --idle",
        ),
    ];
    for (example, args, says) in cases {
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
    for example in SERVERS {
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

/// The echo server over TLS on both models, with a certificate made for the
/// test: a rustls client trusting it gets its bytes back.
#[cfg(feature = "tls")]
#[test]
fn echo_server_serves_tls_with_the_certificate_it_is_given() {
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
    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config: Arc<_> = evloop::tls::client_config(roots);
    for model in ["reactor", "threads"] {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = examples_dir().unwrap();
        let mut server = Command::new(dir.join("echo_server"))
            .args(["--addr", &addr, "--model", model, "--tls-cert"])
            .arg(&cert_file)
            .arg("--tls-key")
            .arg(&key_file)
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
                Err(e) => panic!("echo_server --model {model} did not listen: {e}"),
            }
        };
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = ClientConnection::new(Arc::clone(&config), "localhost".try_into().unwrap()).unwrap();
        let mut tls = StreamOwned::new(conn, sock);
        tls.write_all(b"hello over tls").unwrap();
        let mut got = [0; 14];
        tls.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello over tls", "--model {model}");
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
