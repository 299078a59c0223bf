//! `patrack replay` on the rosbags-written sample bag (tests/data/ros/sample_mcap, from
//! scripts/make_fixtures.py) and on bags written here: the output bag is read back with the mcap
//! crate, its CDR decoded with the node's codecs and its stamps checked against the input; the
//! replay is repeatable; the summary accounts for every message; malformed bags and missing
//! topics give clear errors; a replay that stops half-way leaves readable outputs.

mod bag_support;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use bag_support::*;
use patrack::bag::replay::{self, InitSource, ReplayError, ReplayOptions, ReplaySummary, TrackRow};
use patrack::bag::{self, BagError, BagReader, ChunkCompression};
use patrack::ros::msgs::{CompressedImage, Detection2DArray, Float32, Image, RosMessage};
use patrack::tracker::BoxXywh;

const GT: &str = "/gt/detections";

fn sample_bag() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ros/sample_mcap")
}

fn go(bag: &Path, out: &Path, opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    replay::replay(bag, out, &mut tiny_tracker().into(), opts, &mut |_| ControlFlow::Continue(()))
}

fn read_rows(json: &Path) -> Vec<TrackRow> {
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn replays_the_sample_bag_into_a_readable_bag() {
    let out = tmp("replay", "sample");
    let mut opts = ReplayOptions::new(RGB, AUX, InitSource::Topic(GT.into()));
    opts.debug_images = true;
    let s = go(&sample_bag(), &out, &opts).unwrap();
    assert_eq!((s.pairs, s.answered, s.answered_before_init, s.tracked), (8, 8, 0, 8));

    // The input, read with the same independent reader: RGB stamps and the first truth box.
    let input = read_mcap(&sample_bag().join("sample_mcap.mcap"));
    let rgb_stamps: Vec<i64> = input[RGB].1.iter().map(|(_, d)| Image::decode(d).unwrap().header.stamp_ns()).collect();
    assert_eq!(rgb_stamps.len(), 8);
    let gt0 = Detection2DArray::decode(&input[GT].1[0].1).unwrap();
    let gt_box = gt0.detections[0].bbox;

    let files = bag::storage_files(&s.bag).unwrap();
    assert_eq!(files.len(), 1, "metadata.yaml names one storage file");
    let output = read_mcap(&files[0]);
    assert_eq!(
        output.keys().collect::<Vec<_>>(),
        ["/patrack/confidence", "/patrack/debug_image", "/patrack/detections"]
    );
    for (topic, (schema, msgs)) in &output {
        assert_eq!(msgs.len(), 8, "{topic}");
        assert!(!patrack::ros::msgs::ros2msg_schema(schema).unwrap().is_empty());
    }
    let (det_type, dets) = &output["/patrack/detections"];
    assert_eq!(det_type, "vision_msgs/msg/Detection2DArray");
    let rows = read_rows(&s.json);
    assert_eq!(rows.len(), 8);
    for (i, (log_time, data)) in dets.iter().enumerate() {
        let d = Detection2DArray::decode(data).unwrap();
        // Outputs copy the input image header and are logged at the image stamp.
        assert_eq!(d.header.stamp_ns(), rgb_stamps[i], "frame {i}");
        assert_eq!(*log_time as i64, rgb_stamps[i], "frame {i}");
        assert_eq!(d.header.frame_id, Image::decode(&input[RGB].1[i].1).unwrap().header.frame_id);
        let row = &rows[i];
        assert_eq!((row.frame, row.stamp_ns), (i, rgb_stamps[i]));
        if let Some(det) = d.detections.first() {
            let diff = (det.bbox.center.position.x - (row.x + row.w / 2.0)).abs();
            println!("frame {i}: bag vs json centre x diff {diff:e} (tol 1e-9)");
            assert!(diff < 1e-9);
            assert!((det.results[0].hypothesis.score - row.score as f64).abs() < 1e-6);
            assert_eq!(det.id, "1", "the node's track id");
        }
    }
    // Frame 0 is the initial box from the init topic.
    let d0 = Detection2DArray::decode(&dets[0].1).unwrap();
    let b0 = d0.detections[0].bbox;
    let diff = (b0.center.position.x - gt_box.center.position.x).abs() + (b0.size_x - gt_box.size_x).abs();
    println!("initial box vs truth: diff {diff:e} (tol 1e-9)");
    assert!(diff < 1e-9);
    let conf: Vec<f32> =
        output["/patrack/confidence"].1.iter().map(|(_, d)| Float32::decode(d).unwrap().data).collect();
    assert_eq!(conf[0], 1.0);
    let dbg = Image::decode(&output["/patrack/debug_image"].1[0].1).unwrap();
    assert_eq!((dbg.encoding.as_str(), dbg.width, dbg.height), ("rgb8", 64, 48), "the RGB image with the box drawn");

    // metadata.yaml lists the topics and counts.
    let meta: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(s.bag.join("metadata.yaml")).unwrap()).unwrap();
    let info = &meta["rosbag2_bagfile_information"];
    assert_eq!(info["message_count"].as_u64(), Some(24));
    assert_eq!(info["storage_identifier"].as_str(), Some("mcap"));
    assert_eq!(info["starting_time"]["nanoseconds_since_epoch"].as_i64(), Some(rgb_stamps[0]));

    // The CSV agrees with the JSON rows; summary.json is the returned summary.
    let csv = std::fs::read_to_string(&s.csv).unwrap();
    assert_eq!(csv.lines().count(), 9);
    for (line, r) in csv.lines().skip(1).zip(&rows) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[0].parse::<usize>().unwrap(), r.frame);
        assert!((f[3].parse::<f64>().unwrap() - r.x).abs() <= 5e-4, "{line}");
        assert_eq!(f[8], r.state.to_string());
    }
    let from_file: ReplaySummary = serde_json::from_str(&std::fs::read_to_string(&s.summary).unwrap()).unwrap();
    assert_eq!(from_file, s);
    assert_eq!((s.rgb.read, s.rgb.paired, s.aux.read, s.aux.paired), (8, 8, 8, 8));
    let init = s.init.as_ref().unwrap();
    assert_eq!((init.read, init.ignored, init.used_stamp_ns), (8, 7, Some(rgb_stamps[0])));
}

