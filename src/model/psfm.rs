//! The modality-entangled adapter `PSFM` with its `GEFM` cross-attention
//! (`attn_adapt_blocks.py` l.9-71). Each position of a modality attends with its own key over a
//! query map built from both modalities, aggregates its own values, and adds the *other*
//! modality's down-projected feature. The attention is unscaled, as in the official code.

use tch::nn;
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

/// A 1x1 convolution applied to tokens: (B, L, Cin) -> (B, L, Cout). The same sum over channels
/// as the convolution on (B, Cin, h, w) maps, without the layout changes around it and as one
/// matrix product (the conv path cost about twice as much at these sizes).
pub(crate) fn pointwise(conv: &nn::Conv2D, tokens: &Tensor) -> Tensor {
    let w = conv.ws.flatten(1, -1); // (Cout, Cin, 1, 1) -> (Cout, Cin)
    tokens.linear(&w, conv.bs.as_ref())
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

    /// `rd`, `td`: (B, L, D) tokens -> R_rgb, R_aux (B, L, D).
    fn forward(&self, rd: &Tensor, td: &Tensor) -> PsfmOutput {
        let q = pointwise(&self.linearcat, &Tensor::cat(&[rd, td], 2)); // (B, L, D)
        let attend = |k: Tensor, v: Tensor| {
            // A[i, j] = softmax_j(sum_c K[i, c] Q[j, c]): (B, L, L); softmax in f32 as PyTorch
            // autocast does. Output token i = sum_j A[i, j] V[j].
            let a = k.bmm(&q.transpose(1, 2)).softmax(-1, Kind::Float).to_kind(q.kind());
            a.bmm(&v)
        };
        let rgb = attend(pointwise(&self.linear1, rd), pointwise(&self.linear2, rd)) + td;
        let aux = attend(pointwise(&self.linear3, td), pointwise(&self.linear4, td)) + rd;
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

    /// `r`, `t`: (B, C, h, w) RGB and aux maps -> (B, C, h, w) each (the official interface).
    pub fn forward(&self, r: &Tensor, t: &Tensor) -> PsfmOutput {
        let shape = r.size();
        let to_tok = |m: &Tensor| m.flatten(2, -1).transpose(1, 2);
        let to_map = |t: Tensor| t.transpose(1, 2).reshape(shape.as_slice());
        let b = shape[0];
        let out = self.forward_tokens(&Tensor::cat(&[to_tok(r), to_tok(t)], 0));
        PsfmOutput { rgb: to_map(out.narrow(0, 0, b)), aux: to_map(out.narrow(0, b, b)) }
    }

    /// The same on tokens of one part (template or search) of both streams: (2B, L, C), RGB in
    /// the first B rows -> (2B, L, C) in the same order. Positions are the map's row-major cells,
    /// which is the token order.
    pub fn forward_tokens(&self, streams: &Tensor) -> Tensor {
        let b = streams.size()[0] / 2;
        let down = pointwise(&self.down, streams); // both streams in one product
        let fused = self.obj_fuse.forward(&down.narrow(0, 0, b), &down.narrow(0, b, b));
        pointwise(&self.up, &Tensor::cat(&[fused.rgb, fused.aux], 0))
    }
}
