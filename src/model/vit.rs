//! The shared ViT-B/16 backbone (OSTrack `vit_ce_adapter.py`): patch embedding, position
//! embeddings, the blocks with their adapters, and the final LayerNorm. The RGB and the auxiliary
//! stream run through the same weights; they are stacked along the batch axis (`[rgb; aux]`,
//! batch 2B) so every shared layer runs once for both.

use tch::nn::{self, Module};
use tch::Tensor;

use super::config::{keep_count, CandidateElimination, ModelConfig};
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

    /// As [`forward`](Self::forward), also returning the attention weights (B, heads, N, N) that
    /// candidate elimination ranks tokens by; computed explicitly as the official `Attention`
    /// does (`(q k^T) * scale`, softmax over the keys).
    pub fn forward_with_weights(&self, t: &Tensor) -> (Tensor, Tensor) {
        let (b, n, c) = t.size3().expect("tokens are (B, N, C)");
        let h = self.num_heads;
        let qkv = self.qkv.forward(t).reshape([b, n, 3, h, c / h]).permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let scale = ((c / h) as f64).powf(-0.5);
        let attn = (q.matmul(&k.transpose(-2, -1)) * scale).softmax(-1, None::<tch::Kind>);
        let out = attn.matmul(&v).transpose(1, 2).reshape([b, n, c]);
        (self.proj.forward(&out), attn)
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
        self.forward_dropping(s, &mut |t| t)
    }

    /// [`forward`](Self::forward) with `d` applied to every residual branch before it is added,
    /// where the official block applies `drop_path` (stochastic depth in training; the identity
    /// otherwise).
    fn forward_dropping(&self, s: &Tensor, d: &mut dyn FnMut(Tensor) -> Tensor) -> Tensor {
        match &self.adapters {
            BlockAdapters::None => {
                let s = s + d(self.attn.forward(&self.norm1.forward(s)));
                &s + d(self.mlp.forward(&self.norm2.forward(&s)))
            }
            BlockAdapters::Mixer { adap_t, adap2_t } => {
                let h = self.norm1.forward(s);
                let s = s + d(self.attn.forward(&h)) + d(swap_streams(&adap_t.forward(&h)));
                let h = self.norm2.forward(&s);
                &s + d(self.mlp.forward(&h)) + d(swap_streams(&adap2_t.forward(&h)))
            }
            BlockAdapters::Entangled(e) => {
                let Entangled { highfuseadapter1, highfuseadapter2, norml1, norml2 } = e;
                // Adapter outputs pass through the block's own norm1/norm2 (official quirk).
                let f = self.entangle(highfuseadapter1, &norml1.forward(s));
                let s = s + d(self.attn.forward(&self.norm1.forward(s))) + d(self.norm1.forward(&f));
                let f = self.entangle(highfuseadapter2, &norml2.forward(&s));
                &s + d(self.mlp.forward(&self.norm2.forward(&s))) + d(self.norm2.forward(&f))
            }
        }
    }

    /// An RGB-only block with candidate elimination after its attention (the official `CEBlock`):
    /// `s` is (B, Lz + n, C); returns the tokens (B, Lz + kept, C), the kept search tokens' places
    /// in the full search grid (B, kept) in the order the official code keeps them (descending
    /// attention), and the dropped ones' (B, n - kept). `index` holds the current tokens' places.
    fn forward_ce(&self, s: &Tensor, keep_ratio: f64, centre: i64, index: &Tensor) -> (Tensor, Tensor, Option<Tensor>) {
        let (attn_out, attn) = self.attn.forward_with_weights(&self.norm1.forward(s));
        let s = s + attn_out;
        let (b, n_all, c) = s.size3().expect("tokens are (B, N, C)");
        let lz = self.template_feat * self.template_feat;
        let n = n_all - lz;
        let keep = keep_count(keep_ratio, n);
        if keep == n {
            let s2 = &s + self.mlp.forward(&self.norm2.forward(&s));
            return (s2, index.shallow_clone(), None);
        }
        // Attention of the template's centre token to each search token, averaged over the heads
        // (the official mask selects one template row, so its mean over rows is that row).
        let score = attn.narrow(2, centre, 1).narrow(3, lz, n).mean_dim(2, false, None).mean_dim(1, false, None);
        let (_, order) = score.sort(1, true);
        let top = order.narrow(1, 0, keep);
        let rest = order.narrow(1, keep, n - keep);
        let kept_index = index.gather(1, &top, false);
        let removed_index = index.gather(1, &rest, false);
        let tokens_s = s.narrow(1, lz, n).gather(1, &top.unsqueeze(-1).expand([b, keep, c], false), false);
        let s = Tensor::cat(&[s.narrow(1, 0, lz), tokens_s], 1);
        let s2 = &s + self.mlp.forward(&self.norm2.forward(&s));
        (s2, kept_index, Some(removed_index))
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

/// Stochastic depth for training, as timm's `DropPath` in OSTrack's and PATrack's blocks: each
/// residual branch of block `i` is zeroed per sample (each row of the stacked streams) with
/// probability `rate * i / (depth - 1)` (the official `linspace(0, rate, depth)`), and scaled by
/// `1 / (1 - p)` where kept. The draws come from a SplitMix64 stream whose state is saved with
/// training checkpoints, so that a resumed run draws what an uninterrupted one would.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DropPath {
    /// The last block's drop probability (the recipe: 0.1).
    pub rate: f64,
    /// The generator's state.
    pub state: u64,
}

