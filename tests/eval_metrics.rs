//! The benchmark scores against the reference toolkits on the synthetic inputs of
//! `scripts/make_eval_fixtures.py` (tests/data/eval/): PyPI `rgbt` 1.0.1 for LasHeR, RGBT234
//! and GTOT, PyPI `vot-toolkit` 0.9.0 for DepthTrack. The tolerance is 0.1 percentage
//! point.

use std::path::{Path, PathBuf};

use patrack::eval::boxfile::{self, ResultFormat};
use patrack::eval::longterm::{self, LtSequence};
use patrack::eval::metrics::{self, SeqBoxes};

const TOL_PP: f64 = 0.1;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eval")
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(data().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn seq_names(kind: &str) -> Vec<String> {
    let text = std::fs::read_to_string(data().join(kind).join("seqs.txt")).expect("seqs.txt");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

fn check(what: &str, got: f64, want: &serde_json::Value) {
    let want = want.as_f64().unwrap_or_else(|| panic!("{what}: no expected value"));
    let diff_pp = (got - want).abs() * 100.0;
    println!("{what}: ours {:.4}% toolkit {:.4}% diff {diff_pp:.2e} pp (tol {TOL_PP} pp)", got * 100.0, want * 100.0);
    assert!(diff_pp <= TOL_PP, "{what}: {got} vs {want}");
}

fn load(kind: &str, tracker: &str, gt_files: &[&str], ltrb: bool) -> Vec<SeqBoxes> {
    let d = data().join(kind);
    seq_names(kind)
        .into_iter()
        .map(|name| {
            let conv = |v: Vec<metrics::Rect32>| if ltrb { v.iter().map(metrics::ltrb_to_ltwh).collect() } else { v };
            let gt_path = |f: &str| {
                if f.is_empty() {
                    d.join("gt").join(format!("{name}.txt"))
                } else {
                    d.join("gt").join(&name).join(f)
                }
            };
            let gt = conv(boxfile::read_ground_truth(&gt_path(gt_files[0])).unwrap());
            let gt_infrared = gt_files.get(1).map(|f| conv(boxfile::read_ground_truth(&gt_path(f)).unwrap()));
            let result =
                boxfile::read_result(&d.join("results").join(tracker).join(format!("{name}.txt")), ResultFormat::Ltwh)
                    .unwrap();
            SeqBoxes { name, result, gt, gt_infrared }
        })
        .collect()
}

#[test]
fn lasher_matches_rgbt_toolkit() {
    let exp = expected();
    for t in ["good", "poor"] {
        let s = metrics::lasher(&load("lasher", t, &[""], false)).unwrap();
        let e = &exp["lasher"][t];
        check(&format!("LasHeR {t} success"), s.success_auc, &e["success"]);
        check(&format!("LasHeR {t} precision@20"), s.precision, &e["precision"]);
        check(&format!("LasHeR {t} norm precision@0.2"), s.norm_precision.unwrap(), &e["norm_precision"]);
    }
}

#[test]
fn rgbt234_matches_rgbt_toolkit() {
    let exp = expected();
    for t in ["good", "poor"] {
        let s = metrics::rgbt234(&load("rgbt234", t, &["visible.txt", "infrared.txt"], false)).unwrap();
        let e = &exp["rgbt234"][t];
        check(&format!("RGBT234 {t} MSR"), s.success_auc, &e["success"]);
        check(&format!("RGBT234 {t} MPR@20"), s.precision, &e["precision"]);
    }
}

#[test]
fn gtot_matches_rgbt_toolkit() {
    let exp = expected();
    for t in ["good", "poor"] {
        let s = metrics::gtot(&load("gtot", t, &["groundTruth_v.txt", "groundTruth_i.txt"], true)).unwrap();
        let e = &exp["gtot"][t];
        check(&format!("GTOT {t} MSR"), s.success_auc, &e["success"]);
        check(&format!("GTOT {t} MPR@5"), s.precision, &e["precision"]);
    }
}

#[test]
fn depthtrack_matches_vot_toolkit() {
    let exp = expected();
    let size = &exp["depthtrack_image_size"];
    let image_size = (size[0].as_i64().unwrap(), size[1].as_i64().unwrap());
    let d = data().join("depthtrack");
    for t in ["good", "poor"] {
        let seqs: Vec<LtSequence> = seq_names("depthtrack")
            .into_iter()
            .map(|name| {
                let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
                let run = d.join("results").join(t).join("longterm").join(&name);
                LtSequence {
                    groundtruth: longterm::parse_regions(&read(d.join("gt").join(&name).join("groundtruth.txt")))
                        .unwrap(),
                    trajectory: longterm::parse_regions(&read(run.join(format!("{name}_001.txt")))).unwrap(),
                    confidence: longterm::parse_confidences(&read(run.join(format!("{name}_001_confidence.value"))))
                        .unwrap(),
                    name,
                    image_size,
                }
            })
            .collect();
        let s = longterm::precision_recall(&seqs).unwrap();
        let e = &exp["depthtrack"][t];
        assert_eq!(s.thresholds.len() as u64, e["n_thresholds"].as_u64().unwrap());
        check(&format!("DepthTrack {t} precision"), s.precision, &e["precision"]);
        check(&format!("DepthTrack {t} recall"), s.recall, &e["recall"]);
        check(&format!("DepthTrack {t} F-score"), s.f_score, &e["f_score"]);
    }
}
