//! Everything between a pair of camera frames and a tracked box.

pub mod decode;
pub mod geometry;
pub mod gpu;
pub mod graphs;
pub mod multi;
pub mod preprocess;
mod target;
pub mod track;

pub use decode::{decode, hann2d, Decoded, HostMaps};
pub use geometry::{clip_box, map_back, BoxCxcywh, BoxXywh};
pub use multi::{MultiTrackError, MultiTracker, TargetId, TargetInfo, TargetResult, TargetStep, MAX_TARGETS};
pub use track::{StepDetail, TargetState, TrackError, TrackResult, Tracker, TrackerConfig};
