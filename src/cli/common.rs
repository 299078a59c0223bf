//! What several subcommands share: choosing the device/precision and building the model.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tch::Device;

use crate::device::{self, Precision};
use crate::model::{CandidateElimination, ModelConfig, PATrack};

/// `--model`, `--device`, `--precision`, shared by every command that runs the network.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Weights: a .safetensors file or a trainer checkpoint (.pth.tar): PATrack's, or OSTrack's
    /// public `OSTrack_ep0300.pth.tar`, which runs as the RGB-only tracker (recognised by its
    /// keys; the aux images are then unused). Without it the deterministic test weights are used:
    /// the network runs but does not track.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// fp32, bf16 or fp16.
    #[arg(long, default_value = "fp32")]
    pub precision: String,
    /// Network sizes: `vit_base` (official), `small` (the demo models) or `tiny`, or a JSON file of
    /// `ModelConfig`. Ignored when the weights file records its configuration; for an OSTrack
    /// checkpoint the sizes come from its tensors (this only sets the head count when its sizes
    /// are the file's).
    #[arg(long, default_value = "vit_base")]
    pub config: String,
    /// Intra-op CPU threads of the network (0: one for small networks, half the cores for large
    /// ones; see the README's thread policy).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// OSTrack's candidate elimination, for the RGB-only network (e.g. `OSTrack_ep0300.pth.tar`,
    /// which was trained with it): keep this share of the search tokens in the blocks at 1/4,
    /// 2/4 and 3/4 of the depth (the released OSTrack: 0.7 in blocks 3, 6, 9). Faster, and the
    /// released model's own setting; off by default (PATrack's setting). Refused for PATrack's
    /// two-stream networks.
    #[arg(long, value_name = "KEEP_RATIO")]
    pub candidate_elimination: Option<f64>,
}

impl ModelArgs {
    pub fn device(&self) -> anyhow::Result<Device> {
        Ok(device::parse_device(&self.device)?)
    }

    pub fn precision(&self) -> anyhow::Result<Precision> {
        Ok(self.precision.parse()?)
    }

    pub fn build(&self) -> anyhow::Result<PATrack> {
        let mut model = build_model(self.model.as_deref(), &self.config, self.device()?, self.precision()?)?;
        self.apply_candidate_elimination(&mut model)?;
        apply_thread_policy(self.threads, &model);
        Ok(model)
    }

    /// Switches on `--candidate-elimination` when given.
    pub fn apply_candidate_elimination(&self, model: &mut PATrack) -> anyhow::Result<()> {
        if let Some(keep) = self.candidate_elimination {
            let ce = CandidateElimination::ostrack(model.cfg.depth, keep);
            model.set_candidate_elimination(Some(ce)).context("--candidate-elimination")?;
            log::info!("candidate elimination on: {}", model.cfg.label());
        }
        Ok(())
    }
}

/// Sets the intra-op CPU threads: `threads`, or [`device::default_cpu_threads`] for this
/// network when 0.
pub fn apply_thread_policy(threads: usize, model: &PATrack) {
    let n = device::apply_thread_policy(threads, model.cfg.estimated_parameters());
    log::debug!("{n} intra-op CPU thread(s)");
}

/// Parses `--config`.
pub fn parse_config(s: &str) -> anyhow::Result<ModelConfig> {
    Ok(crate::model::load::named_config(s)?)
}

/// Builds the network on `device` in `precision`, with weights from `path` or the hashed test
/// weights (said plainly in the log).
pub fn build_model(path: Option<&Path>, config: &str, device: Device, precision: Precision) -> anyhow::Result<PATrack> {
    let built = crate::model::load::build(path, config, device, precision);
    match path {
        Some(path) => built.with_context(|| format!("loading weights from {}", path.display())),
        None => Ok(built?),
    }
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Makes the first Ctrl-C (SIGINT) set a flag that long commands poll to stop in order (outputs
/// finished); the handler resets itself, so a second Ctrl-C ends the process at once. A plain
/// `sigaction` rather than a crate: one flag, and the one-shot reset the crates do not offer.
pub fn catch_interrupt() -> &'static std::sync::atomic::AtomicBool {
    // SAFETY: `action` is fully initialised before use; the handler only stores to an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0 {
            log::warn!("could not install the Ctrl-C handler: Ctrl-C will end the process without finishing outputs");
        }
    }
    &INTERRUPTED
}
