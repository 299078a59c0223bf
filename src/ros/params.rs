//! The node's parameters: one struct, read from `ros__parameters` YAML (`config/patrack.yaml`
//! plus presets) and `-p name:=value` overrides, merged in order and validated once. Defaults
//! equal `config/patrack.yaml`, so a node started without a params file behaves like one started
//! with it.
//!
//! Nested groups map to dotted ROS parameter names (`sync.queue_size`), which is how rcl flattens
//! nested YAML maps; flat dotted keys in a YAML file are accepted too. [`PARAMETERS`] describes
//! each one (type, meaning, range, whether it may change while the node runs) for the parameter
//! services.
//!
//! Why the node merges parameter files itself instead of taking rcl's result: rcl keeps a nested
//! key that two files both set as two entries, `-p` updates only the first, and r2r keeps the
//! last, so an override of a key a preset repeats was silently lost. Here every file is merged
//! key by key in order, then every override, then the whole set is validated once (so
//! `thermal.low` and `thermal.high` may move together past each other's old values).

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::ros::sync::SyncConfig;
use crate::sensor::depth::{DepthSampling, DepthStatistic};
use crate::sensor::{AuxConfig, Modality, ThermalScaling};
use crate::tracker::{BoxXywh, TrackerConfig};

/// The node name whose sections are read besides wildcards.
pub const NODE_NAME: &str = "patrack";

/// Errors of reading, changing and validating parameters.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("parameter YAML is malformed: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("reading parameter file {path}: {source}")]
    Io { path: String, source: crate::limits::TextFileError },
    #[error(
        "no parameter file has a `ros__parameters` section for the node {node} (`/**`, `{NODE_NAME}` or its full name)"
    )]
    NoNodeSection { node: String },
    #[error("`{0}` is not a map of parameters")]
    NotAMap(String),
    #[error("parameter YAML refused: {0}")]
    Shape(#[from] crate::limits::ShapeError),
    #[error("unknown parameter `{0}`")]
    Unknown(String),
    #[error(
        "parameter `{name}` is read-only while the node runs (it is read at start-up; restart the node to change it)"
    )]
    ReadOnly { name: String },
    #[error("parameter `{name}`: {reason}")]
    Type { name: String, reason: String },
    #[error("invalid parameter `{name}`: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The ROS type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Bool,
    Integer,
    Double,
    String,
    /// A fixed number of doubles.
    DoubleArray(usize),
}

/// A numeric range a parameter must lie in (inclusive; also published by `describe_parameters`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamRange {
    None,
    Integer { from: i64, to: i64 },
    Double { from: f64, to: f64 },
}

/// What the parameter services say about one parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    /// Dotted ROS name.
    pub name: &'static str,
    pub kind: ParamKind,
    pub description: &'static str,
    /// May change while the node runs (through `set_parameters`); the others shape the model,
    /// the subscriptions or the queues and are read once at start-up.
    pub runtime: bool,
    pub range: ParamRange,
    /// Allowed values of a string parameter, shown as `additional_constraints`.
    pub choices: &'static str,
}

const fn spec(name: &'static str, kind: ParamKind, runtime: bool, description: &'static str) -> ParamSpec {
    ParamSpec { name, kind, description, runtime, range: ParamRange::None, choices: "" }
}

const fn ranged(
    name: &'static str,
    kind: ParamKind,
    runtime: bool,
    range: ParamRange,
    description: &'static str,
) -> ParamSpec {
    ParamSpec { name, kind, description, runtime, range, choices: "" }
}

const fn choice(name: &'static str, runtime: bool, choices: &'static str, description: &'static str) -> ParamSpec {
    ParamSpec { name, kind: ParamKind::String, description, runtime, range: ParamRange::None, choices }
}

use ParamKind as K;

