//! What several subcommands share: choosing the device/precision and building the model.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tch::Device;

use crate::device::{self, Precision};
use crate::model::{ModelConfig, PATrack};

/// `--model`, `--device`, `--precision`, shared by every command that runs the network.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Weights: a .safetensors file or an official trainer checkpoint (.pth.tar). Without it the
    /// deterministic test weights are used: the network runs but does not track.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// fp32, bf16 or fp16.
    #[arg(long, default_value = "fp32")]
    pub precision: String,
    /// Network sizes: `vit_base` (official), `small` (the demo models) or `tiny`, or a JSON file of
    /// `ModelConfig`.
    /// Ignored when the weights file records its configuration.
    #[arg(long, default_value = "vit_base")]
    pub config: String,
}

impl ModelArgs {
    pub fn device(&self) -> anyhow::Result<Device> {
        Ok(device::parse_device(&self.device)?)
    }

    pub fn precision(&self) -> anyhow::Result<Precision> {
        Ok(self.precision.parse()?)
    }

    pub fn build(&self) -> anyhow::Result<PATrack> {
        build_model(self.model.as_deref(), &self.config, self.device()?, self.precision()?)
    }
}

/// Parses `--config`.
pub fn parse_config(s: &str) -> anyhow::Result<ModelConfig> {
    match s {
        "vit_base" | "official" => Ok(ModelConfig::vit_base()),
        "tiny" => Ok(ModelConfig::tiny()),
        "small" => Ok(ModelConfig::small()),
        path => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading model config {path}"))?;
            serde_json::from_str(&text).with_context(|| format!("parsing model config {path}"))
        }
    }
}

/// Builds the network on `device` in `precision`, with weights from `path` or the hashed test
/// weights (said plainly in the log).
pub fn build_model(path: Option<&Path>, config: &str, device: Device, precision: Precision) -> anyhow::Result<PATrack> {
    match path {
        Some(path) => crate::model::load_file(path, Some(parse_config(config)?), device, precision)
            .with_context(|| format!("loading weights from {}", path.display())),
        None => {
            log::warn!(
                "no --model given: using the deterministic test weights (golden hash rule); \
                 the network runs but does NOT track anything"
            );
            let mut m = PATrack::new(parse_config(config)?, device, precision)?;
            m.fill_hashed();
            Ok(m)
        }
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
