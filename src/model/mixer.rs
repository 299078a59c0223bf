//! The modality-dependent adapter `Mixer` (`lib/models/layers/adapter.py` l.40-157): a bottleneck
//! that splits 8 channels into a "high-frequency" half (depthwise conv branch + max-pool branch)
//! and a "low-frequency" half (2x2 average pool, nearest upsample), then fuses back to C channels.
//! The template (8x8) and search (16x16) parts are processed separately with the same weights.
//!
//! Here both parts go through the convolutions and pools at once, laid side by side on one canvas
//! with a separator (see [`Canvas`]): the same values as two separate passes, with half the
//! kernel launches, which is what a batch-1 step on a GPU pays for.

use tch::nn::{self, Module};
use tch::{Device, Tensor};

use super::config::ModelConfig;

/// `high_mixer` (iFormer-style `HighMixer` with dim 4: two 2-channel inputs, two 4-channel outputs).
#[derive(Debug)]
pub struct HighMixer {
    conv1: nn::Conv2D,
    proj1: nn::Conv2D,
    proj2: nn::Conv2D,
}

const HIGH_IN: i64 = 2; // channels into each high-frequency branch
const HIGH_OUT: i64 = 4; // channels out of each high-frequency branch

impl HighMixer {
    pub fn new(p: nn::Path) -> Self {
        let no_bias = nn::ConvConfig { bias: false, ..Default::default() };
        let depthwise = nn::ConvConfig { bias: false, padding: 1, groups: HIGH_OUT, ..Default::default() };
        Self {
            conv1: nn::conv2d(&p / "conv1", HIGH_IN, HIGH_OUT, 1, no_bias),
            proj1: nn::conv2d(&p / "proj1", HIGH_OUT, HIGH_OUT, 3, depthwise),
            proj2: nn::conv2d(&p / "proj2", HIGH_IN, HIGH_OUT, 1, Default::default()),
        }
    }

    /// (B, 4, h, w) -> the convolution branch (B, 4, h, w) and the max-pool branch (B, 4, h, w).
    /// `inside`: where the map holds data, if not everywhere (the canvas); elsewhere the max
    /// pool must see padding (-inf).
    fn branches(&self, hi: &Tensor, inside: Option<&Tensor>) -> (Tensor, Tensor) {
        let cx = self.proj1.forward(&self.conv1.forward(&hi.narrow(1, 0, HIGH_IN))).gelu("none");
        let pool_in = hi.narrow(1, HIGH_IN, HIGH_IN);
        let pool_in = match inside {
            Some(mask) => pool_in.where_scalarother(mask, f64::NEG_INFINITY),
            None => pool_in,
        };
        let pooled = pool_in.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
        // The separator itself pooled to -inf; zero it so that no inf/NaN reaches `proj2` (its
        // gradient would be NaN even where the result is discarded).
        let pooled = match inside {
            Some(mask) => pooled.where_scalarother(mask, 0.0),
            None => pooled,
        };
        let px = self.proj2.forward(&pooled).gelu("none");
        (cx, px)
    }
}

/// The template (tz x tz) and search (sx x sx) maps side by side on one (H, W) canvas: search at
/// columns 0..sx, two separator columns, template at columns sx+2.., both from row 0, zeros
/// elsewhere. Every 3x3 window of a part reads the separator or the canvas border where a
/// separate pass would read padding: zeros for the convolutions (conv1 and proj1 have no bias, so
/// zeros stay zeros; the fused map is re-zeroed there before conv_fuse), -inf for the max pool
/// (masked in). With even sides the 2x2 average-pool windows and the nearest upsampling stay
/// inside each part. So each part gets exactly the values of its own pass.
#[derive(Debug)]
struct Canvas {
    height: i64,
    width: i64,
    /// Canvas pixel -> token index (L = the zero row appended to the tokens): (H*W,)
    gather: Tensor,
    /// Token (template first, then search) -> canvas pixel: (L,)
    scatter: Tensor,
    /// False on the separator and the empty area: (1, 1, H, W)
    inside: Tensor,
}

