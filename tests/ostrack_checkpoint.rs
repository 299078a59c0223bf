//! OSTrack's public checkpoint format as the RGB-only tracker, on the fixture
//! `tests/data/checkpoint/ostrack_tiny_ep0300.pth.tar` (written by `torch.save` in OSTrack's
//! trainer layout by `make_ostrack_fixture.py`; OSTrack's key names at the `tiny` sizes, every
//! value from the golden hash rule, computed in Python). The file records no configuration: the
//! loader must recognise it from its keys and read its sizes from its shapes.

mod common;

use patrack::device::Precision;
use patrack::eval::layout::{self, DatasetKind};
use patrack::model::checkpoint::{self, MetaValue};
use patrack::model::{hashinit, load, ModelConfig, PATrack};
use patrack::ros::params::NodeParams;
use patrack::tracker::{BoxXywh, Tracker, TrackerConfig};
use tch::{Device, Kind, Tensor};

const FIXTURE: &str = "checkpoint/ostrack_tiny_ep0300.pth.tar";

fn fixture() -> std::path::PathBuf {
    common::data_path(FIXTURE)
}

fn tiny_rgb_only() -> ModelConfig {
    ModelConfig { rgb_only: true, ..ModelConfig::tiny() }
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(common::data_path("checkpoint/ostrack_tiny.reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_trainer_file_reads_with_its_metadata() {
    let ckpt = checkpoint::read_any(fixture()).unwrap();
    assert_eq!(ckpt.state_dict_key.as_deref(), Some("net"));
    assert_eq!(ckpt.tensors.len() as u64, reference()["keys"].as_u64().unwrap());
    assert_eq!(ckpt.meta("epoch"), Some(&MetaValue::Int(300)));
    assert_eq!(ckpt.meta("net_type"), Some(&MetaValue::Str("OSTrack".into())));
    assert!(ckpt.tensors.iter().all(|(k, _)| patrack::model::detect::is_ostrack_key(k)));
    assert!(ckpt.tensors.iter().all(|(k, _)| !k.contains("adap")));
}

#[test]
fn it_loads_without_a_configuration_as_the_rgb_only_tiny_network() {
    // The default fallback is the official ViT-B; the file's shapes decide.
    let model = load::load_file(&fixture(), Some(ModelConfig::vit_base()), Device::Cpu, Precision::Fp32).unwrap();
    assert_eq!(model.cfg, tiny_rgb_only());
    assert!(model.is_rgb_only());
    assert!(model.adapter_head.is_none());
    let model = load::load_file(&fixture(), None, Device::Cpu, Precision::Fp32).unwrap();
    assert_eq!(model.cfg, tiny_rgb_only());
}

#[test]
fn its_weights_are_the_hash_rule_bit_for_bit() {
    // Python computed the rule when writing the file; hashinit computes it here.
    let model = load::load_file(&fixture(), None, Device::Cpu, Precision::Fp32).unwrap();
    let mut expected = PATrack::new(tiny_rgb_only(), Device::Cpu, Precision::Fp32).unwrap();
    expected.fill_hashed();
    let want = expected.vs.variables();
    let got = model.vs.variables();
    assert_eq!(got.len(), want.len());
    let mut differing = 0;
    for (key, t) in &got {
        if !t.equal(&want[key]) {
            differing += 1;
            println!("{key} differs");
        }
    }
    println!("{} variables, {differing} differ (tolerance: 0)", got.len());
    assert_eq!(differing, 0);
}

fn hashed_input(key: &str, side: i64) -> Tensor {
    let values = hashinit::hash_input(key, (6 * side * side) as usize);
    Tensor::from_slice(&values).reshape([1, 6, side, side])
}

#[test]
fn it_computes_what_the_torch_ostrack_forward_computes() {
    let model = load::load_file(&fixture(), None, Device::Cpu, Precision::Fp32).unwrap();
    let cfg = &model.cfg;
    let z = hashed_input("input.z", cfg.template_size);
    let x = hashed_input("input.x", cfg.search_size);
    let out = model.forward(&z, &x);
    let r = reference();
    let map = |key: &str, shape: [i64; 4]| {
        let v: Vec<f32> = r[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        Tensor::from_slice(&v).reshape(shape)
    };
    let side = cfg.search_feat();
    println!("torch fp32 vs fp64 on the same module: {:.2e}", r["fp64_gap"].as_f64().unwrap());
    common::assert_close("score map", &out.score_map, &map("score_map", [1, 1, side, side]), 1e-5);
    common::assert_close("size map", &out.size_map, &map("size_map", [1, 2, side, side]), 1e-5);
    common::assert_close("offset map", &out.offset_map, &map("offset_map", [1, 2, side, side]), 1e-5);

    // The same weights under an explicit RGB-only configuration give the same maps, bit for bit.
    let mut explicit = PATrack::new(tiny_rgb_only(), Device::Cpu, Precision::Fp32).unwrap();
    load::load_checkpoint(&mut explicit, &checkpoint::read_any(fixture()).unwrap()).unwrap();
    let again = explicit.forward(&z, &x);
    assert!(again.score_map.equal(&out.score_map) && again.size_map.equal(&out.size_map));
    assert!(again.offset_map.equal(&out.offset_map));
    // The aux channels do not reach the output.
    let x_other_aux = Tensor::cat(&[x.narrow(1, 0, 3), x.narrow(1, 3, 3).neg()], 1);
    assert!(model.forward(&z, &x_other_aux).score_map.equal(&out.score_map));
    assert_eq!(out.score_map.kind(), Kind::Float);
}

#[test]
fn the_tracker_follows_the_sample_identically_and_ignores_the_aux_images() {
    let seqs =
        layout::list_sequences(DatasetKind::Lasher, &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"))
            .unwrap();
    let seq = &seqs[0];
    let run = |model: PATrack, blank_aux: bool| -> Vec<BoxXywh> {
        let mut tracker = Tracker::new(model, TrackerConfig::default()).unwrap();
        let mut boxes = Vec::new();
        for i in 0..seq.len() {
            let mut frame = seq.frame(i).unwrap();
            if blank_aux {
                for px in frame.data.chunks_mut(6) {
                    px[3..].fill(0);
                }
            }
            if i == 0 {
                tracker.init(&frame, seq.init_box().unwrap()).unwrap();
            } else {
                boxes.push(tracker.track(&frame).unwrap().bbox);
            }
        }
        boxes
    };
    let detected = load::load_file(&fixture(), None, Device::Cpu, Precision::Fp32).unwrap();
    let mut explicit = PATrack::new(tiny_rgb_only(), Device::Cpu, Precision::Fp32).unwrap();
    load::load_checkpoint(&mut explicit, &checkpoint::read_any(fixture()).unwrap()).unwrap();
    let a = run(detected, false);
    let b = run(explicit, false);
    let detected = load::load_file(&fixture(), None, Device::Cpu, Precision::Fp32).unwrap();
    let c = run(detected, true);
    println!("{} frames tracked; boxes: {a:?}", a.len());
    assert_eq!(a.len(), seq.len() - 1);
    assert_eq!(a, b, "detected vs explicit configuration");
    assert_eq!(a, c, "aux images blanked");
}

#[test]
fn the_node_builds_the_rgb_only_tracker_from_its_model_path() {
    let params =
        NodeParams { model_path: fixture().to_string_lossy().into_owned(), device: "cpu".into(), ..Default::default() };
    assert_eq!(params.model_config, "vit_base", "the node's default configuration");
    let model = patrack::ros::transport::build_model(&params).unwrap();
    assert!(model.is_rgb_only());
    assert_eq!(model.cfg, tiny_rgb_only());
}
