//! Offline replay: a recorded bag (MCAP or sqlite3) through what the node does, message by
//! message, into an output MCAP bag, `tracks.csv`, `tracks.json` and `summary.json`.
//!
//! # The node's rules, in the node's order
//! * Messages are taken in storage order ([`crate::bag`]): the order the recorder received
//!   them, which is the order `ros2 bag play` publishes them and the node receives them.
//! * RGB and aux images are paired by their header stamps with the node's
//!   [`ApproxSync`] (ApproximateTime, `sync.queue_size`, `sync.max_interval_s`), fed in that
//!   storage order. A message whose stamp goes backwards is placed in stamp order while it still
//!   can be, and otherwise dropped and counted (`out_of_order`), as in the node; nothing is
//!   re-sorted behind the node's back. Each stream's backward steps are counted
//!   (`stamps_backwards`), and so are log times that go backwards between storage order and
//!   log-time order (`log_time_backwards`: `ros2 bag play` would publish those in log-time
//!   order).
//! * Every pair is answered, as the node answers every pair when inference keeps up: an empty
//!   `~/detections` before the initial box, then the track. The initial box applies like the
//!   node's `~/init` (to a buffered pair with its stamp, else to the first pair stamped at or
//!   after it) or like its `initial_bbox` parameter (the first pair).
//! * Outputs are built by [`crate::ros::output`], the node's own code, and logged at the RGB
//!   stamp: the same pair gives byte-identical messages in the node and here.
//! * A pair whose images cannot be decoded or combined is skipped and counted by cause; a
//!   malformed message is skipped and counted, as the node does.
//! * RGB-D: the RGB camera's calibration is the latest `CameraInfo` read from
//!   [`CameraSource::Topic`] before the pair (the node uses the latest one it received), or fixed
//!   intrinsics ([`CameraSource::Intrinsics`]); with one, every answered pair also gets
//!   `~/detections_3d` and `~/markers`, and `~/target_point` when the target is placed in 3D.
//!
//! Memory stays bounded: the bag is streamed, images are decoded only when their pair is
//! tracked, the synchroniser holds at most `sync.queue_size` messages per stream, and the last
//! [`RECENT_PAIRS`] pairs are kept for a late initial box, as in the node. Rows are written
//! to the CSV and JSON as they are made; when the replay stops early (an error, or the caller
//! asking to stop) the output bag and files are finished with what was done.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use super::{BagError, BagMessage, BagReader, BagWriter};
use crate::ros::msgs::{
    CameraInfo, CompressedImage, Detection2D, Detection2DArray, Header, Image, MsgError, RegionOfInterest, RosMessage,
};
use crate::ros::node::RECENT_PAIRS;
use crate::ros::output::{self, Answer3d, Output};
use crate::ros::params::{NodeParams, ParamsError};
use crate::ros::sync::{ApproxSync, DropCounts, SyncError};
use crate::ros::target3d::{self, CameraModel};
use crate::ros::targets::{self, answer_pair, Answer, Event, TargetSet};
use crate::sensor::camera::PinholeIntrinsics;
use crate::sensor::depth::{DepthImage, Target3d};
use crate::sensor::{self, ImageU8, Modality};
use crate::tracker::{BoxXywh, TargetState};

/// The output files of a replay, relative to its output folder.
pub const OUTPUT_BAG: &str = "bag";
pub const TRACKS_CSV: &str = "tracks.csv";
pub const TRACKS_JSON: &str = "tracks.json";
pub const SUMMARY_JSON: &str = "summary.json";

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Bag(#[from] BagError),
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("topic {topic}: type {type_name} is not an image (sensor_msgs/msg/Image or CompressedImage)")]
    NotImage { topic: String, type_name: String },
    #[error("topic {topic}: type {type_name} cannot initialise the tracker (vision_msgs/msg/Detection2DArray, Detection2D or sensor_msgs/msg/RegionOfInterest)")]
    NotInit { topic: String, type_name: String },
    #[error("topic {topic}: type {type_name} is not sensor_msgs/msg/CameraInfo")]
    NotCameraInfo { topic: String, type_name: String },
    #[error("a camera calibration is for RGB-D replays: the modality is {modality} (set --modality depth)")]
    CameraWithoutDepth { modality: Modality },
    #[error(transparent)]
    Topics(#[from] crate::limits::TopicError),
    #[error("{dir} holds the outputs of an earlier replay ({found}): pass --force to replace them, or choose another output folder")]
    OutputExists { dir: PathBuf, found: String },
    #[error("{path} is not a replay output bag (it holds {what}); not replacing it")]
    NotOurs { path: PathBuf, what: String },
    #[error("no initial box was applied: {0}")]
    NoInit(String),
    #[error("no image pairs: {rgb} RGB and {aux} aux messages could not be paired (see the summary for why)")]
    NoPairs { rgb: u64, aux: u64 },
    #[error(transparent)]
    Tracker(crate::tracker::TrackError),
    #[error("{given} initial boxes need max_targets >= {given}, got {max} (--max-targets)")]
    TooManyInits { given: usize, max: usize },
    #[error("stopped on request")]
    Interrupted,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("encoding an output message: {0}")]
    Encode(MsgError),
    /// The replay did not complete; the outputs hold what was done.
    #[error("{source} (the outputs of what was done are in {})", summary.bag.parent().unwrap_or(Path::new(".")).display())]
    Failed { summary: Box<ReplaySummary>, source: Box<ReplayError> },
}

