//! Criterion measurements for benches whose elements are messages: wall
//! time with throughput in messages per second ([`WallTime`]), and two that
//! read the OS instead of the clock, context switches and CPU time of the
//! whole bench process, through `evloop::sys`.
//!
//! The server under test runs in the bench process, so the OS measurements
//! count its threads and the client's together, per iteration. With
//! `Throughput::Elements(n)`, n messages per iteration, criterion's "thrpt"
//! line shows messages per second (wall time), switches per 1,000 messages,
//! or CPU time per message.

use std::time::{Duration, Instant};

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};

/// Wall-clock time, as criterion's own `WallTime`, but with throughput
/// shown as `msgs/s` where criterion would say `elem/s`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallTime;

impl Measurement for WallTime {
    type Intermediate = Instant;
    type Value = Duration;

    fn start(&self) -> Instant {
        Instant::now()
    }

    fn end(&self, start: Instant) -> Duration {
        start.elapsed()
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &RateFormatter
    }
}

/// Shows time in ns to s, and throughput as messages (or bytes) per second.
struct RateFormatter;

impl ValueFormatter for RateFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = time_unit(typical);
        values.iter_mut().for_each(|v| *v /= factor);
        unit
    }

    fn scale_throughputs(&self, typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let (per, unit) = per_unit(throughput);
        // Values are nanoseconds per iteration of `per` messages (or bytes).
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v);
        let rate = per * 1e9 / typical;
        let (factor, prefix) = match rate {
            r if r >= 1e6 => (1e6, 2),
            r if r >= 1e3 => (1e3, 1),
            _ => (1.0, 0),
        };
        values.iter_mut().for_each(|v| *v /= factor);
        match unit {
            Unit::Elements => ["msgs/s", "K msgs/s", "M msgs/s"][prefix],
            Unit::Bytes => ["B/s", "KB/s", "MB/s"][prefix],
        }
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

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

/// Shows switches as `cs`, and throughput as switches per 1,000 messages.
struct SwitchFormatter;

impl ValueFormatter for SwitchFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "cs"
    }

    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let (per, unit) = per_unit(throughput);
        values.iter_mut().for_each(|v| *v = *v * 1000.0 / per);
        match unit {
            Unit::Elements => "cs/1k msgs",
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

/// Shows CPU time in ns to s, and throughput as CPU time per message.
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
            ("ns", Unit::Elements) => "ns CPU/msg",
            ("µs", Unit::Elements) => "µs CPU/msg",
            ("ms", Unit::Elements) => "ms CPU/msg",
            (_, Unit::Elements) => "s CPU/msg",
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

/// What a throughput counts: elements are messages in these benches.
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
