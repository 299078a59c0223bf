//! Progressive adaptation training (the paper's method) on the same network code as inference.
//!
//! 1. **Base**: the RGB-only tracker of the configured size (`rgb_only`: OSTrack-style, template
//!    and search tokens in one stream, no adapters) trained on RGB sequences.
//! 2. **Adapt**: the base frozen; the modality-dependent (`adap_t`, `adap2_t`), modality-entangled
//!    (`highfuseadapter*`) and task-level (`adapter_head`) adapters added and trained on RGB+X
//!    pairs. The trainable set is every variable whose official name contains `adap`, the rule of
//!    the official code (`lib/train/base_functions.py`).
//!
//! Losses as OSTrack (focal + 2 GIoU + 5 L1), AdamW ([`optim`], PyTorch's arithmetic),
//! gradient-norm clipping, optional linear warm-up and a x0.1 step decay, optional stochastic
//! depth and, on CUDA, bf16 autocast with the master weights in fp32. [`TrainConfig::paper`] is
//! the paper's recipe. Checkpoints are `.safetensors` with the official key names and the
//! recorded configuration, so `--model` loads them directly; beside them the optimizer's moments
//! and the random streams' states, so that a resumed run continues exactly where it stopped.

pub mod heldout;
pub mod loss;
pub mod optim;
pub mod sampler;
pub mod splits;
pub mod synth;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::device::Precision;
use crate::model::{self, DropPath, HeadOutput, ModelConfig, PATrack};
use optim::AdamW;
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub stage: Stage,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    /// Fraction of the steps after which the learning rate drops x0.1 (OSTrack: epoch 240 of
    /// 300; PATrack: 48 of 60).
    pub lr_drop_at: f64,
    pub grad_clip: f64,
    pub seed: u64,
    pub checkpoint_every: usize,
    pub sampler: SamplerConfig,
    /// Stochastic depth of the last block (PATrack: 0.1; 0: off).
    #[serde(default)]
    pub drop_path: f64,
    /// bf16 autocast on CUDA (the master weights stay fp32); ignored on the CPU.
    #[serde(default)]
    pub autocast_bf16: bool,
    /// Validate every N steps (0: never).
    #[serde(default)]
    pub val_every: usize,
}

/// The paper's numbers (`experiments/patrack/*.yaml`): 60 epochs of 60 000 pairs at batch 32.
pub mod recipe {
    pub const EPOCHS: usize = 60;
    pub const PAIRS_PER_EPOCH: usize = 60_000;
    pub const BATCH: usize = 32;
    pub const LR: f64 = 4e-4;
    pub const WEIGHT_DECAY: f64 = 1e-4;
    /// `LR_DROP_EPOCH`: the learning rate is x0.1 from this epoch on (StepLR, stepped per epoch).
    pub const LR_DROP_EPOCH: usize = 48;
    pub const GRAD_CLIP: f64 = 0.1;
    pub const DROP_PATH: f64 = 0.1;
    /// `VAL_EPOCH_INTERVAL`.
    pub const VAL_EPOCHS: usize = 2;
    /// `SAVE_EPOCH_INTERVAL`.
    pub const SAVE_EPOCHS: usize = 1;
}

impl TrainConfig {
    /// The paper's recipe for the adapter stage: 60 epochs x 60 000 pairs at batch 32 (112 500
    /// steps), AdamW lr 4e-4, weight decay 1e-4, x0.1 from epoch 48 (step 90 000), no warm-up,
    /// gradient clip 0.1, drop path 0.1, the official sampling ([`SamplerConfig::paper`]), bf16
    /// autocast on CUDA, a checkpoint every epoch and validation every 2 epochs.
    pub fn paper(seed: u64) -> Self {
        use recipe::*;
        let steps_per_epoch = PAIRS_PER_EPOCH / BATCH;
        Self {
            stage: Stage::Adapt,
            steps: EPOCHS * steps_per_epoch,
            batch: BATCH,
            lr: LR,
            weight_decay: WEIGHT_DECAY,
            warmup_steps: 0,
            lr_drop_at: LR_DROP_EPOCH as f64 / EPOCHS as f64,
            grad_clip: GRAD_CLIP,
            seed,
            checkpoint_every: SAVE_EPOCHS * steps_per_epoch,
            sampler: SamplerConfig::paper(),
            drop_path: DROP_PATH,
            autocast_bf16: true,
            val_every: VAL_EPOCHS * steps_per_epoch,
        }
    }

