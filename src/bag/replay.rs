//! Offline replay: a recorded bag (MCAP or sqlite3) through the node's path (codecs, ApproximateTime pairing,
//! frame preparation, the same [`Tracker`]) into an output MCAP bag and a CSV/JSON of boxes.
//!
//! Deterministic: pairs come from [`pair_offline`] (stamps only, every pair, no drops), the
//! output log times are the RGB image stamps, and nothing depends on wall-clock time.

use std::path::{Path, PathBuf};

use super::{read_messages, BagError, BagMessage, BagWriter};
use crate::ros::msgs::{
    BoundingBox2D, CompressedImage, Detection2D, Detection2DArray, Float32, Header, Image, MsgError, ObjectHypothesis,
    ObjectHypothesisWithPose, Point2D, Pose2D, RegionOfInterest, RosMessage,
};
use crate::ros::params::NodeParams;
use crate::ros::sync::{pair_offline, SyncConfig, SyncError};
use crate::sensor::{self, AuxConfig, DecodedImage, ImageU8, Modality};
use crate::tracker::{BoxXywh, TargetState, TrackError, Tracker};

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Bag(#[from] BagError),
    #[error("topic {topic}, message at {stamp_ns} ns: {source}")]
    Decode { topic: String, stamp_ns: u64, source: MsgError },
    #[error("topic {topic}: type {type_name} is not an image (sensor_msgs/msg/Image or CompressedImage)")]
    NotImage { topic: String, type_name: String },
    #[error("topic {topic}: type {type_name} cannot initialise the tracker (vision_msgs/msg/Detection2DArray, Detection2D or sensor_msgs/msg/RegionOfInterest)")]
    NotInit { topic: String, type_name: String },
    #[error("frame at {stamp_ns} ns: {what}")]
    Frame { stamp_ns: i64, what: String },
    #[error("no initial box: pass --init x,y,w,h or an --init-topic with a detection before the last frame")]
    NoInit,
    #[error("no image pairs: {rgb} RGB and {aux} aux messages could not be paired")]
    NoPairs { rgb: usize, aux: usize },
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("tracking the frame at {stamp_ns} ns: {source}")]
    Track { stamp_ns: i64, source: TrackError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where the initial box comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InitSource {
    /// A box in RGB pixels; tracking starts at the first pair.
    Box(BoxXywh),
    /// The first message with a box on this topic; tracking starts at the first pair whose RGB
    /// stamp is at or after that message's stamp.
    Topic(String),
}

/// Replay settings.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub rgb_topic: String,
    pub aux_topic: String,
    pub init: InitSource,
    pub modality: Modality,
    pub aux: AuxConfig,
    /// ApproximateTime settings (the node's `sync.*`); the queue size is ignored offline.
    pub sync: SyncConfig,
    /// Output topic names.
    pub detections_topic: String,
    pub confidence_topic: String,
    /// `Some(topic)`: also write annotated debug images.
    pub debug_image_topic: Option<String>,
    /// `class_id` of the published hypothesis and `id` of the detection.
    pub label: String,
}

impl ReplayOptions {
    /// The node's defaults (its parameter defaults and output names `/patrack/...`).
    pub fn new(rgb_topic: &str, aux_topic: &str, init: InitSource) -> Self {
        let node = NodeParams::default();
        Self {
            rgb_topic: rgb_topic.into(),
            aux_topic: aux_topic.into(),
            init,
            modality: node.modality,
            aux: node.aux_config(),
            sync: node.sync_config(),
            detections_topic: "/patrack/detections".into(),
            confidence_topic: "/patrack/confidence".into(),
            debug_image_topic: None,
            label: node.class_id,
        }
    }
}

/// One tracked frame of the replay.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackRow {
    pub frame: usize,
    pub stamp_ns: i64,
    pub aux_stamp_ns: i64,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub score: f32,
    pub state: TargetState,
}

/// What a replay produced.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    pub pairs: usize,
    /// Pairs before the initial box (not tracked, nothing written).
    pub skipped_before_init: usize,
    pub rows: Vec<TrackRow>,
    pub bag: PathBuf,
    pub csv: PathBuf,
    pub json: PathBuf,
}

/// An image payload decoded by the node's codecs; the header is kept for the outputs.
fn decode_image_msg(m: &BagMessage) -> Result<(Header, DecodedImage), ReplayError> {
    let derr = |source| ReplayError::Decode { topic: m.topic.clone(), stamp_ns: m.log_time_ns, source };
    let ferr = |stamp_ns: i64, what: String| ReplayError::Frame { stamp_ns, what };
    match m.type_name.as_str() {
        "sensor_msgs/msg/Image" => {
            let im = Image::decode(&m.data).map_err(derr)?;
            let d = sensor::decode_image(&im.encoding, im.width, im.height, im.step, im.is_bigendian, &im.data)
                .map_err(|e| ferr(im.header.stamp_ns(), e.to_string()))?;
            Ok((im.header, d))
        }
        "sensor_msgs/msg/CompressedImage" => {
            let im = CompressedImage::decode(&m.data).map_err(derr)?;
            let d = sensor::decode_compressed(&im.format, &im.data)
                .map_err(|e| ferr(im.header.stamp_ns(), e.to_string()))?;
            Ok((im.header, d))
        }
        other => Err(ReplayError::NotImage { topic: m.topic.clone(), type_name: other.into() }),
    }
}

