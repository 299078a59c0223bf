//! Two targets through the node and through replay: a synthetic RGB-T scene of two of the
//! generator's scenes side by side (a "boat" on the left, a "person" on the right, each moving on
//! its own), the small demo RGB-T model, `max_targets` 2.
//!
//! * The node gets two `~/init` messages with ids, stamped with frame 0 and sent before it, and
//!   the replay the same two boxes as `--init boat:... --init person:...`: both publish
//!   byte-identical `~/detections`, `~/confidence` and `~/debug_image` on every pair, with one
//!   detection per id on the right target (IoU with the generator's boxes over 0.5).
//! * `~/reset_target` forgets one id: the next answers carry the other one only; a reset of an
//!   unknown id changes nothing. With one target (`max_targets` 1) the init's id is ignored and
//!   the track number is the id, as before.

mod bag_support;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bag_support::*;
use patrack::bag::replay::{self, InitSource, ReplayOptions};
use patrack::bag::ChunkCompression;
use patrack::device::Precision;
use patrack::model::PATrack;
use patrack::ros::msgs::{Classification, Detection2D, Detection2DArray, Float32, Image, RosMessage, StringMsg, Time};
use patrack::ros::node::{Input, NodeCore};
use patrack::ros::output::Output;
use patrack::ros::params::NodeParams;
use patrack::ros::targets::{InitBox, TargetSet};
use patrack::sensor::{DecodedImage, Modality};
use patrack::tracker::BoxXywh;
use patrack::train::synth::{scene_for, Scene, HEIGHT, WIDTH};

const FRAMES: usize = 10;
const IDS: [&str; 2] = ["boat", "person"];

fn demo_model() -> PATrack {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/patrack_small_rgbt.safetensors");
    patrack::model::load_file(&path, None, tch::Device::Cpu, Precision::Fp32).unwrap()
}

fn params(max_targets: u32) -> NodeParams {
    NodeParams {
        device: "cpu".into(),
        precision: "fp32".into(),
        model_config: "small".into(),
        class_id: "thing".into(),
        publish_debug_image: true,
        max_targets,
        ..Default::default()
    }
}

fn stamp(t: usize) -> i64 {
    START_NS + t as i64 * PERIOD_NS
}

fn scenes() -> [Scene; 2] {
    // The generator's RGB-normal scenes (even indices), as in tests/multi_target.rs.
    [scene_for(77, 0, Modality::Thermal), scene_for(77, 2, Modality::Thermal)]
}

/// Frame `t`: the two scenes side by side as rgb8 and mono8 thermal messages, and the two
/// targets' boxes in the composite.
fn frame(scenes: &[Scene; 2], t: usize) -> (Image, Image, [BoxXywh; 2]) {
    let w = 2 * WIDTH;
    let mut rgb = vec![0u8; w * HEIGHT * 3];
    let mut thermal = vec![0u8; w * HEIGHT];
    let mut boxes = [BoxXywh::new(0.0, 0.0, 0.0, 0.0); 2];
    for (k, scene) in scenes.iter().enumerate() {
        let f = scene.render(t);
        let DecodedImage::Mono8(aux) = f.aux else { panic!("the thermal scene renders 8-bit grey") };
        for y in 0..HEIGHT {
            rgb[(y * w + k * WIDTH) * 3..][..WIDTH * 3].copy_from_slice(&f.rgb.data[y * WIDTH * 3..][..WIDTH * 3]);
            thermal[y * w + k * WIDTH..][..WIDTH].copy_from_slice(&aux.data[y * WIDTH..][..WIDTH]);
        }
        boxes[k] = BoxXywh::new(f.bbox.x + (k * WIDTH) as f64, f.bbox.y, f.bbox.w, f.bbox.h);
    }
    let image = |encoding: &str, channels: usize, data: Vec<u8>, frame_id: &str, at: i64| Image {
        header: header(at, frame_id),
        height: HEIGHT as u32,
        width: w as u32,
        encoding: encoding.into(),
        is_bigendian: 0,
        step: (w * channels) as u32,
        data,
    };
    (image("rgb8", 3, rgb, "camera", stamp(t)), image("mono8", 1, thermal, "thermal", stamp(t) + 2_000_000), boxes)
}

