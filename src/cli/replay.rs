//! `patrack replay`: tracks through a recorded rosbag2 bag offline, as the node would, and
//! writes an output MCAP bag (detections, confidence, optional debug images), `tracks.csv`,
//! `tracks.json` and `summary.json` (what was read, paired, skipped and why).
//!
//! Settings are the node's: its parameter defaults, or the node's own parameter files
//! (`--params config/rgbt.yaml`), so a replay reproduces what the node does on the robot.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::Context;

use super::common::{catch_interrupt, ModelArgs};
use super::run::parse_box;
use crate::bag::replay::{
    self, CameraSource, InitSource, ReplayError, ReplayOptions, ReplayProgress, ReplaySummary, StreamCounts,
};
use crate::eval::layout::{self, DatasetKind, FrameResult};
use crate::ros::params::NodeParams;
use crate::ros::targets::{InitBox, TargetSet};
use crate::sensor::camera::PinholeIntrinsics;
use crate::sensor::Modality;
use crate::tracker::{BoxXywh, TargetId};

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
    /// Initial box x,y,w,h in RGB pixels, applied to the first frame pair. Repeat it to track
    /// several targets, each as ID:x,y,w,h (or x,y,w,h: numbered in order), with --max-targets.
    #[arg(long, value_parser = parse_init, conflicts_with = "init_topic")]
    pub init: Vec<InitBox>,
    /// Topic with the initial box (vision_msgs/Detection2DArray, Detection2D or
    /// sensor_msgs/RegionOfInterest): its first box is applied as the node applies ~/init; later
    /// messages are ignored. Without --init or --init-topic, the parameters' initial_bbox is used.
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
    /// RGB-D: the RGB camera's sensor_msgs/CameraInfo topic; the latest message before each pair
    /// is used, as the node uses the latest it received. Gives ~/target_point, ~/detections_3d
    /// and ~/markers in the output bag and x_m,y_m,z_m in tracks.csv.
    #[arg(long, conflicts_with = "intrinsics")]
    pub camera_info_topic: Option<String>,
    /// RGB-D: the RGB camera's pinhole intrinsics fx,fy,cx,cy in pixels (pixel-centre
    /// convention, as in CameraInfo's K), for bags without a CameraInfo topic (converted
    /// DepthTrack sequences).
    #[arg(long, value_parser = parse_intrinsics)]
    pub intrinsics: Option<PinholeIntrinsics>,
    /// Also write the debug images (sensor_msgs/Image rgb8) to ~/debug_image.
    #[arg(long)]
    pub debug_images: bool,
    /// The node's namespace, for the output topic names.
    #[arg(long, default_value = "/")]
    pub namespace: String,
    /// The node's name: outputs go to <namespace>/<node-name>/detections etc.
    #[arg(long, default_value = "patrack")]
    pub node_name: String,
    /// Targets tracked at once (overrides the parameters' max_targets): 1 is the single target,
    /// more track every --init box, or every box of the --init-topic message, by id.
    #[arg(long)]
    pub max_targets: Option<u32>,
    /// Output folder: bag/ (MCAP rosbag2), tracks.csv, tracks.json, summary.json.
    #[arg(long, default_value = "out/replay")]
    pub out: PathBuf,
    /// Replace the outputs of an earlier replay in --out.
    #[arg(long)]
    pub force: bool,
    /// Also write the track as a raw benchmark result into this folder (as `patrack eval`
    /// writes it), so `patrack eval --results` scores the replay of a converted sequence.
    #[arg(long, requires = "dataset")]
    pub bench_results: Option<PathBuf>,
    /// Layout of the --bench-results file.
    #[arg(long, value_enum, requires = "bench_results")]
    pub dataset: Option<DatasetKind>,
    /// Sequence name of the --bench-results file (default: the bag folder's name).
    #[arg(long, requires = "bench_results")]
    pub sequence: Option<String>,
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
    if let Some(m) = args.modality {
        params = params.with_value("modality", m.to_string().into()).context("--modality")?;
    }
    if let Some(n) = args.max_targets {
        params = params.with_value("max_targets", n.into()).context("--max-targets")?;
    }
    let init = match (args.init.as_slice(), args.init_topic.clone(), params.initial_box()) {
        ([one], _, _) if one.id.is_none() => InitSource::Box(one.bbox),
        ([], Some(t), _) => InitSource::Topic(t),
        ([], None, Some(b)) => InitSource::Box(b),
        ([], None, None) => {
            anyhow::bail!("no initial box: pass --init x,y,w,h, --init-topic TOPIC or initial_bbox in --params")
        }
        (boxes, _, _) => {
            if params.max_targets == 1 {
                anyhow::bail!(
                    "{} --init boxes with ids track several targets: pass --max-targets N (N >= {})",
                    boxes.len(),
                    boxes.len()
                );
            }
            InitSource::Boxes(boxes.to_vec())
        }
    };
    if args.bench_results.is_some() && params.max_targets > 1 {
        anyhow::bail!("--bench-results writes one target's track: it needs --max-targets 1");
    }
    let mut opts = ReplayOptions::new(&args.rgb_topic, &args.aux_topic, init);
    opts.params = params;
    opts.debug_images = args.debug_images;
    opts.namespace = args.namespace.clone();
    opts.node_name = args.node_name.clone();
    opts.force = args.force;
    opts.camera = match (args.camera_info_topic.clone(), args.intrinsics) {
        (Some(t), _) => CameraSource::Topic(t),
        (None, Some(k)) => CameraSource::Intrinsics(k),
        (None, None) => CameraSource::None,
    };
    let model = args.model.build()?;
    let mut targets = TargetSet::new(model, opts.params.tracker_config(), opts.params.max_targets as usize)?;

    let interrupted = catch_interrupt();
    // The message count is known when the bag has metadata.yaml or MCAP summaries; a killed
    // recording has neither, and then only the messages read so far are shown.
    let bar = indicatif::ProgressBar::new(0);
    let style = |template: &str| {
        indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    };
    bar.set_style(style("{spinner} {pos} messages  {msg}"));
    let mut total_known = false;
    let mut frames: Vec<FrameResult> = Vec::new();
    let started = std::time::Instant::now();
    let mut on_progress = |p: &ReplayProgress<'_>| {
        if let (Some(total), false) = (p.messages_total, total_known) {
            bar.set_style(style("{bar:30} {pos}/{len} messages  {msg}  eta {eta}"));
            bar.set_length(total);
            total_known = true;
        }
        bar.set_position(p.messages_read);
        if !p.answered.is_empty() {
            bar.set_message(format!("{} pairs answered", p.pairs_answered));
        }
        if args.bench_results.is_some() {
            for a in p.answered {
                if let Some(r) = a.rows.first() {
                    let score = (!frames.is_empty()).then_some(r.score);
                    let bbox = BoxXywh::new(r.x, r.y, r.w, r.h);
                    frames.push(FrameResult { bbox, score, time_s: a.inference_ms / 1e3 });
                }
            }
        }
        if interrupted.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let result = replay::replay(&args.bag, &args.out, &mut targets, &opts, &mut on_progress);
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let summary = match &result {
        Ok(s) => s,
        Err(ReplayError::Failed { summary, .. }) => summary.as_ref(),
        Err(_) => return result.map(|_| ()).map_err(Into::into),
    };
    print_summary(summary, seconds);
    if args.model.model.is_none() {
        println!("NOTE: no --model given: the deterministic test weights do not track.");
    }
    result?;
    if let (Some(dir), Some(kind)) = (&args.bench_results, args.dataset) {
        let seq = match &args.sequence {
            Some(s) => s.clone(),
            None => bench_sequence_name(&args.bag)?,
        };
        layout::write_result(kind, dir, &seq, &frames)?;
        println!("benchmark result: {} ({} frames)", layout::result_path(kind, dir, &seq).display(), frames.len());
    }
    Ok(())
}

