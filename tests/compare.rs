//! The measuring tools end to end: `compare` runs a tiny sweep and writes its
//! reports, draws its charts again from saved CSV files, rejects impossible
//! arguments with status 2 and one line, fails cleanly when a server cannot
//! start; `loadgen --rate` paces its messages; `loadgen --tls` echoes and
//! makes full handshakes over TLS, and `compare --idle --tls` measures
//! evloop and tokio-rustls.
//!
//! The tools are examples, which `cargo test` builds (in the test profile)
//! before it runs the tests; they are found in `target/<profile>/examples/`
//! beside this test's own directory. A run that did not build them (say
//! `cargo test --test compare` on a fresh checkout) skips these tests with a
//! note on stderr: build them with `cargo build --examples`.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bytes::BytesMut;
use evloop::{Config, Conn, EventLoop, Handler};

/// The directory the examples are built into, if they are there.
fn examples_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/compare-HASH -> target/<profile>/examples
    let dir = exe.parent()?.parent()?.join("examples");
    let built = [
        "compare",
        "loadgen",
        "echo_server",
        "tokio_echo",
        "tokio_tls_echo",
    ]
    .iter()
    .all(|b| dir.join(b).is_file());
    if !built {
        eprintln!(
            "SKIPPED: examples not built in {}; run `cargo build --examples`",
            dir.display()
        );
        return None;
    }
    Some(dir)
}

/// Runs an example with `args`.
fn run(dir: &Path, example: &str, args: &[&str]) -> Output {
    Command::new(dir.join(example))
        .args(args)
        .output()
        .expect("run the example")
}

/// A fresh, empty directory for one test's reports.
fn out_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evloop-compare-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Stdout and stderr, for assertion messages.
fn text(output: &Output) -> String {
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    format!("status {}\n--- stdout\n{out}--- stderr\n{err}", output.status)
}