/// Where the initial box comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InitSource {
    /// A box in RGB pixels applied to the first pair, like the node's `initial_bbox` parameter.
    Box(BoxXywh),
    /// Several targets' boxes (with their ids; none: numbered in order), applied to the first
    /// pair like `~/init` messages (`max_targets` must allow them).
    Boxes(Vec<targets::InitBox>),
    /// The first message with a usable box on this topic, applied like the node's `~/init`;
    /// later messages on it are ignored (a ground-truth topic has a box on every frame). With
    /// `max_targets` > 1 every box of that message starts a target, named by its detection's id.
    Topic(String),
}

/// Where an RGB-D replay takes the RGB camera's calibration from.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraSource {
    /// None: no 3D outputs.
    None,
    /// `sensor_msgs/CameraInfo` messages on this topic, the latest before each pair.
    Topic(String),
    /// Fixed intrinsics (for recordings without a CameraInfo topic, e.g. converted DepthTrack
    /// sequences); the images' frame ids are kept.
    Intrinsics(PinholeIntrinsics),
}

/// Replay settings.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub rgb_topic: String,
    pub aux_topic: String,
    pub init: InitSource,
    /// The node's parameters: modality, sync, tracker, thermal, registration, class_id,
    /// publish_debug_image, debug_aux_blend.
    pub params: NodeParams,
    /// Write `~/debug_image` even when `publish_debug_image` is off.
    pub debug_images: bool,
    /// The node's namespace and name, which give the output topic names.
    pub namespace: String,
    pub node_name: String,
    /// Replace the outputs of an earlier replay in the output folder.
    pub force: bool,
    /// RGB-D: the RGB camera's calibration, for the 3D outputs.
    pub camera: CameraSource,
}

impl ReplayOptions {
    /// The node's defaults: its parameter defaults and output names (`/patrack/detections`).
    pub fn new(rgb_topic: &str, aux_topic: &str, init: InitSource) -> Self {
        Self {
            rgb_topic: rgb_topic.into(),
            aux_topic: aux_topic.into(),
            init,
            params: NodeParams::default(),
            debug_images: false,
            namespace: "/".into(),
            node_name: "patrack".into(),
            force: false,
            camera: CameraSource::None,
        }
    }

    pub fn topic(&self, output: Output) -> String {
        output.resolved(&self.namespace, &self.node_name)
    }

    fn debug_wanted(&self) -> bool {
        self.debug_images || self.params.publish_debug_image
    }
}

/// One target's box in an answered pair (a row of `tracks.csv`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackRow {
    /// The target's id (its track number with one target), as in `~/detections`.
    #[serde(default)]
    pub id: String,
    /// Index of the pair among the synchronised pairs, from 0.
    pub frame: usize,
    pub stamp_ns: i64,
    pub aux_stamp_ns: i64,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub score: f32,
    pub state: TargetState,
    /// RGB-D: the target's surface point in the RGB camera's optical frame, metres, when it was
    /// placed in 3D (`~/target_point`).
    #[serde(default)]
    pub x_m: Option<f64>,
    #[serde(default)]
    pub y_m: Option<f64>,
    #[serde(default)]
    pub z_m: Option<f64>,
}

/// One stream's messages and what became of them. `read` = `malformed` + `paired` + the drops
/// (`unmatched`, `stamp_gap`, `queue_overflow`, `out_of_order`) + `stream_ended`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamCounts {
    pub topic: String,
    pub read: u64,
    /// CDR that did not decode: skipped.
    pub malformed: u64,
    /// Header stamp older than the previous message's on the stream, in storage order.
    pub stamps_backwards: u64,
    pub paired: u64,
    /// A nearer message of the other stream was paired instead (e.g. a faster camera's extra
    /// frames).
    pub unmatched: u64,
    /// No partner within `sync.max_interval_s`.
    pub stamp_gap: u64,
    /// Pushed out of the `sync.queue_size` queue while the other stream was silent.
    pub queue_overflow: u64,
    /// Stamp older than what the stream had already paired or dropped.
    pub out_of_order: u64,
    /// Still without a partner when the bag (or the replay) ended, e.g. the other stream ended.
    pub stream_ended: u64,
}

impl StreamCounts {
    fn new(topic: &str) -> Self {
        Self { topic: topic.into(), ..Self::default() }
    }

    fn set_drops(&mut self, d: &DropCounts, ended: u64) {
        self.unmatched = d.unmatched - ended.min(d.unmatched);
        self.stamp_gap = d.too_wide;
        self.queue_overflow = d.queue_overflow;
        self.out_of_order = d.out_of_order;
    }
}

/// The init topic's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InitCounts {
    pub topic: String,
    pub read: u64,
    pub malformed: u64,
    /// Messages without a usable box before the first one (an empty array, a zero-size box).
    pub without_box: u64,
    /// Stamp of the box that was used.
    pub used_stamp_ns: Option<i64>,
    /// Messages after the one used.
    pub ignored: u64,
}

/// The CameraInfo topic's messages (RGB-D).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CameraInfoCounts {
    pub topic: String,
    pub read: u64,
    pub malformed: u64,
    /// Refused calibrations (zero focal length, binning, a region of interest).
    pub invalid: u64,
    /// Answered pairs before the first valid calibration (without 3D outputs).
    pub pairs_before_first: u64,
}

/// Pairs skipped because their images could not be decoded or combined, by image.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameErrors {
    pub rgb_image: u64,
    pub aux_image: u64,
}

