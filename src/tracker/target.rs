//! What one tracked target is, shared by the single-target [`Tracker`](super::Tracker) and the
//! [`MultiTracker`](super::MultiTracker): its template tokens, its box, and the state machine
//! (Uninitialised -> Tracking <-> Lost). Both trackers run these same rules, so a target behaves
//! the same whether it is tracked alone or in a batch.

use tch::{Device, Tensor};

use super::decode::{DecodeError, HostMaps};
use super::geometry::BoxXywh;
use super::gpu;
use super::preprocess::{self, sample_target, Crop};
use super::track::{box_from_maps, TargetState, TrackError, TrackResult, TrackerConfig, MIN_FRAME_SIDE_PX};
use crate::model::PATrack;
use crate::sensor::ImageU8;

/// One target's state between frames.
#[derive(Debug)]
pub(super) struct TargetSlot {
    template_tokens: Option<Tensor>,
    box_state: Option<BoxXywh>,
    frame_size: (usize, usize),
    status: TargetState,
    misses: u32,
    last_score: f32,
}

/// Where and how wide the next search crop is.
pub(super) struct Search {
    /// The box the crop is centred on (the previous box).
    pub prev: BoxXywh,
    /// Search factor of this frame (wider while Lost).
    pub factor: f64,
    /// The template tokens to run the search crop against.
    pub z_tokens: Tensor,
}

impl TargetSlot {
    pub fn new() -> Self {
        Self {
            template_tokens: None,
            box_state: None,
            frame_size: (0, 0),
            status: TargetState::Uninitialised,
            misses: 0,
            last_score: 0.0,
        }
    }

    pub fn state(&self) -> TargetState {
        self.status
    }

    pub fn bbox(&self) -> Option<BoxXywh> {
        self.box_state
    }

    /// Windowed score of the last step (1.0 right after `start`).
    pub fn last_score(&self) -> f32 {
        self.last_score
    }

    /// Starts (or restarts) on `bbox` with the template tokens computed from `frame`.
    pub fn start(&mut self, z_tokens: Tensor, bbox: BoxXywh, frame: &ImageU8) {
        self.template_tokens = Some(z_tokens);
        self.box_state = Some(bbox);
        self.frame_size = (frame.width, frame.height);
        self.status = TargetState::Tracking;
        self.misses = 0;
        self.last_score = 1.0;
    }

    /// Forgets the target.
    pub fn reset(&mut self) {
        self.template_tokens = None;
        self.box_state = None;
        self.status = TargetState::Uninitialised;
        self.misses = 0;
    }

    /// Moves the search centre without recomputing the template; ignored before `start` and for
    /// empty or non-finite boxes.
    pub fn set_bbox(&mut self, bbox: BoxXywh) {
        if self.box_state.is_some() && bbox.is_finite() && bbox.w > 0.0 && bbox.h > 0.0 {
            self.box_state = Some(bbox);
        }
    }

    /// When `frame` has another size than the template's frame, the last box scaled to it: a new
    /// resolution invalidates the template's geometry, so the caller restarts from that box.
    pub fn rescaled_box(&self, frame: &ImageU8) -> Option<BoxXywh> {
        let prev = self.box_state?;
        if (frame.width, frame.height) == self.frame_size {
            return None;
        }
        let (sx, sy) = (frame.width as f64 / self.frame_size.0 as f64, frame.height as f64 / self.frame_size.1 as f64);
        log::warn!(
            "frame size changed from {}x{} to {}x{}: re-initialising on the scaled last box",
            self.frame_size.0,
            self.frame_size.1,
            frame.width,
            frame.height
        );
        Some(BoxXywh::new(prev.x * sx, prev.y * sy, prev.w * sx, prev.h * sy))
    }

    /// The search of the next frame: the previous box, the search factor (times
    /// `lost_search_scale` while Lost) and the template tokens.
    pub fn search(&self, cfg: &TrackerConfig) -> Result<Search, TrackError> {
        let prev = self.box_state.ok_or(TrackError::NotInitialised)?;
        let z_tokens = self.template_tokens.as_ref().ok_or(TrackError::NotInitialised)?.shallow_clone();
        let factor = match self.status {
            TargetState::Lost => cfg.search_factor * cfg.lost_search_scale,
            _ => cfg.search_factor,
        };
        Ok(Search { prev, factor, z_tokens })
    }

