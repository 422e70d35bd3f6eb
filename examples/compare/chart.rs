//! SVG charts with plotters: one panel per value against connections, one
//! line per model, panels in a grid of two rows under one legend.
//!
//! The legend is a strip of its own under the title, so that it never covers
//! a point. The x axis has a tick at every connection count measured, and no
//! other; a panel may put its y axis on a log scale (latency, which spans
//! three orders of magnitude between 1 and 5,000 connections).

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line of a chart: a model's name and its points.
pub(crate) type Series = (String, Vec<(f64, f64)>);

/// One panel: a value against connections, one line per model.
pub(crate) struct Panel {
    /// The panel's caption.
    pub(crate) caption: &'static str,
    /// The y axis title, with its unit.
    pub(crate) y_desc: &'static str,
    /// Whether the y axis is logarithmic.
    pub(crate) log_y: bool,
    /// The models' lines, in legend order.
    pub(crate) lines: Vec<Series>,
}

/// How the x axis is drawn, for every panel alike.
pub(crate) struct XAxis {
    /// Its title, with its unit.
    pub(crate) desc: &'static str,
    /// Whether it is logarithmic.
    pub(crate) log: bool,
}

/// The height of the legend strip, in pixels.
const LEGEND_HEIGHT: u32 = 36;

/// Draws `panels` in a grid of two rows (one row for a lone panel) under
/// `title` and a legend naming the models of the first panel.
pub(crate) fn draw_chart(path: &Path, title: &str, x: &XAxis, panels: &[Panel]) -> Result<(), String> {
    let cols = panels.len().div_ceil(2).max(1);
    let rows = if panels.len() > 1 { 2 } else { 1 };
    // Panels of 440 x 380 pixels; a lone panel gets more width.
    let width = if panels.len() > 1 { 440 * cols as u32 } else { 760 };
    let size = (width, 380 * rows as u32 + LEGEND_HEIGHT + 40);
    let root = SVGBackend::new(path, size).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| fail(&e))?;
    let (legend, grid) = root.split_vertically(LEGEND_HEIGHT);
    let names: Vec<&str> = (panels.first().iter())
        .flat_map(|p| p.lines.iter().map(|(name, _)| name.as_str()))
        .collect();
    draw_legend(&legend, &names).map_err(|e| fail(&e))?;
    for (area, panel) in grid.split_evenly((rows, cols)).iter().zip(panels) {
        draw_panel(area, panel, x).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

/// Model `i`'s line colour; matplotlib's first six, which stay apart on white.
fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    COLORS[i % COLORS.len()]
}

/// One entry per model, side by side and centred: a stretch of its line
/// with a point, then its name.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[&str],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // Wide enough for a line sample and the name at 16 px (about 9 px a letter).
    let widths: Vec<i32> = names.iter().map(|n| 48 + 9 * n.chars().count() as i32).collect();
    let (w, h) = area.dim_in_pixel();
    let mut x = (w as i32 - widths.iter().sum::<i32>()) / 2;
    let y = h as i32 / 2;
    let style = TextStyle::from(("sans-serif", 16)).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (name, width)) in names.iter().zip(&widths).enumerate() {
        let c = color(i);
        area.draw(&PathElement::new(vec![(x, y), (x + 28, y)], c.stroke_width(2)))?;
        area.draw(&Circle::new((x + 14, y), 3, c.filled()))?;
        area.draw(&Text::new(name.to_string(), (x + 36, y), style.clone()))?;
        x += width;
    }
    Ok(())
}