#[test]
fn replay_is_deterministic() {
    let opts = ReplayOptions::new(RGB, AUX, InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0)));
    let (a, b) = (tmp("replay", "det_a"), tmp("replay", "det_b"));
    go(&sample_bag(), &a, &opts).unwrap();
    go(&sample_bag(), &b, &opts).unwrap();
    for f in ["tracks.csv", "tracks.json", "bag/bag_0.mcap", "bag/metadata.yaml"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f} byte-identical");
    }
}

fn collect(bag: &Path, topics: &[&str]) -> Vec<bag::BagMessage> {
    BagReader::open(bag).unwrap().messages(topics).collect::<Result<Vec<_>, _>>().unwrap()
}

/// The same recording in sqlite3 storage (tests/data/bags/sample_db3, copied by
/// scripts/make_bag_fixtures.py with PyPI rosbags) gives the same messages and tracks.
#[test]
fn sqlite3_bag_replays_like_the_mcap_bag() {
    let db3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bags/sample_db3");
    let reader = BagReader::open(&db3).unwrap();
    assert_eq!(reader.topics().len(), 3);
    assert_eq!(reader.message_count(&[RGB, AUX]), Some(16));
    let from_db3 = collect(&db3, &[]);
    let from_mcap = collect(&sample_bag(), &[]);
    assert_eq!(from_db3.len(), 24);
    let key = |m: &bag::BagMessage| (m.log_time_ns, m.topic.clone(), m.type_name.clone(), m.data.clone());
    let mut a: Vec<_> = from_db3.iter().map(key).collect();
    let mut b: Vec<_> = from_mcap.iter().map(key).collect();
    a.sort();
    b.sort();
    assert!(a == b, "same messages in both storages");
    // Only the requested topic, in timestamp order.
    let rgb_only = collect(&db3, &[RGB]);
    assert_eq!(rgb_only.len(), 8);
    assert!(rgb_only.iter().all(|m| m.topic == RGB));
    assert!(rgb_only.windows(2).all(|w| w[0].log_time_ns < w[1].log_time_ns));

    let opts = ReplayOptions::new(RGB, AUX, InitSource::Topic(GT.into()));
    let s_db3 = go(&db3, &tmp("replay", "db3"), &opts).unwrap();
    let s_mcap = go(&sample_bag(), &tmp("replay", "db3_ref"), &opts).unwrap();
    assert_eq!(read_rows(&s_db3.json), read_rows(&s_mcap.json));
    assert_eq!(s_db3.answered, 8);
}

