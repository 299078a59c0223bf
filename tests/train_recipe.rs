//! The paper's training recipe at CI size: the optimizer against PyTorch's, an exact resume, the
//! published training-set layouts, and the whole path through the binary (OSTrack-format base ->
//! adapters -> checkpoint -> resume -> validation -> eval).

mod common;

use common::patrack;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use patrack::device::Precision;
use patrack::eval::layout::DatasetKind;
use patrack::model::{DropPath, ModelConfig, PATrack};
use patrack::sensor::Modality;
use patrack::train::optim::AdamW;
use patrack::train::sampler::{Sampler, SamplerConfig, SynthSource};
use patrack::train::{self, splits, RunOptions, TrainConfig};
use tch::{Device, Kind, Tensor};

fn temp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("recipe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `tests/data/train/adamw_reference.safetensors`: PyTorch 2.4.1's `torch.optim.AdamW` (lr 4e-4
/// then 4e-5 from step 4, weight decay 1e-4) and `clip_grad_norm_(0.1)` over five steps of
/// hashed gradients on three tensors (make_adamw_fixture.py). Compared: the clip's total norm,
/// every parameter after every step and the final moments, bit for bit.
#[test]
fn adamw_and_clipping_are_pytorchs_bit_for_bit() {
    let golden = common::load_golden("train/adamw_reference.safetensors");
    let names = ["a.weight", "a.bias", "b.conv"];
    let params: Vec<(String, Tensor)> =
        names.iter().map(|n| (n.to_string(), golden[&format!("init.{n}")].copy().set_requires_grad(true))).collect();
    let vars: HashMap<String, Tensor> = params.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
    let mut opt = AdamW::new(params, 1e-4);
    let lrs = [4e-4, 4e-4, 4e-4, 4e-5, 4e-5];
    let scales = [1.0, 1e-3, 3.0, 1e-2, 1.0];
    let norms: Vec<f32> = Vec::try_from(&golden["clip_total_norm"]).unwrap();
    let mut clipped = 0;
    for (step, (lr, scale)) in lrs.iter().zip(scales).enumerate() {
        opt.zero_grad();
        // d/dp sum(p * g) = g exactly.
        for n in names {
            let numel = vars[n].numel();
            let g = Tensor::from_slice(&patrack::model::hashinit::hash_input(&format!("grad.{step}.{n}"), numel))
                .view(vars[n].size().as_slice())
                * scale;
            (&vars[n] * g.detach()).sum(Kind::Float).backward();
        }
        let norm = opt.clip_grad_norm(0.1);
        assert_eq!(norm as f32, norms[step], "step {}: clip total norm", step + 1);
        clipped += usize::from(norm > 0.1);
        opt.step(*lr);
        for n in names {
            let want = &golden[&format!("step{}.{n}", step + 1)];
            let d = common::max_abs_diff(&vars[n], want);
            assert!(vars[n].detach().equal(want), "step {}: {n} differs by {d:e}", step + 1);
        }
    }
    assert_eq!(clipped, 3, "steps 1, 3 and 5 are clipped, 2 and 4 are not");
    let (moments, steps) = opt.state();
    for (k, t) in &moments {
        let d = common::max_abs_diff(t, &golden[k]);
        let rel = (t - &golden[k]).abs().divide(&golden[k].abs().clamp_min(1e-30)).max().double_value(&[]);
        println!("{k}: max abs diff {d:e}, relative {rel:e}");
        assert!(t.equal(&golden[k]), "{k}");
    }
    assert!(steps.values().all(|&s| s == 5));
    println!("5 AdamW steps with clipping: parameters, norms and moments equal PyTorch's bit for bit");
}

#[test]
fn the_paper_recipe_has_the_papers_numbers() {
    let c = TrainConfig::paper(1);
    // 60 epochs x 60 000 pairs / 32 per step.
    assert_eq!((c.steps, c.batch), (112_500, 32));
    assert_eq!((c.lr, c.weight_decay, c.grad_clip, c.drop_path, c.warmup_steps), (4e-4, 1e-4, 0.1, 0.1, 0));
    // StepLR(48) stepped per epoch: epochs 1-48 at 4e-4, 49-60 at 4e-5; epoch 49 starts at step 48 x 1875.
    assert_eq!(c.lr_drop_step(), 90_000);
    assert_eq!((c.lr_at(0), c.lr_at(89_999)), (4e-4, 4e-4));
    assert!((c.lr_at(90_000) - 4e-5).abs() < 1e-20 && (c.lr_at(112_499) - 4e-5).abs() < 1e-20);
    assert_eq!((c.checkpoint_every, c.val_every), (1875, 3750));
    assert!(c.autocast_bf16);
    let s = &c.sampler;
    assert_eq!((s.max_gap, s.causal, s.brightness_jitter, s.flip_probability), (200, true, 0.2, 0.5));
    assert_eq!((s.template_factor, s.search_factor, s.scale_jitter, s.center_jitter), (2.0, 4.0, 0.25, 3.0));
    c.validate().unwrap();
}

#[test]
fn stochastic_depth_follows_the_official_rates() {
    let dp = DropPath::new(0.1, 3);
    // linspace(0, 0.1, 12): block 0 never drops, block 11 at 0.1.
    assert_eq!(dp.block_rate(0, 12), 0.0);
    assert!((dp.block_rate(11, 12) - 0.1).abs() < 1e-15);
    assert!((dp.block_rate(5, 12) - 0.1 * 5.0 / 11.0).abs() < 1e-15);
    // Rows are zeroed with probability p and kept rows scaled by 1 / (1 - p).
    let mut dp = DropPath::new(0.3, 7);
    let t = Tensor::ones([20_000, 2, 3], (Kind::Float, Device::Cpu));
    let out = dp.apply(t, 0.3);
    let rows: Vec<f32> = Vec::try_from(out.select(1, 0).select(1, 0)).unwrap();
    let zeros = rows.iter().filter(|&&v| v == 0.0).count() as f64 / rows.len() as f64;
    assert!((zeros - 0.3).abs() < 0.015, "{zeros}");
    assert!(rows.iter().all(|&v| v == 0.0 || v == (1.0 / 0.7f64) as f32), "kept rows are scaled");
    assert!(out.select(0, 0).min().double_value(&[]) == out.select(0, 0).max().double_value(&[]));
}

fn tiny_adapted() -> PATrack {
    // One intra-op thread (the CLI's policy for small networks): on a shared machine libtorch's
    // spinning OpenMP threads make a tiny step take seconds instead of milliseconds.
    tch::set_num_threads(1);
    let base_cfg = ModelConfig { rgb_only: true, ..ModelConfig::tiny() };
    let mut base = PATrack::new(base_cfg, Device::Cpu, Precision::Fp32).unwrap();
    base.fill_hashed();
    let mut model = train::adapted_from_base(&base, Device::Cpu).unwrap();
    // Deterministic adapters whatever other tests do with libtorch's global generator.
    model.fill_hashed();
    model
}

fn recipe_config() -> TrainConfig {
    TrainConfig {
        steps: 4,
        batch: 2,
        lr: 1e-3,
        lr_drop_at: 0.5,
        checkpoint_every: 2,
        val_every: 0,
        ..TrainConfig::paper(3)
    }
}

fn sampler() -> Sampler<SynthSource> {
    let source = SynthSource::new(4, vec![Modality::Thermal], 3, 30, false);
    Sampler::new(source, SamplerConfig::paper(), 17, 64, 128, 8).with_workers(2)
}

fn variables(m: &PATrack) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = m.vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Train 4 steps straight vs. 2 steps, a fresh process's worth of objects, `--resume`, 2 more:
/// the weights, the optimizer's moments, the random streams and the loss log are identical (CPU,
/// the paper recipe's settings with drop path, flips, jitter and the causal sampler; the
/// learning rate drops between the two halves).
#[test]
fn a_resumed_run_equals_the_uninterrupted_one_bit_for_bit() {
    let cfg = recipe_config();
    let straight = temp_dir("straight");
    let mut a = tiny_adapted();
    let run = RunOptions { out: &straight, resume: false, stop_at: None };
    train::train(&mut a, &mut sampler(), &cfg, run, |_| {}, None).unwrap();

    let split = temp_dir("split");
    let mut b = tiny_adapted();
    let run = RunOptions { out: &split, resume: false, stop_at: Some(2) };
    let first = train::train(&mut b, &mut sampler(), &cfg, run, |_| {}, None).unwrap();
    assert_eq!((first.first_step, first.steps), (0, 2));
    let half: train::TrainState =
        serde_json::from_str(&std::fs::read_to_string(split.join(train::STATE_FILE)).unwrap()).unwrap();
    assert_eq!(half.step, 2);
    assert!(half.drop_path.is_some());
    drop(b);
    let mut c = tiny_adapted();
    let run = RunOptions { out: &split, resume: true, stop_at: None };
    let second = train::train(&mut c, &mut sampler(), &cfg, run, |_| {}, None).unwrap();
    assert_eq!((second.first_step, second.steps), (2, 2));

    for ((name, x), (_, y)) in variables(&a).iter().zip(variables(&c)) {
        assert!(x.equal(&y), "{name} differs after resuming");
    }
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert!(read(&straight, train::LOSS_FILE) == read(&split, train::LOSS_FILE), "loss logs differ");
    assert!(read(&straight, train::OPTIMIZER_FILE) == read(&split, train::OPTIMIZER_FILE), "moments differ");
    let text = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(text(&straight, train::STATE_FILE), text(&split, train::STATE_FILE), "states differ");
    assert!(read(&straight, train::MODEL_FILE) == read(&split, train::MODEL_FILE), "checkpoints differ");
    let log = String::from_utf8(read(&split, train::LOSS_FILE)).unwrap();
    assert_eq!(log.lines().count(), 1 + 4, "{log}");

    // Without the saved state (a fresh optimizer and sampler from step 2) the run differs:
    // the comparison above is not vacuous.
    let mut d = tiny_adapted();
    let copy = temp_dir("fresh");
    for f in [train::MODEL_FILE, train::OPTIMIZER_FILE, train::STATE_FILE, train::LOSS_FILE] {
        std::fs::copy(split.join(f), copy.join(f)).unwrap();
    }
    let state_path = copy.join(train::STATE_FILE);
    let mut state: train::TrainState = serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    state.step = 2;
    state.sampler_rng ^= 1;
    std::fs::write(&state_path, serde_json::to_string(&state).unwrap()).unwrap();
    let run = RunOptions { out: &copy, resume: true, stop_at: None };
    train::train(&mut d, &mut sampler(), &cfg, run, |_| {}, None).unwrap();
    assert!(variables(&a).iter().zip(variables(&d)).any(|((_, x), (_, y))| !x.equal(&y)));
}

#[test]
fn a_resume_without_a_full_state_is_refused_by_name() {
    let cfg = recipe_config();
    let dir = temp_dir("partial");
    let mut m = tiny_adapted();
    let run = RunOptions { out: &dir, resume: false, stop_at: Some(1) };
    train::train(&mut m, &mut sampler(), &cfg, run, |_| {}, None).unwrap();
    std::fs::remove_file(dir.join(train::OPTIMIZER_FILE)).unwrap();
    let run = RunOptions { out: &dir, resume: true, stop_at: None };
    let err = train::train(&mut m, &mut sampler(), &cfg, run, |_| {}, None).unwrap_err().to_string();
    assert!(err.contains(train::OPTIMIZER_FILE), "{err}");
    let other = TrainConfig { batch: 3, ..cfg };
    std::fs::write(dir.join(train::STATE_FILE), "{\"step\": 1}").unwrap();
    let err = train::train(&mut m, &mut sampler(), &other, run, |_| {}, None).unwrap_err().to_string();
    assert!(err.contains(train::STATE_FILE) && err.contains("cannot be resumed"), "{err}");
}

// ------------------------------------------------------------------ training-set layouts

/// Rewrites a sequence's ground truth, setting rows `zero` to `w = h = side` and `nan` rows.
fn edit_gt(path: &Path, small: &[usize], side: f32, nan: &[usize]) {
    let text = std::fs::read_to_string(path).unwrap();
    let rows: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if nan.contains(&i) {
                "nan,nan,nan,nan".to_string()
            } else if small.contains(&i) {
                let f: Vec<&str> = l.split(',').collect();
                format!("{},{},{side},{side}", f[0], f[1])
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(path, rows.join("\n") + "\n").unwrap();
}

#[test]
fn lasher_trainingset_is_read_from_its_list_with_the_official_rules() {
    let root = temp_dir("lasher").join("LasHeR");
    let set_dir = root.join("trainingset");
    patrack::train::synth::write_set(&set_dir, Modality::Thermal, 5, 4, 24, |_| {}).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(&set_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    // The list names three of the four; the first loses all but 4 usable frames (w = h = 0).
    std::fs::write(root.join("trainingsetList.txt"), format!("{}\n{},\n{}\n", names[0], names[1], names[2])).unwrap();
    edit_gt(&set_dir.join(&names[0]).join("init.txt"), &(4..24).collect::<Vec<_>>(), 0.0, &[]);
    edit_gt(&set_dir.join(&names[1]).join("init.txt"), &[3, 7], 0.0, &[]);
    for r in [&root, &set_dir] {
        let set = splits::open_training_set(DatasetKind::Lasher, r).unwrap();
        println!("{}", set.describe());
        assert_eq!(set.list.as_deref(), Some(root.join("trainingsetList.txt").as_path()));
        assert_eq!(set.sequences.iter().map(|s| s.seq.name.clone()).collect::<Vec<_>>(), names[1..3].to_vec());
        assert_eq!(set.too_short, vec![names[0].clone()]);
        let v = &set.sequences[0].visible;
        assert_eq!(v.iter().filter(|&&x| !x).count(), 2);
        assert!(!v[3] && !v[7] && v[4]);
    }
    // Another list (the official split files, e.g. `lasher_train.txt`) replaces the set's own.
    let split_list = root.join("lasher_train.txt");
    std::fs::write(&split_list, format!("{}\n", names[2])).unwrap();
    let set = splits::open_training_set_listed(DatasetKind::Lasher, &root, Some(&split_list)).unwrap();
    assert_eq!(set.list.as_deref(), Some(split_list.as_path()));
    assert_eq!(set.sequences.iter().map(|s| s.seq.name.clone()).collect::<Vec<_>>(), vec![names[2].clone()]);
    // A listed sequence that is not there is named with the list.
    std::fs::write(root.join("trainingsetList.txt"), "nosuchseq\n").unwrap();
    let err = splits::open_training_set(DatasetKind::Lasher, &root).unwrap_err().to_string();
    assert!(err.contains("trainingsetList.txt") && err.contains("nosuchseq"), "{err}");
}

#[test]
fn depthtrack_train_folder_is_read_with_its_size_and_nan_rules() {
    let root = temp_dir("depthtrack").join("DepthTrack");
    patrack::train::synth::write_set(&root.join("Train"), Modality::Depth, 6, 2, 22, |_| {}).unwrap();
    let seq = std::fs::read_dir(root.join("Train")).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    // w = h = 10 is not usable (official: > 10), 10.5 is; `nan` rows are not.
    edit_gt(&seq.join("groundtruth.txt"), &[1, 2], 10.0, &[5, 6]);
    edit_gt(&seq.join("groundtruth.txt"), &[8], 10.5, &[]);
    let set = splits::open_training_set(DatasetKind::DepthTrack, &root).unwrap();
    assert_eq!(set.dir, root.join("Train"));
    assert_eq!(set.list, None);
    assert_eq!(set.sequences.len(), 2);
    let v = &set.sequences[0].visible;
    assert_eq!(
        (0..10).map(|i| v[i]).collect::<Vec<_>>(),
        [true, false, false, true, true, false, false, true, true, true]
    );
}

#[test]
fn visevent_train_subset_with_bmp_frames_and_absent_labels() {
    let root = temp_dir("visevent").join("train_subset");
    patrack::train::synth::write_set(&root, Modality::Event, 7, 2, 20, |_| {}).unwrap();
    let mut seqs: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    seqs.sort();
    // VisEvent ships .bmp frames.
    for seq in &seqs {
        for sub in ["vis_imgs", "event_imgs"] {
            for f in std::fs::read_dir(seq.join(sub)).unwrap() {
                let p = f.unwrap().path();
                image::open(&p).unwrap().save(p.with_extension("bmp")).unwrap();
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    let name = seqs[1].file_name().unwrap().to_string_lossy().into_owned();
    std::fs::write(root.join("trainlist.txt"), format!("{name}\n")).unwrap();
    let labels: String = (0..20).map(|i| if i == 2 || i == 9 { "0\n" } else { "1\n" }).collect();
    std::fs::write(seqs[1].join("absent_label.txt"), labels).unwrap();
    // Boxes of side 5 are not usable (official: > 5).
    edit_gt(&seqs[1].join("groundtruth.txt"), &[4], 5.0, &[]);
    let set = splits::open_training_set(DatasetKind::VisEvent, &root).unwrap();
    assert_eq!(set.sequences.len(), 1);
    let t = &set.sequences[0];
    assert_eq!(t.seq.name, name);
    assert!(t.seq.rgb[0].extension().unwrap() == "bmp");
    let unusable: Vec<usize> = (0..20).filter(|&i| !t.visible[i]).collect();
    assert_eq!(unusable, vec![2, 4, 9]);
    let frame = t.seq.frame(0).unwrap();
    assert_eq!(frame.channels, 6);
    // A label count that does not fit the frames is named with the file.
    std::fs::write(seqs[1].join("absent_label.txt"), "1\n1\n").unwrap();
    let err = splits::open_training_set(DatasetKind::VisEvent, &root).unwrap_err().to_string();
    assert!(err.contains("absent_label.txt") && err.contains("2 labels for 20 frames"), "{err}");
}

// ------------------------------------------------------------------ the whole path

/// `patrack train --recipe paper` at CI size: the OSTrack-format tiny checkpoint as the base, a
/// synthetic set in LasHeR's published training layout, validation on a listed sequence of a
/// synthetic LasHeR-layout set; stopped at step 2 and resumed to 4, then scored by `patrack eval`.
/// The split run's checkpoint equals a straight run's byte for byte (two processes: this caught
/// libtorch's entropy-seeded generator initialising the adapters differently per process), and
/// `patrack eval` of the final weights scores what the last validation scored.
#[test]
fn the_paper_recipe_trains_checkpoints_resumes_and_validates_through_the_binary() {
    let dir = temp_dir("cli");
    let data = dir.join("LasHeR");
    let val = dir.join("val");
    let dirs = [data.join("trainingset"), val.clone()];
    let (ok, o, e) = patrack(&[
        "synth",
        "--modality",
        "thermal",
        "--sequences",
        "3",
        "--frames",
        "24",
        "--seed",
        "5",
        "--out",
        dirs[0].to_str().unwrap(),
    ]);
    assert!(ok, "{o}{e}");
    let (ok, o, e) = patrack(&[
        "synth",
        "--modality",
        "thermal",
        "--sequences",
        "2",
        "--frames",
        "6",
        "--out",
        dirs[1].to_str().unwrap(),
    ]);
    assert!(ok, "{o}{e}");
    std::fs::write(data.join("trainingsetList.txt"), "0000_normal\n0001_dark\n").unwrap();
    // Validation on one of the two sequences, named in a list as the official split files do.
    let val_list = dir.join("val_list.txt");
    std::fs::write(&val_list, "0001_dark\n").unwrap();
    let base = common::data_path("checkpoint/ostrack_tiny_ep0300.pth.tar");
    let train = |out: &Path, more: &[&str]| {
        let args = [
            "train",
            "--recipe",
            "paper",
            "--modality",
            "thermal",
            "--base",
            base.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--dataset",
            "lasher",
            "--val-data",
            val.to_str().unwrap(),
            "--val-dataset",
            "lasher",
            "--val-list",
            val_list.to_str().unwrap(),
            "--steps",
            "4",
            "--batch",
            "2",
            "--checkpoint-every",
            "2",
            "--val-every",
            "2",
            "--workers",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        let (ok, o, e) = patrack(&[&args[..], more].concat());
        assert!(ok, "{o}{e}");
        println!("{o}");
        o
    };
    let split = dir.join("split");
    let o = train(&split, &["--stop-at", "2"]);
    assert!(o.contains("Adapt stage, paper recipe"), "{o}");
    assert!(o.contains("x0.1 from step 3") && o.contains("drop path 0.1"), "{o}");
    assert!(o.contains("LasHeR training set: 2 sequences") && o.contains("trainingsetList.txt"), "{o}");
    assert!(o.contains("validating every 2 steps on 1 LasHeR sequences"), "{o}");
    assert!(o.contains("validation at step 2: success"), "{o}");
    assert!(o.contains("trained steps 1-2") && o.contains("pairs/s at batch 2"), "{o}");
    let o = train(&split, &["--resume"]);
    assert!(o.contains("resumed at step 2 of 4") && o.contains("trained steps 3-4"), "{o}");
    assert!(o.contains("validation at step 4: success"), "{o}");
    let val_log = train::validate::read_val_log(&split.join("val.csv")).unwrap();
    assert_eq!(val_log.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 4]);
    assert!(val_log.iter().all(|r| (0.0..=1.0).contains(&r.1)));
    assert_eq!(train::read_loss_log(&split.join(train::LOSS_FILE)).unwrap().len(), 4);
    assert!(split.join("val/step_0000004/0001_dark.txt").is_file());
    assert!(!split.join("val/step_0000004/0000_normal.txt").exists(), "--val-list selects the sequences");

    let straight = dir.join("straight");
    train(&straight, &[]);
    let read = |d: &Path| std::fs::read(d.join(train::MODEL_FILE)).unwrap();
    assert!(read(&split) == read(&straight), "the resumed run's weights differ from the straight run's");

    // The result is a tiny PATrack whose base is the OSTrack checkpoint; eval runs it.
    let model = patrack::model::load_file(&split.join(train::MODEL_FILE), None, Device::Cpu, Precision::Fp32).unwrap();
    assert!(!model.cfg.rgb_only);
    let out = dir.join("eval");
    let m = split.join(train::MODEL_FILE);
    let (ok, o, e) = patrack(&[
        "eval",
        "--dataset",
        "lasher",
        "--root",
        val.to_str().unwrap(),
        "--model",
        m.to_str().unwrap(),
        "--include",
        "dark",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{o}{e}");
    assert!(o.contains("| patrack |"), "{o}");
    // The eval of the final weights scores what the last validation scored.
    let last = val_log.last().unwrap().1;
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    let auc = scores["trackers"][0]["scores"]["success_auc"].as_f64().unwrap();
    assert!((auc - last).abs() < 1e-5, "eval {auc} vs validation {last}");
}