/// What a replay did (also `summary.json`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplaySummary {
    pub rgb: StreamCounts,
    pub aux: StreamCounts,
    pub init: Option<InitCounts>,
    /// Synchronised pairs.
    pub pairs: u64,
    /// Pairs answered on `~/detections` (every pair not skipped for a frame error).
    pub answered: u64,
    /// Of those, answered before the initial box (empty detections, as the node does).
    pub answered_before_init: u64,
    /// Rows of `tracks.csv`: answered pairs with a box.
    pub tracked: u64,
    pub frame_errors: FrameErrors,
    pub track_errors: u64,
    pub inits_applied: u64,
    pub inits_rejected: u64,
    /// RGB-D: the CameraInfo topic, when one was given.
    #[serde(default)]
    pub camera_info: Option<CameraInfoCounts>,
    /// RGB-D: answered pairs with the target placed in 3D, and tracked pairs that could not be
    /// (too few depth readings in the box, a calibration for another image size).
    #[serde(default)]
    pub targets_3d: u64,
    #[serde(default)]
    pub depth_missing: u64,
    /// Messages whose log time is earlier than the previous message's, in storage order.
    pub log_time_backwards: u64,
    /// How the bag was read (a file read linearly, a truncated file).
    pub notes: Vec<String>,
    /// Why the replay ended before the end of the bag.
    pub stopped: Option<String>,
    pub bag: PathBuf,
    pub csv: PathBuf,
    pub json: PathBuf,
    pub summary: PathBuf,
}

/// An answered pair, for the caller's progress display or its own records.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    pub stamp_ns: i64,
    /// The rows written to `tracks.csv`: one per target with a box.
    pub rows: Vec<TrackRow>,
    /// Decoding, preparing and tracking the pair, milliseconds.
    pub inference_ms: f64,
}

/// Progress, reported after every message read.
#[derive(Debug)]
pub struct ReplayProgress<'a> {
    pub messages_read: u64,
    /// Messages on the read topics, when the bag says.
    pub messages_total: Option<u64>,
    pub pairs_answered: u64,
    /// Pairs answered since the previous report.
    pub answered: &'a [Answered],
}

/// A camera message decoded as far as its header.
#[derive(Debug, Clone)]
enum CameraMsg {
    Raw(Image),
    Compressed(CompressedImage),
}

impl CameraMsg {
    fn decode_cdr(m: &BagMessage) -> Result<Result<Self, MsgError>, ReplayError> {
        Ok(match m.type_name.as_str() {
            Image::TYPE_NAME => Image::decode(&m.data).map(CameraMsg::Raw),
            CompressedImage::TYPE_NAME => CompressedImage::decode(&m.data).map(CameraMsg::Compressed),
            other => return Err(ReplayError::NotImage { topic: m.topic.clone(), type_name: other.into() }),
        })
    }

    fn header(&self) -> &Header {
        match self {
            CameraMsg::Raw(m) => &m.header,
            CameraMsg::Compressed(m) => &m.header,
        }
    }

    fn decode(&self) -> Result<sensor::DecodedImage, sensor::DecodeError> {
        match self {
            CameraMsg::Raw(m) => sensor::decode_image(&m.encoding, m.width, m.height, m.step, m.is_bigendian, &m.data),
            CameraMsg::Compressed(m) => sensor::decode_compressed(&m.format, &m.data),
        }
    }
}

struct SyncedPair {
    index: usize,
    rgb: CameraMsg,
    aux: CameraMsg,
    stamp_ns: i64,
}

impl SyncedPair {
    fn aux_stamp_ns(&self) -> i64 {
        self.aux.header().stamp_ns()
    }
}

/// The output bag and track files, written as the replay goes.
struct Outputs {
    writer: BagWriter,
    detections: String,
    confidence: String,
    debug_image: Option<String>,
    /// RGB-D: `~/target_point`, `~/detections_3d`, `~/markers`.
    topics_3d: Option<[String; 3]>,
    csv: BufWriter<File>,
    csv_path: PathBuf,
    json: BufWriter<File>,
    json_path: PathBuf,
    rows: u64,
    buf: Vec<u8>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ReplayError + '_ {
    move |source| ReplayError::Io { path: path.into(), source }
}

/// Refuses to overwrite an earlier replay's outputs unless `force`; with `force` removes them
/// (only files a replay writes, and `bag/` only when it holds nothing but a bag).
fn clear_outputs(out_dir: &Path, force: bool) -> Result<(), ReplayError> {
    let names = [OUTPUT_BAG, TRACKS_CSV, TRACKS_JSON, SUMMARY_JSON];
    let found: Vec<&str> = names.iter().copied().filter(|n| out_dir.join(n).symlink_metadata().is_ok()).collect();
    if found.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(ReplayError::OutputExists { dir: out_dir.into(), found: found.join(", ") });
    }
    let bag = out_dir.join(OUTPUT_BAG);
    if let Ok(rd) = std::fs::read_dir(&bag) {
        for e in rd {
            let e = e.map_err(io_err(&bag))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if !(is_file && (name == "metadata.yaml" || name.ends_with(".mcap"))) {
                return Err(ReplayError::NotOurs { path: bag, what: name });
            }
        }
        std::fs::remove_dir_all(&bag).map_err(io_err(&bag))?;
    }
    for n in &names[1..] {
        let p = out_dir.join(n);
        if p.symlink_metadata().is_ok() {
            std::fs::remove_file(&p).map_err(io_err(&p))?;
        }
    }
    Ok(())
}

