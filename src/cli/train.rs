//! `patrack train`: progressive adaptation training (RGB-only base, then adapters per modality)
//! on synthetic RGB+X scenes or on a training set in its published layout; `--recipe paper` sets
//! the paper's numbers.

use std::path::PathBuf;

use anyhow::Context;

use super::common::parse_config;
use crate::device::Precision;
use crate::eval::layout::{self, DatasetKind};
use crate::model::{self, ModelConfig, PATrack};
use crate::sensor::Modality;
use crate::train::sampler::{BenchSource, FrameSource, Sampler, SamplerConfig, SynthSource};
use crate::train::splits;
use crate::train::validate::Validation;
use crate::train::{self, Stage, TrainConfig};

/// Presets of training settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Recipe {
    /// The paper's adapter training (see the README): 60 epochs x 60 000 pairs, batch 32, AdamW
    /// 4e-4 / 1e-4, x0.1 from epoch 48, clip 0.1, drop path 0.1, gap 200, jitter and flips, bf16
    /// autocast on CUDA, a checkpoint every epoch, validation every 2 epochs.
    Paper,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// base: the RGB-only tracker; adapt: adapters on a frozen base for one modality. The paper
    /// recipe is the adapt stage.
    #[arg(long, value_enum, required_unless_present = "recipe")]
    pub stage: Option<Stage>,
    /// A preset of every training number; the flags below override single ones (e.g. --steps for
    /// a short run).
    #[arg(long, value_enum)]
    pub recipe: Option<Recipe>,
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
    /// Train on this training set instead of synthetic scenes: the folder of the published set
    /// (LasHeR: holding `trainingset/` and `trainingsetList.txt`; DepthTrack: holding `Train/`;
    /// VisEvent: holding `trainlist.txt`), or any folder of sequence folders of --dataset's layout.
    #[arg(long, requires = "dataset")]
    pub data: Option<PathBuf>,
    /// The layout of --data.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Train on the sequences named in this file (one per line) instead of the set's own list:
    /// e.g. the official split `lib/train/data_specs/lasher_train.txt`.
    #[arg(long, requires = "data")]
    pub train_list: Option<PathBuf>,
    /// Validate on this benchmark (the layout `patrack eval` reads) every --val-every steps:
    /// the network runs as the tracker over it and the scores go to OUT/val.csv.
    #[arg(long, requires = "val_dataset")]
    pub val_data: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub val_dataset: Option<DatasetKind>,
    /// Validate on the sequences of --val-data named in this file (one per line): e.g. the
    /// official split `lib/train/data_specs/depthtrack_val.txt` over DepthTrack's `Train/`.
    #[arg(long, requires = "val_data")]
    pub val_list: Option<PathBuf>,
    /// Validate on the first N sequences (name order) of --val-data (after --val-list) only.
    #[arg(long)]
    pub val_sequences: Option<usize>,
    /// Validate every N steps (paper recipe: every 2 epochs, 3750 steps).
    #[arg(long)]
    pub val_every: Option<usize>,
    /// Number of synthetic training scenes (each 120 frames long).
    #[arg(long, default_value_t = 1500)]
    pub synth_sequences: usize,
    /// Training steps (default 3000; paper recipe: 112 500).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Pairs per step (default 16; paper recipe: 32).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Peak learning rate (AdamW; default and paper: 4e-4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// AdamW weight decay (default and paper: 1e-4).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Linear warm-up steps (default 200; paper: none).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Gradient-norm clip (OSTrack and the paper: 0.1).
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Stochastic depth of the last block (default 0; paper: 0.1).
    #[arg(long)]
    pub drop_path: Option<f64>,
    /// Train in fp32 on CUDA too (the paper recipe autocasts to bf16 on CUDA).
    #[arg(long)]
    pub no_autocast: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the checkpoint every N steps, and at the end (default 250; paper: every epoch, 1875).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Output folder: model.safetensors, optimizer.safetensors, train_state.json, loss.csv,
    /// loss.png, val.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from the checkpoint in OUT (weights, optimizer moments, random streams, step):
    /// the same command line with --resume gives the result of an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this step (with a checkpoint) although the schedule goes on: one job of a run
    /// split into several; --resume continues it.
    #[arg(long)]
    pub stop_at: Option<usize>,
    /// cpu, cuda, cuda:N or auto. Batches are built on the CPU and moved there.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads for libtorch (0: the project's policy, one for small networks and half the
    /// cores for ViT-B; see BENCHMARKS.md, "Thread policy").
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Threads that build the training pairs (0: half the cores); the pairs do not depend on it.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
}

