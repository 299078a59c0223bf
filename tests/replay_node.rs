//! The node and the replay give the same outputs: one bag fed to `NodeCore` in storage order
//! (waiting for each answer, as a node whose inference keeps up) and replayed with the same
//! network and parameters gives byte-identical `~/detections`, `~/confidence` and
//! `~/debug_image` messages, pair for pair, including the empty answers before the initial box,
//! an init that refers to an already answered frame, a pair whose image cannot be decoded and a
//! malformed message. In RGB-D mode the same holds for `~/target_point`, `~/detections_3d` and
//! `~/markers`, with CameraInfo messages arriving (valid, refused, changed) between the pairs.

mod bag_support;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bag_support::*;
use patrack::bag::replay::{self, CameraSource, InitSource, ReplayOptions};
use patrack::bag::{BagReader, ChunkCompression};
use patrack::ros::msgs::{Detection2DArray, Detection3DArray, Float32, Image, MarkerArray, PointStamped, RosMessage};
use patrack::ros::node::{Input, NodeCore};
use patrack::ros::output::Output;
use patrack::ros::params::NodeParams;
use patrack::ros::targets::TargetSet;
use patrack::sensor::Modality;
use patrack::tracker::{BoxXywh, Tracker};

const W: u32 = 96;
const H: u32 = 72;
const DEPTH: &str = "/camera/depth/image_raw";
const INFO: &str = "/camera/rgb/camera_info";

fn params() -> NodeParams {
    let mut p = NodeParams {
        device: "cpu".into(),
        precision: "fp32".into(),
        model_config: "tiny".into(),
        class_id: "person".into(),
        publish_debug_image: true,
        debug_aux_blend: 0.25,
        ..Default::default()
    };
    // The hashed test weights do not track; keep the target "tracking" so answers carry boxes.
    p.tracker.lost_frames = 0;
    p
}

fn stamp(n: i64) -> i64 {
    START_NS + n * PERIOD_NS + [0, 2_000_000, -1_000_000, 500_000][n as usize % 4]
}

/// Ten frames of RGB + thermal with: no thermal frame 4, an RGB frame 6 whose pixel data is cut
/// short (valid CDR, undecodable image), a malformed thermal message after frame 7, an init box
/// for frame 2 stored after frame 3 (frame 2 is answered by then), and a last RGB frame without
/// partner so that the node, which holds its last candidate until a later message, answers
/// frame 9 too.
fn scenario(init_on_topic: bool) -> Vec<Record> {
    let mut r = Vec::new();
    for n in 0..10 {
        let mut rgb = rgb_image(W, H, stamp(n), n);
        if n == 6 {
            rgb.data.truncate(rgb.data.len() / 2);
        }
        r.push(record(RGB, stamp(n), &rgb));
        if n != 4 {
            let t = stamp(n) + 3_000_000;
            r.push(record(AUX, t, &thermal_image(W / 2, H / 2, t, n / 2)));
        }
        if n == 3 && init_on_topic {
            r.push(record(INIT, stamp(n) + 4_000_000, &init_detection(stamp(2), 22.0, 14.0, 20.0, 20.0)));
        }
        if n == 7 {
            let mut bad = record(AUX, stamp(n) + 5_000_000, &thermal_image(W / 2, H / 2, stamp(n), 0));
            bad.3.truncate(40);
            r.push(bad);
        }
    }
    r.push(record(RGB, stamp(10), &rgb_image(W, H, stamp(10), 10)));
    r
}

/// Feeds the bag's messages to the node in storage order, waiting for each to be answered.
fn run_node(bag: &std::path::Path, p: NodeParams) -> (Arc<Capture>, patrack::ros::node::NodeStats) {
    let sink = Arc::new(Capture::default());
    let mut core = NodeCore::new(p, tiny_model(), sink.clone()).unwrap();
    for m in BagReader::open(bag).unwrap().messages(&[]) {
        let m = m.unwrap();
        let input = match m.topic.as_str() {
            RGB => Input::Rgb,
            AUX | DEPTH => Input::Aux,
            INIT => Input::Init,
            INFO => Input::RgbCameraInfo,
            other => panic!("unexpected topic {other}"),
        };
        core.handle(input, &m.data);
        assert!(core.wait_idle(Duration::from_secs(120)), "node did not finish");
    }
    let stats = core.stats();
    core.shutdown();
    (sink, stats)
}

