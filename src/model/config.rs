//! Sizes of the network. The default is the official PATrack configuration (OSTrack ViT-B/16,
//! template 128 px, search 256 px, entangled adapters in blocks 3, 6, 9); small configurations
//! serve fast tests and the bundled demo model.

use serde::{Deserialize, Serialize};

/// Largest sizes a configuration may have: the official ViT-B sizes times a margin (ViT-H and
/// OSTrack-384 fit). A configuration comes from files (a `.safetensors` records its own), so these
/// bound what a hostile file can make the loader allocate; [`ModelConfig::validate`] checks them
/// before any variable exists.
pub mod limits {
    /// Token width (ViT-B 768, ViT-H 1280).
    pub const MAX_EMBED_DIM: i64 = 2048;
    /// Transformer blocks (ViT-B 12, ViT-H 32).
    pub const MAX_DEPTH: usize = 48;
    /// Attention heads (ViT-B 12).
    pub const MAX_HEADS: i64 = 32;
    /// MLP hidden width relative to the token width (ViT-B 4).
    pub const MAX_MLP_RATIO: i64 = 8;
    /// Patch size in pixels (16).
    pub const MAX_PATCH_SIZE: i64 = 64;
    /// Template and search crop sides in pixels (official 128 / 256; OSTrack-384: 192 / 384).
    pub const MAX_CROP_SIZE_PX: i64 = 1024;
    /// Template plus search tokens (official 64 + 256; OSTrack-384: 144 + 576). Attention memory
    /// grows with the square of it.
    pub const MAX_TOKENS: i64 = 2048;
    /// Adapter bottlenecks and head channels (official 192 / 256).
    pub const MAX_ADAPTER_DIM: i64 = 2048;
    /// Estimated parameters of the whole network (official ViT-B PATrack: about 100 M).
    pub const MAX_PARAMETERS: i64 = 1_000_000_000;
}

/// Why a configuration cannot be built; each names the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} must be positive, got {value}")]
    NotPositive { field: &'static str, value: i64 },
    #[error("{field} {value} is over the maximum {max}")]
    OverLimit { field: &'static str, value: i64, max: i64 },
    #[error("embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")]
    HeadsDoNotDivide { embed_dim: i64, num_heads: i64 },
    #[error("{field} {size} must be an even multiple of patch_size {patch_size} (the Mixer pools 2x2)")]
    CropSize { field: &'static str, size: i64, patch_size: i64 },
    #[error("mixer_dim must be 8 (the Mixer's fixed split), got {0}")]
    MixerDim(i64),
    #[error("head_channels {0} must be a multiple of 8")]
    HeadChannels(i64),
    #[error("{what} block {block} is beyond depth {depth}")]
    BlockBeyondDepth { what: &'static str, block: usize, depth: usize },
    #[error("{listed} entangled blocks listed for depth {depth}")]
    TooManyEntangledBlocks { listed: usize, depth: usize },
    #[error(
        "candidate_elimination applies to the RGB-only (OSTrack) network only: PATrack's Mixer and PSFM \
         adapters need every search token (the official rgbd setting keep 0.7 crashes there)"
    )]
    CandidateEliminationTwoStreams,
    #[error("candidate_elimination lists {blocks} blocks and {ratios} keep ratios; give one ratio per block")]
    CandidateEliminationLists { blocks: usize, ratios: usize },
    #[error("candidate_elimination blocks must be increasing")]
    CandidateEliminationOrder,
    #[error("candidate_elimination keep ratio {0} is not in (0, 1]")]
    KeepRatio(f64),
}

/// Network sizes. Field names follow the official config where it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Token width (ViT-B: 768).
    pub embed_dim: i64,
    /// Number of transformer blocks (ViT-B: 12).
    pub depth: usize,
    /// Attention heads (ViT-B: 12, head dim 64).
    pub num_heads: i64,
    /// MLP hidden width (ViT-B: 3072 = 4 x 768).
    pub mlp_dim: i64,
    /// Patch size and feature stride in pixels (16).
    pub patch_size: i64,
    /// Template crop side in pixels (128 -> 8 x 8 tokens).
    pub template_size: i64,
    /// Search crop side in pixels (256 -> 16 x 16 tokens).
    pub search_size: i64,
    /// 0-based indices of the blocks holding the modality-entangled adapter (PSFM); every other
    /// block holds the modality-dependent adapter (Mixer). Official: 3, 6, 9.
    pub entangled_blocks: Vec<usize>,
    /// Bottleneck width of the Mixer adapter (official: 8 = 4 high- + 4 low-frequency channels).
    pub mixer_dim: i64,
    /// Bottleneck width of the PSFM adapter (official: 192).
    pub psfm_dim: i64,
    /// Bottleneck width of the task-level head adapter (official: 192).
    pub head_adapter_dim: i64,
    /// Channels of the first center-head convolution (official: 256; then /2, /4, /8).
    pub head_channels: i64,
    /// The RGB-only base tracker (OSTrack-style: one stream, no adapters, no fusion, no head
    /// adapter); the first stage of progressive training. The aux channels of the input are
    /// ignored. Official PATrack: false.
    pub rgb_only: bool,
    /// OSTrack's candidate elimination; `None` (the default, and PATrack's setting): every search
    /// token reaches the head. Only the RGB-only network supports it (see
    /// [`CandidateElimination`]). Absent from recorded configurations when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_elimination: Option<CandidateElimination>,
}

