//! The published folder layouts of the benchmarks, and their raw-result file formats.
//!
//! | kind | per sequence | ground truth | raw result |
//! |---|---|---|---|
//! | LasHeR | `visible/`, `infrared/` | `init.txt` (x,y,w,h per frame; else `visible.txt`) | `<seq>.txt` |
//! | RGBT234 | `visible/`, `infrared/` | `visible.txt`, `infrared.txt` | `<seq>.txt` |
//! | GTOT | `v/`, `i/` | `groundTruth_v.txt`, `groundTruth_i.txt` (l t r b) | `<seq>.txt` |
//! | DepthTrack | `color/`, `depth/` (16-bit PNG, mm) | `groundtruth.txt` (`nan` rows: absent) | VOT long-term: `longterm/<seq>/<seq>_001.txt` + `_001_confidence.value` |
//! | VisEvent | `vis_imgs/`, `event_imgs/` | `groundtruth.txt`, `absent_label.txt` | `<seq>.txt` |
//!
//! patrack writes raw results as `x,y,w,h` per frame (the first frame is the initial box), which
//! is what the `rgbt` toolkit and the VisEvent toolkit read; published results of other trackers
//! are read in every format the `rgbt` toolkit reads ([`boxfile`]). To run a tracker, a sequence
//! is a sub-folder holding both image folders; to score results, any sub-folder holding the
//! ground-truth file(s), images or not (the `rgbt` package's own `gt_file/` folders work as they
//! are). Sequences are processed in name order.

use std::path::{Path, PathBuf};

use crate::dataset::{self, DatasetError};
use crate::eval::boxfile::{self, BoxFileError, ResultFormat};
use crate::eval::longterm::{self, Region};
use crate::eval::metrics::{self, Rect32};
use crate::sensor::{self, AuxConfig, ImageU8, Modality};
use crate::tracker::BoxXywh;

/// Errors reading a benchmark folder or its raw results.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    BoxFile(#[from] BoxFileError),
    #[error("{path}: {source}")]
    LongTerm { path: PathBuf, source: longterm::LongTermError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: no ground truth (nor the {alternative} some re-packagings ship instead)")]
    MissingGroundTruth { path: PathBuf, alternative: &'static str },
    #[error("{0}: no sequences found (sub-folders with the benchmark's image folders)")]
    NoSequences(PathBuf),
    #[error("{root}: no sequences found (sub-folders holding {files})")]
    NoGroundTruth { root: PathBuf, files: String },
    #[error("sequence {seq}: {what}")]
    Sequence { seq: String, what: String },
    #[error("{path}: cannot prepare the frame: {source}")]
    Prepare { path: PathBuf, source: sensor::PrepareError },
}

/// The supported benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    #[value(name = "lasher")]
    Lasher,
    #[value(name = "rgbt234")]
    Rgbt234,
    #[value(name = "gtot")]
    Gtot,
    #[value(name = "depthtrack")]
    DepthTrack,
    #[value(name = "visevent")]
    VisEvent,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Lasher => "LasHeR",
            DatasetKind::Rgbt234 => "RGBT234",
            DatasetKind::Gtot => "GTOT",
            DatasetKind::DepthTrack => "DepthTrack",
            DatasetKind::VisEvent => "VisEvent",
        }
    }

    /// The RGB and auxiliary image folder names.
    pub fn image_dirs(self) -> (&'static str, &'static str) {
        match self {
            DatasetKind::Lasher | DatasetKind::Rgbt234 => ("visible", "infrared"),
            DatasetKind::Gtot => ("v", "i"),
            DatasetKind::DepthTrack => ("color", "depth"),
            DatasetKind::VisEvent => ("vis_imgs", "event_imgs"),
        }
    }

    pub fn modality(self) -> Modality {
        match self {
            DatasetKind::DepthTrack => Modality::Depth,
            DatasetKind::VisEvent => Modality::Event,
            _ => Modality::Thermal,
        }
    }

    /// Whether raw results are VOT long-term runs (boxes + confidences) rather than box files.
    pub fn is_long_term(self) -> bool {
        self == DatasetKind::DepthTrack
    }
}

/// One benchmark sequence on disk.
#[derive(Debug, Clone)]
pub struct BenchSequence {
    pub kind: DatasetKind,
    pub name: String,
    pub dir: PathBuf,
    pub rgb: Vec<PathBuf>,
    pub aux: Vec<PathBuf>,
    /// Ground truth as `x,y,w,h` (GTOT converted from l,t,r,b), float32 as the toolkits hold it.
    /// DepthTrack's absent frames are NaN rows.
    pub gt: Vec<Rect32>,
    /// The infrared camera's ground truth (RGBT234, GTOT).
    pub gt_aux: Option<Vec<Rect32>>,
}

