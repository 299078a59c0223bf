//! The fuzz targets' bodies; `fuzz_targets/*.rs` are one-line libFuzzer wrappers and
//! `tests/fuzz_smoke.rs` runs the same functions over the corpora without libFuzzer.
#[path = "targets.rs"]
pub mod targets;
