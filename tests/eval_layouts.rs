//! `patrack eval` on synthetic sequences written in each benchmark's layout: the readers, the
//! run with the tiny network (hashed weights: it runs but does not track), the resume rule, the
//! raw-result formats, scoring (an oracle tracker whose results are the ground truth must score
//! perfectly) and the CLI end to end.

use std::path::{Path, PathBuf};

use patrack::device::Precision;
use patrack::eval::boxfile::ResultFormat;
use patrack::eval::layout::{self, DatasetKind};
use patrack::eval::report::{self, BenchScores, Report, TrackerScores};
use patrack::eval::{plot, runner};
use patrack::model::{ModelConfig, PATrack};
use patrack::tracker::{Tracker, TrackerConfig};

const W: u32 = 96;
const H: u32 = 72;
const FRAMES: usize = 4;

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("eval_layouts_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The ground-truth box of frame `i`: a square moving right.
fn gt_box(i: usize) -> [f64; 4] {
    [20.0 + 3.0 * i as f64, 18.0, 24.0, 20.0]
}

fn write_rgb(path: &Path, i: usize) {
    let img = image::RgbImage::from_fn(W, H, |x, y| {
        let [bx, by, bw, bh] = gt_box(i);
        let inside = (x as f64) >= bx && (x as f64) < bx + bw && (y as f64) >= by && (y as f64) < by + bh;
        if inside {
            image::Rgb([220, 40, 40])
        } else {
            image::Rgb([(x * 2) as u8, (y * 3) as u8, 90])
        }
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

fn write_aux(kind: DatasetKind, path: &Path, i: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    match kind {
        DatasetKind::DepthTrack => {
            let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(W, H, |x, y| {
                image::Luma([(1000 + x * 20 + y * 5 + i as u32) as u16])
            });
            img.save(path).unwrap();
        }
        DatasetKind::Gtot => {
            let img = image::GrayImage::from_fn(W, H, |x, y| image::Luma([(x + y * 2 + i as u32) as u8]));
            img.save(path).unwrap();
        }
        _ => write_rgb(path, i),
    }
}

fn box_lines(rows: impl Iterator<Item = String>) -> String {
    rows.map(|r| r + "\n").collect()
}

/// Writes `names` in `kind`'s layout under `root`.
fn write_dataset(kind: DatasetKind, root: &Path, names: &[&str]) {
    let (rgb_dir, aux_dir) = kind.image_dirs();
    for name in names {
        let d = root.join(name);
        for i in 0..FRAMES {
            let ext = if kind == DatasetKind::DepthTrack { "png" } else { "jpg" };
            write_rgb(&d.join(rgb_dir).join(format!("{:08}.{ext}", i + 1)), i);
            let aux_ext = if kind == DatasetKind::DepthTrack { "png" } else { "jpg" };
            write_aux(kind, &d.join(aux_dir).join(format!("{:08}.{aux_ext}", i + 1)), i);
        }
        let ltwh = box_lines((0..FRAMES).map(|i| {
            let b = gt_box(i);
            format!("{},{},{},{}", b[0], b[1], b[2], b[3])
        }));
        match kind {
            DatasetKind::Lasher => std::fs::write(d.join("init.txt"), &ltwh).unwrap(),
            DatasetKind::Rgbt234 => {
                std::fs::write(d.join("visible.txt"), &ltwh).unwrap();
                std::fs::write(d.join("infrared.txt"), &ltwh).unwrap();
            }
            DatasetKind::Gtot => {
                // l t r b, the toolkit's +1 width convention: r = x + w - 1.
                let ltrb = box_lines((0..FRAMES).map(|i| {
                    let b = gt_box(i);
                    format!("{} {} {} {}", b[0], b[1], b[0] + b[2] - 1.0, b[1] + b[3] - 1.0)
                }));
                std::fs::write(d.join("groundTruth_v.txt"), &ltrb).unwrap();
                std::fs::write(d.join("groundTruth_i.txt"), &ltrb).unwrap();
            }
            DatasetKind::DepthTrack => {
                // The target is absent in the last frame.
                let mut rows: Vec<String> = ltwh.lines().map(String::from).collect();
                rows[FRAMES - 1] = "nan,nan,nan,nan".into();
                std::fs::write(d.join("groundtruth.txt"), box_lines(rows.into_iter())).unwrap();
            }
            DatasetKind::VisEvent => {
                std::fs::write(d.join("groundtruth.txt"), &ltwh).unwrap();
                std::fs::write(d.join("absent_label.txt"), "1\n".repeat(FRAMES)).unwrap();
            }
        }
    }
}

fn tiny_tracker() -> Tracker {
    let mut m = PATrack::new(ModelConfig::tiny(), tch::Device::Cpu, Precision::Fp32).unwrap();
    m.fill_hashed();
    Tracker::new(m, TrackerConfig::default()).unwrap()
}

/// Writes the ground truth itself as a tracker's raw results (confidence 1 where visible).
fn write_oracle(kind: DatasetKind, seqs: &[layout::BenchSequence], dir: &Path) {
    for s in seqs {
        let frames: Vec<layout::FrameResult> =
            s.gt.iter()
                .map(|g| {
                    let absent = g.iter().any(|v| v.is_nan());
                    let g = if absent { [0.0; 4] } else { *g };
                    layout::FrameResult {
                        bbox: patrack::tracker::BoxXywh::new(g[0] as f64, g[1] as f64, g[2] as f64, g[3] as f64),
                        score: Some(if absent { 0.0 } else { 1.0 }),
                        time_s: 0.0,
                    }
                })
                .collect();
        layout::write_result(kind, dir, &s.name, &frames).unwrap();
    }
}

fn run_kind(kind: DatasetKind) {
    let root = tmp(&format!("{kind:?}"));
    let data = root.join("data");
    write_dataset(kind, &data, &["seq_b", "seq_a"]);
    let seqs = layout::list_sequences(kind, &data).unwrap();
    let names: Vec<&str> = seqs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["seq_a", "seq_b"], "sequences in name order");
    assert_eq!(seqs[0].len(), FRAMES);
    let f = seqs[0].frame(0).unwrap();
    assert_eq!((f.width, f.height, f.channels), (W as usize, H as usize, 6));

    // Run, then run again: the second run must skip everything and leave the files alone.
    let out = root.join("out").join("patrack");
    let mut tracker = tiny_tracker();
    let first = runner::run_benchmark(&mut tracker, kind, &seqs, &out).unwrap();
    assert_eq!(first.tracked.len(), 2);
    assert_eq!(first.frames, 2 * FRAMES);
    let result = layout::result_path(kind, &out, "seq_a");
    let text = std::fs::read_to_string(&result).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), FRAMES);
    if kind.is_long_term() {
        assert_eq!(lines[0], "1", "VOT initialisation frame");
        let conf = std::fs::read_to_string(out.join("longterm/seq_a/seq_a_001_confidence.value")).unwrap();
        assert_eq!(conf.lines().count(), FRAMES);
        assert_eq!(conf.lines().next(), Some(""));
    } else {
        // Frame 0 is the initial box.
        let b = gt_box(0);
        assert_eq!(lines[0], format!("{:.4},{:.4},{:.4},{:.4}", b[0], b[1], b[2], b[3]));
    }
    let second = runner::run_benchmark(&mut tracker, kind, &seqs, &out).unwrap();
    assert!(second.tracked.is_empty());
    assert_eq!(second.skipped, ["seq_a", "seq_b"]);
    assert_eq!(std::fs::read_to_string(&result).unwrap(), text);

    // Score the run and an oracle; the oracle is perfect.
    let oracle = root.join("out").join("oracle");
    write_oracle(kind, &seqs, &oracle);
    let found = report::tracker_dirs(kind, &seqs, &root.join("out"), "").unwrap();
    assert_eq!(found.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["oracle", "patrack"]);
    let mut trackers = Vec::new();
    for (name, dir) in &found {
        trackers.push(TrackerScores {
            tracker: name.clone(),
            scores: report::score_tracker(kind, &seqs, dir, "", ResultFormat::Auto).unwrap(),
        });
    }
    match &trackers[0].scores {
        BenchScores::Ope(s) => {
            // Every frame has IoU 1: success 1 at every threshold but t = 1 (strict >). GTOT
            // integrates with the trapezoid rule: (19 + 20) * 0.05 / 2.
            let want = if kind == DatasetKind::Gtot { 0.975 } else { 20.0 / 21.0 };
            println!(
                "{kind:?} oracle success {} vs {want}, diff {:e} (tol 1e-12)",
                s.success_auc,
                (s.success_auc - want).abs()
            );
            assert!((s.success_auc - want).abs() < 1e-12);
            assert_eq!(s.precision, 1.0);
        }
        BenchScores::LongTerm(s) => {
            // VOT counts the initialisation frame (region "1", no confidence: 0) as overlap 0, so
            // the best threshold is the lowest: 4 frames with overlaps 0, 1, 1, 1 (the absent
            // frame reported empty scores 1), 3 visible: P 3/4, R 1, F 6/7.
            println!("{kind:?} oracle P {} R {} F {} (want 0.75, 1, 6/7; tol 1e-12)", s.precision, s.recall, s.f_score);
            assert!((s.precision - 0.75).abs() < 1e-12);
            assert!((s.recall - 1.0).abs() < 1e-12);
            assert!((s.f_score - 6.0 / 7.0).abs() < 1e-12);
        }
    }
    // Scoring from the ground truth alone reads the same sequences and gives the same scores.
    let gt_only = layout::list_ground_truth(kind, &data).unwrap();
    // Compared bit for bit: DepthTrack's absent frames are NaN.
    let bits = |v: &[[f32; 4]]| v.iter().map(|b| b.map(f32::to_bits)).collect::<Vec<_>>();
    let view = |s: &layout::BenchSequence| (s.name.clone(), bits(&s.gt), s.gt_aux.as_deref().map(bits));
    assert_eq!(gt_only.iter().map(view).collect::<Vec<_>>(), seqs.iter().map(view).collect::<Vec<_>>());
    for ((_, dir), t) in found.iter().zip(&trackers) {
        assert_eq!(report::score_tracker(kind, &gt_only, dir, "", ResultFormat::Auto).unwrap(), t.scores);
    }
    let rep = Report { dataset: kind, n_sequences: seqs.len(), trackers };
    let (json, md) = report::write_tables(&rep, &root.join("out")).unwrap();
    let back: Report = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    // serde_json parses floats to within an ulp, not bit-exactly.
    assert_eq!(back.trackers.len(), rep.trackers.len());
    for (a, b) in back.trackers.iter().zip(&rep.trackers) {
        assert_eq!(a.tracker, b.tracker);
        let key = |s: &BenchScores| match s {
            BenchScores::Ope(s) => s.success_auc,
            BenchScores::LongTerm(s) => s.f_score,
        };
        assert!((key(&a.scores) - key(&b.scores)).abs() < 1e-12);
    }
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("| oracle |") && md.contains("| patrack |"), "{md}");
    for p in plot::write_plots(&rep, &root.join("out")).unwrap() {
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), (800, 600));
    }
}

