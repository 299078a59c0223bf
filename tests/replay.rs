//! `patrack replay` on the rosbags-written sample bag (tests/data/ros/sample_mcap, from
//! scripts/make_fixtures.py): the output bag is read back with the mcap crate, its CDR decoded
//! with the node's codecs, and its stamps checked against the input; the replay is repeatable;
//! malformed bags and missing topics give clear errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use patrack::bag::replay::{self, InitSource, ReplayError, ReplayOptions};
use patrack::bag::{self, BagError};
use patrack::device::Precision;
use patrack::model::{ModelConfig, PATrack};
use patrack::ros::msgs::{CompressedImage, Detection2DArray, Float32, Image, RosMessage};
use patrack::tracker::{BoxXywh, Tracker, TrackerConfig};

const RGB: &str = "/camera/rgb/image_raw";
const AUX: &str = "/camera/thermal/image_raw";
const GT: &str = "/gt/detections";

fn sample_bag() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ros/sample_mcap")
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("replay_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny_tracker() -> Tracker {
    let mut m = PATrack::new(ModelConfig::tiny(), tch::Device::Cpu, Precision::Fp32).unwrap();
    m.fill_hashed();
    Tracker::new(m, TrackerConfig::default()).unwrap()
}

/// Every message of an MCAP file, read with the mcap crate alone: topic to (schema name,
/// schema encoding, message encoding, [(log time, data)]).
type Channels = BTreeMap<String, (String, String, String, Vec<(u64, Vec<u8>)>)>;

fn read_mcap(path: &Path) -> Channels {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Channels::new();
    for m in mcap::MessageStream::new(&bytes).unwrap() {
        let m = m.unwrap();
        let schema = m.channel.schema.as_ref().unwrap();
        out.entry(m.channel.topic.clone())
            .or_insert_with(|| {
                (schema.name.clone(), schema.encoding.clone(), m.channel.message_encoding.clone(), Vec::new())
            })
            .3
            .push((m.log_time, m.data.into_owned()));
    }
    out
}

