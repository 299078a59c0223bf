//! Weights files to a network on the requested device and precision.
//!
//! Each tensor's bytes are read from the file once and copied once, straight into the variable on
//! its device and dtype (the conversion happens inside that copy); no second host copy of the
//! state dict is made.

use std::collections::HashMap;
use std::path::Path;

use tch::{Device, Tensor};

use super::checkpoint::{self, Checkpoint, CheckpointError, Dtype, MetaValue, RawTensor, TensorInfo};
use super::detect::{self, DetectError};
use super::weights::{check_entries, copy_into, EntryInfo};
use super::{ConfigError, ModelConfig, ModelError, PATrack};
use crate::device::Precision;

/// Metadata key under which patrack records the network configuration (JSON) in .safetensors.
pub const CONFIG_METADATA_KEY: &str = "patrack.config";

/// Errors loading a weights file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the configuration recorded in the file is unreadable: {0}")]
    Config(String),
    #[error("the configuration recorded in the file is invalid: {0}")]
    RecordedConfig(ConfigError),
    #[error(
        "the file's tensors are {file_width}-wide in {file_depth} blocks, but the {label} network \
         is {model_width}-wide in {model_depth} blocks ({problems} key problems): {hint}"
    )]
    WrongConfig {
        file_width: i64,
        file_depth: usize,
        label: String,
        model_width: i64,
        model_depth: usize,
        problems: usize,
        hint: String,
    },
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("model configuration {path}: {reason}")]
    ConfigFile { path: String, reason: String },
}

/// A named configuration (`vit_base`, `small`, `tiny`) or a JSON `ModelConfig` file.
pub fn named_config(name: &str) -> Result<ModelConfig, LoadError> {
    match name {
        "vit_base" | "official" => Ok(ModelConfig::vit_base()),
        "tiny" => Ok(ModelConfig::tiny()),
        "small" => Ok(ModelConfig::small()),
        path => {
            let err = |reason: String| LoadError::ConfigFile { path: path.to_owned(), reason };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            let cfg: ModelConfig = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
            cfg.validate().map_err(|e| err(e.to_string()))?;
            Ok(cfg)
        }
    }
}

/// The network on `device` in `precision` with the weights of `path` (configuration as
/// [`load_file`] chooses it, `config` the fallback), or, without a file, the deterministic test
/// weights of configuration `config`, said plainly in the log.
pub fn build(path: Option<&Path>, config: &str, device: Device, precision: Precision) -> Result<PATrack, LoadError> {
    match path {
        Some(path) => load_file(path, Some(named_config(config)?), device, precision),
        None => {
            log::warn!(
                "no weights given (--model, or the model_path parameter): using the deterministic test \
                 weights (golden hash rule); the network runs but does NOT track anything"
            );
            let mut m = PATrack::new(named_config(config)?, device, precision)?;
            m.fill_hashed();
            Ok(m)
        }
    }
}

