//! Validation during training: the network as it stands runs as the tracker over a validation
//! benchmark with the runner and scoring of `patrack eval` ([`crate::eval::runner`],
//! [`crate::eval::report`]); the scores are appended to `val.csv` and the raw results kept under
//! `val/step_<N>/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::TrainError;
use crate::device::Precision;
use crate::eval::boxfile::ResultFormat;
use crate::eval::layout::{BenchSequence, DatasetKind};
use crate::eval::report::{self, BenchScores};
use crate::eval::runner;
use crate::model::PATrack;
use crate::tracker::{Tracker, TrackerConfig};

/// A validation benchmark.
pub struct Validation {
    pub kind: DatasetKind,
    pub sequences: Vec<BenchSequence>,
    /// The training run's output folder.
    pub out: PathBuf,
}

/// One validation's scores (fractions).
#[derive(Debug, Clone, PartialEq)]
pub struct ValScores {
    pub step: usize,
    /// Success AUC (one-pass benchmarks) or F-score (DepthTrack's long-term protocol).
    pub primary: f64,
    /// Precision at 20 px (one-pass) or tracking precision (long-term).
    pub precision: f64,
    /// Normalised precision (LasHeR, VisEvent) or tracking recall (long-term).
    pub third: Option<f64>,
    pub frames_per_s: f64,
}

impl ValScores {
    /// One line for the log, with the benchmark's metric names.
    pub fn describe(&self, kind: DatasetKind) -> String {
        let pct = |v: f64| format!("{:.1}", 100.0 * v);
        if kind.is_long_term() {
            format!(
                "F-score {} (precision {}, recall {})",
                pct(self.primary),
                pct(self.precision),
                self.third.map_or("-".into(), pct)
            )
        } else {
            let norm = self.third.map_or(String::new(), |n| format!(", norm. precision {}", pct(n)));
            format!("success {} precision {}{norm}", pct(self.primary), pct(self.precision))
        }
    }
}

impl Validation {
    /// Tracks every sequence with a copy of `model` (fp32, same device) and scores it.
    pub fn run(&self, step: usize, model: &PATrack) -> Result<ValScores, TrainError> {
        let fail = |cause: String| TrainError::Validation { step, cause };
        let mut copy = PATrack::new(model.cfg.clone(), model.device(), Precision::Fp32)?;
        {
            let _guard = tch::no_grad_guard();
            let src = model.vs.variables();
            for (name, mut var) in copy.vs.variables() {
                let from = src.get(&name).ok_or_else(|| fail(format!("no variable {name} to copy")))?;
                var.copy_(from);
            }
        }
        copy.vs.freeze();
        let mut tracker = Tracker::new(copy, TrackerConfig::default()).map_err(|e| fail(e.to_string()))?;
        let dir = self.out.join("val").join(format!("step_{step:07}"));
        let summary =
            runner::run_benchmark(&mut tracker, self.kind, &self.sequences, &dir).map_err(|e| fail(e.to_string()))?;
        let scores = report::score_tracker(self.kind, &self.sequences, &dir, "", ResultFormat::Ltwh)
            .map_err(|e| fail(e.to_string()))?;
        let fps = if summary.seconds > 0.0 { summary.frames as f64 / summary.seconds } else { 0.0 };
        let v = match scores {
            BenchScores::Ope(s) => ValScores {
                step,
                primary: s.success_auc,
                precision: s.precision,
                third: s.norm_precision,
                frames_per_s: fps,
            },
            BenchScores::LongTerm(s) => {
                ValScores { step, primary: s.f_score, precision: s.precision, third: Some(s.recall), frames_per_s: fps }
            }
        };
        append_csv(&self.out.join(VAL_FILE), self.kind, &v)?;
        Ok(v)
    }
}

/// The validation log in the output folder.
pub const VAL_FILE: &str = "val.csv";

/// Drops the rows of steps after `step` from the validation log (a resumed run validates them
/// again).
pub fn drop_rows_after(path: &Path, step: usize) -> Result<(), TrainError> {
    if !path.is_file() {
        return Ok(());
    }
    let io = |cause| TrainError::Io { path: path.into(), cause };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, l)| {
            *i == 0 || l.split(',').next().and_then(|s| s.parse::<usize>().ok()).is_some_and(|s| s <= step)
        })
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(path, kept).map_err(io)
}

fn append_csv(path: &Path, kind: DatasetKind, v: &ValScores) -> Result<(), TrainError> {
    let io = |cause| TrainError::Io { path: path.into(), cause };
    let new = !path.is_file();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    if new {
        let header = if kind.is_long_term() {
            "step,f_score,precision,recall,frames_per_s"
        } else {
            "step,success,precision,norm_precision,frames_per_s"
        };
        writeln!(f, "{header}").map_err(io)?;
    }
    let third = v.third.map_or(String::new(), |t| format!("{t:.5}"));
    writeln!(f, "{},{:.5},{:.5},{third},{:.2}", v.step, v.primary, v.precision, v.frames_per_s).map_err(io)
}

/// Reads `val.csv` back as (step, primary score) rows.
pub fn read_val_log(path: &Path) -> Result<Vec<(usize, f64)>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|cause| TrainError::Io { path: path.into(), cause })?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect())
}
