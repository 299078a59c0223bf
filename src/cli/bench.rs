//! `patrack bench`: latency of the network and of a whole tracker step, per device and precision.
//!
//! Each (device, precision) runs in a fresh child process so that its peak resident memory is its
//! own. GPU timings synchronise the device before reading the clock.

use std::time::Instant;

use anyhow::Context;
use tch::{Device, Kind, Tensor};

use super::common::{build_model, ModelArgs};
use crate::device::{device_name, Precision};
use crate::model::GraphedTrack;
use crate::sensor::ImageU8;
use crate::tracker::{BoxXywh, MultiTracker, TargetId, Tracker, TrackerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Devices to measure, comma-separated (e.g. `cpu,cuda`).
    #[arg(long, default_value = "cpu")]
    pub devices: String,
    /// Precisions to measure, comma-separated.
    #[arg(long, default_value = "fp32,bf16")]
    pub precisions: String,
    /// Timed runs per measurement (after warm-up).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Frame size of the full-step measurement, WxH.
    #[arg(long, default_value = "640x480")]
    pub frame: String,
    /// Append the rows as JSON lines to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Measure the ROS node's own cost per RGB + aux pair instead (CDR decode, sync, image
    /// decoding, aux preparation, registration, publishing; no network).
    #[arg(long)]
    pub node: bool,
    /// Soak: push this many RGB + thermal pairs through the node core (tracking with --model, the
    /// test weights of --config when one other than vit_base is named, or the small demo model)
    /// and report the resident memory growth after warm-up.
    #[arg(long)]
    pub soak: Option<usize>,
    /// Keep denormal floats (the libtorch default) instead of flushing them to zero, to measure
    /// what flushing gains.
    #[arg(long)]
    pub keep_denormals: bool,
    /// On CUDA, run the network eagerly instead of as a captured CUDA graph.
    #[arg(long)]
    pub no_cuda_graph: bool,
    /// On CUDA, crop and resize on the GPU instead of the OpenCV-exact CPU crop.
    #[arg(long)]
    pub crop_on_device: bool,
    /// Measure the multi-target step instead: one batched network call for N targets, for each
    /// comma-separated N (e.g. `1,2,4,8`), on the first of --devices in the first of --precisions.
    #[arg(long)]
    pub targets: Option<String>,
    /// Internal: measure one device/precision in this process and print one JSON row.
    #[arg(long, hide = true)]
    pub single: bool,
}

