//! Reading PyTorch trainer checkpoints (`torch.save` zip format) and `.safetensors` files in pure
//! Rust, and writing `.safetensors`.
//!
//! libtorch cannot read the official trainer's checkpoints: they are a pickled dict whose `net`
//! entry is an `OrderedDict` and whose `settings` entry is an instance of a trainer class
//! (`lib.train.admin.settings.Settings`). So the zip is opened here, `data.pkl` is interpreted by
//! a restricted pickle machine that never executes anything (unknown classes become inert
//! stubs), and every tensor is materialised from its storage view with full bounds checking.
//! The result converts to `tch` tensors or to a `.safetensors` file that
//! `tch::Tensor::read_safetensors` reads back identically.
//!
//! The legacy (pre-1.6) non-zip torch format is detected and rejected with a hint to re-save it.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use super::pickle::{self, StorageRef, TensorRef, Value};

pub use super::pickle::PickleError;

/// Largest `data.pkl` accepted, in bytes, declared and inflated (the official ViT-B trainer
/// checkpoint's is about 60 KB; a zip bomb's is gigabytes).
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Most tensor data read from one file, in bytes (4 GiB: ten times the official ViT-B state dict
/// in fp32). Loading into a network bounds it further by the network's own size.
pub const MAX_TENSOR_BYTES: u64 = 4 << 30;
/// Largest `.safetensors` JSON header, in bytes (the ViT-B file's is about 70 KB).
pub const MAX_SAFETENSORS_HEADER_BYTES: u64 = 16 << 20;
/// Deflate cannot expand data more than about 1032:1, so a zip entry declaring more bytes than
/// this times its compressed size (plus a little) is inconsistent and refused before inflating.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Errors reading or writing checkpoints. Each message states its cause once (the underlying
/// error's text is part of the message, not a separate `source`).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is empty")]
    Empty { path: PathBuf },
    #[error(
        "{path}: unrecognised weights format (first bytes {magic_hex}); expected a torch zip \
         checkpoint (.pth/.pth.tar) or .safetensors"
    )]
    UnknownFormat { path: PathBuf, magic_hex: String },
    #[error(
        "legacy (pre-1.6, non-zip) torch checkpoint format is not supported; re-save it with a \
         current torch: `torch.save(torch.load(OLD, map_location='cpu', weights_only=False), NEW)`"
    )]
    LegacyTorchFormat,
    #[error("not a torch zip checkpoint: {0}")]
    NotZip(zip::result::ZipError),
    #[error("cannot read zip entry {entry}: {cause}")]
    ZipEntry { entry: String, cause: zip::result::ZipError },
    #[error("cannot read zip entry {entry}: {cause}")]
    ZipRead { entry: String, cause: std::io::Error },
    #[error("zip entry {entry} declares {declared_bytes} bytes, over the {max_bytes}-byte limit for it")]
    EntryTooLarge { entry: String, declared_bytes: u64, max_bytes: u64 },
    #[error("no `<folder>/data.pkl` entry in the zip: not a torch.save checkpoint")]
    NoDataPkl,
    #[error("several `<folder>/data.pkl` entries in the zip: {}", .0.join(", "))]
    AmbiguousDataPkl(Vec<String>),
    #[error("checkpoint is stored big-endian (byteorder `{0}`); only little-endian is supported")]
    BigEndian(String),
    #[error("cannot interpret {entry}: {cause}")]
    Pickle { entry: String, cause: PickleError },
    #[error("no state dict found: {0}")]
    NoStateDict(String),
    #[error("state dict entry {name}: {reason}")]
    BadEntry { name: String, reason: String },
    #[error("tensor {name}: storage {key} has no zip entry {entry}")]
    MissingStorage { name: String, key: String, entry: String },
    #[error("tensor {name}: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("the tensors to read hold {bytes} bytes, over the {max_bytes}-byte limit")]
    TooMuchData { bytes: u64, max_bytes: u64 },
    #[error("invalid tensor: {0}")]
    InvalidTensor(String),
    #[error("safetensors header: {0}")]
    SafetensorsHeader(String),
    #[error("cannot write safetensors file: {0}")]
    SafetensorsWrite(String),
    #[error("safetensors tensor {name} has dtype {dtype}, which is not supported")]
    UnsupportedSafetensorsDtype { name: String, dtype: String },
    #[error("libtorch: {0}")]
    Tch(tch::TchError),
}

pub type Result<T> = std::result::Result<T, CheckpointError>;

/// Element types of checkpoint tensors (those of torch's typed storages and of tch/safetensors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.safetensors_name())
    }
}