/// The RGB stream as `sensor_msgs/CompressedImage` (PNG, lossless, as image_transport's
/// `compressed` plugin with `format: png` publishes it) tracks exactly like the raw stream.
#[test]
fn compressed_rgb_topic_replays_like_raw() {
    let dir = tmp("replay", "compressed");
    let input = read_mcap(&sample_bag().join("sample_mcap.mcap"));
    let rgb_png = "/camera/rgb/image_raw/compressed";
    let mut records = Vec::new();
    for ((t, rgb), (ta, aux)) in input[RGB].1.iter().zip(&input[AUX].1) {
        let im = Image::decode(rgb).unwrap();
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
        records.push(record(rgb_png, *t as i64, &msg));
        records.push((AUX.into(), Image::TYPE_NAME.into(), *ta, aux.clone()));
    }
    let bag_dir = write_bag(&dir.join("png_bag"), &records, ChunkCompression::Zstd);
    let init = InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0));
    let png = go(&bag_dir, &dir.join("out_png"), &ReplayOptions::new(rgb_png, AUX, init.clone())).unwrap();
    let raw = go(&sample_bag(), &dir.join("out_raw"), &ReplayOptions::new(RGB, AUX, init)).unwrap();
    assert_eq!(png.tracked, 8);
    assert_eq!(read_rows(&png.json), read_rows(&raw.json));
}

#[test]
fn missing_topic_names_the_available_ones() {
    let init = InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0));
    let opts = ReplayOptions::new("/camera/nope", AUX, init.clone());
    let err = go(&sample_bag(), &tmp("replay", "missing"), &opts).unwrap_err();
    assert!(matches!(err, ReplayError::Bag(BagError::MissingTopic { .. })), "{err}");
    let text = err.to_string();
    assert!(text.contains("/camera/nope") && text.contains("/camera/rgb/image_raw (sensor_msgs/msg/Image)"), "{text}");
    // A topic of the wrong type for its role.
    let err = go(&sample_bag(), &tmp("replay", "wrongtype"), &ReplayOptions::new(GT, AUX, init.clone())).unwrap_err();
    assert!(matches!(err, ReplayError::NotImage { .. }), "{err}");
    let err =
        go(&sample_bag(), &tmp("replay", "wronginit"), &ReplayOptions::new(RGB, AUX, InitSource::Topic(AUX.into())))
            .unwrap_err();
    assert!(matches!(err, ReplayError::NotInit { .. }), "{err}");
    let err = go(&sample_bag(), &tmp("replay", "same"), &ReplayOptions::new(RGB, RGB, init)).unwrap_err();
    assert!(matches!(err, ReplayError::Topics(_)), "{err}");
}

