//! Mirror structs of the ROS 2 messages the node reads and writes, with CDR codecs and the
//! `.msg` definitions for MCAP schemas.
//!
//! Field order and types follow the ROS 2 Humble and Jazzy packages exactly (their layouts of
//! these messages are identical, vision_msgs 4.x included), because CDR is positional: the
//! serde field order *is* the wire format. The byte-exact agreement with PyPI `rosbags` for
//! both distros is checked by `tests/codecs.rs` against fixtures from `scripts/make_fixtures.py`.
//!
//! `uint8[]` fields use `serde_bytes`, so a 640x480 rgb8 frame is one length check and one
//! `memcpy` each way instead of 921 600 per-element serde calls.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_big_array::BigArray;

use super::cdr;
pub use super::cdr::MsgError;

const NS_PER_S: i64 = 1_000_000_000;

/// A ROS 2 message type with a CDR codec.
pub trait RosMessage: Serialize + DeserializeOwned {
    /// The full ROS 2 type name, e.g. `sensor_msgs/msg/Image`.
    const TYPE_NAME: &'static str;

    /// CDR bytes with the 4-byte encapsulation header (little endian), as `publish_raw` and
    /// rosbag2 expect them.
    fn encode(&self) -> Result<Vec<u8>, MsgError> {
        cdr::encode(Self::TYPE_NAME, self)
    }

    /// [`RosMessage::encode`] into a reused buffer (cleared first).
    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MsgError> {
        cdr::encode_into(Self::TYPE_NAME, self, out)
    }

    /// Decodes CDR with the encapsulation header, little or big endian. Malformed input is an
    /// error, never a panic or an allocation sized from an unchecked length.
    fn decode(bytes: &[u8]) -> Result<Self, MsgError> {
        cdr::decode(Self::TYPE_NAME, bytes)
    }

    /// The `ros2msg` schema text for MCAP channels of this type (see [`ros2msg_schema`]).
    fn schema() -> Option<String> {
        ros2msg_schema(Self::TYPE_NAME)
    }
}

macro_rules! ros_message {
    ($rust:ty, $name:literal) => {
        impl $crate::ros::msgs::RosMessage for $rust {
            const TYPE_NAME: &'static str = $name;
        }
    };
}
pub(crate) use ros_message;

// ---------------------------------------------------------------------------------------------
// builtin_interfaces, std_msgs, rosgraph_msgs

/// `builtin_interfaces/msg/Time`: seconds and nanoseconds since the epoch of the node's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Time {
    pub sec: i32,
    pub nanosec: u32,
}
ros_message!(Time, "builtin_interfaces/msg/Time");

impl Time {
    /// Splits nanoseconds into ROS `sec` + `nanosec` (nanosec in `0..1e9`, also for negative
    /// times); `None` when the seconds do not fit an `i32` (beyond the years 1901..2038).
    pub fn from_ns(stamp_ns: i64) -> Option<Self> {
        let sec = i32::try_from(stamp_ns.div_euclid(NS_PER_S)).ok()?;
        let nanosec = u32::try_from(stamp_ns.rem_euclid(NS_PER_S)).ok()?;
        Some(Self { sec, nanosec })
    }

    /// Nanoseconds since the epoch. Cannot overflow: |sec| < 2^31 and nanosec < 2^32.
    pub fn to_ns(self) -> i64 {
        i64::from(self.sec) * NS_PER_S + i64::from(self.nanosec)
    }
}

/// `builtin_interfaces/msg/Duration`; zero means "forever" for a marker's lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duration {
    pub sec: i32,
    pub nanosec: u32,
}
ros_message!(Duration, "builtin_interfaces/msg/Duration");

/// `std_msgs/msg/Header`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    pub stamp: Time,
    pub frame_id: String,
}
ros_message!(Header, "std_msgs/msg/Header");

impl Header {
    /// The stamp in nanoseconds, the synchronizer's and tracker's time unit.
    pub fn stamp_ns(&self) -> i64 {
        self.stamp.to_ns()
    }
}

/// `std_msgs/msg/Float32`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Float32 {
    pub data: f32,
}
ros_message!(Float32, "std_msgs/msg/Float32");

/// `std_msgs/msg/ColorRGBA`, each channel in [0, 1].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ColorRGBA {
    pub r: f32,
    pub g: f32,
    pub b: f32,
    pub a: f32,
}
ros_message!(ColorRGBA, "std_msgs/msg/ColorRGBA");

