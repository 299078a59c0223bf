//! Benchmark sequences as rosbag2 bags: a sequence folder of any supported layout
//! ([`crate::eval::layout`]) written as the robot's cameras would publish it, so the node can be
//! tested with `ros2 bag play` on real benchmark data and a replay of the bag scored like
//! `patrack eval` scores the folder.
//!
//! Each frame becomes an RGB `sensor_msgs/Image` (`rgb8`, or `mono8` for grey frames), an aux
//! image in the file's own encoding (`rgb8` for 3-channel thermal or event images, `mono8` for
//! grey ones, `16UC1` for DepthTrack's millimetre depth, `mono16` for other 16-bit images) and
//! the ground truth as a `vision_msgs/Detection2DArray` (empty when the target is absent), all
//! stamped at the camera rate from a fixed start time and logged at their stamp. Within a frame
//! the ground truth is stored first, so a replay that takes its initial box from the
//! ground-truth topic has it before the frame's pair is complete, as an operator's `~/init`
//! would be.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{BagError, BagWriter, ChunkCompression, WriterOptions};
use crate::dataset::{self, DatasetError};
use crate::eval::layout::{BenchSequence, DatasetKind, LayoutError};
use crate::eval::metrics::Rect32;
use crate::ros::msgs::{
    BoundingBox2D, Detection2D, Detection2DArray, Header, Image, MsgError, ObjectHypothesis, ObjectHypothesisWithPose,
    Point2D, Pose2D, RosMessage, Time,
};
use crate::sensor::{DecodedImage, Modality};

/// Errors converting a sequence.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Bag(#[from] BagError),
    #[error("{path}: encoding the message: {source}")]
    Encode { path: PathBuf, source: MsgError },
    #[error("{0}")]
    Options(String),
}

/// Topic names and timing of a converted bag.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Frames per second of the stamps.
    pub rate_hz: f64,
    /// Stamp of the first frame, ns since the epoch.
    pub start_ns: i64,
    pub compression: ChunkCompression,
    pub rgb_topic: String,
    pub aux_topic: String,
    /// Ground truth of the RGB camera.
    pub gt_topic: String,
    /// Ground truth of the infrared camera, for the benchmarks that have one (RGBT234, GTOT).
    pub gt_aux_topic: String,
}

/// The first frame's stamp by default: 2023-11-14T22:13:20Z, a fixed time so conversions are
/// reproducible byte for byte.
pub const DEFAULT_START_NS: i64 = 1_700_000_000_000_000_000;

impl ConvertOptions {
    /// 30 Hz (the frame rate of the LasHeR, RGBT234, GTOT, DepthTrack and VisEvent cameras is
    /// not part of the layouts; 30 Hz is the usual rate of the cameras they were recorded with)
    /// and topics named after the modality.
    pub fn new(kind: DatasetKind) -> Self {
        Self {
            rate_hz: 30.0,
            start_ns: DEFAULT_START_NS,
            compression: ChunkCompression::Zstd,
            rgb_topic: "/camera/rgb/image_raw".into(),
            aux_topic: format!("/camera/{}/image_raw", aux_name(kind.modality())),
            gt_topic: "/gt/detections".into(),
            gt_aux_topic: "/gt/aux/detections".into(),
        }
    }

    /// Stamp of frame `i`, ns.
    pub fn stamp_ns(&self, i: usize) -> i64 {
        self.start_ns + (i as f64 * 1e9 / self.rate_hz).round() as i64
    }

    fn validate(&self) -> Result<(), ConvertError> {
        if !(self.rate_hz.is_finite() && self.rate_hz > 0.0 && self.rate_hz <= 10_000.0) {
            return Err(ConvertError::Options(format!("rate {} Hz: must be in (0, 10000]", self.rate_hz)));
        }
        if self.start_ns < 0 || Time::from_ns(self.start_ns).is_none() {
            return Err(ConvertError::Options(format!("start time {} ns is not a valid ROS time", self.start_ns)));
        }
        let topics = [&self.rgb_topic, &self.aux_topic, &self.gt_topic, &self.gt_aux_topic];
        for (i, t) in topics.iter().enumerate() {
            if topics[..i].contains(t) {
                return Err(ConvertError::Options(format!("topic {t} is given twice")));
            }
        }
        Ok(())
    }
}