impl DropPath {
    pub fn new(rate: f64, seed: u64) -> Self {
        Self { rate, state: seed }
    }

    /// Drop probability of block `i` of `depth`.
    pub fn block_rate(&self, i: usize, depth: usize) -> f64 {
        if depth < 2 {
            return 0.0;
        }
        self.rate * i as f64 / (depth - 1) as f64
    }

    fn next_uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `t` (rows, ...) with each row kept (scaled by 1 / (1 - p)) or zeroed: timm's
    /// `x.div(keep) * floor(keep + U[0, 1))`.
    pub fn apply(&mut self, t: Tensor, p: f64) -> Tensor {
        let keep = 1.0 - p;
        let rows = t.size()[0];
        let mask: Vec<f32> = (0..rows).map(|_| (keep + self.next_uniform()).floor() as f32).collect();
        let mut shape = vec![1i64; t.dim()];
        shape[0] = rows;
        let mask = Tensor::from_slice(&mask).view(shape.as_slice()).to_device(t.device()).to_kind(t.kind());
        (t / keep) * mask
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
    candidate_elimination: Option<CandidateElimination>,
    template_centre: i64,
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
    /// Candidate elimination: for each eliminating block, its index, the places (in the full
    /// search grid) of the search tokens it kept (B, kept) and of those it dropped (B, dropped).
    pub eliminated: Vec<(usize, Tensor, Tensor)>,
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
            candidate_elimination: cfg.candidate_elimination.clone(),
            template_centre: cfg.template_centre_token(),
        }
    }

    /// Switches candidate elimination (validated by the caller's configuration).
    pub(crate) fn set_candidate_elimination(&mut self, ce: Option<CandidateElimination>) {
        self.candidate_elimination = ce;
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
    pub fn forward(&self, z_tokens: &Tensor, x_tokens: &Tensor, capture: Option<&mut Capture>) -> Tensor {
        self.forward_dropping(z_tokens, x_tokens, capture, None)
    }

    /// [`forward`](Self::forward) with stochastic depth in the blocks when `drop` is given
    /// (training).
    pub fn forward_dropping(
        &self,
        z_tokens: &Tensor,
        x_tokens: &Tensor,
        mut capture: Option<&mut Capture>,
        mut drop: Option<&mut DropPath>,
    ) -> Tensor {
        if let Some(ce) = self.candidate_elimination.as_ref().filter(|_| self.rgb_only) {
            return self.forward_ce(z_tokens, x_tokens, ce, capture);
        }
        let mut s = Tensor::cat(&[z_tokens, x_tokens], 1);
        if let Some(cap) = capture.as_deref_mut() {
            cap.tokens_in = Some(split_streams(&s));
        }
        let depth = self.blocks.len();
        for (i, block) in self.blocks.iter().enumerate() {
            s = match drop.as_deref_mut() {
                Some(dp) if dp.block_rate(i, depth) > 0.0 => {
                    let p = dp.block_rate(i, depth);
                    block.forward_dropping(&s, &mut |t| dp.apply(t, p))
                }
                _ => block.forward(&s),
            };
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

    /// The RGB-only backbone with candidate elimination (`VisionTransformerCE.forward_features`):
    /// the final norm runs on the tokens left, and the dropped search tokens come back as zeros
    /// in their places in the grid, so the head sees (B, Lx, C) as without elimination.
    fn forward_ce(
        &self,
        z_tokens: &Tensor,
        x_tokens: &Tensor,
        ce: &CandidateElimination,
        mut capture: Option<&mut Capture>,
    ) -> Tensor {
        let (b, lx, c) = x_tokens.size3().expect("tokens are (B, Lx, C)");
        let mut s = Tensor::cat(&[z_tokens, x_tokens], 1);
        let mut index = Tensor::arange(lx, (tch::Kind::Int64, s.device())).unsqueeze(0).repeat([b, 1]);
        let mut removed = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            match ce.keep_ratio_at(i) {
                Some(ratio) => {
                    let (next, kept, dropped) = block.forward_ce(&s, ratio, self.template_centre, &index);
                    if let (Some(cap), Some(d)) = (capture.as_deref_mut(), &dropped) {
                        cap.eliminated.push((i, kept.shallow_clone(), d.shallow_clone()));
                    }
                    removed.extend(dropped);
                    s = next;
                    index = kept;
                }
                None => s = block.forward(&s),
            }
        }
        let kept = s.size()[1] - self.template_tokens;
        let x = self.norm.forward(&s.narrow(1, self.template_tokens, kept));
        if removed.is_empty() {
            return x;
        }
        // Official: cat the kept tokens with zeros for the dropped ones, then scatter every row
        // back to its place in the grid.
        let padded = Tensor::cat(&[x.shallow_clone(), Tensor::zeros([b, lx - kept, c], (x.kind(), x.device()))], 1);
        let mut places = vec![index];
        places.extend(removed);
        let places = Tensor::cat(&places, 1).unsqueeze(-1).expand([b, lx, c], false);
        padded.zeros_like().scatter(1, &places, &padded)
    }
}
