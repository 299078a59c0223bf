//! Training pairs as OSTrack's / PATrack's sampler and processing make them
//! (`lib/train/data/sampler.py`, `processing.py`, `transforms.py`): a template frame and a search
//! frame of one sequence; the template cropped around its box (factor 2, no jitter), the search
//! frame around a jittered box (scale `exp(N(0, 0.25))`, centre moved uniformly by up to
//! `3 sqrt(w h) / 2`, factor 4); the search crop's target box as fractions of the crop and its
//! Gaussian score target.
//!
//! Frame choice: by default the search frame is at most `max_gap` frames before or after the
//! template frame. With `causal` (the paper's recipe) it is the official `causal` mode: the
//! template frame is a frame with a usable target (not the last), the search frame a later one
//! with a usable target less than `max_gap` frames after it, the gap widened by 5 frames each
//! time no such frame exists. Optional augmentations of the official training transform:
//! brightness jitter (`ToTensorAndJitter(0.2)`: every channel times one factor uniform in
//! `[0.8, 1.2]`, clamped) and horizontal flips (`RandomHorizontalFlip_Norm(0.5)`), each drawn
//! separately for the template and the search crop, as the official transform is applied to
//! each.
//!
//! Each pair of a batch has its own random stream, seeded in order from the sampler's
//! generator, so a batch is the same whatever the number of worker threads that build it, and a
//! resumed run (the generator's state is saved with the checkpoint) draws what an uninterrupted
//! one would.

use std::sync::{Arc, Mutex};

use tch::Tensor;

use super::loss::gaussian_target;
use super::splits::{TrainingSequence, TrainingSet};
use super::synth::{scene_for, Rng, Scene};
use crate::eval::layout::LayoutError;
use crate::sensor::{self, AuxConfig, ImageU8, Modality};
use crate::tracker::preprocess::{normalize_into, sample_target, PreprocessError, IMAGENET_MEAN, IMAGENET_STD};
use crate::tracker::BoxXywh;

/// Where training frames come from. Worker threads each hold a clone.
pub trait FrameSource: Clone + Send {
    fn num_sequences(&self) -> usize;
    fn num_frames(&self, seq: usize) -> usize;
    /// Which frames of sequence `seq` hold a usable target (the official `visible`).
    fn visible(&self, seq: usize) -> &[bool];
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
    #[error("a sampling worker thread panicked")]
    Worker,
}

/// Synthetic scenes of one modality (or of all three, cycling, for the RGB-only base), built on
/// first use and shared by the clones.
#[derive(Clone)]
pub struct SynthSource {
    seed: u64,
    modalities: Vec<Modality>,
    scenes: Arc<Mutex<Vec<Option<Arc<Scene>>>>>,
    count: usize,
    frames: usize,
    all_visible: Vec<bool>,
    normal_only: bool,
}

impl SynthSource {
    /// `normal_only`: only RGB-normal scenes (the base tracker's RGB training data, as RGB
    /// datasets hold); otherwise half of the scenes are RGB-hard (see [`scene_for`]).
    pub fn new(seed: u64, modalities: Vec<Modality>, sequences: usize, frames: usize, normal_only: bool) -> Self {
        Self {
            seed,
            modalities,
            scenes: Arc::new(Mutex::new(vec![None; sequences])),
            count: sequences,
            frames,
            all_visible: vec![true; frames],
            normal_only,
        }
    }

    fn scene(&self, seq: usize) -> Arc<Scene> {
        let cached = self.scenes.lock().ok().and_then(|s| s[seq].clone());
        if let Some(scene) = cached {
            return scene;
        }
        let modality = self.modalities[seq % self.modalities.len()];
        let index = if self.normal_only { 2 * seq } else { seq };
        // Built outside the lock (pure function of the seed); a race builds the same scene twice.
        let scene = Arc::new(scene_for(self.seed, index, modality));
        if let Ok(mut s) = self.scenes.lock() {
            s[seq] = Some(scene.clone());
        }
        scene
    }
}