    /// The first step trained at the dropped learning rate.
    pub fn lr_drop_step(&self) -> usize {
        (self.lr_drop_at * self.steps as f64).round() as usize
    }

    pub fn lr_at(&self, step: usize) -> f64 {
        let warm = if step < self.warmup_steps { (step + 1) as f64 / self.warmup_steps as f64 } else { 1.0 };
        let drop = if step >= self.lr_drop_step() { 0.1 } else { 1.0 };
        self.lr * warm * drop
    }

    /// Checks the numbers; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.steps == 0 || self.batch == 0 {
            return Err("steps and batch must be positive".into());
        }
        for (name, v) in [("lr", self.lr), ("grad_clip", self.grad_clip)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be positive, got {v}"));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!("weight_decay must be zero or positive, got {}", self.weight_decay));
        }
        if !(0.0..=1.0).contains(&self.lr_drop_at) {
            return Err(format!("lr_drop_at must be a fraction of the steps, got {}", self.lr_drop_at));
        }
        if !(0.0..1.0).contains(&self.drop_path) {
            return Err(format!("drop_path must be in [0, 1), got {}", self.drop_path));
        }
        let s = &self.sampler;
        if !(0.0..1.0).contains(&s.brightness_jitter) || !(0.0..=1.0).contains(&s.flip_probability) {
            return Err("brightness jitter must be in [0, 1) and the flip probability in [0, 1]".into());
        }
        Ok(())
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
    #[error("{path}: {cause}")]
    Resume { path: PathBuf, cause: String },
    #[error("validation at step {step}: {cause}")]
    Validation { step: usize, cause: String },
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
    // Candidate elimination is an option of the RGB-only network; PATrack runs without it.
    let cfg = ModelConfig { rgb_only: false, candidate_elimination: None, ..base.cfg.clone() };
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
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// Training state written beside each checkpoint, for `--resume`: with `model.safetensors` and
/// `optimizer.safetensors` (the AdamW moments) it is everything the next step depends on. The
/// learning-rate schedule is a function of the step.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub config: TrainConfig,
    /// The pair sampler's generator.
    pub sampler_rng: u64,
    /// The stochastic-depth generator (absent when drop path is off).
    pub drop_path: Option<DropPath>,
    /// AdamW's step count per trainable variable.
    pub optimizer_steps: BTreeMap<String, u64>,
}

/// File names inside the output folder.
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "train_state.json";
pub const LOSS_FILE: &str = "loss.csv";

/// What a run did.
#[derive(Debug, Clone, Copy)]
pub struct TrainSummary {
    pub first_step: usize,
    pub steps: usize,
    pub seconds: f64,
    /// Training pairs per second over the steps after the first (which includes one-time set-up),
    /// sampling included, checkpoints and validation not; None for a run of one step.
    pub pairs_per_s: Option<f64>,
}

/// Called every `val_every` steps with the step and the network.
pub type Validate<'a> = &'a mut dyn FnMut(usize, &PATrack) -> Result<(), TrainError>;

/// Runs `f` with CUDA autocast in bf16 when `enabled` (the variables stay fp32; matmuls and
/// convolutions run in bf16, reductions in fp32, as `torch.autocast(dtype=torch.bfloat16)`).
pub fn autocast_bf16<T>(enabled: bool, f: impl FnOnce() -> T) -> T {
    if !enabled {
        return f();
    }
    // SAFETY: a plain setter of libtorch's autocast dtype (csrc/shim.cpp).
    unsafe { patrack_autocast_cuda_bf16() };
    tch::autocast(true, f)
}

/// CUDA autocast as libtorch sees it now: off (0), on in bf16 (1), on in another dtype (2).
pub fn autocast_cuda_state() -> i32 {
    // SAFETY: plain getters of libtorch's autocast state.
    unsafe { patrack_autocast_cuda_state() }
}

extern "C" {
    fn patrack_autocast_cuda_bf16();
    fn patrack_autocast_cuda_state() -> libc::c_int;
}

/// Where a run writes and how far it goes.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// Output folder: checkpoint, state, loss log.
    pub out: &'a Path,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    /// Stop after this step (checkpointed) although the schedule goes further: one job of a run
    /// split into several (`--resume` continues it).
    pub stop_at: Option<usize>,
}

