//! Checkpoint reading through the public API, against the golden files in
//! `tests/data/checkpoint/` (copied from the shared golden set): `official_format.pth.tar` was
//! written by `torch.save` (torch 2.4.1) in the official trainer's layout, and
//! `official_format.expected.safetensors` holds the same 8 tensors as they must come out.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

use patrack::model::checkpoint::{
    self, read_any, read_pth, read_pth_from, CheckpointError, Dtype, MetaValue, RawTensor,
};

const PTH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/checkpoint/official_format.pth.tar");
const EXPECTED: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/checkpoint/official_format.expected.safetensors");

/// State-dict order as pickled by the trainer (an OrderedDict).
const NAMES: [&str; 8] = [
    "backbone.pos_embed_z",
    "backbone.blocks.0.attn.qkv.weight",
    "backbone.blocks.0.attn.qkv.bias",
    "box_head.conv1_ctr.1.running_var",
    "box_head.conv1_ctr.1.num_batches_tracked",
    "adapter_head.adapter_down.weight",
    "adapter_head.adapter_down.bias",
    "backbone.norm.weight",
];

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("checkpoint-test-{name}"))
}

fn kind_of(dtype: Dtype) -> tch::Kind {
    dtype.kind()
}

/// Bytes of a tch tensor, contiguous, as libtorch holds them.
fn tch_bytes(t: &tch::Tensor) -> Vec<u8> {
    let t = t.contiguous();
    let numel = t.numel();
    let mut out = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut out, numel);
    out
}

/// Counts differing bytes; the reference is `tch`'s own safetensors reader, independent of the
/// code under test.
fn compare_with_tch(ours: &[(String, RawTensor)], reference: &[(String, tch::Tensor)]) -> usize {
    let reference: HashMap<&str, &tch::Tensor> = reference.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assert_eq!(ours.len(), reference.len(), "tensor count");
    let mut differing_bytes = 0;
    for (name, raw) in ours {
        let Some(t) = reference.get(name.as_str()) else { panic!("{name} missing in reference") };
        assert_eq!(t.kind(), kind_of(raw.dtype), "{name}: dtype");
        let size: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        assert_eq!(size, raw.shape, "{name}: shape");
        let bytes = tch_bytes(t);
        assert_eq!(bytes.len(), raw.data.len(), "{name}: byte length");
        differing_bytes += bytes.iter().zip(&raw.data).filter(|(a, b)| a != b).count();
    }
    differing_bytes
}

#[test]
fn golden_checkpoint_is_bit_identical_to_expected() {
    let ckpt = read_pth(PTH).unwrap();
    let names: Vec<&str> = ckpt.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, NAMES);
    assert_eq!(ckpt.state_dict_key.as_deref(), Some("net"));
    assert_eq!(ckpt.meta("epoch"), Some(&MetaValue::Int(60)));
    assert_eq!(ckpt.meta("net_type"), Some(&MetaValue::Str("PATrack".into())));
    assert_eq!(ckpt.meta("actor_type"), Some(&MetaValue::Str("PATrackActor".into())));
    // The Settings object, the optimizer dict and the state dict itself are not metadata.
    for key in ["settings", "optimizer", "net"] {
        assert!(ckpt.meta(key).is_none(), "{key} listed as metadata");
    }

    // The cases the golden was built to cover.
    let view = ckpt.tensor("adapter_head.adapter_down.weight").unwrap();
    assert_eq!((view.dtype, view.shape.as_slice()), (Dtype::F32, &[10usize, 6][..]));
    let half = ckpt.tensor("adapter_head.adapter_down.bias").unwrap();
    assert_eq!((half.dtype, half.shape.as_slice()), (Dtype::F16, &[10usize][..]));
    let scalar = ckpt.tensor("box_head.conv1_ctr.1.num_batches_tracked").unwrap();
    assert_eq!((scalar.dtype, scalar.shape.as_slice()), (Dtype::I64, &[][..]));
    let param = ckpt.tensor("backbone.norm.weight").unwrap();
    assert_eq!((param.dtype, param.shape.as_slice()), (Dtype::F32, &[8usize][..]));

    let reference = tch::Tensor::read_safetensors(EXPECTED).unwrap();
    let differing = compare_with_tch(&ckpt.tensors, &reference);
    println!("golden .pth vs expected safetensors: {differing} differing bytes (tolerance: 0)");
    assert_eq!(differing, 0);
}