#[test]
fn lasher_layout() {
    run_kind(DatasetKind::Lasher);
}

#[test]
fn rgbt234_layout() {
    run_kind(DatasetKind::Rgbt234);
}

#[test]
fn gtot_layout() {
    run_kind(DatasetKind::Gtot);
}

#[test]
fn depthtrack_layout() {
    run_kind(DatasetKind::DepthTrack);
}

#[test]
fn visevent_layout() {
    run_kind(DatasetKind::VisEvent);
}

#[test]
fn missing_ground_truth_is_a_clear_error() {
    let root = tmp("missing_gt");
    write_dataset(DatasetKind::Rgbt234, &root, &["s"]);
    std::fs::remove_file(root.join("s/infrared.txt")).unwrap();
    let err = layout::list_sequences(DatasetKind::Rgbt234, &root).unwrap_err().to_string();
    assert!(err.contains("infrared.txt"), "{err}");
    let empty = tmp("empty");
    let err = layout::list_sequences(DatasetKind::Lasher, &empty).unwrap_err().to_string();
    assert!(err.contains("no sequences"), "{err}");
}

#[test]
fn scoring_needs_no_images_except_for_the_depthtrack_image_size() {
    for kind in
        [DatasetKind::Lasher, DatasetKind::Rgbt234, DatasetKind::Gtot, DatasetKind::VisEvent, DatasetKind::DepthTrack]
    {
        let root = tmp(&format!("gt_only_{kind:?}"));
        let data = root.join("data");
        write_dataset(kind, &data, &["s1", "s2"]);
        let with_images = layout::list_sequences(kind, &data).unwrap();
        let oracle = root.join("oracle");
        write_oracle(kind, &with_images, &oracle);
        let (rgb_dir, aux_dir) = kind.image_dirs();
        for s in ["s1", "s2"] {
            std::fs::remove_dir_all(data.join(s).join(rgb_dir)).unwrap();
            std::fs::remove_dir_all(data.join(s).join(aux_dir)).unwrap();
        }
        assert!(layout::list_sequences(kind, &data).is_err(), "{kind:?}: running needs the images");
        let seqs = layout::list_ground_truth(kind, &data).unwrap();
        assert_eq!(seqs.len(), 2);
        assert_eq!(seqs[0].len(), FRAMES);
        let scored = report::score_tracker(kind, &seqs, &oracle, "", ResultFormat::Auto);
        if kind.is_long_term() {
            let err = scored.unwrap_err().to_string();
            assert!(err.contains("no color images") && err.contains("image size"), "{err}");
        } else {
            scored.unwrap();
        }
    }
    let err = layout::list_ground_truth(DatasetKind::Gtot, &tmp("gt_only_empty")).unwrap_err().to_string();
    assert!(err.contains("no sequences found (sub-folders holding groundTruth_v.txt and groundTruth_i.txt)"), "{err}");
}

