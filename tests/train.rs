//! Training on the network code: gradients reach the right variables and the loss falls.

use patrack::device::Precision;
use patrack::model::{ModelConfig, PATrack};
use patrack::sensor::Modality;
use patrack::train::sampler::{Sampler, SamplerConfig, SynthSource};
use patrack::train::{self, loss, Stage, TrainConfig};

fn tiny(rgb_only: bool) -> ModelConfig {
    ModelConfig { rgb_only, ..ModelConfig::tiny() }
}

fn sampler(modality: Modality, cfg: &ModelConfig) -> Sampler<SynthSource> {
    let source = SynthSource::new(3, vec![modality], 4, 30, false);
    Sampler::new(
        source,
        SamplerConfig::default(),
        11,
        cfg.template_size as usize,
        cfg.search_size as usize,
        cfg.search_feat() as usize,
    )
}

fn config(stage: Stage, steps: usize) -> TrainConfig {
    TrainConfig {
        stage,
        steps,
        batch: 4,
        lr: 1e-3,
        weight_decay: 1e-4,
        warmup_steps: 1,
        lr_drop_at: 1.0,
        grad_clip: 1.0,
        seed: 1,
        checkpoint_every: 0,
        sampler: SamplerConfig::default(),
        drop_path: 0.0,
        autocast_bf16: false,
        val_every: 0,
    }
}

#[test]
fn the_base_fits_a_fixed_batch() {
    tch::manual_seed(0);
    let cfg = tiny(true);
    let model = PATrack::new(cfg.clone(), tch::Device::Cpu, Precision::Fp32).unwrap();
    let batch = sampler(Modality::Thermal, &cfg).batch(4).unwrap();
    let mut opt = tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), &model.vs, 1e-3).unwrap();
    let first = loss::losses(&model.forward(&batch.template, &batch.search), &batch.boxes, &batch.maps);
    let first_total = first.total.double_value(&[]);
    let mut last = first_total;
    for _ in 0..40 {
        let l = loss::losses(&model.forward(&batch.template, &batch.search), &batch.boxes, &batch.maps);
        opt.backward_step(&l.total);
        last = l.total.double_value(&[]);
    }
    assert!(last < 0.5 * first_total, "loss {first_total:.3} -> {last:.3}");
}

#[test]
fn the_adapter_stage_trains_only_the_adapters_and_starts_from_the_base() {
    tch::manual_seed(0);
    let base = PATrack::new(tiny(true), tch::Device::Cpu, Precision::Fp32).unwrap();
    let mut model = train::adapted_from_base(&base, tch::Device::Cpu).unwrap();
    let before = model.vs.variables();
    let before: std::collections::HashMap<String, tch::Tensor> =
        before.iter().map(|(k, v)| (k.clone(), v.copy())).collect();
    // Shared weights come from the base.
    for (k, v) in base.vs.variables() {
        assert!(before[&k].equal(&v), "{k} not copied from the base");
    }
    let dir = std::env::temp_dir().join(format!("patrack-train-{}", std::process::id()));
    let mut s = sampler(Modality::Depth, &model.cfg);
    let run = train::RunOptions { out: &dir, resume: false, stop_at: None };
    train::train(&mut model, &mut s, &config(Stage::Adapt, 3), run, |_| {}, None).unwrap();
    let mut changed = 0;
    for (k, v) in model.vs.variables() {
        let same = before[&k].equal(&v);
        if train::is_adapter_key(&k) {
            changed += usize::from(!same);
        } else {
            assert!(same, "{k} is frozen but changed");
        }
    }
    assert!(changed > 10, "only {changed} adapter tensors changed");
    // The checkpoint and the loss log are written and load back as an adapted model.
    let reloaded =
        patrack::model::load_file(&dir.join("model.safetensors"), None, tch::Device::Cpu, Precision::Fp32).unwrap();
    assert!(!reloaded.cfg.rgb_only);
    assert_eq!(train::read_loss_log(&dir.join("loss.csv")).unwrap().len(), 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_adapted_model_starts_as_the_base_on_identical_streams_without_entangled_blocks() {
    // With no entangled block, zero Mixer outputs and the head adapter at 0.5 (x + xi), feeding
    // the RGB image to both streams gives exactly the base's maps.
    tch::manual_seed(0);
    let cfg = ModelConfig { entangled_blocks: vec![], head_adapter_dim: 64, ..tiny(true) };
    let base = PATrack::new(cfg.clone(), tch::Device::Cpu, Precision::Fp32).unwrap();
    let adapted = train::adapted_from_base(&base, tch::Device::Cpu).unwrap();
    let batch = sampler(Modality::Thermal, &cfg).batch(2).unwrap();
    let rgb_twice = |t: &tch::Tensor| tch::Tensor::cat(&[t.narrow(1, 0, 3), t.narrow(1, 0, 3)], 1);
    let _g = tch::no_grad_guard();
    let a = base.forward(&batch.template, &batch.search);
    let b = adapted.forward(&rgb_twice(&batch.template), &rgb_twice(&batch.search));
    let diff = (&a.score_map - &b.score_map).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "score maps differ by {diff}");
    let diff = (&a.size_map - &b.size_map).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "size maps differ by {diff}");
}
