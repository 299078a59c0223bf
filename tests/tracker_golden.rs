//! The tracker against the official tracker class on the 8-frame synthetic RGB-T sequence of
//! `tests/data/tracker.safetensors` (hashed weights; see tests/data/README.md).

mod common;

use std::collections::HashMap;

use common::{assert_close, load_golden};
use patrack::device::Precision;
use patrack::model::{HeadOutput, ModelConfig, PATrack};
use patrack::sensor::ImageU8;
use patrack::tracker::preprocess::{normalize_to_tensor, sample_target};
use patrack::tracker::track::box_from_maps;
use patrack::tracker::{hann2d, BoxXywh, HostMaps, TargetState, Tracker, TrackerConfig};
use tch::Tensor;

fn image(t: &Tensor) -> ImageU8 {
    let s = t.size();
    let (h, w, c) = (s[0] as usize, s[1] as usize, s[2] as usize);
    ImageU8::from_vec(w, h, c, Vec::<u8>::try_from(&t.flatten(0, -1)).unwrap()).unwrap()
}

fn frame(g: &HashMap<String, Tensor>, n: usize) -> ImageU8 {
    ImageU8::concat_channels(&image(&g[&format!("frame.{n}.rgb")]), &image(&g[&format!("frame.{n}.aux")])).unwrap()
}

fn boxes(t: &Tensor) -> BoxXywh {
    let v = Vec::<f64>::try_from(t).unwrap();
    BoxXywh::new(v[0], v[1], v[2], v[3])
}

fn max_box_diff(a: BoxXywh, b: BoxXywh) -> f64 {
    a.to_array().iter().zip(b.to_array()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn model() -> PATrack {
    let mut m = PATrack::new(ModelConfig::vit_base(), common::test_device(), Precision::Fp32).unwrap();
    m.fill_hashed();
    m
}

#[test]
fn teacher_forced_steps_match_the_official_tracker() {
    let g = load_golden("tracker.safetensors");
    let model = model();
    let f0 = frame(&g, 0);
    let init = BoxXywh::new(128.0, 92.0, 36.0, 28.0);
    let tpl = sample_target(&f0, init.to_array(), 2.0, 128).unwrap();
    assert_eq!(tpl.patch, image(&g["template.patch"]), "template patch");
    assert_eq!(tpl.resize_factor, g["template.resize_factor"].double_value(&[]));
    let z = normalize_to_tensor(&tpl.patch).unwrap();
    assert_close("template tensor", &z, &g["template.tensor"], 0.0);
    let z_tokens = model.embed_template(&z);
    let window = hann2d(16);
    for n in 1..8 {
        let key = |s: &str| format!("frame.{n}.{s}");
        let f = frame(&g, n);
        let prev = boxes(&g[&key("prev_state")]);
        // 1. golden previous state -> identical search patch.
        let crop = sample_target(&f, prev.to_array(), 4.0, 256).unwrap();
        assert_eq!(crop.patch, image(&g[&key("search_patch")]), "frame {n} search patch");
        let rf = g[&key("resize_factor")].double_value(&[]);
        assert_eq!(crop.resize_factor, rf, "frame {n} resize factor");
        // 2. golden patch -> same maps.
        let out = model.track(&z_tokens, &normalize_to_tensor(&crop.patch).unwrap());
        assert_close(&format!("frame {n} score"), &out.score_map, &g[&key("score_map")], 1e-4);
        assert_close(&format!("frame {n} size"), &out.size_map, &g[&key("size_map")], 1e-4);
        assert_close(&format!("frame {n} offset"), &out.offset_map, &g[&key("offset_map")], 1e-4);
        // 3. golden maps -> same box.
        let golden_maps = HeadOutput {
            score_map: g[&key("score_map")].shallow_clone(),
            size_map: g[&key("size_map")].shallow_clone(),
            offset_map: g[&key("offset_map")].shallow_clone(),
        };
        let maps = HostMaps::from_head(&golden_maps).unwrap();
        let (unclipped, state, score) = box_from_maps(&maps, &window, prev, 256, rf, 240, 320, 10.0).unwrap();
        let du = max_box_diff(unclipped, boxes(&g[&key("pred_box_unclipped")]));
        let ds = max_box_diff(state, boxes(&g[&key("state")]));
        println!("frame {n}: unclipped box diff {du:.2e} px, state diff {ds:.2e} px (tolerance 0.5)");
        assert!(du <= 0.5 && ds <= 0.5);
        let gs = g[&key("windowed_best_score")].double_value(&[]);
        assert!((score as f64 - gs).abs() <= 1e-6, "frame {n} score {score} vs {gs}");
    }
}

#[test]
fn free_running_sequence_matches_the_official_tracker() {
    let g = load_golden("tracker.safetensors");
    let cfg = TrackerConfig { lost_frames: 0, ..Default::default() };
    let mut tracker = Tracker::new(model(), cfg).unwrap();
    tracker.init(&frame(&g, 0), BoxXywh::new(128.0, 92.0, 36.0, 28.0)).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::data_path("tracker.json")).unwrap()).unwrap();
    for n in 1..8 {
        let (r, detail) = tracker.track_detail(&frame(&g, n)).unwrap();
        let expected_crop = meta["frames"][n - 1]["search_crop_size"].as_u64().unwrap() as usize;
        assert_eq!(detail.crop_size, expected_crop, "frame {n} search crop size");
        let d = max_box_diff(r.bbox, boxes(&g[&format!("frame.{n}.state")]));
        println!("frame {n}: box diff {d:.2e} px (tolerance 1), score {:.4}", r.score);
        assert!(d <= 1.0);
        assert_eq!(r.state, TargetState::Tracking);
    }
}