/// A file without a recorded configuration that does not fit the assumed one: when its width or
/// depth differ, one short message with the configuration to pass instead of every key.
fn not_this_config(err: super::WeightError, infos: &[TensorInfo], cfg: &ModelConfig) -> LoadError {
    let super::WeightError::Mismatch(problems) = &err else {
        return LoadError::Model(ModelError::from(err));
    };
    let file_width = infos
        .iter()
        .find(|t| t.name == "backbone.patch_embed.proj.weight")
        .and_then(|t| t.shape.first())
        .and_then(|&d| i64::try_from(d).ok());
    let file_depth = infos
        .iter()
        .filter_map(|t| t.name.strip_prefix("backbone.blocks.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map(|last| last + 1);
    let (Some(file_width), Some(file_depth)) = (file_width, file_depth) else {
        return LoadError::Model(ModelError::from(err));
    };
    if (file_width, file_depth) == (cfg.embed_dim, cfg.depth) {
        return LoadError::Model(ModelError::from(err));
    }
    let presets =
        [("vit_base", ModelConfig::vit_base()), ("small", ModelConfig::small()), ("tiny", ModelConfig::tiny())];
    let hint = match presets.iter().find(|(_, p)| p.embed_dim == file_width && p.depth == file_depth) {
        Some((name, _)) => format!("pass --config {name} (or the model_config parameter), or a JSON config"),
        None => "pass a JSON config with these sizes (--config FILE or the model_config parameter)".to_string(),
    };
    LoadError::WrongConfig {
        file_width,
        file_depth,
        label: cfg.label(),
        model_width: cfg.embed_dim,
        model_depth: cfg.depth,
        problems: problems.len(),
        hint,
    }
}

/// The configuration recorded in a checkpoint's metadata, if any.
pub fn recorded_config(ckpt: &Checkpoint) -> Result<Option<ModelConfig>, LoadError> {
    config_from_metadata(&ckpt.metadata)
}

/// The configuration recorded in a file's metadata, validated (sizes within
/// [`super::config::limits`]) before anything is built from it.
pub fn config_from_metadata(metadata: &[(String, MetaValue)]) -> Result<Option<ModelConfig>, LoadError> {
    let found = metadata.iter().rev().find(|(k, _)| k == CONFIG_METADATA_KEY).map(|(_, v)| v);
    match found {
        Some(MetaValue::Str(json)) => {
            let cfg: ModelConfig = serde_json::from_str(json).map_err(|e| LoadError::Config(e.to_string()))?;
            cfg.validate().map_err(LoadError::RecordedConfig)?;
            Ok(Some(cfg))
        }
        Some(other) => Err(LoadError::Config(format!("{CONFIG_METADATA_KEY} is {other}, not a JSON string"))),
        None => Ok(None),
    }
}

/// The network a checkpoint holds: the configuration recorded in the file; else, for an
/// OSTrack-format (RGB-only) state dict, the RGB-only tracker with the sizes read from its shapes
/// (logged, see [`detect`]); else `fallback` (default: the official ViT-B). The flag says whether
/// the file itself decided (recorded or detected).
fn choose_config<'a>(
    recorded: Option<ModelConfig>,
    entries: impl Iterator<Item = (&'a str, &'a [usize])>,
    fallback: Option<&ModelConfig>,
) -> Result<(ModelConfig, bool), LoadError> {
    if let Some(cfg) = recorded {
        return Ok((cfg, true));
    }
    match detect::detect_rgb_only(entries, fallback)? {
        Some(found) => {
            log::info!("{}", found.describe());
            Ok((found.config, true))
        }
        None => Ok((fallback.cloned().unwrap_or_default(), false)),
    }
}

/// [`choose_config`] for a checkpoint already read.
pub fn checkpoint_config(ckpt: &Checkpoint, fallback: Option<ModelConfig>) -> Result<ModelConfig, LoadError> {
    let entries = ckpt.tensors.iter().map(|(k, t)| (k.as_str(), t.shape.as_slice()));
    Ok(choose_config(recorded_config(ckpt)?, entries, fallback.as_ref())?.0)
}

/// Loads `.safetensors` or a trainer's `.pth.tar` (PATrack's, or OSTrack's as the RGB-only
/// tracker) with the configuration [`checkpoint_config`] chooses.
///
/// The network is built and the file's keys and shapes are checked against it from the file's
/// header (the pickle, or the safetensors JSON) before any tensor data is read; dead entries are
/// never read.
pub fn load_file(
    path: &Path,
    fallback: Option<ModelConfig>,
    device: Device,
    precision: Precision,
) -> Result<PATrack, LoadError> {
    let mut built: Option<(PATrack, super::LoadReport)> = None;
    let ckpt = checkpoint::read_any_selected(path, |infos, metadata| {
        let entries = infos.iter().map(|t| (t.name.as_str(), t.shape.as_slice()));
        let (cfg, from_file) = choose_config(config_from_metadata(metadata)?, entries, fallback.as_ref())?;
        let model = PATrack::new(cfg, device, precision)?;
        let entries: Vec<EntryInfo> = infos
            .iter()
            .map(|t| EntryInfo {
                key: t.name.clone(),
                shape: t.shape.iter().map(|&d| i64::try_from(d).unwrap_or(i64::MAX)).collect(),
                is_float: matches!(t.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64),
            })
            .collect();
        let (report, copy) = check_entries(&model.vs, &model.cfg, &entries).map_err(|e| {
            if from_file {
                LoadError::Model(ModelError::from(e))
            } else {
                not_this_config(e, infos, &model.cfg)
            }
        })?;
        built = Some((model, report));
        Ok::<_, LoadError>(copy)
    })?;
    let Some((model, mut report)) = built else {
        return Err(LoadError::Config("the file was not checked against a network".into()));
    };
    let vars = model.vs.variables();
    for (key, raw) in &ckpt.tensors {
        copy_raw(&vars, key, raw)?;
        report.loaded += 1;
    }
    drop(vars);
    log::info!(
        "loaded {} tensors from {} ({} dead entries ignored) to {} {}",
        report.loaded,
        path.display(),
        report.dead_ignored,
        crate::device::device_name(device),
        precision
    );
    Ok(model)
}

/// Strictly loads a read checkpoint into `model`.
pub fn load_checkpoint(model: &mut PATrack, ckpt: &Checkpoint) -> Result<super::LoadReport, LoadError> {
    let entries: Vec<EntryInfo> = ckpt
        .tensors
        .iter()
        .map(|(k, t)| EntryInfo {
            key: k.clone(),
            shape: t.shape.iter().map(|&d| d as i64).collect(),
            is_float: matches!(t.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64),
        })
        .collect();
    let (mut report, copy) = check_entries(&model.vs, &model.cfg, &entries).map_err(ModelError::from)?;
    let vars = model.vs.variables();
    for ((key, raw), wanted) in ckpt.tensors.iter().zip(copy) {
        if wanted {
            copy_raw(&vars, key, raw)?;
            report.loaded += 1;
        }
    }
    Ok(report)
}

/// Copies a raw tensor into its variable through a borrowed (zero-copy) CPU view of its bytes.
fn copy_raw(vars: &HashMap<String, Tensor>, key: &str, raw: &RawTensor) -> Result<(), LoadError> {
    raw.validate().map_err(|reason| CheckpointError::BadTensor { name: key.into(), reason })?;
    let size: Vec<i64> = raw.shape.iter().map(|&d| d as i64).collect();
    let mut strides = vec![1i64; size.len()];
    for i in (0..size.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * size[i + 1];
    }
    // SAFETY: `validate` checked that `data` holds exactly numel * element size bytes of this
    // dtype, contiguous; the view does not outlive `raw` (it is dropped at the end of this call).
    let view = unsafe { Tensor::f_from_blob(raw.data.as_ptr(), &size, &strides, raw.dtype.kind(), Device::Cpu) }
        .map_err(|e| CheckpointError::BadTensor { name: key.into(), reason: e.to_string() })?;
    copy_into(vars, key, &view).map_err(ModelError::from)?;
    Ok(())
}

/// Writes the network's variables (official key names, f32) and its configuration to a
/// `.safetensors` file that [`load_file`] and PyTorch's `safetensors.torch.load_file` read.
pub fn save_file(model: &PATrack, path: &Path) -> Result<(), LoadError> {
    save_file_as(model, path, Precision::Fp32)
}

/// As [`save_file`], storing the floating-point variables in `precision` (fp16 halves the file;
/// the loader widens them again to the requested precision).
pub fn save_file_as(model: &PATrack, path: &Path, precision: Precision) -> Result<(), LoadError> {
    let (kind, dtype) = match precision {
        Precision::Fp32 => (tch::Kind::Float, Dtype::F32),
        Precision::Fp16 => (tch::Kind::Half, Dtype::F16),
        Precision::Bf16 => (tch::Kind::BFloat16, Dtype::BF16),
    };
    let mut vars: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tensors = Vec::with_capacity(vars.len());
    for (key, var) in vars {
        let t = var.to_device(Device::Cpu).to_kind(kind).contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let numel = t.numel();
        let mut data = vec![0u8; numel * kind.elt_size_in_bytes()];
        t.f_copy_data_u8(&mut data, numel)
            .map_err(|e| CheckpointError::BadTensor { name: key.clone(), reason: e.to_string() })?;
        let raw = RawTensor::new(dtype, shape, data)
            .map_err(|reason| CheckpointError::BadTensor { name: key.clone(), reason })?;
        tensors.push((key, raw));
    }
    let cfg = serde_json::to_string(&model.cfg).map_err(|e| LoadError::Config(e.to_string()))?;
    checkpoint::write_safetensors_with_metadata(
        &tensors,
        &[(CONFIG_METADATA_KEY.to_string(), MetaValue::Str(cfg))],
        path,
    )?;
    Ok(())
}