/// `x,y,w,h` or `ID:x,y,w,h` (the id as in `~/init`'s `Detection2D.id`).
fn parse_init(s: &str) -> Result<InitBox, String> {
    let (id, numbers) = match s.rsplit_once(':') {
        Some((id, numbers)) => (Some(TargetId::new(id).map_err(|e| format!("\"{s}\": {e}"))?), numbers),
        None => (None, s),
    };
    let bbox = parse_box(numbers)?;
    Ok(InitBox { id: id.map(|i| i.to_string()), bbox })
}

/// `fx,fy,cx,cy` in pixels.
fn parse_intrinsics(s: &str) -> Result<PinholeIntrinsics, String> {
    let v: Vec<f64> =
        s.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|e| format!("\"{s}\": {e}"))?;
    match v.as_slice() {
        [fx, fy, cx, cy] => PinholeIntrinsics::new(*fx, *fy, *cx, *cy).map_err(|e| format!("\"{s}\": {e}")),
        _ => Err(format!("expected fx,fy,cx,cy in pixels, got \"{s}\"")),
    }
}

/// The bag folder's (or file's) name, the sequence name `patrack bag` gives a converted bag.
fn bench_sequence_name(bag: &std::path::Path) -> anyhow::Result<String> {
    let name = if bag.is_dir() { bag.file_name() } else { bag.file_stem() };
    name.map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("cannot name the sequence of {}: pass --sequence", bag.display()))
}