#[test]
fn cli_runs_resumes_and_scores_results() {
    let root = tmp("cli");
    let data = root.join("data");
    write_dataset(DatasetKind::Lasher, &data, &["one", "two"]);
    let out = root.join("out");
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_patrack"))
            .args(["eval", "--dataset", "lasher", "--config", "tiny", "--root"])
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{text}");
        text
    };
    let first = run(&[]);
    assert!(first.contains("tracked 2 sequences"), "{first}");
    assert!(
        out.join("scores.md").is_file() && out.join("success.png").is_file() && out.join("precision.png").is_file()
    );
    let again = run(&[]);
    assert!(again.contains("tracked 0 sequences") && again.contains("2 already done"), "{again}");
    // Scoring existing results of several trackers (a folder of tracker folders).
    let seqs = layout::list_sequences(DatasetKind::Lasher, &data).unwrap();
    write_oracle(DatasetKind::Lasher, &seqs, &root.join("others").join("oracle"));
    let scored =
        run(&["--results", root.join("others").to_str().unwrap(), "--results", out.join("patrack").to_str().unwrap()]);
    assert!(scored.contains("| oracle | 95.2 | 100.0 | 100.0 |"), "{scored}");
    assert!(scored.contains("| patrack |"), "{scored}");
    // Published raw results named `<tracker>_<seq>.txt`.
    let named = root.join("named");
    std::fs::create_dir_all(&named).unwrap();
    for s in &seqs {
        let from = root.join("others/oracle").join(format!("{}.txt", s.name));
        std::fs::copy(from, named.join(format!("Oracle_{}.txt", s.name))).unwrap();
    }
    let scored = run(&["--results", named.to_str().unwrap(), "--prefix", "Oracle_"]);
    assert!(scored.contains("| named | 95.2 | 100.0 | 100.0 |"), "{scored}");
}