#[test]
fn convert_writes_safetensors_that_tch_reads_back_identically() {
    let ckpt = read_pth(PTH).unwrap();
    let out = tmp("convert.safetensors");
    checkpoint::write_safetensors_with_metadata(&ckpt.tensors, &ckpt.metadata, &out).unwrap();

    let back = tch::Tensor::read_safetensors(&out).unwrap();
    let differing = compare_with_tch(&ckpt.tensors, &back);
    println!("written safetensors read by tch: {differing} differing bytes (tolerance: 0)");
    assert_eq!(differing, 0);

    // The same loader reads both formats, and libtorch tensors built from ours match too.
    let again = read_any(&out).unwrap();
    assert_eq!(again.meta("epoch"), Some(&MetaValue::Str("60".into())));
    let again_map: HashMap<_, _> = again.tensors.iter().cloned().collect();
    for (name, raw) in &ckpt.tensors {
        assert_eq!(again_map.get(name), Some(raw), "{name} after round trip");
    }
    let ours = ckpt.to_tch().unwrap();
    let differing: usize = ours
        .iter()
        .zip(&ckpt.tensors)
        .map(|((_, t), (_, raw))| tch_bytes(t).iter().zip(&raw.data).filter(|(a, b)| a != b).count())
        .sum();
    println!("RawTensor::to_tch: {differing} differing bytes (tolerance: 0)");
    assert_eq!(differing, 0);
}

#[test]
fn read_any_picks_the_format_by_magic() {
    let from_pth = read_any(PTH).unwrap();
    let from_st = read_any(EXPECTED).unwrap();
    let st: HashMap<_, _> = from_st.tensors.into_iter().collect();
    for (name, raw) in &from_pth.tensors {
        assert_eq!(st.get(name), Some(raw), "{name}");
    }
    assert_eq!(st.len(), from_pth.tensors.len());

    // Magic wins over the extension.
    let disguised = tmp("zip-named.safetensors");
    std::fs::copy(PTH, &disguised).unwrap();
    assert_eq!(read_any(&disguised).unwrap().tensors.len(), 8);
}

/// The golden zip's entries, in order.
fn golden_entries() -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(PTH).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

fn rezip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        w.start_file(name.as_str(), options).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn with_entry(name_suffix: &str, edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut entries = golden_entries();
    let entry = entries.iter_mut().find(|(n, _)| n.ends_with(name_suffix)).unwrap();
    edit(&mut entry.1);
    rezip(&entries)
}

/// Replaces the only occurrence of `from` in `data`.
fn replace_once(data: &mut [u8], from: &[u8], to: &[u8]) {
    let hits: Vec<usize> = data.windows(from.len()).enumerate().filter(|(_, w)| *w == from).map(|(i, _)| i).collect();
    assert_eq!(hits.len(), 1, "pattern {from:?} not unique");
    data[hits[0]..hits[0] + to.len()].copy_from_slice(to);
}

#[test]
fn rezipped_golden_still_loads() {
    // Guards the corruption tests below: their only change is the one they make.
    let bytes = rezip(&golden_entries());
    let ckpt = read_pth_from(Cursor::new(bytes)).unwrap();
    assert_eq!(ckpt.tensors, read_pth(PTH).unwrap().tensors);
}

fn expect_err(bytes: Vec<u8>, what: &str) -> CheckpointError {
    let err = read_pth_from(Cursor::new(bytes)).expect_err(what);
    println!("{what}: {err}");
    err
}

