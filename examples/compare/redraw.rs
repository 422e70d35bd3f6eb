//! `--redraw DIR`: the charts drawn again from the CSV files an earlier run
//! left in DIR (`compare.csv` to `compare.svg`, `idle.csv` to `idle.svg`),
//! with the medians recomputed; nothing is run or measured.

use std::path::Path;

use crate::idle::{IdleSample, redraw_idle};
use crate::load::{COLUMNS, Sample, medians};
use crate::report::load_chart;

/// A CSV file's header and rows, cells split on commas (these files quote nothing).
struct Csv {
    /// Column names.
    header: Vec<String>,
    /// Rows of cells, as many as the header.
    rows: Vec<Vec<String>>,
}

impl Csv {
    /// Reads `path`; `Ok(None)` if it does not exist.
    fn read(path: &Path) -> Result<Option<Csv>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let split = |l: &str| l.split(',').map(|c| c.trim().to_string()).collect::<Vec<_>>();
        let header = split(lines.next().unwrap_or_default());
        let rows: Vec<Vec<String>> = lines.map(split).collect();
        if let Some(n) = rows.iter().position(|r| r.len() != header.len()) {
            return Err(format!(
                "{}: line {} has {} cells, the header {}",
                path.display(),
                n + 2,
                rows[n].len(),
                header.len()
            ));
        }
        Ok(Some(Csv { header, rows }))
    }

    /// Where column `name` is; an error naming the file if it has none.
    fn column(&self, name: &str, path: &Path) -> Result<usize, String> {
        (self.header.iter().position(|h| h == name))
            .ok_or_else(|| format!("{} has no column {name:?}", path.display()))
    }

    /// Cell `col` of every row parsed as a `T`; an error naming the file, line and value.
    fn parse<T: std::str::FromStr>(&self, col: usize, path: &Path) -> Result<Vec<T>, String> {
        (self.rows.iter().enumerate())
            .map(|(i, row)| {
                let cell = &row[col];
                cell.parse().map_err(|_| {
                    let name = &self.header[col];
                    format!(
                        "{}, line {}: {name} {cell:?} is not a number",
                        path.display(),
                        i + 2
                    )
                })
            })
            .collect()
    }

    /// The models in order of first appearance, and the connection counts, ascending.
    fn models_and_conns(&self, path: &Path) -> Result<(Vec<String>, Vec<usize>), String> {
        let model = self.column("model", path)?;
        let mut models: Vec<String> = Vec::new();
        for row in &self.rows {
            if !models.contains(&row[model]) {
                models.push(row[model].clone());
            }
        }
        let mut conns: Vec<usize> = self.parse(self.column("conns", path)?, path)?;
        conns.sort_unstable();
        conns.dedup();
        Ok((models, conns))
    }
}

/// Draws DIR's charts again from its CSV files.
pub(crate) fn redraw(dir: &Path) -> Result<(), String> {
    let mut drawn = Vec::new();
    let load = dir.join("compare.csv");
    if let Some(csv) = Csv::read(&load)? {
        redraw_load(&csv, &load, &dir.join("compare.svg"))?;
        drawn.push("compare.svg");
    }
    let idle = dir.join("idle.csv");
    if let Some(csv) = Csv::read(&idle)? {
        let (models, conns) = csv.models_and_conns(&idle)?;
        redraw_idle(
            &dir.join("idle.svg"),
            &models,
            &conns,
            &idle_samples(&csv, &idle)?,
        )?;
        drawn.push("idle.svg");
    }
    if drawn.is_empty() {
        return Err(format!(
            "{} holds neither compare.csv nor idle.csv",
            dir.display()
        ));
    }
    eprintln!("compare: drew {} in {}", drawn.join(" and "), dir.display());
    Ok(())
}

/// `compare.svg` from the runs in `compare.csv`; a column the file lacks
/// (one added since it was written) is left out of the chart's points.
fn redraw_load(csv: &Csv, path: &Path, svg: &Path) -> Result<(), String> {
    let (models, conns) = csv.models_and_conns(path)?;
    let conns_of: Vec<usize> = csv.parse(csv.column("conns", path)?, path)?;
    let mut values = Vec::new();
    for column in &COLUMNS {
        values.push(match csv.column(column.csv, path) {
            Ok(col) => csv.parse::<f64>(col, path)?,
            Err(_) => vec![f64::NAN; csv.rows.len()],
        });
    }
    let model = csv.column("model", path)?;
    let samples: Vec<Sample> = (csv.rows.iter().enumerate())
        .map(|(i, row)| Sample {
            model: row[model].clone(),
            conns: conns_of[i],
            round: 0,
            m: std::array::from_fn(|c| values[c][i]),
        })
        .collect();
    load_chart(svg, &models, &medians(&models, &conns, &samples))
}

/// The samples of `idle.csv`.
fn idle_samples(csv: &Csv, path: &Path) -> Result<Vec<IdleSample>, String> {
    let col = |name: &str| csv.column(name, path);
    let model = col("model")?;
    let conns: Vec<usize> = csv.parse(col("conns")?, path)?;
    let base: Vec<u64> = csv.parse(col("base_rss_bytes")?, path)?;
    let rss: Vec<u64> = csv.parse(col("rss_bytes")?, path)?;
    let threads: Vec<usize> = csv.parse(col("threads")?, path)?;
    Ok((csv.rows.iter().enumerate())
        .map(|(i, row)| IdleSample {
            model: row[model].clone(),
            conns: conns[i],
            round: 0,
            base_rss: base[i],
            rss: rss[i],
            threads: threads[i],
        })
        .collect())
}