#[test]
fn replays_the_sample_bag_into_a_readable_bag() {
    let out = tmp("sample");
    let mut opts = ReplayOptions::new(RGB, AUX, InitSource::Topic(GT.into()));
    opts.debug_image_topic = Some("/patrack/debug_image".into());
    let mut tracker = tiny_tracker();
    let s = replay::replay(&sample_bag(), &out, &mut tracker, &opts).unwrap();
    assert_eq!(s.pairs, 8);
    assert_eq!(s.skipped_before_init, 0);

    // The input, read with the same independent reader: RGB stamps and the first truth box.
    let input = read_mcap(&sample_bag().join("sample_mcap.mcap"));
    let rgb_stamps: Vec<i64> = input[RGB].3.iter().map(|(_, d)| Image::decode(d).unwrap().header.stamp_ns()).collect();
    assert_eq!(rgb_stamps.len(), 8);
    let gt0 = Detection2DArray::decode(&input[GT].3[0].1).unwrap();
    let gt_box = gt0.detections[0].bbox;

    let files = bag::storage_files(&s.bag).unwrap();
    assert_eq!(files.len(), 1, "metadata.yaml names one storage file");
    let output = read_mcap(&files[0]);
    assert_eq!(
        output.keys().collect::<Vec<_>>(),
        ["/patrack/confidence", "/patrack/debug_image", "/patrack/detections"]
    );
    for (topic, (schema, schema_enc, msg_enc, msgs)) in &output {
        assert_eq!((schema_enc.as_str(), msg_enc.as_str()), ("ros2msg", "cdr"), "{topic}");
        assert_eq!(msgs.len(), 8, "{topic}");
        let expected_schema = patrack::ros::msgs::ros2msg_schema(schema).unwrap();
        assert!(!expected_schema.is_empty());
    }
    let (det_type, _, _, dets) = &output["/patrack/detections"];
    assert_eq!(det_type, "vision_msgs/msg/Detection2DArray");
    for (i, (log_time, data)) in dets.iter().enumerate() {
        let d = Detection2DArray::decode(data).unwrap();
        // Outputs copy the input image header and are logged at the image stamp.
        assert_eq!(d.header.stamp_ns(), rgb_stamps[i], "frame {i}");
        assert_eq!(*log_time as i64, rgb_stamps[i], "frame {i}");
        assert_eq!(d.header.frame_id, Image::decode(&input[RGB].3[i].1).unwrap().header.frame_id);
        let row = &s.rows[i];
        assert_eq!(row.stamp_ns, rgb_stamps[i]);
        if let Some(det) = d.detections.first() {
            let diff = (det.bbox.center.position.x - (row.x + row.w / 2.0)).abs();
            println!("frame {i}: bag vs csv centre x diff {diff:e} (tol 1e-9)");
            assert!(diff < 1e-9);
            assert!((det.results[0].hypothesis.score - row.score as f64).abs() < 1e-6);
        }
    }
    // Frame 0 is the initial box from the init topic.
    let d0 = Detection2DArray::decode(&dets[0].1).unwrap();
    let b0 = d0.detections[0].bbox;
    let diff = (b0.center.position.x - gt_box.center.position.x).abs() + (b0.size_x - gt_box.size_x).abs();
    println!("initial box vs truth: diff {diff:e} (tol 1e-9)");
    assert!(diff < 1e-9);
    let conf: Vec<f32> =
        output["/patrack/confidence"].3.iter().map(|(_, d)| Float32::decode(d).unwrap().data).collect();
    assert_eq!(conf.len(), 8);
    assert_eq!(conf[0], 1.0);
    let dbg = Image::decode(&output["/patrack/debug_image"].3[0].1).unwrap();
    assert_eq!((dbg.encoding.as_str(), dbg.width, dbg.height), ("rgb8", 128, 48), "RGB | aux side by side");

    // metadata.yaml lists the topics and counts.
    let meta: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(s.bag.join("metadata.yaml")).unwrap()).unwrap();
    let info = &meta["rosbag2_bagfile_information"];
    assert_eq!(info["message_count"].as_u64(), Some(24));
    assert_eq!(info["storage_identifier"].as_str(), Some("mcap"));
    assert_eq!(info["starting_time"]["nanoseconds_since_epoch"].as_i64(), Some(rgb_stamps[0]));

    // CSV and JSON agree with the rows.
    let csv = std::fs::read_to_string(&s.csv).unwrap();
    assert_eq!(csv.lines().count(), 9);
    let json: Vec<replay::TrackRow> = serde_json::from_str(&std::fs::read_to_string(&s.json).unwrap()).unwrap();
    assert_eq!(json.len(), s.rows.len());
    for (j, r) in json.iter().zip(&s.rows) {
        // serde_json parses floats to within an ulp, not bit-exactly.
        let diff = (j.x - r.x).abs() + (j.y - r.y).abs() + (j.w - r.w).abs() + (j.h - r.h).abs();
        assert!(diff < 1e-9, "frame {}: json vs rows diff {diff:e}", r.frame);
        assert_eq!(
            (j.frame, j.stamp_ns, j.aux_stamp_ns, j.state, j.score),
            (r.frame, r.stamp_ns, r.aux_stamp_ns, r.state, r.score)
        );
    }
}

#[test]
fn replay_is_deterministic() {
    let opts = ReplayOptions::new(RGB, AUX, InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0)));
    let (a, b) = (tmp("det_a"), tmp("det_b"));
    let mut tracker = tiny_tracker();
    let sa = replay::replay(&sample_bag(), &a, &mut tracker, &opts).unwrap();
    let sb = replay::replay(&sample_bag(), &b, &mut tracker, &opts).unwrap();
    assert_eq!(sa.rows, sb.rows);
    assert_eq!(std::fs::read(a.join("tracks.csv")).unwrap(), std::fs::read(b.join("tracks.csv")).unwrap());
    let fa = bag::storage_files(&sa.bag).unwrap();
    let fb = bag::storage_files(&sb.bag).unwrap();
    assert_eq!(std::fs::read(&fa[0]).unwrap(), std::fs::read(&fb[0]).unwrap(), "byte-identical output bags");
}

