//! The published training sets of the paper's recipe, read as they are distributed, with the
//! official data loaders' rules for which frames hold a usable target (PATrack
//! `lib/train/dataset/{lasher,depthtrack,visevent}.py`, `lib/train/data/sampler.py`):
//!
//! | set | folders | sequence list | usable frame (`visible`) |
//! |---|---|---|---|
//! | LasHeR train | `trainingset/<seq>/{visible,infrared}/`, `init.txt` | `trainingsetList.txt` beside `trainingset/` | `w > 0 && h > 0` |
//! | DepthTrack train | `Train/<seq>/{color,depth}/` (or the sequences themselves), `groundtruth.txt` | every sequence folder | `w > 10 && h > 10` (`nan` rows are not) |
//! | VisEvent train | `<seq>/{vis_imgs,event_imgs}/*.bmp`, `groundtruth.txt`, `absent_label.txt` | `trainlist.txt` | `absent_label == 1 && w > 5 && h > 5` |
//!
//! `--train-list` replaces the set's list with another (the official split files).
//! `--data` may name the set's own folder (`LasHeR/`, holding `trainingset/` and
//! `trainingsetList.txt`; `DepthTrack/` holding `Train/`; `VisEvent/train_subset/` holding
//! `trainlist.txt`) or, for LasHeR, the `trainingset/` folder itself (the official loader's root,
//! the list in its parent). Without a list file every sequence folder is used. As the official
//! sampler does, only sequences with at least 20 frames and more than 4 usable ones are drawn.
//! The per-sequence folders are the benchmark layouts of [`crate::eval::layout`], so RGBT234 and
//! GTOT folders also work (usable: `w > 0 && h > 0`).

use std::path::{Path, PathBuf};

use crate::eval::layout::{BenchSequence, DatasetKind, LayoutError};

/// Errors reading a training set.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{list} names {name}, but {dir} has no such sequence folder")]
    Listed { list: PathBuf, name: String, dir: PathBuf },
    #[error("{path}: line {line}: {what}")]
    AbsentLabel { path: PathBuf, line: usize, what: String },
    #[error("{path}: {labels} labels for {frames} frames")]
    AbsentCount { path: PathBuf, labels: usize, frames: usize },
    #[error("{root}: none of the {found} sequences has 20 frames with more than 4 usable targets")]
    NoUsable { root: PathBuf, found: usize },
}

/// A training sequence and which of its frames hold a usable target.
#[derive(Debug, Clone)]
pub struct TrainingSequence {
    pub seq: BenchSequence,
    pub visible: Vec<bool>,
}

impl TrainingSequence {
    /// The official sampler draws only from sequences with at least 20 frames of which more
    /// than 2 * (1 template + 1 search) hold a usable target.
    pub fn is_usable(&self) -> bool {
        self.visible.len() >= 20 && self.visible.iter().filter(|&&v| v).count() > 4
    }
}

/// A training set as found on disk.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    pub kind: DatasetKind,
    /// The folder holding the sequence folders.
    pub dir: PathBuf,
    /// The list file the sequences came from, if any.
    pub list: Option<PathBuf>,
    /// The sequences the sampler draws from.
    pub sequences: Vec<TrainingSequence>,
    /// Sequences left out for having too few usable frames.
    pub too_short: Vec<String>,
}

impl TrainingSet {
    /// One line for the log: what was read from where.
    pub fn describe(&self) -> String {
        let from = match &self.list {
            Some(l) => format!("listed in {}", l.display()),
            None => "every sequence folder".to_string(),
        };
        let mut s = format!(
            "{} training set: {} sequences in {} ({from})",
            self.kind.name(),
            self.sequences.len(),
            self.dir.display()
        );
        if !self.too_short.is_empty() {
            s.push_str(&format!("; {} left out with fewer than 20 frames or 5 usable targets", self.too_short.len()));
        }
        s
    }
}

/// Where the sequences of `kind`'s training set live under `root`, and their list file.
fn locate(kind: DatasetKind, root: &Path) -> (PathBuf, Option<PathBuf>) {
    let file = |p: PathBuf| p.is_file().then_some(p);
    match kind {
        DatasetKind::Lasher => {
            if root.join("trainingset").is_dir() {
                (root.join("trainingset"), file(root.join("trainingsetList.txt")))
            } else {
                (root.into(), root.parent().and_then(|p| file(p.join("trainingsetList.txt"))))
            }
        }
        DatasetKind::DepthTrack if root.join("Train").is_dir() => (root.join("Train"), None),
        DatasetKind::VisEvent => (root.into(), file(root.join("trainlist.txt"))),
        _ => (root.into(), None),
    }
}

