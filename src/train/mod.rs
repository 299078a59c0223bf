//! Progressive adaptation training (the paper's method) on the same network code as inference.
//!
//! 1. **Base**: the RGB-only tracker of the configured size (`rgb_only`: OSTrack-style, template
//!    and search tokens in one stream, no adapters) trained on RGB sequences.
//! 2. **Adapt**: the base frozen; the modality-dependent (`adap_t`, `adap2_t`), modality-entangled
//!    (`highfuseadapter*`) and task-level (`adapter_head`) adapters added and trained on RGB+X
//!    pairs. The trainable set is every variable whose official name contains `adap`, the rule of
//!    the official code (`lib/train/base_functions.py`).
//!
//! Losses as OSTrack (focal + 2 GIoU + 5 L1), AdamW, gradient-norm clipping, linear warm-up and a
//! x0.1 step decay. Checkpoints are `.safetensors` with the official key names and the recorded
//! configuration, so `--model` loads them directly.

pub mod heldout;
pub mod loss;
pub mod sampler;
pub mod synth;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::device::Precision;
use crate::model::{self, ModelConfig, PATrack};
use sampler::{FrameSource, Sampler, SamplerConfig};

/// Which stage of the progressive scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The RGB-only base tracker.
    Base,
    /// Adapters on the frozen base, for one RGB+X modality.
    Adapt,
}

/// Optimisation settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub stage: Stage,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    /// Fraction of the steps after which the learning rate drops x0.1 (OSTrack: epoch 240 of 300).
    pub lr_drop_at: f64,
    pub grad_clip: f64,
    pub seed: u64,
    pub checkpoint_every: usize,
    pub sampler: SamplerConfig,
}

impl TrainConfig {
    pub fn lr_at(&self, step: usize) -> f64 {
        let warm = if step < self.warmup_steps { (step + 1) as f64 / self.warmup_steps as f64 } else { 1.0 };
        let drop = if (step as f64) >= self.lr_drop_at * self.steps as f64 { 0.1 } else { 1.0 };
        self.lr * warm * drop
    }
}

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Sample(#[from] sampler::SampleError),
    #[error(transparent)]
    Load(#[from] model::LoadError),
    #[error(transparent)]
    Model(#[from] model::ModelError),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("loss became {0} at step {1}: lower the learning rate")]
    Diverged(f64, usize),
}

/// True for the variables the adapter stage trains (official rule: the name contains `adap`).
pub fn is_adapter_key(name: &str) -> bool {
    name.contains("adap")
}

/// The adapted network on the frozen base: every base variable copied from `base`, the adapters
/// initialised so that training starts from the base's behaviour (Mixer and PSFM outputs zero; the
/// head adapter the map `0.5 (LN(x) + LN(xi))`, i.e. the average of the two streams, when its
/// width equals the embedding width), every non-adapter variable frozen.
pub fn adapted_from_base(base: &PATrack, device: Device) -> Result<PATrack, TrainError> {
    if !base.cfg.rgb_only {
        return Err(TrainError::Invalid("the base model must be an RGB-only model (rgb_only: true)".into()));
    }
    let cfg = ModelConfig { rgb_only: false, ..base.cfg.clone() };
    let model = PATrack::new(cfg, device, Precision::Fp32)?;
    let base_vars = base.vs.variables();
    let c = model.cfg.embed_dim;
    let _guard = tch::no_grad_guard();
    for (name, mut var) in model.vs.variables() {
        if let Some(src) = base_vars.get(&name) {
            var.copy_(src);
            let _ = var.set_requires_grad(false);
        } else if !is_adapter_key(&name) {
            // Adapter-side norms (norml1/norml2) keep their identity init, frozen as officially.
            let _ = var.set_requires_grad(false);
        } else if name.ends_with("adap_t.proj.weight")
            || name.ends_with("adap_t.proj.bias")
            || name.ends_with("adap2_t.proj.weight")
            || name.ends_with("adap2_t.proj.bias")
            || name.ends_with(".up.weight")
        {
            let _ = var.zero_();
        } else if name.starts_with("adapter_head.") && model.cfg.head_adapter_dim == c {
            if name.ends_with(".bias") {
                let _ = var.zero_();
            } else {
                let eye = Tensor::eye(c, (Kind::Float, device));
                let scale = if name.contains("adapter_up") { 0.5 } else { 1.0 };
                var.copy_(&(eye * scale));
            }
        }
    }
    Ok(model)
}

/// What one step reports.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StepLog {
    pub step: usize,
    pub lr: f64,
    pub loss: f64,
    pub giou: f64,
    pub l1: f64,
    pub focal: f64,
    pub iou: f64,
}

/// Training state written beside each checkpoint, for `--resume`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub config: TrainConfig,
}