#[test]
fn malformed_bags_are_errors() {
    let dir = tmp("replay", "malformed");
    let garbage = dir.join("garbage.mcap");
    std::fs::write(&garbage, b"this is not an mcap file at all").unwrap();
    let err = BagReader::open(&garbage).unwrap_err();
    assert!(matches!(err, BagError::Mcap { .. }), "{err}");
    // A well-formed bag whose only RGB image is cut short: skipped and counted as malformed, as
    // the node does; with no pair left the replay fails, saying why, with its outputs written.
    let input = read_mcap(&sample_bag().join("sample_mcap.mcap"));
    let (t_rgb, rgb) = &input[RGB].1[0];
    let (t_aux, aux) = &input[AUX].1[0];
    let records = vec![
        (RGB.to_string(), Image::TYPE_NAME.to_string(), *t_rgb, rgb[..rgb.len() / 2].to_vec()),
        (AUX.to_string(), Image::TYPE_NAME.to_string(), *t_aux, aux.clone()),
    ];
    let short_bag = write_bag(&dir.join("short"), &records, ChunkCompression::Zstd);
    let opts = ReplayOptions::new(RGB, AUX, InitSource::Box(BoxXywh::new(8.0, 14.0, 12.0, 12.0)));
    let err = go(&short_bag, &dir.join("out_short"), &opts).unwrap_err();
    let ReplayError::Failed { summary, source } = &err else { panic!("{err}") };
    assert!(matches!(**source, ReplayError::NoPairs { rgb: 1, aux: 1 }), "{err}");
    assert_eq!((summary.rgb.malformed, summary.aux.stream_ended), (1, 1));
    assert!(summary.bag.join("metadata.yaml").is_file() && summary.summary.is_file());
    // A .db3 file that is not a rosbag2 database.
    let db3 = dir.join("rec");
    std::fs::create_dir_all(&db3).unwrap();
    std::fs::write(db3.join("rec_0.db3"), b"SQLite format 3\0 but nothing else").unwrap();
    let err = BagReader::open(&db3).unwrap_err();
    assert!(matches!(err, BagError::Sqlite { .. }), "{err}");
    let empty = dir.join("empty_bag");
    std::fs::create_dir_all(&empty).unwrap();
    let err = BagReader::open(&empty).unwrap_err();
    assert!(matches!(err, BagError::NoStorage { .. }), "{err}");
    let err = BagReader::open(&dir.join("nothing_here")).unwrap_err();
    assert!(matches!(err, BagError::Io { .. }), "{err}");
    // metadata.yaml naming a file outside the bag folder.
    let evil = dir.join("evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(
        evil.join("metadata.yaml"),
        "rosbag2_bagfile_information:\n  version: 8\n  relative_file_paths:\n  - ../garbage.mcap\n",
    )
    .unwrap();
    let err = go(&evil, &dir.join("out_evil"), &opts).unwrap_err();
    assert!(matches!(err, ReplayError::Bag(BagError::BadPath { .. })), "{err}");
    assert!(err.to_string().contains("../garbage.mcap"), "{err}");
}

/// Stamps in ms. RGB at 10 Hz for 12 frames; thermal 2 ms after each of the first 7, then the
/// thermal camera stops. Between them: a thermal frame at 350 ms (50 ms from any RGB frame,
/// over the 20 ms limit) and a thermal frame stamped 150 ms stored after it (its stamp goes
/// backwards, older than frames already paired; also its log time).
fn report_bag(dir: &Path) -> PathBuf {
    let ms = |v: i64| START_NS + v * 1_000_000;
    let mut r = Vec::new();
    for n in 0..12 {
        r.push(record(RGB, ms(100 * n), &rgb_image(64, 48, ms(100 * n), n)));
        if n < 7 {
            let t = ms(100 * n + 2);
            r.push(record(AUX, t, &thermal_image(32, 24, t, n)));
        }
        if n == 3 {
            r.push(record(AUX, ms(350), &thermal_image(32, 24, ms(350), n)));
            r.push(record(AUX, ms(150), &thermal_image(32, 24, ms(150), n)));
        }
    }
    write_bag(&dir.join("report"), &r, ChunkCompression::Lz4)
}