impl Dtype {
    /// The name `.safetensors` headers use (`F32`, `BF16`, `BOOL` ...).
    pub fn safetensors_name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
            Dtype::I16 => "I16",
            Dtype::I8 => "I8",
            Dtype::U8 => "U8",
            Dtype::Bool => "BOOL",
        }
    }

    fn from_safetensors_name(name: &str) -> Option<Dtype> {
        [
            Dtype::F32,
            Dtype::F16,
            Dtype::BF16,
            Dtype::F64,
            Dtype::I64,
            Dtype::I32,
            Dtype::I16,
            Dtype::I8,
            Dtype::U8,
            Dtype::Bool,
        ]
        .into_iter()
        .find(|d| d.safetensors_name() == name)
    }

    pub fn size_in_bytes(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    pub fn kind(self) -> tch::Kind {
        match self {
            Dtype::F32 => tch::Kind::Float,
            Dtype::F16 => tch::Kind::Half,
            Dtype::BF16 => tch::Kind::BFloat16,
            Dtype::F64 => tch::Kind::Double,
            Dtype::I64 => tch::Kind::Int64,
            Dtype::I32 => tch::Kind::Int,
            Dtype::I16 => tch::Kind::Int16,
            Dtype::I8 => tch::Kind::Int8,
            Dtype::U8 => tch::Kind::Uint8,
            Dtype::Bool => tch::Kind::Bool,
        }
    }

    /// The dtype of a torch storage class (`FloatStorage` ...); `UntypedStorage` holds bytes.
    fn from_storage_type(name: &str) -> Option<Dtype> {
        Some(match name {
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::BF16,
            "DoubleStorage" => Dtype::F64,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" | "UntypedStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    fn to_safetensors(self) -> safetensors::Dtype {
        match self {
            Dtype::F32 => safetensors::Dtype::F32,
            Dtype::F16 => safetensors::Dtype::F16,
            Dtype::BF16 => safetensors::Dtype::BF16,
            Dtype::F64 => safetensors::Dtype::F64,
            Dtype::I64 => safetensors::Dtype::I64,
            Dtype::I32 => safetensors::Dtype::I32,
            Dtype::I16 => safetensors::Dtype::I16,
            Dtype::I8 => safetensors::Dtype::I8,
            Dtype::U8 => safetensors::Dtype::U8,
            Dtype::Bool => safetensors::Dtype::BOOL,
        }
    }
}

/// A dense tensor: `data` holds `shape.product() * dtype.size_in_bytes()` bytes, row-major
/// (contiguous), little-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl RawTensor {
    /// Checks that `data` has exactly the size `shape` and `dtype` call for (and that booleans
    /// are 0 or 1).
    pub fn new(dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) -> std::result::Result<Self, String> {
        let tensor = RawTensor { dtype, shape, data };
        tensor.validate()?;
        Ok(tensor)
    }

    /// Number of elements (1 for a 0-dim tensor); `None` if it overflows `usize`.
    pub fn numel(&self) -> Option<usize> {
        checked_numel(&self.shape)
    }

    /// The consistency `new` guarantees, re-checked because the fields are public.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let expected_bytes = self
            .numel()
            .and_then(|n| n.checked_mul(self.dtype.size_in_bytes()))
            .ok_or_else(|| format!("shape {} overflows", shape_text(&self.shape)))?;
        if self.data.len() != expected_bytes {
            return Err(format!(
                "{} data bytes, but shape {} of {} needs {expected_bytes}",
                self.data.len(),
                shape_text(&self.shape),
                self.dtype
            ));
        }
        // libtorch assumes bool bytes are 0/1; anything else is undefined behaviour there.
        if self.dtype == Dtype::Bool && self.data.iter().any(|&b| b > 1) {
            return Err("bool tensor holds bytes other than 0 and 1".to_string());
        }
        Ok(())
    }

    /// A CPU `tch` tensor with the same dtype, shape and bytes.
    pub fn to_tch(&self) -> Result<tch::Tensor> {
        self.validate().map_err(CheckpointError::InvalidTensor)?;
        let size = self.shape.iter().map(|&d| i64::try_from(d)).collect::<std::result::Result<Vec<i64>, _>>().map_err(
            |_| CheckpointError::InvalidTensor(format!("shape {} does not fit i64", shape_text(&self.shape))),
        )?;
        Ok(tch::Tensor::f_from_data_size(&self.data, &size, self.dtype.kind())?)
    }
}

fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// A simple (scalar) top-level checkpoint entry, kept for logging (`epoch`, `net_type` ...).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaValue::None => write!(f, "None"),
            MetaValue::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            MetaValue::Int(i) => write!(f, "{i}"),
            MetaValue::Float(x) => write!(f, "{x}"),
            MetaValue::Str(s) => write!(f, "{s}"),
        }
    }
}

/// Weights read from a checkpoint, in file order.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// The state dict, e.g. `backbone.blocks.0.attn.qkv.weight`.
    pub tensors: Vec<(String, RawTensor)>,
    /// Scalar top-level entries of a `.pth` (or the `__metadata__` of a `.safetensors`).
    pub metadata: Vec<(String, MetaValue)>,
    /// Which top-level key held the state dict (`net`, `state_dict`, `model`), or `None` when the
    /// file itself is the state dict.
    pub state_dict_key: Option<String>,
}

impl Checkpoint {
    pub fn tensor(&self, name: &str) -> Option<&RawTensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// All tensors as CPU `tch` tensors, in order.
    pub fn to_tch(&self) -> Result<Vec<(String, tch::Tensor)>> {
        self.tensors
            .iter()
            .map(|(name, t)| {
                let tensor = t.to_tch().map_err(|e| match e {
                    CheckpointError::InvalidTensor(reason) => CheckpointError::BadTensor { name: name.clone(), reason },
                    other => other,
                })?;
                Ok((name.clone(), tensor))
            })
            .collect()
    }
}