/// One measured configuration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub device: String,
    pub precision: String,
    pub config: String,
    pub threads: i32,
    pub network_ms_median: f64,
    pub network_ms_p10: f64,
    pub network_ms_p90: f64,
    pub step_ms_median: f64,
    pub step_ms_p10: f64,
    pub step_ms_p90: f64,
    pub fps: f64,
    pub peak_rss_mb: f64,
    pub peak_gpu_mb: Option<f64>,
    /// Whether denormal floats were flushed to zero (the CLI default).
    #[serde(default)]
    pub flush_denormals: bool,
    /// How the network ran: `eager` or `cuda-graph`; `+device-crop` when cropping on the GPU.
    #[serde(default)]
    pub mode: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.node {
        return node_overhead(&args);
    }
    if let Some(pairs) = args.soak {
        return soak(&args, pairs);
    }
    if let Some(counts) = &args.targets {
        return multi_target(&args, counts);
    }
    if args.single {
        let row = measure(&args)?;
        println!("ROW {}", serde_json::to_string(&row)?);
        return Ok(());
    }
    let exe = std::env::current_exe().context("locating the patrack binary")?;
    let mut rows = Vec::new();
    for dev in args.devices.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        for prec in args.precisions.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["bench", "--single", "--device", dev, "--precision", prec]);
            cmd.args(["--runs", &args.runs.to_string(), "--warmup", &args.warmup.to_string()]);
            cmd.args(["--frame", &args.frame, "--config", &args.model.config]);
            cmd.args(["--threads", &args.model.threads.to_string()]);
            for (flag, on) in [
                ("--keep-denormals", args.keep_denormals),
                ("--no-cuda-graph", args.no_cuda_graph),
                ("--crop-on-device", args.crop_on_device),
            ] {
                if on {
                    cmd.arg(flag);
                }
            }
            if let Some(m) = &args.model.model {
                cmd.arg("--model").arg(m);
            }
            if let Some(keep) = args.model.candidate_elimination {
                cmd.args(["--candidate-elimination", &keep.to_string()]);
            }
            eprintln!("measuring {dev} {prec} ...");
            let out = cmd.output().context("running the benchmark child")?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            match stdout.lines().find_map(|l| l.strip_prefix("ROW ")) {
                Some(json) => rows.push(serde_json::from_str::<Row>(json)?),
                None => eprintln!("{dev} {prec}: failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            }
        }
    }
    print_table(&rows);
    if args.keep_denormals {
        println!("denormal floats kept (--keep-denormals); the default flushes them to zero");
    }
    if let Some(path) = &args.json {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        for r in &rows {
            writeln!(f, "{}", serde_json::to_string(r)?)?;
        }
    }
    if rows.is_empty() {
        anyhow::bail!("no configuration could be measured");
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "| device | precision | config | mode | threads | network ms (p10-p90) | full step ms (p10-p90) | steps/s | peak RSS MB | peak GPU MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} ({:.2}-{:.2}) | {:.2} ({:.2}-{:.2}) | {:.2} | {:.0} | {} |",
            r.device,
            r.precision,
            r.config,
            r.mode,
            r.threads,
            r.network_ms_median,
            r.network_ms_p10,
            r.network_ms_p90,
            r.step_ms_median,
            r.step_ms_p10,
            r.step_ms_p90,
            r.fps,
            r.peak_rss_mb,
            r.peak_gpu_mb.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into())
        );
    }
}

fn parse_frame(s: &str) -> anyhow::Result<(usize, usize)> {
    let (w, h) = s.split_once('x').context("--frame must be WxH")?;
    Ok((w.parse()?, h.parse()?))
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Median, 10th and 90th percentile of `f`'s wall time in ms.
fn time_ms(device: Device, warmup: usize, runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..warmup {
        f();
    }
    sync(device);
    let mut t: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            sync(device);
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize];
    (q(0.5), q(0.1), q(0.9))
}

