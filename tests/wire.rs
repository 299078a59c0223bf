//! The node over a real DDS wire: `patrack node` (DDS transport, tiny model with hashed weights,
//! CPU) and a Python Cyclone DDS peer (`tests/wire_peer.py`) inside a network namespace with only
//! loopback up, so no traffic leaves the machine. The peer publishes 640x480 RGB and 320x240
//! mono16 thermal streams with jittered stamps and an `~/init`; this test checks what came back.
//!
//! Needs: feature `dds`; `unshare` and `ip` (util-linux, iproute2); Python with `cyclonedds`
//! (`.venv/bin/python` of the repo, or `PATRACK_TEST_PYTHON`).
#![cfg(feature = "dds-transport")]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FRAMES: usize = 40;
const RATE_HZ: f64 = 10.0;
const TIMEOUT: Duration = Duration::from_secs(180);

fn python() -> PathBuf {
    match std::env::var_os("PATRACK_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// Cyclone DDS on loopback only, multicast allowed (discovery uses it).
const CYCLONEDDS_URI: &str = "<CycloneDDS><Domain><General><Interfaces>\
    <NetworkInterface name=\"lo\" multicast=\"true\"/></Interfaces>\
    <AllowMulticast>true</AllowMulticast></General></Domain></CycloneDDS>";

fn values(diag: &serde_json::Value) -> &serde_json::Map<String, serde_json::Value> {
    diag["values"].as_object().expect("diagnostic values")
}

/// Runs `patrack node` with `node_sets` (extra `--set` options) and the peer with `peer_args`
/// in a network namespace with only loopback; the peer's report and the node's log.
fn run_wire(name: &str, node_sets: &str, peer_args: &str) -> (serde_json::Value, String, PathBuf) {
    let python = python();
    assert!(python.exists(), "{} not found: create .venv from scripts/requirements-test.txt", python.display());
    let dir = std::env::temp_dir().join(format!("patrack-wire-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let node_log = dir.join("node.log");
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wire_peer.py");
    let script = format!(
        r#"set -eu
ip link set lo up
ip link set lo multicast on
ip route add 224.0.0.0/4 dev lo
# Nothing but loopback may exist here: no traffic can leave the namespace.
test "$(ip -o link show | wc -l)" = 1
"$NODE_EXE" node --set model_config=tiny --set device=cpu --set precision=fp32 \
    --set tracker.lost_frames=0 --set class_id=square {node_sets} --run-for-s 150 >"$NODE_LOG" 2>&1 &
node_pid=$!
"$PEER_PYTHON" "$PEER" --report "$REPORT" --frames {FRAMES} --rate-hz {RATE_HZ} --timeout-s 120 {peer_args}
kill -INT "$node_pid"
wait "$node_pid"
"#
    );
    // Root can make the network namespace directly; others need a user namespace for it.
    let is_root = unsafe { libc::geteuid() } == 0;
    let unshare_flags: &[&str] = if is_root { &["--net"] } else { &["--map-root-user", "--net"] };
    let mut child = Command::new("unshare")
        .args(unshare_flags)
        .args(["--", "sh", "-c", &script])
        .env("NODE_EXE", env!("CARGO_BIN_EXE_patrack"))
        .env("NODE_LOG", &node_log)
        .env("PEER_PYTHON", &python)
        .env("PEER", peer)
        .env("REPORT", &report)
        .env("CYCLONEDDS_URI", CYCLONEDDS_URI)
        .env("RUST_LOG", "info,rustdds=warn,ros2_client=warn")
        .env_remove("ROS_DOMAIN_ID")
        .stdin(Stdio::null())
        .spawn()
        .expect("running unshare");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wire test timed out after {TIMEOUT:?}; node log:\n{}", read(&node_log));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = read(&node_log);
    println!("--- node log ---\n{log}\n--- end ---");
    assert!(status.success(), "unshare script failed: {status}");
    let report: serde_json::Value = serde_json::from_str(&read(&report)).expect("peer report");
    (report, log, dir)
}

#[test]
fn node_answers_a_cyclonedds_peer_over_loopback_only() {
    let (report, _log, dir) = run_wire("thermal", "", "");

    let rgb_stamps: BTreeSet<i64> =
        report["rgb_stamps_ns"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(rgb_stamps.len(), FRAMES, "the peer sent every frame");
    let init_stamp_ns = report["init_stamp_ns"].as_i64().expect("init sent");

    // Detections: one array per processed pair, stamped like its RGB frame, in stamp order.
    let detections = report["detections"].as_array().unwrap();
    let stamps: Vec<i64> = detections.iter().map(|d| d["stamp_ns"].as_i64().unwrap()).collect();
    println!("{} detection arrays for {FRAMES} pairs sent", detections.len());
    assert!(detections.len() >= FRAMES / 4, "too few answers: {}", detections.len());
    assert!(stamps.iter().all(|s| rgb_stamps.contains(s)), "every answer carries an RGB stamp");
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "answers in stamp order, none twice");
    assert!(detections.iter().all(|d| d["frame_id"] == "rgb_camera"));
    let tracked: Vec<&serde_json::Value> =
        detections.iter().filter(|d| !d["boxes"].as_array().unwrap().is_empty()).collect();
    println!("{} arrays with a box (after the init stamped {init_stamp_ns})", tracked.len());
    assert!(tracked.len() >= FRAMES / 5, "tracking never started: {} boxes", tracked.len());
    for d in &tracked {
        let stamp = d["stamp_ns"].as_i64().unwrap();
        assert!(stamp >= init_stamp_ns, "a box before the init frame");
        let b = &d["boxes"][0];
        let (cx, cy, w, h, score) = (
            b[0].as_f64().unwrap(),
            b[1].as_f64().unwrap(),
            b[2].as_f64().unwrap(),
            b[3].as_f64().unwrap(),
            b[4].as_f64().unwrap(),
        );
        assert!((0.0..=640.0).contains(&cx) && (0.0..=480.0).contains(&cy) && w > 0.0 && h > 0.0, "{b}");
        assert!((0.0..=1.0).contains(&score), "{b}");
        assert_eq!(b[5], "1", "track id");
        assert_eq!(b[6].as_i64().unwrap(), stamp, "detection header = array header");
    }
    assert!(!detections.last().unwrap()["boxes"].as_array().unwrap().is_empty(), "still tracking at the end");

    // Debug images: built because the peer subscribes; full-size rgb8 frames of processed pairs.
    let debug = report["debug_images"].as_array().unwrap();
    println!("{} debug images", debug.len());
    assert!(!debug.is_empty(), "no debug image although the peer subscribes");
    for img in debug {
        assert_eq!((img["width"].as_u64(), img["height"].as_u64()), (Some(640), Some(480)));
        assert_eq!(
            (img["encoding"].as_str(), img["step"].as_u64(), img["bytes"].as_u64()),
            (Some("rgb8"), Some(1920), Some(921_600))
        );
        assert!(stamps.contains(&img["stamp_ns"].as_i64().unwrap()), "debug image of an answered pair");
    }

    // Diagnostics: about 1 Hz, with rates, state and device; the last count of processed pairs
    // equals the answers received, so every processed pair was answered.
    let diags = report["diagnostics"].as_array().unwrap();
    assert!(diags.len() >= 3, "{} diagnostics", diags.len());
    let last = diags.last().unwrap();
    println!("last diagnostics: {last}");
    assert_eq!(last["name"], "patrack: tracker");
    assert_eq!(last["hardware_id"], "cpu");
    let v = values(last);
    assert_eq!(v["processed_total"].as_str().unwrap().parse::<usize>().unwrap(), detections.len());
    assert_eq!(v["state"], "tracking");
    assert_eq!(v["malformed_messages_total"], "0");
    assert_eq!(v["device"], "cpu");
    let max_rgb_rate =
        diags.iter().filter_map(|d| values(d).get("rgb_rate_hz")?.as_str()?.parse::<f64>().ok()).fold(0.0, f64::max);
    println!("highest reported rgb rate {max_rgb_rate:.2} Hz, sent at {RATE_HZ} Hz (tolerance 50 %)");
    assert!((max_rgb_rate - RATE_HZ).abs() <= 0.5 * RATE_HZ);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The peer's RGB camera (tests/wire_peer.py, `FX, FY, CX, CY`).
const PEER_CAMERA: [f64; 4] = [500.0, 510.0, 319.5, 239.5];

#[test]
fn rgbd_node_publishes_the_target_in_3d_to_a_cyclonedds_peer() {
    let (report, _log, dir) = run_wire("depth", "--set modality=depth", "--modality depth");
    let detections = report["detections"].as_array().unwrap();
    let boxes: std::collections::BTreeMap<i64, &serde_json::Value> = detections
        .iter()
        .filter(|d| !d["boxes"].as_array().unwrap().is_empty())
        .map(|d| (d["stamp_ns"].as_i64().unwrap(), &d["boxes"][0]))
        .collect();
    let points = report["points"].as_array().unwrap();
    let detections_3d = report["detections_3d"].as_array().unwrap();
    println!(
        "{} detection arrays, {} tracked, {} points, {} 3D arrays",
        detections.len(),
        boxes.len(),
        points.len(),
        detections_3d.len()
    );
    assert!(points.len() >= FRAMES / 5, "too few 3D points: {}", points.len());
    // Each point is its 2D box's centre back-projected with the peer's CameraInfo, at the depth
    // of the square (1.5 m) or the wall (4 m) behind it, in the RGB image's frame.
    let [fx, fy, cx, cy] = PEER_CAMERA;
    for p in points {
        let stamp = p["stamp_ns"].as_i64().unwrap();
        assert_eq!(p["frame_id"], "rgb_camera");
        let b = boxes.get(&stamp).unwrap_or_else(|| panic!("a point without a tracked 2D box: {p}"));
        let xyz: Vec<f64> = p["xyz"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let (u, v) = (fx * xyz[0] / xyz[2] + cx, fy * xyz[1] / xyz[2] + cy);
        let (box_cx, box_cy) = (b[0].as_f64().unwrap(), b[1].as_f64().unwrap());
        assert!((u - (box_cx - 0.5)).abs() < 1e-6 && (v - (box_cy - 0.5)).abs() < 1e-6, "{p} vs box {b}");
        assert!((xyz[2] - 1.5).abs() < 0.005 || (xyz[2] - 4.0).abs() < 0.005, "{p}");
    }
    // ~/detections_3d: one array per answered pair, the point and the 2D box's id and score.
    let point_at: std::collections::BTreeMap<i64, &serde_json::Value> =
        points.iter().map(|p| (p["stamp_ns"].as_i64().unwrap(), &p["xyz"])).collect();
    assert!(detections_3d.len() >= points.len());
    for d in detections_3d {
        let stamp = d["stamp_ns"].as_i64().unwrap();
        match d["boxes"].as_array().unwrap().as_slice() {
            [] => assert!(!point_at.contains_key(&stamp)),
            [b] => {
                let xyz = point_at[&stamp].as_array().unwrap();
                assert_eq!(&b.as_array().unwrap()[..3], &xyz[..]);
                assert_eq!(b[7], "1", "track id");
                assert_eq!(b[6], boxes[&stamp][4], "score as in 2D");
            }
            more => panic!("{} detections in one array", more.len()),
        }
    }
    // The diagnostics name the calibration and count the points.
    let last = report["diagnostics"].as_array().unwrap().last().unwrap().clone();
    let v = values(&last);
    assert_eq!(v["camera_info"], "640x480, fx 500.0 fy 510.0 cx 319.5 cy 239.5 px");
    assert_eq!(v["targets_3d_total"].as_str().unwrap().parse::<usize>().unwrap(), points.len());
    let _ = std::fs::remove_dir_all(&dir);
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{}: {e}>", path.display()))
}