impl From<tch::TchError> for CheckpointError {
    fn from(e: tch::TchError) -> Self {
        CheckpointError::Tch(e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |cause| CheckpointError::Io { path: path.to_path_buf(), cause }
}

/// Name, element type and shape of a tensor in a weights file, known before its data is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Bytes of the dense tensor; `None` if that overflows.
    pub fn byte_len(&self) -> Option<u64> {
        checked_numel(&self.shape)
            .and_then(|n| u64::try_from(n).ok())
            .and_then(|n| n.checked_mul(self.dtype.size_in_bytes() as u64))
    }
}

/// Opens a weights file that must be a regular file: a FIFO would block and `/dev/zero` never
/// ends, so neither is read.
fn open_regular(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(CheckpointError::NotAFile { path: path.to_path_buf() });
    }
    if meta.len() == 0 {
        return Err(CheckpointError::Empty { path: path.to_path_buf() });
    }
    Ok((file, meta.len()))
}

/// Reads `.pth`/`.pth.tar` (torch zip format) or `.safetensors`, chosen by the file's magic
/// bytes (a zip starts with "PK", a safetensors header with a length then `{`).
pub fn read_any(path: impl AsRef<Path>) -> Result<Checkpoint> {
    read_any_selected(path, select_all)
}

fn select_all(infos: &[TensorInfo], _: &[(String, MetaValue)]) -> Result<Vec<bool>> {
    Ok(vec![true; infos.len()])
}

/// As [`read_any`], but first hands the tensors' names, dtypes and shapes and the file's
/// metadata to `select`, which says which tensors to read (or refuses the file) before any
/// tensor data is read: a loader checks them against the network's keys and shapes, so a huge
/// storage for a key the network does not have is never read.
pub fn read_any_selected<E, F>(path: impl AsRef<Path>, select: F) -> std::result::Result<Checkpoint, E>
where
    E: From<CheckpointError>,
    F: FnOnce(&[TensorInfo], &[(String, MetaValue)]) -> std::result::Result<Vec<bool>, E>,
{
    let path = path.as_ref();
    let (file, _) = open_regular(path)?;
    let mut head = Vec::with_capacity(16);
    (&file).take(16).read_to_end(&mut head).map_err(io_err(path))?;
    if head.starts_with(b"PK") {
        return read_pth_selected(path, select);
    }
    // A safetensors header length can start with the byte 0x80 too (e.g. 0x6d80), so the JSON
    // header is checked before the legacy pickle magic.
    let has_extension = path.extension().is_some_and(|e| e == "safetensors");
    if head.get(8) == Some(&b'{') || (has_extension && !is_legacy_torch(&head)) {
        return read_safetensors_selected(path, select);
    }
    if is_legacy_torch(&head) {
        return Err(CheckpointError::LegacyTorchFormat.into());
    }
    Err(CheckpointError::UnknownFormat {
        path: path.to_path_buf(),
        magic_hex: head.iter().take(8).map(|b| format!("{b:02x}")).collect(),
    }
    .into())
}

/// The legacy format is a sequence of pickles that starts with PROTO 2 and a magic integer.
fn is_legacy_torch(head: &[u8]) -> bool {
    head.first() == Some(&0x80)
}

/// Reads a `torch.save` zip checkpoint from a file.
pub fn read_pth(path: impl AsRef<Path>) -> Result<Checkpoint> {
    read_pth_selected(path.as_ref(), select_all)
}

fn read_pth_selected<E, F>(path: &Path, select: F) -> std::result::Result<Checkpoint, E>
where
    E: From<CheckpointError>,
    F: FnOnce(&[TensorInfo], &[(String, MetaValue)]) -> std::result::Result<Vec<bool>, E>,
{
    let (file, _) = open_regular(path)?;
    read_pth_selected_from(BufReader::new(file), select)
}

/// Reads a `torch.save` zip checkpoint from any seekable reader (e.g. a `Cursor` over bytes).
pub fn read_pth_from<R: Read + Seek>(reader: R) -> Result<Checkpoint> {
    read_pth_selected_from(reader, select_all)
}

