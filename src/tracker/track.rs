//! The `Tracker`: template at init, search crop + network + decode per frame, and the target
//! state machine (Uninitialised -> Tracking <-> Lost), which the reference tracker does not have.
//! The state machine itself is [`super::target`]'s, shared with the `MultiTracker`.

use super::decode::{decode, hann2d, DecodeError, HostMaps};
use super::geometry::{clip_box, map_back, BoxXywh};
use super::graphs::GraphCache;
use super::preprocess::PreprocessError;
use super::target::{check_frame, crop_tensor, finish, template_tokens, Search, TargetSlot};
use crate::model::PATrack;
use crate::sensor::ImageU8;

/// Tracker settings. Defaults are the reference values (`rgbt.yaml`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrackerConfig {
    /// Template crop side relative to sqrt(w h) of the box (reference: 2.0).
    pub template_factor: f64,
    /// Search crop side relative to sqrt(w h) of the previous box (reference: 4.0).
    pub search_factor: f64,
    /// Windowed score under which a frame counts as a miss.
    pub lost_threshold: f32,
    /// Consecutive misses after which the target is Lost (0: never).
    pub lost_frames: u32,
    /// Search factor multiplier while Lost (1.0: keep the reference search area).
    pub lost_search_scale: f64,
    /// Margin in pixels that `clip_box` keeps inside the image (reference: 10).
    pub clip_margin: f64,
    /// On CUDA, run the network as a captured CUDA graph (needs the `cuda` build feature;
    /// without it, or when capture fails, the network runs eagerly with a warning).
    pub cuda_graph: bool,
    /// On CUDA, crop and resize on the GPU (uploading the rows the crop covers) instead of the
    /// OpenCV-exact CPU crop. Faster for large frames, but its bilinear resize differs from
    /// OpenCV's fixed-point one by up to one grey level, so tracks drift from the reference by
    /// fractions of a pixel.
    pub crop_on_device: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            template_factor: 2.0,
            search_factor: 4.0,
            lost_threshold: 0.25,
            lost_frames: 10,
            lost_search_scale: 1.0,
            clip_margin: 10.0,
            cuda_graph: true,
            crop_on_device: false,
        }
    }
}

/// Largest `lost_search_scale`: while Lost the search crop is `lost_search_scale` times the
/// reference one (4 x sqrt(w h)), resized to the same 256 px, so a larger scale shrinks the
/// target below what the network resolves (a 40 px target becomes under 2 px at scale 8) and
/// soon exceeds the crop limit (`MAX_CROP_SIZE_PX`), which stops tracking with an error.
pub const MAX_LOST_SEARCH_SCALE: f64 = 4.0;

/// Smallest frame side accepted, in pixels: below it the crops are nearly all padding and the
/// box clipped to the frame (with its 10 px margin) means nothing, so such a frame is an error
/// rather than a "tracking" result.
pub const MIN_FRAME_SIDE_PX: usize = 16;

impl TrackerConfig {
    pub fn validate(&self) -> Result<(), TrackError> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(self.template_factor) || !ok(self.search_factor) || !ok(self.lost_search_scale) {
            return Err(TrackError::Config(
                "template_factor, search_factor and lost_search_scale must be positive".into(),
            ));
        }
        if self.lost_search_scale > MAX_LOST_SEARCH_SCALE {
            return Err(TrackError::Config(format!(
                "lost_search_scale {} is over the maximum {MAX_LOST_SEARCH_SCALE} (the lost search crop \
                 would shrink the target below what the network resolves)",
                self.lost_search_scale
            )));
        }
        if !(0.0..=1.0).contains(&self.lost_threshold) {
            return Err(TrackError::Config(format!(
                "lost_threshold must be within [0, 1], got {}",
                self.lost_threshold
            )));
        }
        if !(self.clip_margin.is_finite() && self.clip_margin >= 0.0) {
            return Err(TrackError::Config("clip_margin must be non-negative".into()));
        }
        Ok(())
    }
}

/// Where the tracker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// No box given yet (or after `reset`).
    Uninitialised,
    /// Following the target.
    Tracking,
    /// The score stayed under `lost_threshold` for `lost_frames` frames; the last box is kept.
    Lost,
}

impl std::fmt::Display for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetState::Uninitialised => "uninitialised",
            TargetState::Tracking => "tracking",
            TargetState::Lost => "lost",
        })
    }
}

/// One frame's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackResult {
    /// The box in image pixels (while Lost: the last box before the target was lost).
    pub bbox: BoxXywh,
    /// Hann-windowed peak score of this frame, in [0, 1].
    pub score: f32,
    pub state: TargetState,
}

/// Errors of the tracker. None of them leaves the tracker in a broken state.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("the tracker has no target: call init first")]
    NotInitialised,
    #[error("frame must have 6 channels (RGB + aux), got {0}")]
    Channels(usize),
    #[error("frame of {width}x{height} px is smaller than {MIN_FRAME_SIDE_PX} px on a side")]
    FrameTooSmall { width: usize, height: usize },
    #[error("initial box {0} is empty, not finite, or does not overlap the {1}x{2} image")]
    BadBox(BoxXywh, usize, usize),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("libtorch: {0}")]
    Torch(tch::TchError),
    #[error("tracker settings: {0}")]
    Config(String),
}

impl From<tch::TchError> for TrackError {
    fn from(e: tch::TchError) -> Self {
        TrackError::Torch(e)
    }
}

