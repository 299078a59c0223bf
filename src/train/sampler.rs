//! Training pairs as OSTrack's sampler and processing make them (`lib/train/data/sampler.py`,
//! `processing.py`): a template frame and a search frame of one sequence at most `max_gap` frames
//! apart; the template cropped around its box (factor 2, no jitter), the search frame around a
//! jittered box (scale `exp(N(0, 0.25))`, centre moved uniformly by up to `3 sqrt(w h) / 2`,
//! factor 4); the search crop's target box as fractions of the crop and its Gaussian score target.

use tch::Tensor;

use super::loss::gaussian_target;
use super::synth::{scene_for, Rng, Scene};
use crate::eval::layout::{BenchSequence, LayoutError};
use crate::sensor::{self, AuxConfig, ImageU8, Modality};
use crate::tracker::preprocess::{normalize_into, sample_target, PreprocessError};
use crate::tracker::BoxXywh;

/// Where training frames come from.
pub trait FrameSource {
    fn num_sequences(&self) -> usize;
    fn num_frames(&self, seq: usize) -> usize;
    /// The 6-channel frame `t` of sequence `seq` and its ground-truth box (None: no valid box).
    fn frame(&mut self, seq: usize, t: usize) -> Result<(ImageU8, Option<BoxXywh>), SampleError>;
}

/// Errors reading training frames.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Prepare(#[from] sensor::PrepareError),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error("no valid training pair found in {0} tries: are the ground-truth boxes valid?")]
    NoPair(usize),
}

/// Synthetic scenes of one modality (or of all three, cycling, for the RGB-only base), built on
/// first use and kept.
pub struct SynthSource {
    seed: u64,
    modalities: Vec<Modality>,
    scenes: Vec<Option<Scene>>,
    frames: usize,
    normal_only: bool,
}

impl SynthSource {
    /// `normal_only`: only RGB-normal scenes (the base tracker's RGB training data, as RGB
    /// datasets hold); otherwise half of the scenes are RGB-hard (see [`scene_for`]).
    pub fn new(seed: u64, modalities: Vec<Modality>, sequences: usize, frames: usize, normal_only: bool) -> Self {
        Self { seed, modalities, scenes: vec![None; sequences], frames, normal_only }
    }
}

impl FrameSource for SynthSource {
    fn num_sequences(&self) -> usize {
        self.scenes.len()
    }

    fn num_frames(&self, _seq: usize) -> usize {
        self.frames
    }

    fn frame(&mut self, seq: usize, t: usize) -> Result<(ImageU8, Option<BoxXywh>), SampleError> {
        let modality = self.modalities[seq % self.modalities.len()];
        let seed = self.seed;
        let index = if self.normal_only { 2 * seq } else { seq };
        let scene = self.scenes[seq].get_or_insert_with(|| scene_for(seed, index, modality));
        let f = scene.render(t);
        let frame = sensor::prepare_frame(&f.rgb, f.aux, scene.modality, &AuxConfig::default())?;
        Ok((frame, Some(f.bbox)))
    }
}

/// Sequences of a benchmark in its published layout (e.g. LasHeR-style folders).
pub struct BenchSource {
    seqs: Vec<BenchSequence>,
}

impl BenchSource {
    pub fn new(seqs: Vec<BenchSequence>) -> Self {
        Self { seqs }
    }
}

impl FrameSource for BenchSource {
    fn num_sequences(&self) -> usize {
        self.seqs.len()
    }

    fn num_frames(&self, seq: usize) -> usize {
        self.seqs[seq].len()
    }

    fn frame(&mut self, seq: usize, t: usize) -> Result<(ImageU8, Option<BoxXywh>), SampleError> {
        let s = &self.seqs[seq];
        let g = s.gt[t];
        let b = BoxXywh::new(g[0] as f64, g[1] as f64, g[2] as f64, g[3] as f64);
        let valid = b.is_finite() && b.w > 1.0 && b.h > 1.0;
        Ok((s.frame(t)?, valid.then_some(b)))
    }
}

/// Pair sampling settings (OSTrack's defaults).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SamplerConfig {
    pub template_factor: f64,
    pub search_factor: f64,
    pub scale_jitter: f64,
    pub center_jitter: f64,
    pub max_gap: usize,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self { template_factor: 2.0, search_factor: 4.0, scale_jitter: 0.25, center_jitter: 3.0, max_gap: 30 }
    }
}

/// One batch, ready for the network and the loss.
pub struct Batch {
    /// (B, 6, Hz, Wz) normalised template crops.
    pub template: Tensor,
    /// (B, 6, Hx, Wx) normalised search crops.
    pub search: Tensor,
    /// (B, 4) target box x, y, w, h as fractions of the search crop.
    pub boxes: Tensor,
    /// (B, 1, F, F) Gaussian score targets.
    pub maps: Tensor,
}

impl Batch {
    /// The same batch on `device` (the sampler builds it on the CPU).
    pub fn to_device(self, device: tch::Device) -> Self {
        if device == tch::Device::Cpu {
            return self;
        }
        Self {
            template: self.template.to_device(device),
            search: self.search.to_device(device),
            boxes: self.boxes.to_device(device),
            maps: self.maps.to_device(device),
        }
    }
}

/// Draws batches from a frame source.
pub struct Sampler<S: FrameSource> {
    pub source: S,
    pub cfg: SamplerConfig,
    rng: Rng,
    template_size: usize,
    search_size: usize,
    feat: usize,
}

impl<S: FrameSource> Sampler<S> {
    pub fn new(
        source: S,
        cfg: SamplerConfig,
        seed: u64,
        template_size: usize,
        search_size: usize,
        feat: usize,
    ) -> Self {
        Self { source, cfg, rng: Rng::new(seed), template_size, search_size, feat }
    }

