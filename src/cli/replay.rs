//! `patrack replay`: tracks through a recorded rosbag2 bag offline and writes an output MCAP bag
//! (detections, confidence, optional debug images) plus a CSV/JSON of boxes and scores.

use std::path::PathBuf;

use super::common::ModelArgs;
use super::run::parse_box;
use crate::bag::replay::{self, InitSource, ReplayOptions};
use crate::sensor::Modality;
use crate::tracker::{BoxXywh, Tracker, TrackerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bag: a rosbag2 folder (metadata.yaml + .mcap or .db3 files) or one .mcap/.db3 file.
    pub bag: PathBuf,
    /// RGB image topic (sensor_msgs/Image or CompressedImage).
    #[arg(long)]
    pub rgb_topic: String,
    /// Auxiliary (thermal, depth or event) image topic.
    #[arg(long)]
    pub aux_topic: String,
    /// Initial box x,y,w,h in RGB pixels; tracking starts at the first frame pair.
    #[arg(long, value_parser = parse_box, conflicts_with = "init_topic", required_unless_present = "init_topic")]
    pub init: Option<BoxXywh>,
    /// Topic with the initial box (vision_msgs/Detection2DArray, Detection2D or
    /// sensor_msgs/RegionOfInterest); tracking starts at its first box.
    #[arg(long)]
    pub init_topic: Option<String>,
    /// What the aux topic carries: thermal, depth or event.
    #[arg(long, default_value = "thermal")]
    pub modality: Modality,
    /// Widest RGB/aux stamp spread accepted when pairing, in seconds (the node's sync.slop_s).
    #[arg(long)]
    pub slop_s: Option<f64>,
    /// Also write annotated debug images (sensor_msgs/Image rgb8) to /patrack/debug_image.
    #[arg(long)]
    pub debug_images: bool,
    /// Output folder: bag/ (MCAP rosbag2), tracks.csv, tracks.json. bag/ must not exist.
    #[arg(long, default_value = "out/replay")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let init = match (args.init, args.init_topic.clone()) {
        (Some(b), _) => InitSource::Box(b),
        (None, Some(t)) => InitSource::Topic(t),
        (None, None) => anyhow::bail!("pass --init x,y,w,h or --init-topic TOPIC"),
    };
    let mut opts = ReplayOptions::new(&args.rgb_topic, &args.aux_topic, init);
    opts.modality = args.modality;
    opts.max_interval_ns = match args.slop_s {
        Some(s) if s.is_finite() && s >= 0.0 => Some((s * 1e9).round() as i64),
        Some(s) => anyhow::bail!("--slop-s must be a finite number >= 0, got {s}"),
        None => None,
    };
    if args.debug_images {
        opts.debug_image_topic = Some("/patrack/debug_image".into());
    }
    let model = args.model.build()?;
    let mut tracker = Tracker::new(model, TrackerConfig::default()).map_err(anyhow::Error::msg)?;
    let s = replay::replay(&args.bag, &args.out, &mut tracker, &opts)?;
    println!(
        "replayed {} frame pairs ({} before the initial box skipped)\nbag: {}\nboxes: {} {}",
        s.pairs,
        s.skipped_before_init,
        s.bag.display(),
        s.csv.display(),
        s.json.display()
    );
    if args.model.model.is_none() {
        println!("NOTE: no --model given: the deterministic test weights do not track.");
    }
    Ok(())
}