/// The training numbers: the recipe's or the defaults, each overridden by its flag.
fn train_config(args: &Args, stage: Stage) -> TrainConfig {
    let mut cfg = match args.recipe {
        Some(Recipe::Paper) => TrainConfig::paper(args.seed),
        None => TrainConfig {
            stage,
            steps: 3000,
            batch: 16,
            lr: 4e-4,
            weight_decay: 1e-4,
            warmup_steps: 200,
            lr_drop_at: 0.8,
            grad_clip: 0.1,
            seed: args.seed,
            checkpoint_every: 250,
            sampler: SamplerConfig::default(),
            drop_path: 0.0,
            autocast_bf16: false,
            val_every: 0,
        },
    };
    cfg.stage = stage;
    let set = |v: Option<usize>, field: &mut usize| *field = v.unwrap_or(*field);
    set(args.steps, &mut cfg.steps);
    set(args.batch, &mut cfg.batch);
    set(args.warmup, &mut cfg.warmup_steps);
    set(args.checkpoint_every, &mut cfg.checkpoint_every);
    set(args.val_every, &mut cfg.val_every);
    let setf = |v: Option<f64>, field: &mut f64| *field = v.unwrap_or(*field);
    setf(args.lr, &mut cfg.lr);
    setf(args.weight_decay, &mut cfg.weight_decay);
    setf(args.grad_clip, &mut cfg.grad_clip);
    setf(args.drop_path, &mut cfg.drop_path);
    if args.no_autocast {
        cfg.autocast_bf16 = false;
    }
    if args.val_data.is_none() {
        cfg.val_every = 0;
    }
    cfg
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // libtorch seeds its generator from the system's entropy; the adapters' initialisation
    // draws from it, so --seed must fix it for two runs of one command line to agree.
    tch::manual_seed(args.seed as i64);
    let stage = match (args.stage, args.recipe) {
        (Some(Stage::Base), Some(Recipe::Paper)) => {
            anyhow::bail!(
                "--recipe paper is the adapter stage (its base is OSTrack's checkpoint); leave out --stage base"
            )
        }
        (Some(s), _) => s,
        (None, _) => Stage::Adapt,
    };
    let device = crate::device::parse_device(&args.device)?;
    let cfg = train_config(&args, stage);
    cfg.validate().map_err(anyhow::Error::msg)?;
    let modality = args.modality;
    if stage == Stage::Adapt && modality.is_none() {
        anyhow::bail!("--stage adapt needs --modality thermal|depth|event");
    }
    if let (Some(m), Some(kind)) = (modality, args.dataset) {
        anyhow::ensure!(
            kind.modality() == m,
            "--dataset {} holds RGB + {} pairs, not RGB + {m}",
            kind.name(),
            kind.modality()
        );
    }
    let mut model = match stage {
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
    super::common::apply_thread_policy(args.threads, &model);
    let trainable: i64 =
        model.vs.trainable_variables().iter().filter(|t| t.requires_grad()).map(|t| t.numel() as i64).sum();
    let total: i64 = model.vs.variables().values().map(|t| t.numel() as i64).sum();
    println!(
        "{:?} stage{}: {} of {} parameters trainable; {} steps of batch {}, lr {:.1e} (x0.1 from step {}), \
         drop path {}, bf16 autocast {}",
        stage,
        args.recipe.map_or(String::new(), |_| ", paper recipe".into()),
        trainable,
        total,
        cfg.steps,
        cfg.batch,
        cfg.lr,
        cfg.lr_drop_step(),
        cfg.drop_path,
        if cfg.autocast_bf16 && device.is_cuda() { "on" } else { "off" }
    );
    let validation = match (&args.val_data, args.val_dataset) {
        (Some(root), Some(kind)) => {
            let mut seqs = layout::list_sequences(kind, root)?;
            if let Some(list) = &args.val_list {
                let names = splits::read_list(list)?;
                if let Some(missing) = names.iter().find(|n| !seqs.iter().any(|s| &s.name == *n)) {
                    anyhow::bail!(
                        "--val-list {} names {missing}, which {} does not hold",
                        list.display(),
                        root.display()
                    );
                }
                seqs.retain(|s| names.contains(&s.name));
            }
            if let Some(n) = args.val_sequences {
                seqs.truncate(n.max(1));
            }
            println!(
                "validating every {} steps on {} {} sequences in {}",
                cfg.val_every,
                seqs.len(),
                kind.name(),
                root.display()
            );
            Some(Validation { kind, sequences: seqs, out: args.out.clone() })
        }
        _ => None,
    };
    let (t, s, f) =
        (model.cfg.template_size as usize, model.cfg.search_size as usize, model.cfg.search_feat() as usize);
    let workers = match args.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
        n => n,
    };
    let sampler_seed = args.seed.wrapping_mul(0x9E37_79B9);
    let run = Run { args: &args, cfg: &cfg, validation: validation.as_ref() };
    match (&args.data, args.dataset) {
        (Some(root), Some(kind)) => {
            let set = splits::open_training_set_listed(kind, root, args.train_list.as_deref())?;
            println!("{}", set.describe());
            let sampler = Sampler::new(BenchSource::new(set), cfg.sampler.clone(), sampler_seed, t, s, f);
            run.go(&mut model, &mut sampler.with_workers(workers))?;
        }
        _ => {
            // Scenes: the base learns from the RGB of RGB-normal scenes of all three kinds;
            // adapters from their own modality's scenes, half of them RGB-hard.
            let modalities = match (stage, modality) {
                (Stage::Adapt, Some(m)) => vec![m],
                _ => vec![Modality::Thermal, Modality::Depth, Modality::Event],
            };
            let normal_only = stage == Stage::Base;
            let source = SynthSource::new(args.seed, modalities, args.synth_sequences, SYNTH_TRAIN_FRAMES, normal_only);
            let sampler = Sampler::new(source, cfg.sampler.clone(), sampler_seed, t, s, f);
            run.go(&mut model, &mut sampler.with_workers(workers))?;
        }
    }
    let rows = train::read_loss_log(&args.out.join(train::LOSS_FILE))?;
    let png = args.out.join("loss.png");
    let title = match modality {
        Some(m) if stage == Stage::Adapt => format!("adapters, RGB + {m}"),
        _ => "RGB-only base".to_string(),
    };
    train::plot_loss(&rows, &title, &png)?;
    println!("model: {}\nloss curve: {}", args.out.join(train::MODEL_FILE).display(), png.display());
    Ok(())
}

