//! `patrack bag`: benchmark sequences in all five layouts (synthetic scenes from `patrack synth`,
//! rearranged into the RGBT234 and GTOT layouts) become rosbag2 bags; replaying a bag with its
//! ground-truth topic as the initial box and scoring the replay gives exactly the raw results
//! and scores of `patrack eval` on the folder (same tracker, same frames); PyPI `rosbags` reads
//! the bags back with the pixels, encodings, stamps and boxes of the files; and the CLI does the
//! whole round trip on the bundled sample.

mod bag_support;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use bag_support::tmp;
use patrack::bag::convert::{self, ConvertOptions};
use patrack::bag::replay::{self, InitSource, ReplayOptions};
use patrack::dataset;
use patrack::device::Precision;
use patrack::eval::layout::{self, BenchSequence, DatasetKind, FrameResult};
use patrack::eval::{report, runner};
use patrack::ros::params::NodeParams;
use patrack::ros::targets::TargetSet;
use patrack::sensor::{DecodedImage, Modality};
use patrack::tracker::{BoxXywh, Tracker, TrackerConfig};

const FRAMES: usize = 10;
const SEQUENCES: usize = 1;

fn demo_model(modality: Modality) -> patrack::model::PATrack {
    let name = match modality {
        Modality::Thermal => "patrack_small_rgbt.safetensors",
        Modality::Depth => "patrack_small_rgbd.safetensors",
        Modality::Event => "patrack_small_rgbe.safetensors",
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name);
    patrack::model::load_file(&path, None, tch::Device::Cpu, Precision::Fp32).unwrap()
}

/// Rewrites a LasHeR-layout synthetic set in the RGBT234 (visible.txt / infrared.txt, the
/// infrared box 1 px to the right) or GTOT (v/, i/ with grey infrared, l t r b boxes) layout.
fn relayout(lasher_root: &Path, kind: DatasetKind, root: &Path) {
    for seq in layout::list_sequences(DatasetKind::Lasher, lasher_root).unwrap() {
        let dir = root.join(&seq.name);
        let (rgb_dir, aux_dir) = kind.image_dirs();
        std::fs::create_dir_all(dir.join(rgb_dir)).unwrap();
        std::fs::create_dir_all(dir.join(aux_dir)).unwrap();
        for (src, dst) in [(&seq.rgb, rgb_dir), (&seq.aux, aux_dir)] {
            for f in src {
                std::fs::copy(f, dir.join(dst).join(f.file_name().unwrap())).unwrap();
            }
        }
        let lines = |shift: f32, ltrb: bool| -> String {
            seq.gt
                .iter()
                .map(|g| {
                    let x = g[0] + shift;
                    if ltrb {
                        format!("{} {} {} {}\n", x, g[1], x + g[2], g[1] + g[3])
                    } else {
                        format!("{},{},{},{}\n", x, g[1], g[2], g[3])
                    }
                })
                .collect()
        };
        match kind {
            DatasetKind::Rgbt234 => {
                std::fs::write(dir.join("visible.txt"), lines(0.0, false)).unwrap();
                std::fs::write(dir.join("infrared.txt"), lines(1.0, false)).unwrap();
            }
            DatasetKind::Gtot => {
                std::fs::write(dir.join("groundTruth_v.txt"), lines(0.0, true)).unwrap();
                std::fs::write(dir.join("groundTruth_i.txt"), lines(1.0, true)).unwrap();
            }
            _ => unreachable!(),
        }
    }
}

/// A small synthetic benchmark of `kind` under `dir`.
fn benchmark(kind: DatasetKind, dir: &Path) -> PathBuf {
    let root = dir.join(format!("{kind:?}"));
    match kind {
        DatasetKind::Rgbt234 | DatasetKind::Gtot => {
            let lasher = dir.join("lasher_src");
            if !lasher.is_dir() {
                patrack::train::synth::write_set(&lasher, Modality::Thermal, 7, SEQUENCES, FRAMES, |_| {}).unwrap();
            }
            relayout(&lasher, kind, &root);
        }
        _ => {
            patrack::train::synth::write_set(&root, kind.modality(), 7, SEQUENCES, FRAMES, |_| {}).unwrap();
            if kind == DatasetKind::DepthTrack {
                // An absent target in the middle of the first sequence (a `nan` row).
                let seq = layout::list_sequences(kind, &root).unwrap().remove(0);
                let gt = seq.dir.join("groundtruth.txt");
                let mut lines: Vec<String> = std::fs::read_to_string(&gt).unwrap().lines().map(String::from).collect();
                lines[5] = "nan,nan,nan,nan".into();
                std::fs::write(&gt, lines.join("\n") + "\n").unwrap();
            }
        }
    }
    root
}

