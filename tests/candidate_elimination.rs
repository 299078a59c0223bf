//! Candidate elimination against the official OSTrack code.
//!
//! The fixture `tests/data/ce/ostrack_ce.safetensors` was computed by the official modules of
//! botaoye/OSTrack (commit 33b5e12; imported from a checkout, not transcribed: `CEBlock`,
//! `candidate_elimination`, `VisionTransformerCE.forward_features`, `OSTrack.forward`, the
//! `CenterPredictor`, the configuration file `vitb_256_mae_ce_32x4_ep300.yaml` and the tracker's
//! `generate_mask_cond`) at the released model's depth, crop sizes and CE settings (blocks 3, 6, 9
//! keeping 0.7, template range `CTR_POINT`) and a small width (64, 2 heads), every weight from the
//! golden hash rule, on a batch of two hashed crops (`make_ostrack_ce_fixture.py`, README there).
//!
//! What is compared: for each eliminating block, the set of search tokens it keeps and the set it
//! drops (exactly); the order in which the kept tokens go on (exactly); the head's input, with
//! the dropped tokens' places exactly zero; and the head's score, size and offset maps.

mod common;

use common::{assert_close, data_path, load_golden, test_device};
use patrack::device::Precision;
use patrack::model::{hashinit, CandidateElimination, ModelConfig, PATrack};
use tch::{Device, Kind, Tensor};

const FIXTURE: &str = "ce/ostrack_ce.safetensors";

/// The fixture's network: OSTrack's structure at width 64.
fn config(ce: Option<CandidateElimination>) -> ModelConfig {
    ModelConfig {
        embed_dim: 64,
        depth: 12,
        num_heads: 2,
        mlp_dim: 128,
        patch_size: 16,
        template_size: 128,
        search_size: 256,
        head_channels: 32,
        rgb_only: true,
        candidate_elimination: ce,
        ..ModelConfig::vit_base()
    }
}

/// The hashed crops `ce.z` (2, 3, 128, 128) and `ce.x` (2, 3, 256, 256) as 6-channel inputs (the
/// RGB-only network reads channels 0-2).
fn inputs(device: Device) -> (Tensor, Tensor) {
    let crop = |key: &str, side: i64| {
        let rgb =
            Tensor::from_slice(&hashinit::hash_input(key, (2 * 3 * side * side) as usize)).view([2, 3, side, side]);
        Tensor::cat(&[rgb.shallow_clone(), rgb.zeros_like()], 1).to_device(device)
    };
    (crop("ce.z", 128), crop("ce.x", 256))
}

fn network(ce: Option<CandidateElimination>, device: Device) -> PATrack {
    let mut model = PATrack::new(config(ce), device, Precision::Fp32).unwrap();
    model.fill_hashed();
    model
}

fn sorted(t: &Tensor) -> Tensor {
    t.to_device(Device::Cpu).sort(1, false).0
}

#[test]
fn kept_tokens_and_maps_match_the_official_code() {
    let device = test_device();
    let golden = load_golden(FIXTURE);
    let ce = CandidateElimination::ostrack(12, 0.7);
    assert_eq!(ce.blocks, vec![3, 6, 9]);
    assert_eq!(ce.kept_tokens(256), vec![180, 126, 89]);
    let model = network(Some(ce), device);
    let (z, x) = inputs(device);
    let _guard = tch::no_grad_guard();
    let (out, cap, head_in) = model.forward_capture(&z, &x);

    // The official template mask is the one centre token (3, 3) of the 8 x 8 grid.
    let mask = &golden["template_mask"];
    assert_eq!(mask.size(), [2, 64]);
    let centre = mask.get(0).argmax(0, false).int64_value(&[]);
    assert_eq!(mask.sum(Kind::Int64).int64_value(&[]), 2);
    assert_eq!(centre, model.cfg.template_centre_token());
    assert_eq!(centre, 27);

    assert_eq!(cap.eliminated.len(), 3);
    for (block, kept, removed) in &cap.eliminated {
        let want_kept = &golden[&format!("kept.{block}")];
        let want_removed = &golden[&format!("removed.{block}")];
        assert_eq!(kept.size(), want_kept.size(), "block {block}: kept tokens");
        assert!(sorted(kept).equal(&sorted(want_kept)), "block {block}: another set of tokens kept");
        assert!(sorted(removed).equal(&sorted(want_removed)), "block {block}: another set of tokens dropped");
        assert!(kept.to_device(Device::Cpu).equal(want_kept), "block {block}: kept tokens in another order");
        println!(
            "block {block}: {} search tokens kept, {} dropped, as the official code",
            kept.size()[1],
            removed.size()[1]
        );
    }

    // The head's input: (B, C, 16, 16) map -> (B, 256, C) tokens; the dropped ones are zeros.
    let tokens = head_in.flatten(2, -1).transpose(1, 2);
    let want = &golden["search_tokens"];
    assert_close("head input tokens", &tokens, want, 5e-5);
    let dropped: Vec<Tensor> = cap.eliminated.iter().map(|(_, _, r)| r.to_device(Device::Cpu)).collect();
    let dropped = Tensor::cat(&dropped, 1);
    assert_eq!(dropped.size(), [2, 256 - 89]);
    for b in 0..2 {
        let rows = tokens.get(b).to_device(Device::Cpu).index_select(0, &dropped.get(b));
        assert_eq!(rows.abs().max().double_value(&[]), 0.0, "sample {b}: a dropped token is not zero");
        let want_rows = want.get(b).index_select(0, &dropped.get(b));
        assert_eq!(want_rows.abs().max().double_value(&[]), 0.0);
    }

    assert_close("score map", &out.score_map, &golden["score_map"], 1e-5);
    assert_close("size map", &out.size_map, &golden["size_map"], 1e-5);
    assert_close("offset map", &out.offset_map, &golden["offset_map"], 1e-5);
}

