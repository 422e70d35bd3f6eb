//! The idle-memory mode (`--idle`): each model holds N idle connections while
//! its resident memory is read; a straight-line fit of RSS against N gives the
//! cost of one idle connection. Reports on stdout and in `idle.*`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evloop::sys::ProcessStats;

use crate::chart::{Panel, Series, XAxis, draw_chart};
use crate::children::{Kid, Server, collect, loadgen_tls, start_loadgen};
use crate::load::{alternate, median};
use crate::options::{Model, Opts};
use crate::report::{aligned, markdown_table, settings, write};

/// Resident memory with `conns` idle connections, and without.
#[derive(Debug, Clone)]
pub(crate) struct IdleSample {
    /// The model's name.
    pub(crate) model: String,
    /// Idle connections held.
    pub(crate) conns: usize,
    /// Which round, from 1.
    pub(crate) round: usize,
    /// Bytes resident before any connection.
    pub(crate) base_rss: u64,
    /// Bytes resident holding `conns` connections.
    pub(crate) rss: u64,
    /// Threads holding `conns` connections.
    pub(crate) threads: usize,
}

/// Holds `conns` idle connections on a fresh server of `model` and reads its memory.
fn idle_once(o: &Opts, model: &Model, conns: usize, serial: usize) -> Result<IdleSample, String> {
    let server = Server::start(model, o, serial)?;
    std::thread::sleep(Duration::from_millis(100)); // let the probe connection close
    let base = server.stats()?;
    let args = [
        "--addr",
        &server.addr.to_string(),
        "--idle",
        &conns.to_string(),
        "--duration",
        "3600",
    ];
    let args: Vec<String> = args.map(String::from).into_iter().chain(loadgen_tls(o)).collect();
    let mut kid = start_loadgen(o, &args)?;
    let connect_limit = Duration::from_secs_f64(30.0 + conns as f64 / 200.0);
    wait_for_line(&mut kid, connect_limit).map_err(|e| format!("{e}\n{}", server.log_tail()))?;
    let held = wait_accepted(&server, base.open_fds + conns, connect_limit)?;
    drop(kid);
    Ok(IdleSample {
        model: model.name.clone(),
        conns,
        round: 0,
        base_rss: base.rss,
        rss: held.rss,
        threads: held.threads,
    })
}

/// Waits for the first stdout line of an idle loadgen ("all connected").
fn wait_for_line(kid: &mut Kid, limit: Duration) -> Result<String, String> {
    let stdout = kid.child.stdout.take().ok_or("loadgen stdout is not piped")?;
    let stderr = collect(kid.child.stderr.take());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(limit) {
        Ok(line) if !line.is_empty() => Ok(line),
        Ok(_) => {
            let _ = kid.child.wait();
            Err(format!(
                "loadgen --idle failed: {}",
                stderr.join().unwrap_or_default().trim()
            ))
        }
        Err(_) => Err(format!("loadgen --idle did not connect within {limit:?}")),
    }
}

/// Waits until the server holds `fds` descriptors (all connections accepted)
/// and its threads and memory have settled (same thread count, RSS within
/// 1% over 200 ms); returns that last reading.
fn wait_accepted(server: &Server, fds: usize, limit: Duration) -> Result<ProcessStats, String> {
    let start = Instant::now();
    let mut last = server.stats()?;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = server.stats()?;
        let settled = now.threads == last.threads && now.rss.abs_diff(last.rss) <= last.rss / 100;
        if now.open_fds >= fds && settled {
            return Ok(now);
        }
        if start.elapsed() > limit {
            return Err(format!(
                "the server holds {} of {fds} fds after {limit:?} (or its memory kept changing)",
                now.open_fds
            ));
        }
        last = now;
    }
}

/// Every model at every idle connection count, `rounds` times, alternating.
pub(crate) fn idle_sweep(o: &Opts) -> (Vec<IdleSample>, Option<String>) {
    alternate(o, "idle connections", |model, conns, round, serial| {
        let s = idle_once(o, model, conns, serial)?;
        let progress = format!(
            "{:<10} idle={conns:<6} round {round}: RSS {:.1} MiB (from {:.1}), {} threads",
            model.name,
            mib(s.rss),
            mib(s.base_rss),
            s.threads
        );
        Ok((IdleSample { round, ..s }, progress))
    })
}

/// Bytes as MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// Least-squares line through `points`: `(slope, intercept)`, or `None` with
/// fewer than two distinct x.
fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| (sxy / sxx, my - sxy / sxx * mx))
}

/// A model's points for the fit: `(0, base)` and `(N, rss)` of every run.
fn idle_points(samples: &[IdleSample], model: &str) -> Vec<(f64, f64)> {
    (samples.iter().filter(|s| s.model == model))
        .flat_map(|s| [(0.0, s.base_rss as f64), (s.conns as f64, s.rss as f64)])
        .collect()
}