/// Sequence names of a list file: the first comma-separated field of each non-empty line (the
/// official loaders read these files with `csv.reader` / `pandas.read_csv(header=None)`).
pub fn read_list(path: &Path) -> Result<Vec<String>, SplitError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SplitError::Io { path: path.into(), cause })?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(',').next().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned))
        .collect())
}

/// VisEvent's `absent_label.txt`: one 0/1 per frame, 1 where the target is present.
fn read_present(path: &Path, frames: usize) -> Result<Vec<bool>, SplitError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SplitError::Io { path: path.into(), cause })?;
    let mut present = Vec::with_capacity(frames);
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let first = line.split(',').next().unwrap_or("").trim();
        match first.parse::<i64>() {
            Ok(v) => present.push(v == 1),
            Err(_) => {
                let what = format!("`{first}` is not a 0/1 label");
                return Err(SplitError::AbsentLabel { path: path.into(), line: i + 1, what });
            }
        }
    }
    if present.len() != frames {
        return Err(SplitError::AbsentCount { path: path.into(), labels: present.len(), frames });
    }
    Ok(present)
}

/// Which frames hold a usable target, by `kind`'s official rule.
pub fn usable_frames(kind: DatasetKind, seq: &BenchSequence) -> Result<Vec<bool>, SplitError> {
    let min_side = match kind {
        DatasetKind::DepthTrack => 10.0,
        DatasetKind::VisEvent => 5.0,
        _ => 0.0,
    };
    // NaN sides compare false: DepthTrack's `nan` rows are not usable.
    let mut visible: Vec<bool> = seq.gt.iter().map(|g| g[2] > min_side && g[3] > min_side).collect();
    if kind == DatasetKind::VisEvent {
        let present = read_present(&seq.dir.join("absent_label.txt"), visible.len())?;
        for (v, p) in visible.iter_mut().zip(present) {
            *v &= p;
        }
    }
    Ok(visible)
}

/// Reads the training set of `kind` under `root` (see the module documentation).
pub fn open_training_set(kind: DatasetKind, root: &Path) -> Result<TrainingSet, SplitError> {
    open_training_set_listed(kind, root, None)
}

/// As [`open_training_set`], with the sequences named in `list` instead of the set's own list
/// file: e.g. the official code's split files (`lib/train/data_specs/lasher_train.txt`,
/// `depthtrack_train.txt`), which leave out the sequences of its validation split.
pub fn open_training_set_listed(
    kind: DatasetKind,
    root: &Path,
    list: Option<&Path>,
) -> Result<TrainingSet, SplitError> {
    let (dir, own_list) = locate(kind, root);
    let list = list.map(Path::to_path_buf).or(own_list);
    let (rgb_dir, aux_dir) = kind.image_dirs();
    let folders: Vec<PathBuf> = match &list {
        Some(list_path) => read_list(list_path)?
            .into_iter()
            .map(|name| {
                let d = dir.join(&name);
                if d.join(rgb_dir).is_dir() && d.join(aux_dir).is_dir() {
                    Ok(d)
                } else {
                    Err(SplitError::Listed { list: list_path.clone(), name, dir: dir.clone() })
                }
            })
            .collect::<Result<_, _>>()?,
        None => {
            let rd = std::fs::read_dir(&dir).map_err(|cause| SplitError::Io { path: dir.clone(), cause })?;
            let mut d: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join(rgb_dir).is_dir() && p.join(aux_dir).is_dir())
                .collect();
            d.sort();
            d
        }
    };
    if folders.is_empty() {
        return Err(LayoutError::NoSequences(dir).into());
    }
    let found = folders.len();
    let mut sequences = Vec::with_capacity(found);
    let mut too_short = Vec::new();
    for folder in folders {
        let seq = BenchSequence::open(kind, &folder)?;
        let visible = usable_frames(kind, &seq)?;
        let t = TrainingSequence { seq, visible };
        if t.is_usable() {
            sequences.push(t);
        } else {
            too_short.push(t.seq.name.clone());
        }
    }
    if sequences.is_empty() {
        return Err(SplitError::NoUsable { root: dir, found });
    }
    Ok(TrainingSet { kind, dir, list, sequences, too_short })
}