/// `std_msgs/msg/Empty`. rosidl gives every empty message this one placeholder byte, so it is
/// on the wire (one byte after the header) even though `Empty.msg` declares no field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {
    pub structure_needs_at_least_one_member: u8,
}
ros_message!(Empty, "std_msgs/msg/Empty");

/// `std_msgs/msg/String`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StringMsg {
    pub data: String,
}
ros_message!(StringMsg, "std_msgs/msg/String");

/// `rosgraph_msgs/msg/Clock`, published on `/clock` by `ros2 bag play --clock`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub clock: Time,
}
ros_message!(Clock, "rosgraph_msgs/msg/Clock");

// ---------------------------------------------------------------------------------------------
// sensor_msgs

/// `sensor_msgs/msg/Image`. Rows are `step` bytes apart (`step` may exceed
/// `width * bytes_per_pixel`); multi-byte pixels are big endian when `is_bigendian != 0`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub encoding: String,
    pub is_bigendian: u8,
    pub step: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}
ros_message!(Image, "sensor_msgs/msg/Image");

impl Image {
    /// A little-endian image with packed rows (`step = width * bytes_per_px`), as the node and
    /// the converters write them.
    pub fn packed(
        header: Header,
        width: usize,
        height: usize,
        encoding: &str,
        bytes_per_px: usize,
        data: Vec<u8>,
    ) -> Self {
        Self {
            header,
            height: height as u32,
            width: width as u32,
            encoding: encoding.into(),
            is_bigendian: 0,
            step: (width * bytes_per_px) as u32,
            data,
        }
    }
}

/// `sensor_msgs/msg/CompressedImage`; `format` is e.g. `"rgb8; jpeg compressed bgr8"`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedImage {
    pub header: Header,
    pub format: String,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}
ros_message!(CompressedImage, "sensor_msgs/msg/CompressedImage");

// Pixel payloads are summarised: a frame's bytes in a log line help nobody.
impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("header", &self.header)
            .field("height", &self.height)
            .field("width", &self.width)
            .field("encoding", &self.encoding)
            .field("is_bigendian", &self.is_bigendian)
            .field("step", &self.step)
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl std::fmt::Debug for CompressedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressedImage")
            .field("header", &self.header)
            .field("format", &self.format)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// `sensor_msgs/msg/RegionOfInterest`, in pixels of the full-resolution image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionOfInterest {
    pub x_offset: u32,
    pub y_offset: u32,
    pub height: u32,
    pub width: u32,
    pub do_rectify: bool,
}
ros_message!(RegionOfInterest, "sensor_msgs/msg/RegionOfInterest");

/// `sensor_msgs/msg/CameraInfo`: the calibration of a camera. `k` is the row-major 3x3
/// intrinsic matrix of the raw (distorted) image, `d` the distortion coefficients of
/// `distortion_model`, `r` the rectification rotation and `p` the row-major 3x4 projection of the
/// rectified image. `binning_*` 0 or 1 and an all-zero `roi` mean the full-resolution image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraInfo {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub distortion_model: String,
    pub d: Vec<f64>,
    pub k: [f64; 9],
    pub r: [f64; 9],
    pub p: [f64; 12],
    pub binning_x: u32,
    pub binning_y: u32,
    pub roi: RegionOfInterest,
}
ros_message!(CameraInfo, "sensor_msgs/msg/CameraInfo");

// ---------------------------------------------------------------------------------------------
// geometry_msgs

/// `geometry_msgs/msg/Point`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}
ros_message!(Point, "geometry_msgs/msg/Point");

/// `geometry_msgs/msg/Vector3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Vector3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}
ros_message!(Vector3, "geometry_msgs/msg/Vector3");

/// `geometry_msgs/msg/PointStamped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointStamped {
    pub header: Header,
    pub point: Point,
}
ros_message!(PointStamped, "geometry_msgs/msg/PointStamped");

/// `geometry_msgs/msg/Quaternion`; the default is the identity rotation, as in ROS (`w = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quaternion {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub w: f64,
}
ros_message!(Quaternion, "geometry_msgs/msg/Quaternion");

impl Default for Quaternion {
    fn default() -> Self {
        Self { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }
    }
}

