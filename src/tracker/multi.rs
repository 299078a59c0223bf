//! Several targets tracked in the same frames with one network call per frame.
//!
//! PATrack is a per-target network (each target has its own template and search crop), so N
//! targets are a batch of N: the search crops are stacked into (N, 6, H, W), the cached template
//! tokens of the N targets into the backbone's stream-major layout, and the maps come back in one
//! transfer. Every layer of the network works per batch element (attention, the Mixer's
//! convolutions and pools, the PSFM cross-attention, the head), so each target's maps are those
//! of a run of its own; `tests/multi_target.rs` checks that against single-target trackers.
//!
//! Each target has its own template, box and state machine ([`super::target`], the same rules
//! as the single-target [`Tracker`](super::Tracker)). On CUDA the network is replayed from a CUDA
//! graph per batch size ([`super::graphs`]), captured the first time that many targets run.

use tch::Tensor;

use super::decode::{hann2d, HostMaps};
use super::geometry::BoxXywh;
use super::graphs::GraphCache;
use super::target::{check_frame, crop_tensor, finish, template_tokens, Search, TargetSlot};
use super::track::{StepDetail, TargetState, TrackError, TrackResult, TrackerConfig};
use crate::model::PATrack;
use crate::sensor::ImageU8;

/// Most targets one `MultiTracker` accepts: the batch's memory grows with it (about 50 MB of
/// activations per ViT-B target in fp32 on the CPU, BENCHMARKS.md).
pub const MAX_TARGETS: usize = 32;

/// Longest target id, in bytes.
pub const MAX_TARGET_ID_BYTES: usize = 64;

/// A target's id. A string, because the id a ROS client gives with the initial box is the
/// string `id` of `vision_msgs/Detection2D`; non-empty, at most [`MAX_TARGET_ID_BYTES`] bytes,
/// without control characters (it appears in logs and on debug images).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(String);

impl TargetId {
    pub fn new(id: impl Into<String>) -> Result<Self, MultiTrackError> {
        let id = id.into();
        if id.is_empty() {
            return Err(MultiTrackError::BadId("a target id must not be empty".into()));
        }
        if id.len() > MAX_TARGET_ID_BYTES {
            return Err(MultiTrackError::BadId(format!(
                "a target id of {} bytes is longer than {MAX_TARGET_ID_BYTES}",
                id.len()
            )));
        }
        if id.chars().any(char::is_control) {
            return Err(MultiTrackError::BadId("a target id must not contain control characters".into()));
        }
        Ok(Self(id))
    }