/// Trains `model` in place for `cfg.steps` steps from `start_step`, writing checkpoints and the
/// loss log under `out`. `on_step` sees every step (progress bars).
pub fn train<S: FrameSource>(
    model: &mut PATrack,
    sampler: &mut Sampler<S>,
    cfg: &TrainConfig,
    start_step: usize,
    out: &Path,
    mut on_step: impl FnMut(&StepLog),
) -> Result<(), TrainError> {
    std::fs::create_dir_all(out).map_err(|cause| TrainError::Io { path: out.into(), cause })?;
    let mut opt = nn::AdamW { wd: cfg.weight_decay, ..Default::default() }.build(&model.vs, cfg.lr)?;
    let log_path = out.join("loss.csv");
    let mut log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|cause| TrainError::Io { path: log_path.clone(), cause })?;
    if start_step == 0 {
        log_file.set_len(0).map_err(|cause| TrainError::Io { path: log_path.clone(), cause })?;
        writeln!(log_file, "step,lr,loss,giou,l1,focal,iou")
            .map_err(|cause| TrainError::Io { path: log_path.clone(), cause })?;
    }
    let t0 = Instant::now();
    for step in start_step..cfg.steps {
        let lr = cfg.lr_at(step);
        opt.set_lr(lr);
        let batch = sampler.batch(cfg.batch)?.to_device(model.device());
        let outputs = model.forward(&batch.template, &batch.search);
        let l = loss::losses(&outputs, &batch.boxes, &batch.maps);
        let total = l.total.double_value(&[]);
        if !total.is_finite() {
            return Err(TrainError::Diverged(total, step));
        }
        opt.zero_grad();
        l.total.backward();
        opt.clip_grad_norm(cfg.grad_clip);
        opt.step();
        let entry =
            StepLog { step: step + 1, lr, loss: total, giou: l.giou, l1: l.l1, focal: l.focal, iou: l.mean_iou };
        writeln!(
            log_file,
            "{},{:.3e},{:.5},{:.5},{:.5},{:.5},{:.4}",
            entry.step, lr, total, l.giou, l.l1, l.focal, l.mean_iou
        )
        .map_err(|cause| TrainError::Io { path: log_path.clone(), cause })?;
        on_step(&entry);
        let done = step + 1;
        if done == cfg.steps || (cfg.checkpoint_every > 0 && done.is_multiple_of(cfg.checkpoint_every)) {
            save_checkpoint(model, cfg, done, out)?;
        }
    }
    log::info!("trained {} steps in {:.0} s", cfg.steps.saturating_sub(start_step), t0.elapsed().as_secs_f64());
    Ok(())
}

/// Writes `out/model.safetensors` (and the state for `--resume`) atomically.
pub fn save_checkpoint(model: &PATrack, cfg: &TrainConfig, step: usize, out: &Path) -> Result<(), TrainError> {
    let tmp = out.join("model.safetensors.tmp");
    model::load::save_file(model, &tmp)?;
    let path = out.join("model.safetensors");
    std::fs::rename(&tmp, &path).map_err(|cause| TrainError::Io { path: path.clone(), cause })?;
    let state = TrainState { step, config: cfg.clone() };
    let state_path = out.join("train_state.json");
    let text = serde_json::to_string_pretty(&state).map_err(|e| TrainError::Invalid(e.to_string()))?;
    std::fs::write(&state_path, text).map_err(|cause| TrainError::Io { path: state_path, cause })?;
    Ok(())
}

/// Reads `loss.csv` back as (step, loss, iou) rows.
pub fn read_loss_log(path: &Path) -> Result<Vec<(usize, f64, f64)>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|cause| TrainError::Io { path: path.into(), cause })?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.first()?.parse().ok()?, f.get(2)?.parse().ok()?, f.get(6)?.parse().ok()?))
        })
        .collect())
}

/// The loss curve and the batch IoU (moving averages over 2 % of the steps) as a PNG.
pub fn plot_loss(rows: &[(usize, f64, f64)], title: &str, path: &Path) -> Result<(), TrainError> {
    use crate::eval::plot::{draw_curves_to, Curve};
    if rows.is_empty() {
        return Err(TrainError::Invalid("no steps logged".into()));
    }
    let window = (rows.len() / 50).max(1);
    let smooth = |f: &dyn Fn(&(usize, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        rows.windows(window).map(|w| (w[w.len() - 1].0 as f64, w.iter().map(f).sum::<f64>() / w.len() as f64)).collect()
    };
    let loss = smooth(&|r| r.1);
    let y_max = loss.iter().map(|p| p.1).fold(1.0, f64::max) * 1.05;
    let curves = [
        Curve { label: "loss (focal + 2 GIoU + 5 L1)".into(), points: loss },
        Curve { label: "batch IoU".into(), points: smooth(&|r| r.2) },
    ];
    draw_curves_to(path, title, ("step", "loss / IoU"), (rows[rows.len() - 1].0 as f64, y_max), &curves)
        .map_err(|e| TrainError::Invalid(e.to_string()))
}