#[test]
fn a_tiny_sweep_prints_a_table_and_writes_the_reports() {
    let Some(dir) = examples_dir() else { return };
    let out = out_dir("sweep");
    let mut args = vec!["--models".to_string(), "reactor,threads".to_string()];
    let tail = [
        "--conns",
        "1,4",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--duration",
        "0.3",
        "--out",
    ];
    args.extend(tail.map(String::from));
    args.push(out.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&dir, "compare", &args);
    let all = text(&output);
    assert!(output.status.success(), "{all}");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let header = stdout.lines().next().unwrap_or_default();
    for column in [
        "model",
        "conns",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "CPU µs/msg",
        "cs/1k msgs",
        "RSS/conn KiB",
        "threads",
    ] {
        assert!(header.contains(column), "no {column:?} column:\n{all}");
    }
    let rows: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("reactor"))
        .collect();
    assert_eq!(rows.len(), 2, "one reactor row per connection count:\n{all}");

    let md = std::fs::read_to_string(out.join("compare.md")).expect("compare.md");
    assert!(
        md.contains("| model | conns |") && md.contains("| reactor | 4 |"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("compare.svg")).expect("compare.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("reactor"),
        "not an SVG chart"
    );
    let csv = std::fs::read_to_string(out.join("compare.csv")).expect("compare.csv");
    assert_eq!(
        csv.lines().count(),
        1 + 2 * 2,
        "a header and a line per run:\n{csv}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn idle_mode_fits_memory_per_connection() {
    let Some(dir) = examples_dir() else { return };
    let out = out_dir("idle");
    let server = "r=echo_server --addr {addr} --threads 1";
    let args = [
        "--idle", "--server", server, "--models", "r", "--conns", "20,60", "--rounds", "1", "--out",
    ];
    let mut args = args.to_vec();
    let out_arg = out.display().to_string();
    args.push(&out_arg);
    let output = run(&dir, "compare", &args);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("KiB per idle connection"),
        "{all}"
    );
    for file in ["idle.md", "idle.csv", "idle.svg"] {
        assert!(out.join(file).is_file(), "no {file}:\n{all}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn impossible_arguments_exit_with_status_2_and_say_why() {
    let Some(dir) = examples_dir() else { return };
    let cases: &[(&[&str], &str)] = &[
        (&["--conns", "0"], "--conns"),
        (&["--conns", "1,x"], "--conns"),
        (&["--conns", "100000000"], "fd"),
        (&["--models", "nosuch"], "unknown model"),
        (&["--rounds", "0"], "--rounds"),
        (&["--duration", "-1"], "--duration"),
        (&["--pin", "0"], "SERVER_CPUS:CLIENT_CPUS"),
        (&["--pin", "100000:0"], "not available"),
        (&["--server", "x=echo_server --port"], "{addr}"),
        (&["--server", "x=echo_server --addr {adr}"], "placeholder"),
        (&["--bin-dir", "/nonexistent"], "cargo build"),
        (&["--frobnicate", "1"], "unknown option --frobnicate"),
        (&["extra"], "unexpected argument \"extra\""),
        (
            &["--idle", "--duration", "2"],
            "--duration does not apply to --idle",
        ),
        (
            &["--redraw", "docs/compare", "--rounds", "2"],
            "does not apply to --redraw",
        ),
        (&["--tls", "--models", "mio"], "serves no TLS"),
        (&["--models", "tokio-tls"], "add --tls"),
    ];
    for (args, says) in cases {
        let output = run(&dir, "compare", args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}:\n{}", text(&output));
        assert!(
            stderr.contains(says),
            "{args:?} should mention {says:?}:\n{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line:\n{stderr}");
    }
}

#[test]
fn redraw_draws_the_charts_again_from_the_csv_files_alone() {
    let Some(dir) = examples_dir() else { return };
    let out = out_dir("redraw");
    std::fs::create_dir_all(&out).unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/compare");
    for file in ["compare.csv", "idle.csv"] {
        std::fs::copy(docs.join(file), out.join(file)).unwrap();
    }
    let output = run(&dir, "compare", &["--redraw", &out.display().to_string()]);
    assert!(output.status.success(), "{}", text(&output));

    let svg = std::fs::read_to_string(out.join("compare.svg")).expect("compare.svg");
    for label in [
        "reactor",
        "threads",
        "tokio",
        "5,000",
        "connections (log scale)",
        "µs (log scale)",
    ] {
        assert!(svg.contains(label), "compare.svg has no {label:?}");
    }
    let idle = std::fs::read_to_string(out.join("idle.svg")).expect("idle.svg");
    assert!(
        idle.contains("10,000") && idle.contains("MiB resident"),
        "idle.svg"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_server_that_cannot_start_fails_the_run_with_its_output() {
    let Some(dir) = examples_dir() else { return };
    let server = "broken=echo_server --addr {addr} --no-such-option 1";
    let output = run(
        &dir,
        "compare",
        &["--server", server, "--models", "broken", "--conns", "1"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(stderr.contains("broken") && stderr.contains("exited"), "{stderr}");
    assert!(
        stderr.contains("--no-such-option"),
        "the server's own complaint is shown:\n{stderr}"
    );
}

/// Echoes everything, zero-copy.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

#[test]
fn loadgen_at_a_fixed_rate_sends_that_many_messages() {
    let Some(dir) = examples_dir() else { return };
    let event_loop = EventLoop::bind("127.0.0.1:0".parse().unwrap(), Config::default(), || Echo).unwrap();
    let handle = event_loop.handle();
    let thread = std::thread::spawn(move || event_loop.run());
    let addr = handle.local_addr().to_string();
    let pid = std::process::id().to_string();
    let args = [
        "--addr",
        &addr,
        "--conns",
        "4",
        "--rate",
        "2000",
        "--warmup",
        "0",
        "--duration",
        "0.5",
    ];
    let output = run(&dir, "loadgen", &[&args[..], &["--pid", &pid]].concat());
    handle.shutdown(Duration::from_secs(1));
    thread.join().unwrap().unwrap();

    let all = text(&output);
    assert!(output.status.success(), "{all}");
    let line = String::from_utf8_lossy(&output.stdout);
    let field = |key: &str| -> f64 {
        let kv = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")[..]));
        kv.and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    };
    assert_eq!(field("target_rate"), 2000.0);
    let msgs = field("msgs");
    assert!(
        (800.0..=1100.0).contains(&msgs),
        "2000/s for 0.5 s sent {msgs}:\n{all}"
    );
    assert!(field("p99_us") > 0.0 && field("server_threads") >= 1.0, "{line}");
}

#[test]
fn loadgen_idle_reports_once_every_connection_is_up() {
    let Some(dir) = examples_dir() else { return };
    let event_loop = EventLoop::bind("127.0.0.1:0".parse().unwrap(), Config::default(), || Echo).unwrap();
    let handle = event_loop.handle();
    let thread = std::thread::spawn(move || event_loop.run());
    let addr = handle.local_addr().to_string();
    let output = run(
        &dir,
        "loadgen",
        &["--addr", &addr, "--idle", "30", "--duration", "0.2"],
    );
    let stats = handle.stats();
    handle.shutdown(Duration::from_secs(1));
    thread.join().unwrap().unwrap();

    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("idle_conns=30 connect_secs="));
    assert!(stats.accepted >= 30, "{stats:?}");
}

#[cfg(feature = "tls")]
#[test]
fn idle_mode_over_tls_measures_evloop_and_tokio_rustls() {
    let Some(dir) = examples_dir() else { return };
    let args = [
        "--idle",
        "--tls",
        "--models",
        "reactor,tokio-tls",
        "--conns",
        "10,30",
        "--rounds",
        "1",
    ];
    let output = run(&dir, "compare", &args);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for model in ["reactor", "tokio-tls"] {
        assert!(
            stdout.contains(&format!("{model}: ")) && stdout.contains("KiB per idle connection"),
            "{model}:\n{all}"
        );
    }
}

/// A self-signed certificate for 127.0.0.1 in a file for loadgen to trust,
/// and the TLS acceptor that serves it.
#[cfg(feature = "tls")]
fn self_signed(test: &str) -> (PathBuf, evloop::tls::TlsAcceptor) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = out_dir(test);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let key = cert.key_pair.serialize_pem();
    let config = evloop::tls::server_config_from_pem(cert.cert.pem().as_bytes(), key.as_bytes()).unwrap();
    (ca, evloop::tls::TlsAcceptor::new(config))
}

#[cfg(feature = "tls")]
#[test]
fn loadgen_over_tls_echoes_and_makes_a_connection_per_handshake() {
    let Some(dir) = examples_dir() else { return };
    let (ca, acceptor) = self_signed("loadgen-tls");
    let event_loop = EventLoop::bind("127.0.0.1:0".parse().unwrap(), Config::default(), || Echo).unwrap();
    let event_loop = event_loop.tls(acceptor);
    let handle = event_loop.handle();
    let thread = std::thread::spawn(move || event_loop.run());
    let addr = handle.local_addr().to_string();
    let ca = ca.display().to_string();
    let common = [
        "--addr",
        &addr,
        "--tls",
        &ca,
        "--conns",
        "3",
        "--warmup",
        "0",
        "--duration",
        "0.3",
    ];
    let echo = run(&dir, "loadgen", &common);
    let accepted_by_echo = handle.stats().accepted;
    let handshakes = run(&dir, "loadgen", &[&common[..], &["--handshakes"]].concat());
    let stats = handle.stats();
    handle.shutdown(Duration::from_secs(1));
    thread.join().unwrap().unwrap();

    for output in [&echo, &handshakes] {
        assert!(output.status.success(), "{}", text(output));
    }
    let field = |output: &Output, key: &str| -> u64 {
        let line = String::from_utf8_lossy(&output.stdout).to_string();
        let kv = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")[..]).map(String::from));
        kv.and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    };
    assert!(field(&echo, "msgs") > 0, "{}", text(&echo));
    assert_eq!(accepted_by_echo, 3, "the echo load's connections");
    let total = field(&handshakes, "handshakes_total");
    assert!(field(&handshakes, "msgs") > 0 && total >= field(&handshakes, "msgs"));
    // Each handshake its own connection: those done, and up to --conns cut
    // off unfinished at the end.
    let accepted = stats.accepted - accepted_by_echo;
    assert!(
        (total..=total + 3).contains(&accepted),
        "{accepted} connections for {total} handshakes"
    );
    let _ = std::fs::remove_dir_all(out_dir("loadgen-tls"));
}