#[test]
fn missing_storage_entry_is_an_error() {
    let mut entries = golden_entries();
    entries.retain(|(n, _)| !n.ends_with("/data/5"));
    let err = expect_err(rezip(&entries), "missing storage");
    assert!(matches!(err, CheckpointError::MissingStorage { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("adapter_head.adapter_down.weight") && msg.contains("data/5"), "{msg}");
}

#[test]
fn view_past_its_storage_is_an_error() {
    // adapter_down.weight: BINPERSID, offset 2, size (10, 6). Offset 7 makes the last element
    // index 7 + 9*12 + 5 = 120, one past the 120-element storage.
    let bytes = with_entry("/data.pkl", |pkl| replace_once(pkl, b"QK\x02K\x0aK\x06", b"QK\x07"));
    let err = expect_err(bytes, "view past storage");
    assert!(matches!(err, CheckpointError::BadTensor { .. }), "{err:?}");
    assert!(err.to_string().contains("past its storage"), "{err}");

    // Offset 6 reaches exactly the last element: still valid.
    let bytes = with_entry("/data.pkl", |pkl| replace_once(pkl, b"QK\x02K\x0aK\x06", b"QK\x06"));
    let ok = read_pth_from(Cursor::new(bytes)).unwrap();
    assert_eq!(ok.tensor("adapter_head.adapter_down.weight").unwrap().shape, [10, 6]);
}

#[test]
fn storage_size_disagreeing_with_pickle_is_an_error() {
    // Storage '5' declared with 121 floats while its entry holds 120.
    let bytes = with_entry("/data.pkl", |pkl| replace_once(pkl, b"\x0eK\x78t", b"\x0eK\x79t"));
    let err = expect_err(bytes, "numel mismatch");
    assert!(err.to_string().contains("484"), "{err}");
}

#[test]
fn big_endian_checkpoint_is_rejected() {
    let bytes = with_entry("/byteorder", |b| *b = b"big".to_vec());
    let err = expect_err(bytes, "big-endian");
    assert!(matches!(err, CheckpointError::BigEndian(_)), "{err:?}");
}

#[test]
fn truncated_files_are_errors_at_every_length() {
    let whole = std::fs::read(PTH).unwrap();
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for len in 0..whole.len() {
        let err = read_pth_from(Cursor::new(&whole[..len])).expect_err(&format!("truncated at {len} bytes accepted"));
        let msg = err.to_string();
        *kinds.entry(msg.chars().take(40).collect()).or_default() += 1;
    }
    println!("{} truncations, errors by message prefix: {kinds:?}", whole.len());

    // Inside an intact zip, every truncation of data.pkl loses its STOP opcode.
    let entries = golden_entries();
    let pkl_index = entries.iter().position(|(n, _)| n.ends_with("/data.pkl")).unwrap();
    let pkl_len = entries[pkl_index].1.len();
    for len in 0..pkl_len {
        let mut cut = entries.clone();
        cut[pkl_index].1.truncate(len);
        let err = read_pth_from(Cursor::new(rezip(&cut))).expect_err(&format!("data.pkl cut at {len} bytes accepted"));
        assert!(matches!(err, CheckpointError::Pickle { .. }), "cut at {len}: {err:?}");
    }
    println!("{pkl_len} truncations of data.pkl: all rejected as pickle errors");
}

#[test]
fn byte_flips_in_data_pkl_never_panic() {
    let entries = golden_entries();
    let pkl_index = entries.iter().position(|(n, _)| n.ends_with("/data.pkl")).unwrap();
    let reference = read_pth(PTH).unwrap();
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err, mut changed) = (0usize, 0usize, 0usize);
    for round in 0..1500 {
        let mut entries = entries.clone();
        let pkl = &mut entries[pkl_index].1;
        let flips = 1 + next() % 3;
        for _ in 0..flips {
            let at = (next() % pkl.len() as u64) as usize;
            pkl[at] ^= 1 << (next() % 8);
        }
        let bytes = rezip(&entries);
        let result = std::panic::catch_unwind(|| read_pth_from(Cursor::new(bytes)));
        match result {
            Err(_) => panic!("round {round}: reader panicked"),
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
            Ok(Ok(ckpt)) => {
                // A flip inside a name or a float can leave a valid pickle; what comes out must
                // still be internally consistent.
                for (name, t) in &ckpt.tensors {
                    t.validate().unwrap_or_else(|e| panic!("round {round}: {name}: {e}"));
                }
                if ckpt.tensors != reference.tensors {
                    changed += 1;
                }
                ok += 1;
            }
        }
    }
    println!("byte flips: {err} rejected, {ok} accepted ({changed} of them with changed tensors)");
    assert!(err > ok, "most flips should be rejected");
}

#[test]
fn non_checkpoint_files_give_clear_errors() {
    let empty = tmp("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    for err in [read_any(&empty).unwrap_err(), read_pth(&empty).unwrap_err()] {
        println!("empty: {err}");
        assert!(matches!(err, CheckpointError::Empty { .. }), "{err:?}");
    }

    let text = tmp("text.pth");
    std::fs::write(&text, b"this is not a checkpoint at all\n").unwrap();
    let err = read_any(&text).unwrap_err();
    println!("text via read_any: {err}");
    assert!(matches!(err, CheckpointError::UnknownFormat { .. }), "{err:?}");
    let err = read_pth(&text).unwrap_err();
    println!("text via read_pth: {err}");
    assert!(matches!(err, CheckpointError::NotZip(_)), "{err:?}");

    // torch.save(..., _use_new_zipfile_serialization=False) starts with PROTO 2 and a LONG1
    // magic number 0x1950a86a20f9469cfc6c.
    let legacy = tmp("legacy.pth");
    std::fs::write(&legacy, b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.").unwrap();
    for err in [read_any(&legacy).unwrap_err(), read_pth(&legacy).unwrap_err()] {
        println!("legacy: {err}");
        assert!(matches!(err, CheckpointError::LegacyTorchFormat), "{err:?}");
        assert!(err.to_string().contains("re-save"));
    }

    let missing = tmp("does-not-exist.pth");
    let err = read_any(&missing).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err:?}");

    let bad_st = tmp("garbage.safetensors");
    std::fs::write(&bad_st, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1").unwrap();
    let err = read_any(&bad_st).unwrap_err();
    println!("bad safetensors: {err}");
    assert!(matches!(err, CheckpointError::SafetensorsHeader(_)), "{err:?}");
}

/// A `.safetensors` file of `entries` (name, dtype, shape, data) with `metadata`, written by hand
/// so that it may be inconsistent.
fn safetensors_bytes(header: &str, data_len: usize) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, data_len));
    out
}

