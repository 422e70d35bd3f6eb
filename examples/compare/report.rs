//! The load sweep's reports: the aligned table on stdout and, with `--out`,
//! `compare.md` (table and settings), `compare.csv` (every run) and
//! `compare.svg`. The table and file helpers serve the idle report too.

use std::fmt::Write as _;
use std::path::Path;

use crate::chart::{Panel, Series, XAxis, draw_chart};
use crate::load::{CLIENT_CPU, COLUMNS, Metrics, Sample};
use crate::options::Opts;

/// The load table as aligned text.
pub(crate) fn text_table(rows: &[(String, usize, Metrics)]) -> String {
    let mut heads = vec!["model".to_string(), "conns".to_string()];
    heads.extend(COLUMNS.iter().map(|c| c.head.to_string()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(model, conns, m)| cells(model, *conns, m))
        .collect();
    aligned(&heads, &body)
}

/// One row's cells.
fn cells(model: &str, conns: usize, m: &Metrics) -> Vec<String> {
    let mut row = vec![model.to_string(), conns.to_string()];
    row.extend(COLUMNS.iter().zip(m).map(|(c, v)| format!("{v:.*}", c.decimals)));
    row
}

/// Columns padded to their widest cell; the first left-aligned, the rest right.
pub(crate) fn aligned(heads: &[String], body: &[Vec<String>]) -> String {
    let width = |i: usize| {
        let cells = std::iter::once(&heads[i]).chain(body.iter().map(|r| &r[i]));
        cells.map(|c| c.chars().count()).max().unwrap_or(0)
    };
    let widths: Vec<usize> = (0..heads.len()).map(width).collect();
    let line = |row: &[String]| {
        let mut s = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let _ = if i == 0 {
                write!(s, "{cell}{pad}")
            } else {
                write!(s, "  {pad}{cell}")
            };
        }
        s + "\n"
    };
    std::iter::once(line(heads))
        .chain(body.iter().map(|r| line(r)))
        .collect()
}

/// A Markdown table.
pub(crate) fn markdown_table(heads: &[String], body: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|", heads.join(" | "));
    s += &"---|".repeat(heads.len());
    s += "\n";
    for row in body {
        s += &format!("| {} |\n", row.join(" | "));
    }
    s
}

/// The settings and machine, for the top of a Markdown report.
pub(crate) fn settings(o: &Opts) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("model name"))?.to_string();
        Some(line.split_once(':')?.1.trim().to_string())
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let pin = o.pin.as_ref().map_or("no".to_string(), |p| {
        format!("servers {:?}, loadgen {:?}", p.server, p.client)
    });
    let models: Vec<String> = o
        .models
        .iter()
        .map(|m| format!("`{}` = `{}`", m.name, m.command))
        .collect();
    format!(
        "Command: `{}`\n\nMachine: {} CPUs ({}), Linux {}; pinned: {pin}.\n\nModels: {}.\n\n\
         Settings: {} round(s), warmup {} s, window {} s, {} B messages, depth {}, {}, {{loops}} = {}.\n\n",
        o.command_line,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu.unwrap_or_else(|| "unknown CPU".into()),
        kernel.trim(),
        models.join(", "),
        o.rounds,
        o.warmup,
        o.duration,
        o.size,
        o.depth,
        o.rate.map_or("closed loop".to_string(), |r| format!(
            "fixed rate {r} msgs/s (latency from due time)"
        )),
        o.loops,
    )
}

/// Notes on runs where loadgen, not the server, may have been the bottleneck.
pub(crate) fn saturation_notes(rows: &[(String, usize, Metrics)]) -> String {
    let busy: Vec<String> = (rows.iter())
        .filter(|(_, _, m)| m[CLIENT_CPU] >= 90.0)
        .map(|(model, conns, m)| format!("{model} at {conns} ({:.0}%)", m[CLIENT_CPU]))
        .collect();
    if busy.is_empty() {
        return String::new();
    }
    format!(
        "Note: loadgen was at least 90% busy for {}: there it may be the bottleneck; \
         CPU per message and switches per message stay valid, msgs/s and latency less so.\n",
        busy.join(", ")
    )
}

/// Writes `compare.md`, `compare.csv` and `compare.svg` into `dir`.
pub(crate) fn write_load_reports(
    o: &Opts,
    dir: &Path,
    samples: &[Sample],
    rows: &[(String, usize, Metrics)],
) -> Result<(), String> {
    let mut heads = vec!["model".to_string(), "conns".to_string()];
    heads.extend(COLUMNS.iter().map(|c| c.head.to_string()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(model, conns, m)| cells(model, *conns, m))
        .collect();
    let md = format!(
        "# Echo servers compared\n\n{}Medians over the rounds; CPU, switches, threads and RSS are the \
         server's, read from /proc by loadgen at the edges of its window.\n\n{}\n{}",
        settings(o),
        markdown_table(&heads, &body),
        saturation_notes(rows)
    );
    write(&dir.join("compare.md"), &md)?;

    let mut csv = String::from("model,conns,round");
    COLUMNS.iter().for_each(|c| csv += &format!(",{}", c.csv));
    csv += "\n";
    for s in samples {
        csv += &format!("{},{},{}", s.model, s.conns, s.round);
        s.m.iter().for_each(|v| csv += &format!(",{v}"));
        csv += "\n";
    }
    write(&dir.join("compare.csv"), &csv)?;

    let models: Vec<String> = o.models.iter().map(|m| m.name.clone()).collect();
    load_chart(&dir.join("compare.svg"), &models, rows)
}

/// Draws `compare.svg` at `path`: one panel per charted column, one line
/// per model.
pub(crate) fn load_chart(
    path: &Path,
    models: &[String],
    rows: &[(String, usize, Metrics)],
) -> Result<(), String> {
    let panels: Vec<Panel> = (COLUMNS.iter().enumerate())
        .filter_map(|(i, c)| Some((i, c.chart.as_ref()?)))
        .map(|(i, plot)| Panel {
            caption: plot.caption,
            y_desc: plot.y_desc,
            log_y: plot.log_y,
            lines: series(models, rows, i),
        })
        .collect();
    let x = XAxis {
        desc: "connections (log scale)",
        log: true,
    };
    draw_chart(path, "Echo servers: medians against connections", &x, &panels)
}

/// Writes a file, naming it in the error.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Per model, the points (connections, value of column `col`) of the medians.
fn series(models: &[String], rows: &[(String, usize, Metrics)], col: usize) -> Vec<Series> {
    (models.iter())
        .map(|model| {
            let points = (rows.iter().filter(|r| &r.0 == model))
                .map(|(_, conns, m)| (*conns as f64, m[col]))
                .filter(|p| p.1.is_finite())
                .collect();
            (model.clone(), points)
        })
        .collect()
}