impl Outputs {
    fn create(out_dir: &Path, opts: &ReplayOptions) -> Result<Self, ReplayError> {
        std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
        clear_outputs(out_dir, opts.force)?;
        let mut writer = BagWriter::create(&out_dir.join(OUTPUT_BAG))?;
        let detections = opts.topic(Output::Detections);
        let confidence = opts.topic(Output::Confidence);
        writer.add_topic(&detections, Output::Detections.type_name())?;
        writer.add_topic(&confidence, Output::Confidence.type_name())?;
        let debug_image = opts.debug_wanted().then(|| opts.topic(Output::DebugImage));
        if let Some(t) = &debug_image {
            writer.add_topic(t, Output::DebugImage.type_name())?;
        }
        let topics_3d = (opts.params.modality == Modality::Depth)
            .then(|| [Output::TargetPoint, Output::Detections3d, Output::Markers].map(|o| opts.topic(o)));
        if let Some(topics) = &topics_3d {
            for (topic, output) in topics.iter().zip([Output::TargetPoint, Output::Detections3d, Output::Markers]) {
                writer.add_topic(topic, output.type_name())?;
            }
        }
        let csv_path = out_dir.join(TRACKS_CSV);
        let mut csv = BufWriter::new(File::create(&csv_path).map_err(io_err(&csv_path))?);
        csv.write_all(b"frame,stamp_ns,aux_stamp_ns,x,y,w,h,score,state,x_m,y_m,z_m,id\n")
            .map_err(io_err(&csv_path))?;
        let json_path = out_dir.join(TRACKS_JSON);
        let mut json = BufWriter::new(File::create(&json_path).map_err(io_err(&json_path))?);
        json.write_all(b"[").map_err(io_err(&json_path))?;
        Ok(Self {
            writer,
            detections,
            confidence,
            debug_image,
            topics_3d,
            csv,
            csv_path,
            json,
            json_path,
            rows: 0,
            buf: Vec::new(),
        })
    }

    fn publish<M: RosMessage>(&mut self, topic: &str, log_time_ns: u64, msg: &M) -> Result<(), ReplayError> {
        msg.encode_into(&mut self.buf).map_err(ReplayError::Encode)?;
        self.writer.write(topic, log_time_ns, &self.buf)?;
        Ok(())
    }

    /// The node's answer to a pair: `~/detections`, `~/confidence` and (when wanted) `~/debug_image`.
    fn answer(
        &mut self,
        header: &Header,
        frame: &ImageU8,
        answers: &[Answer],
        params: &NodeParams,
    ) -> Result<(), ReplayError> {
        let log_time_ns = u64::try_from(header.stamp_ns()).unwrap_or(0);
        let detections = output::detections(header, answers, &params.class_id);
        let topic = self.detections.clone();
        self.publish(&topic, log_time_ns, &detections)?;
        let topic = self.confidence.clone();
        self.publish(&topic, log_time_ns, &output::confidence(answers))?;
        if let Some(topic) = self.debug_image.clone() {
            let image = output::debug_image(frame, header, answers, &params.class_id, params.debug_aux_blend);
            self.publish(&topic, log_time_ns, &image)?;
        }
        Ok(())
    }

    /// RGB-D: the node's 3D answer to a pair (see [`output::outputs_3d`]).
    fn answer_3d(&mut self, header: &Header, out: &output::Outputs3d) -> Result<(), ReplayError> {
        let Some([point, detections, markers]) = self.topics_3d.clone() else { return Ok(()) };
        let log_time_ns = u64::try_from(header.stamp_ns()).unwrap_or(0);
        if let Some(p) = &out.target_point {
            self.publish(&point, log_time_ns, p)?;
        }
        self.publish(&detections, log_time_ns, &out.detections_3d)?;
        self.publish(&markers, log_time_ns, &out.markers)
    }

    /// Appends a row to the CSV and JSON and flushes both, so a replay that is killed still
    /// leaves every row it made.
    fn row(&mut self, r: &TrackRow) -> Result<(), ReplayError> {
        let metres = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        writeln!(
            self.csv,
            "{},{},{},{:.3},{:.3},{:.3},{:.3},{:.6},{},{},{},{},{}",
            r.frame,
            r.stamp_ns,
            r.aux_stamp_ns,
            r.x,
            r.y,
            r.w,
            r.h,
            r.score,
            r.state,
            metres(r.x_m),
            metres(r.y_m),
            metres(r.z_m),
            r.id
        )
        .and_then(|_| self.csv.flush())
        .map_err(io_err(&self.csv_path))?;
        let text =
            serde_json::to_string(r).map_err(|e| ReplayError::Io { path: self.json_path.clone(), source: e.into() })?;
        let sep = if self.rows == 0 { "\n  " } else { ",\n  " };
        self.json
            .write_all(sep.as_bytes())
            .and_then(|_| self.json.write_all(text.as_bytes()))
            .and_then(|_| self.json.flush())
            .map_err(io_err(&self.json_path))?;
        self.rows += 1;
        Ok(())
    }

    /// Finishes the bag (summary, `metadata.yaml`) and closes the JSON array.
    fn finish(mut self) -> Result<(PathBuf, PathBuf, PathBuf), ReplayError> {
        let bag = self.writer.finish()?;
        self.csv.flush().map_err(io_err(&self.csv_path))?;
        self.json.write_all(b"\n]\n").and_then(|_| self.json.flush()).map_err(io_err(&self.json_path))?;
        Ok((bag, self.csv_path, self.json_path))
    }
}

/// Frame errors are counted; the first few of each kind are also logged.
const LOGGED_FRAME_ERRORS: u64 = 3;

/// The replay's state besides the outputs: the node's pairing and inference state.
struct Replay<'a> {
    opts: &'a ReplayOptions,
    targets: &'a mut TargetSet,
    sync: ApproxSync<CameraMsg, CameraMsg>,
    recent: VecDeque<Rc<SyncedPair>>,
    /// Inits waiting for the first pair stamped at or after their stamp.
    pending_inits: Option<(i64, Vec<targets::InitBox>)>,
    init_taken: bool,
    initial_box_used: bool,
    last_answered_ns: Option<i64>,
    last_stamp_ns: [Option<i64>; 2],
    last_log_time_ns: Option<u64>,
    answered: Vec<Answered>,
    /// RGB-D: the RGB camera's calibration in force.
    camera: Option<CameraModel>,
    s: ReplaySummary,
}