/// Intermediate results of one `track` step, for tests and debugging.
#[derive(Debug)]
pub struct StepDetail {
    pub prev_state: BoxXywh,
    pub crop_size: usize,
    pub resize_factor: f64,
    pub maps: HostMaps,
    pub unclipped: BoxXywh,
}

/// A single-object tracker over 6-channel frames (`[R, G, B, a0, a1, a2]`).
///
/// ```no_run
/// use patrack::model::{ModelConfig, PATrack};
/// use patrack::device::Precision;
/// use patrack::tracker::{BoxXywh, Tracker, TrackerConfig};
/// # fn frames() -> Vec<patrack::sensor::ImageU8> { vec![] }
/// let mut model = PATrack::new(ModelConfig::vit_base(), tch::Device::Cpu, Precision::Fp32)?;
/// model.fill_hashed(); // or load trained weights
/// let mut tracker = Tracker::new(model, TrackerConfig::default())?;
/// let frames = frames();
/// tracker.init(&frames[0], BoxXywh::new(128.0, 92.0, 36.0, 28.0))?;
/// for frame in &frames[1..] {
///     let r = tracker.track(frame)?;
///     println!("{:?} score {:.3} {}", r.bbox, r.score, r.state);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Tracker {
    model: PATrack,
    cfg: TrackerConfig,
    window: Vec<f32>,
    target: TargetSlot,
    /// The network captured as a CUDA graph (made at the first step on CUDA).
    graphs: GraphCache,
}

impl Tracker {
    pub fn new(model: PATrack, cfg: TrackerConfig) -> Result<Self, TrackError> {
        cfg.validate()?;
        let side = model.cfg.search_feat() as usize;
        Ok(Self { model, cfg, window: hann2d(side), target: TargetSlot::new(), graphs: GraphCache::default() })
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Changes thresholds at run time (the crop factors too; they apply from the next frame).
    pub fn set_config(&mut self, cfg: TrackerConfig) -> Result<(), TrackError> {
        cfg.validate()?;
        self.cfg = cfg;
        Ok(())
    }

    pub fn model(&self) -> &PATrack {
        &self.model
    }

    /// Gives the network back (e.g. to build a tracker with other settings).
    pub fn into_model(self) -> PATrack {
        self.model
    }

    pub fn state(&self) -> TargetState {
        self.target.state()
    }

    /// The current box, if initialised.
    pub fn bbox(&self) -> Option<BoxXywh> {
        self.target.bbox()
    }

    /// Windowed score of the last step (1.0 right after init, 0 before).
    pub fn last_score(&self) -> f32 {
        self.target.last_score()
    }

    /// Moves the search centre to `bbox` without recomputing the template (e.g. after an external
    /// re-detection of the same object). Ignored before `init`.
    pub fn set_bbox(&mut self, bbox: BoxXywh) {
        self.target.set_bbox(bbox);
    }

    /// Forgets the target.
    pub fn reset(&mut self) {
        self.target.reset();
    }

    /// Starts (or restarts) tracking the object in `bbox` (image pixels) of `frame`.
    pub fn init(&mut self, frame: &ImageU8, bbox: BoxXywh) -> Result<(), TrackError> {
        check_frame(frame)?;
        let z_tokens = template_tokens(&self.model, &self.cfg, frame, bbox)?;
        self.target.start(z_tokens, bbox, frame);
        Ok(())
    }

    /// Tracks the target into `frame`.
    pub fn track(&mut self, frame: &ImageU8) -> Result<TrackResult, TrackError> {
        self.track_detail(frame).map(|(r, _)| r)
    }

    /// As [`track`](Self::track), also returning the step's intermediates.
    pub fn track_detail(&mut self, frame: &ImageU8) -> Result<(TrackResult, StepDetail), TrackError> {
        check_frame(frame)?;
        if let Some(scaled) = self.target.rescaled_box(frame) {
            self.init(frame, scaled)?;
        }
        let Search { prev, factor, z_tokens } = self.target.search(&self.cfg)?;
        let out = self.model.cfg.search_size as usize;
        let (x, crop_size, resize_factor) = crop_tensor(&self.model, &self.cfg, frame, prev, factor, out)?;
        let head = self.graphs.network(&self.model, self.cfg.cuda_graph, &z_tokens, &x);
        let maps = HostMaps::from_head(&head)?;
        let (unclipped, new_box, score) =
            finish(&maps, &self.window, &self.model, &self.cfg, prev, resize_factor, frame)?;
        let result = self.target.update(&self.cfg, new_box, score);
        Ok((result, StepDetail { prev_state: prev, crop_size, resize_factor, maps, unclipped }))
    }
}

/// From maps to the clipped box: windowed argmax, `cal_bbox`, map back, `clip_box`.
/// Returns (unclipped box, clipped box, windowed score).
#[allow(clippy::too_many_arguments)]
pub fn box_from_maps(
    maps: &HostMaps,
    window: &[f32],
    prev: BoxXywh,
    search_size: usize,
    resize_factor: f64,
    height: usize,
    width: usize,
    margin: f64,
) -> Result<(BoxXywh, BoxXywh, f32), DecodeError> {
    let d = decode(maps, window)?;
    let unclipped = map_back(d.box_norm, prev, search_size, resize_factor);
    Ok((unclipped, clip_box(unclipped, height, width, margin), d.best_score))
}
