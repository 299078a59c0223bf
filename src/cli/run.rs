//! `patrack run`: offline tracking of one sequence folder, writing annotated frames, a contact
//! sheet and the boxes. The README's demo.

use std::path::PathBuf;

use anyhow::Context;

use super::common::ModelArgs;
use crate::eval::layout::{BenchSequence, DatasetKind};
use crate::overlay;
use crate::sensor::ImageU8;
use crate::tracker::{BoxXywh, TargetState, Tracker, TrackerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One sequence folder in a benchmark layout (see --dataset).
    #[arg(long, default_value = "data/sample_rgbt")]
    pub sequence: PathBuf,
    /// Layout of the sequence folder (LasHeR: visible/, infrared/, init.txt with a box per frame).
    #[arg(long, value_enum, default_value = "lasher")]
    pub dataset: DatasetKind,
    /// Output folder.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Initial box x,y,w,h in pixels (default: the sequence's init.txt).
    #[arg(long, value_parser = parse_box)]
    pub init: Option<BoxXywh>,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Parses `x,y,w,h`.
pub fn parse_box(s: &str) -> Result<BoxXywh, String> {
    let v: Vec<f64> =
        s.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match v.as_slice() {
        [x, y, w, h] if *w > 0.0 && *h > 0.0 => Ok(BoxXywh::new(*x, *y, *w, *h)),
        _ => Err(format!("expected x,y,w,h with positive w and h, got {s:?}")),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let seq = BenchSequence::open(args.dataset, &args.sequence)?;
    let model = args.model.build()?;
    let trained = args.model.model.is_some();
    let mut tracker = Tracker::new(model, TrackerConfig::default()).map_err(anyhow::Error::msg)?;
    let frames_dir = args.out.join("frames");
    std::fs::create_dir_all(&frames_dir).with_context(|| format!("creating {}", frames_dir.display()))?;
    let mut csv = String::from("frame,x,y,w,h,score,state\n");
    let mut thumbs = Vec::new();
    let init = match args.init {
        Some(b) => b,
        None => seq.init_box()?,
    };
    let bar = indicatif::ProgressBar::new(seq.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} frames  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut ious = Vec::new();
    for i in 0..seq.len() {
        let frame = seq.frame(i)?;
        let (bbox, score, state) = if i == 0 {
            tracker.init(&frame, init)?;
            (init, 1.0f32, TargetState::Tracking)
        } else {
            let r = tracker.track(&frame)?;
            (r.bbox, r.score, r.state)
        };
        if let Some(g) = seq.gt.get(i).filter(|g| g.iter().all(|v| v.is_finite()) && g[2] > 0.0 && g[3] > 0.0) {
            ious.push(bbox.iou(&BoxXywh::new(g[0] as f64, g[1] as f64, g[2] as f64, g[3] as f64)));
        }
        csv.push_str(&format!(
            "{},{:.2},{:.2},{:.2},{:.2},{:.4},{}\n",
            i + 1,
            bbox.x,
            bbox.y,
            bbox.w,
            bbox.h,
            score,
            state
        ));
        let view = overlay::annotate(&frame, Some(bbox), score, state, &format!("#{}", i + 1));
        overlay::save_png(&view, &frames_dir.join(format!("{:06}.png", i + 1)))?;
        // The contact sheet shows at most 16 frames, evenly spaced, always the first and last.
        let every = seq.len().div_ceil(SHEET_FRAMES).max(1);
        if i % every == 0 || i + 1 == seq.len() {
            thumbs.push(view);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    std::fs::write(args.out.join("boxes.csv"), csv)?;
    let sheet = contact_sheet(&thumbs, 4);
    let sheet_path = args.out.join("summary.png");
    overlay::save_png(&sheet, &sheet_path)?;
    let mean_iou = if ious.is_empty() { f64::NAN } else { ious.iter().sum::<f64>() / ious.len() as f64 };
    println!("tracked {} frames of {}: mean IoU with ground truth {:.3}", seq.len(), seq.name, mean_iou);
    println!(
        "annotated frames: {}\ncontact sheet: {}\nboxes: {}",
        frames_dir.display(),
        sheet_path.display(),
        args.out.join("boxes.csv").display()
    );
    if !trained {
        println!(
            "NOTE: these are the deterministic test weights, not a trained model: the network is \
             exact but untrained, so the box does not follow the target. Pass --model WEIGHTS."
        );
    }
    Ok(())
}

/// Most frames on the contact sheet.
const SHEET_FRAMES: usize = 16;

/// Frames in a grid of `cols` columns.
fn contact_sheet(views: &[ImageU8], cols: usize) -> ImageU8 {
    let rows: Vec<ImageU8> = views.chunks(cols).map(|c| overlay::hstack(&c.iter().collect::<Vec<_>>())).collect();
    let width = rows.iter().map(|r| r.width).max().unwrap_or(0);
    let height: usize = rows.iter().map(|r| r.height).sum();
    let mut out = ImageU8::zeros(width, height, 3);
    let mut y0 = 0;
    for r in &rows {
        for y in 0..r.height {
            let src = &r.data[y * r.width * 3..(y + 1) * r.width * 3];
            out.data[(y0 + y) * width * 3..(y0 + y) * width * 3 + src.len()].copy_from_slice(src);
        }
        y0 += r.height;
    }
    out
}
