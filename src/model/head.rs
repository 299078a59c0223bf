//! The task-level adapter (`adapter_head`, class `Adapterwozeros`) and the OSTrack center head
//! (`box_head`, class `CenterPredictor`, `lib/models/layers/head.py` l.98-201).

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::config::ModelConfig;

/// `adapter_head`: three linears, no activation, no skip ("wo skip"); dropout is off in eval.
#[derive(Debug)]
pub struct HeadAdapter {
    adapter_down: nn::Linear,
    adapter_mid: nn::Linear,
    adapter_up: nn::Linear,
}

impl HeadAdapter {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let (c, d) = (cfg.embed_dim, cfg.head_adapter_dim);
        Self {
            adapter_down: nn::linear(&p / "adapter_down", c, d, Default::default()),
            adapter_mid: nn::linear(&p / "adapter_mid", d, d, Default::default()),
            adapter_up: nn::linear(&p / "adapter_up", d, c, Default::default()),
        }
    }

    /// (B, L, C) -> (B, L, C)
    pub fn forward(&self, s: &Tensor) -> Tensor {
        self.adapter_up.forward(&self.adapter_mid.forward(&self.adapter_down.forward(s)))
    }
}

/// `conv{k}_{branch}`: Conv3x3 -> BatchNorm (eval, eps 1e-5) -> ReLU; keys `.0.*` and `.1.*`.
#[derive(Debug)]
struct ConvBnRelu {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBnRelu {
    fn new(p: nn::Path, cin: i64, cout: i64) -> Self {
        let conv = nn::ConvConfig { padding: 1, ..Default::default() };
        Self {
            conv: nn::conv2d(&p / "0", cin, cout, 3, conv),
            bn: nn::batch_norm2d(&p / "1", cout, nn::BatchNormConfig { eps: 1e-5, ..Default::default() }),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.bn.forward_t(&self.conv.forward(x), false).relu()
    }
}

/// One of the three identical branches: 4 x ConvBnRelu (C -> ch -> ch/2 -> ch/4 -> ch/8) + 1x1.
#[derive(Debug)]
struct Branch {
    convs: [ConvBnRelu; 4],
    out: nn::Conv2D,
}

impl Branch {
    fn new(p: &nn::Path, name: &str, cfg: &ModelConfig, out_ch: i64) -> Self {
        let ch = cfg.head_channels;
        let dims = [cfg.embed_dim, ch, ch / 2, ch / 4, ch / 8];
        let conv = |k: usize| ConvBnRelu::new(p / format!("conv{}_{name}", k + 1), dims[k], dims[k + 1]);
        Self {
            convs: [conv(0), conv(1), conv(2), conv(3)],
            out: nn::conv2d(p / format!("conv5_{name}"), ch / 8, out_ch, 1, Default::default()),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.convs.iter().fold(x.shallow_clone(), |h, c| c.forward(&h));
        self.out.forward(&h)
    }
}

/// The three maps of the center head, each (B, k, 16, 16).
#[derive(Debug)]
pub struct HeadOutput {
    /// Target-centre score, sigmoid clamped to [1e-4, 1 - 1e-4]: (B, 1, H, W).
    pub score_map: Tensor,
    /// Box width/height as fractions of the search crop, clamped likewise: (B, 2, H, W).
    pub size_map: Tensor,
    /// Sub-cell centre offset (dx, dy) in feature cells, raw: (B, 2, H, W).
    pub offset_map: Tensor,
}

impl HeadOutput {
    pub fn shallow_clone(&self) -> Self {
        Self {
            score_map: self.score_map.shallow_clone(),
            size_map: self.size_map.shallow_clone(),
            offset_map: self.offset_map.shallow_clone(),
        }
    }
}

/// `box_head` (`CenterPredictor`).
#[derive(Debug)]
pub struct CenterPredictor {
    ctr: Branch,
    offset: Branch,
    size: Branch,
}

const SIGMOID_CLAMP: f64 = 1e-4;

impl CenterPredictor {
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        Self {
            ctr: Branch::new(&p, "ctr", cfg, 1),
            offset: Branch::new(&p, "offset", cfg, 2),
            size: Branch::new(&p, "size", cfg, 2),
        }
    }

    /// (B, C, H, W) -> maps
    pub fn forward(&self, feat: &Tensor) -> HeadOutput {
        let clamp = |t: Tensor| t.sigmoid().clamp(SIGMOID_CLAMP, 1.0 - SIGMOID_CLAMP);
        HeadOutput {
            score_map: clamp(self.ctr.forward(feat)),
            size_map: clamp(self.size.forward(feat)),
            offset_map: self.offset.forward(feat),
        }
    }
}
