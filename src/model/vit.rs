//! The shared ViT-B/16 backbone (OSTrack `vit_ce_adapter.py`): patch embedding, position
//! embeddings, the blocks with their adapters, and the final LayerNorm. The RGB and the auxiliary
//! stream run through the same weights; they are stacked along the batch axis (`[rgb; aux]`,
//! batch 2B) so every shared layer runs once for both.

use tch::nn::{self, Module};
use tch::Tensor;

use super::config::ModelConfig;
use super::mixer::Mixer;
use super::psfm::Psfm;

/// LayerNorm eps of every norm in the backbone (timm/OSTrack use 1e-6, not PyTorch's 1e-5).
pub const LN_EPS: f64 = 1e-6;

pub(crate) fn layer_norm(p: nn::Path, dim: i64) -> nn::LayerNorm {
    nn::layer_norm(p, vec![dim], nn::LayerNormConfig { eps: LN_EPS, ..Default::default() })
}

/// `backbone.patch_embed`: Conv 16x16 stride 16, then tokens in row-major patch order.
#[derive(Debug)]
pub struct PatchEmbed {
    proj: nn::Conv2D,
}

impl PatchEmbed {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let conv = nn::ConvConfig { stride: cfg.patch_size, ..Default::default() };
        Self { proj: nn::conv2d(p / "proj", 3, cfg.embed_dim, cfg.patch_size, conv) }
    }

    /// (B, 3, H, W) -> (B, H/16 * W/16, C)
    pub fn forward(&self, img: &Tensor) -> Tensor {
        self.proj.forward(img).flatten(2, -1).transpose(1, 2)
    }
}

/// `blocks.i.attn`: multi-head self-attention with a fused qkv projection.
#[derive(Debug)]
pub struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
    num_heads: i64,
}

impl Attention {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let c = cfg.embed_dim;
        Self {
            qkv: nn::linear(&p / "qkv", c, 3 * c, Default::default()),
            proj: nn::linear(&p / "proj", c, c, Default::default()),
            num_heads: cfg.num_heads,
        }
    }

    /// (B, N, C) -> (B, N, C). softmax(q k^T / sqrt(d)) v, as the official code computes it
    /// explicitly; SDPA picks a fused kernel for the same math.
    pub fn forward(&self, t: &Tensor) -> Tensor {
        let (b, n, c) = t.size3().expect("tokens are (B, N, C)");
        let h = self.num_heads;
        // (B, N, 3C) -> (3, B, heads, N, head_dim)
        let qkv = self.qkv.forward(t).reshape([b, n, 3, h, c / h]).permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let out = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false);
        // (B, heads, N, head_dim) -> (B, N, C)
        self.proj.forward(&out.transpose(1, 2).reshape([b, n, c]))
    }
}

/// `blocks.i.mlp`: fc1 -> exact (erf) GELU -> fc2.
#[derive(Debug)]
pub struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Mlp {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        Self {
            fc1: nn::linear(&p / "fc1", cfg.embed_dim, cfg.mlp_dim, Default::default()),
            fc2: nn::linear(&p / "fc2", cfg.mlp_dim, cfg.embed_dim, Default::default()),
        }
    }

    pub fn forward(&self, t: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(t).gelu("none"))
    }
}

/// The adapters of one block. Official blocks declare both kinds; only one kind is used per block,
/// so only that kind is built here (the other's weights are dead and the loader skips them).
// Built once per block and never moved on the hot path, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum BlockAdapters {
    /// Modality-dependent adapter after attention (`adap_t`) and after the MLP (`adap2_t`).
    Mixer { adap_t: Mixer, adap2_t: Mixer },
    /// Modality-entangled adapter with its own input norms.
    Entangled(Entangled),
    /// The RGB-only base: the pretrained OSTrack block alone.
    None,
}

/// The PSFM adapters of a block with their input norms.
#[derive(Debug)]
struct Entangled {
    highfuseadapter1: Psfm,
    highfuseadapter2: Psfm,
    norml1: nn::LayerNorm,
    norml2: nn::LayerNorm,
}