fn measure(args: &Args) -> anyhow::Result<Row> {
    if args.keep_denormals {
        // Before the first libtorch call, so its thread pool inherits the setting.
        crate::device::set_flush_denormals(false);
    }
    let device = args.model.device()?;
    let precision: Precision = args.model.precision()?;
    if device != Device::Cpu {
        // Fixed-size inputs: let cuDNN pick its fastest kernels once.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let mut model = build_model(args.model.model.as_deref(), &args.model.config, device, precision)?;
    args.model.apply_candidate_elimination(&mut model)?;
    super::common::apply_thread_policy(args.model.threads, &model);
    let cfg = model.cfg.clone();
    let z = Tensor::randn([1, 6, cfg.template_size, cfg.template_size], (Kind::Float, Device::Cpu));
    let x = Tensor::randn([1, 6, cfg.search_size, cfg.search_size], (Kind::Float, Device::Cpu)).to_device(device);
    let z_tokens = model.embed_template(&z);
    let mut graph = None;
    if device.is_cuda() && !args.no_cuda_graph {
        match GraphedTrack::capture(&model, &z_tokens, &x) {
            Ok(g) => graph = Some(g),
            Err(e) => eprintln!("warning: {e}; measuring the eager network"),
        }
    }
    let graphed = graph.is_some();
    let (net_med, net_p10, net_p90) = time_ms(device, args.warmup, args.runs, || match &mut graph {
        Some(g) => {
            g.run(&z_tokens, &x).expect("replaying the captured graph");
        }
        None => {
            let _ = model.track(&z_tokens, &x);
        }
    });
    drop(graph);

    let (w, h) = parse_frame(&args.frame)?;
    let frame = synthetic_frame(w, h);
    let tracker_cfg = TrackerConfig {
        lost_frames: 0,
        cuda_graph: graphed,
        crop_on_device: args.crop_on_device,
        ..Default::default()
    };
    let mut tracker = Tracker::new(model, tracker_cfg).map_err(anyhow::Error::msg)?;
    let init = BoxXywh::new(w as f64 * 0.45, h as f64 * 0.45, w as f64 * 0.1, h as f64 * 0.1);
    tracker.init(&frame, init)?;
    let (step_med, step_p10, step_p90) = time_ms(device, args.warmup, args.runs, || {
        // Same search area every step: the random-weight box would otherwise wander.
        tracker.set_bbox(init);
        let _ = tracker.track(&frame);
    });
    Ok(Row {
        device: device_name(device),
        precision: precision.to_string(),
        config: cfg.label(),
        threads: tch::get_num_threads(),
        network_ms_median: net_med,
        network_ms_p10: net_p10,
        network_ms_p90: net_p90,
        step_ms_median: step_med,
        step_ms_p10: step_p10,
        step_ms_p90: step_p90,
        fps: 1e3 / step_med.max(1e-9),
        peak_rss_mb: peak_rss_mb(),
        peak_gpu_mb: crate::device::peak_gpu_mb(device),
        flush_denormals: !args.keep_denormals,
        mode: format!(
            "{}{}",
            if graphed { "cuda-graph" } else { "eager" },
            if args.crop_on_device && device.is_cuda() { "+device-crop" } else { "" }
        ),
    })
}

/// One measured multi-target configuration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TargetsRow {
    pub device: String,
    pub precision: String,
    pub config: String,
    pub threads: i32,
    pub targets: usize,
    pub step_ms_median: f64,
    pub step_ms_p10: f64,
    pub step_ms_p90: f64,
    pub ms_per_target: f64,
    pub steps_per_s: f64,
    pub peak_rss_mb: f64,
    /// `cuda-graph` when the step replayed a CUDA graph of its batch size, else `eager`.
    pub mode: String,
}