fn images(dir: &Path) -> Result<Vec<PathBuf>, LayoutError> {
    Ok(dataset::image_files(dir)?)
}

/// DepthTrack ground truth may hold `nan` rows; they are read as NaN.
fn read_gt(path: &Path) -> Result<Vec<Rect32>, LayoutError> {
    Ok(boxfile::read_ground_truth(path)?)
}

/// The ground-truth files of a sequence folder of `kind`: alternatives for each camera
/// (LasHeR: `init.txt`, or `visible.txt` in some re-packagings).
fn ground_truth_files(kind: DatasetKind) -> &'static [&'static [&'static str]] {
    match kind {
        DatasetKind::Lasher => &[&["init.txt", "visible.txt"]],
        DatasetKind::Rgbt234 => &[&["visible.txt"], &["infrared.txt"]],
        DatasetKind::Gtot => &[&["groundTruth_v.txt"], &["groundTruth_i.txt"]],
        DatasetKind::DepthTrack | DatasetKind::VisEvent => &[&["groundtruth.txt"]],
    }
}

fn has_ground_truth(kind: DatasetKind, dir: &Path) -> bool {
    ground_truth_files(kind).iter().all(|alternatives| alternatives.iter().any(|f| dir.join(f).is_file()))
}

/// Ground truth of the RGB camera and, for RGBT234 and GTOT, of the infrared camera, as `x,y,w,h`.
fn read_ground_truths(kind: DatasetKind, dir: &Path) -> Result<(Vec<Rect32>, Option<Vec<Rect32>>), LayoutError> {
    Ok(match kind {
        DatasetKind::Lasher => {
            // LasHeR ships the per-frame boxes as init.txt (the rgbt toolkit's lasher_gt files
            // are these); some re-packagings name it visible.txt as RGBT234 does.
            let init = dir.join("init.txt");
            let visible = dir.join("visible.txt");
            if !init.is_file() && !visible.is_file() {
                return Err(LayoutError::MissingGroundTruth { path: init, alternative: "visible.txt" });
            }
            let path = if init.is_file() { init } else { visible };
            (read_gt(&path)?, None)
        }
        DatasetKind::Rgbt234 => (read_gt(&dir.join("visible.txt"))?, Some(read_gt(&dir.join("infrared.txt"))?)),
        DatasetKind::Gtot => {
            let conv = |v: Vec<Rect32>| v.iter().map(metrics::ltrb_to_ltwh).collect::<Vec<_>>();
            (conv(read_gt(&dir.join("groundTruth_v.txt"))?), Some(conv(read_gt(&dir.join("groundTruth_i.txt"))?)))
        }
        DatasetKind::DepthTrack | DatasetKind::VisEvent => (read_gt(&dir.join("groundtruth.txt"))?, None),
    })
}