/// OSTrack's candidate elimination (CE, `lib/models/layers/attn_blocks.py`): after the attention
/// of each listed block, the search tokens are ranked by the attention the template's centre
/// token pays them (averaged over the heads) and only the best `ceil(keep_ratio * n)` of the `n`
/// remaining ones go on; the dropped ones reach the head as zeros, in their original places
/// (`vit_ce.py`). The template-centre token is the official `CTR_POINT` mask
/// (`lib/utils/ce_utils.py`): row and column `(side - 1) / 2` of the template's token grid (3 of
/// 8 for 128 px), which does not depend on the box, so the tracker needs nothing extra.
///
/// The released OSTrack (`vitb_256_mae_ce_32x4_ep300`) was trained and is evaluated with blocks
/// 3, 6, 9 at 0.7 ([`CandidateElimination::ostrack`]); 256 search tokens become 180, 126, 89.
///
/// Only the RGB-only network supports it: PATrack's Mixer reshapes the search tokens into their
/// 16 x 16 map and its PSFM expects all of them, which is why the official `rgbd.yaml` setting
/// (keep 0.7) crashes there; PATrack itself is configured with CE off (keep 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateElimination {
    /// 0-based blocks after whose attention tokens are dropped, increasing (OSTrack: 3, 6, 9).
    pub blocks: Vec<usize>,
    /// Share of the remaining search tokens each of those blocks keeps, in (0, 1] (OSTrack: 0.7).
    pub keep_ratio: Vec<f64>,
}

impl CandidateElimination {
    /// OSTrack's placement for a network of `depth` blocks (at 1/4, 2/4 and 3/4 of the depth:
    /// 3, 6, 9 of 12), each block keeping `keep_ratio`.
    pub fn ostrack(depth: usize, keep_ratio: f64) -> Self {
        let mut blocks: Vec<usize> = (1..=3).map(|k| k * depth / 4).filter(|&b| b < depth).collect();
        blocks.dedup();
        Self { keep_ratio: vec![keep_ratio; blocks.len()], blocks }
    }

    /// The keep ratio of block `index`, if it eliminates.
    pub fn keep_ratio_at(&self, index: usize) -> Option<f64> {
        self.blocks.iter().position(|&b| b == index).map(|k| self.keep_ratio[k])
    }

    /// Search tokens left after each eliminating block, from `search_tokens`, as the official
    /// `math.ceil(keep_ratio * lens_s)`.
    pub fn kept_tokens(&self, search_tokens: i64) -> Vec<i64> {
        let mut n = search_tokens;
        self.keep_ratio
            .iter()
            .map(|&r| {
                n = keep_count(r, n);
                n
            })
            .collect()
    }

    /// Checks the settings against a network of `depth` blocks; the error names the field.
    pub fn validate(&self, depth: usize) -> Result<(), ConfigError> {
        let (blocks, ratios) = (self.blocks.len(), self.keep_ratio.len());
        if blocks == 0 || blocks != ratios {
            return Err(ConfigError::CandidateEliminationLists { blocks, ratios });
        }
        if let Some(&block) = self.blocks.iter().find(|&&b| b >= depth) {
            return Err(ConfigError::BlockBeyondDepth { what: "candidate_elimination", block, depth });
        }
        if self.blocks.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ConfigError::CandidateEliminationOrder);
        }
        if let Some(&ratio) = self.keep_ratio.iter().find(|r| !(r.is_finite() && **r > 0.0 && **r <= 1.0)) {
            return Err(ConfigError::KeepRatio(ratio));
        }
        Ok(())
    }

    /// A short description for logs and labels: `CE 0.7@3,0.7@6,0.7@9`.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self.blocks.iter().zip(&self.keep_ratio).map(|(b, r)| format!("{r}@{b}")).collect();
        format!("CE {}", parts.join(","))
    }
}

/// `math.ceil(keep_ratio * n)`, in f64 as Python computes it (0.7 * 256 = 179.2 -> 180).
pub fn keep_count(keep_ratio: f64, n: i64) -> i64 {
    ((keep_ratio * n as f64).ceil() as i64).clamp(1, n)
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::vit_base()
    }
}