#[test]
fn safetensors_errors_name_the_tensor() {
    // Shape [2, 3] of F32 needs 24 bytes; the offsets give 20.
    let bytes = safetensors_bytes(
        r#"{"good":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"blocks.0.w":{"dtype":"F32","shape":[2,3],"data_offsets":[4,24]}}"#,
        24,
    );
    let err = checkpoint::parse_safetensors(&bytes).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("blocks.0.w") && err.to_string().contains("24"), "{err}");
    let bytes = safetensors_bytes(r#"{"odd.dtype":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, 1);
    let err = checkpoint::parse_safetensors(&bytes).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("odd.dtype") && err.to_string().contains("F8_E4M3"), "{err}");
    // A gap between tensors names the tensor after it.
    let bytes = safetensors_bytes(
        r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#,
        3,
    );
    let err = checkpoint::parse_safetensors(&bytes).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("tensor b:"), "{err}");
}

#[test]
fn huge_declared_header_or_data_is_refused_before_allocating() {
    // 2^40-byte header declared in a 16-byte file.
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}      ");
    let err = checkpoint::parse_safetensors(&bytes).unwrap_err();
    println!("{err}");
    assert!(matches!(err, CheckpointError::SafetensorsHeader(_)), "{err:?}");
    // A tensor of 2^62 bytes declared over an empty data section.
    let bytes = safetensors_bytes(
        r#"{"w":{"dtype":"U8","shape":[4611686018427387904],"data_offsets":[0,4611686018427387904]}}"#,
        0,
    );
    let err = checkpoint::parse_safetensors(&bytes).unwrap_err();
    println!("{err}");
    assert!(matches!(err, CheckpointError::SafetensorsHeader(_)), "{err:?}");
}

#[test]
fn special_files_are_not_read() {
    // /dev/zero never ends and a FIFO blocks: neither is opened for reading weights.
    for path in ["/dev/zero", "/dev/null"] {
        if std::path::Path::new(path).exists() {
            let err = read_any(path).unwrap_err();
            println!("{path}: {err}");
            assert!(matches!(err, CheckpointError::NotAFile { .. }), "{err:?}");
        }
    }
}