/// `backbone.blocks.i` (`CEABlock`), exact order of `attn_adapt_blocks.py` l.171-255.
#[derive(Debug)]
pub struct Block {
    norm1: nn::LayerNorm,
    attn: Attention,
    norm2: nn::LayerNorm,
    mlp: Mlp,
    adapters: BlockAdapters,
    template_feat: i64,
    search_feat: i64,
}

/// Swaps the RGB and aux halves of a stacked (2B, ...) tensor: each stream receives the adapter
/// output computed from the *other* stream.
fn swap_streams(t: &Tensor) -> Tensor {
    let b = t.size()[0] / 2;
    Tensor::cat(&[t.narrow(0, b, b), t.narrow(0, 0, b)], 0)
}

impl Block {
    pub fn new(p: nn::Path, cfg: &ModelConfig, index: usize) -> Self {
        let c = cfg.embed_dim;
        let adapters = if cfg.rgb_only {
            BlockAdapters::None
        } else if cfg.is_entangled(index) {
            BlockAdapters::Entangled(Entangled {
                highfuseadapter1: Psfm::new(&p / "highfuseadapter1", cfg),
                highfuseadapter2: Psfm::new(&p / "highfuseadapter2", cfg),
                norml1: layer_norm(&p / "norml1", c),
                norml2: layer_norm(&p / "norml2", c),
            })
        } else {
            BlockAdapters::Mixer { adap_t: Mixer::new(&p / "adap_t", cfg), adap2_t: Mixer::new(&p / "adap2_t", cfg) }
        };
        Self {
            norm1: layer_norm(&p / "norm1", c),
            attn: Attention::new(&p / "attn", cfg),
            norm2: layer_norm(&p / "norm2", c),
            mlp: Mlp::new(&p / "mlp", cfg),
            adapters,
            template_feat: cfg.template_feat(),
            search_feat: cfg.search_feat(),
        }
    }

    /// `s`: (2B, Lz + Lx, C), RGB stream in the first B rows, aux in the last B.
    /// Both streams read the other's state from before the update (the official `xori`).
    pub fn forward(&self, s: &Tensor) -> Tensor {
        match &self.adapters {
            BlockAdapters::None => {
                let s = s + self.attn.forward(&self.norm1.forward(s));
                &s + self.mlp.forward(&self.norm2.forward(&s))
            }
            BlockAdapters::Mixer { adap_t, adap2_t } => {
                let h = self.norm1.forward(s);
                let s = s + self.attn.forward(&h) + swap_streams(&adap_t.forward(&h));
                let h = self.norm2.forward(&s);
                &s + self.mlp.forward(&h) + swap_streams(&adap2_t.forward(&h))
            }
            BlockAdapters::Entangled(e) => {
                let Entangled { highfuseadapter1, highfuseadapter2, norml1, norml2 } = e;
                // Adapter outputs pass through the block's own norm1/norm2 (official quirk).
                let f = self.entangle(highfuseadapter1, &norml1.forward(s));
                let s = s + self.attn.forward(&self.norm1.forward(s)) + self.norm1.forward(&f);
                let f = self.entangle(highfuseadapter2, &norml2.forward(&s));
                &s + self.mlp.forward(&self.norm2.forward(&s)) + self.norm2.forward(&f)
            }
        }
    }

    /// Runs a PSFM on the template and the search parts of both streams: (2B, L, C) -> (2B, L, C).
    fn entangle(&self, psfm: &Psfm, g: &Tensor) -> Tensor {
        let lz = self.template_feat * self.template_feat;
        let lx = self.search_feat * self.search_feat;
        let z = psfm.forward_tokens(&g.narrow(1, 0, lz));
        let x = psfm.forward_tokens(&g.narrow(1, lz, lx));
        Tensor::cat(&[z, x], 1)
    }
}

/// `backbone`: patch embedding, position embeddings, blocks and the final norm.
#[derive(Debug)]
pub struct Backbone {
    patch_embed: PatchEmbed,
    pos_embed_z: Tensor,
    pos_embed_x: Tensor,
    pub blocks: Vec<Block>,
    norm: nn::LayerNorm,
    template_tokens: i64,
    rgb_only: bool,
}