impl FrameSource for SynthSource {
    fn num_sequences(&self) -> usize {
        self.count
    }

    fn num_frames(&self, _seq: usize) -> usize {
        self.frames
    }

    fn visible(&self, _seq: usize) -> &[bool] {
        &self.all_visible
    }

    fn frame(&mut self, seq: usize, t: usize) -> Result<(ImageU8, Option<BoxXywh>), SampleError> {
        let scene = self.scene(seq);
        let f = scene.render(t);
        let frame = sensor::prepare_frame(&f.rgb, f.aux, scene.modality, &AuxConfig::default())?;
        Ok((frame, Some(f.bbox)))
    }
}

/// Sequences of a training set in its published layout ([`super::splits`]).
#[derive(Clone)]
pub struct BenchSource {
    seqs: Arc<Vec<TrainingSequence>>,
}

impl BenchSource {
    pub fn new(set: TrainingSet) -> Self {
        Self { seqs: Arc::new(set.sequences) }
    }
}

impl FrameSource for BenchSource {
    fn num_sequences(&self) -> usize {
        self.seqs.len()
    }

    fn num_frames(&self, seq: usize) -> usize {
        self.seqs[seq].seq.len()
    }

    fn visible(&self, seq: usize) -> &[bool] {
        &self.seqs[seq].visible
    }

    fn frame(&mut self, seq: usize, t: usize) -> Result<(ImageU8, Option<BoxXywh>), SampleError> {
        let s = &self.seqs[seq];
        let g = s.seq.gt[t];
        let b = BoxXywh::new(g[0] as f64, g[1] as f64, g[2] as f64, g[3] as f64);
        let valid = s.visible[t] && b.is_finite() && b.w > 0.0 && b.h > 0.0;
        Ok((s.seq.frame(t)?, valid.then_some(b)))
    }
}

/// Pair sampling settings. The defaults are OSTrack's crop and jitter settings with a 30-frame
/// symmetric gap and no augmentation (the demo models' training); [`SamplerConfig::paper`] is
/// the paper's recipe.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplerConfig {
    pub template_factor: f64,
    pub search_factor: f64,
    pub scale_jitter: f64,
    pub center_jitter: f64,
    pub max_gap: usize,
    /// The official `causal` frame choice (search frame after the template frame).
    #[serde(default)]
    pub causal: bool,
    /// Brightness jitter: factor uniform in `[max(0, 1 - j), 1 + j]` (official: 0.2).
    #[serde(default)]
    pub brightness_jitter: f64,
    /// Probability of a horizontal flip of each crop (official: 0.5).
    #[serde(default)]
    pub flip_probability: f64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            template_factor: 2.0,
            search_factor: 4.0,
            scale_jitter: 0.25,
            center_jitter: 3.0,
            max_gap: 30,
            causal: false,
            brightness_jitter: 0.0,
            flip_probability: 0.0,
        }
    }
}

impl SamplerConfig {
    /// PATrack's training data settings (`experiments/patrack/*.yaml`, `base_functions.py`):
    /// `MAX_SAMPLE_INTERVAL` 200, causal frame choice, brightness jitter 0.2, flips 0.5.
    pub fn paper() -> Self {
        Self { max_gap: 200, causal: true, brightness_jitter: 0.2, flip_probability: 0.5, ..Self::default() }
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

/// Crop sizes of the network.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    template: usize,
    search: usize,
    feat: usize,
}

/// One training pair before normalisation.
pub struct Pair {
    pub template: ImageU8,
    pub search: ImageU8,
    /// The target in the search crop, x, y, w, h as fractions.
    pub search_box: [f64; 4],
    /// Brightness factors of the two crops (1: unchanged).
    pub template_gain: f64,
    pub search_gain: f64,
}

/// One pair's normalised values.
struct Slot {
    template: Vec<f32>,
    search: Vec<f32>,
    search_box: [f32; 4],
    map: Vec<f32>,
}

/// Draws batches from a frame source.
pub struct Sampler<S: FrameSource> {
    /// One source per worker thread (clones of the first).
    sources: Vec<S>,
    pub cfg: SamplerConfig,
    rng: Rng,
    sizes: Sizes,
}

/// Tries per pair before giving up (a drawn pair is refused when its frames have no usable box
/// or the jittered crop loses the target's centre).
const TRIES_PER_PAIR: usize = 50;

impl<S: FrameSource> Sampler<S> {
    pub fn new(
        source: S,
        cfg: SamplerConfig,
        seed: u64,
        template_size: usize,
        search_size: usize,
        feat: usize,
    ) -> Self {
        let sizes = Sizes { template: template_size, search: search_size, feat };
        Self { sources: vec![source], cfg, rng: Rng::new(seed), sizes }
    }