fn init_message(id: &str, bbox: BoxXywh) -> Detection2D {
    let mut d = init_detection(stamp(0), bbox.x, bbox.y, bbox.w, bbox.h);
    d.id = id.into();
    d
}

/// Runs the node over the frames (inits before frame 0, stamped with it), waiting for each
/// answer; returns the node for more.
fn node_over(p: NodeParams, records: &[Record], inits: &[Detection2D]) -> (NodeCore, Arc<Capture>) {
    let sink = Arc::new(Capture::default());
    let core = NodeCore::new(p, demo_model(), sink.clone()).unwrap();
    for d in inits {
        core.handle(Input::Init, &d.encode().unwrap());
    }
    for (topic, _, _, data) in records {
        core.handle(if topic == RGB { Input::Rgb } else { Input::Aux }, data);
        assert!(core.wait_idle(Duration::from_secs(120)), "node did not finish");
    }
    (core, sink)
}

fn boxes_of(d: &Detection2DArray) -> Vec<(String, BoxXywh)> {
    d.detections.iter().map(|d| (d.id.clone(), d.bbox.to_xywh())).collect()
}

#[test]
fn node_and_replay_track_two_targets_by_id_with_identical_messages() {
    let dir = tmp("multi_target_node", "two");
    let scenes = scenes();
    let mut records = Vec::new();
    let mut truth = Vec::new();
    for t in 0..FRAMES {
        let (rgb, thermal, boxes) = frame(&scenes, t);
        records.push(record(RGB, stamp(t), &rgb));
        records.push(record(AUX, stamp(t) + 2_000_000, &thermal));
        truth.push(boxes);
    }
    // One more RGB frame: the node holds its last candidate until a later message.
    let (rgb, _, _) = frame(&scenes, FRAMES);
    records.push(record(RGB, stamp(FRAMES), &rgb));
    let bag = write_bag(&dir.join("in"), &records, ChunkCompression::None);

    let inits: Vec<Detection2D> = IDS.iter().zip(truth[0]).map(|(id, b)| init_message(id, b)).collect();
    let (mut core, node) = node_over(params(2), &records, &inits);

    let mut opts = ReplayOptions::new(
        RGB,
        AUX,
        InitSource::Boxes(
            IDS.iter().zip(truth[0]).map(|(id, bbox)| InitBox { id: Some(id.to_string()), bbox }).collect(),
        ),
    );
    opts.params = params(2);
    let mut targets = TargetSet::new(demo_model(), opts.params.tracker_config(), 2).unwrap();
    let s = replay::replay(&bag, &dir.join("out"), &mut targets, &opts, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!((s.pairs, s.answered, s.inits_applied, s.tracked), (FRAMES as u64, FRAMES as u64, 2, FRAMES as u64));

    let out = read_mcap(&mcap_file(&s.bag));
    let replayed = |topic: &str| out[topic].1.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>();
    let dets = replayed("/patrack/detections");
    assert_eq!(dets.len(), FRAMES);
    assert!(node.of(Output::Detections) == dets, "detections differ between node and replay");
    assert!(node.of(Output::Confidence) == replayed("/patrack/confidence"), "confidence differs");
    assert!(node.of(Output::DebugImage) == replayed("/patrack/debug_image"), "debug images differ");

    for (t, d) in dets.iter().enumerate() {
        let d = Detection2DArray::decode(d).unwrap();
        let found = boxes_of(&d);
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, IDS, "frame {t}");
        for ((id, b), gt) in found.iter().zip(truth[t]) {
            let iou = b.iou(&gt);
            println!("frame {t}: {id} iou {iou:.3}");
            assert!(iou > 0.5, "frame {t}: {id} iou {iou}");
        }
    }
    // ~/confidence is the lower score; ~/confidence_stamped has one score per target.
    let conf: Vec<f32> = node.of(Output::Confidence).iter().map(|c| Float32::decode(c).unwrap().data).collect();
    let stamped = node.of(Output::ConfidenceStamped);
    for (c, st) in conf.iter().zip(&stamped) {
        let scores: Vec<f64> = Classification::decode(st).unwrap().results.iter().map(|h| h.score).collect();
        assert_eq!(scores.len(), 2);
        assert_eq!(f64::from(*c), scores[0].min(scores[1]));
    }
    let csv = std::fs::read_to_string(&s.csv).unwrap();
    let ids: Vec<&str> = csv.lines().skip(1).map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(ids.len(), 2 * FRAMES);
    assert!(ids.chunks(2).all(|c| c == IDS), "{ids:?}");

    // Reset one id: the next answer carries the other one only; an unknown id changes nothing.
    let reset = |id: &str| StringMsg { data: id.into() }.encode().unwrap();
    core.handle(Input::ResetTarget, &reset("nobody"));
    core.handle(Input::ResetTarget, &reset("boat"));
    let (rgb, thermal, _) = frame(&scenes, FRAMES + 1);
    core.handle(Input::Aux, &frame(&scenes, FRAMES).1.encode().unwrap());
    core.handle(Input::Rgb, &rgb.encode().unwrap());
    core.handle(Input::Aux, &thermal.encode().unwrap());
    core.handle(Input::Rgb, &frame(&scenes, FRAMES + 2).0.encode().unwrap());
    assert!(core.wait_idle(Duration::from_secs(120)));
    let last = Detection2DArray::decode(node.of(Output::Detections).last().unwrap()).unwrap();
    assert_eq!(boxes_of(&last).iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["person"]);
    let stats = core.stats();
    assert_eq!(stats.resets, 1, "only the known id was reset");
    assert_eq!(stats.targets.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>(), ["person"]);
    let diag = core.diagnostics(Time { sec: 1, nanosec: 0 }, &[]);
    let values = &diag.status[0].values;
    let targets = values.iter().find(|kv| kv.key == "targets").expect("a targets value");
    assert!(targets.value.starts_with("person tracking"), "{}", targets.value);
    core.shutdown();
}

