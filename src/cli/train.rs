//! `patrack train`: progressive adaptation training (RGB-only base, then adapters per modality)
//! on synthetic RGB+X scenes or on sequences in a benchmark layout.

use std::path::PathBuf;

use anyhow::Context;

use super::common::parse_config;
use crate::device::Precision;
use crate::eval::layout::{self, DatasetKind};
use crate::model::{self, ModelConfig, PATrack};
use crate::sensor::Modality;
use crate::train::sampler::{BenchSource, FrameSource, Sampler, SamplerConfig, SynthSource};
use crate::train::{self, Stage, TrainConfig, TrainState};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// base: the RGB-only tracker; adapt: adapters on a frozen base for one modality.
    #[arg(long, value_enum)]
    pub stage: Stage,
    /// The auxiliary modality the adapters learn (adapt stage; also picks the synthetic scenes).
    #[arg(long)]
    pub modality: Option<Modality>,
    /// The RGB-only base model (adapt stage): a `patrack train --stage base` result, or an
    /// OSTrack checkpoint such as the public `OSTrack_ep0300.pth.tar` (its sizes are read from
    /// its tensors; the paper's second stage starts from it).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Network sizes of the base: `small`, `tiny`, `vit_base` or a JSON file (ignored when the
    /// weights file records its configuration).
    #[arg(long, default_value = "small")]
    pub config: String,
    /// Start from these weights instead of a fresh initialisation (same configuration).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Train on sequences in this benchmark folder instead of synthetic scenes.
    #[arg(long, requires = "dataset")]
    pub data: Option<PathBuf>,
    /// The layout of --data.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Number of synthetic training scenes (each 120 frames long).
    #[arg(long, default_value_t = 1500)]
    pub synth_sequences: usize,
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 4e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Gradient-norm clip (OSTrack: 0.1).
    #[arg(long, default_value_t = 0.1)]
    pub grad_clip: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 250)]
    pub checkpoint_every: usize,
    /// Output folder: model.safetensors, train_state.json, loss.csv, loss.png.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from OUT/model.safetensors at the step recorded in OUT/train_state.json (the
    /// optimizer's moments restart; the learning-rate schedule continues).
    #[arg(long)]
    pub resume: bool,
    /// cpu, cuda, cuda:N or auto. Training runs in fp32 on the chosen device; batches are built
    /// on the CPU and moved there.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads for libtorch (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    pub threads: i32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    anyhow::ensure!(args.steps > 0 && args.batch > 0, "--steps and --batch must be positive");
    anyhow::ensure!(args.lr.is_finite() && args.lr > 0.0, "--lr must be positive");
    let device = crate::device::parse_device(&args.device)?;
    let cfg = TrainConfig {
        stage: args.stage,
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        weight_decay: args.weight_decay,
        warmup_steps: args.warmup,
        lr_drop_at: 0.8,
        grad_clip: args.grad_clip,
        seed: args.seed,
        checkpoint_every: args.checkpoint_every,
        sampler: SamplerConfig::default(),
    };
    let mut start = 0;
    let mut model = match args.stage {
        Stage::Base => {
            let mc = ModelConfig { rgb_only: true, ..parse_config(&args.config)? };
            match &args.init {
                Some(p) => model::load_file(p, Some(mc), device, Precision::Fp32)?,
                None => PATrack::new(mc, device, Precision::Fp32)?,
            }
        }
        Stage::Adapt => {
            let base_path = args.base.as_ref().context("--stage adapt needs --base BASE.safetensors")?;
            // An OSTrack checkpoint (no recorded configuration, no adapter keys) is detected by
            // the loader with its own sizes; other files without a configuration are read as an
            // RGB-only base of the --config sizes.
            let fallback = ModelConfig { rgb_only: true, ..parse_config(&args.config)? };
            let base = model::load_file(base_path, Some(fallback), device, Precision::Fp32)
                .with_context(|| format!("loading the base model {}", base_path.display()))?;
            let mut m = train::adapted_from_base(&base, device)?;
            if let Some(p) = &args.init {
                let ckpt = model::checkpoint::read_any(p)?;
                model::load::load_checkpoint(&mut m, &ckpt)?;
                freeze_base(&m);
            }
            m
        }
    };
    if args.resume {
        let state_path = args.out.join("train_state.json");
        let text = std::fs::read_to_string(&state_path)
            .with_context(|| format!("--resume: reading {}", state_path.display()))?;
        let state: TrainState = serde_json::from_str(&text)?;
        let ckpt = model::checkpoint::read_any(args.out.join("model.safetensors"))?;
        model::load::load_checkpoint(&mut model, &ckpt)?;
        if args.stage == Stage::Adapt {
            freeze_base(&model);
        }
        start = state.step;
        println!("resuming at step {start} of {}", args.steps);
    }
    let modality = args.modality;
    if args.stage == Stage::Adapt && modality.is_none() {
        anyhow::bail!("--stage adapt needs --modality thermal|depth|event");
    }
    let trainable: i64 =
        model.vs.trainable_variables().iter().filter(|t| t.requires_grad()).map(|t| t.numel() as i64).sum();
    let total: i64 = model.vs.variables().values().map(|t| t.numel() as i64).sum();
    println!(
        "{:?} stage: {} of {} parameters trainable; {} steps of batch {}",
        args.stage, trainable, total, args.steps, args.batch
    );
    let (t, s, f) =
        (model.cfg.template_size as usize, model.cfg.search_size as usize, model.cfg.search_feat() as usize);
    let bar = indicatif::ProgressBar::new(args.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(start as u64);
    let mut smoothed = None::<f64>;
    let on_step = |l: &train::StepLog| {
        let s = smoothed.map_or(l.loss, |v| 0.98 * v + 0.02 * l.loss);
        smoothed = Some(s);
        bar.set_message(format!("loss {s:.3}  iou {:.2}  lr {:.1e}", l.iou, l.lr));
        bar.inc(1);
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) && l.step.is_multiple_of(100) {
            eprintln!("step {} loss {s:.4} iou {:.3} lr {:.2e}", l.step, l.iou, l.lr);
        }
    };
    // Scenes: the base learns from the RGB of RGB-normal scenes of all three kinds; adapters from
    // their own modality's scenes, half of them RGB-hard.
    let sampler_seed = args.seed.wrapping_mul(0x9E37_79B9).wrapping_add(start as u64);
    match (&args.data, args.dataset) {
        (Some(root), Some(kind)) => {
            let seqs = layout::list_sequences(kind, root)?;
            println!("training on {} {} sequences in {}", seqs.len(), kind.name(), root.display());
            let mut sampler = Sampler::new(BenchSource::new(seqs), cfg.sampler.clone(), sampler_seed, t, s, f);
            run_training(&mut model, &mut sampler, &cfg, start, &args, on_step)?;
        }
        _ => {
            let modalities = match (args.stage, modality) {
                (Stage::Adapt, Some(m)) => vec![m],
                _ => vec![Modality::Thermal, Modality::Depth, Modality::Event],
            };
            let normal_only = args.stage == Stage::Base;
            let source = SynthSource::new(args.seed, modalities, args.synth_sequences, SYNTH_TRAIN_FRAMES, normal_only);
            let mut sampler = Sampler::new(source, cfg.sampler.clone(), sampler_seed, t, s, f);
            run_training(&mut model, &mut sampler, &cfg, start, &args, on_step)?;
        }
    }
    bar.finish();
    let rows = train::read_loss_log(&args.out.join("loss.csv"))?;
    let png = args.out.join("loss.png");
    let title = match modality {
        Some(m) if args.stage == Stage::Adapt => format!("adapters, RGB + {m}"),
        _ => "RGB-only base".to_string(),
    };
    train::plot_loss(&rows, &title, &png)?;
    println!("model: {}\nloss curve: {}", args.out.join("model.safetensors").display(), png.display());
    Ok(())
}

/// Frames per synthetic training scene.
pub const SYNTH_TRAIN_FRAMES: usize = 120;

fn run_training<S: FrameSource>(
    model: &mut PATrack,
    sampler: &mut Sampler<S>,
    cfg: &TrainConfig,
    start: usize,
    args: &Args,
    on_step: impl FnMut(&train::StepLog),
) -> anyhow::Result<()> {
    train::train(model, sampler, cfg, start, &args.out, on_step)?;
    Ok(())
}

/// After loading weights into an adapted model, only the adapters stay trainable.
fn freeze_base(model: &PATrack) {
    for (name, var) in model.vs.variables() {
        if !train::is_adapter_key(&name) {
            let _ = var.set_requires_grad(false);
        }
    }
}