/// Every parameter of the node, in the order of `config/patrack.yaml`.
pub const PARAMETERS: &[ParamSpec] = &[
    spec("model_path", K::String, false, "weights file (.safetensors or .pth.tar); empty: deterministic test weights that do not track"),
    spec("model_config", K::String, false, "vit_base | small | tiny | path to a JSON ModelConfig; a .safetensors written by patrack records its own, which wins"),
    choice("device", false, "auto | cpu | cuda | cuda:N", "where the network runs; auto: the first CUDA device if there is one, else the CPU"),
    choice("precision", false, "fp32 | bf16 | fp16", "network precision"),
    spec("cuda_graph", K::Bool, false, "CUDA: replay the network as one CUDA graph (build feature cuda)"),
    spec("crop_on_device", K::Bool, false, "CUDA: crop/resize on the GPU (faster, not OpenCV-exact)"),
    ranged("threads", K::Integer, false, ParamRange::Integer { from: 0, to: 256 }, "intra-op CPU threads of the network; 0: one for small networks, half the cores for large ones (the thread policy in the README)"),
    ranged("candidate_elimination", K::Double, false, ParamRange::Double { from: 0.0, to: 1.0 }, "OSTrack's candidate elimination for RGB-only (OSTrack) weights: search tokens kept in blocks 3, 6, 9 of 12 (OSTrack's 0.7); 0: off (PATrack's setting; the two-stream network refuses it)"),
    choice("modality", false, "thermal | depth | event", "what the aux camera sees"),
    spec("autostart", K::Bool, false, "configure and activate at start; false: stay unconfigured until a lifecycle manager calls change_state"),
    spec("enabled", K::Bool, true, "false: camera messages are dropped and nothing is tracked or published; the model stays loaded (also ~/enable)"),
    spec("use_compressed", K::Bool, false, "shorthand: both cameras on <topic>/compressed (sensor_msgs/CompressedImage)"),
    choice("rgb.transport", false, "raw | compressed", "RGB input: rgb/image (Image) or rgb/image/compressed (CompressedImage)"),
    choice("rgb.reliability", false, "best_effort | reliable", "QoS reliability of the RGB subscription; best_effort also receives reliable publishers"),
    ranged("rgb.depth", K::Integer, false, ParamRange::Integer { from: 1, to: 100 }, "QoS keep-last depth of the RGB subscription"),
    choice("aux.transport", false, "raw | compressed | compressedDepth", "aux input: aux/image, aux/image/compressed or aux/image/compressedDepth"),
    choice("aux.reliability", false, "best_effort | reliable", "QoS reliability of the aux subscription"),
    ranged("aux.depth", K::Integer, false, ParamRange::Integer { from: 1, to: 100 }, "QoS keep-last depth of the aux subscription"),
    choice("debug_image.reliability", false, "reliable | best_effort", "QoS reliability of ~/debug_image (best_effort for slow links)"),
    ranged("max_rate_hz", K::Double, true, ParamRange::Double { from: 0.0, to: 1000.0 }, "most pairs tracked per second of stamp time; 0: every pair inference keeps up with"),
    spec("initial_bbox", K::DoubleArray(4), true, "[x, y, w, h] px; all zero: wait for ~/init; setting a box while running starts the target on the next pair"),
    spec("class_id", K::String, true, "results[0].hypothesis.class_id of the detections"),
    ranged("max_targets", K::Integer, false, ParamRange::Integer { from: 1, to: 32 }, "targets tracked at once, by the id of ~/init (one batched network call per frame); 1: the single target, whose id is its track number"),
    spec("publish_debug_image", K::Bool, true, "build ~/debug_image even when nobody subscribes"),
    ranged("debug_aux_blend", K::Double, true, ParamRange::Double { from: 0.0, to: 1.0 }, "weight of the aux image blended into the debug image"),
    spec("use_sim_time", K::Bool, false, "the ROS clock follows /clock (bag replay with ros2 bag play --clock)"),
    ranged("sync.queue_size", K::Integer, false, ParamRange::Integer { from: 1, to: 1000 }, "ApproximateTime queue per input"),
    ranged("sync.max_interval_s", K::Double, false, ParamRange::Double { from: 0.0, to: 10.0 }, "widest accepted stamp spread of an RGB/aux pair, s (> 0)"),
    ranged("tracker.lost_threshold", K::Double, true, ParamRange::Double { from: 0.0, to: 1.0 }, "windowed score under which a frame is a miss"),
    ranged("tracker.lost_frames", K::Integer, true, ParamRange::Integer { from: 0, to: 1_000_000 }, "misses in a row before the target is Lost (0: never)"),
    ranged("tracker.lost_search_scale", K::Double, true, ParamRange::Double { from: 0.0, to: MAX_LOST_SEARCH_SCALE }, "search area multiplier while Lost (> 0)"),
    choice("thermal.scaling", true, "percentile | fixed", "16-bit counts and 32FC1 temperatures to 8 bits: per-frame percentile stretch or a fixed range"),
    spec("thermal.low", K::Double, true, "percentile: lower percentile; fixed: the value mapped to 0"),
    spec("thermal.high", K::Double, true, "percentile: upper percentile; fixed: the value mapped to 255"),
    spec("registration.homography", K::DoubleArray(9), true, "row-major 3x3 homography from RGB pixel to aux pixel coordinates; identity: only resized"),
    ranged("depth.roi_fraction", K::Double, true, ParamRange::Double { from: 0.05, to: 1.0 }, "RGB-D: side of the centred part of the box whose depth pixels give the target's distance, relative to the box's"),
    choice("depth.statistic", true, "median | mode", "RGB-D: the distance from the valid depth pixels: median, or the median of the densest 4 % depth interval (the largest surface)"),
    ranged("depth.min_m", K::Double, true, ParamRange::Double { from: 0.0, to: 1000.0 }, "RGB-D: nearest valid depth, m (nearer readings are ignored)"),
    ranged("depth.max_m", K::Double, true, ParamRange::Double { from: 0.0, to: 1000.0 }, "RGB-D: farthest valid depth, m (farther readings are ignored)"),
    ranged("depth.min_valid_fraction", K::Double, true, ParamRange::Double { from: 0.0, to: 1.0 }, "RGB-D: least share of the sampled depth pixels with a valid reading; below it the frame has no 3D output"),
];

/// Largest `tracker.lost_search_scale`: the search crop grows with it, and at 4 it already covers
/// 16x the normal search area.
pub const MAX_LOST_SEARCH_SCALE: f64 = 4.0;

/// The description of a parameter by its dotted name.
pub fn spec_of(name: &str) -> Option<&'static ParamSpec> {
    PARAMETERS.iter().find(|s| s.name == name)
}

/// How a camera stream arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageTransport {
    /// `sensor_msgs/Image` on `<topic>`.
    #[serde(rename = "raw")]
    Raw,
    /// `sensor_msgs/CompressedImage` (JPEG/PNG) on `<topic>/compressed`.
    #[serde(rename = "compressed")]
    Compressed,
    /// `sensor_msgs/CompressedImage` (depth as PNG with the depth-quantisation header) on
    /// `<topic>/compressedDepth`.
    #[serde(rename = "compressedDepth")]
    CompressedDepth,
}

/// QoS reliability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reliability {
    #[serde(rename = "best_effort")]
    BestEffort,
    #[serde(rename = "reliable")]
    Reliable,
}

/// `rgb.*` / `aux.*`: one camera subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamParams {
    pub transport: ImageTransport,
    pub reliability: Reliability,
    /// Keep-last depth.
    pub depth: u32,
}

impl Default for StreamParams {
    fn default() -> Self {
        // Sensor-data QoS: best effort matches both kinds of publishers.
        Self { transport: ImageTransport::Raw, reliability: Reliability::BestEffort, depth: 5 }
    }
}

/// `debug_image.*`: the debug image publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugImageParams {
    pub reliability: Reliability,
}

impl Default for DebugImageParams {
    fn default() -> Self {
        Self { reliability: Reliability::Reliable }
    }
}

/// `sync.*`: ApproximateTime pairing of the RGB and aux streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncParams {
    /// Messages held per input while waiting for a partner (message_filters `queue_size`).
    pub queue_size: u32,
    /// Widest accepted stamp spread of an RGB/aux pair, seconds.
    pub max_interval_s: f64,
}

impl Default for SyncParams {
    fn default() -> Self {
        Self { queue_size: 10, max_interval_s: 0.05 }
    }
}

/// `tracker.*`: when a target counts as lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerParams {
    /// Windowed score under which a frame is a miss, in [0, 1].
    pub lost_threshold: f64,
    /// Misses in a row before the target is Lost (0: never).
    pub lost_frames: u32,
    /// Search area multiplier while Lost.
    pub lost_search_scale: f64,
}