/// `geometry_msgs/msg/Pose`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    pub position: Point,
    pub orientation: Quaternion,
}
ros_message!(Pose, "geometry_msgs/msg/Pose");

/// `geometry_msgs/msg/PoseWithCovariance`; `covariance` is the row-major 6x6 matrix over
/// (x, y, z, rot x, rot y, rot z).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoseWithCovariance {
    pub pose: Pose,
    #[serde(with = "BigArray")]
    pub covariance: [f64; 36],
}
ros_message!(PoseWithCovariance, "geometry_msgs/msg/PoseWithCovariance");

impl Default for PoseWithCovariance {
    fn default() -> Self {
        Self { pose: Pose::default(), covariance: [0.0; 36] }
    }
}

// ---------------------------------------------------------------------------------------------
// vision_msgs 4.x (Humble, Jazzy): pixel units, x right, y down, boxes by their centre

/// `vision_msgs/msg/Point2D`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Point2D {
    pub x: f64,
    pub y: f64,
}
ros_message!(Point2D, "vision_msgs/msg/Point2D");

/// `vision_msgs/msg/Pose2D` (4.x; not `geometry_msgs/Pose2D` as in Foxy's 3.x).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Pose2D {
    pub position: Point2D,
    pub theta: f64,
}
ros_message!(Pose2D, "vision_msgs/msg/Pose2D");

/// `vision_msgs/msg/BoundingBox2D`: centre and full size in pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox2D {
    pub center: Pose2D,
    pub size_x: f64,
    pub size_y: f64,
}
ros_message!(BoundingBox2D, "vision_msgs/msg/BoundingBox2D");

impl BoundingBox2D {
    /// A top-left box (the tracker's) as centre and full size, without rotation.
    pub fn from_xywh(b: crate::tracker::BoxXywh) -> Self {
        let (x, y) = b.center();
        Self { center: Pose2D { position: Point2D { x, y }, theta: 0.0 }, size_x: b.w, size_y: b.h }
    }

    /// The box as top-left corner and size (the rotation `theta` is ignored).
    pub fn to_xywh(&self) -> crate::tracker::BoxXywh {
        let (w, h) = (self.size_x, self.size_y);
        crate::tracker::BoxXywh::new(self.center.position.x - 0.5 * w, self.center.position.y - 0.5 * h, w, h)
    }
}

/// `vision_msgs/msg/ObjectHypothesis`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectHypothesis {
    pub class_id: String,
    pub score: f64,
}
ros_message!(ObjectHypothesis, "vision_msgs/msg/ObjectHypothesis");

/// `vision_msgs/msg/ObjectHypothesisWithPose`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectHypothesisWithPose {
    pub hypothesis: ObjectHypothesis,
    pub pose: PoseWithCovariance,
}
ros_message!(ObjectHypothesisWithPose, "vision_msgs/msg/ObjectHypothesisWithPose");

/// `vision_msgs/msg/Detection2D`; `id` is the tracking id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detection2D {
    pub header: Header,
    pub results: Vec<ObjectHypothesisWithPose>,
    pub bbox: BoundingBox2D,
    pub id: String,
}
ros_message!(Detection2D, "vision_msgs/msg/Detection2D");

/// `vision_msgs/msg/Classification`: class hypotheses of a whole image. The node publishes the
/// target's confidence with the image's header this way, every frame (also while lost).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub header: Header,
    pub results: Vec<ObjectHypothesis>,
}
ros_message!(Classification, "vision_msgs/msg/Classification");

/// `vision_msgs/msg/Detection2DArray`; an empty `detections` means "processed, no target".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detection2DArray {
    pub header: Header,
    pub detections: Vec<Detection2D>,
}
ros_message!(Detection2DArray, "vision_msgs/msg/Detection2DArray");

/// `vision_msgs/msg/BoundingBox3D`: centre pose and full size in metres.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox3D {
    pub center: Pose,
    pub size: Vector3,
}
ros_message!(BoundingBox3D, "vision_msgs/msg/BoundingBox3D");

/// `vision_msgs/msg/Detection3D`; `id` is the tracking id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detection3D {
    pub header: Header,
    pub results: Vec<ObjectHypothesisWithPose>,
    pub bbox: BoundingBox3D,
    pub id: String,
}
ros_message!(Detection3D, "vision_msgs/msg/Detection3D");

