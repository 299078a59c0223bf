//! What network a weights file holds when it records no configuration.
//!
//! patrack's own files record their [`ModelConfig`]; trainer checkpoints (`.pth.tar`) do not.
//! The one public checkpoint of PATrack's lineage is OSTrack's `OSTrack_ep0300.pth.tar`
//! (`vitb_256_mae_ce_32x4_ep300`): its 242 state-dict keys are a subset of PATrack's 730 and hold
//! no adapter. Such a file is the RGB-only tracker, so it is recognised by its key set (never by
//! its name) and its sizes are read from the tensor shapes:
//!
//! | size | from |
//! |---|---|
//! | `embed_dim`, `patch_size` | `backbone.patch_embed.proj.weight` (C, 3, p, p) |
//! | `template_size`, `search_size` | token counts of `backbone.pos_embed_z` / `pos_embed_x` (1, side², C) |
//! | `depth` | the block indices `backbone.blocks.<i>.` (0 .. depth-1, none missing) |
//! | `mlp_dim` | `backbone.blocks.0.mlp.fc1.weight` (mlp, C) |
//! | `head_channels` | `box_head.conv1_ctr.0.weight` (channels, C, 3, 3) |
//!
//! The number of attention heads leaves no trace in the shapes (the qkv projection is (3C, C)
//! for any head count). It comes from, in this order: the caller's configuration when its sizes
//! are the file's; the preset (`vit_base`, `small`, `tiny`) with the file's sizes; else ViT's
//! 64 channels per head (ViT-S/B/L and OSTrack's ViT-B: 768 / 12). A width that is not a multiple
//! of 64 is an error that asks for a configuration. The adapter sizes (used only when the file is
//! the base of `patrack train --stage adapt`) follow the same choice; without a matching
//! configuration they take the official ratios (entangled blocks at 1/4, 2/4, 3/4 of the depth,
//! bottlenecks C/4: 3, 6, 9 and 192 for ViT-B).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::config::ModelConfig;

/// Why a file that looks like an RGB-only checkpoint cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "the file looks like an OSTrack (RGB-only) checkpoint (no adapter keys) but has no {key}, \
         which gives {what}"
    )]
    Missing { key: &'static str, what: &'static str },
    #[error("{key} has shape {shape:?}; an OSTrack (RGB-only) checkpoint has {expected}")]
    Shape { key: &'static str, shape: Vec<usize>, expected: &'static str },
    #[error("the transformer blocks of the file are numbered {found}; expected 0 to {last} without gaps")]
    Blocks { found: String, last: usize },
    #[error(
        "the file records no configuration and its width {embed_dim} is not a multiple of 64, so \
         the number of attention heads cannot be told; pass a JSON model configuration with \
         embed_dim {embed_dim} and its num_heads"
    )]
    Heads { embed_dim: i64 },
    #[error("the sizes read from the file do not form a valid network: {0}")]
    Invalid(#[from] super::ConfigError),
}

/// Where the number of attention heads of a detected checkpoint came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadsSource {
    /// The caller's configuration, whose sizes are the file's.
    Given,
    /// The named preset, whose sizes are the file's.
    Preset(&'static str),
    /// ViT's 64 channels per head (nothing in the file or the caller said otherwise).
    Assumed64,
}

impl fmt::Display for HeadsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadsSource::Given => write!(f, "from the given configuration"),
            HeadsSource::Preset(name) => write!(f, "as in the {name} configuration of these sizes"),
            HeadsSource::Assumed64 => write!(f, "assumed: 64 channels per head, as in ViT"),
        }
    }
}

/// An RGB-only checkpoint and the configuration it was read as.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbOnlyCheckpoint {
    /// The network to build (`rgb_only: true`).
    pub config: ModelConfig,
    pub heads_from: HeadsSource,
}

