//! Success and precision plots (PNG), several trackers on one plot, legend ordered and labelled
//! with the score as the toolkits' plots are.
//!
//! Text needs a TrueType font, which plotters' pure-Rust `ab_glyph` backend takes as bytes: the
//! file in `PATRACK_FONT`, else a common system sans font (DejaVu, Liberation, Noto). Without any,
//! the curves and axes are still drawn, without labels, and a warning says so.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::eval::report::{BenchScores, Report};

/// Errors drawing or saving a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("drawing {path}: {what}")]
    Draw { path: PathBuf, what: String },
    #[error("{path}: {cause}")]
    Save { path: PathBuf, cause: image::ImageError },
}

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Registers a font once per process; whether text can be drawn.
fn font_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let env = std::env::var_os("PATRACK_FONT").map(PathBuf::from);
        let paths = env.into_iter().chain(FONT_CANDIDATES.iter().map(PathBuf::from));
        for p in paths {
            if let Ok(bytes) = std::fs::read(&p) {
                // plotters keeps fonts for the whole process; one leaked copy per process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        log::warn!("no TrueType font found (set PATRACK_FONT=/path/font.ttf): plots are drawn without text");
        false
    })
}

/// One curve: its label and points.
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws `curves` (y in 0..1) into an 800 x 600 PNG.
pub fn draw_curves(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    x_max: f64,
    curves: &[Curve],
) -> Result<(), PlotError> {
    draw_curves_to(path, title, (x_label, y_label), (x_max, 1.0), curves)
}

/// Draws `curves` on axes `0..x_max` x `0..y_max` into an 800 x 600 PNG.
pub fn draw_curves_to(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    (x_max, y_max): (f64, f64),
    curves: &[Curve],
) -> Result<(), PlotError> {
    let (w, h) = (800u32, 600u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let text = font_available();
    let err = |e: &dyn std::fmt::Display| PlotError::Draw { path: path.into(), what: e.to_string() };
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(20).x_label_area_size(if text { 45 } else { 5 }).y_label_area_size(if text { 55 } else { 5 });
        if text {
            builder.caption(title, ("sans-serif", 26));
        }
        let mut chart = builder.build_cartesian_2d(0.0..x_max, 0.0..y_max).map_err(|e| err(&e))?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc(x_label).y_desc(y_label).label_style(("sans-serif", 16));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| err(&e))?;
        for (i, c) in curves.iter().enumerate() {
            let color = Palette99::pick(i).stroke_width(3);
            let series = chart.draw_series(LineSeries::new(c.points.iter().copied(), color)).map_err(|e| err(&e))?;
            if text {
                series.label(c.label.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
        }
        if text && !curves.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 16))
                .position(SeriesLabelPosition::LowerLeft)
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    image::save_buffer(path, &buf, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|cause| PlotError::Save { path: path.into(), cause })
}

/// The report's plots into `out_dir`: `success.png` and `precision.png` (one-pass benchmarks)
/// or `pr.png` (long-term: precision against recall). Returns the files written.
pub fn write_plots(report: &Report, out_dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let ds = report.dataset.name();
    let mut ope: Vec<(&str, &crate::eval::metrics::Scores)> = Vec::new();
    let mut lt: Vec<(&str, &crate::eval::longterm::LtScores)> = Vec::new();
    for t in &report.trackers {
        match &t.scores {
            BenchScores::Ope(s) => ope.push((&t.tracker, s)),
            BenchScores::LongTerm(s) => lt.push((&t.tracker, s)),
        }
    }
    let mut written = Vec::new();
    if !ope.is_empty() {
        ope.sort_by(|a, b| b.1.success_auc.total_cmp(&a.1.success_auc));
        let success: Vec<Curve> = ope
            .iter()
            .map(|(n, s)| Curve {
                label: format!("{n} [{:.3}]", s.success_auc),
                points: s.success_thresholds.iter().copied().zip(s.success_curve.iter().copied()).collect(),
            })
            .collect();
        let p = out_dir.join("success.png");
        draw_curves(&p, &format!("Success plots on {ds}"), "Overlap threshold", "Success rate", 1.0, &success)?;
        written.push(p);
        ope.sort_by(|a, b| b.1.precision.total_cmp(&a.1.precision));
        let x_max = ope.first().and_then(|(_, s)| s.precision_thresholds_px.last().copied()).unwrap_or(50.0);
        let precision: Vec<Curve> = ope
            .iter()
            .map(|(n, s)| Curve {
                label: format!("{n} [{:.3}]", s.precision),
                points: s.precision_thresholds_px.iter().copied().zip(s.precision_curve.iter().copied()).collect(),
            })
            .collect();
        let p = out_dir.join("precision.png");
        draw_curves(
            &p,
            &format!("Precision plots on {ds}"),
            "Location error threshold (px)",
            "Precision",
            x_max,
            &precision,
        )?;
        written.push(p);
    }
    if !lt.is_empty() {
        lt.sort_by(|a, b| b.1.f_score.total_cmp(&a.1.f_score));
        let pr: Vec<Curve> = lt
            .iter()
            .map(|(n, s)| Curve {
                label: format!("{n} [F {:.3}]", s.f_score),
                points: s.recall_curve.iter().copied().zip(s.precision_curve.iter().copied()).collect(),
            })
            .collect();
        let p = out_dir.join("pr.png");
        draw_curves(&p, &format!("Precision / recall on {ds}"), "Recall", "Precision", 1.0, &pr)?;
        written.push(p);
    }
    Ok(written)
}
