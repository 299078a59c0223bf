//! Helpers shared by the bag tests (replay, replay_node, bag_stream, bag_convert): synthetic
//! camera messages, bags written with the project's writer, an independent MCAP read-back with
//! the mcap crate alone, the tiny test network.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use patrack::bag::{BagWriter, ChunkCompression, WriterOptions};
use patrack::device::Precision;
use patrack::model::{ModelConfig, PATrack};
use patrack::ros::msgs::{
    BoundingBox2D, CameraInfo, Detection2D, Detection2DArray, Header, Image, Point2D, Pose2D, RosMessage, Time,
};
use patrack::ros::node::{Sink, SinkError};
use patrack::ros::output::Output;
use patrack::tracker::{Tracker, TrackerConfig};

pub const RGB: &str = "/camera/rgb/image_raw";
pub const AUX: &str = "/camera/thermal/image_raw";
pub const INIT: &str = "/operator/init";
pub const OTHER: &str = "/camera/other/image_raw";

/// 30 Hz frames starting at t = 100 s.
pub const START_NS: i64 = 100_000_000_000;
pub const PERIOD_NS: i64 = 33_333_333;

pub fn tmp(prefix: &str, name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn header(stamp_ns: i64, frame_id: &str) -> Header {
    Header { stamp: Time::from_ns(stamp_ns).unwrap(), frame_id: frame_id.into() }
}

/// A textured rgb8 image with a bright square at x = 20 + 2n.
pub fn rgb_image(w: u32, h: u32, stamp_ns: i64, n: i64) -> Image {
    let mut data = vec![0u8; (w * h * 3) as usize];
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let i = ((y * w as i64 + x) * 3) as usize;
            let inside = (20 + 2 * n..40 + 2 * n).contains(&x) && (14..34).contains(&y);
            let v = if inside { 230 } else { (x * 7 + y * 3) % 64 };
            data[i..i + 3].copy_from_slice(&[v as u8, (v / 2) as u8, 30]);
        }
    }
    Image {
        header: header(stamp_ns, "camera"),
        height: h,
        width: w,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: w * 3,
        data,
    }
}

/// A mono16 thermal image (half the RGB size), warm where the RGB square is.
pub fn thermal_image(w: u32, h: u32, stamp_ns: i64, n: i64) -> Image {
    let mut data = Vec::with_capacity((w * h * 2) as usize);
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let warm = (10 + n..20 + n).contains(&x) && (7..17).contains(&y);
            let v: u16 = if warm { 3600 } else { 3000 + ((x * 13 + y * 7) % 97) as u16 };
            data.extend_from_slice(&v.to_le_bytes());
        }
    }
    Image {
        header: header(stamp_ns, "thermal"),
        height: h,
        width: w,
        encoding: "mono16".into(),
        is_bigendian: 0,
        step: w * 2,
        data,
    }
}

/// A 16UC1 depth image (millimetres, 0 = no reading) of `w` x `h` from a function of the pixel.
pub fn depth_mm_image(w: u32, h: u32, stamp_ns: i64, frame_id: &str, mm: impl Fn(u32, u32) -> u16) -> Image {
    let mut data = Vec::with_capacity((w * h * 2) as usize);
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&mm(x, y).to_le_bytes());
        }
    }
    Image {
        header: header(stamp_ns, frame_id),
        height: h,
        width: w,
        encoding: "16UC1".into(),
        is_bigendian: 0,
        step: w * 2,
        data,
    }
}

/// The same depth as 32FC1 metres, holes (0 mm) as NaN, as drivers publishing metres do.
pub fn depth_m_image(mm_image: &Image) -> Image {
    let data = mm_image
        .data
        .chunks_exact(2)
        .flat_map(|b| match u16::from_le_bytes([b[0], b[1]]) {
            0 => f32::NAN.to_le_bytes(),
            mm => (f32::from(mm) / 1000.0).to_le_bytes(),
        })
        .collect();
    Image { encoding: "32FC1".into(), step: mm_image.width * 4, data, ..mm_image.clone() }
}