/// Intermediate tensors of one forward pass, for parity tests and debugging.
#[derive(Debug, Default)]
pub struct Capture {
    /// Input of block 0: (rgb, aux), each (B, Lz + Lx, C).
    pub tokens_in: Option<(Tensor, Tensor)>,
    /// Output of each block: (rgb, aux).
    pub blocks: Vec<(Tensor, Tensor)>,
    /// `LN(x)[:, Lz:] + LN(xi)[:, Lz:]`: (B, Lx, C).
    pub fused_search: Option<Tensor>,
}

fn split_streams(s: &Tensor) -> (Tensor, Tensor) {
    let b = s.size()[0] / 2;
    (s.narrow(0, 0, b), s.narrow(0, b, b))
}

impl Backbone {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let c = cfg.embed_dim;
        let init = nn::Init::Randn { mean: 0.0, stdev: 0.02 };
        let blocks_p = &p / "blocks";
        Self {
            patch_embed: PatchEmbed::new(&p / "patch_embed", cfg),
            pos_embed_z: p.var("pos_embed_z", &[1, cfg.template_tokens(), c], init),
            pos_embed_x: p.var("pos_embed_x", &[1, cfg.search_tokens(), c], init),
            blocks: (0..cfg.depth).map(|i| Block::new(&blocks_p / i, cfg, i)).collect(),
            norm: layer_norm(&p / "norm", c),
            template_tokens: cfg.template_tokens(),
            rgb_only: cfg.rgb_only,
        }
    }

    /// Template tokens of both streams: (B, 6, Hz, Wz) -> (2B, Lz, C), `[rgb; aux]`.
    /// The template never changes during a sequence, so the tracker computes this once.
    pub fn embed_template(&self, z: &Tensor) -> Tensor {
        self.embed(z) + &self.pos_embed_z
    }

    /// Search tokens of both streams: (B, 6, Hx, Wx) -> (2B, Lx, C).
    pub fn embed_search(&self, x: &Tensor) -> Tensor {
        self.embed(x) + &self.pos_embed_x
    }

    /// Channels 0-2 (RGB) and 3-5 (aux) through the one shared patch embedding, stacked on batch.
    /// The RGB-only base embeds channels 0-2 alone (B rows).
    fn embed(&self, img: &Tensor) -> Tensor {
        if self.rgb_only {
            return self.patch_embed.forward(&img.narrow(1, 0, 3));
        }
        let stacked = Tensor::cat(&[img.narrow(1, 0, 3), img.narrow(1, 3, 3)], 0);
        self.patch_embed.forward(&stacked)
    }

    /// (2B, Lz, C) template tokens + (2B, Lx, C) search tokens -> fused search tokens (B, Lx, C).
    pub fn forward(&self, z_tokens: &Tensor, x_tokens: &Tensor, mut capture: Option<&mut Capture>) -> Tensor {
        let mut s = Tensor::cat(&[z_tokens, x_tokens], 1);
        if let Some(cap) = capture.as_deref_mut() {
            cap.tokens_in = Some(split_streams(&s));
        }
        for block in &self.blocks {
            s = block.forward(&s);
            if let Some(cap) = capture.as_deref_mut() {
                cap.blocks.push(split_streams(&s));
            }
        }
        // Only the search tokens reach the head: LN(x)[:, Lz:] + LN(xi)[:, Lz:] (spec section 6).
        let lx = s.size()[1] - self.template_tokens;
        if self.rgb_only {
            // OSTrack: LN(x)[:, Lz:] of the one stream.
            return self.norm.forward(&s.narrow(1, self.template_tokens, lx));
        }
        let (x, xi) = split_streams(&self.norm.forward(&s.narrow(1, self.template_tokens, lx)));
        let fused = x + xi;
        if let Some(cap) = capture {
            cap.fused_search = Some(fused.shallow_clone());
        }
        fused
    }
}