/// As [`read_pth_from`], with the selection step of [`read_any_selected`].
pub fn read_pth_selected_from<R, E, F>(mut reader: R, select: F) -> std::result::Result<Checkpoint, E>
where
    R: Read + Seek,
    E: From<CheckpointError>,
    F: FnOnce(&[TensorInfo], &[(String, MetaValue)]) -> std::result::Result<Vec<bool>, E>,
{
    let header_err = |cause| CheckpointError::ZipRead { entry: "(header)".into(), cause };
    let mut head = Vec::with_capacity(2);
    (&mut reader).take(2).read_to_end(&mut head).map_err(header_err)?;
    if is_legacy_torch(&head) {
        return Err(CheckpointError::LegacyTorchFormat.into());
    }
    reader.rewind().map_err(header_err)?;
    let mut zip = zip::ZipArchive::new(reader).map_err(CheckpointError::NotZip)?;

    let prefix = data_pkl_prefix(&zip)?;
    check_byteorder(&mut zip, &prefix)?;
    let pkl_entry = format!("{prefix}/data.pkl");
    let pkl = read_entry(&mut zip, &pkl_entry, MAX_PICKLE_BYTES)?;
    let root = pickle::load(&pkl).map_err(|cause| CheckpointError::Pickle { entry: pkl_entry.clone(), cause })?;
    drop(pkl);

    let Split { state_dict_key, entries, metadata } = split_checkpoint(root)?;
    let infos = entries.iter().map(|(name, t)| tensor_info(name, t)).collect::<Result<Vec<_>>>()?;
    let keep = select(&infos, &metadata)?;
    let entries: Entries = entries.into_iter().zip(keep).filter(|(_, k)| *k).map(|(e, _)| e).collect();
    check_storage_total(&entries)?;
    let tensors = materialise_all(&mut zip, &prefix, entries)?;
    Ok(Checkpoint { tensors, metadata, state_dict_key })
}

/// What a state-dict entry will be once materialised, from the pickle alone.
fn tensor_info(name: &str, t: &TensorRef) -> Result<TensorInfo> {
    let bad = |reason: String| CheckpointError::BadTensor { name: name.to_string(), reason };
    let dtype = Dtype::from_storage_type(&t.storage.storage_type)
        .ok_or_else(|| bad(format!("unsupported storage type torch.{}", t.storage.storage_type)))?;
    let shape = t
        .size
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("size {d} does not fit in memory"))))
        .collect::<Result<Vec<usize>>>()?;
    let info = TensorInfo { name: name.to_string(), dtype, shape };
    if info.byte_len().is_none() {
        return Err(bad(format!("shape {} overflows", shape_text(&info.shape))));
    }
    Ok(info)
}

/// `[2, 3]` for error messages.
pub fn shape_text(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// The storages the selected tensors read: within [`MAX_TENSOR_BYTES`] in all, and at most
/// twice the tensors' own bytes plus 1 MiB (views of a storage far larger than any tensor
/// cut from it do not occur in state dicts; such a storage would be read for nothing).
fn check_storage_total(entries: &Entries) -> Result<()> {
    let mut storages: HashMap<&str, u64> = HashMap::new();
    let mut tensor_bytes: u64 = 0;
    for (name, t) in entries {
        let info = tensor_info(name, t)?;
        tensor_bytes = tensor_bytes.saturating_add(info.byte_len().unwrap_or(u64::MAX));
        let storage_bytes = t.storage.numel.saturating_mul(info.dtype.size_in_bytes() as u64);
        storages.insert(&t.storage.key, storage_bytes);
    }
    let storage_bytes = storages.values().fold(0u64, |a, &b| a.saturating_add(b));
    let max_bytes = MAX_TENSOR_BYTES.min(tensor_bytes.saturating_mul(2).saturating_add(1 << 20));
    if storage_bytes > max_bytes {
        return Err(CheckpointError::TooMuchData { bytes: storage_bytes, max_bytes });
    }
    Ok(())
}

/// The folder holding `data.pkl`: torch names it after the file (`PATrack_ep0060.pth/`) or
/// `archive/`, so it is found rather than assumed.
fn data_pkl_prefix<R: Read + Seek>(zip: &zip::ZipArchive<R>) -> Result<String> {
    let candidates: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.strip_suffix("/data.pkl"))
        .filter(|prefix| !prefix.is_empty() && !prefix.contains('/'))
        .map(str::to_string)
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CheckpointError::NoDataPkl),
        _ => Err(CheckpointError::AmbiguousDataPkl(candidates)),
    }
}

fn check_byteorder<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, prefix: &str) -> Result<()> {
    let name = format!("{prefix}/byteorder");
    // Files from torch < 1.10 have no byteorder entry and are little-endian.
    if zip.index_for_name(&name).is_none() {
        return Ok(());
    }
    let bytes = read_entry(zip, &name, 16)?;
    match bytes.as_slice() {
        b"little" => Ok(()),
        other => Err(CheckpointError::BigEndian(String::from_utf8_lossy(other).into_owned())),
    }
}

/// Reads a whole zip entry of at most `max_bytes`. The declared size is checked against the
/// limit and against what deflate can produce from the compressed size before anything is
/// inflated; the buffer then grows only as bytes actually arrive, and reading stops one byte
/// past the limit.
fn read_entry<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, name: &str, max_bytes: u64) -> Result<Vec<u8>> {
    let entry = zip.by_name(name).map_err(|cause| CheckpointError::ZipEntry { entry: name.to_string(), cause })?;
    let declared_bytes = entry.size();
    let possible_bytes = entry.compressed_size().saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024);
    if declared_bytes > max_bytes {
        return Err(CheckpointError::EntryTooLarge { entry: name.to_string(), declared_bytes, max_bytes });
    }
    if declared_bytes > possible_bytes {
        return Err(CheckpointError::ZipRead {
            entry: name.to_string(),
            cause: std::io::Error::other(format!(
                "declares {declared_bytes} bytes from {} compressed bytes, more than deflate can produce",
                entry.compressed_size()
            )),
        });
    }
    let mut buf = Vec::new();
    entry
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|cause| CheckpointError::ZipRead { entry: name.to_string(), cause })?;
    if buf.len() as u64 > max_bytes {
        return Err(CheckpointError::EntryTooLarge { entry: name.to_string(), declared_bytes, max_bytes });
    }
    Ok(buf)
}

