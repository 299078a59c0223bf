//! `patrack bag`: writes benchmark sequences (LasHeR, RGBT234, GTOT, DepthTrack, VisEvent
//! layouts) as rosbag2 MCAP bags with camera encodings, camera-rate stamps and the ground truth
//! on a Detection2DArray topic, for `ros2 bag play` and `patrack replay`.

use std::path::PathBuf;

use anyhow::Context;

use crate::bag::convert::{self, ConvertOptions};
use crate::bag::ChunkCompression;
use crate::eval::layout::{self, BenchSequence, DatasetKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A sequence folder, or a benchmark root holding sequence folders (each becomes
    /// OUT/<sequence>/).
    pub input: PathBuf,
    /// Layout of the folder.
    #[arg(long, value_enum)]
    pub dataset: DatasetKind,
    /// Output bag folder (for a root: the folder of the bags). Must not exist yet.
    #[arg(long)]
    pub out: PathBuf,
    /// Frames per second of the stamps.
    #[arg(long, default_value_t = 30.0)]
    pub rate_hz: f64,
    /// Stamp of the first frame, seconds since the epoch.
    #[arg(long, default_value_t = convert::DEFAULT_START_NS as f64 / 1e9)]
    pub start_s: f64,
    /// Chunk compression of the MCAP file.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: ChunkCompression,
    /// RGB image topic.
    #[arg(long)]
    pub rgb_topic: Option<String>,
    /// Aux image topic (default /camera/<thermal|depth|event>/image_raw).
    #[arg(long)]
    pub aux_topic: Option<String>,
    /// Ground-truth topic (vision_msgs/Detection2DArray; empty arrays where the target is absent).
    #[arg(long)]
    pub gt_topic: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (rgb_dir, aux_dir) = args.dataset.image_dirs();
    let single = args.input.join(rgb_dir).is_dir() && args.input.join(aux_dir).is_dir();
    let seqs = if single {
        vec![BenchSequence::open(args.dataset, &args.input)?]
    } else {
        layout::list_sequences(args.dataset, &args.input)?
    };
    let mut opts = ConvertOptions::new(args.dataset);
    opts.rate_hz = args.rate_hz;
    anyhow::ensure!(args.start_s.is_finite() && args.start_s >= 0.0, "--start-s must be a time >= 0");
    opts.start_ns = (args.start_s * 1e9).round() as i64;
    opts.compression = args.compression;
    if let Some(t) = args.rgb_topic {
        opts.rgb_topic = t;
    }
    if let Some(t) = args.aux_topic {
        opts.aux_topic = t;
    }
    if let Some(t) = args.gt_topic {
        opts.gt_topic = t;
    }
    let outs: Vec<PathBuf> =
        seqs.iter().map(|s| if single { args.out.clone() } else { args.out.join(&s.name) }).collect();
    if let Some(taken) = outs.iter().find(|o| o.exists()) {
        anyhow::bail!("{} exists: bags are never overwritten; remove it or choose another --out", taken.display());
    }
    let total: usize = seqs.iter().map(|s| s.len()).sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    let mut done_before = 0;
    for (seq, out) in seqs.iter().zip(&outs) {
        let s = convert::sequence_to_bag(seq, out, &opts, &mut |done, _| bar.set_position((done_before + done) as u64))
            .with_context(|| format!("converting sequence {}", seq.name))?;
        done_before += seq.len();
        bar.suspend(|| {
            println!(
                "{}: {} frames at {} Hz ({} without the target) -> {}",
                seq.name,
                s.frames,
                opts.rate_hz,
                s.absent,
                s.bag.display()
            )
        });
    }
    bar.finish_and_clear();
    println!(
        "topics: {} (sensor_msgs/Image), {} (sensor_msgs/Image), {} (vision_msgs/Detection2DArray)",
        opts.rgb_topic, opts.aux_topic, opts.gt_topic
    );
    println!(
        "replay: patrack replay BAG --rgb-topic {} --aux-topic {} --init-topic {} --params config/patrack.yaml",
        opts.rgb_topic, opts.aux_topic, opts.gt_topic
    );
    Ok(())
}