/// A calibrated camera's `CameraInfo` (plumb-bob without distortion, P = [K | 0]).
pub fn camera_info(stamp_ns: i64, frame_id: &str, w: u32, h: u32, [fx, fy, cx, cy]: [f64; 4]) -> CameraInfo {
    CameraInfo {
        header: header(stamp_ns, frame_id),
        height: h,
        width: w,
        distortion_model: "plumb_bob".into(),
        d: vec![0.0; 5],
        k: [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        ..Default::default()
    }
}

pub fn init_detection(stamp_ns: i64, x: f64, y: f64, w: f64, h: f64) -> Detection2D {
    Detection2D {
        header: header(stamp_ns, "camera"),
        bbox: BoundingBox2D {
            center: Pose2D { position: Point2D { x: x + w / 2.0, y: y + h / 2.0 }, theta: 0.0 },
            size_x: w,
            size_y: h,
        },
        ..Default::default()
    }
}

/// One message to write: topic, type, log time, CDR.
pub type Record = (String, String, u64, Vec<u8>);

pub fn record<M: RosMessage>(topic: &str, log_time_ns: i64, msg: &M) -> Record {
    (topic.into(), M::TYPE_NAME.into(), log_time_ns as u64, msg.encode().unwrap())
}

/// Writes `records` in order as a bag folder with the project's writer.
pub fn write_bag(dir: &Path, records: &[Record], compression: ChunkCompression) -> PathBuf {
    let mut w = BagWriter::create_with(dir, &WriterOptions { compression, custom_data: BTreeMap::new() }).unwrap();
    let mut added = Vec::new();
    for (topic, type_name, _, _) in records {
        if !added.contains(topic) {
            w.add_topic(topic, type_name).unwrap();
            added.push(topic.clone());
        }
    }
    for (topic, _, t, data) in records {
        w.write(topic, *t, data).unwrap();
    }
    w.finish().unwrap()
}

/// The single MCAP file of a bag folder written by [`write_bag`].
pub fn mcap_file(bag: &Path) -> PathBuf {
    let name = format!("{}_0.mcap", bag.file_name().unwrap().to_string_lossy());
    bag.join(name)
}

/// Topic to (schema name, [(log time, CDR)]).
pub type Channels = BTreeMap<String, (String, Vec<(u64, Vec<u8>)>)>;

/// Every message of an MCAP file, read with the mcap crate alone.
pub fn read_mcap(path: &Path) -> Channels {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Channels::new();
    for m in mcap::MessageStream::new(&bytes).unwrap() {
        let m = m.unwrap();
        let schema = m.channel.schema.as_ref().map(|s| s.name.clone()).unwrap_or_default();
        out.entry(m.channel.topic.clone())
            .or_insert_with(|| (schema, Vec::new()))
            .1
            .push((m.log_time, m.data.into_owned()));
    }
    out
}

pub fn tiny_model() -> PATrack {
    let mut m = PATrack::new(ModelConfig::tiny(), tch::Device::Cpu, Precision::Fp32).unwrap();
    m.fill_hashed();
    m
}

pub fn tiny_tracker() -> Tracker {
    Tracker::new(tiny_model(), TrackerConfig::default()).unwrap()
}

/// Stamps of a Detection2DArray list.
pub fn det_stamps(cdr: &[Vec<u8>]) -> Vec<i64> {
    cdr.iter().map(|d| Detection2DArray::decode(d).unwrap().header.stamp_ns()).collect()
}

/// A node sink that keeps every message the node publishes, in order.
#[derive(Default)]
pub struct Capture {
    published: Mutex<Vec<(Output, Vec<u8>)>>,
}

impl Sink for Capture {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), SinkError> {
        self.published.lock().unwrap().push((output, cdr.to_vec()));
        Ok(())
    }
}

impl Capture {
    /// The CDR of every message published on `output`.
    pub fn of(&self, output: Output) -> Vec<Vec<u8>> {
        self.published.lock().unwrap().iter().filter(|(o, _)| *o == output).map(|(_, d)| d.clone()).collect()
    }

    /// The messages published on `output`, decoded.
    pub fn decoded<M: RosMessage>(&self, output: Output) -> Vec<M> {
        self.of(output).iter().map(|d| M::decode(d).unwrap()).collect()
    }
}