fn compare(init_on_topic: bool) {
    let dir = tmp("replay_node", if init_on_topic { "topic" } else { "param" });
    let bag = write_bag(&dir.join("in"), &scenario(init_on_topic), ChunkCompression::Zstd);
    let init_box = BoxXywh::new(22.0, 14.0, 20.0, 20.0);

    let mut node_params = params();
    if !init_on_topic {
        node_params.initial_bbox = [init_box.x, init_box.y, init_box.w, init_box.h];
    }
    let (node, stats) = run_node(&bag, node_params.clone());

    let init = if init_on_topic { InitSource::Topic(INIT.into()) } else { InitSource::Box(init_box) };
    let mut opts = ReplayOptions::new(RGB, AUX, init);
    opts.params = node_params.clone();
    let mut tracker = TargetSet::from(Tracker::new(tiny_model(), node_params.tracker_config()).unwrap());
    let s = replay::replay(&bag, &dir.join("out"), &mut tracker, &opts, &mut |_| ControlFlow::Continue(())).unwrap();

    let out = read_mcap(&mcap_file(&s.bag));
    let replayed = |topic: &str| out[topic].1.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>();
    let (dets, conf, debug) =
        (replayed("/patrack/detections"), replayed("/patrack/confidence"), replayed("/patrack/debug_image"));
    let node_dets = node.of(Output::Detections);
    println!(
        "init on topic {init_on_topic}: node answered {} pairs, replay {}; node frame errors {}, replay {:?}",
        node_dets.len(),
        dets.len(),
        stats.frame_errors,
        s.frame_errors
    );
    // 10 RGB frames: frame 4 has no thermal partner, frame 6 cannot be decoded.
    assert_eq!(dets.len(), 8);
    assert_eq!(det_stamps(&dets), [0, 1, 2, 3, 5, 7, 8, 9].map(stamp));
    assert!(node_dets == dets, "detections differ between node and replay");
    assert!(node.of(Output::Confidence) == conf, "confidence differs");
    assert!(node.of(Output::DebugImage) == debug, "debug images differ");

    // The answers are what the node's rules say: empty until the box, then one detection of
    // track 1; the init frame itself carries the box (confidence 1) unless it was answered
    // before the box arrived.
    let decoded: Vec<Detection2DArray> = dets.iter().map(|d| Detection2DArray::decode(d).unwrap()).collect();
    let first_box = decoded.iter().position(|d| !d.detections.is_empty()).unwrap();
    let expected_first = if init_on_topic { 3 } else { 0 };
    assert_eq!(first_box, expected_first);
    assert!(decoded[first_box..].iter().all(|d| d.detections.len() == 1 && d.detections[0].id == "1"));
    assert!(decoded[first_box..].iter().all(|d| d.detections[0].results[0].hypothesis.class_id == "person"));
    let c: Vec<f32> = conf.iter().map(|d| Float32::decode(d).unwrap().data).collect();
    assert!(c[..first_box].iter().all(|v| *v == 0.0));
    if !init_on_topic {
        assert_eq!(c[0], 1.0, "the initial frame reports confidence 1");
    }
    let img = Image::decode(&debug[0]).unwrap();
    assert_eq!((img.encoding.as_str(), img.width, img.height), ("rgb8", W, H));

    // The counts agree with the node's.
    assert_eq!(s.pairs, stats.sync.pairs);
    assert_eq!(s.frame_errors.rgb_image + s.frame_errors.aux_image, stats.frame_errors);
    assert_eq!(s.frame_errors.rgb_image, 1);
    assert_eq!(s.aux.malformed, stats.malformed[Input::Aux as usize]);
    assert_eq!(s.aux.malformed, 1);
    assert_eq!(s.answered, stats.processed);
    assert_eq!(s.inits_applied, stats.inits_applied);
    assert_eq!(s.answered_before_init, first_box as u64);
    // Every message is accounted for.
    for c in [&s.rgb, &s.aux] {
        let accounted =
            c.malformed + c.paired + c.unmatched + c.stamp_gap + c.queue_overflow + c.out_of_order + c.stream_ended;
        assert_eq!(accounted, c.read, "{}: {c:?}", c.topic);
    }
    assert_eq!((s.rgb.read, s.aux.read), (11, 10));
    assert_eq!(s.rgb.stream_ended, 1, "the last RGB frame has no partner");
}

#[test]
fn node_and_replay_publish_identical_messages_with_init_topic() {
    compare(true);
}

#[test]
fn node_and_replay_publish_identical_messages_with_initial_bbox() {
    compare(false);
}

/// Ten frames of RGB + 16UC1 depth at half the RGB size (registered by the resize): the bright
/// square of the RGB images stands at 1.5 m in front of a wall at 4 m, with a column of holes;
/// the calibration arrives after frame 2 (frames 0 and 1 have no 3D output), a refused one
/// (K = 0) after frame 5 and a changed one after frame 7; the last RGB frame has no partner.
fn rgbd_scenario() -> Vec<Record> {
    let info = |n: i64, f: f64| camera_info(stamp(n), "camera", W, H, [f, f, 47.5, 35.5]);
    let mut r = Vec::new();
    for n in 0..10 {
        r.push(record(RGB, stamp(n), &rgb_image(W, H, stamp(n), n)));
        let t = stamp(n) + 3_000_000;
        let depth = depth_mm_image(W / 2, H / 2, t, "camera", |x, y| {
            let (x, y) = (i64::from(x), i64::from(y));
            if x == 15 {
                0
            } else if (10 + n..20 + n).contains(&x) && (7..17).contains(&y) {
                1500 + (x as u16 % 3)
            } else {
                4000
            }
        });
        r.push(record(DEPTH, t, &depth));
        match n {
            2 => r.push(record(INFO, t + 1_000_000, &info(n, 90.0))),
            5 => r.push(record(INFO, t + 1_000_000, &patrack::ros::msgs::CameraInfo { k: [0.0; 9], ..info(n, 90.0) })),
            7 => r.push(record(INFO, t + 1_000_000, &info(n, 120.0))),
            _ => {}
        }
    }
    r.push(record(RGB, stamp(10), &rgb_image(W, H, stamp(10), 10)));
    r
}