#[test]
fn elimination_is_off_by_default_and_switching_it_off_restores_the_plain_network() {
    let device = test_device();
    assert_eq!(ModelConfig::vit_base().candidate_elimination, None);
    let plain = network(None, device);
    let mut switched = network(Some(CandidateElimination::ostrack(12, 0.7)), device);
    let (z, x) = inputs(device);
    let _guard = tch::no_grad_guard();
    let with_ce = switched.forward(&z, &x);
    switched.set_candidate_elimination(None).unwrap();
    let a = plain.forward(&z, &x);
    let b = switched.forward(&z, &x);
    // Same weights, same code path: bit-identical.
    assert!(a.score_map.equal(&b.score_map) && a.size_map.equal(&b.size_map) && a.offset_map.equal(&b.offset_map));
    let d = common::max_abs_diff(&a.score_map, &with_ce.score_map);
    println!("score maps with and without elimination differ by up to {d:.3e}");
    assert!(d > 1e-4, "elimination changed nothing");
    // Keep ratio 1 drops nothing: the plain network's result.
    switched.set_candidate_elimination(Some(CandidateElimination::ostrack(12, 1.0))).unwrap();
    let c = switched.forward(&z, &x);
    assert_close("keep ratio 1 vs off", &c.score_map, &a.score_map, 1e-5);
}

#[test]
fn the_two_stream_network_and_bad_settings_are_refused_by_name() {
    let ce = CandidateElimination::ostrack(4, 0.7);
    let two_stream = ModelConfig { candidate_elimination: Some(ce.clone()), ..ModelConfig::tiny() };
    let err = PATrack::new(two_stream, Device::Cpu, Precision::Fp32).unwrap_err().to_string();
    println!("{err}");
    assert!(err.contains("RGB-only"), "{err}");
    let mut model = PATrack::new(ModelConfig::tiny(), Device::Cpu, Precision::Fp32).unwrap();
    assert!(model.set_candidate_elimination(Some(ce)).is_err());
    assert_eq!(model.cfg.candidate_elimination, None);

    let rgb = |blocks: Vec<usize>, keep_ratio: Vec<f64>| ModelConfig {
        rgb_only: true,
        candidate_elimination: Some(CandidateElimination { blocks, keep_ratio }),
        ..ModelConfig::tiny()
    };
    for (cfg, what) in [
        (rgb(vec![1, 9], vec![0.7, 0.7]), "block 9 is beyond depth 4"),
        (rgb(vec![2, 1], vec![0.7, 0.7]), "increasing"),
        (rgb(vec![1], vec![0.0]), "keep ratio 0 is not in (0, 1]"),
        (rgb(vec![1], vec![f64::NAN]), "keep ratio NaN"),
        (rgb(vec![1, 2], vec![0.7]), "2 blocks and 1 keep ratios"),
    ] {
        let err = cfg.validate().expect_err(what).to_string();
        assert!(err.contains(what), "{err}");
    }
}

#[test]
fn a_recorded_configuration_carries_the_setting_and_one_without_it_reads_as_off() {
    let dir = std::env::temp_dir().join(format!("patrack-ce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ce = CandidateElimination::ostrack(4, 0.5);
    let cfg = ModelConfig { rgb_only: true, candidate_elimination: Some(ce.clone()), ..ModelConfig::tiny() };
    let mut model = PATrack::new(cfg, Device::Cpu, Precision::Fp32).unwrap();
    model.fill_hashed();
    let path = dir.join("ce.safetensors");
    patrack::model::load::save_file(&model, &path).unwrap();
    let back = patrack::model::load_file(&path, None, Device::Cpu, Precision::Fp32).unwrap();
    assert_eq!(back.cfg.candidate_elimination, Some(ce));
    assert!(back.cfg.label().ends_with("rgb-only CE 0.5@1,0.5@2,0.5@3"), "{}", back.cfg.label());
    // Files written before the option existed (no such field) read as off, and a file without
    // the option records no such field.
    let json = serde_json::to_string(&ModelConfig::tiny()).unwrap();
    assert!(!json.contains("candidate_elimination"), "{json}");
    let old: ModelConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(old.candidate_elimination, None);
    std::fs::remove_dir_all(&dir).ok();
    assert!(data_path(FIXTURE).is_file());
}