impl RgbOnlyCheckpoint {
    /// The log line that says what was detected.
    pub fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "detected an OSTrack (RGB-only) checkpoint: ViT width {}, {} blocks, {} heads ({}), MLP {}, \
             patch {} px, template {} px / search {} px, head {} channels; the aux stream is not used",
            c.embed_dim,
            c.depth,
            c.num_heads,
            self.heads_from,
            c.mlp_dim,
            c.patch_size,
            c.template_size,
            c.search_size,
            c.head_channels
        )
    }
}

const BACKBONE_KEYS: [&str; 8] = [
    "backbone.cls_token",
    "backbone.pos_embed",
    "backbone.pos_embed_z",
    "backbone.pos_embed_x",
    "backbone.patch_embed.proj.weight",
    "backbone.patch_embed.proj.bias",
    "backbone.norm.weight",
    "backbone.norm.bias",
];

const BLOCK_KEYS: [&str; 12] = [
    "norm1.weight",
    "norm1.bias",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.proj.weight",
    "attn.proj.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
];

const CONV_BN_KEYS: [&str; 7] =
    ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked"];

/// The block index of `backbone.blocks.<i>.<rest>` if `rest` is a key of an OSTrack block.
fn ostrack_block(key: &str) -> Option<usize> {
    let (index, sub) = key.strip_prefix("backbone.blocks.")?.split_once('.')?;
    let i: usize = index.parse().ok()?;
    // torch writes plain decimal indices; "01" is not one of its keys.
    (i.to_string() == index && BLOCK_KEYS.contains(&sub)).then_some(i)
}

/// Whether `key` is a key of OSTrack's state dict (of any depth): the backbone without adapters
/// and the CENTER head.
pub fn is_ostrack_key(key: &str) -> bool {
    if BACKBONE_KEYS.contains(&key) || ostrack_block(key).is_some() {
        return true;
    }
    let Some((conv, param)) = key.strip_prefix("box_head.").and_then(|k| k.split_once('.')) else {
        return false;
    };
    let Some((layer, branch)) = conv.split_once('_') else { return false };
    if !["ctr", "offset", "size"].contains(&branch) {
        return false;
    }
    match layer {
        "conv1" | "conv2" | "conv3" | "conv4" => CONV_BN_KEYS.contains(&param),
        "conv5" => param == "weight" || param == "bias",
        _ => false,
    }
}

/// The sizes the shapes determine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes {
    embed_dim: i64,
    depth: usize,
    mlp_dim: i64,
    patch_size: i64,
    template_size: i64,
    search_size: i64,
    head_channels: i64,
}

impl Sizes {
    fn of(c: &ModelConfig) -> Self {
        Self {
            embed_dim: c.embed_dim,
            depth: c.depth,
            mlp_dim: c.mlp_dim,
            patch_size: c.patch_size,
            template_size: c.template_size,
            search_size: c.search_size,
            head_channels: c.head_channels,
        }
    }
}

/// Decides from the key set (name, shape) of a file that records no configuration whether it is
/// an OSTrack-format RGB-only checkpoint: every key is an OSTrack key (which includes the dead
/// `cls_token`, `pos_embed` and `num_batches_tracked`), so there is no adapter. `Ok(None)`:
/// it is not (the caller builds the full network). `fallback` is the caller's configuration.
pub fn detect_rgb_only<'a, I>(
    entries: I,
    fallback: Option<&ModelConfig>,
) -> Result<Option<RgbOnlyCheckpoint>, DetectError>
where
    I: IntoIterator<Item = (&'a str, &'a [usize])>,
{
    let shapes: BTreeMap<&str, &[usize]> = entries.into_iter().collect();
    if shapes.is_empty() || !shapes.keys().all(|k| is_ostrack_key(k)) {
        return Ok(None);
    }
    let sizes = read_sizes(&shapes)?;
    let presets =
        [("vit_base", ModelConfig::vit_base()), ("small", ModelConfig::small()), ("tiny", ModelConfig::tiny())];
    let (base, heads_from) = if let Some(given) = fallback.filter(|c| Sizes::of(c) == sizes) {
        (given.clone(), HeadsSource::Given)
    } else if let Some((name, preset)) = presets.iter().find(|(_, c)| Sizes::of(c) == sizes) {
        (preset.clone(), HeadsSource::Preset(name))
    } else {
        if sizes.embed_dim % 64 != 0 {
            return Err(DetectError::Heads { embed_dim: sizes.embed_dim });
        }
        (official_ratios(&sizes), HeadsSource::Assumed64)
    };
    let config = ModelConfig {
        embed_dim: sizes.embed_dim,
        depth: sizes.depth,
        mlp_dim: sizes.mlp_dim,
        patch_size: sizes.patch_size,
        template_size: sizes.template_size,
        search_size: sizes.search_size,
        head_channels: sizes.head_channels,
        rgb_only: true,
        ..base
    };
    config.validate()?;
    Ok(Some(RgbOnlyCheckpoint { config, heads_from }))
}

