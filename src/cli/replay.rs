//! `patrack replay`: tracks through a recorded rosbag2 bag offline and writes an output MCAP bag
//! (detections, confidence, optional debug images) plus a CSV/JSON of boxes and scores.
//!
//! Settings are the node's: its parameter defaults, or the node's own parameter files
//! (`--params config/rgbt.yaml`), so a replay reproduces what the node does on the robot.

use std::path::PathBuf;

use anyhow::Context;

use super::common::ModelArgs;
use super::run::parse_box;
use crate::bag::replay::{self, InitSource, ReplayOptions};
use crate::ros::params::NodeParams;
use crate::sensor::Modality;
use crate::tracker::{BoxXywh, Tracker};

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
    #[arg(long, value_parser = parse_box, conflicts_with = "init_topic")]
    pub init: Option<BoxXywh>,
    /// Topic with the initial box (vision_msgs/Detection2DArray, Detection2D or
    /// sensor_msgs/RegionOfInterest); tracking starts at its first box. Without --init or
    /// --init-topic, the parameters' initial_bbox is used.
    #[arg(long)]
    pub init_topic: Option<String>,
    /// The node's parameter files (ros__parameters YAML, later files override earlier ones):
    /// modality, sync, tracker, thermal, registration, class_id, publish_debug_image.
    #[arg(long)]
    pub params: Vec<PathBuf>,
    /// What the aux topic carries (overrides the parameters): thermal, depth or event.
    #[arg(long)]
    pub modality: Option<Modality>,
    /// Widest RGB/aux stamp spread accepted when pairing, seconds (overrides sync.max_interval_s).
    #[arg(long)]
    pub max_interval_s: Option<f64>,
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
    let mut params = if args.params.is_empty() {
        NodeParams::default()
    } else {
        NodeParams::from_files(&args.params).context("reading --params")?
    };
    if let Some(s) = args.max_interval_s {
        params = params.with_value("sync.max_interval_s", s.into()).context("--max-interval-s")?;
    }
    let init = match (args.init, args.init_topic.clone(), params.initial_box()) {
        (Some(b), _, _) => InitSource::Box(b),
        (None, Some(t), _) => InitSource::Topic(t),
        (None, None, Some(b)) => InitSource::Box(b),
        (None, None, None) => {
            anyhow::bail!("no initial box: pass --init x,y,w,h, --init-topic TOPIC or initial_bbox in --params")
        }
    };
    let mut opts = ReplayOptions::new(&args.rgb_topic, &args.aux_topic, init);
    opts.modality = args.modality.unwrap_or(params.modality);
    opts.aux = params.aux_config();
    opts.sync = params.sync_config();
    opts.label = params.class_id.clone();
    if args.debug_images || params.publish_debug_image {
        opts.debug_image_topic = Some("/patrack/debug_image".into());
    }
    let model = args.model.build()?;
    let mut tracker = Tracker::new(model, params.tracker_config()).map_err(anyhow::Error::msg)?;
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
