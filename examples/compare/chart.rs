//! SVG charts with plotters: one panel per value against connections, one
//! line per model, panels in a grid of two rows.

use std::path::Path;

use plotters::prelude::*;

/// One line of a chart: a model's name and its points.
pub(crate) type Series = (String, Vec<(f64, f64)>);

/// Draws one panel per `(title, series)` in a grid of two rows.
pub(crate) fn draw_chart(
    path: &Path,
    title: &str,
    panels: &[(&str, Vec<Series>)],
    log_x: bool,
) -> Result<(), String> {
    let cols = panels.len().div_ceil(2).max(1);
    // Panels of 420 x 360 pixels; a lone panel gets more width.
    let size = if panels.len() > 1 {
        (420 * cols as u32, 720)
    } else {
        (720, 480)
    };
    let root = SVGBackend::new(path, size).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| fail(&e))?;
    let rows = if panels.len() > 1 { 2 } else { 1 };
    for (area, (name, lines)) in root.split_evenly((rows, cols)).iter().zip(panels) {
        draw_panel(area, name, lines, log_x).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

/// One panel: value against connections, one line per model.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    name: &str,
    lines: &[Series],
    log_x: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let points = lines.iter().flat_map(|(_, p)| p.iter());
    let (xmin, xmax, ymax) = points.fold((f64::MAX, 0f64, 0f64), |(a, b, c), p| {
        (a.min(p.0), b.max(p.0), c.max(p.1))
    });
    let (xmin, xmax) = if xmax > 0.0 {
        (xmin * 0.8, xmax * 1.25)
    } else {
        (1.0, 10.0)
    };
    let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(name, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56);
    let x_desc = "connections";
    if log_x {
        let mut chart = builder.build_cartesian_2d((xmin..xmax).log_scale(), 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .x_label_formatter(&short)
            .y_label_formatter(&short)
            .draw()?;
        draw_lines(&mut chart, lines)
    } else {
        let mut chart = builder.build_cartesian_2d(0.0..xmax, 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .x_label_formatter(&short)
            .y_label_formatter(&short)
            .draw()?;
        draw_lines(&mut chart, lines)
    }
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

/// Line colours that stay apart on white (matplotlib's first six).
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The models' lines and their legend.
fn draw_lines<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    lines: &[Series],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
{
    for (i, (model, points)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)).point_size(3))?
            .label(model.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}