fn aux_name(m: Modality) -> &'static str {
    match m {
        Modality::Thermal => "thermal",
        Modality::Depth => "depth",
        Modality::Event => "event",
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertSummary {
    pub bag: PathBuf,
    pub frames: usize,
    /// Frames whose ground truth says the target is absent (empty arrays).
    pub absent: usize,
    pub first_stamp_ns: i64,
    pub last_stamp_ns: i64,
}

/// An image file's pixels as a `sensor_msgs/Image` in its own encoding.
fn image_msg(decoded: DecodedImage, header: Header, modality: Modality) -> Image {
    let (w, h) = decoded.size();
    let (encoding, bytes_per_px, data) = match decoded {
        DecodedImage::Rgb8(im) => ("rgb8", 3, im.data),
        DecodedImage::Mono8(im) => ("mono8", 1, im.data),
        DecodedImage::Mono16(im) => {
            let enc = if modality == Modality::Depth { "16UC1" } else { "mono16" };
            (enc, 2, im.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
        DecodedImage::Float32(im) => ("32FC1", 4, im.data.iter().flat_map(|v| v.to_le_bytes()).collect()),
    };
    Image::packed(header, w, h, encoding, bytes_per_px, data)
}

/// The ground truth of one frame: one detection, or none when the box is absent (NaN or empty).
pub fn gt_msg(header: &Header, gt: &Rect32) -> Detection2DArray {
    let [x, y, w, h] = gt.map(f64::from);
    let present = [x, y, w, h].iter().all(|v| v.is_finite()) && w > 0.0 && h > 0.0;
    let detections = present
        .then(|| Detection2D {
            header: header.clone(),
            results: vec![ObjectHypothesisWithPose {
                hypothesis: ObjectHypothesis { class_id: "target".into(), score: 1.0 },
                ..Default::default()
            }],
            bbox: BoundingBox2D {
                center: Pose2D { position: Point2D { x: x + w / 2.0, y: y + h / 2.0 }, theta: 0.0 },
                size_x: w,
                size_y: h,
            },
            id: "gt".into(),
        })
        .into_iter()
        .collect();
    Detection2DArray { header: header.clone(), detections }
}

/// Writes `seq` as the bag folder `out` (which must not exist). `progress(done, total)` is
/// called after each frame.
pub fn sequence_to_bag(
    seq: &BenchSequence,
    out: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ConvertSummary, ConvertError> {
    opts.validate()?;
    let modality = seq.kind.modality();
    let mut custom_data = BTreeMap::new();
    custom_data.insert("patrack.dataset".into(), seq.kind.name().into());
    custom_data.insert("patrack.sequence".into(), seq.name.clone());
    custom_data.insert("patrack.rate_hz".into(), opts.rate_hz.to_string());
    let mut writer = BagWriter::create_with(out, &WriterOptions { compression: opts.compression, custom_data })?;
    writer.add_topic(&opts.gt_topic, Detection2DArray::TYPE_NAME)?;
    if seq.gt_aux.is_some() {
        writer.add_topic(&opts.gt_aux_topic, Detection2DArray::TYPE_NAME)?;
    }
    writer.add_topic(&opts.rgb_topic, Image::TYPE_NAME)?;
    writer.add_topic(&opts.aux_topic, Image::TYPE_NAME)?;
    let aux_frame = format!("{}_camera", aux_name(modality));
    let mut buf = Vec::new();
    let mut absent = 0;
    for i in 0..seq.len() {
        let stamp_ns = opts.stamp_ns(i);
        let stamp = Time::from_ns(stamp_ns)
            .ok_or_else(|| ConvertError::Options(format!("frame {i}: stamp {stamp_ns} ns is not a valid ROS time")))?;
        let log_time_ns = stamp_ns as u64;
        let rgb_header = Header { stamp, frame_id: "rgb_camera".into() };
        let aux_header = Header { stamp, frame_id: aux_frame.clone() };
        let enc = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ConvertError::Encode { path, source }
        };
        let gt = gt_msg(&rgb_header, &seq.gt[i]);
        absent += usize::from(gt.detections.is_empty());
        gt.encode_into(&mut buf).map_err(enc(&seq.dir))?;
        writer.write(&opts.gt_topic, log_time_ns, &buf)?;
        if let Some(gt_aux) = &seq.gt_aux {
            gt_msg(&aux_header, &gt_aux[i]).encode_into(&mut buf).map_err(enc(&seq.dir))?;
            writer.write(&opts.gt_aux_topic, log_time_ns, &buf)?;
        }
        let rgb = image_msg(dataset::load_decoded(&seq.rgb[i])?, rgb_header, modality);
        rgb.encode_into(&mut buf).map_err(enc(&seq.rgb[i]))?;
        writer.write(&opts.rgb_topic, log_time_ns, &buf)?;
        let aux = image_msg(dataset::load_decoded(&seq.aux[i])?, aux_header, modality);
        aux.encode_into(&mut buf).map_err(enc(&seq.aux[i]))?;
        writer.write(&opts.aux_topic, log_time_ns, &buf)?;
        progress(i + 1, seq.len());
    }
    let bag = writer.finish()?;
    Ok(ConvertSummary {
        bag,
        frames: seq.len(),
        absent,
        first_stamp_ns: opts.stamp_ns(0),
        last_stamp_ns: opts.stamp_ns(seq.len().saturating_sub(1)),
    })
}
