//! Floors on the bundled demo models (models/, reproduced by scripts/train-demo-models.sh): each
//! adapted model must keep tracking the held-out synthetic benchmark, and must beat the RGB-only
//! base where the RGB camera fails. A regression in the network, the crop, the decoding, the
//! sensor preparation or the generator shows up here.

use std::path::PathBuf;

use patrack::device::Precision;
use patrack::sensor::Modality;
use patrack::tracker::{Tracker, TrackerConfig};
use patrack::train::heldout::{score_synthetic, HeldOutScores, HELD_OUT_SEED};

/// A subset of the held-out set (the first sequences, shorter) so that CI stays quick.
const SEQUENCES: usize = 8;
const FRAMES: usize = 40;

fn model_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models").join(name)
}

fn scores(name: &str, modality: Modality) -> HeldOutScores {
    let model = patrack::model::load_file(&model_path(name), None, tch::Device::Cpu, Precision::Fp32)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    let mut tracker = Tracker::new(model, TrackerConfig::default()).unwrap();
    score_synthetic(&mut tracker, modality, HELD_OUT_SEED, SEQUENCES, FRAMES).unwrap()
}

/// (model file, modality, floor on success AUC over all sequences, floor on the RGB-hard subset)
const FLOORS: [(&str, Modality, f64, f64); 3] = [
    ("patrack_small_rgbt.safetensors", Modality::Thermal, FLOOR_T.0, FLOOR_T.1),
    ("patrack_small_rgbd.safetensors", Modality::Depth, FLOOR_D.0, FLOOR_D.1),
    ("patrack_small_rgbe.safetensors", Modality::Event, FLOOR_E.0, FLOOR_E.1),
];
const FLOOR_T: (f64, f64) = (0.80, 0.80);
const FLOOR_D: (f64, f64) = (0.80, 0.80);
const FLOOR_E: (f64, f64) = (0.65, 0.60);

#[test]
fn the_shipped_models_track_the_held_out_set_and_beat_the_rgb_base_where_rgb_fails() {
    let mut report = String::new();
    let mut failures = Vec::new();
    for (name, modality, floor_all, floor_hard) in FLOORS {
        let adapted = scores(name, modality);
        let base = scores("patrack_small_rgb_base.safetensors", modality);
        report.push_str(&format!(
            "{name}: success all {:.3} (base {:.3}), RGB-hard {:.3} (base {:.3})\n",
            adapted.all.success_auc, base.all.success_auc, adapted.rgb_hard.success_auc, base.rgb_hard.success_auc
        ));
        if adapted.all.success_auc < floor_all {
            failures.push(format!("{name}: success {:.3} under the floor {floor_all}", adapted.all.success_auc));
        }
        if adapted.rgb_hard.success_auc < floor_hard {
            failures.push(format!("{name}: RGB-hard success {:.3} under {floor_hard}", adapted.rgb_hard.success_auc));
        }
        if adapted.rgb_hard.success_auc < base.rgb_hard.success_auc + 0.05 {
            failures.push(format!("{name}: does not beat the RGB-only base on the RGB-hard subset"));
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{report}{}", failures.join("\n"));
}