type Entries = Vec<(String, TensorRef)>;

/// The parts of an unpickled checkpoint this module keeps.
struct Split {
    state_dict_key: Option<String>,
    entries: Entries,
    metadata: Vec<(String, MetaValue)>,
}

/// Finds the state dict in the unpickled root and collects the scalar metadata beside it.
fn split_checkpoint(root: Value) -> Result<Split> {
    let Value::Dict(top) = root else {
        return Err(CheckpointError::NoStateDict(format!("the checkpoint holds a {}, not a dict", root.type_name())));
    };
    let top_keys: Vec<String> = top
        .iter()
        .map(|(k, _)| match k {
            Value::Str(s) => s.clone(),
            other => format!("<{}>", other.type_name()),
        })
        .collect();

    let mut state_dict_key = None;
    for wanted in ["net", "state_dict", "model"] {
        let found = top.iter().rev().find(|(k, _)| matches!(k, Value::Str(s) if s == wanted));
        if let Some((_, Value::Dict(_))) = found {
            state_dict_key = Some(wanted.to_string());
            break;
        }
    }
    let Some(state_dict_key) = state_dict_key else {
        // A bare `torch.save(model.state_dict())`.
        if !top.is_empty() && top.iter().all(|(_, v)| matches!(v, Value::Tensor(_))) {
            return Ok(Split { state_dict_key: None, entries: tensor_entries(top)?, metadata: Vec::new() });
        }
        return Err(CheckpointError::NoStateDict(format!(
            "no `net`, `state_dict` or `model` dict and not all values are tensors; top-level \
             keys: {}",
            top_keys.join(", ")
        )));
    };

    let mut metadata = Vec::new();
    let mut state_dict = None;
    for (key, value) in top {
        let Value::Str(key) = key else { continue };
        if key == state_dict_key {
            // Python dicts keep the last value for a repeated key.
            state_dict = Some(value);
            continue;
        }
        let meta = match value {
            Value::None => MetaValue::None,
            Value::Bool(b) => MetaValue::Bool(b),
            Value::Int(i) => MetaValue::Int(i),
            Value::Float(x) => MetaValue::Float(x),
            Value::Str(s) => MetaValue::Str(s),
            _ => continue,
        };
        metadata.push((key, meta));
    }
    let Some(Value::Dict(state_dict)) = state_dict else {
        return Err(CheckpointError::NoStateDict(format!("the last `{state_dict_key}` entry is not a dict")));
    };
    Ok(Split { state_dict_key: Some(state_dict_key), entries: tensor_entries(state_dict)?, metadata })
}

/// State-dict items in order, with Python's rule for repeated keys (last value wins, first
/// position kept).
fn tensor_entries(items: Vec<(Value, Value)>) -> Result<Entries> {
    let mut out: Entries = Vec::with_capacity(items.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (key, value) in items {
        let name = match key {
            Value::Str(s) => s,
            other => {
                return Err(CheckpointError::BadEntry {
                    name: format!("<{}>", other.type_name()),
                    reason: "state dict keys must be strings".into(),
                })
            }
        };
        let tensor = match value {
            Value::Tensor(t) => *t,
            other => {
                return Err(CheckpointError::BadEntry {
                    name,
                    reason: format!("expected a tensor, found {}", other.type_name()),
                })
            }
        };
        match index.get(&name) {
            Some(&i) => {
                if let Some(slot) = out.get_mut(i) {
                    slot.1 = tensor;
                }
            }
            None => {
                index.insert(name.clone(), out.len());
                out.push((name, tensor));
            }
        }
    }
    Ok(out)
}

/// A storage read from the zip, with how many tensors still need it.
struct LoadedStorage {
    dtype: Dtype,
    numel: u64,
    bytes: Vec<u8>,
    uses_left: usize,
}

fn materialise_all<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    prefix: &str,
    entries: Entries,
) -> Result<Vec<(String, RawTensor)>> {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for (_, t) in &entries {
        *uses.entry(t.storage.key.clone()).or_default() += 1;
    }
    let mut loaded: HashMap<String, LoadedStorage> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (name, tref) in entries {
        let bad = |reason: String| CheckpointError::BadTensor { name: name.clone(), reason };
        let storage = &tref.storage;
        let dtype = Dtype::from_storage_type(&storage.storage_type)
            .ok_or_else(|| bad(format!("unsupported storage type torch.{}", storage.storage_type)))?;
        if !loaded.contains_key(&storage.key) {
            let bytes = read_storage(zip, prefix, &name, storage, dtype)?;
            let uses_left = uses.get(&storage.key).copied().unwrap_or(1);
            loaded.insert(storage.key.clone(), LoadedStorage { dtype, numel: storage.numel, bytes, uses_left });
        }
        let Some(slot) = loaded.get_mut(&storage.key) else {
            return Err(bad("storage vanished".into()));
        };
        if slot.dtype != dtype || slot.numel != storage.numel {
            return Err(bad(format!(
                "storage {} is used as {} x {} and as {} x {}",
                storage.key, slot.dtype, slot.numel, dtype, storage.numel
            )));
        }
        slot.uses_left = slot.uses_left.saturating_sub(1);
        let raw = if slot.uses_left == 0 {
            // Last user: the storage's buffer can become the tensor's without a copy.
            let owned = loaded.remove(&storage.key).map(|s| s.bytes).unwrap_or_default();
            materialise(&tref, dtype, Storage::Owned(owned))
        } else {
            materialise(&tref, dtype, Storage::Borrowed(&slot.bytes))
        }
        .map_err(bad)?;
        out.push((name, raw));
    }
    Ok(out)
}

