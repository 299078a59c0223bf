//! `patrack init-weights OUT.safetensors`: the deterministic test weights (the golden hash rule)
//! as a weights file, to exercise a deployment (node, replay, benchmarks) before trained weights
//! exist. The network it holds is exact but untrained: it does not track.

use std::path::PathBuf;

use super::common::parse_config;
use crate::device::Precision;
use crate::model::{load::save_file, PATrack};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output .safetensors file.
    pub output: PathBuf,
    /// Network sizes: vit_base, tiny or a JSON file.
    #[arg(long, default_value = "vit_base")]
    pub config: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut model = PATrack::new(parse_config(&args.config)?, tch::Device::Cpu, Precision::Fp32)?;
    model.fill_hashed();
    save_file(&model, &args.output)?;
    println!("wrote the deterministic test weights ({}) to {}", args.config, args.output.display());
    Ok(())
}
