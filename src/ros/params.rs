//! The node's parameters: one struct, read from `ros__parameters` YAML (`config/patrack.yaml`
//! plus presets) by serde_yaml, or filled from r2r's parameter overrides one dotted name at a
//! time. Defaults equal `config/patrack.yaml`, so a node started without a params file behaves
//! like one started with it.
//!
//! Nested groups map to dotted ROS parameter names (`sync.queue_size`), which is how rcl flattens
//! nested YAML maps; flat dotted keys in a YAML file are accepted too.

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::ros::sync::SyncConfig;
use crate::sensor::{AuxConfig, Modality, ThermalScaling};
use crate::tracker::{BoxXywh, TrackerConfig};

/// The node name whose section is read besides the `/**` wildcard.
pub const NODE_NAME: &str = "patrack";

/// Parameters that may change while the node runs (through r2r's `~/set_parameters`); the rest
/// are read once at start-up because they shape the model, the subscriptions or the sync queues.
pub const RUNTIME_PARAMETERS: &[&str] = &[
    "class_id",
    "publish_debug_image",
    "debug_aux_blend",
    "tracker.lost_threshold",
    "tracker.lost_frames",
    "tracker.lost_search_scale",
];

/// Errors of reading, changing and validating parameters.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("parameter YAML is malformed: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("reading parameter file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parameter YAML has no `/**` or `{NODE_NAME}` node with a `ros__parameters` map")]
    NoNodeSection,
    #[error("`{0}` is not a map of parameters")]
    NotAMap(String),
    #[error("unknown parameter `{0}`")]
    Unknown(String),
    #[error("parameter `{name}` cannot change while the node runs (restart the node)")]
    ReadOnly { name: String },
    #[error("invalid parameter `{name}`: {reason}")]
    Invalid { name: &'static str, reason: String },
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

/// Every parameter of the node, with the defaults of `config/patrack.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeParams {
    /// Weights (.safetensors or .pth.tar); empty: deterministic test weights that do not track.
    pub model_path: String,
    /// `vit_base`, `tiny` or a path to a JSON `ModelConfig`.
    pub model_config: String,
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    pub device: String,
    /// `fp32`, `bf16` or `fp16`.
    pub precision: String,
    /// On CUDA, run the network as a captured CUDA graph (builds with the `cuda` feature).
    pub cuda_graph: bool,
    /// On CUDA, crop/resize on the GPU instead of the OpenCV-exact CPU crop.
    pub crop_on_device: bool,
    /// The aux camera: thermal, depth or event.
    pub modality: Modality,
    /// Subscribe to `<topic>/compressed` (`sensor_msgs/CompressedImage`) instead of raw images.
    pub use_compressed: bool,
    /// `[x, y, w, h]` in pixels of the first pair; all zero waits for `~/init`.
    pub initial_bbox: [f64; 4],
    /// `results[0].hypothesis.class_id` of the published detections.
    pub class_id: String,
    /// Build `~/debug_image` even when nobody subscribes.
    pub publish_debug_image: bool,
    /// Weight of the aux image blended into the debug image, in [0, 1].
    pub debug_aux_blend: f64,
    /// The ROS clock follows `/clock` (bag replay); handled by the transport.
    pub use_sim_time: bool,
    pub sync: SyncParams,
    pub tracker: TrackerParams,
    pub thermal: ThermalParams,
    pub registration: RegistrationParams,
}

impl Default for NodeParams {
    fn default() -> Self {
        Self {
            model_path: String::new(),
            model_config: "vit_base".into(),
            device: "cuda:0".into(),
            precision: "bf16".into(),
            cuda_graph: true,
            crop_on_device: false,
            modality: Modality::Thermal,
            use_compressed: false,
            initial_bbox: [0.0; 4],
            class_id: "target".into(),
            publish_debug_image: false,
            debug_aux_blend: 0.0,
            use_sim_time: false,
            sync: SyncParams::default(),
            tracker: TrackerParams::default(),
            thermal: ThermalParams::default(),
            registration: RegistrationParams::default(),
        }
    }
}

impl NodeParams {
    /// Parameters from one `ros__parameters` YAML document over the defaults, validated.
    pub fn from_yaml_str(text: &str) -> Result<Self, ParamsError> {
        Self::from_yaml_strs(&[text])
    }