/// One panel, with the coordinates its axes ask for.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    x: &XAxis,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let points: Vec<(f64, f64)> = panel.lines.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    if !x.log {
        xs.push(0.0); // a linear axis starts at its origin
    }
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let x_range = span(&xs, x.log);
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(panel.caption, ("sans-serif", 17))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(64);
    let y_log = panel.log_y && ys.iter().any(|&y| y > 0.0);
    match (x.log, y_log) {
        (true, true) => {
            let y_range = log_span(&ys);
            let y_ticks = one_two_five(&y_range);
            let coords = (
                x_range.log_scale().with_key_points(xs),
                y_range.log_scale().with_key_points(y_ticks),
            );
            plot(&mut builder, coords, panel, x)
        }
        (true, false) => plot(
            &mut builder,
            (x_range.log_scale().with_key_points(xs), zero_to(&ys)),
            panel,
            x,
        ),
        (false, true) => {
            let y_range = log_span(&ys);
            let y_ticks = one_two_five(&y_range);
            plot(
                &mut builder,
                (
                    LinearTicks::new(x_range, xs),
                    y_range.log_scale().with_key_points(y_ticks),
                ),
                panel,
                x,
            )
        }
        (false, false) => plot(
            &mut builder,
            (LinearTicks::new(x_range, xs), zero_to(&ys)),
            panel,
            x,
        ),
    }
}

/// A linear axis with ticks at given values: plotters' `with_key_points`
/// would leave a linear `f64` axis without its label formatter.
struct LinearTicks {
    /// The axis.
    linear: RangedCoordf64,
    /// Where its ticks go.
    ticks: Vec<f64>,
}

impl LinearTicks {
    /// An axis over `range` with ticks at `ticks`.
    fn new(range: Range<f64>, ticks: Vec<f64>) -> Self {
        LinearTicks {
            linear: range.into(),
            ticks,
        }
    }
}

impl Ranged for LinearTicks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.linear.range()
    }
}

/// Builds the panel's coordinates, draws its mesh with axis titles, and its lines.
fn plot<'a, DB, XS, YS>(
    builder: &mut ChartBuilder<'a, '_, DB>,
    (xs, ys): (XS, YS),
    panel: &Panel,
    x: &XAxis,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    XS: AsRangedCoord<Value = f64>,
    YS: AsRangedCoord<Value = f64>,
    XS::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    YS::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = builder.build_cartesian_2d(xs, ys)?;
    chart
        .configure_mesh()
        .x_desc(x.desc)
        .y_desc(panel.y_desc)
        .x_label_formatter(&|v| thousands(*v))
        .y_label_formatter(&short)
        .light_line_style(WHITE)
        .axis_desc_style(("sans-serif", 14))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (i, (_, points)) in panel.lines.iter().enumerate() {
        let c = color(i);
        chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)).point_size(3))?;
    }
    Ok(())
}

/// The x range around the measured counts: a margin on either side, in the
/// scale's own terms.
fn span(xs: &[f64], log: bool) -> Range<f64> {
    match (xs.first(), xs.last()) {
        (Some(&lo), Some(&hi)) if log && lo > 0.0 => lo / 1.6..hi * 1.6,
        (Some(_), Some(&hi)) if !log && hi > 0.0 => 0.0..hi * 1.08,
        _ => 1.0..10.0,
    }
}

/// A log-scale range around the positive values in `ys`.
fn log_span(ys: &[f64]) -> Range<f64> {
    let positive = ys.iter().copied().filter(|&y| y > 0.0);
    let (lo, hi) = positive.fold((f64::MAX, 0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    lo / 1.5..hi * 1.5
}

/// From 0 to a little above the largest of `ys`.
fn zero_to(ys: &[f64]) -> Range<f64> {
    let hi = ys.iter().copied().fold(0f64, f64::max);
    0.0..if hi > 0.0 { hi * 1.1 } else { 1.0 }
}

/// Ticks at 1, 2 and 5 times each power of ten within `range`, so that a log
/// axis has labels at round values wherever its ends fall.
fn one_two_five(range: &Range<f64>) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(range.start.log10().floor());
    while decade <= range.end {
        for step in [1.0, 2.0, 5.0] {
            let tick = decade * step;
            if range.contains(&tick) {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A count with thousands separated: 5,000.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

/// An axis label: 1.5, 25, 120k, 1.2M.
fn short(v: &f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 100.0 || a == 0.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}").trim_end_matches(".0").to_string(),
        _ => format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
    }
}