/// `vision_msgs/msg/Detection3DArray`; an empty `detections` means "processed, no target".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detection3DArray {
    pub header: Header,
    pub detections: Vec<Detection3D>,
}
ros_message!(Detection3DArray, "vision_msgs/msg/Detection3DArray");

// ---------------------------------------------------------------------------------------------
// visualization_msgs

/// `visualization_msgs/msg/UVCoordinate` (texture coordinates of a mesh marker).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UVCoordinate {
    pub u: f32,
    pub v: f32,
}
ros_message!(UVCoordinate, "visualization_msgs/msg/UVCoordinate");

/// `visualization_msgs/msg/MeshFile` (an embedded mesh of a mesh marker).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshFile {
    pub filename: String,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}
ros_message!(MeshFile, "visualization_msgs/msg/MeshFile");

/// `visualization_msgs/msg/Marker` (Humble and Jazzy layout; Jazzy only adds the constant
/// `ARROW_STRIP`). Texture and mesh fields stay empty for the shapes the node draws.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub header: Header,
    pub ns: String,
    pub id: i32,
    #[serde(rename = "type")]
    pub type_: i32,
    pub action: i32,
    pub pose: Pose,
    pub scale: Vector3,
    pub color: ColorRGBA,
    pub lifetime: Duration,
    pub frame_locked: bool,
    pub points: Vec<Point>,
    pub colors: Vec<ColorRGBA>,
    pub texture_resource: String,
    pub texture: CompressedImage,
    pub uv_coordinates: Vec<UVCoordinate>,
    pub text: String,
    pub mesh_resource: String,
    pub mesh_file: MeshFile,
    pub mesh_use_embedded_materials: bool,
}
ros_message!(Marker, "visualization_msgs/msg/Marker");

impl Marker {
    pub const CUBE: i32 = 1;
    pub const SPHERE: i32 = 2;
    pub const TEXT_VIEW_FACING: i32 = 9;
    pub const ADD: i32 = 0;
    pub const DELETE: i32 = 2;
    pub const DELETEALL: i32 = 3;
}

/// `visualization_msgs/msg/MarkerArray`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MarkerArray {
    pub markers: Vec<Marker>,
}
ros_message!(MarkerArray, "visualization_msgs/msg/MarkerArray");

// ---------------------------------------------------------------------------------------------
// diagnostic_msgs

/// `diagnostic_msgs/msg/KeyValue`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}
ros_message!(KeyValue, "diagnostic_msgs/msg/KeyValue");

/// `diagnostic_msgs/msg/DiagnosticStatus`; `level` is one of the `OK..STALE` constants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticStatus {
    pub level: u8,
    pub name: String,
    pub message: String,
    pub hardware_id: String,
    pub values: Vec<KeyValue>,
}
ros_message!(DiagnosticStatus, "diagnostic_msgs/msg/DiagnosticStatus");

impl DiagnosticStatus {
    pub const OK: u8 = 0;
    pub const WARN: u8 = 1;
    pub const ERROR: u8 = 2;
    pub const STALE: u8 = 3;
}

/// `diagnostic_msgs/msg/DiagnosticArray`, published on `/diagnostics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticArray {
    pub header: Header,
    pub status: Vec<DiagnosticStatus>,
}
ros_message!(DiagnosticArray, "diagnostic_msgs/msg/DiagnosticArray");

// ---------------------------------------------------------------------------------------------
// .msg definitions and ros2msg schemas