impl Canvas {
    /// `None` when a side is odd (pool windows would straddle parts): then the parts run apart.
    fn new(template: i64, search: i64, device: Device) -> Option<Self> {
        if template % 2 != 0 || search % 2 != 0 {
            return None;
        }
        let (height, width) = (template.max(search), search + 2 + template);
        let lz = template * template;
        let tokens = lz + search * search;
        let mut gather = vec![tokens; (height * width) as usize];
        let mut scatter = vec![0i64; tokens as usize];
        let mut inside = vec![false; (height * width) as usize];
        let mut place = |token: i64, r: i64, c: i64| {
            let pixel = r * width + c;
            gather[pixel as usize] = token;
            scatter[token as usize] = pixel;
            inside[pixel as usize] = true;
        };
        for r in 0..search {
            for c in 0..search {
                place(lz + r * search + c, r, c);
            }
        }
        for r in 0..template {
            for c in 0..template {
                place(r * template + c, r, search + 2 + c);
            }
        }
        Some(Self {
            height,
            width,
            gather: Tensor::from_slice(&gather).to_device(device),
            scatter: Tensor::from_slice(&scatter).to_device(device),
            inside: Tensor::from_slice(&inside).view([1, 1, height, width]).to_device(device),
        })
    }
}

/// `adap_t` / `adap2_t`.
#[derive(Debug)]
pub struct Mixer {
    d_fc1: nn::Linear,
    high_mixer: HighMixer,
    conv_fuse: nn::Conv2D,
    proj: nn::Conv2D,
    template_feat: i64,
    search_feat: i64,
    hidden: i64,
    canvas: Option<Canvas>,
}