/// `--targets`: `MultiTracker::track` on a synthetic frame for each target count: crops of all
/// targets, one batched network call, decode and state update per target.
fn multi_target(args: &Args, counts: &str) -> anyhow::Result<()> {
    let counts: Vec<usize> = counts
        .split(',')
        .map(|s| s.trim().parse::<usize>().with_context(|| format!("--targets: '{}' is not a count", s.trim())))
        .collect::<anyhow::Result<_>>()?;
    let max = counts.iter().copied().max().unwrap_or(0);
    if max == 0 || max > crate::tracker::MAX_TARGETS {
        anyhow::bail!("--targets: counts must be within 1..={}", crate::tracker::MAX_TARGETS);
    }
    let first = |list: &str| list.split(',').map(str::trim).find(|s| !s.is_empty()).unwrap_or("").to_string();
    let mut model_args = args.model.clone();
    model_args.device = first(&args.devices);
    model_args.precision = first(&args.precisions);
    let model = model_args.build()?;
    let device = model.device();
    let (precision, config) = (model.precision().to_string(), model.cfg.label());
    let (w, h) = parse_frame(&args.frame)?;
    let frame = synthetic_frame(w, h);
    let cfg = TrackerConfig { lost_frames: 0, cuda_graph: !args.no_cuda_graph, ..Default::default() };
    let mut tracker = MultiTracker::new(model, cfg, max)?;
    // Targets on a 4 x 2 grid of the frame, each a tenth of its sides.
    let boxes: Vec<(TargetId, BoxXywh)> = (0..max)
        .map(|i| {
            let (col, row) = ((i % 4) as f64, ((i / 4) % 2) as f64);
            let b = BoxXywh::new(
                w as f64 * (0.05 + 0.24 * col),
                h as f64 * (0.2 + 0.45 * row),
                w as f64 * 0.1,
                h as f64 * 0.1,
            );
            Ok((TargetId::new(format!("target{i}"))?, b))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut rows = Vec::new();
    for &n in &counts {
        tracker.reset_all();
        for (id, b) in &boxes[..n] {
            tracker.init(id.clone(), &frame, *b)?;
        }
        let (med, p10, p90) = time_ms(device, args.warmup, args.runs, || {
            // Same search areas every step: the random-weight boxes would otherwise wander.
            for (id, b) in &boxes[..n] {
                let _ = tracker.set_bbox(id, *b);
            }
            let _ = tracker.track(&frame);
        });
        rows.push(TargetsRow {
            device: device_name(device),
            precision: precision.clone(),
            config: config.clone(),
            threads: tch::get_num_threads(),
            targets: n,
            step_ms_median: med,
            step_ms_p10: p10,
            step_ms_p90: p90,
            ms_per_target: med / n as f64,
            steps_per_s: 1e3 / med.max(1e-9),
            peak_rss_mb: peak_rss_mb(),
            mode: if tracker.cuda_graph_batches().contains(&(n as i64)) { "cuda-graph" } else { "eager" }.into(),
        });
    }
    println!("| device | precision | config | threads | mode | targets | step ms (p10-p90) | ms per target | steps/s | peak RSS MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} ({:.2}-{:.2}) | {:.2} | {:.2} | {:.0} |",
            r.device,
            r.precision,
            r.config,
            r.threads,
            r.mode,
            r.targets,
            r.step_ms_median,
            r.step_ms_p10,
            r.step_ms_p90,
            r.ms_per_target,
            r.steps_per_s,
            r.peak_rss_mb
        );
    }
    if let Some(path) = &args.json {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        for r in &rows {
            writeln!(f, "{}", serde_json::to_string(r)?)?;
        }
    }
    Ok(())
}

/// A textured 6-channel frame (content does not affect timing; it keeps the crop realistic).
fn synthetic_frame(w: usize, h: usize) -> ImageU8 {
    let mut img = ImageU8::zeros(w, h, 6);
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) * 6;
            let v = ((x * 7 + y * 13) % 256) as u8;
            img.data[i..i + 6].copy_from_slice(&[v, v / 2, 255 - v, v, v, v]);
        }
    }
    img
}

/// Peak resident set size of this process (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A sink that only counts what the node publishes.
#[derive(Default)]
struct CountingSink(std::sync::atomic::AtomicU64);

impl crate::ros::node::Sink for CountingSink {
    fn publish(&self, _: crate::ros::output::Output, _: &[u8]) -> Result<(), crate::ros::node::SinkError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Resident set size of this process in MiB, from `/proc/self/statm`.
fn rss_mib() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    Some(pages * page_bytes / (1024.0 * 1024.0))
}

