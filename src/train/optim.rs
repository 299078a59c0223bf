//! AdamW and gradient-norm clipping as PyTorch computes them (`torch.optim.AdamW`'s single-tensor
//! path and `torch.nn.utils.clip_grad_norm_`, torch 2.4), with the moments held here: tch's
//! optimizer keeps them inside libtorch where no checkpoint can reach them, and an exact resume
//! needs them. `tests/train_recipe.rs` checks every step against PyTorch's own optimizer.

use std::collections::{BTreeMap, HashMap};

use tch::{Kind, Tensor};

/// AdamW over named tensors, `torch.optim.AdamW` with betas (0.9, 0.999), eps 1e-8.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<Param>,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

#[derive(Debug)]
struct Param {
    name: String,
    var: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// Steps taken with a gradient (PyTorch's per-parameter `step`).
    steps: u64,
}

/// A saved optimizer state that does not fit the parameters.
#[derive(Debug, thiserror::Error)]
pub enum OptimStateError {
    #[error("the optimizer state has no {0}")]
    Missing(String),
    #[error("{name} has shape {found:?} in the optimizer state; the parameter is {expected:?}")]
    Shape { name: String, found: Vec<i64>, expected: Vec<i64> },
    #[error("the optimizer state holds {0}, which is not a trainable parameter")]
    Unknown(String),
    #[error("the optimizer state's step counts do not fit: {0}")]
    Steps(String),
}

impl AdamW {
    /// Over `params` in the given order (the order of the clipping norm's sum), zero moments.
    pub fn new(params: Vec<(String, Tensor)>, weight_decay: f64) -> Self {
        let params = params
            .into_iter()
            .map(|(name, var)| {
                let zeros = || var.zeros_like().detach();
                Param { exp_avg: zeros(), exp_avg_sq: zeros(), name, var, steps: 0 }
            })
            .collect();
        Self { params, weight_decay, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }

    /// Over the trainable variables of `vs`, in name order.
    pub fn for_trainable(vs: &tch::nn::VarStore, weight_decay: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, v)| v.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Self::new(vars, weight_decay)
    }

    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            let mut g = p.var.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// `torch.nn.utils.clip_grad_norm_(params, max_norm)`: the 2-norm of the per-tensor gradient
    /// norms; every gradient multiplied by `min(1, max_norm / (total + 1e-6))` computed in f32 as
    /// torch does. Returns the total norm (before clipping).
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let _guard = tch::no_grad_guard();
        let grads: Vec<Tensor> = self.params.iter().map(|p| p.var.grad()).filter(Tensor::defined).collect();
        if grads.is_empty() {
            return 0.0;
        }
        // `norm()` is libtorch's 2-norm over all elements (`linalg_vector_norm`), as `_foreach_norm`.
        let norms: Vec<Tensor> = grads.iter().map(Tensor::norm).collect();
        let total = Tensor::stack(&norms, 0).norm();
        // torch: `max_norm / (total + 1e-6)` is `reciprocal(total + 1e-6) * max_norm`.
        let coef = ((&total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
        for mut g in grads {
            let _ = g.g_mul_(&coef);
        }
        total.double_value(&[])
    }

    /// One AdamW step at learning rate `lr` for every parameter with a gradient, as torch's
    /// `_single_tensor_adamw`: decoupled decay, `lerp` of the first moment, `addcmul` of the
    /// second, bias corrections in f64, `addcdiv` of the update.
    pub fn step(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        let (beta1, beta2) = (self.beta1, self.beta2);
        for p in &mut self.params {
            let grad = p.var.grad();
            if !grad.defined() {
                continue;
            }
            p.steps += 1;
            let step = p.steps as f64;
            let _ = p.var.g_mul_scalar_(1.0 - lr * self.weight_decay);
            let _ = p.exp_avg.lerp_(&grad, 1.0 - beta1);
            // addcmul_(grad, grad, value = 1 - beta2): `self + (value * grad) * grad`, which
            // PyTorch's compiled kernels evaluate with a fused multiply-add (one rounding of the
            // product and the sum): emulated in f64, where the f32 product is exact.
            let _ = p.exp_avg_sq.g_mul_scalar_(beta2);
            let scaled = (&grad * (1.0 - beta2)).to_kind(Kind::Double);
            let fused = p.exp_avg_sq.to_kind(Kind::Double) + scaled * grad.to_kind(Kind::Double);
            p.exp_avg_sq.copy_(&fused.to_kind(p.exp_avg_sq.kind()));
            let bias_correction1 = 1.0 - beta1.powf(step);
            let bias_correction2 = 1.0 - beta2.powf(step);
            let step_size = lr / bias_correction1;
            let denom = (p.exp_avg_sq.sqrt() / bias_correction2.sqrt()) + self.eps;
            // addcdiv_(exp_avg, denom, value = -step_size): self + (value * exp_avg) / denom.
            let _ = p.var.g_add_(&((&p.exp_avg * -step_size) / &denom));
        }
    }

    /// The moments as named tensors (`exp_avg.<name>`, `exp_avg_sq.<name>`) and the per-parameter
    /// step counts, for a checkpoint.
    pub fn state(&self) -> (Vec<(String, Tensor)>, BTreeMap<String, u64>) {
        let mut tensors = Vec::with_capacity(2 * self.params.len());
        let mut steps = BTreeMap::new();
        for p in &self.params {
            tensors.push((format!("exp_avg.{}", p.name), p.exp_avg.shallow_clone()));
            tensors.push((format!("exp_avg_sq.{}", p.name), p.exp_avg_sq.shallow_clone()));
            steps.insert(p.name.clone(), p.steps);
        }
        (tensors, steps)
    }

    /// Restores a [`state`](Self::state): every parameter's two moments (exact shapes) and step
    /// count, and nothing else.
    pub fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        steps: &BTreeMap<String, u64>,
    ) -> Result<(), OptimStateError> {
        let _guard = tch::no_grad_guard();
        for name in tensors.keys() {
            let param = name.strip_prefix("exp_avg_sq.").or_else(|| name.strip_prefix("exp_avg."));
            if !param.is_some_and(|n| self.params.iter().any(|p| p.name == n)) {
                return Err(OptimStateError::Unknown(name.clone()));
            }
        }
        if steps.len() != self.params.len() {
            return Err(OptimStateError::Steps(format!(
                "{} step counts for {} parameters",
                steps.len(),
                self.params.len()
            )));
        }
        for p in &mut self.params {
            for (prefix, moment) in [("exp_avg", &mut p.exp_avg), ("exp_avg_sq", &mut p.exp_avg_sq)] {
                let key = format!("{prefix}.{}", p.name);
                let t = tensors.get(&key).ok_or_else(|| OptimStateError::Missing(key.clone()))?;
                if t.size() != moment.size() {
                    return Err(OptimStateError::Shape { name: key, found: t.size(), expected: moment.size() });
                }
                moment.copy_(t);
            }
            p.steps = *steps.get(&p.name).ok_or_else(|| OptimStateError::Missing(format!("step of {}", p.name)))?;
        }
        Ok(())
    }
}