impl Default for TrackerParams {
    fn default() -> Self {
        Self { lost_threshold: 0.25, lost_frames: 10, lost_search_scale: 1.0 }
    }
}

/// `thermal.*`: 16-bit counts and 32FC1 temperatures to 8 bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThermalParams {
    /// `percentile` (per-frame stretch) or `fixed` (a fixed value range).
    pub scaling: String,
    /// percentile: lower percentile; fixed: the value mapped to 0.
    pub low: f64,
    /// percentile: upper percentile; fixed: the value mapped to 255.
    pub high: f64,
}

impl Default for ThermalParams {
    fn default() -> Self {
        Self { scaling: "percentile".into(), low: 1.0, high: 99.0 }
    }
}

/// `registration.*`: where the aux camera's pixels lie in the RGB image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationParams {
    /// Row-major 3x3 homography from RGB pixel coordinates to aux pixel coordinates. The
    /// identity means the aux image is only resized to the RGB size.
    pub homography: [f64; 9],
}

impl Default for RegistrationParams {
    fn default() -> Self {
        Self { homography: IDENTITY }
    }
}

const IDENTITY: [f64; 9] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

/// `depth.*`: the target's distance in RGB-D mode (see [`crate::sensor::depth`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DepthParams {
    /// Side of the sampled central part relative to the box's.
    pub roi_fraction: f64,
    /// `median` or `mode`.
    pub statistic: String,
    /// Valid depth readings lie in `[min_m, max_m]`, metres.
    pub min_m: f64,
    pub max_m: f64,
    /// Least share of sampled pixels with a valid reading.
    pub min_valid_fraction: f64,
}

impl Default for DepthParams {
    fn default() -> Self {
        let d = DepthSampling::default();
        Self {
            roi_fraction: d.roi_fraction,
            statistic: "median".into(),
            min_m: d.min_m,
            max_m: d.max_m,
            min_valid_fraction: d.min_valid_fraction,
        }
    }
}

/// Every parameter of the node, with the defaults of `config/patrack.yaml` (see [`PARAMETERS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeParams {
    pub model_path: String,
    pub model_config: String,
    pub device: String,
    pub precision: String,
    pub cuda_graph: bool,
    pub crop_on_device: bool,
    pub threads: u32,
    pub candidate_elimination: f64,
    pub modality: Modality,
    pub autostart: bool,
    pub enabled: bool,
    pub use_compressed: bool,
    pub rgb: StreamParams,
    pub aux: StreamParams,
    pub debug_image: DebugImageParams,
    pub max_rate_hz: f64,
    pub initial_bbox: [f64; 4],
    pub class_id: String,
    pub max_targets: u32,
    pub publish_debug_image: bool,
    pub debug_aux_blend: f64,
    pub use_sim_time: bool,
    pub sync: SyncParams,
    pub tracker: TrackerParams,
    pub thermal: ThermalParams,
    pub registration: RegistrationParams,
    pub depth: DepthParams,
}

impl Default for NodeParams {
    fn default() -> Self {
        Self {
            model_path: String::new(),
            model_config: "vit_base".into(),
            device: "auto".into(),
            precision: "bf16".into(),
            cuda_graph: true,
            crop_on_device: false,
            threads: 0,
            candidate_elimination: 0.0,
            modality: Modality::Thermal,
            autostart: true,
            enabled: true,
            use_compressed: false,
            rgb: StreamParams::default(),
            aux: StreamParams::default(),
            debug_image: DebugImageParams::default(),
            max_rate_hz: 0.0,
            initial_bbox: [0.0; 4],
            class_id: "target".into(),
            max_targets: 1,
            publish_debug_image: false,
            debug_aux_blend: 0.0,
            use_sim_time: false,
            sync: SyncParams::default(),
            tracker: TrackerParams::default(),
            thermal: ThermalParams::default(),
            registration: RegistrationParams::default(),
            depth: DepthParams::default(),
        }
    }
}

/// Parameter overrides as the node receives them: YAML documents (the `--params-file`s, in
/// order) and single values (`-p name:=value`, applied after every file, in order).
#[derive(Debug, Clone, Default)]
pub struct ParamSources {
    pub files: Vec<(String, String)>,
    pub values: Vec<(String, Value)>,
}