fn read_storage<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    prefix: &str,
    tensor_name: &str,
    storage: &StorageRef,
    dtype: Dtype,
) -> Result<Vec<u8>> {
    let entry = format!("{prefix}/data/{}", storage.key);
    let bad = |reason: String| CheckpointError::BadTensor { name: tensor_name.to_string(), reason };
    let expected_bytes = storage
        .numel
        .checked_mul(dtype.size_in_bytes() as u64)
        .ok_or_else(|| bad(format!("storage numel {} overflows", storage.numel)))?;
    let Some(index) = zip.index_for_name(&entry) else {
        return Err(CheckpointError::MissingStorage { name: tensor_name.to_string(), key: storage.key.clone(), entry });
    };
    let declared =
        zip.by_index(index).map_err(|cause| CheckpointError::ZipEntry { entry: entry.clone(), cause })?.size();
    if declared != expected_bytes {
        return Err(bad(format!(
            "zip entry {entry} has {declared} bytes, but the pickle declares {} x {} = \
             {expected_bytes} bytes",
            storage.numel, dtype
        )));
    }
    let bytes = read_entry(zip, &entry, expected_bytes)?;
    if bytes.len() as u64 != expected_bytes {
        return Err(bad(format!("zip entry {entry} holds {} bytes, expected {expected_bytes}", bytes.len())));
    }
    Ok(bytes)
}

enum Storage<'a> {
    Owned(Vec<u8>),
    Borrowed(&'a [u8]),
}

impl Storage<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Owned(v) => v,
            Storage::Borrowed(s) => s,
        }
    }
}

/// Copies the strided view `(storage_offset, size, stride)` out of a storage into a contiguous
/// buffer, after checking that every element it touches lies inside the storage.
fn materialise(tref: &TensorRef, dtype: Dtype, storage: Storage<'_>) -> std::result::Result<RawTensor, String> {
    let elem_bytes = dtype.size_in_bytes();
    let storage_numel = storage.bytes().len() / elem_bytes;
    let to_usize = |v: u64, what: &str| usize::try_from(v).map_err(|_| format!("{what} {v} does not fit in memory"));
    let shape: Vec<usize> = tref.size.iter().map(|&d| to_usize(d, "size")).collect::<std::result::Result<_, _>>()?;
    let stride: Vec<usize> =
        tref.stride.iter().map(|&s| to_usize(s, "stride")).collect::<std::result::Result<_, _>>()?;
    let offset = to_usize(tref.storage_offset, "storage offset")?;
    let numel = checked_numel(&shape).ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let view = format!("view (offset {offset}, size {shape:?}, stride {stride:?})");

    if numel == 0 {
        return RawTensor::new(dtype, shape, Vec::new());
    }
    // Highest element index the view touches: offset + sum((size_i - 1) * stride_i).
    let last = shape
        .iter()
        .zip(&stride)
        .try_fold(offset, |acc, (&n, &s)| (n - 1).checked_mul(s).and_then(|step| acc.checked_add(step)));
    match last {
        Some(last) if last < storage_numel => {}
        _ => return Err(format!("{view} reaches past its storage of {storage_numel} elements")),
    }
    // Overlapping views (stride 0 broadcasts) could expand a tiny storage into an arbitrarily
    // large tensor; torch state dicts do not contain them.
    if numel > storage_numel {
        return Err(format!(
            "{view} has {numel} elements but its storage only {storage_numel} (overlapping views \
             are not supported)"
        ));
    }

    let contiguous = is_contiguous(&shape, &stride);
    let byte_len = numel * elem_bytes;
    let start = offset * elem_bytes;
    let data = match storage {
        Storage::Owned(bytes) if contiguous && start == 0 && bytes.len() == byte_len => bytes,
        storage if contiguous => storage
            .bytes()
            .get(start..start + byte_len)
            .ok_or_else(|| format!("{view} reaches past its storage"))?
            .to_vec(),
        storage => gather_strided(storage.bytes(), &shape, &stride, offset, elem_bytes)
            .ok_or_else(|| format!("{view} reaches past its storage"))?,
    };
    RawTensor::new(dtype, shape, data)
}

