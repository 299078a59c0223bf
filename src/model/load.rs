//! Weights files to a network on the requested device and precision.
//!
//! Each tensor's bytes are read from the file once and copied once, straight into the variable on
//! its device and dtype (the conversion happens inside that copy); no second host copy of the
//! state dict is made.

use std::collections::HashMap;
use std::path::Path;

use tch::{Device, Tensor};

use super::checkpoint::{self, Checkpoint, CheckpointError, Dtype, MetaValue, RawTensor};
use super::detect::{self, DetectError};
use super::weights::{check_entries, copy_into, EntryInfo};
use super::{ModelConfig, ModelError, PATrack};
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
    #[error("the configuration recorded in the file is invalid: {0}")]
    Config(String),
    #[error(transparent)]
    Detect(#[from] DetectError),
}

/// The configuration recorded in a checkpoint's metadata, if any.
pub fn recorded_config(ckpt: &Checkpoint) -> Result<Option<ModelConfig>, LoadError> {
    match ckpt.meta(CONFIG_METADATA_KEY) {
        Some(MetaValue::Str(json)) => {
            serde_json::from_str(json).map(Some).map_err(|e| LoadError::Config(e.to_string()))
        }
        Some(other) => Err(LoadError::Config(format!("{CONFIG_METADATA_KEY} is {other}, not a JSON string"))),
        None => Ok(None),
    }
}

/// The network a read checkpoint holds: the configuration recorded in the file; else, for an
/// OSTrack-format (RGB-only) state dict, the RGB-only tracker with the sizes read from its shapes
/// (logged, see [`detect`]); else `fallback` (default: the official ViT-B).
pub fn checkpoint_config(ckpt: &Checkpoint, fallback: Option<ModelConfig>) -> Result<ModelConfig, LoadError> {
    if let Some(cfg) = recorded_config(ckpt)? {
        return Ok(cfg);
    }
    let entries = ckpt.tensors.iter().map(|(k, t)| (k.as_str(), t.shape.as_slice()));
    match detect::detect_rgb_only(entries, fallback.as_ref())? {
        Some(found) => {
            log::info!("{}", found.describe());
            Ok(found.config)
        }
        None => Ok(fallback.unwrap_or_default()),
    }
}

/// Loads `.safetensors` or a trainer's `.pth.tar` (PATrack's, or OSTrack's as the RGB-only
/// tracker) with the configuration [`checkpoint_config`] chooses.
pub fn load_file(
    path: &Path,
    fallback: Option<ModelConfig>,
    device: Device,
    precision: Precision,
) -> Result<PATrack, LoadError> {
    let ckpt = checkpoint::read_any(path)?;
    let cfg = checkpoint_config(&ckpt, fallback)?;
    let mut model = PATrack::new(cfg, device, precision)?;
    let report = load_checkpoint(&mut model, &ckpt)?;
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
