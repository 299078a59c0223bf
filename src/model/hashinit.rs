//! The deterministic weight rule of the golden test vectors (golden README section 1).
//!
//! No trained PATrack weights are published, so parity with the official module is proven on
//! weights that both sides can compute from each key's name: a 32-bit hash of (key, flat index)
//! turned into a uniform value, scaled per kind of tensor. The demo falls back to these weights
//! until a trained model is given.

/// FNV-1a over the UTF-8 bytes of `s`.
pub fn fnv1a32(s: &str) -> u32 {
    s.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619))
}

/// MurmurHash3's 32-bit finaliser.
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    h
}

/// The uniform value in [0, 1) of element `i` of the tensor `key` (exact in f64).
pub fn hash_uniform(key_hash: u32, i: u64) -> f64 {
    let x = key_hash ^ (i as u32).wrapping_mul(0x9E37_79B1);
    (fmix32(x) >> 8) as f64 / 16_777_216.0
}

/// Values of the state-dict entry `key` with `shape`, by the rule's first matching line.
/// Returns `None` for `num_batches_tracked` (an int64 zero scalar).
pub fn hash_weights(key: &str, shape: &[i64]) -> Option<Vec<f32>> {
    if key.ends_with("num_batches_tracked") {
        return None;
    }
    let numel: i64 = shape.iter().product();
    let kh = fnv1a32(key);
    let rule: Box<dyn Fn(f64) -> f64> = if key.ends_with("running_var") {
        Box::new(|u| 0.5 + u)
    } else if key.ends_with("running_mean") || key.contains("pos_embed") || key.contains("cls_token") {
        Box::new(|u| 0.2 * (u - 0.5))
    } else if shape.len() == 1 && key.ends_with(".weight") {
        Box::new(|u| 1.0 + 0.2 * (u - 0.5))
    } else if shape.len() <= 1 {
        Box::new(|u| 0.2 * (u - 0.5))
    } else {
        let fan_in = (numel / shape[0]) as f64;
        let scale = (3.0 / fan_in).sqrt();
        Box::new(move |u| (2.0 * u - 1.0) * scale)
    };
    Some((0..numel as u64).map(|i| rule(hash_uniform(kh, i)) as f32).collect())
}

/// Fills every variable of `vs` (named by state-dict keys) by the rule.
pub fn fill_var_store(vs: &tch::nn::VarStore) {
    let _guard = tch::no_grad_guard();
    for (key, mut var) in vs.variables() {
        let shape = var.size();
        if let Some(values) = hash_weights(&key, &shape) {
            var.copy_(&tch::Tensor::from_slice(&values).reshape(&shape));
        }
    }
}

/// The hashed network inputs (`input.z`, `input.x`, ...): uniform in [-2, 2).
pub fn hash_input(key: &str, numel: usize) -> Vec<f32> {
    let kh = fnv1a32(key);
    (0..numel as u64).map(|i| (2.0 * (2.0 * hash_uniform(kh, i) - 1.0)) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples_of_the_golden_readme() {
        let k = "backbone.blocks.3.highfuseadapter1.obj_fuse.linearcat.weight";
        assert_eq!(fnv1a32(k), 0xC7DB_C8C6);
        assert_eq!(fmix32(0xC7DB_C8C6), 0x22BD_0143);
        let w = hash_weights(k, &[192, 384, 1, 1]).unwrap();
        assert_eq!(w[0].to_bits(), 0xBD83_E458);
        assert_eq!(w[1].to_bits(), 0x3DB1_7FDC);
        let q = hash_weights("backbone.blocks.0.attn.qkv.weight", &[2304, 768]).unwrap();
        assert_eq!(q[0].to_bits(), 0xBD3B_C7E2);
        let n = hash_weights("backbone.blocks.0.norm1.weight", &[768]).unwrap();
        assert_eq!(n[0].to_bits(), 0x3F77_8C1B);
        assert_eq!(hash_input("input.z", 2)[1].to_bits(), 0xBFC6_BB16);
    }
}
