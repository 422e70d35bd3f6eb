//! The reactor against the thread-per-connection baseline, same echo
//! handler, in-process on loopback, at 1, 10, 100 and 1,000 connections.
//!
//! Two workloads, one criterion group each:
//!
//! * `pingpong_64B` — every connection sends one 64-byte message and waits
//!   for its echo; one iteration is one such round over all connections.
//! * `pipelined_64B` — every connection sends 16 messages in one write and
//!   waits for all 16 echoes.
//!
//! Each group runs three times, under three measurements, each with its
//! figure per message on criterion's "thrpt" line:
//!
//! * `time/...`: wall time of one round over all connections; thrpt is
//!   messages per second (`msgs/s`), all connections together.
//! * `cs/...`: context switches of the whole process; thrpt is switches per
//!   1,000 messages (`cs/1k msgs`).
//! * `cpu/...`: the process's CPU time; thrpt is CPU time per message.
//!
//! Server and client share the process, so switches and CPU are both sides'
//! together — the client's share is the same for both models.
//!
//! Run: `cargo bench --bench models` (a few minutes); one workload or model:
//! `cargo bench --bench models -- 'cs/pingpong_64B/threads'`. Servers bind
//! port 0. 1,000 connections need 2,000 fds: the soft fd limit is raised to
//! the hard one, and counts that still do not fit are skipped with a note.
//! The client is a single mio thread; the `compare` example measures the
//! same thing across processes, with the load generator pinned apart.

mod common;

use std::time::Duration;

use common::measure::{ContextSwitches, CpuTime, WallTime};
use common::{Clients, MODELS, Running};
use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Connection counts of every group.
const CONNS: &[usize] = &[1, 10, 100, 1000];
/// Bytes per message.
const SIZE: usize = 64;

/// A traffic pattern.
struct Workload {
    /// Group name.
    name: &'static str,
    /// Messages each connection sends per round, in one write.
    depth: usize,
}

/// The workloads, one group each.
const WORKLOADS: &[Workload] = &[
    Workload {
        name: "pingpong_64B",
        depth: 1,
    },
    Workload {
        name: "pipelined_64B",
        depth: 16,
    },
];

/// Every workload, model and connection count, under measurement `label`.
fn all<M: Measurement>(c: &mut Criterion<M>, label: &str) {
    for workload in WORKLOADS {
        let mut group = c.benchmark_group(format!("{label}/{}", workload.name));
        for &conns in CONNS {
            if !common::fds_allow(conns) {
                eprintln!("skipping {conns} connections: the fd limit is too low (ulimit -n)");
                continue;
            }
            group.throughput(Throughput::Elements((conns * workload.depth) as u64));
            for &(model, start) in MODELS {
                // Started on first use only, so that benchmarks left out by a
                // filter cost no server and no connections.
                let mut setup: Option<(Clients, Running)> = None;
                group.bench_function(BenchmarkId::new(model, conns), |b| {
                    let (clients, _server) = setup.get_or_insert_with(|| {
                        let server = start();
                        (Clients::connect(server.addr, conns, SIZE, workload.depth), server)
                    });
                    b.iter(|| clients.round())
                });
                // Dropped here, clients first: the server then closes no open connection.
            }
        }
        group.finish();
    }
}

/// Short runs: the groups hold 16 benchmarks each, run three times.
fn config<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

fn wall_time(c: &mut Criterion<WallTime>) {
    all(c, "time");
}

fn context_switches(c: &mut Criterion<ContextSwitches>) {
    all(c, "cs");
}

fn cpu_time(c: &mut Criterion<CpuTime>) {
    all(c, "cpu");
}

criterion_group! {
    name = time;
    config = config(Criterion::default().with_measurement(WallTime));
    targets = wall_time
}
criterion_group! {
    name = switches;
    config = config(Criterion::default().with_measurement(ContextSwitches));
    targets = context_switches
}
criterion_group! {
    name = cpu;
    config = config(Criterion::default().with_measurement(CpuTime));
    targets = cpu_time
}
criterion_main!(time, switches, cpu);