/// Frames per synthetic training scene.
pub const SYNTH_TRAIN_FRAMES: usize = 120;

struct Run<'a> {
    args: &'a Args,
    cfg: &'a TrainConfig,
    validation: Option<&'a Validation>,
}

impl Run<'_> {
    fn go<S: FrameSource>(&self, model: &mut PATrack, sampler: &mut Sampler<S>) -> anyhow::Result<()> {
        let cfg = self.cfg;
        let bar = indicatif::ProgressBar::new(cfg.steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut smoothed = None::<f64>;
        let mut first = true;
        let on_step = |l: &train::StepLog| {
            if first {
                if self.args.resume {
                    bar.suspend(|| println!("resumed at step {} of {}", l.step - 1, cfg.steps));
                }
                bar.set_position(l.step as u64 - 1);
                first = false;
            }
            let s = smoothed.map_or(l.loss, |v| 0.98 * v + 0.02 * l.loss);
            smoothed = Some(s);
            bar.set_message(format!("loss {s:.3}  iou {:.2}  lr {:.1e}", l.iou, l.lr));
            bar.inc(1);
            if !std::io::IsTerminal::is_terminal(&std::io::stderr()) && l.step.is_multiple_of(100) {
                eprintln!("step {} loss {s:.4} iou {:.3} lr {:.2e}", l.step, l.iou, l.lr);
            }
        };
        let mut validate = |step: usize, m: &PATrack| -> Result<(), train::TrainError> {
            if let Some(v) = self.validation {
                let scores = v.run(step, m)?;
                // Printed with the bar suspended (`println` of a hidden bar prints nothing).
                bar.suspend(|| println!("validation at step {step}: {}", scores.describe(v.kind)));
            }
            Ok(())
        };
        let hook: Option<train::Validate<'_>> = self.validation.map(|_| &mut validate as train::Validate<'_>);
        let run = train::RunOptions { out: &self.args.out, resume: self.args.resume, stop_at: self.args.stop_at };
        let summary = train::train(model, sampler, cfg, run, on_step, hook)?;
        bar.finish_and_clear();
        let rate = summary.pairs_per_s.map_or("-".into(), |r| {
            // Three significant digits or so: the CPU rates at ViT-B are around 0.1.
            let decimals = if r >= 100.0 {
                0
            } else if r >= 1.0 {
                1
            } else {
                3
            };
            format!("{r:.decimals$}")
        });
        println!(
            "trained steps {}-{} in {:.0} s: {rate} pairs/s at batch {} ({} est. for the whole run of {} steps at that rate)",
            summary.first_step + 1,
            summary.first_step + summary.steps,
            summary.seconds,
            cfg.batch,
            summary.pairs_per_s.map_or("-".into(), |r| hours((cfg.steps * cfg.batch) as f64 / r)),
            cfg.steps
        );
        Ok(())
    }
}

fn hours(seconds: f64) -> String {
    if seconds >= 2.0 * 86_400.0 {
        format!("{:.0} days", seconds / 86_400.0)
    } else if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.0} s", seconds)
    }
}

/// After loading weights into an adapted model, only the adapters stay trainable.
fn freeze_base(model: &PATrack) {
    for (name, var) in model.vs.variables() {
        if !train::is_adapter_key(&name) {
            let _ = var.set_requires_grad(false);
        }
    }
}
