//! The `patrack` binary end to end.

mod common;

use common::patrack;

#[test]
fn info_reports_the_libtorch_version_and_cuda_state() {
    let (ok, stdout, _) = patrack(&["info"]);
    assert!(ok);
    println!("{stdout}");
    assert!(stdout.contains("libtorch: 2.11.0"), "{stdout}");
    // This machine has no GPU and the CPU build of libtorch.
    let cuda = tch::Cuda::is_available();
    assert!(stdout.contains(&format!("CUDA available: {cuda}")), "{stdout}");
}

#[test]
fn a_missing_gpu_is_an_error_not_a_silent_cpu_run() {
    if tch::Cuda::is_available() {
        return; // only meaningful where there is no GPU
    }
    let (ok, _, stderr) = patrack(&["run", "--device", "cuda", "--config", "tiny", "--out", "/dev/null/x"]);
    assert!(!ok);
    assert!(stderr.contains("CUDA device cuda requested"), "{stderr}");
    let (ok, _, stderr) =
        patrack(&["train", "--stage", "base", "--device", "cuda", "--config", "tiny", "--out", "/dev/null/x"]);
    assert!(!ok);
    assert!(stderr.contains("CUDA device cuda requested"), "{stderr}");
}

#[test]
fn convert_writes_the_official_checkpoint_as_safetensors() {
    let dir = std::env::temp_dir().join(format!("patrack-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("converted.safetensors");
    let input = common::data_path("checkpoint/official_format.pth.tar");
    // The fixture holds 8 tensors, not a whole network: convert without the network check.
    let (ok, stdout, stderr) = patrack(&["convert", input.to_str().unwrap(), out.to_str().unwrap(), "--no-check"]);
    assert!(ok, "{stdout}{stderr}");
    let expected = common::load_golden("checkpoint/official_format.expected.safetensors");
    let got = common::load_golden_path(&out);
    assert_eq!(got.len(), expected.len());
    for (k, v) in &expected {
        assert!(got[k].equal(v), "{k}");
    }
    // With the check, the same file is rejected, each problem named with both shapes.
    let (ok, _, stderr) = patrack(&["convert", input.to_str().unwrap(), out.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("shape mismatch for backbone.blocks.0.attn.qkv.weight: model [2304, 768], file [24, 8]"),
        "{stderr}"
    );
    // The list is capped; the rest is counted by kind.
    assert!(stderr.contains("missing key backbone.blocks.0.adap2_t.proj.weight"), "{stderr}");
    assert!(stderr.contains("... and 430 more: 430 missing, 0 unexpected, 0 mis-shaped"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_tracks_the_sample_sequence_and_writes_results() {
    let dir = std::env::temp_dir().join(format!("patrack-run-{}", std::process::id()));
    let seq = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample_rgbt");
    let (ok, stdout, stderr) = patrack(&["run", "--sequence", seq, "--out", dir.to_str().unwrap(), "--config", "tiny"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("deterministic test weights"), "the demo must say its weights are untrained");
    let csv = std::fs::read_to_string(dir.join("boxes.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8);
    assert!(csv.lines().nth(1).unwrap().starts_with("1,128.00,92.00,36.00,28.00"));
    let sheet = image::open(dir.join("summary.png")).unwrap();
    assert_eq!((sheet.width(), sheet.height()), (4 * 2 * 320, 2 * 240));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn saved_weights_load_back_identically_with_their_configuration() {
    let dir = std::env::temp_dir().join(format!("patrack-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny.safetensors");
    let (ok, stdout, stderr) = patrack(&["init-weights", path.to_str().unwrap(), "--config", "tiny"]);
    assert!(ok, "{stdout}{stderr}");
    // The file records its configuration: loading with the vit_base fallback still builds tiny.
    let loaded = patrack::model::load_file(
        &path,
        Some(patrack::model::ModelConfig::vit_base()),
        tch::Device::Cpu,
        patrack::device::Precision::Fp32,
    )
    .unwrap();
    assert_eq!(loaded.cfg, patrack::model::ModelConfig::tiny());
    let mut reference = patrack::model::PATrack::new(
        patrack::model::ModelConfig::tiny(),
        tch::Device::Cpu,
        patrack::device::Precision::Fp32,
    )
    .unwrap();
    reference.fill_hashed();
    let a = loaded.vs.variables();
    for (k, v) in reference.vs.variables() {
        assert!(a[&k].equal(&v), "{k}");
    }
    // bf16 loading converts in the copy.
    let bf16 = patrack::model::load_file(&path, None, tch::Device::Cpu, patrack::device::Precision::Bf16).unwrap();
    assert!(bf16.vs.variables().values().all(|v| v.kind() == tch::Kind::BFloat16));
    std::fs::remove_dir_all(&dir).ok();
}

/// `patrack_node` is built in every configuration, so a colcon build with a comma-separated
/// feature list installs it; without the `ros` feature it says how to build the real node.
#[cfg(not(feature = "ros"))]
#[test]
fn replay_tracks_several_initial_boxes_by_id_with_max_targets() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-multi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let bag = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ros/sample_mcap");
    let args = [
        "replay",
        bag,
        "--rgb-topic",
        "/camera/rgb/image_raw",
        "--aux-topic",
        "/camera/thermal/image_raw",
        "--max-interval-s",
        "0.01",
        "--init",
        "square:8,14,12,12",
        "--init",
        "corner:40,30,10,10",
        "--out",
        out.to_str().unwrap(),
    ];
    // Two boxes need two target slots.
    let (ok, stdout, stderr) = patrack(&args);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("2 --init boxes with ids track several targets: pass --max-targets N (N >= 2)"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = patrack(&[&args[..], &["--max-targets", "2"]].concat());
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("replayed 8 frame pairs"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("tracks.csv")).unwrap();
    let ids: Vec<&str> = csv.lines().skip(1).map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(ids.len(), 16, "{csv}");
    assert!(ids.chunks(2).all(|c| c == ["square", "corner"]), "{csv}");
    // A third box does not fit two slots.
    let (ok, _, stderr) = patrack(&[&args[..], &["--max-targets", "2", "--init", "x:1,1,5,5", "--force"]].concat());
    assert!(!ok);
    assert!(stderr.contains("3 initial boxes need max_targets >= 3, got 2"), "{stderr}");
}

#[test]
fn patrack_node_without_ros_says_how_to_build_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patrack_node")).output().expect("running patrack_node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--features ros") && stderr.contains("patrack node"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
}

/// OSTrack's checkpoint format (`tests/data/checkpoint/ostrack_tiny_ep0300.pth.tar`, written by
/// torch in OSTrack's trainer layout, no configuration recorded) runs as the RGB-only tracker in
/// every command that takes a model, with no configuration flag, and says what it detected.
mod ostrack_checkpoint {
    use super::{common, patrack};

    const DETECTED: &str = "detected an OSTrack (RGB-only) checkpoint: ViT width 64, 4 blocks, 2 heads";

    fn model() -> String {
        common::data_path("checkpoint/ostrack_tiny_ep0300.pth.tar").to_string_lossy().into_owned()
    }

    fn out_dir(name: &str) -> std::path::PathBuf {
        let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-ostrack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn check(what: &str, (ok, stdout, stderr): (bool, String, String)) -> String {
        assert!(ok, "{what}: {stdout}{stderr}");
        assert!(stderr.contains(DETECTED), "{what}: {stderr}");
        assert!(stderr.contains("the aux stream is not used"), "{what}: {stderr}");
        stdout
    }

    #[test]
    fn run() {
        let out = out_dir("run");
        let seq = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample_rgbt");
        let stdout =
            check("run", patrack(&["run", "--sequence", seq, "--model", &model(), "--out", out.to_str().unwrap()]));
        assert!(!stdout.contains("deterministic test weights"), "{stdout}");
        let csv = std::fs::read_to_string(out.join("boxes.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 8);
    }

    #[test]
    fn replay() {
        let out = out_dir("replay");
        let bag = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ros/sample_mcap");
        let args = ["replay", bag, "--rgb-topic", "/camera/rgb/image_raw", "--aux-topic", "/camera/thermal/image_raw"];
        let more =
            ["--init", "8,14,12,12", "--max-interval-s", "0.01", "--model", &model(), "--out", out.to_str().unwrap()];
        let stdout = check("replay", patrack(&[&args[..], &more[..]].concat()));
        assert!(stdout.contains("replayed 8 frame pairs"), "{stdout}");
    }

    #[test]
    fn eval() {
        let out = out_dir("eval");
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
        let args = ["eval", "--dataset", "lasher", "--root", root, "--model", &model(), "--out", out.to_str().unwrap()];
        let stdout = check("eval", patrack(&args));
        assert!(stdout.contains("| patrack |"), "{stdout}");
        let result = std::fs::read_to_string(out.join("patrack/sample_rgbt.txt")).unwrap();
        assert_eq!(result.lines().count(), 8);
    }

    #[test]
    fn bench() {
        // The measuring child process loads the model; the table names the detected network.
        let args = [
            "bench",
            "--model",
            &model(),
            "--precisions",
            "fp32",
            "--runs",
            "2",
            "--warmup",
            "1",
            "--frame",
            "320x240",
        ];
        let (ok, stdout, stderr) = patrack(&args);
        assert!(ok, "{stdout}{stderr}");
        assert!(stdout.contains("| cpu | fp32 | tiny rgb-only | eager |"), "{stdout}");
        // With OSTrack's candidate elimination (keep 0.7 in blocks 1, 2, 3 of 4).
        let (ok, stdout, stderr) = patrack(&[&args[..], &["--candidate-elimination", "0.7"]].concat());
        assert!(ok, "{stdout}{stderr}");
        assert!(stdout.contains("| cpu | fp32 | tiny rgb-only CE 0.7@1,0.7@2,0.7@3 | eager |"), "{stdout}");
    }

    #[test]
    fn candidate_elimination_runs_on_it_and_is_refused_for_patrack() {
        let out = out_dir("run-ce");
        let seq = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample_rgbt");
        let run = ["run", "--sequence", seq, "--out", out.to_str().unwrap(), "--candidate-elimination", "0.7"];
        let stdout = check("run --candidate-elimination", patrack(&[&run[..], &["--model", &model()]].concat()));
        assert!(stdout.contains("mean IoU"), "{stdout}");
        let csv = std::fs::read_to_string(out.join("boxes.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 8);
        // A PATrack (two-stream) network: one message naming the option and the reason.
        let (ok, _, stderr) = patrack(&[&run[..], &["--config", "tiny"]].concat());
        assert!(!ok);
        assert!(stderr.contains("--candidate-elimination") && stderr.contains("RGB-only"), "{stderr}");
    }

    #[test]
    fn train_adapt_starts_from_it() {
        let out = out_dir("train");
        let args = ["train", "--stage", "adapt", "--modality", "thermal", "--base", &model()];
        let more = ["--steps", "2", "--batch", "2", "--synth-sequences", "1", "--out", out.to_str().unwrap()];
        check("train", patrack(&[&args[..], &more[..]].concat()));
        // The adapted network: the full tiny PATrack whose base variables are the checkpoint's.
        let trained = patrack::model::load::load_file(
            &out.join("model.safetensors"),
            None,
            tch::Device::Cpu,
            patrack::device::Precision::Fp32,
        )
        .unwrap();
        assert_eq!(trained.cfg, patrack::model::ModelConfig::tiny());
        let base = patrack::model::load::load_file(
            std::path::Path::new(&model()),
            None,
            tch::Device::Cpu,
            patrack::device::Precision::Fp32,
        )
        .unwrap();
        let trained_vars = trained.vs.variables();
        let base_vars = base.vs.variables();
        for (key, t) in &base_vars {
            assert!(trained_vars[key].equal(t), "{key}: the frozen base changed");
        }
        assert!(trained_vars.keys().any(|k| k.contains("adap")), "the adapters were built");
    }
}