impl ParamSources {
    /// Reads the files (name, text) now; values are given as YAML text (`-p` syntax).
    pub fn read<P: AsRef<std::path::Path>>(files: &[P], values: &[(String, String)]) -> Result<Self, ParamsError> {
        let files = files
            .iter()
            .map(|p| {
                let p = p.as_ref();
                crate::limits::read_text_file(p, crate::limits::MAX_YAML_BYTES)
                    .map(|text| (p.display().to_string(), text))
                    .map_err(|source| ParamsError::Io { path: p.display().to_string(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let values = values
            .iter()
            .map(|(name, text)| {
                let value =
                    if text.trim().is_empty() { Value::String(String::new()) } else { serde_yaml::from_str(text)? };
                Ok((name.clone(), value))
            })
            .collect::<Result<Vec<_>, ParamsError>>()?;
        Ok(Self { files, values })
    }
}

/// What [`NodeParams::resolve`] made of the sources.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub params: NodeParams,
    /// Names set by a source that the node does not have (rcl passes every `-p` and wildcard
    /// section to every node, so the ROS node warns about these instead of refusing to start).
    pub unknown: Vec<String>,
}

impl NodeParams {
    /// Parameters from one `ros__parameters` YAML document over the defaults, validated.
    pub fn from_yaml_str(text: &str) -> Result<Self, ParamsError> {
        Self::from_yaml_strs(&[text])
    }

    /// Several YAML documents (the base file, then presets) merged in order over the defaults:
    /// a later file overrides single keys of nested groups, not whole groups. Unknown names are
    /// errors. Validated.
    pub fn from_yaml_strs(texts: &[&str]) -> Result<Self, ParamsError> {
        let sources = ParamSources {
            files: texts.iter().enumerate().map(|(i, t)| (format!("document {}", i + 1), t.to_string())).collect(),
            values: Vec::new(),
        };
        Self::resolve_strict(&sources)
    }

    /// [`NodeParams::from_yaml_strs`] over files.
    pub fn from_files<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Self, ParamsError> {
        Self::resolve_strict(&ParamSources::read(paths, &[])?)
    }

    /// [`NodeParams::resolve`] for the `patrack` node, with unknown names as errors (offline
    /// commands and `patrack node`, where a typo should stop the run).
    pub fn resolve_strict(sources: &ParamSources) -> Result<Self, ParamsError> {
        let resolved = Self::resolve(sources, &format!("/{NODE_NAME}"))?;
        match resolved.unknown.into_iter().next() {
            Some(name) => Err(ParamsError::Unknown(name)),
            None => Ok(resolved.params),
        }
    }

    /// Every file's sections for the node `node_fqn` (`/ns/name`) merged key by key in order
    /// over the defaults, then every single value, then validated once.
    pub fn resolve(sources: &ParamSources, node_fqn: &str) -> Result<Resolved, ParamsError> {
        let mut tree = serde_yaml::to_value(Self::default())?;
        let mut unknown = Vec::new();
        let mut any_section = sources.files.is_empty();
        for (_, text) in &sources.files {
            for section in node_sections(text, node_fqn)? {
                any_section = true;
                let mut leaves = Vec::new();
                flatten_into("", &nest_dotted_keys(section)?, &mut leaves);
                for (name, value) in leaves {
                    set_leaf(&mut tree, &name, value, &mut unknown)?;
                }
            }
        }
        if !any_section {
            return Err(ParamsError::NoNodeSection { node: node_fqn.to_owned() });
        }
        for (name, value) in &sources.values {
            set_leaf(&mut tree, name, value.clone(), &mut unknown)?;
        }
        let params: Self = serde_yaml::from_value(tree)?;
        params.validate()?;
        Ok(Resolved { params, unknown })
    }

    /// A copy with several parameters changed by their dotted ROS names, validated once after
    /// all of them are applied.
    pub fn with_values(&self, values: &[(String, Value)]) -> Result<Self, ParamsError> {
        let mut tree = serde_yaml::to_value(self)?;
        let mut unknown = Vec::new();
        for (name, value) in values {
            set_leaf(&mut tree, name, value.clone(), &mut unknown)?;
        }
        if let Some(name) = unknown.into_iter().next() {
            return Err(ParamsError::Unknown(name));
        }
        let params: Self = serde_yaml::from_value(tree)?;
        params.validate()?;
        Ok(params)
    }

    /// A copy with one parameter changed by its dotted ROS name, validated.
    pub fn with_value(&self, name: &str, value: Value) -> Result<Self, ParamsError> {
        self.with_values(&[(name.to_owned(), value)])
    }

    /// Every parameter as (dotted name, value), in declaration order: what the parameter
    /// services list and what `ros2 param dump` shows.
    pub fn flatten(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        if let Ok(tree) = serde_yaml::to_value(self) {
            flatten_into("", &tree, &mut out);
        }
        out
    }

    /// One parameter's value by its dotted name.
    pub fn value_of(&self, name: &str) -> Option<Value> {
        self.flatten().into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Checks ranges and names; the error names the parameter.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let invalid = |name: &'static str, reason: String| Err(ParamsError::Invalid { name, reason });
        let flat = self.flatten();
        for spec in PARAMETERS {
            let Some((_, value)) = flat.iter().find(|(n, _)| n == spec.name) else { continue };
            let in_range = match (spec.range, value.as_f64()) {
                (ParamRange::Integer { from, to }, Some(v)) => v >= from as f64 && v <= to as f64,
                (ParamRange::Double { from, to }, Some(v)) => v.is_finite() && v >= from && v <= to,
                _ => true,
            };
            if !in_range {
                let range = match spec.range {
                    ParamRange::Integer { from, to } => format!("[{from}, {to}]"),
                    ParamRange::Double { from, to } => format!("[{from}, {to}]"),
                    ParamRange::None => String::new(),
                };
                return invalid(spec.name, format!("must be within {range}, got {}", yaml_text(value)));
            }
        }
        if self.sync.max_interval_s <= 0.0 {
            return invalid("sync.max_interval_s", format!("must be positive, got {}", self.sync.max_interval_s));
        }
        if self.tracker.lost_search_scale <= 0.0 {
            return invalid(
                "tracker.lost_search_scale",
                format!("must be positive, got {}", self.tracker.lost_search_scale),
            );
        }
        if self.rgb.transport == ImageTransport::CompressedDepth {
            return invalid("rgb.transport", "must be raw or compressed (compressedDepth is for depth images)".into());
        }
        let [_, _, w, h] = self.initial_bbox;
        let all_zero = self.initial_bbox.iter().all(|v| *v == 0.0);
        let well_formed = self.initial_bbox.iter().all(|v| v.is_finite()) && w > 0.0 && h > 0.0;
        if !all_zero && !well_formed {
            return invalid(
                "initial_bbox",
                format!("must be all zero or [x, y, w, h] with w, h > 0, got {}", list_text(&self.initial_bbox)),
            );
        }
        // Syntax only: whether the GPU exists is checked when the model is built, so a params
        // file for a robot validates on a CPU machine.
        let device = self.device.trim().to_ascii_lowercase();
        let device_ok = matches!(device.as_str(), "cpu" | "auto" | "cuda" | "gpu")
            || device.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok());
        if !device_ok {
            return invalid("device", format!("must be auto, cpu, cuda or cuda:N, got \"{}\"", self.device));
        }
        if let Err(e) = self.precision.parse::<crate::device::Precision>() {
            return invalid("precision", e.to_string());
        }
        if self.model_config.is_empty() {
            return invalid("model_config", "must be vit_base, small, tiny or a JSON file path".into());
        }
        if let Err(e) = self.thermal_scaling() {
            return invalid("thermal", e);
        }
        if !self.registration.homography.iter().all(|v| v.is_finite()) {
            return invalid("registration.homography", "all 9 entries must be finite".into());
        }
        if let Err(e) = self.aux_config().homography() {
            return invalid("registration.homography", e.to_string());
        }
        if let Err(e) = self.tracker_config().validate() {
            return invalid("tracker", e.to_string());
        }
        if let Err(e) = self.depth_statistic() {
            return invalid("depth.statistic", e);
        }
        if self.depth.min_m >= self.depth.max_m {
            return invalid(
                "depth",
                format!("need min_m < max_m, got min_m {}, max_m {}", self.depth.min_m, self.depth.max_m),
            );
        }
        Ok(())
    }

    /// The RGB camera's transport (`use_compressed` turns a raw one into compressed).
    pub fn rgb_transport(&self) -> ImageTransport {
        match (self.use_compressed, self.rgb.transport) {
            (true, ImageTransport::Raw) => ImageTransport::Compressed,
            (_, t) => t,
        }
    }

    /// The aux camera's transport (`use_compressed` turns a raw one into compressed).
    pub fn aux_transport(&self) -> ImageTransport {
        match (self.use_compressed, self.aux.transport) {
            (true, ImageTransport::Raw) => ImageTransport::Compressed,
            (_, t) => t,
        }
    }

    /// The synchronizer settings (C++ defaults for what the node does not expose).
    pub fn sync_config(&self) -> SyncConfig {
        let max_interval_ns = (self.sync.max_interval_s * 1e9).round() as i64;
        SyncConfig::new(self.sync.queue_size as usize, Some(max_interval_ns))
    }

    /// The tracker settings (reference crop factors, thresholds from the parameters).
    pub fn tracker_config(&self) -> TrackerConfig {
        TrackerConfig {
            lost_threshold: self.tracker.lost_threshold as f32,
            lost_frames: self.tracker.lost_frames,
            lost_search_scale: self.tracker.lost_search_scale,
            cuda_graph: self.cuda_graph,
            crop_on_device: self.crop_on_device,
            ..TrackerConfig::default()
        }
    }

    /// The aux image path settings.
    pub fn aux_config(&self) -> AuxConfig {
        let h = self.registration.homography;
        let aux_from_rgb = (h != IDENTITY).then(|| [[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], h[8]]]);
        AuxConfig { thermal_scaling: self.thermal_scaling().unwrap_or_default(), aux_from_rgb }
    }

    /// The RGB-D depth estimate's settings.
    pub fn depth_sampling(&self) -> DepthSampling {
        DepthSampling {
            roi_fraction: self.depth.roi_fraction,
            min_m: self.depth.min_m,
            max_m: self.depth.max_m,
            statistic: self.depth_statistic().unwrap_or(DepthStatistic::Median),
            min_valid_fraction: self.depth.min_valid_fraction,
        }
    }

    fn depth_statistic(&self) -> Result<DepthStatistic, String> {
        match self.depth.statistic.as_str() {
            "median" => Ok(DepthStatistic::Median),
            "mode" => Ok(DepthStatistic::Mode),
            other => Err(format!("must be median or mode, got \"{other}\"")),
        }
    }

    /// The box to start tracking on the first pair, when the parameter is set.
    pub fn initial_box(&self) -> Option<BoxXywh> {
        let [x, y, w, h] = self.initial_bbox;
        (w > 0.0 && h > 0.0).then(|| BoxXywh::new(x, y, w, h))
    }

    fn thermal_scaling(&self) -> Result<ThermalScaling, String> {
        let (low, high) = (self.thermal.low, self.thermal.high);
        let scaling = match self.thermal.scaling.as_str() {
            "percentile" => ThermalScaling::Percentile { low, high },
            "fixed" => ThermalScaling::Fixed { min: low, max: high },
            other => return Err(format!("scaling must be percentile or fixed, got \"{other}\"")),
        };
        let ok = match scaling {
            ThermalScaling::Percentile { .. } => (0.0..=100.0).contains(&low) && (0.0..=100.0).contains(&high),
            ThermalScaling::Fixed { .. } => low.is_finite() && high.is_finite(),
        };
        if !ok || low >= high {
            let within = if matches!(scaling, ThermalScaling::Percentile { .. }) {
                " (percentiles within [0, 100])"
            } else {
                ""
            };
            return Err(format!("need low < high{within}, got low {low}, high {high}"));
        }
        Ok(scaling)
    }
}

/// A value as YAML text for messages (`0.5`, `"abc"`, `[1, 2]`).
pub fn yaml_text(value: &Value) -> String {
    match value {
        Value::Sequence(items) => format!("[{}]", items.iter().map(yaml_text).collect::<Vec<_>>().join(", ")),
        Value::String(s) => format!("\"{s}\""),
        Value::Null => "null".into(),
        other => serde_yaml::to_string(other).map(|s| s.trim_end().to_owned()).unwrap_or_default(),
    }
}

fn list_text(values: &[f64]) -> String {
    format!("[{}]", values.iter().map(f64::to_string).collect::<Vec<_>>().join(", "))
}

/// Converts a value to the type the parameter has, as rclcpp would accept it: the exact type,
/// or an integer where a double is expected (YAML and `ros2 param set` write `1` for `1.0`).
pub fn coerce(spec: &ParamSpec, value: Value) -> Result<Value, String> {
    let got = |v: &Value| match v {
        Value::Null => "nothing".to_owned(),
        Value::Bool(_) => "a bool".to_owned(),
        Value::Number(n) if n.is_f64() => "a double".to_owned(),
        Value::Number(_) => "an integer".to_owned(),
        Value::String(_) => "a string".to_owned(),
        Value::Sequence(s) => format!("a list of {}", s.len()),
        _ => "a map".to_owned(),
    };
    let expected = match spec.kind {
        K::Bool => "a bool",
        K::Integer => "an integer",
        K::Double => "a double",
        K::String => "a string",
        K::DoubleArray(_) => "a list of doubles",
    };
    let wrong = |v: &Value| Err(format!("expected {expected}, got {} {}", got(v), yaml_text(v)));
    match (spec.kind, &value) {
        (K::Bool, Value::Bool(_)) | (K::String, Value::String(_)) => Ok(value),
        (K::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(value),
        (K::Double, Value::Number(n)) => match n.as_f64() {
            Some(v) => Ok(Value::from(v)),
            None => wrong(&value),
        },
        (K::DoubleArray(len), Value::Sequence(items)) => {
            let doubles: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
            match doubles {
                Some(d) if d.len() == len => Ok(Value::from(d)),
                Some(d) => Err(format!("expected {len} numbers, got {}", d.len())),
                None => wrong(&value),
            }
        }
        _ => wrong(&value),
    }
}

/// Sets one leaf by its dotted name, type-checked; names the node does not have go to `unknown`.
fn set_leaf(tree: &mut Value, name: &str, value: Value, unknown: &mut Vec<String>) -> Result<(), ParamsError> {
    let Some(spec) = spec_of(name) else {
        unknown.push(name.to_owned());
        return Ok(());
    };
    let value = coerce(spec, value).map_err(|reason| ParamsError::Type { name: name.to_owned(), reason })?;
    let mut node = tree;
    for part in name.split('.') {
        node =
            node.as_mapping_mut().and_then(|m| m.get_mut(part)).ok_or_else(|| ParamsError::Unknown(name.to_owned()))?;
    }
    *node = value;
    Ok(())
}

/// The `ros__parameters` maps of one YAML document that apply to the node `node_fqn`, in
/// document order. Node keys may be nested (`robot: {patrack: {ros__parameters: ..}}` is
/// `/robot/patrack`) and may use rcl's wildcards: `*` for one name token, `**` for any number.
fn node_sections(text: &str, node_fqn: &str) -> Result<Vec<Value>, ParamsError> {
    // serde_yaml takes quadratic time on deep nesting before its recursion limit stops it.
    crate::limits::check_yaml_shape(text)?;
    let doc: Value = serde_yaml::from_str(text)?;
    let root = doc.as_mapping().ok_or_else(|| ParamsError::NotAMap("the document".into()))?;
    let mut found = Vec::new();
    collect_sections(root, "", node_fqn, &mut found)?;
    Ok(found)
}

fn collect_sections(map: &Mapping, prefix: &str, node_fqn: &str, out: &mut Vec<Value>) -> Result<(), ParamsError> {
    for (key, value) in map {
        let Some(key) = key.as_str() else { return Err(ParamsError::NotAMap(format!("key {}", yaml_text(key)))) };
        let key = key.trim_matches('/');
        if key == "ros__parameters" {
            if !value.is_mapping() {
                return Err(ParamsError::NotAMap(format!("{prefix}/ros__parameters")));
            }
            if node_matches(prefix, node_fqn) {
                out.push(value.clone());
            }
            continue;
        }
        let inner = value.as_mapping().ok_or_else(|| ParamsError::NotAMap(format!("{prefix}/{key}")))?;
        collect_sections(inner, &format!("{prefix}/{key}"), node_fqn, out)?;
    }
    Ok(())
}

/// rcl's node-name match: `pattern` and `node_fqn` are `/`-separated names (rcl reads a key
/// without a leading `/` as fully qualified, so `patrack` is the node `/patrack`); `*` matches one
/// token, `**` any number of tokens (none included).
pub fn node_matches(pattern: &str, node_fqn: &str) -> bool {
    fn tokens(s: &str) -> Vec<&str> {
        s.split('/').filter(|t| !t.is_empty()).collect()
    }
    fn matches(p: &[&str], n: &[&str]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((&"**", rest)) => (0..=n.len()).any(|i| matches(rest, &n[i..])),
            Some((head, rest)) => {
                n.split_first().is_some_and(|(first, tail)| (*head == "*" || head == first) && matches(rest, tail))
            }
        }
    }
    matches(&tokens(pattern), &tokens(node_fqn))
}

/// `a.b: v` keys become `a: {b: v}`, as rcl reads them.
fn nest_dotted_keys(value: Value) -> Result<Value, ParamsError> {
    let Value::Mapping(map) = value else { return Ok(value) };
    let mut out = Value::Mapping(Mapping::new());
    for (key, v) in map {
        let Some(name) = key.as_str() else {
            return Err(ParamsError::NotAMap(format!("key {}", yaml_text(&key))));
        };
        let mut nested = nest_dotted_keys(v)?;
        for part in name.rsplit('.') {
            let mut m = Mapping::new();
            m.insert(Value::String(part.to_owned()), nested);
            nested = Value::Mapping(m);
        }
        merge(&mut out, nested);
    }
    Ok(out)
}

/// Deep merge: maps merge key by key, anything else is replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn flatten_into(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Mapping(m) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or_default();
                let name = if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
                flatten_into(&name, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIGS: &[(&str, &str)] = &[
        ("patrack.yaml", include_str!("../../config/patrack.yaml")),
        ("rgbt.yaml", include_str!("../../config/rgbt.yaml")),
        ("rgbd.yaml", include_str!("../../config/rgbd.yaml")),
        ("rgbe.yaml", include_str!("../../config/rgbe.yaml")),
    ];

    #[test]
    fn defaults_equal_the_shipped_config() {
        let from_file = NodeParams::from_yaml_str(CONFIGS[0].1).unwrap();
        assert_eq!(from_file, NodeParams::default());
        NodeParams::default().validate().unwrap();
    }

    #[test]
    fn every_config_file_parses_and_validates_over_the_base() {
        for (name, text) in CONFIGS {
            let p = NodeParams::from_yaml_strs(&[CONFIGS[0].1, text]).unwrap_or_else(|e| panic!("{name}: {e}"));
            p.validate().unwrap();
        }
        let depth = NodeParams::from_yaml_strs(&[CONFIGS[0].1, CONFIGS[2].1]).unwrap();
        assert_eq!(depth.modality, Modality::Depth);
        let event = NodeParams::from_yaml_strs(&[CONFIGS[0].1, CONFIGS[3].1]).unwrap();
        assert_eq!(event.modality, Modality::Event);
        assert_eq!(event.tracker.lost_threshold, 0.2);
        // A preset changes single keys of a group, the rest of the group stays.
        assert_eq!(event.tracker.lost_frames, 10);
    }

    #[test]
    fn the_config_directory_holds_only_the_tested_files() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
            .collect();
        names.sort();
        let mut tested: Vec<String> = CONFIGS.iter().map(|(n, _)| n.to_string()).collect();
        tested.sort();
        assert_eq!(names, tested, "add new config files to CONFIGS");
    }

    #[test]
    fn named_node_section_overrides_the_wildcard_and_dotted_keys_nest() {
        let text = "/**:\n  ros__parameters:\n    class_id: a\n    sync:\n      queue_size: 3\n\
                    patrack:\n  ros__parameters:\n    class_id: b\n    sync.max_interval_s: 0.02\n";
        let p = NodeParams::from_yaml_str(text).unwrap();
        assert_eq!(p.class_id, "b");
        assert_eq!(p.sync.queue_size, 3);
        assert_eq!(p.sync.max_interval_s, 0.02);
        assert_eq!(p.sync_config().max_interval_ns, Some(20_000_000));
    }

    fn bad(body: &str) -> ParamsError {
        NodeParams::from_yaml_str(&format!("/**:\n  ros__parameters:\n{body}")).unwrap_err()
    }

    #[test]
    fn bad_values_fail_with_the_parameter_named() {
        let cases = [
            ("    sync:\n      queue_size: 0\n", "sync.queue_size"),
            ("    sync:\n      max_interval_s: -1.0\n", "sync.max_interval_s"),
            ("    tracker:\n      lost_threshold: 1.5\n", "tracker.lost_threshold"),
            ("    tracker:\n      lost_search_scale: 0.0\n", "tracker.lost_search_scale"),
            ("    debug_aux_blend: 2.0\n", "debug_aux_blend"),
            ("    initial_bbox: [1.0, 2.0, 0.0, 5.0]\n", "initial_bbox"),
            ("    device: tpu\n", "device"),
            ("    precision: int3\n", "precision"),
            ("    thermal:\n      scaling: log\n", "thermal"),
            ("    thermal:\n      low: 50.0\n      high: 10.0\n", "thermal"),
            ("    registration:\n      homography: [0, 0, 0, 0, 0, 0, 0, 0, 0]\n", "registration.homography"),
            ("    depth:\n      roi_fraction: 0.0\n", "depth.roi_fraction"),
            ("    depth:\n      statistic: mean\n", "depth.statistic"),
            ("    depth:\n      min_m: 5.0\n      max_m: 2.0\n", "depth"),
            ("    depth:\n      min_valid_fraction: 1.5\n", "depth.min_valid_fraction"),
            ("    depth:\n      max_m: -1.0\n", "depth.max_m"),
        ];
        for (body, name) in cases {
            match bad(body) {
                ParamsError::Invalid { name: got, reason } => {
                    assert_eq!(got, name, "{body}: {reason}");
                }
                other => panic!("{body}: expected Invalid({name}), got {other}"),
            }
        }
        assert!(matches!(bad("    modality: sonar\n"), ParamsError::Yaml(_)));
        assert!(matches!(bad("    sync:\n      slop: 0.1\n"), ParamsError::Unknown(n) if n == "sync.slop"));
        assert!(matches!(bad("    lost_threshold: 0.1\n"), ParamsError::Unknown(n) if n == "lost_threshold"));
        assert!(
            matches!(bad("    initial_bbox: [1.0, 2.0]\n"), ParamsError::Type { name, .. } if name == "initial_bbox")
        );
        assert!(matches!(bad("    device: 0\n"), ParamsError::Type { name, .. } if name == "device"));
        assert!(matches!(bad("    sync:\n      queue_size: 2.5\n"), ParamsError::Type { .. }));
        assert!(matches!(
            NodeParams::from_yaml_str("other:\n  ros__parameters: {}\n"),
            Err(ParamsError::NoNodeSection { .. })
        ));
        assert!(matches!(NodeParams::from_yaml_str("[1, 2"), Err(ParamsError::Yaml(_))));
        // The message names the parameter and the value once, in words.
        let message = bad("    device: 0\n").to_string();
        assert_eq!(message, "parameter `device`: expected a string, got an integer 0");
    }

    #[test]
    fn single_values_change_by_dotted_name_with_validation() {
        let p = NodeParams::default();
        let q = p.with_value("tracker.lost_threshold", Value::from(0.4)).unwrap();
        assert_eq!(q.tracker.lost_threshold, 0.4);
        assert_eq!(q.tracker_config().lost_threshold, 0.4);
        assert!(matches!(
            p.with_value("tracker.lost_threshold", Value::from(4.0)),
            Err(ParamsError::Invalid { name: "tracker.lost_threshold", .. })
        ));
        // An integer is accepted where a double is expected, as YAML writes 1 for 1.0.
        assert_eq!(p.with_value("tracker.lost_threshold", Value::from(1)).unwrap().tracker.lost_threshold, 1.0);
        assert_eq!(p.with_value("modality", Value::from("depth")).unwrap().modality, Modality::Depth);
        assert!(matches!(p.with_value("sync", Value::from(1)), Err(ParamsError::Unknown(_))));
        assert!(matches!(p.with_value("nope.x", Value::from(1)), Err(ParamsError::Unknown(_))));
        assert!(matches!(p.with_value("class_id", Value::from(vec![1, 2])), Err(ParamsError::Type { .. })));
    }

    #[test]
    fn overrides_are_merged_before_one_validation() {
        // Raw 16-bit thermal counts: each value alone is outside the percentile rule or crosses
        // the other bound; together they are valid.
        let values: Vec<(String, Value)> = vec![
            ("thermal.scaling".into(), Value::from("fixed")),
            ("thermal.low".into(), Value::from(28000.0)),
            ("thermal.high".into(), Value::from(32000.0)),
        ];
        let p = NodeParams::default().with_values(&values).unwrap();
        assert_eq!(p.aux_config().thermal_scaling, ThermalScaling::Fixed { min: 28000.0, max: 32000.0 });
        let sources = ParamSources { files: vec![("base".into(), CONFIGS[0].1.into())], values };
        let resolved = NodeParams::resolve(&sources, "/patrack").unwrap();
        assert_eq!(resolved.params.thermal.high, 32000.0);
        assert!(resolved.unknown.is_empty());
    }

    #[test]
    fn an_override_wins_over_every_file_even_keys_a_preset_repeats() {
        for (name, preset) in &CONFIGS[1..] {
            let sources = ParamSources {
                files: vec![("base".into(), CONFIGS[0].1.into()), ((*name).into(), (*preset).into())],
                values: vec![("tracker.lost_threshold".into(), Value::from(0.5))],
            };
            let p = NodeParams::resolve(&sources, "/patrack").unwrap().params;
            assert_eq!(p.tracker.lost_threshold, 0.5, "{name}");
        }
        // Files apply in order: a later file wins over an earlier one, key by key.
        let later = "/**:\n  ros__parameters:\n    tracker:\n      lost_threshold: 0.3\n";
        let sources = ParamSources {
            files: vec![
                ("base".into(), CONFIGS[0].1.into()),
                ("e".into(), CONFIGS[3].1.into()),
                ("x".into(), later.into()),
            ],
            values: vec![],
        };
        let p = NodeParams::resolve(&sources, "/patrack").unwrap().params;
        assert_eq!((p.tracker.lost_threshold, p.modality), (0.3, Modality::Event));
    }

    #[test]
    fn presets_repeat_no_key_of_the_base_file_with_the_same_value() {
        // A preset holds only what differs from the base file.
        let base = NodeParams::from_yaml_str(CONFIGS[0].1).unwrap().flatten();
        for (name, preset) in &CONFIGS[1..] {
            for section in node_sections(preset, "/patrack").unwrap() {
                let mut leaves = Vec::new();
                flatten_into("", &nest_dotted_keys(section).unwrap(), &mut leaves);
                for (key, value) in leaves {
                    let spec = spec_of(&key).unwrap_or_else(|| panic!("{name}: unknown {key}"));
                    let value = coerce(spec, value).unwrap();
                    let in_base = base.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
                    assert_ne!(in_base, Some(value), "{name} repeats {key} with the base file's value");
                }
            }
        }
    }

    #[test]
    fn deeply_nested_yaml_is_refused_before_parsing() {
        // 200 000 levels in 400 KB took serde_yaml minutes before its recursion limit.
        let text = format!("/**:\n  ros__parameters:\n    a: {}{}", "[".repeat(200_000), "]".repeat(200_000));
        let start = std::time::Instant::now();
        assert!(matches!(NodeParams::from_yaml_str(&text), Err(ParamsError::Shape(_))));
        println!("refused in {:?}", start.elapsed());
        // A device or FIFO as a parameter file is refused before reading.
        let err = ParamSources::read(&["/dev/zero"], &[]).unwrap_err();
        assert_eq!(err.to_string(), "reading parameter file /dev/zero: not a regular file (a device, FIFO or folder would never end or not be text)");
    }

    #[test]
    fn unknown_names_are_reported_not_fatal_for_the_node() {
        let sources = ParamSources {
            files: vec![("x".into(), "/**:\n  ros__parameters:\n    qos_overrides:\n      a: 1\n".into())],
            values: vec![("nope".into(), Value::from(1))],
        };
        let r = NodeParams::resolve(&sources, "/patrack").unwrap();
        assert_eq!(r.unknown, ["qos_overrides.a", "nope"]);
        assert!(matches!(NodeParams::resolve_strict(&sources), Err(ParamsError::Unknown(n)) if n == "qos_overrides.a"));
    }

    #[test]
    fn node_sections_match_names_namespaces_and_wildcards_like_rcl() {
        for (pattern, node, expected) in [
            ("/**", "/robot/patrack", true),
            ("patrack", "/robot/patrack", false),
            ("patrack", "/patrack", true),
            ("/patrack", "/patrack", true),
            ("/patrack", "/robot/patrack", false),
            ("/robot/patrack", "/robot/patrack", true),
            ("/robot/*", "/robot/patrack", true),
            ("/*", "/robot/patrack", false),
            ("/**/patrack", "/patrack", true),
            ("/**/patrack", "/a/b/patrack", true),
            ("/**/other", "/a/patrack", false),
            ("other", "/patrack", false),
        ] {
            assert_eq!(node_matches(pattern, node), expected, "{pattern} vs {node}");
        }
        let text =
            "robot:\n  patrack:\n    ros__parameters:\n      class_id: a\n/**:\n  ros__parameters:\n    class_id: b\n";
        let sources = ParamSources { files: vec![("x".into(), text.into())], values: vec![] };
        // Document order: the wildcard section comes later and wins.
        assert_eq!(NodeParams::resolve(&sources, "/robot/patrack").unwrap().params.class_id, "b");
        assert_eq!(NodeParams::resolve(&sources, "/patrack").unwrap().params.class_id, "b");
    }

    #[test]
    fn flatten_lists_every_leaf_by_dotted_name() {
        let flat = NodeParams::default().flatten();
        let names: Vec<&str> = flat.iter().map(|(n, _)| n.as_str()).collect();
        for name in
            ["model_path", "sync.queue_size", "tracker.lost_frames", "thermal.scaling", "registration.homography"]
        {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        // The descriptions cover exactly the parameters the struct has, in its order.
        let specs: Vec<&str> = PARAMETERS.iter().map(|s| s.name).collect();
        assert_eq!(names, specs);
        for (name, value) in &flat {
            coerce(spec_of(name).unwrap(), value.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Round trip: setting every flattened value reproduces the struct.
        let mut p = NodeParams { class_id: "x".into(), ..NodeParams::default() };
        for (name, value) in NodeParams::default().flatten() {
            p = p.with_value(&name, value).unwrap();
        }
        assert_eq!(p, NodeParams::default());
    }

    #[test]
    fn derived_configs_follow_the_parameters() {
        let mut p = NodeParams::default();
        assert_eq!(p.aux_config().aux_from_rgb, None);
        assert_eq!(p.initial_box(), None);
        p.registration.homography = [2.0, 0.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.0, 1.0];
        p.initial_bbox = [1.0, 2.0, 3.0, 4.0];
        p.thermal = ThermalParams { scaling: "fixed".into(), low: 280.0, high: 320.0 };
        p.validate().unwrap();
        assert_eq!(p.aux_config().aux_from_rgb, Some([[2.0, 0.0, 1.0], [0.0, 2.0, 3.0], [0.0, 0.0, 1.0]]));
        assert_eq!(p.aux_config().thermal_scaling, ThermalScaling::Fixed { min: 280.0, max: 320.0 });
        assert_eq!(p.initial_box(), Some(BoxXywh::new(1.0, 2.0, 3.0, 4.0)));
        assert_eq!(p.depth_sampling(), DepthSampling::default());
        p.depth = DepthParams {
            roi_fraction: 0.3,
            statistic: "mode".into(),
            min_m: 0.5,
            max_m: 6.0,
            min_valid_fraction: 0.25,
        };
        p.validate().unwrap();
        let d = p.depth_sampling();
        assert_eq!(
            (d.roi_fraction, d.statistic, d.min_m, d.max_m, d.min_valid_fraction),
            (0.3, DepthStatistic::Mode, 0.5, 6.0, 0.25)
        );
    }
}
