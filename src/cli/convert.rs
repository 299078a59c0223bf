//! `patrack convert IN OUT.safetensors`: an official checkpoint (or any state dict file) to
//! safetensors, checked against the network first so a wrong file fails here and not on a robot.

use std::path::PathBuf;

use anyhow::Context;

use super::common::parse_config;
use crate::model::checkpoint::{self, MetaValue};
use crate::model::load::{load_checkpoint, recorded_config, CONFIG_METADATA_KEY};
use crate::model::PATrack;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input: official trainer checkpoint (.pth.tar / .pth, torch zip format) or .safetensors.
    pub input: PathBuf,
    /// Output .safetensors file.
    pub output: PathBuf,
    /// Network sizes the weights are for: vit_base, tiny or a JSON file (recorded in the output).
    #[arg(long, default_value = "vit_base")]
    pub config: String,
    /// Write the file even if it does not fit the network.
    #[arg(long)]
    pub no_check: bool,
    /// Store the weights in fp16 (half the size; e.g. the bundled demo models).
    #[arg(long, conflicts_with = "no_check")]
    pub fp16: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ckpt = checkpoint::read_any(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    if let Some(k) = &ckpt.state_dict_key {
        println!("state dict found under '{k}'");
    }
    for (k, v) in &ckpt.metadata {
        println!("  {k} = {v}");
    }
    let cfg = recorded_config(&ckpt)?.map(Ok).unwrap_or_else(|| parse_config(&args.config))?;
    if !args.no_check {
        let mut model = PATrack::new(cfg.clone(), tch::Device::Cpu, crate::device::Precision::Fp32)?;
        let report = load_checkpoint(&mut model, &ckpt)
            .context("checking the weights against the network (--no-check converts anyway)")?;
        println!("checked: {} tensors fit the network, {} dead entries kept", report.loaded, report.dead_ignored);
    }
    if args.fp16 {
        let model = crate::model::load_file(&args.input, Some(cfg), tch::Device::Cpu, crate::device::Precision::Fp32)?;
        crate::model::load::save_file_as(&model, &args.output, crate::device::Precision::Fp16)
            .with_context(|| format!("writing {}", args.output.display()))?;
        println!("wrote the network's weights in fp16 to {}", args.output.display());
        return Ok(());
    }
    let mut metadata: Vec<(String, MetaValue)> =
        ckpt.metadata.iter().filter(|(k, _)| k != CONFIG_METADATA_KEY).cloned().collect();
    metadata.push((CONFIG_METADATA_KEY.to_string(), MetaValue::Str(serde_json::to_string(&cfg)?)));
    checkpoint::write_safetensors_with_metadata(&ckpt.tensors, &metadata, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!("wrote {} tensors to {}", ckpt.tensors.len(), args.output.display());
    Ok(())
}
