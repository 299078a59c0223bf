//! CDR codecs against fixtures written by PyPI `rosbags` 0.11.9 (`scripts/make_fixtures.py`)
//! for the ROS 2 Humble and Jazzy type stores: decode equals the recorded field values, encode
//! reproduces the bytes, the ros2msg schemas equal rosbags' own, and malformed input gives an
//! error without a panic or a large allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use patrack::ros::msgs::*;
use patrack::ros::srv;
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Largest single allocation per thread, to show hostile lengths allocate nothing big.

struct TrackingAllocator;

thread_local! {
    static LARGEST_ALLOCATION_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation(size: usize) {
    // try_with: allocations during thread teardown must not panic.
    let _ = LARGEST_ALLOCATION_BYTES.try_with(|largest| largest.set(largest.get().max(size)));
}

unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: TrackingAllocator = TrackingAllocator;

fn largest_allocation_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST_ALLOCATION_BYTES.with(|l| l.set(0));
    let result = f();
    (result, LARGEST_ALLOCATION_BYTES.with(|l| l.get()))
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn data_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ros")).to_path_buf()
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(data_dir().join("samples.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

struct Sample {
    name: String,
    type_name: String,
    value: Value,
    big_endian_file: bool,
}

fn samples() -> Vec<Sample> {
    manifest()["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Sample {
            name: s["name"].as_str().unwrap().to_owned(),
            type_name: s["type"].as_str().unwrap().to_owned(),
            value: s["value"].clone(),
            big_endian_file: s["big_endian_file"].as_bool().unwrap(),
        })
        .collect()
}

fn stores() -> Vec<String> {
    manifest()["stores"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn read(store: &str, file: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(store).join(file)).unwrap()
}

/// Calls `$f::<T>(args)` with the mirror struct of a ROS type name.
macro_rules! with_type {
    ($type_name:expr, $f:ident ( $($arg:expr),* )) => {
        match $type_name {
            "builtin_interfaces/msg/Time" => $f::<Time>($($arg),*),
            "rosgraph_msgs/msg/Clock" => $f::<Clock>($($arg),*),
            "std_msgs/msg/Header" => $f::<Header>($($arg),*),
            "std_msgs/msg/Float32" => $f::<Float32>($($arg),*),
            "std_msgs/msg/Empty" => $f::<Empty>($($arg),*),
            "std_msgs/msg/String" => $f::<StringMsg>($($arg),*),
            "sensor_msgs/msg/Image" => $f::<Image>($($arg),*),
            "sensor_msgs/msg/CompressedImage" => $f::<CompressedImage>($($arg),*),
            "sensor_msgs/msg/RegionOfInterest" => $f::<RegionOfInterest>($($arg),*),
            "geometry_msgs/msg/PoseWithCovariance" => $f::<PoseWithCovariance>($($arg),*),
            "vision_msgs/msg/Detection2D" => $f::<Detection2D>($($arg),*),
            "vision_msgs/msg/Detection2DArray" => $f::<Detection2DArray>($($arg),*),
            "diagnostic_msgs/msg/DiagnosticArray" => $f::<DiagnosticArray>($($arg),*),
            "builtin_interfaces/msg/Duration" => $f::<Duration>($($arg),*),
            "sensor_msgs/msg/CameraInfo" => $f::<CameraInfo>($($arg),*),
            "geometry_msgs/msg/PointStamped" => $f::<PointStamped>($($arg),*),
            "vision_msgs/msg/Detection3DArray" => $f::<Detection3DArray>($($arg),*),
            "visualization_msgs/msg/MarkerArray" => $f::<MarkerArray>($($arg),*),
            "vision_msgs/msg/Classification" => $f::<Classification>($($arg),*),
            "rcl_interfaces/msg/ParameterEvent" => $f::<srv::ParameterEvent>($($arg),*),
            "rcl_interfaces/srv/GetParameters_Request" => $f::<srv::GetParametersRequest>($($arg),*),
            "rcl_interfaces/srv/GetParameters_Response" => $f::<srv::GetParametersResponse>($($arg),*),
            "rcl_interfaces/srv/SetParameters_Request" => $f::<srv::SetParametersRequest>($($arg),*),
            "rcl_interfaces/srv/SetParameters_Response" => $f::<srv::SetParametersResponse>($($arg),*),
            "rcl_interfaces/srv/SetParametersAtomically_Response" => {
                $f::<srv::SetParametersAtomicallyResponse>($($arg),*)
            }
            "rcl_interfaces/srv/ListParameters_Request" => $f::<srv::ListParametersRequest>($($arg),*),
            "rcl_interfaces/srv/ListParameters_Response" => $f::<srv::ListParametersResponse>($($arg),*),
            "rcl_interfaces/srv/DescribeParameters_Response" => $f::<srv::DescribeParametersResponse>($($arg),*),
            "rcl_interfaces/srv/GetParameterTypes_Response" => $f::<srv::GetParameterTypesResponse>($($arg),*),
            "lifecycle_msgs/msg/TransitionEvent" => $f::<srv::TransitionEvent>($($arg),*),
            "lifecycle_msgs/srv/ChangeState_Request" => $f::<srv::ChangeStateRequest>($($arg),*),
            "lifecycle_msgs/srv/ChangeState_Response" => $f::<srv::ChangeStateResponse>($($arg),*),
            "lifecycle_msgs/srv/GetState_Request" => $f::<srv::EmptyRequest>($($arg),*),
            "lifecycle_msgs/srv/GetState_Response" => $f::<srv::GetStateResponse>($($arg),*),
            "lifecycle_msgs/srv/GetAvailableTransitions_Response" => {
                $f::<srv::GetAvailableTransitionsResponse>($($arg),*)
            }
            "std_srvs/srv/SetBool_Request" => $f::<srv::SetBoolRequest>($($arg),*),
            "std_srvs/srv/Trigger_Response" => $f::<srv::TriggerResponse>($($arg),*),
            other => panic!("no mirror struct for fixture type {other}"),
        }
    };
}

fn check_both_ways<T: RosMessage + PartialEq + std::fmt::Debug>(sample: &Sample, store: &str) -> usize {
    let expected: T = serde_json::from_value(sample.value.clone()).unwrap();
    let bytes = read(store, &format!("{}.cdr", sample.name));
    let decoded = T::decode(&bytes).unwrap();
    assert_eq!(decoded, expected, "{store}/{}: decode", sample.name);
    let encoded = expected.encode().unwrap();
    assert_eq!(encoded, bytes, "{store}/{}: encode", sample.name);
    // The JSON form of the decoded struct is the recorded one field for field, so the mirror
    // has no extra, missing or renamed field.
    assert_eq!(serde_json::to_value(&decoded).unwrap(), sample.value, "{store}/{}", sample.name);
    if sample.big_endian_file {
        let big = read(store, &format!("{}.be.cdr", sample.name));
        assert_eq!(&big[..2], [0, 0]);
        assert_eq!(T::decode(&big).unwrap(), expected, "{store}/{}: big endian", sample.name);
    }
    bytes.len()
}

#[test]
fn fixtures_decode_to_their_values_and_encode_to_their_bytes_for_humble_and_jazzy() {
    let samples = samples();
    assert!(samples.len() >= 16);
    for store in stores() {
        for sample in &samples {
            let len = with_type!(sample.type_name.as_str(), check_both_ways(sample, &store));
            println!("{store}/{}: {len} bytes equal both ways", sample.name);
        }
    }
}

#[test]
fn decode_to_json_matches_the_recorded_values() {
    // Tools learn message types at run time; service halves never appear in bags.
    for sample in samples().into_iter().filter(|s| s.type_name.contains("/msg/")) {
        let bytes = read("jazzy", &format!("{}.cdr", sample.name));
        let value = decode_to_json(&sample.type_name, &bytes).unwrap().unwrap();
        assert_eq!(value, sample.value, "{}", sample.name);
    }
}

#[test]
fn schemas_equal_the_ones_rosbags_writes_into_mcap() {
    let manifest = manifest();
    for store in stores() {
        let schemas = manifest["schemas"][&store].as_object().unwrap();
        assert_eq!(schemas.len(), DEFINITIONS.len(), "{store}: one schema per mirrored type");
        for (type_name, expected) in schemas {
            let mut ours = ros2msg_schema(type_name).unwrap_or_default();
            if store == "humble" {
                // Humble's Marker lacks Jazzy's ARROW_STRIP constant; the fields (the wire
                // format) are the same, and the output bags are written as Jazzy writes them.
                ours = ours.replace("int32 ARROW_STRIP=12\n", "");
            }
            assert_eq!(ours, expected.as_str().unwrap(), "{store}: {type_name}");
        }
    }
    assert_eq!(Image::schema(), ros2msg_schema("sensor_msgs/msg/Image"));
    // The one Humble/Jazzy difference among the mirrored types, and only in a constant.
    let humble = manifest["schemas"]["humble"]["visualization_msgs/msg/Marker"].as_str().unwrap();
    let jazzy = manifest["schemas"]["jazzy"]["visualization_msgs/msg/Marker"].as_str().unwrap();
    assert_eq!(jazzy.replace("int32 ARROW_STRIP=12\n", ""), humble);
}

// ---------------------------------------------------------------------------------------------
// Malformed input

fn decode_is_err<T: RosMessage>(bytes: &[u8]) -> bool {
    T::decode(bytes).is_err()
}

fn decode_any<T: RosMessage>(bytes: &[u8]) -> bool {
    T::decode(bytes).is_ok()
}

#[test]
fn every_truncation_is_an_error() {
    let mut checked = 0;
    for sample in samples() {
        let bytes = read("humble", &format!("{}.cdr", sample.name));
        for len in 0..bytes.len() {
            let truncated = &bytes[..len];
            assert!(
                with_type!(sample.type_name.as_str(), decode_is_err(truncated)),
                "{} truncated to {len} of {} bytes decoded",
                sample.name,
                bytes.len()
            );
            checked += 1;
        }
    }
    println!("{checked} truncations rejected");
}

#[test]
fn bad_encapsulation_headers_are_errors() {
    let bytes = read("humble", "detection2d_array_two.cdr");
    for id in [[0x00, 0x02], [0x00, 0x03], [0x00, 0x07], [0x01, 0x00], [0xff, 0xff]] {
        let mut bad = bytes.clone();
        bad[..2].copy_from_slice(&id);
        let err = Detection2DArray::decode(&bad).unwrap_err();
        assert!(matches!(err, MsgError::UnsupportedEncapsulation { .. }), "{id:02x?}: {err}");
    }
    // The right layout read with the wrong byte order fails on its lengths.
    let mut swapped = bytes.clone();
    swapped[1] = 0x00;
    assert!(Detection2DArray::decode(&swapped).is_err());
    // A message of another type leaves bytes over.
    let image = read("humble", "image_rgb8_padded.cdr");
    assert!(matches!(Header::decode(&image), Err(MsgError::TrailingBytes { .. })));
}

fn set_u32_le(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// Offset (in the whole buffer, header included) of the u32 that follows a leading
/// std_msgs/Header whose frame_id has `frame_id_len` bytes.
fn after_header(frame_id_len: usize) -> usize {
    let body = 8 + 4 + frame_id_len + 1;
    4 + body.next_multiple_of(4)
}

/// `decode_is_err::<T>` for one message type.
type RejectsFn = fn(&[u8]) -> bool;

#[test]
fn huge_lengths_are_errors_without_big_allocations() {
    let image = read("humble", "image_rgb8_padded.cdr");
    let data_len_at = image.len() - 48 - 4; // 3 rows of step 16 follow their u32 length
    let det_two = read("humble", "detection2d_array_two.cdr");
    let det_frame = "camera_color_optical_frame".len();
    let diag = read("humble", "diagnostic_array.cdr");
    let header = read("humble", "header_unicode.cdr");

    let mut cases: Vec<(&str, Vec<u8>, RejectsFn)> = Vec::new();
    for huge in [u32::MAX, 0x8000_0000, 1 << 24] {
        let mut b = image.clone();
        set_u32_le(&mut b, data_len_at, huge);
        cases.push(("Image.data length", b, decode_is_err::<Image>));
        let mut b = header.clone();
        set_u32_le(&mut b, 12, huge);
        cases.push(("Header.frame_id length", b, decode_is_err::<Header>));
        let mut b = det_two.clone();
        set_u32_le(&mut b, after_header(det_frame), huge);
        cases.push(("Detection2DArray.detections count", b, decode_is_err::<Detection2DArray>));
        // First detection: its own header, then the results count.
        let mut b = det_two.clone();
        let results_at = after_header(det_frame) + 4 + (after_header(det_frame) - 4);
        set_u32_le(&mut b, results_at, huge);
        cases.push(("Detection2D.results count", b, decode_is_err::<Detection2DArray>));
        let mut b = diag.clone();
        set_u32_le(&mut b, after_header(0), huge);
        cases.push(("DiagnosticArray.status count", b, decode_is_err::<DiagnosticArray>));
    }
    const LIMIT_BYTES: usize = 64 * 1024;
    for (what, bytes, is_err) in cases {
        let (rejected, largest) = largest_allocation_during(|| is_err(&bytes));
        assert!(rejected, "{what}: decoded");
        println!("{what}: rejected, largest allocation {largest} bytes (limit {LIMIT_BYTES})");
        assert!(largest <= LIMIT_BYTES, "{what}: allocated {largest} bytes");
    }
    // The crafted offsets point at real length fields: restoring the recorded value decodes.
    let mut b = det_two.clone();
    let results_at = after_header(det_frame) + 4 + (after_header(det_frame) - 4);
    assert_eq!(u32::from_le_bytes(b[results_at..results_at + 4].try_into().unwrap()), 1);
    set_u32_le(&mut b, results_at, 1);
    assert!(Detection2DArray::decode(&b).is_ok());
}

/// xorshift64*: deterministic mutations without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_corruption_never_panics_or_allocates_beyond_the_input() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut ok, mut err) = (0, 0);
    let mut largest_seen = 0;
    for sample in samples() {
        let bytes = read("jazzy", &format!("{}.cdr", sample.name));
        for _ in 0..500 {
            let mut corrupt = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let at = 4 + rng.below(corrupt.len() - 4);
                corrupt[at] = if rng.below(2) == 0 { 0xff } else { rng.next() as u8 };
            }
            let (decoded, largest) =
                largest_allocation_during(|| with_type!(sample.type_name.as_str(), decode_any(&corrupt)));
            if decoded {
                ok += 1;
            } else {
                err += 1;
            }
            largest_seen = largest_seen.max(largest);
            assert!(largest <= 64 * 1024 + 16 * corrupt.len(), "{}: {largest}", sample.name);
        }
    }
    println!("corrupted messages: {ok} decoded, {err} rejected; largest allocation {largest_seen} bytes");
    assert!(err > 0 && ok > 0);
}

// ---------------------------------------------------------------------------------------------
// Large images

/// `sensor_msgs/Image` with a plain `Vec<u8>`: per-element serde, the wire format is the same.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct PlainVecImage {
    header: Header,
    height: u32,
    width: u32,
    encoding: String,
    is_bigendian: u8,
    step: u32,
    data: Vec<u8>,
}

fn vga_rgb8() -> Image {
    let (width, height) = (640u32, 480u32);
    Image {
        header: Header {
            stamp: Time { sec: 1_700_000_000, nanosec: 1 },
            frame_id: "camera_color_optical_frame".into(),
        },
        height,
        width,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: width * 3,
        data: (0..width * height * 3).map(|i| (i % 251) as u8).collect(),
    }
}

fn best_of<R>(runs: usize, mut f: impl FnMut() -> R) -> (R, f64) {
    let mut best_ms = f64::INFINITY;
    let mut result = f();
    for _ in 0..runs {
        let start = Instant::now();
        result = f();
        best_ms = best_ms.min(start.elapsed().as_secs_f64() * 1e3);
    }
    (result, best_ms)
}

#[test]
fn vga_rgb8_image_round_trips_with_one_copy_and_matches_the_per_element_encoding() {
    let image = vga_rgb8();
    let (bytes, encode_ms) = best_of(5, || image.encode().unwrap());
    let (decoded, decode_ms) = best_of(5, || Image::decode(&bytes).unwrap());
    assert!(decoded == image);
    // encapsulation, header (stamp, frame_id 26+NUL, pad 1), height, width, "rgb8"+NUL,
    // is_bigendian, pad 2, step, data length, data
    assert_eq!(bytes.len(), 4 + (8 + 4 + 27 + 1) + 4 + 4 + (4 + 5) + 1 + 2 + 4 + 4 + 921_600);

    let plain = PlainVecImage {
        header: image.header.clone(),
        height: image.height,
        width: image.width,
        encoding: image.encoding.clone(),
        is_bigendian: image.is_bigendian,
        step: image.step,
        data: image.data.clone(),
    };
    let (plain_bytes, plain_encode_ms) =
        best_of(5, || patrack::ros::cdr::encode("sensor_msgs/msg/Image", &plain).unwrap());
    let (plain_decoded, plain_decode_ms) =
        best_of(5, || patrack::ros::cdr::decode::<PlainVecImage>("sensor_msgs/msg/Image", &bytes).unwrap());
    assert_eq!(plain_bytes, bytes, "serde_bytes must not change the wire format");
    assert!(plain_decoded == plain);
    println!(
        "640x480 rgb8: encode {encode_ms:.3} ms, decode {decode_ms:.3} ms with serde_bytes; \
         per-element Vec<u8>: encode {plain_encode_ms:.3} ms, decode {plain_decode_ms:.3} ms"
    );
}