fn print_stream(label: &str, c: &StreamCounts) {
    println!(
        "  {label} {}: {} read, {} paired; skipped: {} malformed, {} unmatched (a nearer partner was paired), \
         {} stamp gap over max_interval_s, {} queue overflow, {} out of order, {} without partner at the end; \
         stamps going backwards: {}",
        c.topic,
        c.read,
        c.paired,
        c.malformed,
        c.unmatched,
        c.stamp_gap,
        c.queue_overflow,
        c.out_of_order,
        c.stream_ended,
        c.stamps_backwards
    );
}

fn print_summary(s: &ReplaySummary, seconds: f64) {
    let fps = if seconds > 0.0 { s.answered as f64 / seconds } else { 0.0 };
    println!(
        "replayed {} frame pairs: {} answered ({} before the initial box), {} tracked, {fps:.1} pairs/s",
        s.pairs, s.answered, s.answered_before_init, s.tracked
    );
    print_stream("rgb", &s.rgb);
    print_stream("aux", &s.aux);
    if let Some(i) = &s.init {
        let used = i.used_stamp_ns.map_or("none".to_string(), |t| format!("the box stamped {t} ns"));
        println!(
            "  init {}: {} read, used {used}; {} without a box before it, {} malformed, {} after it ignored",
            i.topic, i.read, i.without_box, i.malformed, i.ignored
        );
    }
    if let Some(c) = &s.camera_info {
        println!(
            "  camera info {}: {} read, {} malformed, {} refused; {} answered pairs before the first valid one",
            c.topic, c.read, c.malformed, c.invalid, c.pairs_before_first
        );
    }
    if s.targets_3d > 0 || s.depth_missing > 0 {
        println!(
            "  3D: {} answered pairs placed, {} tracked pairs without a 3D position (too few depth readings in the box)",
            s.targets_3d, s.depth_missing
        );
    }
    println!(
        "  pairs skipped: {} (rgb image), {} (aux image) could not be decoded or combined; \
         {} tracking errors, {} initial boxes applied, {} rejected",
        s.frame_errors.rgb_image, s.frame_errors.aux_image, s.track_errors, s.inits_applied, s.inits_rejected
    );
    if s.log_time_backwards > 0 {
        println!(
            "  {} messages are stored before an earlier-logged one (storage order is kept; ros2 bag play would reorder them)",
            s.log_time_backwards
        );
    }
    for n in &s.notes {
        println!("  note: {n}");
    }
    if s.stopped.is_some() {
        // The reason is the error the command ends with.
        println!("  stopped before the end of the bag: the outputs hold what was done");
    }
    println!(
        "bag: {}\nboxes: {} {}\nsummary: {}",
        s.bag.display(),
        s.csv.display(),
        s.json.display(),
        s.summary.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_boxes_take_an_optional_id() {
        let b = parse_init("person:1,2,3,4").unwrap();
        assert_eq!((b.id.as_deref(), b.bbox), (Some("person"), BoxXywh::new(1.0, 2.0, 3.0, 4.0)));
        assert_eq!(parse_init("1,2,3,4").unwrap().id, None);
        assert!(parse_init(":1,2,3,4").unwrap_err().contains("must not be empty"));
        assert!(parse_init("a:1,2,3").is_err());
    }

    #[test]
    fn intrinsics_are_four_numbers_with_positive_focal_lengths() {
        let k = parse_intrinsics("600, 610,319.5,239.5").unwrap();
        assert_eq!((k.fx_px, k.fy_px, k.cx_px, k.cy_px, k.width_px), (600.0, 610.0, 319.5, 239.5, 0));
        assert_eq!(
            parse_intrinsics("600,610,319.5").unwrap_err(),
            "expected fx,fy,cx,cy in pixels, got \"600,610,319.5\""
        );
        assert!(parse_intrinsics("600,x,1,1").unwrap_err().starts_with("\"600,x,1,1\": invalid float"));
        assert!(parse_intrinsics("0,600,1,1").unwrap_err().contains("focal lengths must be finite and positive"));
    }
}