impl Mixer {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let hidden = cfg.mixer_dim; // 8: 4 high + 4 low
        let fused = 2 * HIGH_OUT + hidden / 2; // 12: cx(4) + px(4) + lx(4)
        let depthwise = nn::ConvConfig { bias: false, padding: 1, groups: fused, ..Default::default() };
        Self {
            d_fc1: nn::linear(&p / "D_fc1", cfg.embed_dim, hidden, Default::default()),
            high_mixer: HighMixer::new(&p / "high_mixer"),
            conv_fuse: nn::conv2d(&p / "conv_fuse", fused, fused, 3, depthwise),
            proj: nn::conv2d(&p / "proj", fused, cfg.embed_dim, 1, Default::default()),
            template_feat: cfg.template_feat(),
            search_feat: cfg.search_feat(),
            hidden,
            canvas: Canvas::new(cfg.template_feat(), cfg.search_feat(), p.device()),
        }
    }

    /// (B, Lz + Lx, C) -> (B, Lz + Lx, C)
    pub fn forward(&self, t: &Tensor) -> Tensor {
        let f = self.d_fc1.forward(t); // (B, L, 8)
        match &self.canvas {
            Some(canvas) => self.forward_canvas(&f, canvas),
            None => self.forward_parts(&f),
        }
    }

    /// Both parts on one canvas: (B, L, 8) -> (B, L, C)
    fn forward_canvas(&self, f: &Tensor, canvas: &Canvas) -> Tensor {
        let device = f.device();
        let b = f.size()[0];
        let (h, w) = (canvas.height, canvas.width);
        // (B, 8, L + 1) with a zero token last, then every canvas pixel picks its token.
        let padded = f.transpose(1, 2).constant_pad_nd([0, 1]);
        let map = padded.index_select(2, &canvas.gather.to_device(device)).view([b, self.hidden, h, w]);
        let inside = canvas.inside.to_device(device);
        let m = self.fuse(&map, h, w, Some(&inside));
        // Back to tokens (in sequence order) while the map has 12 channels, then `proj` (a 1x1
        // convolution) as one matrix product straight into the (B, L, C) layout.
        let tokens = m.flatten(2, -1).index_select(2, &canvas.scatter.to_device(device)).transpose(1, 2);
        let (c, k) = (self.proj.ws.size()[0], self.proj.ws.size()[1]);
        tokens.linear(&self.proj.ws.view([c, k]), self.proj.bs.as_ref())
    }

    /// The parts one after the other (odd sides): (B, L, 8) -> (B, L, C)
    fn forward_parts(&self, f: &Tensor) -> Tensor {
        let b = f.size()[0];
        let lz = self.template_feat * self.template_feat;
        let lx = self.search_feat * self.search_feat;
        let part = |tokens: Tensor, side: i64| {
            let map = tokens.transpose(1, 2).reshape([b, self.hidden, side, side]); // (B, 8, h, h)
            self.proj.forward(&self.fuse(&map, side, side, None)).flatten(2, -1).transpose(1, 2)
        };
        let z = part(f.narrow(1, 0, lz), self.template_feat);
        let x = part(f.narrow(1, lz, lx), self.search_feat);
        Tensor::cat(&[z, x], 1)
    }

    /// (B, 8, h, w) -> the fused map (B, 12, h, w) before `proj`; `inside` marks the pixels that
    /// hold data when the rest is padding for the 3x3 windows (canvas separator).
    fn fuse(&self, map: &Tensor, h: i64, w: i64, inside: Option<&Tensor>) -> Tensor {
        let half = self.hidden / 2;
        let (cx, px) = self.high_mixer.branches(&map.narrow(1, 0, half), inside);
        let low = map.narrow(1, half, half).avg_pool2d([2, 2], [2, 2], [0, 0], false, false, None).upsample_nearest2d(
            [h, w],
            Some(2.0),
            Some(2.0),
        );
        let m = Tensor::cat(&[cx, px, low], 1); // (B, 12, h, w)
        let m = match inside {
            Some(mask) => m.where_scalarother(mask, 0.0),
            None => m,
        };
        &m + self.conv_fuse.forward(&m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// The canvas pass against the separate passes, on values of both signs (the max pool's
    /// padding matters only where all neighbours are negative).
    #[test]
    fn canvas_equals_separate_parts() {
        for (template, search) in [(8, 16), (4, 8), (6, 6), (10, 4)] {
            let cfg = ModelConfig {
                embed_dim: 16,
                template_size: template * 16,
                search_size: search * 16,
                ..ModelConfig::tiny()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            tch::manual_seed(3);
            let mixer = Mixer::new(vs.root(), &cfg);
            assert!(mixer.canvas.is_some());
            let l = template * template + search * search;
            let t = Tensor::randn([2, l, 16], (Kind::Float, Device::Cpu));
            let f = mixer.d_fc1.forward(&t);
            let a = mixer.forward_canvas(&f, mixer.canvas.as_ref().unwrap());
            let b = mixer.forward_parts(&f);
            assert_eq!(a.size(), b.size());
            // Float rounding only (the 1x1 convolutions may sum in another order on another size).
            let d = (&a - &b).abs().max().double_value(&[]);
            let scale = b.abs().max().double_value(&[]);
            assert!(d <= 1e-6 * scale, "{template}/{search}: max diff {d} at scale {scale}");
        }
    }

    /// Training runs through the canvas too: every gradient must be finite (the separator holds
    /// -inf inside the max-pool branch).
    #[test]
    fn canvas_gradients_are_finite() {
        let cfg = ModelConfig { embed_dim: 16, ..ModelConfig::tiny() };
        let vs = nn::VarStore::new(Device::Cpu);
        tch::manual_seed(5);
        let mixer = Mixer::new(vs.root(), &cfg);
        assert!(mixer.canvas.is_some());
        let l = cfg.template_feat().pow(2) + cfg.search_feat().pow(2);
        let t = Tensor::randn([2, l, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        mixer.forward(&t).square().sum(Kind::Float).backward();
        for (name, var) in vs.variables() {
            let g = var.grad();
            assert!(g.defined(), "{name}: no gradient");
            assert!(g.isfinite().all().int64_value(&[]) == 1, "{name}: non-finite gradient");
        }
        assert!(t.grad().isfinite().all().int64_value(&[]) == 1, "input gradient");
    }

    #[test]
    fn odd_sides_run_the_parts_apart() {
        assert!(Canvas::new(5, 16, Device::Cpu).is_none());
        assert!(Canvas::new(8, 15, Device::Cpu).is_none());
    }
}