/// The `.msg` text of every mirrored type, keyed by full type name. Field types are written
/// fully qualified (`std_msgs/Header`) and without comments or default values, which is the
/// normal form rosbags and rosbag2 put into MCAP schemas; none of that changes the wire format.
pub const DEFINITIONS: &[(&str, &str)] = &[
    ("builtin_interfaces/msg/Time", include_str!("../../msg/builtin_interfaces/Time.msg")),
    ("builtin_interfaces/msg/Duration", include_str!("../../msg/builtin_interfaces/Duration.msg")),
    ("std_msgs/msg/Header", include_str!("../../msg/std_msgs/Header.msg")),
    ("std_msgs/msg/Float32", include_str!("../../msg/std_msgs/Float32.msg")),
    ("std_msgs/msg/String", include_str!("../../msg/std_msgs/String.msg")),
    ("std_msgs/msg/Empty", include_str!("../../msg/std_msgs/Empty.msg")),
    ("std_msgs/msg/ColorRGBA", include_str!("../../msg/std_msgs/ColorRGBA.msg")),
    ("rosgraph_msgs/msg/Clock", include_str!("../../msg/rosgraph_msgs/Clock.msg")),
    ("sensor_msgs/msg/Image", include_str!("../../msg/sensor_msgs/Image.msg")),
    ("sensor_msgs/msg/CompressedImage", include_str!("../../msg/sensor_msgs/CompressedImage.msg")),
    ("sensor_msgs/msg/RegionOfInterest", include_str!("../../msg/sensor_msgs/RegionOfInterest.msg")),
    ("sensor_msgs/msg/CameraInfo", include_str!("../../msg/sensor_msgs/CameraInfo.msg")),
    ("geometry_msgs/msg/Point", include_str!("../../msg/geometry_msgs/Point.msg")),
    ("geometry_msgs/msg/PointStamped", include_str!("../../msg/geometry_msgs/PointStamped.msg")),
    ("geometry_msgs/msg/Vector3", include_str!("../../msg/geometry_msgs/Vector3.msg")),
    ("geometry_msgs/msg/Quaternion", include_str!("../../msg/geometry_msgs/Quaternion.msg")),
    ("geometry_msgs/msg/Pose", include_str!("../../msg/geometry_msgs/Pose.msg")),
    ("geometry_msgs/msg/PoseWithCovariance", include_str!("../../msg/geometry_msgs/PoseWithCovariance.msg")),
    ("vision_msgs/msg/Point2D", include_str!("../../msg/vision_msgs/Point2D.msg")),
    ("vision_msgs/msg/Pose2D", include_str!("../../msg/vision_msgs/Pose2D.msg")),
    ("vision_msgs/msg/BoundingBox2D", include_str!("../../msg/vision_msgs/BoundingBox2D.msg")),
    ("vision_msgs/msg/ObjectHypothesis", include_str!("../../msg/vision_msgs/ObjectHypothesis.msg")),
    ("vision_msgs/msg/ObjectHypothesisWithPose", include_str!("../../msg/vision_msgs/ObjectHypothesisWithPose.msg")),
    ("vision_msgs/msg/Detection2D", include_str!("../../msg/vision_msgs/Detection2D.msg")),
    ("vision_msgs/msg/Detection2DArray", include_str!("../../msg/vision_msgs/Detection2DArray.msg")),
    ("vision_msgs/msg/Classification", include_str!("../../msg/vision_msgs/Classification.msg")),
    ("vision_msgs/msg/BoundingBox3D", include_str!("../../msg/vision_msgs/BoundingBox3D.msg")),
    ("vision_msgs/msg/Detection3D", include_str!("../../msg/vision_msgs/Detection3D.msg")),
    ("vision_msgs/msg/Detection3DArray", include_str!("../../msg/vision_msgs/Detection3DArray.msg")),
    ("visualization_msgs/msg/UVCoordinate", include_str!("../../msg/visualization_msgs/UVCoordinate.msg")),
    ("visualization_msgs/msg/MeshFile", include_str!("../../msg/visualization_msgs/MeshFile.msg")),
    ("visualization_msgs/msg/Marker", include_str!("../../msg/visualization_msgs/Marker.msg")),
    ("visualization_msgs/msg/MarkerArray", include_str!("../../msg/visualization_msgs/MarkerArray.msg")),
    ("diagnostic_msgs/msg/KeyValue", include_str!("../../msg/diagnostic_msgs/KeyValue.msg")),
    ("diagnostic_msgs/msg/DiagnosticStatus", include_str!("../../msg/diagnostic_msgs/DiagnosticStatus.msg")),
    ("diagnostic_msgs/msg/DiagnosticArray", include_str!("../../msg/diagnostic_msgs/DiagnosticArray.msg")),
];

/// The `.msg` text of one type (`pkg/msg/Type`), without its dependencies.
pub fn definition(type_name: &str) -> Option<&'static str> {
    DEFINITIONS.iter().find(|(name, _)| *name == type_name).map(|(_, text)| *text)
}