/// The header stamp of an image message without decoding its pixels.
fn image_stamp(m: &BagMessage) -> Result<i64, ReplayError> {
    let derr = |source| ReplayError::Decode { topic: m.topic.clone(), stamp_ns: m.log_time_ns, source };
    match m.type_name.as_str() {
        "sensor_msgs/msg/Image" => Ok(Image::decode(&m.data).map_err(derr)?.header.stamp_ns()),
        "sensor_msgs/msg/CompressedImage" => Ok(CompressedImage::decode(&m.data).map_err(derr)?.header.stamp_ns()),
        other => Err(ReplayError::NotImage { topic: m.topic.clone(), type_name: other.into() }),
    }
}

/// The first usable box of an init topic, with its stamp.
fn init_from_messages(topic: &str, msgs: &[&BagMessage]) -> Result<Option<(i64, BoxXywh)>, ReplayError> {
    let from_bbox = |b: &BoundingBox2D| {
        BoxXywh::new(b.center.position.x - b.size_x / 2.0, b.center.position.y - b.size_y / 2.0, b.size_x, b.size_y)
    };
    for m in msgs {
        let derr = |source| ReplayError::Decode { topic: topic.into(), stamp_ns: m.log_time_ns, source };
        let found = match m.type_name.as_str() {
            "vision_msgs/msg/Detection2DArray" => {
                let a = Detection2DArray::decode(&m.data).map_err(derr)?;
                a.detections.first().map(|d| (a.header.stamp_ns(), from_bbox(&d.bbox)))
            }
            "vision_msgs/msg/Detection2D" => {
                let d = Detection2D::decode(&m.data).map_err(derr)?;
                Some((d.header.stamp_ns(), from_bbox(&d.bbox)))
            }
            "sensor_msgs/msg/RegionOfInterest" => {
                let r = RegionOfInterest::decode(&m.data).map_err(derr)?;
                // RegionOfInterest has no header: its log time stands for its stamp.
                let stamp = i64::try_from(m.log_time_ns).unwrap_or(i64::MAX);
                Some((stamp, BoxXywh::new(r.x_offset as f64, r.y_offset as f64, r.width as f64, r.height as f64)))
            }
            other => return Err(ReplayError::NotInit { topic: topic.into(), type_name: other.into() }),
        };
        if let Some((stamp, b)) = found.filter(|(_, b)| b.is_finite() && b.w > 0.0 && b.h > 0.0) {
            return Ok(Some((stamp, b)));
        }
    }
    Ok(None)
}

fn detections_msg(header: &Header, bbox: Option<BoxXywh>, score: f32, label: &str) -> Detection2DArray {
    let detections = bbox
        .map(|b| Detection2D {
            header: header.clone(),
            results: vec![ObjectHypothesisWithPose {
                hypothesis: ObjectHypothesis { class_id: label.into(), score: score as f64 },
                ..Default::default()
            }],
            bbox: BoundingBox2D {
                center: Pose2D { position: Point2D { x: b.x + b.w / 2.0, y: b.y + b.h / 2.0 }, theta: 0.0 },
                size_x: b.w,
                size_y: b.h,
            },
            id: label.into(),
        })
        .into_iter()
        .collect();
    Detection2DArray { header: header.clone(), detections }
}

fn rgb8_msg(header: &Header, img: &ImageU8) -> Image {
    Image {
        header: header.clone(),
        height: img.height as u32,
        width: img.width as u32,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: (img.width * 3) as u32,
        data: img.data.clone(),
    }
}