impl BenchSequence {
    /// Opens one sequence folder of `kind` to run a tracker on: images and ground truth.
    pub fn open(kind: DatasetKind, dir: &Path) -> Result<Self, LayoutError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (rgb_dir, aux_dir) = kind.image_dirs();
        let (rgb, aux) = (images(&dir.join(rgb_dir))?, images(&dir.join(aux_dir))?);
        let seq_err = |what: String| LayoutError::Sequence { seq: name.clone(), what };
        if rgb.is_empty() || rgb.len() != aux.len() {
            return Err(seq_err(format!("{} {rgb_dir} images but {} {aux_dir} images", rgb.len(), aux.len())));
        }
        let (gt, gt_aux) = read_ground_truths(kind, dir)?;
        if gt.len() != rgb.len() {
            return Err(seq_err(format!("{} ground-truth boxes for {} frames", gt.len(), rgb.len())));
        }
        if let Some(a) = &gt_aux {
            if a.len() != gt.len() {
                return Err(seq_err(format!("{} infrared ground-truth boxes for {} frames", a.len(), gt.len())));
            }
        }
        Ok(Self { kind, name, dir: dir.into(), rgb, aux, gt, gt_aux })
    }

    /// Opens one sequence folder of `kind` to score results: the ground truth alone. Image
    /// folders are listed when present (the DepthTrack analysis needs the image size).
    pub fn open_ground_truth(kind: DatasetKind, dir: &Path) -> Result<Self, LayoutError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (rgb_dir, aux_dir) = kind.image_dirs();
        let listed = |d: PathBuf| if d.is_dir() { images(&d) } else { Ok(Vec::new()) };
        let (rgb, aux) = (listed(dir.join(rgb_dir))?, listed(dir.join(aux_dir))?);
        let (gt, gt_aux) = read_ground_truths(kind, dir)?;
        if let Some(a) = &gt_aux {
            if a.len() != gt.len() {
                let what = format!("{} infrared ground-truth boxes for {} visible ones", a.len(), gt.len());
                return Err(LayoutError::Sequence { seq: name, what });
            }
        }
        Ok(Self { kind, name, dir: dir.into(), rgb, aux, gt, gt_aux })
    }

    /// Frames of the sequence (ground-truth boxes; as many as images when opened to run).
    pub fn len(&self) -> usize {
        self.gt.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gt.is_empty()
    }

    /// The box the tracker starts from: the first frame's ground truth.
    pub fn init_box(&self) -> Result<BoxXywh, LayoutError> {
        let g = self.gt.first().copied().unwrap_or([f32::NAN; 4]);
        let b = BoxXywh::new(g[0] as f64, g[1] as f64, g[2] as f64, g[3] as f64);
        if !b.is_finite() || b.w <= 0.0 || b.h <= 0.0 {
            return Err(LayoutError::Sequence {
                seq: self.name.clone(),
                what: format!("no valid box in frame 1: {g:?}"),
            });
        }
        Ok(b)
    }

    /// The image size `(width, height)` of the first RGB frame.
    pub fn image_size(&self) -> Result<(u32, u32), LayoutError> {
        let path = self.rgb.first().ok_or_else(|| LayoutError::Sequence {
            seq: self.name.clone(),
            what: format!(
                "no {} images in {}, so the image size is unknown",
                self.kind.image_dirs().0,
                self.dir.display()
            ),
        })?;
        image::image_dimensions(path)
            .map_err(|e| DatasetError::Image { path: path.clone(), cause: crate::sensor::DecodeError::Codec(e) }.into())
    }

    /// Frame `i` as the tracker's 6-channel frame, through the node's own preparation path (depth
    /// colour-mapped, 16-bit thermal/event scaled, aux resized onto the RGB grid).
    pub fn frame(&self, i: usize) -> Result<ImageU8, LayoutError> {
        let (rgb_path, aux_path) = match (self.rgb.get(i), self.aux.get(i)) {
            (Some(r), Some(a)) => (r, a),
            _ => return Err(LayoutError::Sequence { seq: self.name.clone(), what: format!("no frame {i}") }),
        };
        let rgb = sensor::prepare_rgb(dataset::load_decoded(rgb_path)?)
            .map_err(|source| LayoutError::Prepare { path: rgb_path.clone(), source })?;
        let aux = dataset::load_decoded(aux_path)?;
        sensor::prepare_frame(&rgb, aux, self.kind.modality(), &AuxConfig::default())
            .map_err(|source| LayoutError::Prepare { path: aux_path.clone(), source })
    }
}

/// All sequences under `root`, in name order.
pub fn list_sequences(kind: DatasetKind, root: &Path) -> Result<Vec<BenchSequence>, LayoutError> {
    let rd = std::fs::read_dir(root).map_err(|source| LayoutError::Io { path: root.into(), source })?;
    let (rgb_dir, aux_dir) = kind.image_dirs();
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(rgb_dir).is_dir() && p.join(aux_dir).is_dir())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(LayoutError::NoSequences(root.into()));
    }
    dirs.iter().map(|d| BenchSequence::open(kind, d)).collect()
}

/// All sequences under `root` that have ground truth, in name order, for scoring results:
/// image folders are not needed.
pub fn list_ground_truth(kind: DatasetKind, root: &Path) -> Result<Vec<BenchSequence>, LayoutError> {
    let rd = std::fs::read_dir(root).map_err(|source| LayoutError::Io { path: root.into(), source })?;
    let mut dirs: Vec<PathBuf> =
        rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir() && has_ground_truth(kind, p)).collect();
    dirs.sort();
    if dirs.is_empty() {
        let files = ground_truth_files(kind).iter().map(|alt| alt.join(" or ")).collect::<Vec<_>>().join(" and ");
        return Err(LayoutError::NoGroundTruth { root: root.into(), files });
    }
    dirs.iter().map(|d| BenchSequence::open_ground_truth(kind, d)).collect()
}