    /// Builds batches on `workers` threads (1: on the caller's thread). The batches are the same
    /// for any number.
    pub fn with_workers(mut self, workers: usize) -> Self {
        let first = self.sources[0].clone();
        self.sources.resize(workers.max(1), first);
        self
    }

    pub fn source(&self) -> &S {
        &self.sources[0]
    }

    /// The generator's state (saved with checkpoints).
    pub fn rng_state(&self) -> u64 {
        self.rng.state()
    }

    /// Continues from a saved [`rng_state`](Self::rng_state).
    pub fn set_rng_state(&mut self, state: u64) {
        self.rng = Rng::from_state(state);
    }

    /// One pair drawn with `rng` from `source`, or None when the drawn frames have no valid box
    /// or the jittered crop lost the target.
    pub fn pair(&mut self, rng: &mut Rng) -> Result<Option<Pair>, SampleError> {
        draw_pair(&mut self.sources[0], rng, &self.cfg, self.sizes)
    }

    /// A batch of `size` pairs.
    pub fn batch(&mut self, size: usize) -> Result<Batch, SampleError> {
        let seeds: Vec<u64> = (0..size).map(|_| self.rng.next_u64()).collect();
        let (cfg, sizes) = (&self.cfg, self.sizes);
        let slots: Vec<Slot> = if self.sources.len() == 1 || size == 1 {
            seeds.iter().map(|&seed| build_slot(&mut self.sources[0], seed, cfg, sizes)).collect::<Result<_, _>>()?
        } else {
            let workers = self.sources.len();
            let seeds = &seeds;
            let mut parts: Vec<Vec<(usize, Result<Slot, SampleError>)>> = std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .sources
                    .iter_mut()
                    .enumerate()
                    .map(|(w, source)| {
                        scope.spawn(move || {
                            (w..seeds.len())
                                .step_by(workers)
                                .map(|i| (i, build_slot(source, seeds[i], cfg, sizes)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().map_err(|_| SampleError::Worker)).collect::<Result<_, _>>()
            })?;
            let mut ordered: Vec<Option<Result<Slot, SampleError>>> = (0..size).map(|_| None).collect();
            for (i, r) in parts.drain(..).flatten() {
                ordered[i] = Some(r);
            }
            ordered.into_iter().map(|r| r.unwrap_or(Err(SampleError::Worker))).collect::<Result<_, _>>()?
        };
        let (t, s, f) = (sizes.template as i64, sizes.search as i64, sizes.feat as i64);
        let b = size as i64;
        let cat =
            |get: &dyn Fn(&Slot) -> &[f32]| -> Vec<f32> { slots.iter().flat_map(|x| get(x).iter().copied()).collect() };
        Ok(Batch {
            template: Tensor::from_slice(&cat(&|x| &x.template)).view([b, 6, t, t]),
            search: Tensor::from_slice(&cat(&|x| &x.search)).view([b, 6, s, s]),
            boxes: Tensor::from_slice(&cat(&|x| &x.search_box)).view([b, 4]),
            maps: Tensor::from_slice(&cat(&|x| &x.map)).view([b, 1, f, f]),
        })
    }
}

/// One slot of a batch: pairs drawn from the slot's own stream until one is valid, normalised.
fn build_slot<S: FrameSource>(
    source: &mut S,
    seed: u64,
    cfg: &SamplerConfig,
    sizes: Sizes,
) -> Result<Slot, SampleError> {
    let mut rng = Rng::new(seed);
    for _ in 0..TRIES_PER_PAIR {
        let Some(p) = draw_pair(source, &mut rng, cfg, sizes)? else { continue };
        let mut template = Vec::new();
        let mut search = Vec::new();
        normalize_gain_into(&p.template, p.template_gain, &mut template)?;
        normalize_gain_into(&p.search, p.search_gain, &mut search)?;
        return Ok(Slot {
            template,
            search,
            search_box: p.search_box.map(|v| v as f32),
            map: gaussian_target(p.search_box, sizes.feat),
        });
    }
    Err(SampleError::NoPair(TRIES_PER_PAIR))
}

/// The official training transform's normalisation with a brightness factor:
/// `clamp(v * gain / 255, 0, 1)`, then ImageNet mean/std (per RGB channel, repeated for the aux
/// channels as for inference). A gain of 1 is the inference normalisation, bit for bit.
fn normalize_gain_into(patch: &ImageU8, gain: f64, out: &mut Vec<f32>) -> Result<(), PreprocessError> {
    if gain == 1.0 {
        return normalize_into(patch, out);
    }
    normalize_into(patch, out)?;
    let scale = (gain / 255.0) as f32;
    let plane = patch.width * patch.height;
    for (c, out_plane) in out.chunks_exact_mut(plane).enumerate() {
        let (mean, std) = (IMAGENET_MEAN[c % 3], IMAGENET_STD[c % 3]);
        for (o, px) in out_plane.iter_mut().zip(patch.data.chunks_exact(patch.channels)) {
            *o = ((f32::from(px[c]) * scale).clamp(0.0, 1.0) - mean) / std;
        }
    }
    Ok(())
}

/// The template and search frame indices: symmetric within `max_gap`, or causal (module doc).
fn choose_frames<S: FrameSource>(source: &S, seq: usize, rng: &mut Rng, cfg: &SamplerConfig) -> Option<(usize, usize)> {
    let len = source.num_frames(seq);
    if len == 0 {
        return None;
    }
    if !cfg.causal {
        let tz = rng.below(len);
        let gap = cfg.max_gap as i64;
        let tx = (tz as i64 + rng.below(2 * cfg.max_gap + 1) as i64 - gap).clamp(0, len as i64 - 1) as usize;
        return Some((tz, tx));
    }
    let visible = source.visible(seq);
    if visible.len() < 20 || visible.iter().filter(|&&v| v).count() <= 4 {
        return None;
    }
    let bases: Vec<usize> = (0..len - 1).filter(|&i| visible[i]).collect();
    let mut gap_increase = 0;
    loop {
        let tz = *bases.get(rng.below(bases.len()))?;
        let end = (tz + cfg.max_gap + gap_increase).min(len);
        let later: Vec<usize> = (tz + 1..end).filter(|&i| visible[i]).collect();
        if !later.is_empty() {
            return Some((tz, later[rng.below(later.len())]));
        }
        gap_increase += 5;
        if gap_increase > len {
            return None;
        }
    }
}

fn flip_patch(patch: &mut ImageU8) {
    let (w, c) = (patch.width, patch.channels);
    for row in patch.data.chunks_exact_mut(w * c) {
        for x in 0..w / 2 {
            for k in 0..c {
                row.swap(x * c + k, (w - 1 - x) * c + k);
            }
        }
    }
}

fn draw_pair<S: FrameSource>(
    source: &mut S,
    rng: &mut Rng,
    cfg: &SamplerConfig,
    sizes: Sizes,
) -> Result<Option<Pair>, SampleError> {
    let n = source.num_sequences();
    let seq = rng.below(n);
    let Some((tz, tx)) = choose_frames(source, seq, rng, cfg) else { return Ok(None) };
    let (fz, bz) = source.frame(seq, tz)?;
    let (fx, bx) = if tx == tz { (fz.clone(), bz) } else { source.frame(seq, tx)? };
    let (Some(bz), Some(bx)) = (bz, bx) else { return Ok(None) };
    let z = sample_target(&fz, bz.to_array(), cfg.template_factor, sizes.template)?;
    // Jitter as OSTrack's `_get_jittered_box`.
    let sw = bx.w * (rng.normal() * cfg.scale_jitter).exp();
    let sh = bx.h * (rng.normal() * cfg.scale_jitter).exp();
    let max_offset = (sw * sh).sqrt() * cfg.center_jitter;
    let (cx, cy) = bx.center();
    let jcx = cx + max_offset * (rng.uniform() - 0.5);
    let jcy = cy + max_offset * (rng.uniform() - 0.5);
    let jittered = [jcx - sw / 2.0, jcy - sh / 2.0, sw, sh];
    let x = sample_target(&fx, jittered, cfg.search_factor, sizes.search)?;
    let rf = x.resize_factor;
    let out = sizes.search as f64;
    let mut b = [
        (bx.x - x.window.x1_px as f64) * rf / out,
        (bx.y - x.window.y1_px as f64) * rf / out,
        bx.w * rf / out,
        bx.h * rf / out,
    ];
    let (ccx, ccy) = (b[0] + b[2] / 2.0, b[1] + b[3] / 2.0);
    if !(0.0..1.0).contains(&ccx) || !(0.0..1.0).contains(&ccy) {
        return Ok(None);
    }
    let (mut template, mut search) = (z.patch, x.patch);
    let mut gains = [1.0, 1.0];
    if cfg.brightness_jitter > 0.0 || cfg.flip_probability > 0.0 {
        let j = cfg.brightness_jitter;
        for (k, patch) in [&mut template, &mut search].into_iter().enumerate() {
            if j > 0.0 {
                gains[k] = rng.range((1.0 - j).max(0.0), 1.0 + j);
            }
            if cfg.flip_probability > 0.0 && rng.uniform() < cfg.flip_probability {
                flip_patch(patch);
                if k == 1 {
                    // RandomHorizontalFlip_Norm: x -> 1 - x on the box's corners.
                    b[0] = 1.0 - b[0] - b[2];
                }
            }
        }
    }
    Ok(Some(Pair { template, search, search_box: b, template_gain: gains[0], search_gain: gains[1] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_jitter_the_target_sits_in_the_middle_of_the_search_crop() {
        let cfg = SamplerConfig { scale_jitter: 0.0, center_jitter: 0.0, max_gap: 0, ..Default::default() };
        let source = SynthSource::new(5, vec![Modality::Thermal], 3, 20, false);
        let mut sampler = Sampler::new(source, cfg, 7, 64, 128, 8);
        let mut rng = Rng::new(3);
        for _ in 0..10 {
            let p = sampler.pair(&mut rng).unwrap().expect("an unjittered pair is always valid");
            let (z, x, b) = (p.template, p.search, p.search_box);
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

    /// A source whose target is usable only in the listed frames.
    #[derive(Clone)]
    struct Marked(Vec<bool>);

    impl FrameSource for Marked {
        fn num_sequences(&self) -> usize {
            1
        }
        fn num_frames(&self, _: usize) -> usize {
            self.0.len()
        }
        fn visible(&self, _: usize) -> &[bool] {
            &self.0
        }
        fn frame(&mut self, _: usize, _: usize) -> Result<(ImageU8, Option<BoxXywh>), SampleError> {
            unreachable!("choose_frames reads no frame")
        }
    }

    #[test]
    fn causal_frames_follow_the_template_within_the_gap_and_skip_unusable_ones() {
        let cfg = SamplerConfig { causal: true, max_gap: 10, ..Default::default() };
        let mut visible = vec![true; 60];
        for i in (0..60).step_by(3) {
            visible[i] = false;
        }
        let source = Marked(visible.clone());
        let mut rng = Rng::new(9);
        let mut gaps = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let (tz, tx) = choose_frames(&source, 0, &mut rng, &cfg).unwrap();
            assert!(visible[tz] && visible[tx], "{tz} {tx}");
            assert!(tx > tz && tx < tz + 10, "{tz} {tx}");
            assert!(tz < 59);
            gaps.insert(tx - tz);
        }
        // Every gap from 1 to 9 occurs (those landing on unusable frames excepted by position).
        assert_eq!(gaps.into_iter().collect::<Vec<_>>(), (1..10).collect::<Vec<_>>());
        // Usable frames 25 frames apart: the gap widens by 5 until the next one is reached.
        let mut sparse = vec![false; 60];
        sparse[..3].iter_mut().for_each(|v| *v = true);
        sparse[30] = true;
        sparse[59] = true;
        let (tz, tx) = choose_frames(&Marked(sparse.clone()), 0, &mut Rng::new(1), &cfg).unwrap();
        assert!(sparse[tz] && sparse[tx] && tx > tz, "{tz} {tx}");
        // Too few usable frames: the sequence is not drawn from.
        assert!(choose_frames(&Marked(vec![true; 19]), 0, &mut rng, &cfg).is_none());
        let mut four = vec![false; 40];
        four[..4].iter_mut().for_each(|v| *v = true);
        assert!(choose_frames(&Marked(four), 0, &mut rng, &cfg).is_none());
    }

    #[test]
    fn flips_mirror_the_crop_and_the_box_and_brightness_scales_before_clamping() {
        let mut patch = ImageU8 { width: 3, height: 1, channels: 2, data: vec![1, 2, 3, 4, 5, 6] };
        flip_patch(&mut patch);
        assert_eq!(patch.data, vec![5, 6, 3, 4, 1, 2]);
        let grey = ImageU8 { width: 2, height: 1, channels: 6, data: vec![100; 12].into_iter().chain([]).collect() };
        let mut plain = Vec::new();
        let mut bright = Vec::new();
        normalize_gain_into(&grey, 1.0, &mut plain).unwrap();
        normalize_gain_into(&grey, 1.2, &mut bright).unwrap();
        for c in 0..6 {
            let want = ((100.0f32 * (1.2 / 255.0) as f32).clamp(0.0, 1.0) - IMAGENET_MEAN[c % 3]) / IMAGENET_STD[c % 3];
            assert_eq!(bright[2 * c], want);
            assert!(bright[2 * c] > plain[2 * c]);
        }
        // Saturation: 250 * 1.2 / 255 > 1 is clamped to 1.
        let white = ImageU8 { width: 1, height: 1, channels: 6, data: vec![250; 6] };
        normalize_gain_into(&white, 1.2, &mut bright).unwrap();
        assert_eq!(bright[0], (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]);
    }

    #[test]
    fn a_batch_is_the_same_on_any_number_of_workers() {
        let cfg = SamplerConfig::paper();
        let source = SynthSource::new(5, vec![Modality::Depth], 4, 30, false);
        let mut one = Sampler::new(source.clone(), cfg.clone(), 7, 64, 128, 8);
        let mut three = Sampler::new(source, cfg, 7, 64, 128, 8).with_workers(3);
        for _ in 0..2 {
            let (a, b) = (one.batch(5).unwrap(), three.batch(5).unwrap());
            assert!(a.template.equal(&b.template) && a.search.equal(&b.search));
            assert!(a.boxes.equal(&b.boxes) && a.maps.equal(&b.maps));
        }
        assert_eq!(one.rng_state(), three.rng_state());
    }
}
