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

/// Errors reading or writing checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot access {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
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
    NotZip(#[source] zip::result::ZipError),
    #[error("cannot read zip entry {entry}: {source}")]
    ZipEntry { entry: String, source: zip::result::ZipError },
    #[error("cannot read zip entry {entry}: {source}")]
    ZipRead { entry: String, source: std::io::Error },
    #[error("no `<folder>/data.pkl` entry in the zip: not a torch.save checkpoint")]
    NoDataPkl,
    #[error("several `<folder>/data.pkl` entries in the zip: {0:?}")]
    AmbiguousDataPkl(Vec<String>),
    #[error("checkpoint is stored big-endian (byteorder {0:?}); only little-endian is supported")]
    BigEndian(String),
    #[error("cannot interpret {entry}: {source}")]
    Pickle { entry: String, source: PickleError },
    #[error("no state dict found: {0}")]
    NoStateDict(String),
    #[error("state dict entry {name:?}: {reason}")]
    BadEntry { name: String, reason: String },
    #[error("tensor {name:?}: storage {key:?} has no zip entry {entry}")]
    MissingStorage { name: String, key: String, entry: String },
    #[error("tensor {name:?}: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("invalid tensor: {0}")]
    InvalidTensor(String),
    #[error("safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    #[error("safetensors tensor {name:?} has dtype {dtype:?}, which is not supported")]
    UnsupportedSafetensorsDtype { name: String, dtype: safetensors::Dtype },
    #[error("libtorch: {0}")]
    Tch(#[from] tch::TchError),
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

impl Dtype {
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

    fn from_safetensors(dtype: safetensors::Dtype) -> Option<Dtype> {
        Some(match dtype {
            safetensors::Dtype::F32 => Dtype::F32,
            safetensors::Dtype::F16 => Dtype::F16,
            safetensors::Dtype::BF16 => Dtype::BF16,
            safetensors::Dtype::F64 => Dtype::F64,
            safetensors::Dtype::I64 => Dtype::I64,
            safetensors::Dtype::I32 => Dtype::I32,
            safetensors::Dtype::I16 => Dtype::I16,
            safetensors::Dtype::I8 => Dtype::I8,
            safetensors::Dtype::U8 => Dtype::U8,
            safetensors::Dtype::BOOL => Dtype::Bool,
            _ => return None,
        })
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
            .ok_or_else(|| format!("shape {:?} overflows", self.shape))?;
        if self.data.len() != expected_bytes {
            return Err(format!(
                "{} data bytes, but shape {:?} of {:?} needs {expected_bytes}",
                self.data.len(),
                self.shape,
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
        let size = self
            .shape
            .iter()
            .map(|&d| i64::try_from(d))
            .collect::<std::result::Result<Vec<i64>, _>>()
            .map_err(|_| CheckpointError::InvalidTensor(format!("shape {:?} does not fit i64", self.shape)))?;
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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

/// Reads `.pth`/`.pth.tar` (torch zip format) or `.safetensors`, chosen by the file's magic
/// bytes (a zip starts with "PK", a safetensors header with a length then `{`).
pub fn read_any(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let mut head = Vec::with_capacity(16);
    File::open(path).and_then(|f| f.take(16).read_to_end(&mut head)).map_err(io_err(path))?;
    if head.is_empty() {
        return Err(CheckpointError::Empty { path: path.to_path_buf() });
    }
    if head.starts_with(b"PK") {
        return read_pth(path);
    }
    // A safetensors header length can start with the byte 0x80 too (e.g. 0x6d80), so the JSON
    // header is checked before the legacy pickle magic.
    let has_extension = path.extension().is_some_and(|e| e == "safetensors");
    if head.get(8) == Some(&b'{') {
        return read_safetensors(path);
    }
    if is_legacy_torch(&head) {
        return Err(CheckpointError::LegacyTorchFormat);
    }
    if has_extension {
        return read_safetensors(path);
    }
    Err(CheckpointError::UnknownFormat {
        path: path.to_path_buf(),
        magic_hex: head.iter().take(8).map(|b| format!("{b:02x}")).collect(),
    })
}

/// The legacy format is a sequence of pickles that starts with PROTO 2 and a magic integer.
fn is_legacy_torch(head: &[u8]) -> bool {
    head.first() == Some(&0x80)
}

/// Reads a `torch.save` zip checkpoint from a file.
pub fn read_pth(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let file = File::open(path).map_err(io_err(path))?;
    if file.metadata().map_err(io_err(path))?.len() == 0 {
        return Err(CheckpointError::Empty { path: path.to_path_buf() });
    }
    read_pth_from(BufReader::new(file))
}

/// Reads a `torch.save` zip checkpoint from any seekable reader (e.g. a `Cursor` over bytes).
pub fn read_pth_from<R: Read + Seek>(mut reader: R) -> Result<Checkpoint> {
    let mut head = Vec::with_capacity(2);
    (&mut reader)
        .take(2)
        .read_to_end(&mut head)
        .map_err(|source| CheckpointError::ZipRead { entry: "(header)".into(), source })?;
    if is_legacy_torch(&head) {
        return Err(CheckpointError::LegacyTorchFormat);
    }
    reader.rewind().map_err(|source| CheckpointError::ZipRead { entry: "(header)".into(), source })?;
    let mut zip = zip::ZipArchive::new(reader).map_err(CheckpointError::NotZip)?;

    let prefix = data_pkl_prefix(&zip)?;
    check_byteorder(&mut zip, &prefix)?;
    let pkl_entry = format!("{prefix}/data.pkl");
    let pkl = read_entry(&mut zip, &pkl_entry, None)?;
    let root = pickle::load(&pkl).map_err(|source| CheckpointError::Pickle { entry: pkl_entry.clone(), source })?;
    drop(pkl);

    let Split { state_dict_key, entries, metadata } = split_checkpoint(root)?;
    let tensors = materialise_all(&mut zip, &prefix, entries)?;
    Ok(Checkpoint { tensors, metadata, state_dict_key })
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
    let bytes = read_entry(zip, &name, Some(16))?;
    match bytes.as_slice() {
        b"little" => Ok(()),
        other => Err(CheckpointError::BigEndian(String::from_utf8_lossy(other).into_owned())),
    }
}

/// Reads a whole zip entry. The size in the zip header is not trusted for allocation: the
/// buffer grows only as bytes actually arrive, and at most `max_bytes` are accepted.
fn read_entry<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, name: &str, max_bytes: Option<u64>) -> Result<Vec<u8>> {
    let entry = zip.by_name(name).map_err(|source| CheckpointError::ZipEntry { entry: name.to_string(), source })?;
    let limit = max_bytes.unwrap_or(u64::MAX);
    let mut buf = Vec::new();
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| CheckpointError::ZipRead { entry: name.to_string(), source })?;
    if buf.len() as u64 > limit {
        return Err(CheckpointError::ZipRead {
            entry: name.to_string(),
            source: std::io::Error::other(format!("entry is larger than {limit} bytes")),
        });
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
             keys: {top_keys:?}"
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
                "storage {:?} is used as {:?} x {} and as {:?} x {}",
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
        zip.by_index(index).map_err(|source| CheckpointError::ZipEntry { entry: entry.clone(), source })?.size();
    if declared != expected_bytes {
        return Err(bad(format!(
            "zip entry {entry} has {declared} bytes, but the pickle declares {} x {:?} = \
             {expected_bytes} bytes",
            storage.numel, dtype
        )));
    }
    let bytes = read_entry(zip, &entry, Some(expected_bytes))?;
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

/// Reads a `.safetensors` file; tensors come out in the order of their data in the file.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    if bytes.is_empty() {
        return Err(CheckpointError::Empty { path: path.to_path_buf() });
    }
    parse_safetensors(&bytes)
}

/// Parses `.safetensors` bytes (the crate validates the header and every tensor's extent).
pub fn parse_safetensors(bytes: &[u8]) -> Result<Checkpoint> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
    let st = safetensors::SafeTensors::deserialize(bytes)?;
    let mut infos: Vec<(String, (usize, usize))> =
        header.tensors().into_iter().map(|(name, info)| (name, info.data_offsets)).collect();
    infos.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let mut tensors = Vec::with_capacity(infos.len());
    for (name, _) in infos {
        let view = st.tensor(&name)?;
        let dtype = Dtype::from_safetensors(view.dtype())
            .ok_or_else(|| CheckpointError::UnsupportedSafetensorsDtype { name: name.clone(), dtype: view.dtype() })?;
        let raw = RawTensor::new(dtype, view.shape().to_vec(), view.data().to_vec())
            .map_err(|reason| CheckpointError::BadTensor { name: name.clone(), reason })?;
        tensors.push((name, raw));
    }
    let mut metadata: Vec<(String, MetaValue)> =
        header.metadata().iter().flatten().map(|(k, v)| (k.clone(), MetaValue::Str(v.clone()))).collect();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Checkpoint { tensors, metadata, state_dict_key: None })
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
    safetensors::serialize_to_file(views, &info, path.as_ref())?;
    Ok(())
}
