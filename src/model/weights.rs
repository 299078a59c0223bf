//! The one strict weight loader: every variable of the network must come from the file with its
//! exact shape; every key of the file must be a variable or a documented dead entry. All problems
//! are collected and reported together, each naming the key and both shapes.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use tch::{nn, Tensor};

use super::config::ModelConfig;

/// A state-dict problem found while loading.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyProblem {
    Missing { key: String, expected: Vec<i64> },
    Unexpected { key: String, shape: Vec<i64> },
    Shape { key: String, expected: Vec<i64>, found: Vec<i64> },
    NotFloat { key: String, kind: String },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Missing { key, expected } => write!(f, "missing key {key} (expected shape {expected:?})"),
            KeyProblem::Unexpected { key, shape } => write!(f, "unexpected key {key} (shape {shape:?})"),
            KeyProblem::Shape { key, expected, found } => {
                write!(f, "shape mismatch for {key}: model {expected:?}, file {found:?}")
            }
            KeyProblem::NotFloat { key, kind } => write!(f, "key {key} holds {kind}, expected a floating-point tensor"),
        }
    }
}

/// Errors of the weight loader.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("the weights do not fit the network ({} problem(s)):\n  {}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Mismatch(Vec<KeyProblem>),
    #[error("copying {key}: {source}")]
    Copy { key: String, source: tch::TchError },
}

/// Whether `key` is an entry of the official state dict that never influences the output
/// (9.57 M parameters in ViT-B, spec section 9): accepted in a file, never required.
pub fn is_dead_key(key: &str, cfg: &ModelConfig) -> bool {
    const ALWAYS: [&str; 4] = ["backbone.cls_token", "backbone.pos_embed", "norm1.weight", "norm1.bias"];
    if ALWAYS.contains(&key) || key.ends_with("num_batches_tracked") {
        return true;
    }
    if key.ends_with(".obj_fuse.gamma1") || key.ends_with(".obj_fuse.gamma2") {
        return true;
    }
    let Some(rest) = key.strip_prefix("backbone.blocks.") else { return false };
    let Some((index, sub)) = rest.split_once('.') else { return false };
    let Ok(index) = index.parse::<usize>() else { return false };
    if index >= cfg.depth {
        return false;
    }
    let mixer = sub.starts_with("adap_t.") || sub.starts_with("adap2_t.");
    let entangled = sub.starts_with("highfuseadapter1.")
        || sub.starts_with("highfuseadapter2.")
        || sub.starts_with("norml1.")
        || sub.starts_with("norml2.");
    if cfg.is_entangled(index) {
        mixer
    } else {
        entangled
    }
}

/// What a successful load did.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub loaded: usize,
    pub dead_ignored: usize,
}

/// Copies `tensors` into the variables of `vs` (converting to each variable's device and kind in
/// the one copy), after checking the whole key set both ways.
pub fn load_state_dict<I>(vs: &nn::VarStore, cfg: &ModelConfig, tensors: I) -> Result<LoadReport, WeightError>
where
    I: IntoIterator<Item = (String, Tensor)>,
{
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut to_copy = Vec::new();
    let mut report = LoadReport::default();
    for (key, t) in tensors {
        match vars.get(&key) {
            Some(var) => {
                seen.insert(key.clone());
                if var.size() != t.size() {
                    problems.push(KeyProblem::Shape { key, expected: var.size(), found: t.size() });
                } else if !t.is_floating_point() {
                    problems.push(KeyProblem::NotFloat { key, kind: format!("{:?}", t.kind()) });
                } else {
                    to_copy.push((key, t));
                }
            }
            None if is_dead_key(&key, cfg) => report.dead_ignored += 1,
            None => problems.push(KeyProblem::Unexpected { key, shape: t.size() }),
        }
    }
    for (key, var) in &vars {
        if !seen.contains(key) {
            problems.push(KeyProblem::Missing { key: key.clone(), expected: var.size() });
        }
    }
    if !problems.is_empty() {
        return Err(WeightError::Mismatch(problems));
    }
    let _guard = tch::no_grad_guard();
    for (key, src) in to_copy {
        let mut var = vars[&key].shallow_clone();
        var.f_copy_(&src).map_err(|source| WeightError::Copy { key: key.clone(), source })?;
        report.loaded += 1;
    }
    Ok(report)
}