impl ModelConfig {
    /// The official PATrack / OSTrack-256 configuration.
    pub fn vit_base() -> Self {
        Self {
            embed_dim: 768,
            depth: 12,
            num_heads: 12,
            mlp_dim: 3072,
            patch_size: 16,
            template_size: 128,
            search_size: 256,
            entangled_blocks: vec![3, 6, 9],
            mixer_dim: 8,
            psfm_dim: 192,
            head_adapter_dim: 192,
            head_channels: 256,
            rgb_only: false,
            candidate_elimination: None,
        }
    }

    /// A tiny configuration for fast tests (same structure, small sizes).
    pub fn tiny() -> Self {
        Self {
            embed_dim: 64,
            depth: 4,
            num_heads: 2,
            mlp_dim: 128,
            patch_size: 16,
            template_size: 64,
            search_size: 128,
            entangled_blocks: vec![1, 3],
            mixer_dim: 8,
            psfm_dim: 32,
            head_adapter_dim: 32,
            head_channels: 32,
            rgb_only: false,
            candidate_elimination: None,
        }
    }

    /// The bundled demo models' size: ViT width 128, 6 blocks, template 64 / search 128 px
    /// (a 8 x 8 score map), entangled adapters in blocks 2 and 4 (the official pattern 3, 6, 9 of 12
    /// scaled to 6), head adapter as wide as the tokens so that it can start as the identity.
    pub fn small() -> Self {
        Self {
            embed_dim: 128,
            depth: 6,
            num_heads: 4,
            mlp_dim: 512,
            patch_size: 16,
            template_size: 64,
            search_size: 128,
            entangled_blocks: vec![2, 4],
            mixer_dim: 8,
            psfm_dim: 64,
            head_adapter_dim: 128,
            head_channels: 64,
            rgb_only: false,
            candidate_elimination: None,
        }
    }

    /// Template feature side in tokens (8 for 128 px).
    /// A short name for reports: the preset this configuration equals, or its main sizes.
    pub fn label(&self) -> String {
        let named = [("vit_base", Self::vit_base()), ("small", Self::small()), ("tiny", Self::tiny())];
        let base = Self { rgb_only: false, candidate_elimination: None, ..self.clone() };
        let mut name = match named.iter().find(|(_, c)| *c == base) {
            Some((n, _)) => n.to_string(),
            None => format!("embed{}x{} {}/{}px", self.embed_dim, self.depth, self.template_size, self.search_size),
        };
        if self.rgb_only {
            name.push_str(" rgb-only");
        }
        if let Some(ce) = &self.candidate_elimination {
            name = format!("{name} {}", ce.label());
        }
        name
    }

    /// Template-token index of the template's centre, the official `CTR_POINT` mask: row and
    /// column `(side - 1) / 2` (3 of 8, 5 of 12, 3 of 7, 6 of 14, as `ce_utils.py` lists them).
    pub fn template_centre_token(&self) -> i64 {
        let side = self.template_feat();
        let c = (side - 1) / 2;
        c * side + c
    }

    pub fn template_feat(&self) -> i64 {
        self.template_size / self.patch_size
    }

    /// Search feature side in tokens (16 for 256 px); also the score-map side.
    pub fn search_feat(&self) -> i64 {
        self.search_size / self.patch_size
    }

    pub fn template_tokens(&self) -> i64 {
        self.template_feat() * self.template_feat()
    }

    pub fn search_tokens(&self) -> i64 {
        self.search_feat() * self.search_feat()
    }

    pub fn is_entangled(&self, block: usize) -> bool {
        self.entangled_blocks.contains(&block)
    }

