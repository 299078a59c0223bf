//! The modality-dependent adapter `Mixer` (`lib/models/layers/adapter.py` l.40-157): a bottleneck
//! that splits 8 channels into a "high-frequency" half (depthwise conv branch + max-pool branch)
//! and a "low-frequency" half (2x2 average pool, nearest upsample), then fuses back to C channels.
//! The template (8x8) and search (16x16) parts are processed separately with the same weights.

use tch::nn::{self, Module};
use tch::Tensor;

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

    /// (B, 4, h, w) -> (B, 8, h, w)
    fn forward(&self, hi: &Tensor) -> Tensor {
        let cx = self.proj1.forward(&self.conv1.forward(&hi.narrow(1, 0, HIGH_IN))).gelu("none");
        let pooled = hi.narrow(1, HIGH_IN, HIGH_IN).max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
        let px = self.proj2.forward(&pooled).gelu("none");
        Tensor::cat(&[cx, px], 1)
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
        }
    }

    /// (B, Lz + Lx, C) -> (B, Lz + Lx, C)
    pub fn forward(&self, t: &Tensor) -> Tensor {
        let lz = self.template_feat * self.template_feat;
        let lx = self.search_feat * self.search_feat;
        let f = self.d_fc1.forward(t); // (B, L, 8)
        let z = self.mix(&f.narrow(1, 0, lz), self.template_feat);
        let x = self.mix(&f.narrow(1, lz, lx), self.search_feat);
        Tensor::cat(&[z, x], 1)
    }

    /// One part: (B, h*h, 8) -> (B, h*h, C)
    fn mix(&self, f: &Tensor, side: i64) -> Tensor {
        let b = f.size()[0];
        let map = f.transpose(1, 2).reshape([b, self.hidden, side, side]); // (B, 8, h, h)
        let half = self.hidden / 2;
        let high = self.high_mixer.forward(&map.narrow(1, 0, half));
        let low = map.narrow(1, half, half).avg_pool2d([2, 2], [2, 2], [0, 0], false, false, None).upsample_nearest2d(
            [side, side],
            Some(2.0),
            Some(2.0),
        );
        let m = Tensor::cat(&[high, low], 1); // (B, 12, h, h)
        let m = &m + self.conv_fuse.forward(&m);
        self.proj.forward(&m).flatten(2, -1).transpose(1, 2) // (B, h*h, C)
    }
}