/// One frame's tracker output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameResult {
    pub bbox: BoxXywh,
    /// Confidence in [0, 1]; the initial frame has none.
    pub score: Option<f32>,
    /// Seconds spent on the frame.
    pub time_s: f64,
}

/// Where a sequence's raw result lives under a tracker's result folder.
pub fn result_path(kind: DatasetKind, results_dir: &Path, seq: &str) -> PathBuf {
    result_path_prefixed(kind, results_dir, seq, "")
}

/// [`result_path`] for box files named `<prefix><seq>.txt`, as published raw results often are
/// (e.g. `APFNet_car.txt`); the VOT long-term layout has no prefix.
pub fn result_path_prefixed(kind: DatasetKind, results_dir: &Path, seq: &str, prefix: &str) -> PathBuf {
    if kind.is_long_term() {
        results_dir.join("longterm").join(seq).join(format!("{seq}_001.txt"))
    } else {
        results_dir.join(format!("{prefix}{seq}.txt"))
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), LayoutError> {
    let io = |source| LayoutError::Io { path: path.into(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Written under a temporary name and renamed, so an interrupted run never leaves a partial
    // file that the resume logic would take as finished.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes one sequence's raw result in the benchmark's format. For DepthTrack the box file is
/// written last, since its presence marks the sequence finished.
pub fn write_result(
    kind: DatasetKind,
    results_dir: &Path,
    seq: &str,
    frames: &[FrameResult],
) -> Result<(), LayoutError> {
    let path = result_path(kind, results_dir, seq);
    let fmt_box = |b: &BoxXywh| format!("{:.4},{:.4},{:.4},{:.4}", b.x, b.y, b.w, b.h);
    if kind.is_long_term() {
        let dir = results_dir.join("longterm").join(seq);
        let mut boxes = String::new();
        let mut conf = String::new();
        let mut time = String::new();
        for (i, f) in frames.iter().enumerate() {
            // VOT: the initialisation frame is the special region 1 with no confidence.
            boxes.push_str(&if i == 0 { "1".to_string() } else { fmt_box(&f.bbox) });
            boxes.push('\n');
            if let (false, Some(s)) = (i == 0, f.score) {
                conf.push_str(&format!("{s:.6}"));
            }
            conf.push('\n');
            time.push_str(&format!("{:.6}\n", f.time_s));
        }
        write_atomic(&dir.join(format!("{seq}_001_confidence.value")), &conf)?;
        write_atomic(&dir.join(format!("{seq}_001_time.value")), &time)?;
        write_atomic(&path, &boxes)
    } else {
        let text: String = frames.iter().map(|f| fmt_box(&f.bbox) + "\n").collect();
        write_atomic(&path, &text)
    }
}

/// Reads a box-file raw result (`<prefix><seq>.txt`) in `format`, as `x,y,w,h` rounded as the
/// `rgbt` toolkit rounds results.
pub fn read_boxes_result(
    kind: DatasetKind,
    results_dir: &Path,
    seq: &str,
    prefix: &str,
    format: ResultFormat,
) -> Result<Vec<Rect32>, LayoutError> {
    Ok(boxfile::read_result(&result_path_prefixed(kind, results_dir, seq, prefix), format)?)
}

/// Reads a VOT long-term run (regions and confidences).
pub fn read_long_term_result(results_dir: &Path, seq: &str) -> Result<(Vec<Region>, Vec<f64>), LayoutError> {
    let dir = results_dir.join("longterm").join(seq);
    let read = |path: PathBuf| -> Result<String, LayoutError> {
        std::fs::read_to_string(&path).map_err(|source| LayoutError::Io { path, source })
    };
    let boxes_path = dir.join(format!("{seq}_001.txt"));
    let conf_path = dir.join(format!("{seq}_001_confidence.value"));
    let regions = longterm::parse_regions(&read(boxes_path.clone())?)
        .map_err(|source| LayoutError::LongTerm { path: boxes_path, source })?;
    let conf = longterm::parse_confidences(&read(conf_path.clone())?)
        .map_err(|source| LayoutError::LongTerm { path: conf_path, source })?;
    Ok((regions, conf))
}

/// Ground truth as VOT regions (NaN rows are the absent target).
pub fn gt_regions(seq: &BenchSequence) -> Vec<Region> {
    seq.gt
        .iter()
        .map(|g| if g.iter().any(|v| v.is_nan()) { Region::Special(0.0) } else { Region::Rect(g.map(|v| v as f64)) })
        .collect()
}