    /// Checks that the sizes fit together; the error names the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("embed_dim", self.embed_dim),
            ("num_heads", self.num_heads),
            ("mlp_dim", self.mlp_dim),
            ("patch_size", self.patch_size),
            ("template_size", self.template_size),
            ("search_size", self.search_size),
            ("psfm_dim", self.psfm_dim),
            ("head_adapter_dim", self.head_adapter_dim),
            ("head_channels", self.head_channels),
        ];
        for (field, value) in positive {
            if value <= 0 {
                return Err(ConfigError::NotPositive { field, value });
            }
        }
        if self.depth == 0 {
            return Err(ConfigError::NotPositive { field: "depth", value: 0 });
        }
        self.check_limits()?;
        if self.embed_dim % self.num_heads != 0 {
            return Err(ConfigError::HeadsDoNotDivide { embed_dim: self.embed_dim, num_heads: self.num_heads });
        }
        for (field, size) in [("template_size", self.template_size), ("search_size", self.search_size)] {
            let feat = size / self.patch_size;
            if size % self.patch_size != 0 || feat % 2 != 0 {
                return Err(ConfigError::CropSize { field, size, patch_size: self.patch_size });
            }
        }
        if self.mixer_dim != 8 {
            return Err(ConfigError::MixerDim(self.mixer_dim));
        }
        if self.head_channels % 8 != 0 {
            return Err(ConfigError::HeadChannels(self.head_channels));
        }
        if let Some(&block) = self.entangled_blocks.iter().find(|&&b| b >= self.depth) {
            return Err(ConfigError::BlockBeyondDepth { what: "entangled", block, depth: self.depth });
        }
        if let Some(ce) = &self.candidate_elimination {
            if !self.rgb_only {
                return Err(ConfigError::CandidateEliminationTwoStreams);
            }
            ce.validate(self.depth)?;
        }
        Ok(())
    }

    /// The documented maximums of [`limits`], checked before anything is allocated.
    fn check_limits(&self) -> Result<(), ConfigError> {
        use limits::*;
        let over = |field: &'static str, value: i64, max: i64| {
            if value > max {
                Err(ConfigError::OverLimit { field, value, max })
            } else {
                Ok(())
            }
        };
        over("embed_dim", self.embed_dim, MAX_EMBED_DIM)?;
        over("depth", i64::try_from(self.depth).unwrap_or(i64::MAX), MAX_DEPTH as i64)?;
        over("num_heads", self.num_heads, MAX_HEADS)?;
        over("mlp_dim", self.mlp_dim, MAX_MLP_RATIO * self.embed_dim)?;
        over("patch_size", self.patch_size, MAX_PATCH_SIZE)?;
        over("template_size", self.template_size, MAX_CROP_SIZE_PX)?;
        over("search_size", self.search_size, MAX_CROP_SIZE_PX)?;
        over("psfm_dim", self.psfm_dim, MAX_ADAPTER_DIM)?;
        over("head_adapter_dim", self.head_adapter_dim, MAX_ADAPTER_DIM)?;
        over("head_channels", self.head_channels, MAX_ADAPTER_DIM)?;
        // All factors are now small positive numbers: the products below cannot overflow.
        over("template + search tokens", self.template_tokens() + self.search_tokens(), MAX_TOKENS)?;
        if self.entangled_blocks.len() > self.depth {
            return Err(ConfigError::TooManyEntangledBlocks { listed: self.entangled_blocks.len(), depth: self.depth });
        }
        over("estimated parameters", self.estimated_parameters(), MAX_PARAMETERS)
    }

    /// Parameters of the network, approximately (weight matrices of the blocks, adapters, head):
    /// what the limit on the whole network's size is checked against.
    pub fn estimated_parameters(&self) -> i64 {
        let c = self.embed_dim;
        let block = 4 * c * c + 2 * c * self.mlp_dim + 2 * c * self.psfm_dim.max(self.mixer_dim) * 4;
        let patch = 3 * self.patch_size * self.patch_size * c;
        let head = 2 * c * self.head_adapter_dim + 3 * 9 * c * self.head_channels;
        block * self.depth as i64 + patch + head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_presets_and_sizes() {
        assert_eq!(ModelConfig::vit_base().label(), "vit_base");
        assert_eq!(ModelConfig { rgb_only: true, ..ModelConfig::small() }.label(), "small rgb-only");
        let odd = ModelConfig { depth: 4, ..ModelConfig::small() };
        assert_eq!(odd.label(), "embed128x4 64/128px");
    }

    #[test]
    fn presets_are_within_the_limits() {
        for cfg in [ModelConfig::vit_base(), ModelConfig::small(), ModelConfig::tiny()] {
            cfg.validate().unwrap();
        }
        let p = ModelConfig::vit_base().estimated_parameters();
        println!("vit_base: about {p} parameters estimated (limit {})", limits::MAX_PARAMETERS);
        assert!((80_000_000..200_000_000).contains(&p), "{p}");
    }

    #[test]
    fn sizes_over_the_limits_are_refused_by_name() {
        let cases = [
            (ModelConfig { embed_dim: 65536, num_heads: 16, ..ModelConfig::vit_base() }, "embed_dim 65536"),
            (ModelConfig { depth: 64, ..ModelConfig::vit_base() }, "depth 64"),
            (ModelConfig { depth: 10_000_000, ..ModelConfig::vit_base() }, "depth 10000000"),
            (ModelConfig { mlp_dim: 1 << 40, ..ModelConfig::vit_base() }, "mlp_dim"),
            (ModelConfig { patch_size: 2, ..ModelConfig::vit_base() }, "tokens"),
            (ModelConfig { search_size: 1 << 30, ..ModelConfig::vit_base() }, "search_size"),
            (
                ModelConfig { embed_dim: 2048, num_heads: 16, mlp_dim: 16384, depth: 48, ..ModelConfig::vit_base() },
                "parameters",
            ),
        ];
        for (cfg, what) in cases {
            let err = cfg.validate().expect_err(what).to_string();
            println!("{what}: {err}");
            assert!(err.contains(what), "{err}");
        }
    }
}