enum Stream {
    Rgb,
    Aux,
}

impl Replay<'_> {
    fn camera(&mut self, stream: Stream, m: &BagMessage, out: &mut Outputs) -> Result<(), ReplayError> {
        let (counts, lane) = match stream {
            Stream::Rgb => (&mut self.s.rgb, 0),
            Stream::Aux => (&mut self.s.aux, 1),
        };
        counts.read += 1;
        let msg = match CameraMsg::decode_cdr(m)? {
            Ok(msg) => msg,
            Err(e) => {
                counts.malformed += 1;
                if counts.malformed <= LOGGED_FRAME_ERRORS {
                    log::warn!("skipping a malformed message on {} logged at {} ns: {e}", m.topic, m.log_time_ns);
                }
                return Ok(());
            }
        };
        let stamp_ns = msg.header().stamp_ns();
        if self.last_stamp_ns[lane].is_some_and(|last| stamp_ns < last) {
            counts.stamps_backwards += 1;
        }
        self.last_stamp_ns[lane] = Some(stamp_ns);
        let pairs = match stream {
            Stream::Rgb => self.sync.push_a(stamp_ns, msg),
            Stream::Aux => self.sync.push_b(stamp_ns, msg),
        };
        for p in pairs {
            self.paired(p, out)?;
        }
        Ok(())
    }

    /// A synchronised pair, as the node's receive path hands it on.
    fn paired(
        &mut self,
        p: crate::ros::sync::Pair<CameraMsg, CameraMsg>,
        out: &mut Outputs,
    ) -> Result<(), ReplayError> {
        let pair = Rc::new(SyncedPair { index: self.s.pairs as usize, stamp_ns: p.stamp_a_ns, rgb: p.a, aux: p.b });
        self.s.pairs += 1;
        if self.recent.len() >= RECENT_PAIRS {
            self.recent.pop_front();
        }
        self.recent.push_back(pair.clone());
        match self.pending_inits.take() {
            Some((init_ns, inits)) if pair.stamp_ns >= init_ns => self.process(&pair, &inits, out),
            waiting => {
                self.pending_inits = waiting;
                self.process(&pair, &[], out)
            }
        }
    }

    /// A message on the init topic: the first usable box applies as the node applies `~/init`.
    fn init_message(&mut self, m: &BagMessage, out: &mut Outputs) -> Result<(), ReplayError> {
        let counts = self.s.init.get_or_insert_with(InitCounts::default);
        counts.read += 1;
        if self.init_taken {
            counts.ignored += 1;
            return Ok(());
        }
        let several = self.targets.max_targets() > 1;
        let (stamp_ns, inits) = match init_box(m)? {
            InitMsg::Boxes(stamp_ns, mut boxes) => {
                if !several {
                    // One target: the first box, as the node takes a Detection2DArray's first.
                    boxes.truncate(1);
                    boxes[0].id = None;
                }
                (stamp_ns, boxes)
            }
            InitMsg::NoBox => {
                counts.without_box += 1;
                return Ok(());
            }
            InitMsg::Malformed(e) => {
                counts.malformed += 1;
                log::warn!("skipping a malformed message on {} logged at {} ns: {e}", m.topic, m.log_time_ns);
                return Ok(());
            }
        };
        counts.used_stamp_ns = Some(stamp_ns);
        self.init_taken = true;
        let buffered = self.recent.iter().rev().find(|p| p.stamp_ns == stamp_ns || p.aux_stamp_ns() == stamp_ns);
        match buffered.cloned() {
            Some(pair) => {
                self.pending_inits = None;
                self.process(&pair, &inits, out)
            }
            None => {
                self.pending_inits = Some((stamp_ns, inits));
                Ok(())
            }
        }
    }

    /// The node's inference step: decode, prepare, track and init ([`answer_pair`]), answer.
    fn process(&mut self, pair: &SyncedPair, inits: &[targets::InitBox], out: &mut Outputs) -> Result<(), ReplayError> {
        let start = Instant::now();
        let (frame, depth) = match self.frame(pair) {
            Ok(f) => f,
            Err((rgb, e)) => {
                let n = if rgb { &mut self.s.frame_errors.rgb_image } else { &mut self.s.frame_errors.aux_image };
                *n += 1;
                if *n <= LOGGED_FRAME_ERRORS {
                    log::warn!("skipping the pair stamped {} ns: {e}", pair.stamp_ns);
                }
                return Ok(());
            }
        };
        let mut inits = inits.to_vec();
        if inits.is_empty() && !self.initial_box_used && self.targets.is_empty() {
            match &self.opts.init {
                InitSource::Box(bbox) => inits.push(targets::InitBox { id: None, bbox: *bbox }),
                InitSource::Boxes(boxes) => inits.extend(boxes.iter().cloned()),
                InitSource::Topic(_) => {}
            }
            self.initial_box_used = true;
        }
        let s = &mut self.s;
        let answers = answer_pair(self.targets, &frame, &inits, |event| match event {
            Event::InitApplied => s.inits_applied += 1,
            Event::InitRejected(e) => {
                s.inits_rejected += 1;
                log::warn!("initial box rejected on the pair stamped {} ns: {e}", pair.stamp_ns);
            }
            Event::TrackFailed(e) => {
                s.track_errors += 1;
                log::warn!("tracking failed on the pair stamped {} ns: {e}", pair.stamp_ns);
            }
        });
        let inference_ms = start.elapsed().as_secs_f64() * 1e3;
        // Answers stay in stamp order: an init on a buffered pair that was already answered
        // starts the track there, and the next pair carries the first box.
        if self.last_answered_ns.is_some_and(|last| pair.stamp_ns <= last) {
            return Ok(());
        }
        self.last_answered_ns = Some(pair.stamp_ns);
        out.answer(pair.rgb.header(), &frame, &answers, &self.opts.params)?;
        let placed = self.answer_3d(pair, &frame, depth.as_ref(), &answers, out)?;
        self.s.answered += 1;
        if self.s.inits_applied == 0 {
            self.s.answered_before_init += 1;
        }
        let mut rows = Vec::new();
        for (a, target) in answers.iter().zip(placed) {
            let Some(r) = a.result else { continue };
            let row = TrackRow {
                id: a.id.clone(),
                frame: pair.index,
                stamp_ns: pair.stamp_ns,
                aux_stamp_ns: pair.aux_stamp_ns(),
                x: r.bbox.x,
                y: r.bbox.y,
                w: r.bbox.w,
                h: r.bbox.h,
                score: r.score,
                state: r.state,
                x_m: target.map(|t| t.position_m[0]),
                y_m: target.map(|t| t.position_m[1]),
                z_m: target.map(|t| t.position_m[2]),
            };
            out.row(&row)?;
            rows.push(row);
        }
        if !rows.is_empty() {
            self.s.tracked += 1;
        }
        self.answered.push(Answered { stamp_ns: pair.stamp_ns, rows, inference_ms });
        Ok(())
    }

    /// RGB-D with a calibration: places each target in 3D as the node does and writes the 3D
    /// outputs; per answer its 3D target, when it has one.
    fn answer_3d(
        &mut self,
        pair: &SyncedPair,
        frame: &ImageU8,
        depth: Option<&DepthImage>,
        answers: &[Answer],
        out: &mut Outputs,
    ) -> Result<Vec<Option<Target3d>>, ReplayError> {
        let none = vec![None; answers.len()];
        if self.opts.params.modality != Modality::Depth {
            return Ok(none);
        }
        let Some(camera) = &self.camera else {
            if let Some(c) = &mut self.s.camera_info {
                c.pairs_before_first += 1;
            }
            return Ok(none);
        };
        let size = (frame.width, frame.height);
        let mut placed = Vec::with_capacity(answers.len());
        for a in answers {
            let target = match target3d::target_of(&self.opts.params, camera, depth, size, a.result.as_ref()) {
                Ok(t) => t,
                Err(e) => {
                    self.s.depth_missing += 1;
                    if self.s.depth_missing <= LOGGED_FRAME_ERRORS {
                        log::warn!("no 3D position for the pair stamped {} ns: {e}", pair.stamp_ns);
                    }
                    None
                }
            };
            placed.push(Answer3d { answer: a.clone(), target });
        }
        let answer = output::outputs_3d(pair.rgb.header(), camera, &placed, &self.opts.params.class_id);
        out.answer_3d(pair.rgb.header(), &answer)?;
        self.s.targets_3d += u64::from(answer.target_point.is_some());
        Ok(placed.into_iter().map(|p| p.target).collect())
    }

    /// A message on the CameraInfo topic: the latest valid calibration is used from now on.
    fn camera_info_message(&mut self, m: &BagMessage) {
        let counts = self.s.camera_info.get_or_insert_with(CameraInfoCounts::default);
        counts.read += 1;
        let info = match CameraInfo::decode(&m.data) {
            Ok(info) => info,
            Err(e) => {
                counts.malformed += 1;
                if counts.malformed <= LOGGED_FRAME_ERRORS {
                    log::warn!("skipping a malformed message on {} logged at {} ns: {e}", m.topic, m.log_time_ns);
                }
                return;
            }
        };
        match CameraModel::from_camera_info(&info) {
            Ok(model) => {
                if self.camera.as_ref() != Some(&model) {
                    log::info!("RGB camera calibration from {}: {}", m.topic, model.describe());
                }
                self.camera = Some(model);
            }
            Err(e) => {
                counts.invalid += 1;
                if counts.invalid <= LOGGED_FRAME_ERRORS {
                    log::warn!("ignoring the CameraInfo on {} logged at {} ns: {e}", m.topic, m.log_time_ns);
                }
            }
        }
    }

    /// The 6-channel frame of a pair and, in RGB-D, its raw depth; the error says which image
    /// failed (true: RGB).
    fn frame(&self, pair: &SyncedPair) -> Result<(ImageU8, Option<DepthImage>), (bool, String)> {
        let p = &self.opts.params;
        let rgb = pair.rgb.decode().map_err(|e| (true, format!("rgb image: {e}")))?;
        let rgb = sensor::prepare_rgb(rgb).map_err(|e| (true, format!("rgb image: {e}")))?;
        let aux = pair.aux.decode().map_err(|e| (false, format!("aux image: {e}")))?;
        sensor::prepare_frame_keeping_depth(&rgb, aux, p.modality, &p.aux_config())
            .map_err(|e| (false, format!("aux image: {e}")))
    }

    /// Fills in the synchroniser's counts. Per stream (RGB, aux): `flushed` messages were dropped
    /// as unmatched when the streams ended, `held` are still waiting (a replay that stopped).
    fn account(&mut self, flushed: (u64, u64), held: (u64, u64)) {
        let stats = self.sync.stats();
        self.s.rgb.set_drops(&stats.dropped_a, flushed.0);
        self.s.aux.set_drops(&stats.dropped_b, flushed.1);
        self.s.rgb.paired = stats.pairs;
        self.s.aux.paired = stats.pairs;
        self.s.rgb.stream_ended = flushed.0 + held.0;
        self.s.aux.stream_ended = flushed.1 + held.1;
    }
}