#[test]
fn image_files_get_the_camera_limits_and_missing_init_txt_is_named() {
    use patrack::dataset::{load_decoded, DatasetError};
    // A PNG whose header declares 12000 x 12000 pixels (432 MB of RGB): refused by the limits
    // from its header, not decoded (it was: 27 s and 2.8 GB in `run`).
    let dir = std::env::temp_dir().join(format!("patrack-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&12000u32.to_be_bytes());
    ihdr.extend_from_slice(&12000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let path = dir.join("big.png");
    std::fs::write(&path, &png).unwrap();
    let err = load_decoded(&path).unwrap_err();
    println!("{err}");
    assert!(matches!(err, DatasetError::Image { .. }), "{err}");
    assert!(err.to_string().contains("big.png") && err.to_string().to_lowercase().contains("limit"), "{err}");
    // A FIFO or device named like an image is not read.
    if std::path::Path::new("/dev/zero").exists() {
        let err = load_decoded(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(err, DatasetError::NotAFile { .. }), "{err}");
    }
    // LasHeR without init.txt (nor visible.txt) names init.txt.
    let seq = dir.join("seq");
    for sub in ["visible", "infrared"] {
        std::fs::create_dir_all(seq.join(sub)).unwrap();
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rgb_16x12.png"),
            seq.join(sub).join("000001.png"),
        )
        .unwrap();
    }
    let err = patrack::eval::layout::BenchSequence::open(patrack::eval::layout::DatasetKind::Lasher, &seq).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("init.txt"), "{err}");
}

/// CRC-32 (IEEE) of a PNG chunk's type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