    /// A decimal number as an id (always valid).
    pub fn number(n: u64) -> Self {
        Self(n.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TargetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TargetId {
    type Err = MultiTrackError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Errors of the multi-target tracker that are not one target's tracking error.
#[derive(Debug, thiserror::Error)]
pub enum MultiTrackError {
    #[error("{0}")]
    BadId(String),
    #[error("max_targets must be within 1..={MAX_TARGETS}, got {0}")]
    MaxTargets(usize),
    #[error("cannot add target '{id}': already tracking the maximum of {max} targets (max_targets)")]
    TooManyTargets { id: TargetId, max: usize },
    #[error("no target with id '{0}'")]
    UnknownTarget(TargetId),
    #[error("target '{id}': {source}")]
    Target { id: TargetId, source: TrackError },
    #[error(transparent)]
    Track(#[from] TrackError),
}

/// One target's answer for one frame: its result, or the error that kept it from being tracked
/// in this frame (its state is then unchanged; the other targets are tracked regardless).
#[derive(Debug)]
pub struct TargetStep {
    pub id: TargetId,
    pub result: Result<(TrackResult, StepDetail), TrackError>,
}

/// One target's result of [`MultiTracker::track`]: its id and its box, or the error that kept it
/// from being tracked in this frame.
pub type TargetResult = (TargetId, Result<TrackResult, TrackError>);

/// A target as listed by [`MultiTracker::targets`].
#[derive(Debug, Clone, PartialEq)]
pub struct TargetInfo {
    pub id: TargetId,
    pub state: TargetState,
    pub bbox: Option<BoxXywh>,
    /// Windowed score of the last step (1.0 right after init).
    pub score: f32,
}

/// Up to `max_targets` targets over 6-channel frames, one batched network call per frame.
///
/// Targets are kept in the order they were first initialised; results come in that order.
///
/// ```no_run
/// use patrack::model::{ModelConfig, PATrack};
/// use patrack::device::Precision;
/// use patrack::tracker::{BoxXywh, MultiTracker, TargetId, TrackerConfig};
/// # fn frames() -> Vec<patrack::sensor::ImageU8> { vec![] }
/// let mut model = PATrack::new(ModelConfig::vit_base(), tch::Device::Cpu, Precision::Fp32)?;
/// model.fill_hashed(); // or load trained weights
/// let mut tracker = MultiTracker::new(model, TrackerConfig::default(), 4)?;
/// let frames = frames();
/// tracker.init(TargetId::new("person")?, &frames[0], BoxXywh::new(128.0, 92.0, 36.0, 28.0))?;
/// tracker.init(TargetId::new("car")?, &frames[0], BoxXywh::new(300.0, 200.0, 80.0, 40.0))?;
/// for frame in &frames[1..] {
///     for (id, r) in tracker.track(frame)? {
///         match r {
///             Ok(r) => println!("{id}: {:?} score {:.3} {}", r.bbox, r.score, r.state),
///             Err(e) => println!("{id}: {e}"),
///         }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MultiTracker {
    model: PATrack,
    cfg: TrackerConfig,
    window: Vec<f32>,
    max_targets: usize,
    targets: Vec<(TargetId, TargetSlot)>,
    /// CUDA graphs per batch size (number of targets).
    graphs: GraphCache,
}

impl MultiTracker {
    pub fn new(model: PATrack, cfg: TrackerConfig, max_targets: usize) -> Result<Self, MultiTrackError> {
        cfg.validate()?;
        if !(1..=MAX_TARGETS).contains(&max_targets) {
            return Err(MultiTrackError::MaxTargets(max_targets));
        }
        let side = model.cfg.search_feat() as usize;
        Ok(Self { model, cfg, window: hann2d(side), max_targets, targets: Vec::new(), graphs: GraphCache::default() })
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Changes thresholds at run time for every target (they apply from the next frame).
    pub fn set_config(&mut self, cfg: TrackerConfig) -> Result<(), TrackError> {
        cfg.validate()?;
        self.cfg = cfg;
        Ok(())
    }

    pub fn model(&self) -> &PATrack {
        &self.model
    }

    pub fn into_model(self) -> PATrack {
        self.model
    }

    pub fn max_targets(&self) -> usize {
        self.max_targets
    }

    /// The batch sizes (target counts) with a captured CUDA graph.
    pub fn cuda_graph_batches(&self) -> Vec<i64> {
        self.graphs.batch_sizes()
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The targets in order, with state, box and last score.
    pub fn targets(&self) -> Vec<TargetInfo> {
        self.targets
            .iter()
            .map(|(id, t)| TargetInfo { id: id.clone(), state: t.state(), bbox: t.bbox(), score: t.last_score() })
            .collect()
    }

    /// The state of target `id` (Uninitialised when there is none).
    pub fn state(&self, id: &TargetId) -> TargetState {
        self.slot(id).map_or(TargetState::Uninitialised, TargetSlot::state)
    }

    pub fn bbox(&self, id: &TargetId) -> Option<BoxXywh> {
        self.slot(id).and_then(TargetSlot::bbox)
    }

    /// Moves target `id`'s search centre without recomputing its template.
    pub fn set_bbox(&mut self, id: &TargetId, bbox: BoxXywh) -> Result<(), MultiTrackError> {
        let i = self.index(id).ok_or_else(|| MultiTrackError::UnknownTarget(id.clone()))?;
        self.targets[i].1.set_bbox(bbox);
        Ok(())
    }

    /// Starts tracking the object in `bbox` of `frame` as target `id`. An existing `id` is
    /// re-initialised in place (new template, Tracking, its position in the order kept); a new
    /// one is refused when `max_targets` targets exist. On error nothing changes.
    pub fn init(&mut self, id: TargetId, frame: &ImageU8, bbox: BoxXywh) -> Result<(), MultiTrackError> {
        let existing = self.index(&id);
        if existing.is_none() && self.targets.len() >= self.max_targets {
            return Err(MultiTrackError::TooManyTargets { id, max: self.max_targets });
        }
        let z_tokens = check_frame(frame)
            .and_then(|()| template_tokens(&self.model, &self.cfg, frame, bbox))
            .map_err(|source| MultiTrackError::Target { id: id.clone(), source })?;
        match existing {
            Some(i) => self.targets[i].1.start(z_tokens, bbox, frame),
            None => {
                let mut slot = TargetSlot::new();
                slot.start(z_tokens, bbox, frame);
                self.targets.push((id, slot));
            }
        }
        Ok(())
    }

    /// Forgets target `id` (its place counts no more against `max_targets`).
    pub fn reset(&mut self, id: &TargetId) -> Result<(), MultiTrackError> {
        let i = self.index(id).ok_or_else(|| MultiTrackError::UnknownTarget(id.clone()))?;
        self.targets.remove(i);
        Ok(())
    }

    /// Forgets every target.
    pub fn reset_all(&mut self) {
        self.targets.clear();
    }

    /// Tracks every target into `frame`: one result per target, in order (none without targets).
    pub fn track(&mut self, frame: &ImageU8) -> Result<Vec<TargetResult>, TrackError> {
        Ok(self.track_detail(frame)?.into_iter().map(|s| (s.id, s.result.map(|(r, _)| r))).collect())
    }

    /// As [`track`](Self::track), with each target's step intermediates. A bad frame or a failed
    /// network call is an error of the whole step; a target whose crop or decoding fails gets its
    /// own error and keeps its state.
    pub fn track_detail(&mut self, frame: &ImageU8) -> Result<Vec<TargetStep>, TrackError> {
        check_frame(frame)?;
        let out = self.model.cfg.search_size as usize;
        // Per target: its search crop, or the error that leaves it out of this frame's batch.
        let mut results: Vec<Option<Result<(TrackResult, StepDetail), TrackError>>> = Vec::new();
        let mut batch: Vec<(usize, Search, Tensor, usize, f64)> = Vec::new();
        for (i, (_, slot)) in self.targets.iter_mut().enumerate() {
            let prepared = (|| {
                if let Some(scaled) = slot.rescaled_box(frame) {
                    let z_tokens = template_tokens(&self.model, &self.cfg, frame, scaled)?;
                    slot.start(z_tokens, scaled, frame);
                }
                let search = slot.search(&self.cfg)?;
                let (x, crop_size, resize_factor) =
                    crop_tensor(&self.model, &self.cfg, frame, search.prev, search.factor, out)?;
                Ok::<_, TrackError>((search, x, crop_size, resize_factor))
            })();
            match prepared {
                Ok((search, x, crop_size, resize_factor)) => {
                    batch.push((i, search, x, crop_size, resize_factor));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        if !batch.is_empty() {
            let crops: Vec<&Tensor> = batch.iter().map(|b| &b.2).collect();
            let tokens: Vec<&Tensor> = batch.iter().map(|b| &b.1.z_tokens).collect();
            let x = Tensor::f_cat(&crops, 0)?;
            let z_tokens = stack_template_tokens(&tokens)?;
            let head = self.graphs.network(&self.model, self.cfg.cuda_graph, &z_tokens, &x);
            let maps = HostMaps::from_head_batch(&head)?;
            for ((i, search, _, crop_size, resize_factor), maps) in batch.into_iter().zip(maps) {
                let prev = search.prev;
                let slot = &mut self.targets[i].1;
                let step = finish(&maps, &self.window, &self.model, &self.cfg, prev, resize_factor, frame)
                    .map_err(TrackError::from)
                    .map(|(unclipped, new_box, score)| {
                        let r = slot.update(&self.cfg, new_box, score);
                        (r, StepDetail { prev_state: prev, crop_size, resize_factor, maps, unclipped })
                    });
                results[i] = Some(step);
            }
        }
        Ok(self
            .targets
            .iter()
            .zip(results)
            .map(|((id, _), r)| TargetStep { id: id.clone(), result: r.unwrap_or(Err(TrackError::NotInitialised)) })
            .collect())
    }

    fn index(&self, id: &TargetId) -> Option<usize> {
        self.targets.iter().position(|(t, _)| t == id)
    }

    fn slot(&self, id: &TargetId) -> Option<&TargetSlot> {
        self.targets.iter().find(|(t, _)| t == id).map(|(_, s)| s)
    }
}

/// The template tokens of N targets as one batch. Each target's tokens are (S, Lz, C) with S
/// stream rows (2: `[rgb; aux]`, 1 for the RGB-only base), and the backbone wants the streams
/// stacked over the whole batch: `[rgb_0 .. rgb_N-1; aux_0 .. aux_N-1]`, (S N, Lz, C).
pub fn stack_template_tokens(tokens: &[&Tensor]) -> Result<Tensor, tch::TchError> {
    // (S, N, Lz, C) -> (S N, Lz, C): stream-major, target-minor.
    let stacked = Tensor::f_stack(tokens, 1)?;
    let size = stacked.size();
    stacked.f_reshape([size[0] * size[1], size[2], size[3]])
}