#[test]
fn the_summary_says_what_was_paired_skipped_and_why() {
    let dir = tmp("replay", "report");
    let bag = report_bag(&dir);
    let mut opts = ReplayOptions::new(RGB, AUX, InitSource::Box(BoxXywh::new(20.0, 14.0, 20.0, 20.0)));
    opts.params.sync.max_interval_s = 0.02;
    let s = go(&bag, &dir.join("out"), &opts).unwrap();
    println!("{}", serde_json::to_string_pretty(&s).unwrap());
    assert_eq!(s.pairs, 7);
    let (rgb, aux) = (&s.rgb, &s.aux);
    assert_eq!((rgb.read, rgb.paired, rgb.stream_ended, rgb.unmatched, rgb.stamps_backwards), (12, 7, 5, 0, 0));
    assert_eq!((aux.read, aux.paired, aux.stamp_gap, aux.out_of_order, aux.stamps_backwards), (9, 7, 1, 1, 1));
    assert_eq!((aux.unmatched, aux.queue_overflow, aux.stream_ended, aux.malformed), (0, 0, 0, 0));
    assert_eq!(s.log_time_backwards, 1);
    assert_eq!((s.answered, s.tracked, s.answered_before_init), (7, 7, 0));

    // The CLI prints the same accounting.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_patrack"))
        .arg("replay")
        .arg(&bag)
        .args(["--rgb-topic", RGB, "--aux-topic", AUX, "--init", "20,14,20,20", "--config", "tiny"])
        .args(["--max-interval-s", "0.02", "--out"])
        .arg(dir.join("cli"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    for needle in [
        "replayed 7 frame pairs",
        "12 read, 7 paired",
        "1 stamp gap over max_interval_s",
        "1 out of order",
        "5 without partner at the end",
        "stamps going backwards: 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn a_replay_stopped_half_way_leaves_readable_outputs() {
    let dir = tmp("replay", "stopped");
    let bag = report_bag(&dir);
    let opts = ReplayOptions::new(RGB, AUX, InitSource::Box(BoxXywh::new(20.0, 14.0, 20.0, 20.0)));
    let mut seen = 0;
    let err = replay::replay(&bag, &dir.join("out"), &mut tiny_tracker().into(), &opts, &mut |p| {
        seen = p.messages_read;
        if p.pairs_answered >= 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap_err();
    let ReplayError::Failed { summary, source } = err else { panic!("expected a failed replay") };
    assert!(matches!(*source, ReplayError::Interrupted));
    assert_eq!(summary.stopped.as_deref(), Some("stopped on request"));
    assert_eq!(summary.answered, 3);
    // Readable: metadata.yaml, an MCAP file with a summary, the CSV and JSON of what was done.
    let out = read_mcap(&mcap_file(&summary.bag));
    assert_eq!(det_stamps(&out["/patrack/detections"].1.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>()).len(), 3);
    assert_eq!(BagReader::open(&summary.bag).unwrap().message_count(&["/patrack/detections"]), Some(3));
    assert_eq!(read_rows(&summary.json).len(), 3);
    assert_eq!(std::fs::read_to_string(&summary.csv).unwrap().lines().count(), 4);
    let on_disk: ReplaySummary = serde_json::from_str(&std::fs::read_to_string(&summary.summary).unwrap()).unwrap();
    assert_eq!(on_disk, *summary);
    assert!(seen < 21, "stopped before the end of the bag ({seen} messages read)");
    for c in [&summary.rgb, &summary.aux] {
        let accounted =
            c.malformed + c.paired + c.unmatched + c.stamp_gap + c.queue_overflow + c.out_of_order + c.stream_ended;
        assert_eq!(accounted, c.read, "{}: every message read is accounted for", c.topic);
    }
}

fn cli(args: &[&str], out: &Path) -> (bool, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_patrack"))
        .arg("replay")
        .arg(sample_bag())
        .args(["--rgb-topic", RGB, "--aux-topic", AUX, "--config", "tiny"])
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
}

#[test]
fn cli_replays_with_a_box_and_refuses_to_overwrite_without_force() {
    let out = tmp("replay", "cli");
    let args = ["--init", "8,14,12,12", "--max-interval-s", "0.01"];
    let (ok, text) = cli(&args, &out);
    assert!(ok, "{text}");
    assert!(text.contains("replayed 8 frame pairs"), "{text}");
    for f in ["bag/metadata.yaml", "tracks.csv", "tracks.json", "summary.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let (ok, text) = cli(&args, &out);
    assert!(!ok, "a second replay into the same folder must fail");
    assert!(text.contains("earlier replay") && text.contains("--force"), "{text}");
    let (ok, text) = cli(&[&args[..], &["--force", "--namespace", "/robot", "--node-name", "tracker"]].concat(), &out);
    assert!(ok, "{text}");
    let topics: Vec<String> = read_mcap(&mcap_file(&out.join("bag"))).into_keys().collect();
    assert_eq!(topics, ["/robot/tracker/confidence", "/robot/tracker/detections"]);
    // --force replaces only a replay's own outputs.
    std::fs::write(out.join("bag/notes.txt"), b"mine").unwrap();
    let (ok, text) = cli(&[&args[..], &["--force"]].concat(), &out);
    assert!(!ok && text.contains("not a replay output bag"), "{text}");

    // The node's own parameter files, and the box from the bag's detection topic.
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let (p1, p2) = (config.join("patrack.yaml"), config.join("rgbt.yaml"));
    let params = ["--init-topic", GT, "--params", p1.to_str().unwrap(), "--params", p2.to_str().unwrap()];
    let (ok, text) = cli(&params, &out.join("with_params"));
    assert!(ok && text.contains("replayed 8 frame pairs"), "{text}");
    // No initial box anywhere is a clear error.
    let (ok, text) = cli(&[], &out.join("no_init"));
    assert!(!ok && text.contains("no initial box"), "{text}");
}

#[test]
fn cli_ctrl_c_stops_the_replay_with_finished_outputs() {
    let dir = tmp("replay", "sigint");
    // Long enough that the replay is still running when the signal comes.
    let mut r = Vec::new();
    for n in 0..3000 {
        let t = START_NS + n * PERIOD_NS;
        r.push(record(RGB, t, &rgb_image(64, 48, t, n % 10)));
        r.push(record(AUX, t + 1_000_000, &thermal_image(32, 24, t + 1_000_000, n % 10)));
    }
    let bag = write_bag(&dir.join("long"), &r, ChunkCompression::None);
    let out = dir.join("out");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_patrack"))
        .arg("replay")
        .arg(&bag)
        .args(["--rgb-topic", RGB, "--aux-topic", AUX, "--init", "20,14,20,20", "--config", "tiny", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // tracks.csv gets its first row (rows are flushed as they are made) once the replay has
    // answered a pair; signalling before that raced with the first answer on a loaded machine.
    let started = std::time::Instant::now();
    let has_a_row = || std::fs::read_to_string(out.join("tracks.csv")).is_ok_and(|csv| csv.lines().count() >= 2);
    while !has_a_row() {
        assert!(started.elapsed().as_secs() < 120, "the replay did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("stopped on request") && text.contains("the outputs hold what was done"), "{text}");
    let summary: ReplaySummary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary.stopped.as_deref(), Some("stopped on request"));
    assert!(summary.answered < 3000, "stopped early: {} answered", summary.answered);
    let rows = read_rows(&out.join("tracks.json"));
    assert_eq!(rows.len() as u64, summary.tracked);
    let dets = &read_mcap(&mcap_file(&out.join("bag")))["/patrack/detections"].1;
    assert_eq!(dets.len() as u64, summary.answered);
    println!("stopped after {} of 3000 pairs", summary.answered);
}
