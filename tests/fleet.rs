//! The deployment scripts in brief, as `cargo test` runs them: a few
//! restarts under load (`scripts/restart_under_load.sh`) and the HAProxy
//! fleet (`scripts/fleet.sh`), on the debug examples, a few seconds each.
//! The fleet is SKIPPED where HAProxy is not installed. Both drive
//! `hello_http`, so they need the `http` feature. They run one after the
//! other: each drives load through several processes, and run side by side
//! on two cores they would measure each other.
#![cfg(all(target_os = "linux", feature = "http"))]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use common::output_text;

/// Held by the script running, so that the other waits.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `script` with `env`, on the examples this test run built.
fn run_script(script: &str, env: &[(&str, &str)]) -> Option<Output> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bin = common::example("loadgen")?.parent()?.to_path_buf();
    for needed in ["echo_server", "hello_http"] {
        common::example(needed)?;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("timeout")
        .arg("120")
        .arg(root.join("scripts").join(script))
        .env("NO_BUILD", "1")
        .env("BIN", bin)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run the script");
    Some(output)
}

#[test]
fn restarts_under_load_lose_nothing() {
    let env = [
        ("RESTARTS", "2"),
        ("INTERVAL", "0.7"),
        ("RATE", "400"),
        ("CONNS", "8"),
        ("RECONNECT", "10"),
    ];
    let Some(output) = run_script("restart_under_load.sh", &env) else {
        return;
    };
    let all = output_text(&output);
    assert!(output.status.success(), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for server in ["echo_server", "hello_http"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(server))
            .unwrap_or_else(|| panic!("{all}"));
        let clean = "load=ok connect_errors=0 resets=0 closed=0 corrupted=0 stalled=0";
        assert!(line.ends_with(clean), "{line}\n{all}");
    }
    // hello_http's clients keep their connections alive (no --reconnect):
    // each draining process closed each of the 8 connections it served.
    let figures = stdout
        .lines()
        .skip_while(|l| !l.starts_with("hello_http"))
        .nth(1)
        .unwrap_or_else(|| panic!("{all}"));
    let reconnects: u64 = figures
        .split(' ')
        .find_map(|kv| kv.strip_prefix("reconnects="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("reconnects in {figures}"));
    assert!(reconnects >= 2 * 8, "{all}");
}

#[test]
fn a_fleet_behind_haproxy_restarts_without_failures_and_loses_only_the_killed_requests() {
    let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let Some(haproxy) = haproxy else {
        eprintln!("SKIPPED: haproxy is not installed (Debian package haproxy)");
        return;
    };
    let env = [("PHASE", "1"), ("CLIENTS", "10"), ("HAPROXY", haproxy)];
    let Some(output) = run_script("fleet.sh", &env) else {
        return;
    };
    let all = output_text(&output);
    assert!(output.status.success(), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |phase: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(phase))
            .unwrap_or_else(|| panic!("{all}"))
    };
    assert!(line("steady:").ends_with("failures=0"), "{all}");
    assert!(line("rolling restart:").contains("failures=0 "), "{all}");
    let kill = line("kill -9 s2:");
    let field = |name: &str| -> u64 {
        let value = kill
            .split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")[..]));
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {kill}"))
    };
    // Each client holds one request at a time; the ones lost were on s2.
    assert!(field("failures") <= 10, "{all}");
    assert!(kill.ends_with("haproxy_s2_status=DOWN"), "{all}");
}
