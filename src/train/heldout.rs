//! The held-out synthetic benchmark in memory: the sequences `patrack synth` writes, tracked and
//! scored with the LasHeR rules (success AUC, precision at 20 px) for every modality, overall and
//! on the RGB-hard subset. The CI floor on the shipped models uses it; `patrack eval` on the
//! written folders gives the same sequences each benchmark's own scoring.

use crate::eval::metrics::{self, Rect32, Scores, SeqBoxes};
use crate::sensor::{self, AuxConfig, Modality};
use crate::tracker::{TrackError, Tracker};

use super::synth::{scene_for, sequence_name};

/// The held-out seed of the shipped models' evidence (training uses seed 1).
pub const HELD_OUT_SEED: u64 = 1000;

/// Scores of one tracker on a synthetic set.
#[derive(Debug, Clone)]
pub struct HeldOutScores {
    pub all: Scores,
    /// The sequences whose RGB camera cannot see the target well (dark, low contrast, camouflage).
    pub rgb_hard: Scores,
}

/// Errors of a held-out run.
#[derive(Debug, thiserror::Error)]
pub enum HeldOutError {
    #[error(transparent)]
    Prepare(#[from] sensor::PrepareError),
    #[error(transparent)]
    Track(#[from] TrackError),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
}

fn rect(b: crate::tracker::BoxXywh) -> Rect32 {
    [b.x as f32, b.y as f32, b.w as f32, b.h as f32]
}

/// Tracks `sequences` synthetic sequences of `frames` frames from their first box and scores them.
pub fn score_synthetic(
    tracker: &mut Tracker,
    modality: Modality,
    seed: u64,
    sequences: usize,
    frames: usize,
) -> Result<HeldOutScores, HeldOutError> {
    let mut all = Vec::with_capacity(sequences);
    let mut hard = Vec::new();
    for index in 0..sequences {
        let scene = scene_for(seed, index, modality);
        let mut result = Vec::with_capacity(frames);
        let mut gt = Vec::with_capacity(frames);
        tracker.reset();
        for t in 0..frames {
            let f = scene.render(t);
            let frame = sensor::prepare_frame(&f.rgb, f.aux, modality, &AuxConfig::default())?;
            gt.push(rect(f.bbox));
            if t == 0 {
                tracker.init(&frame, f.bbox)?;
                result.push(rect(f.bbox));
            } else {
                result.push(rect(tracker.track(&frame)?.bbox));
            }
        }
        let seq = SeqBoxes { name: sequence_name(index, scene.condition), result, gt, gt_infrared: None };
        if scene.condition.is_rgb_hard() {
            hard.push(seq.clone());
        }
        all.push(seq);
    }
    Ok(HeldOutScores { all: metrics::lasher(&all)?, rgb_hard: metrics::lasher(&hard)? })
}
