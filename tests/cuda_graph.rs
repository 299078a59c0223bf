//! The network replayed as a CUDA graph against the eager network and the official golden maps.
//! Built only with the `cuda` feature and run on a GPU by `scripts/gpu-check.sh`
//! (`PATRACK_TEST_DEVICE=cuda`); a CPU device is a test failure, not a skip.
#![cfg(feature = "cuda")]

mod common;

use common::{assert_close, load_golden, max_abs_diff};
use patrack::device::Precision;
use patrack::model::{GraphError, GraphedTrack, ModelConfig, PATrack};
use tch::{Device, Kind, Tensor};

fn cuda_model(precision: Precision) -> PATrack {
    let device = common::test_device();
    assert!(device.is_cuda(), "the CUDA graph tests need PATRACK_TEST_DEVICE=cuda");
    let mut m = PATrack::new(ModelConfig::vit_base(), device, precision).unwrap();
    m.fill_hashed();
    m
}

fn random_inputs(model: &PATrack, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let cfg = &model.cfg;
    let z = Tensor::randn([1, 6, cfg.template_size, cfg.template_size], (Kind::Float, Device::Cpu));
    let x = Tensor::randn([1, 6, cfg.search_size, cfg.search_size], (Kind::Float, Device::Cpu));
    (model.embed_template(&z), x.to_device(model.device()))
}

#[test]
fn replay_on_fresh_inputs_matches_the_eager_network() {
    // The same kernels on the same data: bit-identical (measured: 0 on an H100, fp32 and bf16).
    for (precision, tolerance) in [(Precision::Fp32, 0.0), (Precision::Bf16, 0.0)] {
        let model = cuda_model(precision);
        let (z0, x0) = random_inputs(&model, 0);
        let mut graph = GraphedTrack::capture(&model, &z0, &x0).unwrap();
        // New template and crops after capture: the graph must read its inputs, not replay the first.
        for seed in 1..4 {
            let (z, x) = random_inputs(&model, seed);
            let out = graph.run(&z, &x).unwrap();
            // Poison the output buffers, replay, and check that every element was written again.
            for t in [&out.score_map, &out.size_map, &out.offset_map] {
                let _ = t.shallow_clone().fill_(f64::NAN);
            }
            let out = graph.run(&z, &x).unwrap();
            let eager = model.track(&z, &x);
            for (name, a, b) in [
                ("score", &out.score_map, &eager.score_map),
                ("size", &out.size_map, &eager.size_map),
                ("offset", &out.offset_map, &eager.offset_map),
            ] {
                let nan = a.isnan().any().int64_value(&[]);
                assert_eq!(nan, 0, "{precision} seed {seed} {name}: unwritten (NaN) outputs");
                assert_close(&format!("{precision} seed {seed} {name} graph vs eager"), a, b, tolerance);
            }
            let first = model.track(&z0, &x0);
            assert!(max_abs_diff(&first.score_map, &eager.score_map) > 1e-3, "inputs must differ");
        }
    }
}

#[test]
fn replay_matches_the_official_golden_maps() {
    let g = load_golden("model.safetensors");
    let model = cuda_model(Precision::Fp32);
    let z_tokens = model.embed_template(&g["in.z"]);
    let x = g["in.x"].to_device(model.device());
    // Captured on other inputs, then run on the golden ones.
    let (z0, x0) = random_inputs(&model, 7);
    let mut graph = GraphedTrack::capture(&model, &z0, &x0).unwrap();
    let out = graph.run(&z_tokens, &x).unwrap();
    assert_close("graph score_map", &out.score_map, &g["out.score_map"], 1e-4);
    assert_close("graph size_map", &out.size_map, &g["out.size_map"], 1e-4);
    assert_close("graph offset_map", &out.offset_map, &g["out.offset_map"], 1e-4);
}

#[test]
fn wrong_input_shape_is_an_error() {
    let model = cuda_model(Precision::Bf16);
    let (z, x) = random_inputs(&model, 0);
    let mut graph = GraphedTrack::capture(&model, &z, &x).unwrap();
    let small = Tensor::zeros([1, 6, 128, 128], (Kind::Float, model.device()));
    match graph.run(&z, &small) {
        Err(GraphError::Shape { what, .. }) => assert_eq!(what, "search crop"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    // Still usable afterwards.
    graph.run(&z, &x).unwrap();
}

/// Random template tokens and crops for a batch of `n` targets.
fn random_batch(model: &PATrack, n: usize, seed: i64) -> (Tensor, Tensor) {
    let singles: Vec<(Tensor, Tensor)> = (0..n).map(|k| random_inputs(model, seed * 100 + k as i64)).collect();
    let z: Vec<&Tensor> = singles.iter().map(|(z, _)| z).collect();
    let x: Vec<&Tensor> = singles.iter().map(|(_, x)| x).collect();
    (patrack::tracker::multi::stack_template_tokens(&z).unwrap(), Tensor::cat(&x, 0))
}

#[test]
fn one_graph_per_batch_size_replays_like_the_eager_network() {
    // The multi-target tracker's path: a graph per number of targets, captured on first use,
    // reused when that number comes back.
    for precision in [Precision::Fp32, Precision::Bf16] {
        let model = cuda_model(precision);
        let mut cache = patrack::tracker::graphs::GraphCache::default();
        for (step, n) in [1usize, 2, 4, 2, 8, 1].into_iter().enumerate() {
            let (z, x) = random_batch(&model, n, step as i64 + 1);
            let out = cache.network(&model, true, &z, &x);
            let eager = model.track(&z, &x);
            assert_eq!(out.score_map.size()[0], n as i64);
            assert_close(&format!("{precision} batch {n} score"), &out.score_map, &eager.score_map, 0.0);
            assert_close(&format!("{precision} batch {n} size"), &out.size_map, &eager.size_map, 0.0);
            assert_close(&format!("{precision} batch {n} offset"), &out.offset_map, &eager.offset_map, 0.0);
        }
        assert_eq!(cache.batch_sizes(), [1, 2, 4, 8]);
        assert!(!cache.failed());
    }
}
