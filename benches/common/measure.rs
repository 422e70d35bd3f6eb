//! Criterion measurements that read the OS instead of the clock: context
//! switches and CPU time of the whole bench process, through `evloop::sys`.
//!
//! The server under test runs in the bench process, so these count its
//! threads and the client's together, per iteration. With
//! `Throughput::Elements(n)` criterion's "thrpt" line shows the same per
//! 1,000 elements (switches) or per element (CPU time).

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};

/// Context switches of the process (voluntary + involuntary, all threads,
/// exited ones included), from `getrusage`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextSwitches;

impl Measurement for ContextSwitches {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        switches()
    }

    fn end(&self, start: u64) -> u64 {
        switches().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &SwitchFormatter
    }
}

/// The process's context switches so far.
fn switches() -> u64 {
    let (voluntary, involuntary) = evloop::sys::context_switches().expect("getrusage");
    voluntary + involuntary
}

/// Shows switches as `cs`, and throughput as switches per 1,000 elements.
struct SwitchFormatter;

impl ValueFormatter for SwitchFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "cs"
    }

    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let (per, unit) = per_unit(throughput);
        values.iter_mut().for_each(|v| *v = *v * 1000.0 / per);
        match unit {
            Unit::Elements => "cs/1k elem",
            Unit::Bytes => "cs/1k B",
        }
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "cs"
    }
}

/// CPU time of the process (user + system, all threads), from `getrusage`,
/// in nanoseconds (the OS counts microseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime;

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        cpu_nanos()
    }

    fn end(&self, start: u64) -> u64 {
        cpu_nanos().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// The process's CPU time so far, in nanoseconds.
fn cpu_nanos() -> u64 {
    evloop::sys::cpu_time().expect("getrusage").total().as_nanos() as u64
}

/// Shows CPU time in ns to s, and throughput as CPU time per element.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = time_unit(typical);
        values.iter_mut().for_each(|v| *v /= factor);
        unit
    }

    fn scale_throughputs(&self, typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let (per, unit) = per_unit(throughput);
        values.iter_mut().for_each(|v| *v /= per);
        let (factor, time) = time_unit(typical / per);
        values.iter_mut().for_each(|v| *v /= factor);
        match (time, unit) {
            ("ns", Unit::Elements) => "ns CPU/elem",
            ("µs", Unit::Elements) => "µs CPU/elem",
            ("ms", Unit::Elements) => "ms CPU/elem",
            (_, Unit::Elements) => "s CPU/elem",
            ("ns", Unit::Bytes) => "ns CPU/B",
            ("µs", Unit::Bytes) => "µs CPU/B",
            ("ms", Unit::Bytes) => "ms CPU/B",
            (_, Unit::Bytes) => "s CPU/B",
        }
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// What a throughput counts.
enum Unit {
    Elements,
    Bytes,
}

/// How many of what one iteration processes.
fn per_unit(throughput: &Throughput) -> (f64, Unit) {
    match *throughput {
        Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
            (n.max(1) as f64, Unit::Elements)
        }
        Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n.max(1) as f64, Unit::Bytes),
        Throughput::Bits(n) => ((n / 8).max(1) as f64, Unit::Bytes),
    }
}

/// The divisor and unit that show `typical` nanoseconds readably.
fn time_unit(typical: f64) -> (f64, &'static str) {
    match typical {
        t if t < 1e3 => (1.0, "ns"),
        t if t < 1e6 => (1e3, "µs"),
        t if t < 1e9 => (1e6, "ms"),
        _ => (1e9, "s"),
    }
}