/// Row-major contiguity, ignoring the stride of size-1 dims (torch does the same).
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&n, &s) in shape.iter().zip(stride).rev() {
        if n != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(n);
    }
    true
}

/// Element-by-element copy of a strided view (the caller has bounds-checked it; `get` keeps a
/// mistake from becoming a panic).
fn gather_strided(
    storage: &[u8],
    shape: &[usize],
    stride: &[usize],
    offset: usize,
    elem_bytes: usize,
) -> Option<Vec<u8>> {
    let numel = checked_numel(shape)?;
    let mut out = Vec::with_capacity(numel.checked_mul(elem_bytes)?);
    // Innermost run copied in one slice when its elements are adjacent.
    let (run_len, outer) = match (shape.last(), stride.last()) {
        (Some(&n), Some(&1)) => (n, &shape[..shape.len() - 1]),
        _ => (1, shape),
    };
    let run_bytes = run_len * elem_bytes;
    let mut index = vec![0usize; outer.len()];
    loop {
        let base = index.iter().zip(stride).map(|(&i, &s)| i * s).sum::<usize>() + offset;
        let start = base * elem_bytes;
        out.extend_from_slice(storage.get(start..start + run_bytes)?);
        // Odometer increment over the outer dims.
        let mut dim = outer.len();
        loop {
            if dim == 0 {
                return Some(out);
            }
            dim -= 1;
            index[dim] += 1;
            if index[dim] < outer[dim] {
                break;
            }
            index[dim] = 0;
        }
    }
}

/// Interprets a pickle (what a checkpoint's `data.pkl` holds) with the restricted machine the
/// checkpoint reader uses, discarding the result: for fuzzing and for checking a pickle alone.
pub fn parse_pickle(data: &[u8]) -> std::result::Result<(), PickleError> {
    pickle::load(data).map(drop)
}

/// Reads a `.safetensors` file; tensors come out in the order of their data in the file.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<Checkpoint> {
    read_safetensors_selected(path.as_ref(), select_all)
}

fn read_safetensors_selected<E, F>(path: &Path, select: F) -> std::result::Result<Checkpoint, E>
where
    E: From<CheckpointError>,
    F: FnOnce(&[TensorInfo], &[(String, MetaValue)]) -> std::result::Result<Vec<bool>, E>,
{
    let (file, len) = open_regular(path)?;
    let mut reader = BufReader::new(file);
    let index = index_safetensors(&mut reader, len)?;
    let keep = select(&index.infos, &index.metadata)?;
    Ok(index.read(&mut reader, &keep).map_err(|e| match e {
        CheckpointError::ZipRead { cause, .. } => CheckpointError::Io { path: path.to_path_buf(), cause },
        other => other,
    })?)
}

/// Parses `.safetensors` bytes: the header is validated tensor by tensor (every error names the
/// tensor), then every tensor is copied out.
pub fn parse_safetensors(bytes: &[u8]) -> Result<Checkpoint> {
    let mut reader = std::io::Cursor::new(bytes);
    let index = index_safetensors(&mut reader, bytes.len() as u64)?;
    let keep = vec![true; index.infos.len()];
    index.read(&mut reader, &keep)
}

/// A validated `.safetensors` header: tensors in data order with their byte ranges.
struct SafetensorsIndex {
    infos: Vec<TensorInfo>,
    /// Byte ranges relative to the start of the data section.
    ranges: Vec<(u64, u64)>,
    data_start: u64,
    metadata: Vec<(String, MetaValue)>,
}

/// One tensor entry of the JSON header as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SafetensorsEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

fn header_err(reason: impl Into<String>) -> CheckpointError {
    CheckpointError::SafetensorsHeader(reason.into())
}

