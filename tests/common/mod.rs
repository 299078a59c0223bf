//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use tch::{Kind, Tensor};

/// A fixture; `PATRACK_TEST_DATA` overrides the folder (for test binaries run on another machine).
pub fn data_path(name: &str) -> PathBuf {
    match std::env::var_os("PATRACK_TEST_DATA") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name),
    }
}

/// The device the parity tests run on: `PATRACK_TEST_DEVICE` (`cpu` by default, `cuda` in the GPU
/// check script). On CUDA, TF32 is switched off so fp32 results keep fp32 accuracy.
pub fn test_device() -> tch::Device {
    let name = std::env::var("PATRACK_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = patrack::device::parse_device(&name).unwrap_or_else(|e| panic!("PATRACK_TEST_DEVICE: {e}"));
    if device.is_cuda() {
        patrack::device::set_tf32(false);
        assert!(!patrack::device::tf32_cudnn(), "TF32 must be off for fp32 parity");
    }
    println!("test device: {name}");
    device
}

/// All tensors of a safetensors fixture by name.
pub fn load_golden(name: &str) -> HashMap<String, Tensor> {
    load_golden_path(&data_path(name))
}

/// All tensors of a safetensors file by name.
pub fn load_golden_path(path: &std::path::Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())).into_iter().collect()
}

/// Max |a - b| over all elements, in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape mismatch");
    (a.to_kind(Kind::Double).to_device(tch::Device::Cpu) - b.to_kind(Kind::Double).to_device(tch::Device::Cpu))
        .abs()
        .max()
        .double_value(&[])
}

/// Asserts max |a - b| <= tol and prints the measured difference next to the tolerance.
pub fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f64) {
    let d = max_abs_diff(a, b);
    println!("{what}: max abs diff {d:.3e} (tolerance {tol:.0e})");
    assert!(d <= tol, "{what}: max abs diff {d:e} > {tol:e}");
}

/// Runs the `patrack` binary: (success, stdout, stderr).
pub fn patrack(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patrack")).args(args).output().expect("running patrack");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
