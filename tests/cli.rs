//! The `patrack` binary end to end.

mod common;

use std::process::Command;

fn patrack(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_patrack")).args(args).output().expect("running patrack");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
fn patrack_node_without_ros_says_how_to_build_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_patrack_node")).output().expect("running patrack_node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--features ros") && stderr.contains("patrack node"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
}