/// Trains `model` in place up to `cfg.steps` (or `stop_at`), writing checkpoints and the loss log
/// under `out`; with `resume`, first restores the state saved there (weights, optimizer moments,
/// random streams, step) and continues, so that the result equals an uninterrupted run's.
/// `on_step` sees every step (progress bars); `validate` runs every `cfg.val_every` steps.
pub fn train<S: FrameSource>(
    model: &mut PATrack,
    sampler: &mut Sampler<S>,
    cfg: &TrainConfig,
    run: RunOptions<'_>,
    mut on_step: impl FnMut(&StepLog),
    mut validate: Option<Validate<'_>>,
) -> Result<TrainSummary, TrainError> {
    let RunOptions { out, resume, stop_at } = run;
    let end = stop_at.map_or(cfg.steps, |s| s.min(cfg.steps));
    cfg.validate().map_err(TrainError::Invalid)?;
    if model.cfg.candidate_elimination.is_some() {
        return Err(TrainError::Invalid(
            "candidate elimination is an inference option here; train with it off (no candidate_elimination \
             in the configuration)"
                .into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|cause| TrainError::Io { path: out.into(), cause })?;
    let mut opt = AdamW::for_trainable(&model.vs, cfg.weight_decay);
    if opt.num_params() == 0 {
        return Err(TrainError::Invalid("the network has no trainable variables".into()));
    }
    // Its own stream, so that switching drop path on or off leaves the pairs unchanged.
    let mut drop = (cfg.drop_path > 0.0).then(|| DropPath::new(cfg.drop_path, cfg.seed ^ 0xD0_D0_D0_D0));
    let mut start = 0;
    if resume {
        let state = restore(model, &mut opt, out)?;
        if state.config.stage != cfg.stage || state.config.batch != cfg.batch {
            return Err(TrainError::Resume {
                path: out.join(STATE_FILE),
                cause: format!(
                    "saved by a {:?}-stage run of batch {}; this run is {:?}-stage of batch {}",
                    state.config.stage, state.config.batch, cfg.stage, cfg.batch
                ),
            });
        }
        sampler.set_rng_state(state.sampler_rng);
        drop = state.drop_path.or(drop);
        start = state.step;
        validate::drop_rows_after(&out.join(validate::VAL_FILE), start)?;
    }
    let log_path = out.join(LOSS_FILE);
    let io = |cause| TrainError::Io { path: log_path.clone(), cause };
    let mut log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(io)?;
    if start == 0 {
        log_file.set_len(0).map_err(io)?;
        writeln!(log_file, "step,lr,loss,giou,l1,focal,iou,grad_norm").map_err(io)?;
    } else {
        truncate_log(&log_path, start)?;
    }
    let device = model.device();
    let amp = cfg.autocast_bf16 && device.is_cuda();
    let t0 = Instant::now();
    // Seconds of the steps after the first (sampling, forward, backward, update), without
    // checkpoints and validation: the throughput figure.
    let mut step_seconds = 0.0;
    for step in start..end {
        let t_step = Instant::now();
        let lr = cfg.lr_at(step);
        let batch = sampler.batch(cfg.batch)?.to_device(device);
        let mut amp_state = 0;
        let outputs = autocast_bf16(amp, || {
            amp_state = autocast_cuda_state();
            model.forward_train(&batch.template, &batch.search, drop.as_mut())
        });
        if amp && amp_state != 1 {
            // tch switches autocast on only where it sees CUDA; a run asked for bf16 must not
            // silently train in another precision.
            let got = if amp_state == 0 { "off" } else { "on in another dtype than bfloat16" };
            return Err(TrainError::Invalid(format!("bf16 autocast was requested but libtorch reports it {got}")));
        }
        let outputs = to_f32(outputs);
        let l = loss::losses(&outputs, &batch.boxes, &batch.maps);
        let total = l.total.double_value(&[]);
        if !total.is_finite() {
            return Err(TrainError::Diverged(total, step));
        }
        opt.zero_grad();
        l.total.backward();
        let grad_norm = opt.clip_grad_norm(cfg.grad_clip);
        opt.step(lr);
        let entry = StepLog {
            step: step + 1,
            lr,
            loss: total,
            giou: l.giou,
            l1: l.l1,
            focal: l.focal,
            iou: l.mean_iou,
            grad_norm,
        };
        writeln!(
            log_file,
            "{},{:.3e},{:.5},{:.5},{:.5},{:.5},{:.4},{:.4e}",
            entry.step, lr, total, l.giou, l.l1, l.focal, l.mean_iou, grad_norm
        )
        .map_err(io)?;
        if step > start {
            step_seconds += t_step.elapsed().as_secs_f64();
        }
        on_step(&entry);
        let done = step + 1;
        if done == end || (cfg.checkpoint_every > 0 && done.is_multiple_of(cfg.checkpoint_every)) {
            let state = TrainState {
                step: done,
                config: cfg.clone(),
                sampler_rng: sampler.rng_state(),
                drop_path: drop.clone(),
                optimizer_steps: opt.state().1,
            };
            save_checkpoint(model, &opt, &state, out)?;
        }
        if let Some(v) = validate.as_deref_mut() {
            if cfg.val_every > 0 && (done.is_multiple_of(cfg.val_every) || done == cfg.steps) {
                v(done, model)?;
            }
        }
    }
    let steps = end.saturating_sub(start);
    let seconds = t0.elapsed().as_secs_f64();
    let pairs_per_s = (steps > 1 && step_seconds > 0.0).then(|| ((steps - 1) * cfg.batch) as f64 / step_seconds);
    Ok(TrainSummary { first_step: start, steps, seconds, pairs_per_s })
}

/// The head's maps in f32 (autocast leaves them in bf16), for the loss.
fn to_f32(o: HeadOutput) -> HeadOutput {
    if o.score_map.kind() == Kind::Float {
        return o;
    }
    HeadOutput {
        score_map: o.score_map.to_kind(Kind::Float),
        size_map: o.size_map.to_kind(Kind::Float),
        offset_map: o.offset_map.to_kind(Kind::Float),
    }
}

/// Keeps the header and the first `steps` rows of the loss log (a run stopped after its last
/// checkpoint logged steps that the resumed run trains again).
fn truncate_log(path: &Path, steps: usize) -> Result<(), TrainError> {
    let io = |cause| TrainError::Io { path: path.into(), cause };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let kept: String = text.lines().take(1 + steps).map(|l| format!("{l}\n")).collect();
    std::fs::write(path, kept).map_err(io)
}

fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<(), TrainError>) -> Result<(), TrainError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|cause| TrainError::Io { path: path.into(), cause })
}