/// A configuration of `sizes` with 64-wide heads and the adapters in the official proportions.
fn official_ratios(sizes: &Sizes) -> ModelConfig {
    let mut entangled: Vec<usize> = (1..=3).map(|k| k * sizes.depth / 4).collect();
    entangled.dedup();
    ModelConfig {
        num_heads: sizes.embed_dim / 64,
        entangled_blocks: entangled,
        psfm_dim: (sizes.embed_dim / 4).max(1),
        head_adapter_dim: (sizes.embed_dim / 4).max(1),
        ..ModelConfig::vit_base()
    }
}

fn read_sizes(shapes: &BTreeMap<&str, &[usize]>) -> Result<Sizes, DetectError> {
    let get =
        |key: &'static str, what: &'static str| shapes.get(key).copied().ok_or(DetectError::Missing { key, what });
    let to_i64 = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);

    const PATCH: &str = "backbone.patch_embed.proj.weight";
    let patch = get(PATCH, "the token width and the patch size")?;
    let (embed_dim, patch_size) = match patch {
        [c, 3, p, q] if p == q && *c > 0 && *p > 0 => (to_i64(*c), to_i64(*p)),
        _ => return Err(DetectError::Shape { key: PATCH, shape: patch.to_vec(), expected: "(width, 3, p, p)" }),
    };
    let side_px = |key: &'static str, what: &'static str| -> Result<i64, DetectError> {
        let shape = get(key, what)?;
        let bad = || DetectError::Shape { key, shape: shape.to_vec(), expected: "(1, side * side, width)" };
        let [1, tokens, c] = shape else { return Err(bad()) };
        if to_i64(*c) != embed_dim {
            return Err(bad());
        }
        let side = (*tokens as f64).sqrt().round() as usize;
        if side == 0 || side * side != *tokens {
            return Err(bad());
        }
        Ok(to_i64(side) * patch_size)
    };
    let template_size = side_px("backbone.pos_embed_z", "the template size")?;
    let search_size = side_px("backbone.pos_embed_x", "the search size")?;

    let blocks: BTreeSet<usize> = shapes.keys().filter_map(|k| ostrack_block(k)).collect();
    let depth = blocks.len();
    if depth == 0 {
        return Err(DetectError::Missing { key: "backbone.blocks.0.mlp.fc1.weight", what: "the depth and MLP width" });
    }
    if blocks.iter().enumerate().any(|(i, &b)| i != b) {
        let found = blocks.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
        return Err(DetectError::Blocks { found, last: depth - 1 });
    }
    const FC1: &str = "backbone.blocks.0.mlp.fc1.weight";
    let fc1 = get(FC1, "the MLP width")?;
    let mlp_dim = match fc1 {
        [m, c] if to_i64(*c) == embed_dim && *m > 0 => to_i64(*m),
        _ => return Err(DetectError::Shape { key: FC1, shape: fc1.to_vec(), expected: "(mlp width, width)" }),
    };
    const HEAD: &str = "box_head.conv1_ctr.0.weight";
    let head = get(HEAD, "the head's channel count")?;
    let head_channels = match head {
        [h, c, 3, 3] if to_i64(*c) == embed_dim && *h > 0 => to_i64(*h),
        _ => return Err(DetectError::Shape { key: HEAD, shape: head.to_vec(), expected: "(channels, width, 3, 3)" }),
    };
    Ok(Sizes { embed_dim, depth, mlp_dim, patch_size, template_size, search_size, head_channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key set of an OSTrack checkpoint of `cfg`'s sizes, with shapes.
    fn ostrack_entries(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
        let c = cfg.embed_dim as usize;
        let p = cfg.patch_size as usize;
        let tokens = |size: i64| (size / cfg.patch_size).pow(2) as usize;
        let mut v = vec![
            ("backbone.cls_token".to_string(), vec![1, 1, c]),
            ("backbone.pos_embed".into(), vec![1, 197, c]),
            ("backbone.pos_embed_z".into(), vec![1, tokens(cfg.template_size), c]),
            ("backbone.pos_embed_x".into(), vec![1, tokens(cfg.search_size), c]),
            ("backbone.patch_embed.proj.weight".into(), vec![c, 3, p, p]),
            ("backbone.patch_embed.proj.bias".into(), vec![c]),
        ];
        let m = cfg.mlp_dim as usize;
        for i in 0..cfg.depth {
            for (sub, shape) in [
                ("norm1.weight", vec![c]),
                ("attn.qkv.weight", vec![3 * c, c]),
                ("mlp.fc1.weight", vec![m, c]),
                ("mlp.fc2.weight", vec![c, m]),
            ] {
                v.push((format!("backbone.blocks.{i}.{sub}"), shape));
            }
        }
        v.push(("backbone.norm.weight".into(), vec![c]));
        let h = cfg.head_channels as usize;
        v.push(("box_head.conv1_ctr.0.weight".into(), vec![h, c, 3, 3]));
        v.push(("box_head.conv1_ctr.1.num_batches_tracked".into(), vec![]));
        v.push(("box_head.conv5_size.bias".into(), vec![2]));
        v
    }

    fn detect(
        entries: &[(String, Vec<usize>)],
        fallback: Option<&ModelConfig>,
    ) -> Result<Option<RgbOnlyCheckpoint>, DetectError> {
        detect_rgb_only(entries.iter().map(|(k, s)| (k.as_str(), s.as_slice())), fallback)
    }

    #[test]
    fn ostrack_vit_base_is_the_rgb_only_vit_base() {
        let found = detect(&ostrack_entries(&ModelConfig::vit_base()), None).unwrap().unwrap();
        assert_eq!(found.config, ModelConfig { rgb_only: true, ..ModelConfig::vit_base() });
        assert_eq!(found.heads_from, HeadsSource::Preset("vit_base"));
        println!("{}", found.describe());
        assert!(found.describe().contains("12 heads") && found.describe().contains("the aux stream is not used"));
    }

    #[test]
    fn a_matching_given_configuration_sets_the_heads() {
        let given = ModelConfig { num_heads: 8, ..ModelConfig::small() };
        let found = detect(&ostrack_entries(&given), Some(&given)).unwrap().unwrap();
        assert_eq!(found.config.num_heads, 8);
        assert_eq!(found.heads_from, HeadsSource::Given);
        // A configuration of other sizes is not used: the sizes come from the file.
        let found = detect(&ostrack_entries(&ModelConfig::small()), Some(&ModelConfig::vit_base())).unwrap().unwrap();
        assert_eq!(found.config, ModelConfig { rgb_only: true, ..ModelConfig::small() });
    }

    #[test]
    fn other_sizes_take_64_wide_heads_and_the_official_adapter_ratios() {
        let odd = ModelConfig {
            embed_dim: 384,
            depth: 8,
            mlp_dim: 1536,
            template_size: 192,
            search_size: 384,
            head_channels: 128,
            ..ModelConfig::vit_base()
        };
        let found = detect(&ostrack_entries(&odd), Some(&ModelConfig::vit_base())).unwrap().unwrap();
        let c = &found.config;
        assert_eq!((c.embed_dim, c.depth, c.num_heads, c.mlp_dim), (384, 8, 6, 1536));
        assert_eq!((c.template_size, c.search_size, c.head_channels), (192, 384, 128));
        assert_eq!((c.entangled_blocks.clone(), c.psfm_dim, c.head_adapter_dim), (vec![2, 4, 6], 96, 96));
        assert_eq!(found.heads_from, HeadsSource::Assumed64);
        let narrow = ModelConfig { embed_dim: 96, num_heads: 3, ..odd };
        let err = detect(&ostrack_entries(&narrow), None).unwrap_err();
        assert!(err.to_string().contains("width 96 is not a multiple of 64"), "{err}");
    }

    #[test]
    fn adapter_keys_or_foreign_keys_mean_not_rgb_only() {
        let mut with_adapter = ostrack_entries(&ModelConfig::tiny());
        with_adapter.push(("backbone.blocks.0.adap_t.proj.weight".into(), vec![64, 8]));
        assert!(detect(&with_adapter, None).unwrap().is_none());
        let mut with_head_adapter = ostrack_entries(&ModelConfig::tiny());
        with_head_adapter.push(("adapter_head.adapter_down.weight".into(), vec![32, 64]));
        assert!(detect(&with_head_adapter, None).unwrap().is_none());
        let mut foreign = ostrack_entries(&ModelConfig::tiny());
        foreign.push(("backbone.blocks.01.norm1.weight".into(), vec![64]));
        assert!(detect(&foreign, None).unwrap().is_none());
        assert!(detect(&[], None).unwrap().is_none());
    }

    #[test]
    fn missing_or_misshapen_size_keys_are_named() {
        let entries = ostrack_entries(&ModelConfig::tiny());
        let without = |key: &str| entries.iter().filter(|(k, _)| k != key).cloned().collect::<Vec<_>>();
        let err = detect(&without("backbone.pos_embed_x"), None).unwrap_err();
        assert_eq!(err.to_string(), "the file looks like an OSTrack (RGB-only) checkpoint (no adapter keys) but has no backbone.pos_embed_x, which gives the search size");
        let err = detect(&without("backbone.patch_embed.proj.weight"), None).unwrap_err();
        assert!(err.to_string().contains("backbone.patch_embed.proj.weight"), "{err}");
        let mut odd = entries.clone();
        odd.iter_mut().find(|(k, _)| k == "backbone.pos_embed_z").unwrap().1 = vec![1, 15, 64];
        let err = detect(&odd, None).unwrap_err();
        assert!(err.to_string().contains("backbone.pos_embed_z has shape [1, 15, 64]"), "{err}");
        let gap: Vec<_> = entries.iter().filter(|(k, _)| !k.starts_with("backbone.blocks.2.")).cloned().collect();
        let err = detect(&gap, None).unwrap_err();
        assert!(err.to_string().contains("numbered 0, 1, 3"), "{err}");
    }

    #[test]
    fn the_published_ostrack_key_list_is_detected_as_rgb_only_vit_base() {
        // The 242 keys and shapes of OSTrack's `OSTrack_ep0300.pth.tar`: 8 backbone keys,
        // 12 blocks x 12, and 3 head branches x (4 conv+BN x 7 + conv5 x 2).
        let text = include_str!("../../tests/data/ostrack_state_dict_keys.txt");
        let entries: Vec<(String, Vec<usize>)> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut parts = l.split('\t');
                let key = parts.next().unwrap_or_default().to_string();
                let shape = parts.next().unwrap_or_default().trim_matches(|c| c == '(' || c == ')');
                (key, shape.split(',').filter_map(|d| d.trim().parse().ok()).collect())
            })
            .collect();
        assert_eq!(entries.len(), 242);
        assert!(entries.iter().all(|(k, _)| is_ostrack_key(k)));
        let found = detect(&entries, Some(&ModelConfig::small())).unwrap().unwrap();
        assert_eq!(found.config, ModelConfig { rgb_only: true, ..ModelConfig::vit_base() });
        assert!(!is_ostrack_key("adapter_head.adapter_down.weight"));
        assert!(!is_ostrack_key("norm1.weight"));
        assert!(!is_ostrack_key("box_head.conv6_ctr.weight"));
    }
}
