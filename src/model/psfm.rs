//! The modality-entangled adapter `PSFM` with its `GEFM` cross-attention
//! (`attn_adapt_blocks.py` l.9-71). Each position of a modality attends with its own key over a
//! query map built from both modalities, aggregates its own values, and adds the *other*
//! modality's down-projected feature. The attention is unscaled, as in the official code.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::config::ModelConfig;

/// `obj_fuse` (class `GEFM`): 1x1 convs without bias. `gamma1`/`gamma2` exist in checkpoints but
/// are unused by the forward pass, so they are not built.
#[derive(Debug)]
pub struct Gefm {
    linear1: nn::Conv2D,
    linear2: nn::Conv2D,
    linear3: nn::Conv2D,
    linear4: nn::Conv2D,
    linearcat: nn::Conv2D,
}

/// Outputs for the two modalities.
#[derive(Debug)]
pub struct PsfmOutput {
    pub rgb: Tensor,
    pub aux: Tensor,
}

impl Gefm {
    fn new(p: nn::Path, dim: i64) -> Self {
        let c = nn::ConvConfig { bias: false, ..Default::default() };
        Self {
            linear1: nn::conv2d(&p / "linear1", dim, dim, 1, c),
            linear2: nn::conv2d(&p / "linear2", dim, dim, 1, c),
            linear3: nn::conv2d(&p / "linear3", dim, dim, 1, c),
            linear4: nn::conv2d(&p / "linear4", dim, dim, 1, c),
            linearcat: nn::conv2d(&p / "linearcat", 2 * dim, dim, 1, c),
        }
    }

    /// `rd`, `td`: (B, D, h, w) -> R_rgb, R_aux (B, D, h, w)
    fn forward(&self, rd: &Tensor, td: &Tensor) -> PsfmOutput {
        let shape = rd.size();
        let q = self.linearcat.forward(&Tensor::cat(&[rd, td], 1)).flatten(2, -1); // (B, D, L)
        let attend = |k: Tensor, v: Tensor| {
            // A[i, j] = softmax_j(sum_c K[c, i] Q[c, j]): (B, L, L); softmax in f32 as PyTorch
            // autocast does.
            let a = k.flatten(2, -1).transpose(1, 2).bmm(&q).softmax(-1, Kind::Float).to_kind(q.kind());
            v.flatten(2, -1).bmm(&a.transpose(1, 2)).reshape(shape.as_slice()) // (B, D, h, w)
        };
        let rgb = attend(self.linear1.forward(rd), self.linear2.forward(rd)) + td;
        let aux = attend(self.linear3.forward(td), self.linear4.forward(td)) + rd;
        PsfmOutput { rgb, aux }
    }
}

/// `highfuseadapter1` / `highfuseadapter2` (class `PSFM`).
#[derive(Debug)]
pub struct Psfm {
    down: nn::Conv2D,
    obj_fuse: Gefm,
    up: nn::Conv2D,
}

impl Psfm {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let c = nn::ConvConfig { bias: false, ..Default::default() };
        Self {
            down: nn::conv2d(&p / "down", cfg.embed_dim, cfg.psfm_dim, 1, c),
            obj_fuse: Gefm::new(&p / "obj_fuse", cfg.psfm_dim),
            up: nn::conv2d(&p / "up", cfg.psfm_dim, cfg.embed_dim, 1, c),
        }
    }

    /// `r`, `t`: (B, C, h, w) RGB and aux maps -> (B, C, h, w) each.
    pub fn forward(&self, r: &Tensor, t: &Tensor) -> PsfmOutput {
        let fused = self.obj_fuse.forward(&self.down.forward(r), &self.down.forward(t));
        PsfmOutput { rgb: self.up.forward(&fused.rgb), aux: self.up.forward(&fused.aux) }
    }
}