/// The same recording in sqlite3 storage (tests/data/bags/sample_db3, copied by
/// scripts/make_bag_fixtures.py with PyPI rosbags) gives the same messages and tracks.
#[test]
fn sqlite3_bag_replays_like_the_mcap_bag() {
    let db3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bags/sample_db3");
    let (from_db3, topics) = bag::read_messages(&db3, &[]).unwrap();
    let (from_mcap, _) = bag::read_messages(&sample_bag(), &[]).unwrap();
    assert_eq!(topics.len(), 3);
    assert_eq!(from_db3.len(), 24);
    let key = |m: &bag::BagMessage| (m.log_time_ns, m.topic.clone(), m.type_name.clone(), m.data.clone());
    let mut a: Vec<_> = from_db3.iter().map(key).collect();
    let mut b: Vec<_> = from_mcap.iter().map(key).collect();
    a.sort();
    b.sort();
    assert!(a == b, "same messages in both storages");
    let opts = ReplayOptions::new(RGB, AUX, InitSource::Topic(GT.into()));
    let mut tracker = tiny_tracker();
    let s_db3 = replay::replay(&db3, &tmp("db3"), &mut tracker, &opts).unwrap();
    let s_mcap = replay::replay(&sample_bag(), &tmp("db3_ref"), &mut tracker, &opts).unwrap();
    assert_eq!(s_db3.rows, s_mcap.rows);
}

/// The RGB stream as `sensor_msgs/CompressedImage` (PNG, lossless, as image_transport's
/// `compressed` plugin with `format: png` publishes it) tracks exactly like the raw stream.
#[test]
fn compressed_rgb_topic_replays_like_raw() {
    let dir = tmp("compressed");
    let input = read_mcap(&sample_bag().join("sample_mcap.mcap"));
    let bag_dir = dir.join("png_bag");
    let mut w = bag::BagWriter::create(&bag_dir).unwrap();
    let rgb_png = "/camera/rgb/image_raw/compressed";
    w.add_topic(rgb_png, CompressedImage::TYPE_NAME).unwrap();
    w.add_topic(AUX, Image::TYPE_NAME).unwrap();
    for (t, data) in &input[RGB].3 {
        let im = Image::decode(data).unwrap();
        assert_eq!(im.encoding, "rgb8");
        let mut png = Vec::new();
        image::write_buffer_with_format(
            &mut std::io::Cursor::new(&mut png),
            &im.data,
            im.width,
            im.height,
            image::ExtendedColorType::Rgb8,
            image::ImageFormat::Png,
        )
        .unwrap();
        let msg = CompressedImage { header: im.header.clone(), format: "rgb8; png compressed rgb8".into(), data: png };
        w.write(rgb_png, *t, &msg.encode().unwrap()).unwrap();
    }
    for (t, data) in &input[AUX].3 {
        w.write(AUX, *t, data).unwrap();
    }
    w.finish().unwrap();
    let init = InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0));
    let mut tracker = tiny_tracker();
    let png =
        replay::replay(&bag_dir, &dir.join("out_png"), &mut tracker, &ReplayOptions::new(rgb_png, AUX, init.clone()))
            .unwrap();
    let raw =
        replay::replay(&sample_bag(), &dir.join("out_raw"), &mut tracker, &ReplayOptions::new(RGB, AUX, init)).unwrap();
    assert_eq!(png.rows.len(), 8);
    assert_eq!(png.rows, raw.rows);
}

#[test]
fn missing_topic_names_the_available_ones() {
    let opts = ReplayOptions::new("/camera/nope", AUX, InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0)));
    let err = replay::replay(&sample_bag(), &tmp("missing"), &mut tiny_tracker(), &opts).unwrap_err();
    assert!(matches!(err, ReplayError::Bag(BagError::MissingTopic { .. })), "{err}");
    let text = err.to_string();
    assert!(text.contains("/camera/nope") && text.contains("/camera/rgb/image_raw (sensor_msgs/msg/Image)"), "{text}");
    // A topic of the wrong type for its role.
    let opts = ReplayOptions::new(GT, AUX, InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0)));
    let err = replay::replay(&sample_bag(), &tmp("wrongtype"), &mut tiny_tracker(), &opts).unwrap_err();
    assert!(matches!(err, ReplayError::NotImage { .. }), "{err}");
}