/// Replays `bag` with the node's defaults for `kind` and the ground-truth topic, returning the
/// track in the benchmark's raw-result form.
fn replay_as_result(bag: &Path, kind: DatasetKind, out: &Path, tracker: &mut TargetSet) -> Vec<FrameResult> {
    let opts_c = ConvertOptions::new(kind);
    let mut opts = ReplayOptions::new(&opts_c.rgb_topic, &opts_c.aux_topic, InitSource::Topic(opts_c.gt_topic.clone()));
    opts.params = NodeParams { modality: kind.modality(), ..NodeParams::default() };
    let mut frames = Vec::new();
    let s = replay::replay(bag, out, tracker, &opts, &mut |p| {
        for a in p.answered {
            let r = a.rows.first().expect("every answer after the first-frame init has a box");
            let score = (!frames.is_empty()).then_some(r.score);
            frames.push(FrameResult { bbox: BoxXywh::new(r.x, r.y, r.w, r.h), score, time_s: a.inference_ms / 1e3 });
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!((s.pairs, s.answered, s.answered_before_init), (FRAMES as u64, FRAMES as u64, 0));
    frames
}

#[test]
fn converted_sequences_replay_to_the_scores_of_eval() {
    let dir = tmp("bag_convert", "scores");
    for kind in
        [DatasetKind::Lasher, DatasetKind::Rgbt234, DatasetKind::Gtot, DatasetKind::DepthTrack, DatasetKind::VisEvent]
    {
        let root = benchmark(kind, &dir);
        let seqs = layout::list_sequences(kind, &root).unwrap();
        assert_eq!(seqs.len(), SEQUENCES);
        let mut tracker = Tracker::new(demo_model(kind.modality()), TrackerConfig::default()).unwrap();
        let eval_dir = dir.join(format!("{kind:?}_eval"));
        runner::run_benchmark(&mut tracker, kind, &seqs, &eval_dir).unwrap();
        let mut tracker = TargetSet::from(tracker);

        let bag_dir = dir.join(format!("{kind:?}_bag"));
        for seq in &seqs {
            let bag = bag_dir.join(&seq.name);
            let s = convert::sequence_to_bag(seq, &bag, &ConvertOptions::new(kind), &mut |_, _| {}).unwrap();
            assert_eq!(s.frames, FRAMES);
            let frames = replay_as_result(&bag, kind, &dir.join(format!("{kind:?}_{}_replay", seq.name)), &mut tracker);
            layout::write_result(kind, &bag_dir.join("results"), &seq.name, &frames).unwrap();
            // The raw box files are the same text.
            let a = std::fs::read_to_string(layout::result_path(kind, &eval_dir, &seq.name)).unwrap();
            let b = std::fs::read_to_string(layout::result_path(kind, &bag_dir.join("results"), &seq.name)).unwrap();
            assert_eq!(a, b, "{kind:?} {}: raw results differ", seq.name);
        }
        let from_eval = report::score_tracker(kind, &seqs, &eval_dir, "", Default::default()).unwrap();
        let from_bag = report::score_tracker(kind, &seqs, &bag_dir.join("results"), "", Default::default()).unwrap();
        // Compared as their JSON (shortest round-trip floats, so exact), where NaN entries of
        // the long-term F curve (no prediction above a threshold) compare equal.
        let (a, b) = (serde_json::to_string(&from_eval).unwrap(), serde_json::to_string(&from_bag).unwrap());
        println!("{kind:?}: eval {a}");
        assert_eq!(a, b, "{kind:?}: scores differ");
    }
}

fn python() -> PathBuf {
    match std::env::var_os("PATRACK_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// What `tests/data/bags/read_with_rosbags.py` prints for each message.
#[derive(serde::Deserialize, Debug)]
struct Read {
    topic: String,
    msgtype: String,
    log_time_ns: i64,
    stamp_ns: i64,
    frame_id: String,
    encoding: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    step: Option<u32>,
    is_bigendian: Option<u8>,
    sha256: Option<String>,
    boxes: Option<Vec<[f64; 4]>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    // sha256 via the Python side is independent; here the expected digest comes from `sha256sum`.
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// The raw pixel bytes of an image file as the bag should hold them (little-endian 16-bit).
fn file_pixels(path: &Path) -> (String, usize, usize, Vec<u8>) {
    match dataset::load_decoded(path).unwrap() {
        DecodedImage::Rgb8(im) => ("rgb8".into(), im.width, im.height, im.data),
        DecodedImage::Mono8(im) => ("mono8".into(), im.width, im.height, im.data),
        DecodedImage::Mono16(im) => {
            ("16UC1".into(), im.width, im.height, im.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
        DecodedImage::Float32(_) => unreachable!(),
    }
}

#[test]
fn converted_bags_read_back_with_rosbags() {
    let python = python();
    assert!(python.exists(), "{} not found: create .venv from scripts/requirements-test.txt", python.display());
    let dir = tmp("bag_convert", "rosbags");
    for kind in [DatasetKind::DepthTrack, DatasetKind::Gtot] {
        let root = benchmark(kind, &dir);
        let seq: BenchSequence = layout::list_sequences(kind, &root).unwrap().remove(0);
        let opts = ConvertOptions { rate_hz: 25.0, ..ConvertOptions::new(kind) };
        let bag = dir.join(format!("{kind:?}_bag"));
        let s = convert::sequence_to_bag(&seq, &bag, &opts, &mut |_, _| {}).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bags/read_with_rosbags.py");
        let o = std::process::Command::new(&python).arg(&script).arg(&s.bag).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let read: Vec<Read> = serde_json::from_slice(&o.stdout).unwrap();
        let mut by_topic: BTreeMap<&str, Vec<&Read>> = BTreeMap::new();
        for r in &read {
            by_topic.entry(r.topic.as_str()).or_default().push(r);
        }
        let mut expected_topics = vec![opts.rgb_topic.as_str(), opts.aux_topic.as_str(), opts.gt_topic.as_str()];
        if kind == DatasetKind::Gtot {
            expected_topics.push(opts.gt_aux_topic.as_str());
        }
        expected_topics.sort();
        assert_eq!(by_topic.keys().copied().collect::<Vec<_>>(), expected_topics);
        for (i, stamp) in (0..FRAMES).map(|i| (i, opts.stamp_ns(i))) {
            // 25 Hz from the start time: 40 ms apart.
            assert_eq!(stamp, convert::DEFAULT_START_NS + 40_000_000 * i as i64);
            for (topic, file) in [(&opts.rgb_topic, &seq.rgb[i]), (&opts.aux_topic, &seq.aux[i])] {
                let r = by_topic[topic.as_str()][i];
                let (mut encoding, w, h, pixels) = file_pixels(file);
                if kind != DatasetKind::DepthTrack && encoding == "16UC1" {
                    encoding = "mono16".into();
                }
                let bpp = pixels.len() / (w * h);
                assert_eq!(r.msgtype, "sensor_msgs/msg/Image");
                assert_eq!((r.stamp_ns, r.log_time_ns), (stamp, stamp), "{topic} frame {i}");
                assert_eq!(r.encoding.as_deref(), Some(encoding.as_str()), "{topic} frame {i}");
                assert_eq!(
                    (r.width, r.height, r.step, r.is_bigendian),
                    (Some(w as u32), Some(h as u32), Some((w * bpp) as u32), Some(0))
                );
                assert_eq!(r.sha256.as_deref(), Some(sha256_hex(&pixels).as_str()), "{topic} frame {i}: pixels");
            }
            let gt = by_topic[opts.gt_topic.as_str()][i];
            assert_eq!(
                (gt.msgtype.as_str(), gt.stamp_ns, gt.frame_id.as_str()),
                ("vision_msgs/msg/Detection2DArray", stamp, "rgb_camera")
            );
            let g = seq.gt[i].map(f64::from);
            let expected: Vec<[f64; 4]> = if g.iter().all(|v| v.is_finite()) { vec![g] } else { vec![] };
            let got = gt.boxes.clone().unwrap();
            assert_eq!(got.len(), expected.len(), "frame {i}");
            for (a, b) in got.iter().zip(&expected) {
                let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum();
                assert!(diff < 1e-9, "frame {i}: {a:?} vs {b:?}");
            }
            if kind == DatasetKind::Gtot {
                let ga = by_topic[opts.gt_aux_topic.as_str()][i].boxes.clone().unwrap();
                let g = seq.gt_aux.as_ref().unwrap()[i].map(f64::from);
                assert!((ga[0][0] - g[0]).abs() < 1e-9 && (ga[0][2] - g[2]).abs() < 1e-9);
            }
        }
        assert_eq!(s.absent, usize::from(kind == DatasetKind::DepthTrack));
    }
}

fn patrack(args: &[&str]) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_patrack")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "patrack {args:?}:\n{text}");
    text
}

#[test]
fn cli_round_trip_on_the_bundled_sample_scores_like_eval() {
    let dir = tmp("bag_convert", "cli");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let bag = dir.join("sample_rgbt");
    let text = patrack(&["bag", &s(&data.join("sample_rgbt")), "--dataset", "lasher", "--out", &s(&bag)]);
    assert!(text.contains("sample_rgbt: 8 frames at 30 Hz"), "{text}");
    let results = dir.join("replayed").join("patrack");
    let text = patrack(&[
        "replay",
        &s(&bag),
        "--rgb-topic",
        "/camera/rgb/image_raw",
        "--aux-topic",
        "/camera/thermal/image_raw",
        "--init-topic",
        "/gt/detections",
        "--config",
        "tiny",
        "--out",
        &s(&dir.join("replay")),
        "--bench-results",
        &s(&results),
        "--dataset",
        "lasher",
    ]);
    assert!(text.contains("replayed 8 frame pairs") && text.contains("sample_rgbt.txt (8 frames)"), "{text}");
    patrack(&["eval", "--dataset", "lasher", "--root", &s(&data), "--out", &s(&dir.join("eval")), "--config", "tiny"]);
    patrack(&[
        "eval",
        "--dataset",
        "lasher",
        "--root",
        &s(&data),
        "--out",
        &s(&dir.join("scored")),
        "--results",
        &s(&results),
    ]);
    let scores =
        |p: PathBuf| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (a, b) = (scores(dir.join("eval/scores.json")), scores(dir.join("scored/scores.json")));
    println!("eval: {a}\nreplay: {b}");
    assert_eq!(a, b);
}