/// The `ros2msg` schema of an MCAP channel, as rosbag2 and rosbags write it: the type's own
/// definition, then each dependency once, depth first in field order, each after a line of 80
/// `=` and a `MSG: pkg/Type` line. `None` for a type (or dependency) not in [`DEFINITIONS`].
pub fn ros2msg_schema(type_name: &str) -> Option<String> {
    let mut text = definition(type_name)?.to_owned();
    let mut seen = vec![type_name.to_owned()];
    append_dependencies(type_name, &mut seen, &mut text)?;
    Some(text)
}

fn append_dependencies(type_name: &str, seen: &mut Vec<String>, text: &mut String) -> Option<()> {
    for dependency in field_types(definition(type_name)?) {
        if seen.contains(&dependency) {
            continue;
        }
        let body = definition(&dependency)?;
        text.push_str(&"=".repeat(80));
        text.push_str("\nMSG: ");
        text.push_str(&dependency.replacen("/msg/", "/", 1));
        text.push('\n');
        text.push_str(body);
        seen.push(dependency.clone());
        append_dependencies(&dependency, seen, text)?;
    }
    Some(())
}

/// The message-typed fields of a definition as full type names (`pkg/msg/Type`), in order.
/// Constants (`byte OK=0`) and primitive fields are skipped.
fn field_types(definition: &str) -> Vec<String> {
    definition
        .lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("").trim();
            let (field_type, rest) = line.split_once(char::is_whitespace)?;
            if rest.contains('=') {
                return None;
            }
            let base = field_type.split('[').next().unwrap_or(field_type);
            let (package, name) = base.split_once('/')?;
            Some(format!("{package}/msg/{name}"))
        })
        .collect()
}

