//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use tch::{Kind, Tensor};

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// All tensors of a safetensors fixture by name.
pub fn load_golden(name: &str) -> HashMap<String, Tensor> {
    let path = data_path(name);
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())).into_iter().collect()
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