/// The idle sweep's results, ready to print and write.
struct IdleReport {
    /// Table headers.
    heads: Vec<String>,
    /// Table rows: medians per model and connection count.
    body: Vec<Vec<String>>,
    /// One line per model: its fitted RSS slope.
    slopes: String,
    /// Chart lines: RSS in MiB against connections, per model.
    lines: Vec<Series>,
}

/// Medians, slopes and chart lines of the idle samples, in the order of
/// `models` and `conns`.
fn idle_report(models: &[String], conns: &[usize], samples: &[IdleSample]) -> IdleReport {
    let heads = [
        "model",
        "idle conns",
        "RSS MiB",
        "base MiB",
        "ΔRSS/conn KiB",
        "threads",
    ];
    let mut report = IdleReport {
        heads: heads.map(String::from).to_vec(),
        body: Vec::new(),
        slopes: String::new(),
        lines: Vec::new(),
    };
    for model in models {
        let mut points = Vec::new();
        for &conns in conns {
            let runs: Vec<&IdleSample> = (samples.iter())
                .filter(|s| &s.model == model && s.conns == conns)
                .collect();
            if let Some(row) = idle_row(model, conns, &runs) {
                points.push((conns as f64, row.1));
                report.body.push(row.0);
            }
        }
        report.slopes += &slope_line(model, samples);
        report.lines.push((model.clone(), points));
    }
    report
}

/// One row of the idle table from the runs of one model and count, and the
/// median RSS in MiB; `None` without runs.
fn idle_row(model: &str, conns: usize, runs: &[&IdleSample]) -> Option<(Vec<String>, f64)> {
    if runs.is_empty() {
        return None;
    }
    let med = |f: fn(&IdleSample) -> f64| median(runs.iter().map(|s| f(s)).collect());
    let (rss, base) = (med(|s| s.rss as f64), med(|s| s.base_rss as f64));
    let row = vec![
        model.to_string(),
        conns.to_string(),
        format!("{:.1}", rss / MIB),
        format!("{:.1}", base / MIB),
        format!("{:.2}", (rss - base) / conns as f64 / 1024.0),
        format!("{:.0}", med(|s| s.threads as f64)),
    ];
    Some((row, rss / MIB))
}

/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// A model's fitted RSS slope, as one line.
fn slope_line(model: &str, samples: &[IdleSample]) -> String {
    match fit(&idle_points(samples, model)) {
        Some((slope, intercept)) => format!(
            "{model}: {:.2} KiB per idle connection (RSS ≈ {:.1} MiB + N × slope)\n",
            slope / 1024.0,
            intercept / MIB
        ),
        None => format!("{model}: too few points for a slope\n"),
    }
}

/// Prints the idle table and slopes, and writes `idle.*` into `--out`.
pub(crate) fn report_idle(o: &Opts, samples: &[IdleSample]) -> Result<(), String> {
    let models: Vec<String> = o.models.iter().map(|m| m.name.clone()).collect();
    let IdleReport {
        heads,
        body,
        slopes,
        lines,
    } = idle_report(&models, &o.conns, samples);
    let table = aligned(&heads, &body);
    println!(
        "{table}\nRSS slope, least squares over (0, RSS before) and (N, RSS with N idle) of every run:\n{slopes}"
    );
    let Some(dir) = &o.out else { return Ok(()) };
    let md = format!(
        "# Resident memory per idle connection\n\n{}{}\nRSS slope per model (least squares over every run's \
         (0, RSS before connecting) and (N, RSS holding N)):\n\n{}",
        settings(o),
        markdown_table(&heads, &body),
        slopes.lines().map(|l| format!("- {l}\n")).collect::<String>()
    );
    write(&dir.join("idle.md"), &md)?;
    let mut csv = String::from("model,conns,round,base_rss_bytes,rss_bytes,threads\n");
    for s in samples {
        csv += &format!(
            "{},{},{},{},{},{}\n",
            s.model, s.conns, s.round, s.base_rss, s.rss, s.threads
        );
    }
    write(&dir.join("idle.csv"), &csv)?;
    idle_chart(&dir.join("idle.svg"), lines)
}

/// Draws `idle.svg` at `path` from the samples of an earlier run, in the
/// order of `models` and `conns`.
pub(crate) fn redraw_idle(
    path: &Path,
    models: &[String],
    conns: &[usize],
    samples: &[IdleSample],
) -> Result<(), String> {
    idle_chart(path, idle_report(models, conns, samples).lines)
}

/// Draws the idle chart: median RSS against idle connections, per model.
fn idle_chart(path: &Path, lines: Vec<Series>) -> Result<(), String> {
    let panel = Panel {
        caption: "Resident memory, median of the rounds",
        y_desc: "MiB resident",
        log_y: false,
        lines,
    };
    let x = XAxis {
        desc: "idle connections",
        log: false,
    };
    draw_chart(path, "Resident memory with N idle connections", &x, &[panel])
}