#[test]
fn malformed_bags_are_errors() {
    let dir = tmp("malformed");
    let garbage = dir.join("garbage.mcap");
    std::fs::write(&garbage, b"this is not an mcap file at all").unwrap();
    let err = bag::read_messages(&garbage, &[]).unwrap_err();
    assert!(matches!(err, BagError::Mcap { .. }), "{err}");
    // Truncated in the middle of the data section.
    let full = std::fs::read(sample_bag().join("sample_mcap.mcap")).unwrap();
    let cut = dir.join("cut.mcap");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let err = bag::read_messages(&cut, &[RGB]).unwrap_err();
    assert!(matches!(err, BagError::Mcap { .. }), "{err}");
    // A well-formed bag whose image message is cut short: a decode error naming the topic.
    let input = read_mcap(&sample_bag().join("sample_mcap.mcap"));
    let short_bag = dir.join("short");
    let mut w = bag::BagWriter::create(&short_bag).unwrap();
    w.add_topic(RGB, Image::TYPE_NAME).unwrap();
    w.add_topic(AUX, Image::TYPE_NAME).unwrap();
    let (t_rgb, rgb) = &input[RGB].3[0];
    let (t_aux, aux) = &input[AUX].3[0];
    w.write(RGB, *t_rgb, &rgb[..rgb.len() / 2]).unwrap();
    w.write(AUX, *t_aux, aux).unwrap();
    w.finish().unwrap();
    let opts = ReplayOptions::new(RGB, AUX, InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0)));
    let err = replay::replay(&short_bag, &dir.join("out_short"), &mut tiny_tracker(), &opts).unwrap_err();
    assert!(matches!(err, ReplayError::Decode { .. }) && err.to_string().contains(RGB), "{err}");
    // A .db3 file that is not a rosbag2 database.
    let db3 = dir.join("rec");
    std::fs::create_dir_all(&db3).unwrap();
    std::fs::write(db3.join("rec_0.db3"), b"SQLite format 3\0 but nothing else").unwrap();
    let err = bag::read_messages(&db3, &[]).unwrap_err();
    assert!(matches!(err, BagError::Sqlite { .. }), "{err}");
    let empty = dir.join("empty_bag");
    std::fs::create_dir_all(&empty).unwrap();
    let err = bag::read_messages(&empty, &[]).unwrap_err();
    assert!(matches!(err, BagError::NoStorage { .. }), "{err}");
    let err = bag::read_messages(&dir.join("nothing_here"), &[]).unwrap_err();
    assert!(matches!(err, BagError::Io { .. }), "{err}");
}

#[test]
fn cli_replays_with_a_box_and_refuses_to_overwrite() {
    let out = tmp("cli");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_patrack"))
            .arg("replay")
            .arg(sample_bag())
            .args([
                "--rgb-topic",
                RGB,
                "--aux-topic",
                AUX,
                "--init",
                "8,14,12,12",
                "--config",
                "tiny",
                "--max-interval-s",
                "0.01",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run();
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("replayed 8 frame pairs"), "{text}");
    assert!(out.join("bag/metadata.yaml").is_file() && out.join("tracks.csv").is_file());
    let o = run();
    assert!(!o.status.success(), "a second replay into the same folder must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exists"), "{err}");
    // The node's own parameter files, and the box from the bag's detection topic.
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_patrack"))
        .arg("replay")
        .arg(sample_bag())
        .args(["--rgb-topic", RGB, "--aux-topic", AUX, "--init-topic", GT, "--config", "tiny", "--params"])
        .arg(config.join("patrack.yaml"))
        .arg("--params")
        .arg(config.join("rgbt.yaml"))
        .arg("--out")
        .arg(out.join("with_params"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && text.contains("replayed 8 frame pairs"), "{text}");
    // No initial box anywhere is a clear error.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_patrack"))
        .arg("replay")
        .arg(sample_bag())
        .args(["--rgb-topic", RGB, "--aux-topic", AUX, "--config", "tiny", "--out"])
        .arg(out.join("no_init"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no initial box"), "{err}");
}