/// Decodes a CDR payload for a known type name into its mirror struct's JSON form: the generic
/// path for tools (bag inspection) that learn the type at run time.
pub fn decode_to_json(type_name: &str, bytes: &[u8]) -> Option<Result<serde_json::Value, MsgError>> {
    fn json<T: RosMessage>(bytes: &[u8]) -> Result<serde_json::Value, MsgError> {
        let value = T::decode(bytes)?;
        // Serialising plain structs of numbers, strings and vectors into a JSON value cannot
        // fail; the fallback only keeps this path free of panics.
        Ok(serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
    }
    let decoded = match type_name {
        Time::TYPE_NAME => json::<Time>(bytes),
        Duration::TYPE_NAME => json::<Duration>(bytes),
        ColorRGBA::TYPE_NAME => json::<ColorRGBA>(bytes),
        CameraInfo::TYPE_NAME => json::<CameraInfo>(bytes),
        Vector3::TYPE_NAME => json::<Vector3>(bytes),
        PointStamped::TYPE_NAME => json::<PointStamped>(bytes),
        BoundingBox3D::TYPE_NAME => json::<BoundingBox3D>(bytes),
        Detection3D::TYPE_NAME => json::<Detection3D>(bytes),
        Detection3DArray::TYPE_NAME => json::<Detection3DArray>(bytes),
        UVCoordinate::TYPE_NAME => json::<UVCoordinate>(bytes),
        MeshFile::TYPE_NAME => json::<MeshFile>(bytes),
        Marker::TYPE_NAME => json::<Marker>(bytes),
        MarkerArray::TYPE_NAME => json::<MarkerArray>(bytes),
        Header::TYPE_NAME => json::<Header>(bytes),
        Float32::TYPE_NAME => json::<Float32>(bytes),
        Empty::TYPE_NAME => json::<Empty>(bytes),
        StringMsg::TYPE_NAME => json::<StringMsg>(bytes),
        Clock::TYPE_NAME => json::<Clock>(bytes),
        Image::TYPE_NAME => json::<Image>(bytes),
        CompressedImage::TYPE_NAME => json::<CompressedImage>(bytes),
        RegionOfInterest::TYPE_NAME => json::<RegionOfInterest>(bytes),
        Point::TYPE_NAME => json::<Point>(bytes),
        Quaternion::TYPE_NAME => json::<Quaternion>(bytes),
        Pose::TYPE_NAME => json::<Pose>(bytes),
        PoseWithCovariance::TYPE_NAME => json::<PoseWithCovariance>(bytes),
        Point2D::TYPE_NAME => json::<Point2D>(bytes),
        Pose2D::TYPE_NAME => json::<Pose2D>(bytes),
        BoundingBox2D::TYPE_NAME => json::<BoundingBox2D>(bytes),
        ObjectHypothesis::TYPE_NAME => json::<ObjectHypothesis>(bytes),
        ObjectHypothesisWithPose::TYPE_NAME => json::<ObjectHypothesisWithPose>(bytes),
        Detection2D::TYPE_NAME => json::<Detection2D>(bytes),
        Detection2DArray::TYPE_NAME => json::<Detection2DArray>(bytes),
        Classification::TYPE_NAME => json::<Classification>(bytes),
        crate::ros::srv::ParameterEvent::TYPE_NAME => json::<crate::ros::srv::ParameterEvent>(bytes),
        crate::ros::srv::TransitionEvent::TYPE_NAME => json::<crate::ros::srv::TransitionEvent>(bytes),
        KeyValue::TYPE_NAME => json::<KeyValue>(bytes),
        DiagnosticStatus::TYPE_NAME => json::<DiagnosticStatus>(bytes),
        DiagnosticArray::TYPE_NAME => json::<DiagnosticArray>(bytes),
        _ => return None,
    };
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_splits_negative_and_positive_nanoseconds() {
        let t = Time::from_ns(-1).unwrap();
        assert_eq!((t.sec, t.nanosec), (-1, 999_999_999));
        assert_eq!(t.to_ns(), -1);
        let t = Time::from_ns(1_700_000_000_123_456_789).unwrap();
        assert_eq!((t.sec, t.nanosec), (1_700_000_000, 123_456_789));
        assert_eq!(t.to_ns(), 1_700_000_000_123_456_789);
        assert_eq!(Time::from_ns(i64::MAX), None);
        assert_eq!(Time::from_ns(i64::from(i32::MIN) * NS_PER_S).map(|t| t.sec), Some(i32::MIN));
    }

    #[test]
    fn non_normalised_nanosec_does_not_overflow() {
        let t = Time { sec: i32::MAX, nanosec: u32::MAX };
        assert_eq!(t.to_ns(), 2_147_483_647 * NS_PER_S + 4_294_967_295);
    }

    #[test]
    fn every_type_has_a_resolvable_schema() {
        for (name, _) in DEFINITIONS {
            assert!(ros2msg_schema(name).is_some(), "{name}");
        }
        assert!(ros2msg_schema("nav_msgs/msg/Odometry").is_none());
    }

    #[test]
    fn schema_lists_dependencies_once_depth_first() {
        let schema = Detection2DArray::schema().unwrap();
        let order: Vec<&str> = schema.lines().filter_map(|l| l.strip_prefix("MSG: ")).collect();
        assert_eq!(
            order,
            [
                "std_msgs/Header",
                "builtin_interfaces/Time",
                "vision_msgs/Detection2D",
                "vision_msgs/ObjectHypothesisWithPose",
                "vision_msgs/ObjectHypothesis",
                "geometry_msgs/PoseWithCovariance",
                "geometry_msgs/Pose",
                "geometry_msgs/Point",
                "geometry_msgs/Quaternion",
                "vision_msgs/BoundingBox2D",
                "vision_msgs/Pose2D",
                "vision_msgs/Point2D",
            ]
        );
    }

    #[test]
    fn constants_are_not_dependencies() {
        assert_eq!(
            field_types(definition("diagnostic_msgs/msg/DiagnosticStatus").unwrap()),
            ["diagnostic_msgs/msg/KeyValue"]
        );
    }

    #[test]
    fn bounding_boxes_convert_to_and_from_top_left_boxes() {
        let b = crate::tracker::BoxXywh::new(10.0, 20.0, 30.0, 41.0);
        let bb = BoundingBox2D::from_xywh(b);
        assert_eq!((bb.center.position.x, bb.center.position.y, bb.size_x, bb.size_y), (25.0, 40.5, 30.0, 41.0));
        assert_eq!(bb.to_xywh(), b);
    }

    #[test]
    fn decode_to_json_dispatches_on_type_name() {
        let bytes = Float32 { data: 0.5 }.encode().unwrap();
        let value = decode_to_json("std_msgs/msg/Float32", &bytes).unwrap().unwrap();
        assert_eq!(value, serde_json::json!({"data": 0.5}));
        assert!(decode_to_json("std_msgs/msg/Int32", &bytes).is_none());
        assert!(decode_to_json("sensor_msgs/msg/Image", &bytes).unwrap().is_err());
    }
}