#[test]
fn node_and_replay_publish_identical_3d_messages_in_rgbd_mode() {
    let dir = tmp("replay_node", "rgbd");
    let bag = write_bag(&dir.join("in"), &rgbd_scenario(), ChunkCompression::Zstd);
    let mut p = params();
    p.modality = Modality::Depth;
    p.publish_debug_image = false;
    p.initial_bbox = [20.0, 14.0, 20.0, 20.0];
    let (node, stats) = run_node(&bag, p.clone());

    let mut opts = ReplayOptions::new(RGB, DEPTH, InitSource::Box(BoxXywh::new(20.0, 14.0, 20.0, 20.0)));
    opts.params = p.clone();
    opts.camera = CameraSource::Topic(INFO.into());
    let mut tracker = TargetSet::from(Tracker::new(tiny_model(), p.tracker_config()).unwrap());
    let s = replay::replay(&bag, &dir.join("out"), &mut tracker, &opts, &mut |_| ControlFlow::Continue(())).unwrap();
    let out = read_mcap(&mcap_file(&s.bag));
    let replayed = |topic: &str| out[topic].1.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>();
    let (points, dets3d, markers) =
        (replayed("/patrack/target_point"), replayed("/patrack/detections_3d"), replayed("/patrack/markers"));
    println!(
        "rgbd: node answered {} pairs ({} in 3D, {} without depth), replay {} ({} in 3D, {} without depth)",
        stats.processed, stats.targets_3d, stats.depth_missing, s.answered, s.targets_3d, s.depth_missing
    );
    assert_eq!(s.answered, 10);
    assert!(node.of(Output::Detections) == replayed("/patrack/detections"), "detections differ");
    assert!(node.of(Output::TargetPoint) == points, "target points differ");
    assert!(node.of(Output::Detections3d) == dets3d, "3D detections differ");
    assert!(node.of(Output::Markers) == markers, "markers differ");
    // Pair n is answered when RGB frame n + 1 arrives, after the CameraInfo of frame n: pairs 0
    // and 1 come before the first calibration, the other 8 have 3D outputs.
    assert_eq!((dets3d.len(), markers.len()), (8, 8));
    assert!(!points.is_empty());
    assert_eq!(s.targets_3d, stats.targets_3d);
    assert_eq!(s.targets_3d, points.len() as u64);
    assert_eq!(s.depth_missing, stats.depth_missing);
    let info = s.camera_info.as_ref().unwrap();
    assert_eq!((info.read, info.invalid, info.pairs_before_first), (3, 1, 2));
    assert_eq!((stats.camera_info_received, stats.camera_info_invalid), (3, 1));
    // Each point is its pair's 2D box centre back-projected with the calibration in force: the
    // first (f = 90 px) until the change after frame 7 (f = 120 px), the refused one ignored.
    let boxes: Vec<Detection2DArray> =
        replayed("/patrack/detections").iter().map(|d| Detection2DArray::decode(d).unwrap()).collect();
    for d in &points {
        let p = PointStamped::decode(d).unwrap();
        let stamp_ns = p.header.stamp_ns();
        let b = &boxes.iter().find(|b| b.header.stamp_ns() == stamp_ns).unwrap().detections[0].bbox;
        let f = if stamp_ns >= stamp(7) { 120.0 } else { 90.0 };
        let (u, v) = (f * p.point.x / p.point.z + 47.5, f * p.point.y / p.point.z + 35.5);
        assert!((u - (b.center.position.x - 0.5)).abs() < 1e-6, "{stamp_ns}: u {u}");
        assert!((v - (b.center.position.y - 0.5)).abs() < 1e-6, "{stamp_ns}: v {v}");
        assert!((1.4..1.6).contains(&p.point.z) || (3.9..4.1).contains(&p.point.z), "{stamp_ns}: z {}", p.point.z);
    }
    let first = Detection3DArray::decode(&dets3d[0]).unwrap();
    assert_eq!(first.header.stamp_ns(), stamp(2));
    assert!(MarkerArray::decode(&markers[0]).unwrap().markers.iter().all(|m| m.ns == "patrack"));
}