    /// Several YAML documents (the base file, then presets) merged in order over the defaults:
    /// a later file overrides single keys of nested groups, not whole groups. Validated.
    pub fn from_yaml_strs(texts: &[&str]) -> Result<Self, ParamsError> {
        let mut merged = serde_yaml::to_value(Self::default())?;
        for text in texts {
            let section = node_section(text)?;
            merge(&mut merged, nest_dotted_keys(section)?);
        }
        let params: Self = serde_yaml::from_value(merged)?;
        params.validate()?;
        Ok(params)
    }

    /// [`NodeParams::from_yaml_strs`] over files.
    pub fn from_files<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Self, ParamsError> {
        let texts = paths
            .iter()
            .map(|p| {
                std::fs::read_to_string(p.as_ref())
                    .map_err(|source| ParamsError::Io { path: p.as_ref().display().to_string(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_yaml_strs(&texts.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// A copy with one parameter changed by its dotted ROS name, validated. The transports feed
    /// r2r/DDS parameter values through this so both read parameters by the same rules.
    pub fn with_value(&self, name: &str, value: Value) -> Result<Self, ParamsError> {
        let mut tree = serde_yaml::to_value(self)?;
        let mut node = &mut tree;
        for part in name.split('.') {
            node = node
                .as_mapping_mut()
                .and_then(|m| m.get_mut(part))
                .ok_or_else(|| ParamsError::Unknown(name.to_owned()))?;
        }
        if node.is_mapping() {
            return Err(ParamsError::Unknown(name.to_owned()));
        }
        *node = value;
        let params: Self = serde_yaml::from_value(tree)?;
        params.validate()?;
        Ok(params)
    }

    /// A copy with one runtime-changeable parameter changed; other names are refused.
    pub fn with_runtime_value(&self, name: &str, value: Value) -> Result<Self, ParamsError> {
        if !RUNTIME_PARAMETERS.contains(&name) {
            return Err(ParamsError::ReadOnly { name: name.to_owned() });
        }
        self.with_value(name, value)
    }

    /// Every parameter as (dotted name, value), in declaration order: what the transports
    /// declare so `ros2 param list` shows the full set.
    pub fn flatten(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        if let Ok(tree) = serde_yaml::to_value(self) {
            flatten_into("", &tree, &mut out);
        }
        out
    }

    /// Checks ranges and names; the error names the parameter.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let invalid = |name: &'static str, reason: String| Err(ParamsError::Invalid { name, reason });
        if self.sync.queue_size == 0 {
            return invalid("sync.queue_size", "must be at least 1".into());
        }
        let interval = self.sync.max_interval_s;
        if !(interval.is_finite() && interval > 0.0 && interval <= 10.0) {
            return invalid("sync.max_interval_s", format!("must be within (0, 10] s, got {interval}"));
        }
        let threshold = self.tracker.lost_threshold;
        if !(0.0..=1.0).contains(&threshold) {
            return invalid("tracker.lost_threshold", format!("must be within [0, 1], got {threshold}"));
        }
        let scale = self.tracker.lost_search_scale;
        if !(scale.is_finite() && scale > 0.0) {
            return invalid("tracker.lost_search_scale", format!("must be positive, got {scale}"));
        }
        if !(0.0..=1.0).contains(&self.debug_aux_blend) {
            return invalid("debug_aux_blend", format!("must be within [0, 1], got {}", self.debug_aux_blend));
        }
        let [_, _, w, h] = self.initial_bbox;
        let all_zero = self.initial_bbox.iter().all(|v| *v == 0.0);
        let well_formed = self.initial_bbox.iter().all(|v| v.is_finite()) && w > 0.0 && h > 0.0;
        if !all_zero && !well_formed {
            return invalid(
                "initial_bbox",
                format!("must be all zero or [x, y, w, h] with w, h > 0, got {:?}", self.initial_bbox),
            );
        }
        // Syntax only: whether the GPU exists is checked when the model is built, so a params
        // file for a robot validates on a CPU machine.
        let device = self.device.trim().to_ascii_lowercase();
        let device_ok = matches!(device.as_str(), "cpu" | "auto" | "cuda" | "gpu")
            || device.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok());
        if !device_ok {
            return invalid("device", format!("must be cpu, cuda, cuda:N or auto, got {:?}", self.device));
        }
        if let Err(e) = self.precision.parse::<crate::device::Precision>() {
            return invalid("precision", e.to_string());
        }
        if self.model_config.is_empty() {
            return invalid("model_config", "must be vit_base, tiny or a JSON file path".into());
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
            return invalid("tracker", e);
        }
        Ok(())
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
            other => return Err(format!("scaling must be percentile or fixed, got {other:?}")),
        };
        let ok = match scaling {
            ThermalScaling::Percentile { .. } => (0.0..=100.0).contains(&low) && (0.0..=100.0).contains(&high),
            ThermalScaling::Fixed { .. } => low.is_finite() && high.is_finite(),
        };
        if !ok || low >= high {
            return Err(format!("need low < high (percentiles within [0, 100]), got low {low}, high {high}"));
        }
        Ok(scaling)
    }
}

/// The `ros__parameters` map of the `/**` or `patrack` (`/patrack`) node in one YAML document;
/// when both are present the wildcard comes first and the named node overrides it, as in rcl.
fn node_section(text: &str) -> Result<Value, ParamsError> {
    let doc: Value = serde_yaml::from_str(text)?;
    let root = doc.as_mapping().ok_or_else(|| ParamsError::NotAMap("the document".into()))?;
    let mut found = None;
    for key in ["/**", NODE_NAME, "/patrack"] {
        let Some(node) = root.get(key) else { continue };
        let params = node
            .as_mapping()
            .and_then(|m| m.get("ros__parameters"))
            .ok_or_else(|| ParamsError::NotAMap(format!("{key}.ros__parameters")))?;
        if !params.is_mapping() {
            return Err(ParamsError::NotAMap(format!("{key}.ros__parameters")));
        }
        let section = found.get_or_insert_with(|| Value::Mapping(Mapping::new()));
        merge(section, params.clone());
    }
    found.ok_or(ParamsError::NoNodeSection)
}

/// `a.b: v` keys become `a: {b: v}`, as rcl reads them.
fn nest_dotted_keys(value: Value) -> Result<Value, ParamsError> {
    let Value::Mapping(map) = value else { return Ok(value) };
    let mut out = Value::Mapping(Mapping::new());
    for (key, v) in map {
        let Some(name) = key.as_str() else {
            return Err(ParamsError::NotAMap(format!("key {key:?}")));
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
        assert!(matches!(bad("    sync:\n      slop: 0.1\n"), ParamsError::Yaml(_)));
        assert!(matches!(bad("    lost_threshold: 0.1\n"), ParamsError::Yaml(_)));
        assert!(matches!(bad("    initial_bbox: [1.0, 2.0]\n"), ParamsError::Yaml(_)));
        assert!(matches!(
            NodeParams::from_yaml_str("other:\n  ros__parameters: {}\n"),
            Err(ParamsError::NoNodeSection)
        ));
        assert!(matches!(NodeParams::from_yaml_str("[1, 2"), Err(ParamsError::Yaml(_))));
    }

    #[test]
    fn single_values_change_by_dotted_name_with_validation() {
        let p = NodeParams::default();
        let q = p.with_runtime_value("tracker.lost_threshold", Value::from(0.4)).unwrap();
        assert_eq!(q.tracker.lost_threshold, 0.4);
        assert_eq!(q.tracker_config().lost_threshold, 0.4);
        assert!(matches!(
            p.with_runtime_value("tracker.lost_threshold", Value::from(4.0)),
            Err(ParamsError::Invalid { name: "tracker.lost_threshold", .. })
        ));
        assert!(matches!(p.with_runtime_value("modality", Value::from("depth")), Err(ParamsError::ReadOnly { .. })));
        assert_eq!(p.with_value("modality", Value::from("depth")).unwrap().modality, Modality::Depth);
        assert!(matches!(p.with_value("sync", Value::from(1)), Err(ParamsError::Unknown(_))));
        assert!(matches!(p.with_value("nope.x", Value::from(1)), Err(ParamsError::Unknown(_))));
        assert!(matches!(p.with_value("class_id", Value::from(vec![1, 2])), Err(ParamsError::Yaml(_))));
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
        for name in RUNTIME_PARAMETERS {
            assert!(names.contains(name), "{name}");
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
    }
}
