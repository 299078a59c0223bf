//! `patrack synth`: writes a synthetic RGB+X benchmark (deterministic from the seed) in the
//! layout of the modality's benchmark, for `patrack eval` and `patrack train --data`.

use std::path::PathBuf;

use crate::sensor::Modality;
use crate::train::synth;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// thermal (LasHeR layout), depth (DepthTrack layout) or event (VisEvent layout).
    #[arg(long)]
    pub modality: Modality,
    /// Output folder (one sub-folder per sequence).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of sequences; even indices are RGB-normal, odd ones cycle dark, lowcontrast,
    /// camouflage.
    #[arg(long, default_value_t = 24)]
    pub sequences: usize,
    #[arg(long, default_value_t = 60)]
    pub frames: usize,
    /// The held-out sets of the shipped models use seed 1000 (training uses 1).
    #[arg(long, default_value_t = 1000)]
    pub seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.sequences > 0 && args.frames > 1, "--sequences must be positive and --frames at least 2");
    anyhow::ensure!(args.frames <= 100_000, "--frames is limited to 100000");
    let bar = indicatif::ProgressBar::new(args.sequences as u64);
    synth::write_set(&args.out, args.modality, args.seed, args.sequences, args.frames, |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    println!(
        "wrote {} RGB+{} sequences of {} frames to {}",
        args.sequences,
        args.modality,
        args.frames,
        args.out.display()
    );
    Ok(())
}