/// Replays `bag` into `out_dir`: `out_dir/bag/` (MCAP rosbag2), `out_dir/tracks.csv` and
/// `out_dir/tracks.json`. `tracker` is reset first.
pub fn replay(
    bag: &Path,
    out_dir: &Path,
    tracker: &mut Tracker,
    opts: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    let mut topics = vec![opts.rgb_topic.as_str(), opts.aux_topic.as_str()];
    if let InitSource::Topic(t) = &opts.init {
        topics.push(t);
    }
    let (msgs, _) = read_messages(bag, &topics)?;
    let on = |t: &str| msgs.iter().filter(move |m| m.topic == t).collect::<Vec<_>>();
    let (rgb_msgs, aux_msgs) = (on(&opts.rgb_topic), on(&opts.aux_topic));
    let stamped = |v: &[&BagMessage]| -> Result<Vec<(i64, usize)>, ReplayError> {
        v.iter().enumerate().map(|(i, m)| Ok((image_stamp(m)?, i))).collect()
    };
    let (pairs, _stats) = pair_offline(stamped(&rgb_msgs)?, stamped(&aux_msgs)?, opts.sync)?;
    if pairs.is_empty() {
        return Err(ReplayError::NoPairs { rgb: rgb_msgs.len(), aux: aux_msgs.len() });
    }
    let (init_stamp, init_box) = match &opts.init {
        InitSource::Box(b) => (i64::MIN, *b),
        InitSource::Topic(t) => init_from_messages(t, &on(t))?.ok_or(ReplayError::NoInit)?,
    };
    let start = pairs.iter().position(|p| p.stamp_a_ns >= init_stamp).ok_or(ReplayError::NoInit)?;

    std::fs::create_dir_all(out_dir).map_err(|source| ReplayError::Io { path: out_dir.into(), source })?;
    let mut writer = BagWriter::create(&out_dir.join("bag"))?;
    writer.add_topic(&opts.detections_topic, Detection2DArray::TYPE_NAME)?;
    writer.add_topic(&opts.confidence_topic, Float32::TYPE_NAME)?;
    if let Some(t) = &opts.debug_image_topic {
        writer.add_topic(t, Image::TYPE_NAME)?;
    }
    tracker.reset();
    let bar = indicatif::ProgressBar::new((pairs.len() - start) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} frames  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut rows = Vec::with_capacity(pairs.len() - start);
    let mut buf = Vec::new();
    for (k, pair) in pairs.iter().enumerate().skip(start) {
        let (header, rgb) = decode_image_msg(rgb_msgs[pair.a])?;
        let (_, aux) = decode_image_msg(aux_msgs[pair.b])?;
        let ferr = |what: String| ReplayError::Frame { stamp_ns: pair.stamp_a_ns, what };
        let rgb = sensor::prepare_rgb(rgb).map_err(|e| ferr(e.to_string()))?;
        let frame = sensor::prepare_frame(&rgb, aux, opts.modality, &opts.aux).map_err(|e| ferr(e.to_string()))?;
        let terr = |source| ReplayError::Track { stamp_ns: pair.stamp_a_ns, source };
        let (bbox, score, state) = if k == start {
            tracker.init(&frame, init_box).map_err(terr)?;
            (init_box, 1.0f32, TargetState::Tracking)
        } else {
            let r = tracker.track(&frame).map_err(terr)?;
            (r.bbox, r.score, r.state)
        };
        // The log time is the image stamp, so the output lines up with the input when played.
        let log_time = u64::try_from(pair.stamp_a_ns).unwrap_or(0);
        let shown = (state == TargetState::Tracking).then_some(bbox);
        detections_msg(&header, shown, score, &opts.label).encode_into(&mut buf).map_err(|e| ferr(e.to_string()))?;
        writer.write(&opts.detections_topic, log_time, &buf)?;
        Float32 { data: score }.encode_into(&mut buf).map_err(|e| ferr(e.to_string()))?;
        writer.write(&opts.confidence_topic, log_time, &buf)?;
        if let Some(t) = &opts.debug_image_topic {
            let view = crate::overlay::annotate(&frame, shown, score, state, &format!("#{}", k + 1));
            rgb8_msg(&header, &view).encode_into(&mut buf).map_err(|e| ferr(e.to_string()))?;
            writer.write(t, log_time, &buf)?;
        }
        rows.push(TrackRow {
            frame: k,
            stamp_ns: pair.stamp_a_ns,
            aux_stamp_ns: pair.stamp_b_ns,
            x: bbox.x,
            y: bbox.y,
            w: bbox.w,
            h: bbox.h,
            score,
            state,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let bag_dir = writer.finish()?;
    let csv_path = out_dir.join("tracks.csv");
    let mut csv = String::from("frame,stamp_ns,aux_stamp_ns,x,y,w,h,score,state\n");
    for r in &rows {
        csv.push_str(&format!(
            "{},{},{},{:.3},{:.3},{:.3},{:.3},{:.6},{}\n",
            r.frame, r.stamp_ns, r.aux_stamp_ns, r.x, r.y, r.w, r.h, r.score, r.state
        ));
    }
    std::fs::write(&csv_path, csv).map_err(|source| ReplayError::Io { path: csv_path.clone(), source })?;
    let json_path = out_dir.join("tracks.json");
    let json = serde_json::to_string_pretty(&rows)
        .map_err(|e| ReplayError::Io { path: json_path.clone(), source: e.into() })?;
    std::fs::write(&json_path, json).map_err(|source| ReplayError::Io { path: json_path.clone(), source })?;
    Ok(ReplaySummary {
        pairs: pairs.len(),
        skipped_before_init: start,
        rows,
        bag: bag_dir,
        csv: csv_path,
        json: json_path,
    })
}