#[test]
fn a_third_target_beyond_max_targets_is_refused_and_one_target_keeps_track_numbers() {
    let scenes = scenes();
    let (rgb, thermal, boxes) = frame(&scenes, 0);
    let records = vec![
        record(RGB, stamp(0), &rgb),
        record(AUX, stamp(0) + 2_000_000, &thermal),
        record(RGB, stamp(1), &frame(&scenes, 1).0),
    ];
    // Two slots, three ids: the third is refused and counted, the two others tracked.
    let inits: Vec<Detection2D> =
        ["a", "b", "c"].iter().zip([boxes[0], boxes[1], boxes[0]]).map(|(id, b)| init_message(id, b)).collect();
    let (mut core, node) = node_over(params(2), &records, &inits);
    let d = Detection2DArray::decode(&node.of(Output::Detections)[0]).unwrap();
    assert_eq!(boxes_of(&d).iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let stats = core.stats();
    assert_eq!((stats.inits_applied, stats.inits_rejected), (2, 1));
    core.shutdown();

    // One target: the last init wins, its id is ignored, the detection's id is the track number.
    let (mut core, node) = node_over(params(1), &records, &inits[..2]);
    let d = Detection2DArray::decode(&node.of(Output::Detections)[0]).unwrap();
    let found = boxes_of(&d);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "1");
    assert!(found[0].1.iou(&boxes[1]) > 0.9, "the later init (b) applies");
    // ~/reset_target names the one target by its track number.
    core.handle(Input::ResetTarget, &StringMsg { data: "1".into() }.encode().unwrap());
    core.handle(Input::Aux, &frame(&scenes, 1).1.encode().unwrap());
    core.handle(Input::Rgb, &frame(&scenes, 2).0.encode().unwrap());
    assert!(core.wait_idle(Duration::from_secs(120)));
    let last = Detection2DArray::decode(node.of(Output::Detections).last().unwrap()).unwrap();
    assert!(last.detections.is_empty(), "target 1 was reset");
    assert_eq!(core.stats().resets, 1);
    core.shutdown();
}
