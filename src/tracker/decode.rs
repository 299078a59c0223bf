//! From the head's maps to a box: the Hann window, the windowed argmax and `cal_bbox`
//! (`lib/test/tracker/patrack.py`, `lib/models/layers/head.py` l.142-160).

use tch::{Kind, Tensor};

use super::geometry::BoxCxcywh;
use crate::model::HeadOutput;

/// The tracker's cosine window over an `n x n` score map: outer product of
/// `0.5 * (1 - cos(2 pi k / (n + 1)))`, k = 1..n (`lib/test/utils/hann.py`, `hann2d`, centered).
pub fn hann2d(n: usize) -> Vec<f32> {
    // In f32 throughout, as `hann1d` computes it on a float32 tensor.
    let step = (2.0 * std::f64::consts::PI / (n as f64 + 1.0)) as f32;
    let h: Vec<f32> = (1..=n).map(|k| 0.5 * (1.0 - (step * k as f32).cos())).collect();
    let mut out = Vec::with_capacity(n * n);
    for &a in &h {
        for &b in &h {
            out.push(a * b);
        }
    }
    out
}

/// The decoded result of one search crop.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Max of Hann x score: the tracker's confidence.
    pub best_score: f32,
    /// Flat index of that max (row * side + col).
    pub best_index: usize,
    /// (cx, cy, w, h) as fractions of the search crop.
    pub box_norm: BoxCxcywh<f32>,
}

/// Errors decoding maps.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("score map is not (1, 1, {side}, {side}): {shape:?}")]
    Shape { side: usize, shape: Vec<i64> },
    #[error("non-finite value in the network output")]
    NonFinite,
}

/// Maps of one frame copied to the host as f32 (small: 5 x side^2 values).
#[derive(Debug, Clone)]
pub struct HostMaps {
    pub side: usize,
    pub score: Vec<f32>,
    pub size: Vec<f32>,
    pub offset: Vec<f32>,
}

impl HostMaps {
    /// Copies batch element 0 of the maps to the CPU in one transfer.
    pub fn from_head(out: &HeadOutput) -> Result<Self, DecodeError> {
        let shape = out.score_map.size();
        let side = *shape.last().unwrap_or(&0) as usize;
        if shape.len() != 4 || shape[1] != 1 || shape[2] as usize != side {
            return Err(DecodeError::Shape { side, shape });
        }
        let all = Tensor::cat(
            &[
                out.score_map.get(0).flatten(0, -1),
                out.size_map.get(0).flatten(0, -1),
                out.offset_map.get(0).flatten(0, -1),
            ],
            0,
        )
        .to_kind(Kind::Float)
        .to_device(tch::Device::Cpu);
        let v: Vec<f32> = Vec::<f32>::try_from(&all).map_err(|_| DecodeError::NonFinite)?;
        let n = side * side;
        if v.len() != 5 * n {
            return Err(DecodeError::Shape { side, shape });
        }
        Ok(Self { side, score: v[..n].to_vec(), size: v[n..3 * n].to_vec(), offset: v[3 * n..].to_vec() })
    }
}

impl HostMaps {
    /// Copies the maps of every batch element to the CPU in one transfer, one `HostMaps` per
    /// element in batch order (the same values [`from_head`](Self::from_head) gives for one).
    pub fn from_head_batch(out: &HeadOutput) -> Result<Vec<Self>, DecodeError> {
        let shape = out.score_map.size();
        let side = *shape.last().unwrap_or(&0) as usize;
        if shape.len() != 4 || shape[1] != 1 || shape[2] as usize != side {
            return Err(DecodeError::Shape { side, shape });
        }
        let batch = shape[0];
        // (B, 5 side^2): score, size (w, h), offset (x, y) of each element side by side.
        let all = Tensor::cat(
            &[
                out.score_map.reshape([batch, -1]),
                out.size_map.reshape([batch, -1]),
                out.offset_map.reshape([batch, -1]),
            ],
            1,
        )
        .to_kind(Kind::Float)
        .to_device(tch::Device::Cpu)
        .contiguous();
        let v: Vec<f32> = Vec::<f32>::try_from(&all.flatten(0, -1)).map_err(|_| DecodeError::NonFinite)?;
        let n = side * side;
        if v.len() != batch.max(0) as usize * 5 * n {
            return Err(DecodeError::Shape { side, shape });
        }
        Ok(v.chunks_exact(5 * n)
            .map(|e| Self { side, score: e[..n].to_vec(), size: e[n..3 * n].to_vec(), offset: e[3 * n..].to_vec() })
            .collect())
    }
}

/// Windowed argmax and `cal_bbox`. `window` is [`hann2d`] of the map side. Ties resolve to the
/// first index, as `torch.max` does on CPU.
pub fn decode(maps: &HostMaps, window: &[f32]) -> Result<Decoded, DecodeError> {
    let n = maps.side * maps.side;
    let mut best = (f32::NEG_INFINITY, 0usize);
    for (i, (&s, &w)) in maps.score.iter().zip(window).enumerate().take(n) {
        let v = s * w;
        if !v.is_finite() {
            return Err(DecodeError::NonFinite);
        }
        if v > best.0 {
            best = (v, i);
        }
    }
    let (best_score, idx) = best;
    let side = maps.side;
    let (iy, ix) = (idx / side, idx % side);
    let (w, h) = (maps.size[idx], maps.size[n + idx]);
    let (dx, dy) = (maps.offset[idx], maps.offset[n + idx]);
    let s = side as f32;
    let box_norm = BoxCxcywh { cx: (ix as f32 + dx) / s, cy: (iy as f32 + dy) / s, w, h };
    if ![box_norm.cx, box_norm.cy, w, h].iter().all(|v| v.is_finite()) {
        return Err(DecodeError::NonFinite);
    }
    Ok(Decoded { best_score, best_index: idx, box_norm })
}