    /// One pair: (template patch, search patch, box in the search crop), or None when the drawn
    /// frames have no valid box or the jittered crop lost the target.
    fn pair(&mut self) -> Result<Option<(ImageU8, ImageU8, [f64; 4])>, SampleError> {
        let n = self.source.num_sequences();
        let seq = self.rng.below(n);
        let len = self.source.num_frames(seq);
        if len == 0 {
            return Ok(None);
        }
        let tz = self.rng.below(len);
        let gap = self.cfg.max_gap as i64;
        let tx = (tz as i64 + self.rng.below(2 * gap as usize + 1) as i64 - gap).clamp(0, len as i64 - 1) as usize;
        let (fz, bz) = self.source.frame(seq, tz)?;
        let (fx, bx) = if tx == tz { (fz.clone(), bz) } else { self.source.frame(seq, tx)? };
        let (Some(bz), Some(bx)) = (bz, bx) else { return Ok(None) };
        let z = sample_target(&fz, bz.to_array(), self.cfg.template_factor, self.template_size)?;
        // Jitter as OSTrack's `_get_jittered_box`.
        let sw = bx.w * (self.rng.normal() * self.cfg.scale_jitter).exp();
        let sh = bx.h * (self.rng.normal() * self.cfg.scale_jitter).exp();
        let max_offset = (sw * sh).sqrt() * self.cfg.center_jitter;
        let (cx, cy) = bx.center();
        let jcx = cx + max_offset * (self.rng.uniform() - 0.5);
        let jcy = cy + max_offset * (self.rng.uniform() - 0.5);
        let jittered = [jcx - sw / 2.0, jcy - sh / 2.0, sw, sh];
        let x = sample_target(&fx, jittered, self.cfg.search_factor, self.search_size)?;
        let rf = x.resize_factor;
        let out = self.search_size as f64;
        let b = [
            (bx.x - x.window.x1_px as f64) * rf / out,
            (bx.y - x.window.y1_px as f64) * rf / out,
            bx.w * rf / out,
            bx.h * rf / out,
        ];
        let (ccx, ccy) = (b[0] + b[2] / 2.0, b[1] + b[3] / 2.0);
        if !(0.0..1.0).contains(&ccx) || !(0.0..1.0).contains(&ccy) {
            return Ok(None);
        }
        Ok(Some((z.patch, x.patch, b)))
    }

    /// A batch of `size` pairs.
    pub fn batch(&mut self, size: usize) -> Result<Batch, SampleError> {
        let (t, s, f) = (self.template_size as i64, self.search_size as i64, self.feat);
        let mut zs = Vec::with_capacity(size * 6 * (t * t) as usize);
        let mut xs = Vec::with_capacity(size * 6 * (s * s) as usize);
        let mut boxes = Vec::with_capacity(size * 4);
        let mut maps = Vec::with_capacity(size * f * f);
        let mut buf = Vec::new();
        let mut tries = 0;
        let mut got = 0;
        while got < size {
            tries += 1;
            if tries > 50 * size {
                return Err(SampleError::NoPair(tries));
            }
            let Some((z, x, b)) = self.pair()? else { continue };
            normalize_into(&z, &mut buf)?;
            zs.extend_from_slice(&buf);
            normalize_into(&x, &mut buf)?;
            xs.extend_from_slice(&buf);
            boxes.extend(b.iter().map(|&v| v as f32));
            maps.extend(gaussian_target(b, f));
            got += 1;
        }
        let b = size as i64;
        Ok(Batch {
            template: Tensor::from_slice(&zs).view([b, 6, t, t]),
            search: Tensor::from_slice(&xs).view([b, 6, s, s]),
            boxes: Tensor::from_slice(&boxes).view([b, 4]),
            maps: Tensor::from_slice(&maps).view([b, 1, f as i64, f as i64]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_jitter_the_target_sits_in_the_middle_of_the_search_crop() {
        let cfg = SamplerConfig { scale_jitter: 0.0, center_jitter: 0.0, max_gap: 0, ..Default::default() };
        let source = SynthSource::new(5, vec![Modality::Thermal], 3, 20, false);
        let mut sampler = Sampler::new(source, cfg, 7, 64, 128, 8);
        for _ in 0..10 {
            let (z, x, b) = sampler.pair().unwrap().expect("an unjittered pair is always valid");
            assert_eq!((z.width, z.height, z.channels), (64, 64, 6));
            assert_eq!((x.width, x.height, x.channels), (128, 128, 6));
            // The crop side is 4 sqrt(w h) (rounded to whole pixels), so the box spans
            // w / (4 sqrt(w h)) of it and is centred up to the crop's pixel rounding.
            let (cx, cy) = (b[0] + b[2] / 2.0, b[1] + b[3] / 2.0);
            assert!((cx - 0.5).abs() < 0.02 && (cy - 0.5).abs() < 0.02, "{b:?}");
            let area = (b[2] * b[3]).sqrt();
            assert!((area - 0.25).abs() < 0.01, "{b:?}");
        }
        let batch = sampler.batch(3).unwrap();
        assert_eq!(batch.template.size(), [3, 6, 64, 64]);
        assert_eq!(batch.search.size(), [3, 6, 128, 128]);
        assert_eq!(batch.maps.size(), [3, 1, 8, 8]);
        // Every score target has its peak of 1 at the centre cell (4, 4).
        let peaks: Vec<f32> = Vec::try_from(batch.maps.select(2, 4).select(2, 4).flatten(0, -1)).unwrap();
        assert_eq!(peaks, vec![1.0; 3]);
    }
}