/// What an init-topic message holds.
enum InitMsg {
    Malformed(MsgError),
    NoBox,
    /// Boxes (at least one; with their detections' ids) with the stamp of the frame they belong
    /// to.
    Boxes(i64, Vec<targets::InitBox>),
}

fn init_box(m: &BagMessage) -> Result<InitMsg, ReplayError> {
    let from_detection =
        |d: &Detection2D| targets::InitBox { id: (!d.id.is_empty()).then(|| d.id.clone()), bbox: d.bbox.to_xywh() };
    let found = match m.type_name.as_str() {
        Detection2DArray::TYPE_NAME => Detection2DArray::decode(&m.data)
            .map(|a| (a.header.stamp_ns(), a.detections.iter().map(from_detection).collect::<Vec<_>>())),
        Detection2D::TYPE_NAME => Detection2D::decode(&m.data).map(|d| (d.header.stamp_ns(), vec![from_detection(&d)])),
        RegionOfInterest::TYPE_NAME => RegionOfInterest::decode(&m.data).map(|r| {
            // RegionOfInterest has no header: its log time stands for its stamp.
            let stamp = i64::try_from(m.log_time_ns).unwrap_or(i64::MAX);
            let bbox = BoxXywh::new(r.x_offset as f64, r.y_offset as f64, r.width as f64, r.height as f64);
            (stamp, vec![targets::InitBox { id: None, bbox }])
        }),
        other => return Err(ReplayError::NotInit { topic: m.topic.clone(), type_name: other.into() }),
    };
    Ok(match found {
        Err(e) => InitMsg::Malformed(e),
        Ok((stamp, boxes)) => {
            let usable: Vec<_> =
                boxes.into_iter().filter(|i| i.bbox.is_finite() && i.bbox.w > 0.0 && i.bbox.h > 0.0).collect();
            if usable.is_empty() {
                InitMsg::NoBox
            } else {
                InitMsg::Boxes(stamp, usable)
            }
        }
    })
}