/// Reads and checks the header of a `.safetensors` stream of `len` bytes, without touching the
/// tensor data: sizes within [`MAX_SAFETENSORS_HEADER_BYTES`], every tensor's dtype, shape and
/// byte range consistent, the ranges tiling the data section exactly.
fn index_safetensors<R: Read + Seek>(reader: &mut R, len: u64) -> Result<SafetensorsIndex> {
    let io = |cause| CheckpointError::ZipRead { entry: "(safetensors)".into(), cause };
    let mut len_bytes = [0u8; 8];
    if len < 8 {
        return Err(header_err(format!("the file has {len} bytes, fewer than the 8-byte header length")));
    }
    reader.read_exact(&mut len_bytes).map_err(io)?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_SAFETENSORS_HEADER_BYTES {
        return Err(header_err(format!(
            "declares a {header_len}-byte header, over the {MAX_SAFETENSORS_HEADER_BYTES}-byte limit"
        )));
    }
    if header_len > len - 8 {
        return Err(header_err(format!(
            "declares a {header_len}-byte header, but the file has {} bytes after it",
            len - 8
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read_exact(&mut header).map_err(io)?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| header_err(format!("not a JSON object: {e}")))?;
    let mut metadata = Vec::new();
    let mut entries = Vec::with_capacity(map.len());
    for (name, value) in map {
        if name == "__metadata__" {
            let pairs: std::collections::BTreeMap<String, String> = serde_json::from_value(value)
                .map_err(|e| header_err(format!("__metadata__ is not a map of strings: {e}")))?;
            metadata.extend(pairs.into_iter().map(|(k, v)| (k, MetaValue::Str(v))));
            continue;
        }
        let bad = |reason: String| CheckpointError::BadTensor { name: name.clone(), reason };
        let entry: SafetensorsEntry =
            serde_json::from_value(value).map_err(|e| bad(format!("header entry is malformed: {e}")))?;
        let dtype = Dtype::from_safetensors_name(&entry.dtype).ok_or_else(|| {
            CheckpointError::UnsupportedSafetensorsDtype { name: name.clone(), dtype: entry.dtype.clone() }
        })?;
        let shape = entry
            .shape
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| bad(format!("dimension {d} does not fit in memory"))))
            .collect::<Result<Vec<usize>>>()?;
        let info = TensorInfo { name: name.clone(), dtype, shape };
        let bytes = info.byte_len().ok_or_else(|| bad(format!("shape {} overflows", shape_text(&info.shape))))?;
        let [begin, end] = entry.data_offsets;
        if end < begin || end - begin != bytes {
            return Err(bad(format!(
                "data_offsets [{begin}, {end}] hold {} bytes, but shape {} of {} needs {bytes}",
                end.saturating_sub(begin),
                shape_text(&info.shape),
                info.dtype
            )));
        }
        entries.push((info, (begin, end)));
    }
    entries.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.name.cmp(&b.0.name)));
    let data_len = len - 8 - header_len;
    let mut expected_begin = 0u64;
    for (info, (begin, end)) in &entries {
        if *begin != expected_begin {
            return Err(CheckpointError::BadTensor {
                name: info.name.clone(),
                reason: format!(
                    "data_offsets start at {begin}, but the previous tensor ends at {expected_begin} \
                     (tensors must tile the data section without gaps or overlaps)"
                ),
            });
        }
        expected_begin = *end;
    }
    if expected_begin != data_len {
        return Err(header_err(format!(
            "the tensors cover {expected_begin} bytes of data, but the file holds {data_len} bytes after the header"
        )));
    }
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let (infos, ranges) = entries.into_iter().unzip();
    Ok(SafetensorsIndex { infos, ranges, data_start: 8 + header_len, metadata })
}

impl SafetensorsIndex {
    /// Reads the tensors marked in `keep` (their sizes were checked against the file length).
    fn read<R: Read + Seek>(self, reader: &mut R, keep: &[bool]) -> Result<Checkpoint> {
        let io = |cause| CheckpointError::ZipRead { entry: "(safetensors)".into(), cause };
        let selected_bytes = self
            .ranges
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .fold(0u64, |acc, ((begin, end), _)| acc.saturating_add(end - begin));
        if selected_bytes > MAX_TENSOR_BYTES {
            return Err(CheckpointError::TooMuchData { bytes: selected_bytes, max_bytes: MAX_TENSOR_BYTES });
        }
        let mut tensors = Vec::new();
        for ((info, (begin, end)), &wanted) in self.infos.into_iter().zip(self.ranges).zip(keep) {
            if !wanted {
                continue;
            }
            reader.seek(std::io::SeekFrom::Start(self.data_start + begin)).map_err(io)?;
            let mut data = vec![0u8; (end - begin) as usize];
            reader.read_exact(&mut data).map_err(io)?;
            let raw = RawTensor::new(info.dtype, info.shape, data)
                .map_err(|reason| CheckpointError::BadTensor { name: info.name.clone(), reason })?;
            tensors.push((info.name, raw));
        }
        Ok(Checkpoint { tensors, metadata: self.metadata, state_dict_key: None })
    }
}

struct View<'a>(&'a RawTensor);

impl safetensors::View for View<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.0.dtype.to_safetensors()
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.0.data)
    }
    fn data_len(&self) -> usize {
        self.0.data.len()
    }
}

/// Writes tensors to a `.safetensors` file that `tch::Tensor::read_safetensors` reads back
/// with identical dtypes, shapes and bytes.
pub fn write_safetensors(tensors: &[(String, RawTensor)], path: impl AsRef<Path>) -> Result<()> {
    write_safetensors_with_metadata(tensors, &[], path)
}

/// As [`write_safetensors`], also storing `metadata` (as strings) in the `__metadata__` header,
/// e.g. the source checkpoint's `epoch`.
pub fn write_safetensors_with_metadata(
    tensors: &[(String, RawTensor)],
    metadata: &[(String, MetaValue)],
    path: impl AsRef<Path>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(tensors.len());
    for (name, t) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(CheckpointError::BadTensor { name: name.clone(), reason: "name appears twice".into() });
        }
        t.validate().map_err(|reason| CheckpointError::BadTensor { name: name.clone(), reason })?;
    }
    let info = (!metadata.is_empty()).then(|| metadata.iter().map(|(k, v)| (k.clone(), v.to_string())).collect());
    let views = tensors.iter().map(|(name, t)| (name.as_str(), View(t)));
    safetensors::serialize_to_file(views, &info, path.as_ref())
        .map_err(|e| CheckpointError::SafetensorsWrite(format!("{}: {e}", path.as_ref().display())))?;
    Ok(())
}