/// Writes `model.safetensors`, `optimizer.safetensors` and `train_state.json` (each atomically;
/// the state last, so that it never names a step the other two do not hold).
pub fn save_checkpoint(model: &PATrack, opt: &AdamW, state: &TrainState, out: &Path) -> Result<(), TrainError> {
    write_atomic(&out.join(MODEL_FILE), |p| Ok(model::load::save_file(model, p)?))?;
    let (moments, _) = opt.state();
    write_atomic(&out.join(OPTIMIZER_FILE), |p| {
        let named: Vec<(String, Tensor)> = moments.into_iter().map(|(k, t)| (k, t.to_device(Device::Cpu))).collect();
        Tensor::write_safetensors(&named, p).map_err(TrainError::Torch)
    })?;
    let text = serde_json::to_string_pretty(state).map_err(|e| TrainError::Invalid(e.to_string()))?;
    write_atomic(&out.join(STATE_FILE), |p| {
        std::fs::write(p, text).map_err(|cause| TrainError::Io { path: p.into(), cause })
    })
}

/// Reads the state saved under `out` back into `model` and `opt`.
fn restore(model: &mut PATrack, opt: &mut AdamW, out: &Path) -> Result<TrainState, TrainError> {
    let state_path = out.join(STATE_FILE);
    let resume_err = |path: &Path, cause: String| TrainError::Resume { path: path.into(), cause };
    let text = std::fs::read_to_string(&state_path).map_err(|e| resume_err(&state_path, e.to_string()))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| {
        resume_err(&state_path, format!("{e} (a state written before full resume existed cannot be resumed)"))
    })?;
    let model_path = out.join(MODEL_FILE);
    let ckpt = model::checkpoint::read_any(&model_path).map_err(model::LoadError::from)?;
    let saved = model::load::recorded_config(&ckpt)?;
    if saved.as_ref().is_some_and(|c| *c != model.cfg) {
        return Err(resume_err(&model_path, "holds another network configuration than this run's".into()));
    }
    model::load::load_checkpoint(model, &ckpt)?;
    let opt_path = out.join(OPTIMIZER_FILE);
    let moments: HashMap<String, Tensor> = Tensor::read_safetensors(&opt_path)
        .map_err(|e| resume_err(&opt_path, e.to_string()))?
        .into_iter()
        .map(|(k, t)| (k, t.to_device(model.device())))
        .collect();
    opt.load_state(&moments, &state.optimizer_steps).map_err(|e| resume_err(&opt_path, e.to_string()))?;
    Ok(state)
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