fn is_image(type_name: &str) -> bool {
    type_name == Image::TYPE_NAME || type_name == CompressedImage::TYPE_NAME
}

fn is_init(type_name: &str) -> bool {
    [Detection2DArray::TYPE_NAME, Detection2D::TYPE_NAME, RegionOfInterest::TYPE_NAME].contains(&type_name)
}

/// Replays `bag` into `out_dir` (see the module docs): `out_dir/bag/` (MCAP rosbag2),
/// `tracks.csv`, `tracks.json` and `summary.json`. `targets` is reset and given the parameters'
/// tracker settings. `progress` is called after every message read; returning
/// `ControlFlow::Break` stops the replay, which then finishes its outputs and returns
/// [`ReplayError::Failed`] with [`ReplayError::Interrupted`].
pub fn replay(
    bag: &Path,
    out_dir: &Path,
    targets: &mut TargetSet,
    opts: &ReplayOptions,
    progress: &mut dyn FnMut(&ReplayProgress<'_>) -> ControlFlow<()>,
) -> Result<ReplaySummary, ReplayError> {
    opts.params.validate()?;
    crate::limits::check_distinct_topics(&opts.rgb_topic, &opts.aux_topic)?;
    let sync = ApproxSync::new(opts.params.sync_config())?;
    let reader = BagReader::open(bag)?;
    if opts.camera != CameraSource::None && opts.params.modality != Modality::Depth {
        return Err(ReplayError::CameraWithoutDepth { modality: opts.params.modality });
    }
    let mut topics = vec![opts.rgb_topic.as_str(), opts.aux_topic.as_str()];
    if let InitSource::Topic(t) = &opts.init {
        topics.push(t);
    }
    let camera_topic = match &opts.camera {
        CameraSource::Topic(t) => Some(t.as_str()),
        _ => None,
    };
    if let Some(t) = camera_topic {
        crate::limits::check_distinct_topics(t, &opts.rgb_topic)?;
        crate::limits::check_distinct_topics(t, &opts.aux_topic)?;
        topics.push(t);
    }
    reader.check_topics(&topics)?;
    for t in &topics[..2] {
        if let Some(info) = reader.topic(t).filter(|i| !is_image(&i.type_name)) {
            return Err(ReplayError::NotImage { topic: info.name.clone(), type_name: info.type_name.clone() });
        }
    }
    if let InitSource::Topic(t) = &opts.init {
        if let Some(info) = reader.topic(t).filter(|i| !is_init(&i.type_name)) {
            return Err(ReplayError::NotInit { topic: info.name.clone(), type_name: info.type_name.clone() });
        }
    }
    if let Some(t) = camera_topic {
        if let Some(info) = reader.topic(t).filter(|i| i.type_name != CameraInfo::TYPE_NAME) {
            return Err(ReplayError::NotCameraInfo { topic: info.name.clone(), type_name: info.type_name.clone() });
        }
    }
    if let InitSource::Boxes(boxes) = &opts.init {
        if boxes.len() > targets.max_targets() {
            return Err(ReplayError::TooManyInits { given: boxes.len(), max: targets.max_targets() });
        }
    }
    targets.restart();
    targets.set_config(opts.params.tracker_config()).map_err(ReplayError::Tracker)?;
    let mut out = Outputs::create(out_dir, opts)?;
    let mut r = Replay {
        opts,
        targets,
        sync,
        recent: VecDeque::new(),
        pending_inits: None,
        init_taken: false,
        initial_box_used: false,
        last_answered_ns: None,
        last_stamp_ns: [None, None],
        last_log_time_ns: None,
        answered: Vec::new(),
        camera: match &opts.camera {
            CameraSource::Intrinsics(k) => Some(CameraModel::from_intrinsics(*k)),
            _ => None,
        },
        s: ReplaySummary {
            rgb: StreamCounts::new(&opts.rgb_topic),
            aux: StreamCounts::new(&opts.aux_topic),
            init: match &opts.init {
                InitSource::Topic(t) => Some(InitCounts { topic: t.clone(), ..InitCounts::default() }),
                InitSource::Box(_) | InitSource::Boxes(_) => None,
            },
            camera_info: camera_topic.map(|t| CameraInfoCounts { topic: t.into(), ..CameraInfoCounts::default() }),
            notes: reader.notes().to_vec(),
            ..ReplaySummary::default()
        },
    };
    let messages_total = reader.message_count(&topics);
    let mut messages_read = 0u64;
    let mut stop: Option<ReplayError> = None;
    for item in reader.messages(&topics) {
        let m = match item {
            Ok(m) => m,
            Err(e) if e.is_truncation() => {
                r.s.notes.push(e.to_string());
                continue;
            }
            Err(e) => {
                stop = Some(e.into());
                break;
            }
        };
        messages_read += 1;
        if r.last_log_time_ns.is_some_and(|last| m.log_time_ns < last) {
            r.s.log_time_backwards += 1;
        }
        r.last_log_time_ns = Some(m.log_time_ns);
        let step = if m.topic == opts.rgb_topic {
            r.camera(Stream::Rgb, &m, &mut out)
        } else if m.topic == opts.aux_topic {
            r.camera(Stream::Aux, &m, &mut out)
        } else if Some(m.topic.as_str()) == camera_topic {
            r.camera_info_message(&m);
            Ok(())
        } else {
            r.init_message(&m, &mut out)
        };
        if let Err(e) = step {
            stop = Some(e);
            break;
        }
        let report =
            ReplayProgress { messages_read, messages_total, pairs_answered: r.s.answered, answered: &r.answered };
        let flow = progress(&report);
        r.answered.clear();
        if flow.is_break() {
            stop = Some(ReplayError::Interrupted);
            break;
        }
    }
    if stop.is_none() {
        // The streams have ended: the candidate the node would hold for the next message is
        // emitted, the rest counted as ended.
        let before = r.sync.stats();
        let flushed = r.sync.flush();
        let after = r.sync.stats();
        let ended = (
            after.dropped_a.unmatched - before.dropped_a.unmatched,
            after.dropped_b.unmatched - before.dropped_b.unmatched,
        );
        for p in flushed {
            if let Err(e) = r.paired(p, &mut out) {
                stop = Some(e);
                break;
            }
        }
        r.account(ended, (0, 0));
        if stop.is_none() && !r.answered.is_empty() {
            let report =
                ReplayProgress { messages_read, messages_total, pairs_answered: r.s.answered, answered: &r.answered };
            let _ = progress(&report);
        }
    } else {
        // Messages still waiting in the synchroniser when the replay stopped.
        let (a, b) = r.sync.pending();
        r.account((0, 0), (a as u64, b as u64));
    }
    if stop.is_none() {
        if r.s.pairs == 0 {
            stop = Some(ReplayError::NoPairs { rgb: r.s.rgb.read, aux: r.s.aux.read });
        } else if r.s.inits_applied == 0 {
            let why = match (&opts.init, &r.s.init) {
                (InitSource::Topic(t), Some(c)) if c.used_stamp_ns.is_none() => {
                    format!("topic {t} had no usable box ({} messages, {} without a box)", c.read, c.without_box)
                }
                (InitSource::Topic(t), Some(c)) => format!(
                    "the box on {t} stamped {} ns found no pair at or after its stamp, or the tracker rejected it",
                    c.used_stamp_ns.unwrap_or_default()
                ),
                _ => "the tracker rejected the initial box (see the log)".into(),
            };
            stop = Some(ReplayError::NoInit(why));
        }
    }
    if opts.params.modality == Modality::Depth && r.camera.is_none() {
        r.s.notes.push(match camera_topic {
            Some(t) => format!("no valid CameraInfo on {t}: no 3D outputs"),
            None => "RGB-D without a camera calibration (--camera-info-topic or --intrinsics): no 3D outputs".into(),
        });
    }
    r.s.stopped = stop.as_ref().map(|e| e.to_string());
    let mut summary = r.s;
    summary.summary = out_dir.join(SUMMARY_JSON);
    summary.bag = out_dir.join(OUTPUT_BAG);
    summary.csv = out_dir.join(TRACKS_CSV);
    summary.json = out_dir.join(TRACKS_JSON);
    let finished = out.finish().and_then(|_| write_summary(&summary));
    match (stop, finished) {
        (None, Ok(())) => Ok(summary),
        (None, Err(e)) => Err(e),
        (Some(e), Ok(())) => Err(ReplayError::Failed { summary: Box::new(summary), source: Box::new(e) }),
        (Some(e), Err(finish)) => {
            log::error!("finishing the outputs after the replay stopped: {finish}");
            Err(ReplayError::Failed { summary: Box::new(summary), source: Box::new(e) })
        }
    }
}

fn write_summary(s: &ReplaySummary) -> Result<(), ReplayError> {
    let text =
        serde_json::to_string_pretty(s).map_err(|e| ReplayError::Io { path: s.summary.clone(), source: e.into() })?;
    std::fs::write(&s.summary, text + "\n").map_err(io_err(&s.summary))
}