/// `--soak N`: N pairs of a moving synthetic target (`--frame` rgb8 + mono16 thermal) through
/// `NodeCore` with the tracker initialised, one pair at a time; RSS sampled every 500 pairs.
/// Growth is measured from the sample after the first 1000 pairs (allocator and libtorch caches
/// warm) to the last.
fn soak(args: &Args, pairs: usize) -> anyhow::Result<()> {
    use crate::ros::msgs::{Header, Image, RosMessage, Time};
    use crate::ros::node::{Input, NodeCore};
    use crate::ros::params::NodeParams;
    const WARM_PAIRS: usize = 1000;
    const SAMPLE_EVERY: usize = 500;
    let (w, h) = parse_frame(&args.frame)?;
    // `--model`, else hashed test weights when a configuration other than the default is named
    // (`--config tiny`: a cheap network, so the soak exercises the node's own path at speed),
    // else the small demo model.
    let (model_path, model_config) = match &args.model.model {
        Some(m) => (m.display().to_string(), args.model.config.clone()),
        None if args.model.config != "vit_base" => (String::new(), args.model.config.clone()),
        None => ("models/patrack_small_rgbt.safetensors".to_string(), args.model.config.clone()),
    };
    let model_name = if model_path.is_empty() { format!("test weights ({model_config})") } else { model_path.clone() };
    let (bw, bh) = (w as f64 / 8.0, h as f64 / 8.0);
    // The CLI's precision (fp32 by default), not the node's bf16 default: bf16 on a CPU without
    // native bf16 arithmetic would measure the conversion, not the node.
    let params = NodeParams {
        device: "cpu".into(),
        precision: args.model.precision()?.to_string(),
        model_path: model_path.clone(),
        model_config,
        initial_bbox: [w as f64 / 2.0 - bw / 2.0, h as f64 / 2.0 - bh / 2.0, bw, bh],
        ..Default::default()
    };
    let model = crate::ros::transport::build_model(&params)?;
    super::common::apply_thread_policy(args.model.threads, &model);
    let sink = std::sync::Arc::new(CountingSink::default());
    let core = NodeCore::new(params, model, sink.clone())?;
    let idle = std::time::Duration::from_secs(30);
    let mut samples: Vec<(usize, f64)> = Vec::new();
    let started = Instant::now();
    for n in 0..pairs {
        // A bright square circling the centre, warm in the thermal image.
        let t = n as f64 * 0.05;
        let (cx, cy) = (w as f64 / 2.0 + t.cos() * w as f64 / 6.0, h as f64 / 2.0 + t.sin() * h as f64 / 6.0);
        let inside = |x: usize, y: usize| (x as f64 - cx).abs() < bw / 2.0 && (y as f64 - cy).abs() < bh / 2.0;
        let mut rgb = vec![40u8; w * h * 3];
        let mut aux = Vec::with_capacity(w * h * 2);
        for y in 0..h {
            for x in 0..w {
                let hot = inside(x, y);
                if hot {
                    rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[220, 180, 60]);
                }
                aux.extend_from_slice(&(if hot { 3400u16 } else { 3000 }).to_le_bytes());
            }
        }
        let stamp = Time::from_ns(1_000_000_000 + n as i64 * 33_000_000).context("stamp out of range")?;
        let msg = |encoding: &str, bytes_per_px: usize, data: Vec<u8>| {
            Image::packed(Header { stamp, frame_id: "camera".into() }, w, h, encoding, bytes_per_px, data).encode()
        };
        core.handle(Input::Rgb, &msg("rgb8", 3, rgb)?);
        core.handle(Input::Aux, &msg("mono16", 2, aux)?);
        if !core.wait_idle(idle) {
            anyhow::bail!("the node did not finish pair {n} within {idle:?}");
        }
        if (n + 1) % SAMPLE_EVERY == 0 || n + 1 == pairs {
            samples.push((n + 1, rss_mib().unwrap_or(f64::NAN)));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let warm = samples.iter().find(|(n, _)| *n >= WARM_PAIRS.min(pairs)).copied().unwrap_or((0, f64::NAN));
    let last = samples.last().copied().unwrap_or((0, f64::NAN));
    let peak = samples.iter().map(|s| s.1).fold(f64::NAN, f64::max);
    let growth_pct = (last.1 - warm.1) / warm.1 * 100.0;
    println!("RSS MiB by pairs: {}", samples.iter().map(|(n, r)| format!("{n}:{r:.1}")).collect::<Vec<_>>().join(" "));
    println!(
        "soak: {pairs} pairs {w}x{h} through NodeCore with {model_name} in {seconds:.1} s ({:.1} pairs/s); \
         {} messages published; RSS {:.1} MiB after {} pairs, {:.1} MiB at the end (peak {:.1}): growth {growth_pct:+.2} %",
        pairs as f64 / seconds,
        sink.0.load(std::sync::atomic::Ordering::Relaxed),
        warm.1,
        warm.0,
        last.1,
        peak
    );
    let stats = core.stats();
    println!("node: {} pairs processed", stats.processed);
    Ok(())
}

/// `--node`: per-pair cost of the node without the network, for a `--frame` rgb8 image and a
/// mono16 thermal image of the same size (the tracker stays uninitialised, so every pair runs the
/// whole path except the model and is answered with an empty detection array).
fn node_overhead(args: &Args) -> anyhow::Result<()> {
    use crate::ros::msgs::{Header, Image, RosMessage, Time};
    use crate::ros::node::{Input, NodeCore};
    use crate::ros::params::NodeParams;
    let (w, h) = parse_frame(&args.frame)?;
    let params = NodeParams { device: "cpu".into(), model_config: "tiny".into(), ..Default::default() };
    let model = crate::ros::transport::build_model(&params)?;
    let sink = std::sync::Arc::new(CountingSink::default());
    let core = NodeCore::new(params, model, sink.clone())?;
    // Stamped 33 ms apart; `bytes_per_px` sets `step`.
    let image = |n: usize, encoding: &str, bytes_per_px: usize, data: Vec<u8>| -> anyhow::Result<Vec<u8>> {
        let stamp = Time::from_ns(1_000_000_000 + n as i64 * 33_000_000).context("stamp out of range")?;
        Ok(Image::packed(Header { stamp, frame_id: "camera".into() }, w, h, encoding, bytes_per_px, data).encode()?)
    };
    let n_pairs = args.warmup + args.runs.max(1);
    let mut messages = Vec::with_capacity(n_pairs);
    for n in 0..n_pairs {
        let rgb = (0..w * h * 3).map(|i| ((i + n) % 251) as u8).collect();
        let aux = (0..w * h).flat_map(|i| (3000u16 + ((i + n) % 997) as u16).to_le_bytes()).collect();
        messages.push((image(n, "rgb8", 3, rgb)?, image(n, "mono16", 2, aux)?));
    }
    let idle = std::time::Duration::from_secs(30);
    let (mut receive, mut total) = (Vec::new(), Vec::new());
    let mut warm_stats = core.stats();
    for (n, (rgb, aux)) in messages.iter().enumerate() {
        if n == args.warmup {
            warm_stats = core.stats();
        }
        let start = Instant::now();
        core.handle(Input::Rgb, rgb);
        core.handle(Input::Aux, aux);
        let received = start.elapsed().as_secs_f64() * 1e3;
        if !core.wait_idle(idle) {
            anyhow::bail!("the node did not finish a pair within {idle:?}");
        }
        if n >= args.warmup {
            receive.push(received);
            total.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let stats = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        (q(0.5), q(0.1), q(0.9))
    };
    let (r, t) = (stats(receive), stats(total));
    println!("| frame | receive path ms (p10-p90) | whole pair ms (p10-p90) | pairs | messages published |");
    println!("|---|---|---|---|---|");
    println!(
        "| {w}x{h} rgb8 + mono16 | {:.3} ({:.3}-{:.3}) | {:.3} ({:.3}-{:.3}) | {} | {} |",
        r.0,
        r.1,
        r.2,
        t.0,
        t.1,
        t.2,
        args.runs,
        sink.0.load(std::sync::atomic::Ordering::Relaxed)
    );
    let stats = core.stats();
    let processed = stats.processed.saturating_sub(warm_stats.processed).max(1) as f64;
    println!(
        "inference thread (image decoding, aux preparation, stacking; mean): {:.3} ms; \
         pair complete to answer published (mean): {:.3} ms",
        (stats.inference_ms_sum - warm_stats.inference_ms_sum) / processed,
        (stats.latency_ms_sum - warm_stats.latency_ms_sum) / processed
    );
    println!("receive path: CDR decode + ApproximateTime; whole pair: until the answer is published");
    Ok(())
}
