//! Pinning loops to CPUs: each loop thread's `Cpus_allowed_list` in
//! `/proc/self/task/*/status` is its one CPU.

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::Echo;
use evloop::{Model, Pin, Server, ServerHandle};

/// The CPU list the kernel allows the thread named `name` of this process,
/// as `/proc` prints it (`"3"`, `"0-1"`).
fn allowed_cpus_of(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        if let Some(line) = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")) {
            found.push(line["Cpus_allowed_list:".len()..].trim().to_owned());
        }
    }
    found
}

/// Starts an echo server of `loops` loops with `pin`.
fn start(loops: usize, pin: Pin) -> ServerHandle {
    Server::new(common::localhost())
        .threads(loops)
        .pin(pin)
        .start(|| Echo)
        .unwrap()
}

/// Stops a server and waits for its threads.
fn stop(server: ServerHandle) {
    server.shutdown(Duration::ZERO);
    server.join().unwrap();
}

#[test]
fn each_pinned_loop_runs_on_its_one_cpu() {
    let _serial = common::serial();
    let allowed = evloop::sys::cpu_affinity().unwrap();

    let server = start(2, Pin::Allowed);
    for (i, name) in ["evloop-0", "evloop-1"].iter().enumerate() {
        let cpu = allowed[i % allowed.len()].to_string();
        assert_eq!(
            allowed_cpus_of(name),
            vec![cpu],
            "{name} pinned to the {i}th allowed CPU"
        );
    }
    stop(server);

    let last = *allowed.last().unwrap();
    let server = start(2, Pin::Cpus(vec![last]));
    for name in ["evloop-0", "evloop-1"] {
        assert_eq!(
            allowed_cpus_of(name),
            vec![last.to_string()],
            "{name} on the listed CPU"
        );
    }
    stop(server);

    let server = start(1, Pin::Off);
    let unpinned = allowed_cpus_of("evloop-0");
    assert_eq!(unpinned.len(), 1);
    assert!(
        allowed.len() == 1 || unpinned[0].contains(['-', ',']),
        "an unpinned loop may run anywhere: {unpinned:?}"
    );
    stop(server);
}

#[test]
fn pinning_a_thread_per_connection_server_is_refused() {
    let err = Server::new(common::localhost())
        .model(Model::Threads)
        .pin(Pin::Allowed)
        .start(|| Echo)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
