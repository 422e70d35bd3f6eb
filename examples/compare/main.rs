//! Side-by-side comparison of echo servers, each in its own child process:
//! throughput, latency, CPU per message, context switches, memory, threads.
//!
//! For every connection count and round, each model's server is started
//! fresh, driven by the `loadgen` example (a child process, pinned apart with
//! `--pin`) which reads the server's CPU time, context switches, threads and
//! memory through `evloop::sys` at the edges of its measurement window. Rounds
//! alternate the models (A B A B ...) so that drift on a noisy machine hits
//! them alike; the table holds the medians over the rounds.
//!
//! Build first, then run (the servers and `loadgen` are looked up next to the
//! `compare` binary, in `target/release/examples/`):
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/compare --pin 0:1 --out target/compare
//! target/release/examples/compare --models reactor,threads --conns 10,1000 --rounds 5
//! target/release/examples/compare --idle --out target/compare       # RSS per idle connection
//! target/release/examples/compare --server 'r4=echo_server --addr {addr} --threads 4' --models r4,tokio
//! ```
//!
//! A model is a command template: built in are `reactor`, `threads` (both
//! `echo_server`, with `--model`), `tokio` (`tokio_echo`), `tokio-tls`
//! (`tokio_tls_echo`) and `mio` (`mio_echo`); `--server NAME=COMMAND`
//! defines another or replaces one. `{addr}`, `{port}`, `{loops}`, `{cert}`
//! and `{key}` in a command are filled in; words are split on spaces,
//! without quoting. Default: `--models reactor,threads,tokio`.
//!
//! `--tls` runs everything over TLS: compare makes a CA and a certificate it
//! signs (rcgen, ECDSA P-256) for the run, `echo_server` models get
//! `--tls-cert {cert} --tls-key {key}`, loadgen `--tls` with the CA, so idle
//! connections have completed a handshake; the default models become
//! `reactor,threads,tokio-tls`, and a model that cannot serve TLS is refused.
//!
//! Output: one table on stdout; with `--out DIR` also `compare.md` (the same
//! table and the settings), `compare.csv` (every run) and `compare.svg`
//! (throughput, p99, CPU per message, switches, memory and server CPU against
//! connections, log x axis, one line per model). `--idle` instead holds N idle
//! connections on each model (default 1000, 5000, 10000) and reports resident
//! memory and the slope of a straight-line fit of RSS against N, in `idle.*`.
//! `--redraw DIR` draws DIR's `compare.svg` and `idle.svg` again from the
//! CSV files there, running nothing (after a change to the charts, say:
//! `target/release/examples/compare --redraw docs/compare`).
//!
//! Connection counts above what the fd limit allows are left out of the
//! default sweep (the soft limit is first raised to the hard limit, and the
//! children inherit it); asked for explicitly, they are an error. Bad or
//! impossible arguments (an option the mode would ignore included) exit
//! with status 2 and one line saying why, a failed run with status 1 after
//! printing what was measured until then. `--help` prints the usage. Children are killed by PID when
//! done or on any error; Ctrl-C reaches them too (same process group).
//!
//! Limits: loopback only. Idle connections never send a byte: one that was
//! busy earlier may hold buffers, in any model. The evloop reactor closes
//! connections idle for 60 s, so an idle measurement must finish within that.
//! RSS misses kernel memory (socket buffers, a thread's kernel stack).
//! Every run starts a server and connects anew (thousands of connections one
//! by one), which counts towards its run time, not its window. `{loops}`
//! (`--loops`, default 1) only reaches servers whose command uses it, such as
//! the built-in `reactor`.

mod chart;
mod children;
#[path = "../common/cli.rs"]
mod cli;
mod idle;
mod load;
mod options;
mod redraw;
mod report;
mod tls;

use crate::idle::{idle_sweep, report_idle};
use crate::load::{medians, sweep};
use crate::options::{CLI, Opts, parse_opts, usage};
use crate::redraw::redraw;
use crate::report::{saturation_notes, text_table, write_load_reports};

fn main() {
    let o = parse_opts();
    if let Some(dir) = &o.redraw {
        return CLI.or_fail(redraw(dir));
    }
    if let Some(dir) = &o.out {
        if let Err(e) = std::fs::create_dir_all(dir) {
            usage!("cannot create --out {}: {e}", dir.display());
        }
    }
    let failure = if o.idle { run_idle(&o) } else { run_load(&o) };
    if let Some(e) = failure {
        eprintln!("compare: {e}");
        std::process::exit(1);
    }
}

/// The load sweep and its reports; the first error, if any.
fn run_load(o: &Opts) -> Option<String> {
    let (samples, failure) = sweep(o);
    let models: Vec<String> = o.models.iter().map(|m| m.name.clone()).collect();
    let rows = medians(&models, &o.conns, &samples);
    if !rows.is_empty() {
        println!("{}{}", text_table(&rows), saturation_notes(&rows));
    }
    let written = match &o.out {
        Some(dir) if !rows.is_empty() => write_load_reports(o, dir, &samples, &rows).err(),
        _ => None,
    };
    failure.or(written)
}

/// The idle sweep and its reports; the first error, if any.
fn run_idle(o: &Opts) -> Option<String> {
    let (samples, failure) = idle_sweep(o);
    let written = if samples.is_empty() {
        None
    } else {
        report_idle(o, &samples).err()
    };
    failure.or(written)
}