#[test]
fn zip_bomb_data_pkl_is_refused_before_inflating() {
    // data.pkl deflated from 200 MiB of zeros (about 200 KB in the zip): over the 64 MiB limit
    // by its declared size, so nothing is inflated.
    let mut entries = golden_entries();
    let pkl = entries.iter().position(|(n, _)| n.ends_with("/data.pkl")).unwrap();
    entries[pkl].1 = vec![0u8; 200 << 20];
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in &entries {
        let method =
            if name.ends_with("/data.pkl") { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
        w.write_all(data).unwrap();
    }
    let bytes = w.finish().unwrap().into_inner();
    println!("zip of {} bytes", bytes.len());
    let err = expect_err(bytes, "zip bomb");
    assert!(matches!(err, CheckpointError::EntryTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("data.pkl"), "{err}");
}

#[test]
fn storages_are_checked_against_the_selection_before_reading() {
    // The selection sees every tensor's name, dtype and shape before any storage is read: here
    // it refuses the file, and the reader never touches a storage (one is even missing).
    let mut entries = golden_entries();
    entries.retain(|(n, _)| !n.ends_with("/data/5"));
    let bytes = rezip(&entries);
    let mut seen = Vec::new();
    let err = checkpoint::read_pth_selected_from(Cursor::new(bytes.clone()), |infos, _| {
        seen = infos.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
        Err(CheckpointError::InvalidTensor("refused by the selection".into()))
    })
    .unwrap_err();
    assert!(err.to_string().contains("refused by the selection"), "{err}");
    assert_eq!(seen.len(), 8);
    assert!(seen.contains(&("adapter_head.adapter_down.weight".to_string(), vec![10, 6])), "{seen:?}");
    // Tensors not selected are never read: dropping the one whose storage is missing loads.
    let ckpt = checkpoint::read_pth_selected_from(Cursor::new(bytes), |infos, _| {
        Ok::<_, CheckpointError>(infos.iter().map(|t| t.name != "adapter_head.adapter_down.weight").collect())
    })
    .unwrap();
    assert_eq!(ckpt.tensors.len(), 7);
}

#[test]
fn storage_far_larger_than_its_tensor_is_refused() {
    // Storage '5' (adapter_down.weight, 10x6 floats) declared with 2^30 elements: 4 GiB that a
    // 60-element view would not need. Refused before reading, by the declared sizes.
    let bytes = with_entry("/data.pkl", |pkl| {
        let from: &[u8] = b"\x0eK\x78t";
        let at = pkl.windows(from.len()).position(|w| w == from).unwrap();
        pkl.splice(at..at + from.len(), b"\x0eJ\x00\x00\x00\x40t".iter().copied());
    });
    let err = checkpoint::read_pth_from(Cursor::new(bytes));
    let err = err.expect_err("4 GiB storage accepted");
    println!("{err}");
    assert!(matches!(err, CheckpointError::TooMuchData { .. }), "{err:?}");
}

#[test]
fn raw_tensor_rejects_inconsistent_data() {
    assert!(RawTensor::new(Dtype::F32, vec![2, 3], vec![0; 24]).is_ok());
    assert!(RawTensor::new(Dtype::F32, vec![2, 3], vec![0; 23]).is_err());
    assert!(RawTensor::new(Dtype::I64, vec![], vec![0; 8]).is_ok());
    assert!(RawTensor::new(Dtype::Bool, vec![2], vec![1, 2]).is_err());
    assert!(RawTensor::new(Dtype::U8, vec![usize::MAX, 2], vec![]).is_err());
    let forged = RawTensor { dtype: Dtype::F64, shape: vec![4], data: vec![0; 8] };
    assert!(forged.to_tch().is_err());
    let dup = vec![
        ("a".to_string(), RawTensor::new(Dtype::U8, vec![1], vec![7]).unwrap()),
        ("a".to_string(), RawTensor::new(Dtype::U8, vec![1], vec![8]).unwrap()),
    ];
    assert!(checkpoint::write_safetensors(&dup, tmp("dup.safetensors")).is_err());
}

/// A `.safetensors` file holding one tensor and `config` as its recorded configuration.
fn with_recorded_config(name: &str, config: &str) -> PathBuf {
    let header = format!(
        r#"{{"__metadata__":{{"patrack.config":{}}},"backbone.norm.weight":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#,
        serde_json::to_string(config).unwrap()
    );
    let path = tmp(name);
    std::fs::write(&path, safetensors_bytes(&header, 4)).unwrap();
    path
}

#[test]
fn huge_recorded_configurations_are_refused_before_allocating() {
    // The campaign's ~330-byte files: embed_dim 65536, depth 64 or 10^7 panicked in tch or
    // aborted on allocation.
    for (field, config) in [
        ("embed_dim 65536", r#"{"embed_dim":65536,"num_heads":16}"#),
        ("depth 64", r#"{"depth":64}"#),
        ("depth 10000000", r#"{"depth":10000000}"#),
    ] {
        let path = with_recorded_config(&format!("huge-{}.safetensors", field.replace(' ', "-")), config);
        println!("{} bytes", std::fs::metadata(&path).unwrap().len());
        let err = patrack::model::load_file(&path, None, tch::Device::Cpu, patrack::device::Precision::Fp32)
            .expect_err(field);
        println!("{field}: {err}");
        assert!(err.to_string().contains(field) && err.to_string().contains("maximum"), "{err}");
    }
}

#[test]
fn small_weights_without_their_configuration_get_a_short_hint() {
    // The demo model re-saved without `patrack.config`, loaded with the default (ViT-B): one
    // short message naming the configuration to pass, not a 411-line key list.
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/patrack_small_rgbt.safetensors");
    let ckpt = read_any(&model).unwrap();
    let bare = tmp("small-without-config.safetensors");
    checkpoint::write_safetensors(&ckpt.tensors, &bare).unwrap();
    let err = patrack::model::load_file(&bare, None, tch::Device::Cpu, patrack::device::Precision::Fp32).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains("128-wide") && msg.contains("--config small"), "{msg}");
    assert!(msg.lines().count() <= 3, "{} lines", msg.lines().count());
    // With the hint followed, it loads.
    patrack::model::load_file(
        &bare,
        Some(patrack::model::ModelConfig::small()),
        tch::Device::Cpu,
        patrack::device::Precision::Fp32,
    )
    .unwrap();
}
