//! The load sweep: the table's columns and where each value comes from, one
//! run of a model under loadgen, the rounds that alternate the models, and
//! the medians over the rounds.

use std::time::Duration;

use crate::children::{Server, field, fields, loadgen_tls, run_loadgen};
use crate::options::{Model, Opts};

/// Where a column's value comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A number of loadgen's result line.
    Key(&'static str),
    /// Server RSS growth since before connecting, per connection, in KiB.
    RssPerConn,
    /// Server RSS at the window's end, in MiB.
    RssMib,
}

/// One column of the load table.
pub(crate) struct Column {
    /// Header in the tables and the chart.
    pub(crate) head: &'static str,
    /// Name in the CSV file.
    pub(crate) csv: &'static str,
    /// Decimals shown in the tables.
    pub(crate) decimals: usize,
    /// Its panel in the chart, if it has one.
    pub(crate) chart: Option<Plot>,
    /// Where the value comes from.
    source: Source,
}

/// How a column is charted.
pub(crate) struct Plot {
    /// The panel's caption.
    pub(crate) caption: &'static str,
    /// The y axis title, with its unit.
    pub(crate) y_desc: &'static str,
    /// Whether the y axis is logarithmic.
    pub(crate) log_y: bool,
}

/// A panel (keeps the table below short).
const fn plot(caption: &'static str, y_desc: &'static str, log_y: bool) -> Option<Plot> {
    Some(Plot {
        caption,
        y_desc,
        log_y,
    })
}

/// A column (keeps the table below one line per column).
const fn col(
    head: &'static str,
    csv: &'static str,
    decimals: usize,
    chart: Option<Plot>,
    source: Source,
) -> Column {
    Column {
        head,
        csv,
        decimals,
        chart,
        source,
    }
}

/// The columns of the load table, in order.
pub(crate) const COLUMNS: [Column; 13] = [
    col(
        "msgs/s",
        "msgs_per_s",
        0,
        plot("Throughput", "messages per second", false),
        Source::Key("msgs_per_s"),
    ),
    col("p50 µs", "p50_us", 1, None, Source::Key("p50_us")),
    col(
        "p99 µs",
        "p99_us",
        1,
        // Latency grows a thousandfold from 1 to 5,000 connections: on a
        // linear axis every count below 1,000 would sit on the floor.
        plot("Latency, 99th percentile", "µs (log scale)", true),
        Source::Key("p99_us"),
    ),
    col("p99.9 µs", "p999_us", 1, None, Source::Key("p999_us")),
    col(
        "CPU µs/msg",
        "cpu_us_per_msg",
        2,
        plot("Server CPU per message", "µs of CPU per message", false),
        Source::Key("server_cpu_us_per_msg"),
    ),
    col(
        "cs/1k msgs",
        "cs_per_1k",
        1,
        plot("Server context switches", "switches per 1,000 messages", false),
        Source::Key("server_cs_per_1k"),
    ),
    col(
        "invol cs/1k",
        "invol_cs_per_1k",
        1,
        None,
        Source::Key("server_invol_cs_per_1k"),
    ),
    col(
        "RSS/conn KiB",
        "rss_per_conn_kib",
        1,
        plot(
            "Server memory per connection",
            "KiB resident per connection",
            false,
        ),
        Source::RssPerConn,
    ),
    col("RSS MiB", "rss_mib", 1, None, Source::RssMib),
    col("threads", "threads", 0, None, Source::Key("server_threads")),
    col(
        "srv CPU%",
        "server_cpu_pct",
        0,
        plot("Server CPU use", "% of one core", false),
        Source::Key("server_cpu_pct"),
    ),
    col(
        "gen CPU%",
        "client_cpu_pct",
        0,
        None,
        Source::Key("client_cpu_pct"),
    ),
    col("connect s", "connect_secs", 2, None, Source::Key("connect_secs")),
];

/// What one run measured (or the medians of several), in the order of [`COLUMNS`].
pub(crate) type Metrics = [f64; COLUMNS.len()];

/// Positions in [`Metrics`] of the values used by name.
const MSGS_PER_S: usize = 0;
const P99: usize = 2;
const CPU_PER_MSG: usize = 4;
const CS_PER_1K: usize = 5;
const THREADS: usize = 9;
pub(crate) const CLIENT_CPU: usize = 11;

/// One run of one model at one connection count.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) model: String,
    pub(crate) conns: usize,
    pub(crate) round: usize,
    pub(crate) m: Metrics,
}