    /// The state machine: misses below `lost_threshold` for `lost_frames` frames make the target
    /// Lost; a hit makes it Tracking again.
    pub fn update(&mut self, cfg: &TrackerConfig, new_box: BoxXywh, score: f32) -> TrackResult {
        self.last_score = score;
        let hit = score >= cfg.lost_threshold;
        if hit {
            self.misses = 0;
            self.status = TargetState::Tracking;
        } else {
            self.misses = self.misses.saturating_add(1);
            if cfg.lost_frames > 0 && self.misses >= cfg.lost_frames {
                self.status = TargetState::Lost;
            }
        }
        // While lost the box stays where the target was last seen; the search keeps looking there.
        if self.status != TargetState::Lost {
            self.box_state = Some(new_box);
        }
        let bbox = self.box_state.unwrap_or(new_box);
        TrackResult { bbox, score, state: self.status }
    }
}

/// Checks a frame before any work: 6 channels and at least [`MIN_FRAME_SIDE_PX`] on a side.
pub(super) fn check_frame(frame: &ImageU8) -> Result<(), TrackError> {
    if frame.channels != 6 {
        return Err(TrackError::Channels(frame.channels));
    }
    if frame.width < MIN_FRAME_SIDE_PX || frame.height < MIN_FRAME_SIDE_PX {
        return Err(TrackError::FrameTooSmall { width: frame.width, height: frame.height });
    }
    Ok(())
}

/// The template tokens of the object in `bbox` (image pixels) of `frame`, after checking that the
/// box is finite, not empty, and overlaps the frame.
pub(super) fn template_tokens(
    model: &PATrack,
    cfg: &TrackerConfig,
    frame: &ImageU8,
    bbox: BoxXywh,
) -> Result<Tensor, TrackError> {
    let (w, h) = (frame.width as f64, frame.height as f64);
    let overlaps = bbox.x < w && bbox.y < h && bbox.x + bbox.w > 0.0 && bbox.y + bbox.h > 0.0;
    if !bbox.is_finite() || bbox.w <= 0.0 || bbox.h <= 0.0 || !overlaps {
        return Err(TrackError::BadBox(bbox, frame.width, frame.height));
    }
    let out = model.cfg.template_size as usize;
    let z = crop_tensor(model, cfg, frame, bbox, cfg.template_factor, out)?.0;
    Ok(model.embed_template(&z))
}

/// The normalised (1, 6, out, out) crop on the model's device: the OpenCV-exact crop on the CPU
/// (uploaded as bytes, normalised on the device), or with `crop_on_device` the crop's rows
/// uploaded and cropped/resized on the GPU. Also returns the crop size and the resize factor.
pub(super) fn crop_tensor(
    model: &PATrack,
    cfg: &TrackerConfig,
    frame: &ImageU8,
    bbox: BoxXywh,
    factor: f64,
    out: usize,
) -> Result<(Tensor, usize, f64), TrackError> {
    let device = model.device();
    if device != Device::Cpu && cfg.crop_on_device {
        let g = gpu::crop_normalize(frame, bbox, factor, out, device)?;
        return Ok(g);
    }
    let crop: Crop = sample_target(frame, bbox.to_array(), factor, out)?;
    Ok((preprocess::normalize_on(&crop.patch, device)?, crop.crop_size, crop.resize_factor))
}

/// Decode, map back and clip: from one crop's maps to (unclipped box, clipped box, score).
pub(super) fn finish(
    maps: &HostMaps,
    window: &[f32],
    model: &PATrack,
    cfg: &TrackerConfig,
    prev: BoxXywh,
    resize_factor: f64,
    frame: &ImageU8,
) -> Result<(BoxXywh, BoxXywh, f32), DecodeError> {
    box_from_maps(
        maps,
        window,
        prev,
        model.cfg.search_size as usize,
        resize_factor,
        frame.height,
        frame.width,
        cfg.clip_margin,
    )
}
