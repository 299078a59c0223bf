//! The one strict weight loader: every variable of the network must come from the file with its
//! exact shape; every key of the file must be a variable or a documented dead entry. All problems
//! are collected and reported together, each naming the key and both shapes.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    #[error("the weights do not fit the network ({} problem(s)):\n  {}", .0.len(), summary(.0))]
    Mismatch(Vec<KeyProblem>),
    #[error("copying {key}: {cause}")]
    Copy { key: String, cause: tch::TchError },
}

/// Most problems listed one per line; the rest are counted by kind.
const MAX_LISTED_PROBLEMS: usize = 20;

fn summary(problems: &[KeyProblem]) -> String {
    let mut lines: Vec<String> = problems.iter().take(MAX_LISTED_PROBLEMS).map(|p| p.to_string()).collect();
    let rest = &problems[problems.len().min(MAX_LISTED_PROBLEMS)..];
    if !rest.is_empty() {
        let count = |f: fn(&KeyProblem) -> bool| rest.iter().filter(|p| f(p)).count();
        lines.push(format!(
            "... and {} more: {} missing, {} unexpected, {} mis-shaped, {} not floating point",
            rest.len(),
            count(|p| matches!(p, KeyProblem::Missing { .. })),
            count(|p| matches!(p, KeyProblem::Unexpected { .. })),
            count(|p| matches!(p, KeyProblem::Shape { .. })),
            count(|p| matches!(p, KeyProblem::NotFloat { .. })),
        ));
    }
    lines.join("\n  ")
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

/// One entry of a state dict as the loader sees it before any data is touched.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    pub key: String,
    pub shape: Vec<i64>,
    pub is_float: bool,
}

/// Checks the key set both ways and every shape, collecting all problems. Returns the report
/// and, for each entry, whether it is to be copied (`false`: a dead key to skip).
pub fn check_entries(
    vs: &nn::VarStore,
    cfg: &ModelConfig,
    entries: &[EntryInfo],
) -> Result<(LoadReport, Vec<bool>), WeightError> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut report = LoadReport::default();
    let mut copy = Vec::with_capacity(entries.len());
    for e in entries {
        let mut wanted = false;
        match vars.get(&e.key) {
            Some(var) => {
                if !seen.insert(e.key.clone()) {
                    problems.push(KeyProblem::Unexpected {
                        key: format!("{} (a second time)", e.key),
                        shape: e.shape.clone(),
                    });
                } else if var.size() != e.shape {
                    problems.push(KeyProblem::Shape {
                        key: e.key.clone(),
                        expected: var.size(),
                        found: e.shape.clone(),
                    });
                } else if !e.is_float {
                    problems.push(KeyProblem::NotFloat { key: e.key.clone(), kind: "an integer or bool dtype".into() });
                } else {
                    wanted = true;
                }
            }
            None if is_dead_key(&e.key, cfg) => report.dead_ignored += 1,
            None => problems.push(KeyProblem::Unexpected { key: e.key.clone(), shape: e.shape.clone() }),
        }
        copy.push(wanted);
    }
    for (key, var) in &vars {
        if !seen.contains(key) {
            problems.push(KeyProblem::Missing { key: key.clone(), expected: var.size() });
        }
    }
    if problems.is_empty() {
        Ok((report, copy))
    } else {
        Err(WeightError::Mismatch(problems))
    }
}

/// Copies one checked tensor into the variable `key` of `vars` (from `VarStore::variables`);
/// device and dtype are converted by the copy.
pub fn copy_into(vars: &HashMap<String, Tensor>, key: &str, src: &Tensor) -> Result<(), WeightError> {
    let _guard = tch::no_grad_guard();
    let mut var = vars
        .get(key)
        .ok_or_else(|| WeightError::Mismatch(vec![KeyProblem::Unexpected { key: key.into(), shape: src.size() }]))?
        .shallow_clone();
    var.f_copy_(src).map_err(|cause| WeightError::Copy { key: key.into(), cause })
}

/// Copies `tensors` into the variables of `vs` after checking the whole key set both ways.
pub fn load_state_dict<I>(vs: &nn::VarStore, cfg: &ModelConfig, tensors: I) -> Result<LoadReport, WeightError>
where
    I: IntoIterator<Item = (String, Tensor)>,
{
    let tensors: Vec<(String, Tensor)> = tensors.into_iter().collect();
    let entries: Vec<EntryInfo> = tensors
        .iter()
        .map(|(k, t)| EntryInfo { key: k.clone(), shape: t.size(), is_float: t.is_floating_point() })
        .collect();
    let (mut report, copy) = check_entries(vs, cfg, &entries)?;
    let vars = vs.variables();
    for ((key, t), wanted) in tensors.iter().zip(copy) {
        if wanted {
            copy_into(&vars, key, t)?;
            report.loaded += 1;
        }
    }
    Ok(report)
}