/// Runs one model at one connection count once.
fn run_once(o: &Opts, model: &Model, conns: usize, serial: usize) -> Result<Metrics, String> {
    let server = Server::start(model, o, serial)?;
    let base = server.stats()?;
    let pairs = [
        ("--addr", server.addr.to_string()),
        ("--conns", conns.to_string()),
        ("--size", o.size.to_string()),
        ("--depth", o.depth.to_string()),
        ("--warmup", o.warmup.to_string()),
        ("--duration", o.duration.to_string()),
        ("--pid", server.kid.pid().to_string()),
    ];
    let mut args: Vec<String> = pairs.into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect();
    if let Some(rate) = o.rate {
        args.extend(["--rate".to_string(), rate.to_string()]);
    }
    args.extend(loadgen_tls(o));
    let timeout = Duration::from_secs_f64(o.warmup + o.duration + 30.0 + conns as f64 / 500.0);
    let line = run_loadgen(o, &args, timeout).map_err(|e| format!("{e}\n{}", server.log_tail()))?;
    let map = fields(&line);
    let f = |key: &str| field(&map, key).map_err(|e| format!("{e} (run against {}):\n{line}", model.name));
    let rss_kib = f("server_rss_kb")?;
    let mut m = [0.0; COLUMNS.len()];
    for (value, column) in m.iter_mut().zip(&COLUMNS) {
        *value = match column.source {
            Source::Key(key) => f(key)?,
            Source::RssPerConn => (rss_kib - (base.rss / 1024) as f64) / conns as f64,
            Source::RssMib => rss_kib / 1024.0,
        };
    }
    Ok(m)
}

/// Every model at every connection count, `rounds` times, models alternating.
/// On a failure, returns what was measured so far with the error.
pub(crate) fn sweep(o: &Opts) -> (Vec<Sample>, Option<String>) {
    alternate(o, "connections", |model, conns, round, serial| {
        let m = run_once(o, model, conns, serial)?;
        let progress = progress(&model.name, conns, round, &m);
        Ok((
            Sample {
                model: model.name.clone(),
                conns,
                round,
                m,
            },
            progress,
        ))
    })
}

/// Runs `once(model, conns, round, serial)` for every connection count,
/// round and model, models alternating within each round so that drift hits
/// them alike; logs each run's progress line. On a failure, returns what was
/// measured so far with the error, naming the run (`unit`: what the
/// connection count counts).
pub(crate) fn alternate<T>(
    o: &Opts,
    unit: &str,
    mut once: impl FnMut(&Model, usize, usize, usize) -> Result<(T, String), String>,
) -> (Vec<T>, Option<String>) {
    let mut samples = Vec::new();
    let total = o.conns.len() * o.rounds * o.models.len();
    for &conns in &o.conns {
        for round in 1..=o.rounds {
            for model in &o.models {
                let serial = samples.len() + 1;
                match once(model, conns, round, serial) {
                    Ok((sample, progress)) => {
                        eprintln!("compare: [{serial}/{total}] {progress}");
                        samples.push(sample);
                    }
                    Err(e) => return (samples, Some(format!("{} with {conns} {unit}: {e}", model.name))),
                }
            }
        }
    }
    (samples, None)
}

/// One line about a finished run.
fn progress(model: &str, conns: usize, round: usize, m: &Metrics) -> String {
    format!(
        "{model:<10} conns={conns:<5} round {round}: {:.0} msgs/s, p99 {:.1} µs, {:.2} CPU µs/msg, \
         {:.1} cs/1k, {} threads",
        m[MSGS_PER_S], m[P99], m[CPU_PER_MSG], m[CS_PER_1K], m[THREADS]
    )
}

/// The median of each metric over samples, per model and connection count,
/// in the order of `models` and `conns`.
pub(crate) fn medians(
    models: &[String],
    conns: &[usize],
    samples: &[Sample],
) -> Vec<(String, usize, Metrics)> {
    let mut rows = Vec::new();
    for model in models {
        for &conns in conns {
            let runs: Vec<&Metrics> = (samples.iter())
                .filter(|s| &s.model == model && s.conns == conns)
                .map(|s| &s.m)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let m = std::array::from_fn(|i| median(runs.iter().map(|m| m[i]).collect()));
            rows.push((model.clone(), conns, m));
        }
    }
    rows
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
