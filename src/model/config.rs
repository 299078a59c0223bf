//! Sizes of the network. The default is the official PATrack configuration (OSTrack ViT-B/16,
//! template 128 px, search 256 px, entangled adapters in blocks 3, 6, 9); small configurations
//! serve fast tests and the bundled demo model.

use serde::{Deserialize, Serialize};

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
        }
    }

    /// Template feature side in tokens (8 for 128 px).
    /// A short name for reports: the preset this configuration equals, or its main sizes.
    pub fn label(&self) -> String {
        let named = [("vit_base", Self::vit_base()), ("small", Self::small()), ("tiny", Self::tiny())];
        let base = Self { rgb_only: false, ..self.clone() };
        let name = match named.iter().find(|(_, c)| *c == base) {
            Some((n, _)) => n.to_string(),
            None => format!("embed{}x{} {}/{}px", self.embed_dim, self.depth, self.template_size, self.search_size),
        };
        if self.rgb_only {
            format!("{name} rgb-only")
        } else {
            name
        }
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
    pub fn validate(&self) -> Result<(), String> {
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
        for (name, v) in positive {
            if v <= 0 {
                return Err(format!("{name} must be positive, got {v}"));
            }
        }
        if self.depth == 0 {
            return Err("depth must be positive".into());
        }
        if self.embed_dim % self.num_heads != 0 {
            return Err(format!("embed_dim {} is not a multiple of num_heads {}", self.embed_dim, self.num_heads));
        }
        for (name, size) in [("template_size", self.template_size), ("search_size", self.search_size)] {
            let feat = size / self.patch_size;
            if size % self.patch_size != 0 || feat % 2 != 0 {
                return Err(format!(
                    "{name} {size} must be an even multiple of patch_size {} (the Mixer pools 2x2)",
                    self.patch_size
                ));
            }
        }
        if self.mixer_dim != 8 {
            return Err(format!("mixer_dim must be 8 (the Mixer's fixed split), got {}", self.mixer_dim));
        }
        if self.head_channels % 8 != 0 {
            return Err(format!("head_channels {} must be a multiple of 8", self.head_channels));
        }
        if let Some(b) = self.entangled_blocks.iter().find(|&&b| b >= self.depth) {
            return Err(format!("entangled block {b} is beyond depth {}", self.depth));
        }
        Ok(())
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
}
