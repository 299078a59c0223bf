//! Runs the tracker (the same [`Tracker`] the node uses) over benchmark sequences and writes raw
//! results, skipping sequences whose result file already exists, so an interrupted run resumes.

use std::path::Path;
use std::time::Instant;

use crate::eval::layout::{self, BenchSequence, DatasetKind, FrameResult, LayoutError};
use crate::tracker::{TrackError, Tracker};

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("sequence {seq}, frame {frame}: {cause}")]
    Track { seq: String, frame: usize, cause: TrackError },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub tracked: Vec<String>,
    /// Sequences with a result already present.
    pub skipped: Vec<String>,
    pub frames: usize,
    pub seconds: f64,
}

/// Tracks one sequence from its first ground-truth box.
pub fn track_sequence(
    tracker: &mut Tracker,
    seq: &BenchSequence,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<FrameResult>, RunError> {
    let init = seq.init_box()?;
    let mut out = Vec::with_capacity(seq.len());
    for i in 0..seq.len() {
        let t0 = Instant::now();
        let frame = seq.frame(i)?;
        let track_err = |cause| RunError::Track { seq: seq.name.clone(), frame: i + 1, cause };
        if i == 0 {
            tracker.init(&frame, init).map_err(track_err)?;
            out.push(FrameResult { bbox: init, score: None, time_s: t0.elapsed().as_secs_f64() });
        } else {
            let r = tracker.track(&frame).map_err(track_err)?;
            out.push(FrameResult { bbox: r.bbox, score: Some(r.score), time_s: t0.elapsed().as_secs_f64() });
        }
        bar.inc(1);
    }
    Ok(out)
}

/// Runs every sequence without a result in `results_dir`, in order, with a progress bar (frames,
/// frames/s, ETA; hidden when stderr is not a terminal).
pub fn run_benchmark(
    tracker: &mut Tracker,
    kind: DatasetKind,
    seqs: &[BenchSequence],
    results_dir: &Path,
) -> Result<RunSummary, RunError> {
    let todo: Vec<&BenchSequence> =
        seqs.iter().filter(|s| !layout::result_path(kind, results_dir, &s.name).is_file()).collect();
    let mut summary = RunSummary {
        skipped: seqs.iter().filter(|s| !todo.iter().any(|t| t.name == s.name)).map(|s| s.name.clone()).collect(),
        ..Default::default()
    };
    for s in &summary.skipped {
        log::info!("{s}: result present, skipped");
    }
    let total: usize = todo.iter().map(|s| s.len()).sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:20} {bar:30} {pos}/{len} frames  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    for seq in todo {
        bar.set_message(seq.name.clone());
        tracker.reset();
        let frames = track_sequence(tracker, seq, &bar)?;
        layout::write_result(kind, results_dir, &seq.name, &frames)?;
        summary.frames += frames.len();
        summary.tracked.push(seq.name.clone());
    }
    bar.finish_and_clear();
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(summary)
}
