//! Image sequences on disk. The LasHeR / RGBT234 layout: `visible/` and `infrared/` image
//! folders (files sorted by name), the first box in `init.txt`, ground truth per frame in
//! `visible.txt` (and `infrared.txt`), one `x,y,w,h` line per frame (commas, tabs or spaces).

use std::path::{Path, PathBuf};

use crate::sensor::{DecodedImage, ImageU16, ImageU8};
use crate::tracker::BoxXywh;

/// Errors reading sequences.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}: not a sequence folder (expected visible/ and infrared/ image folders)")]
    Layout(PathBuf),
    #[error("{path}: {n_rgb} RGB images but {n_aux} aux images")]
    Count { path: PathBuf, n_rgb: usize, n_aux: usize },
    #[error("{path} line {line}: expected 4 numbers x,y,w,h, got {text:?}")]
    BoxLine { path: PathBuf, line: usize, text: String },
    #[error("{path}: {source}")]
    Image { path: PathBuf, source: image::ImageError },
    #[error("{path}: image is {w}x{h}, expected {ew}x{eh} like the first RGB frame")]
    Size { path: PathBuf, w: u32, h: u32, ew: usize, eh: usize },
}

/// One RGB-X sequence.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub name: String,
    pub rgb: Vec<PathBuf>,
    pub aux: Vec<PathBuf>,
    /// The first frame's box.
    pub init: BoxXywh,
    /// Ground truth per frame, when present.
    pub ground_truth: Option<Vec<BoxXywh>>,
}

fn images_in(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let rd = std::fs::read_dir(dir).map_err(|source| DatasetError::Io { path: dir.into(), source })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg" | "bmp"))
                .unwrap_or(false)
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Parses `x,y,w,h` lines (commas, tabs or spaces); blank lines are skipped.
pub fn read_boxes(path: &Path) -> Result<Vec<BoxXywh>, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io { path: path.into(), source })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Vec<f64> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| DatasetError::BoxLine { path: path.into(), line: i + 1, text: line.into() })?;
        if v.len() != 4 {
            return Err(DatasetError::BoxLine { path: path.into(), line: i + 1, text: line.into() });
        }
        out.push(BoxXywh::new(v[0], v[1], v[2], v[3]));
    }
    Ok(out)
}

impl Sequence {
    /// Opens a sequence folder in the LasHeR layout.
    pub fn open_rgbt(dir: &Path) -> Result<Self, DatasetError> {
        let (vis, inf) = (dir.join("visible"), dir.join("infrared"));
        if !vis.is_dir() || !inf.is_dir() {
            return Err(DatasetError::Layout(dir.into()));
        }
        let (rgb, aux) = (images_in(&vis)?, images_in(&inf)?);
        if rgb.len() != aux.len() || rgb.is_empty() {
            return Err(DatasetError::Count { path: dir.into(), n_rgb: rgb.len(), n_aux: aux.len() });
        }
        let gt_path = dir.join("visible.txt");
        let ground_truth = if gt_path.is_file() { Some(read_boxes(&gt_path)?) } else { None };
        let init_path = dir.join("init.txt");
        let init = if init_path.is_file() {
            read_boxes(&init_path)?.first().copied()
        } else {
            ground_truth.as_ref().and_then(|g| g.first().copied())
        }
        .ok_or(DatasetError::BoxLine { path: init_path, line: 1, text: String::new() })?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self { name, rgb, aux, init, ground_truth })
    }

    pub fn len(&self) -> usize {
        self.rgb.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rgb.is_empty()
    }

    /// Frame `i` as the tracker's 6-channel image; the aux image is used as RGB (grey replicated)
    /// and must have the RGB image's size.
    pub fn frame(&self, i: usize) -> Result<ImageU8, DatasetError> {
        let rgb = load_rgb(&self.rgb[i])?;
        let aux = load_rgb(&self.aux[i])?;
        if (aux.width, aux.height) != (rgb.width, rgb.height) {
            return Err(DatasetError::Size {
                path: self.aux[i].clone(),
                w: aux.width as u32,
                h: aux.height as u32,
                ew: rgb.width,
                eh: rgb.height,
            });
        }
        Ok(ImageU8::concat_channels(&rgb, &aux).expect("sizes checked"))
    }
}

/// Reads an image file as 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<ImageU8, DatasetError> {
    let img = image::open(path).map_err(|source| DatasetError::Image { path: path.into(), source })?.to_rgb8();
    let (w, h) = img.dimensions();
    Ok(ImageU8::from_vec(w as usize, h as usize, 3, img.into_raw()).expect("rgb8 buffer"))
}

/// Reads an image file in its most faithful form: 8-bit colour, 8-bit grey or 16-bit grey (depth
/// PNGs in millimetres), ready for [`crate::sensor::prepare_rgb`] / [`crate::sensor::prepare_aux`].
pub fn load_decoded(path: &Path) -> Result<DecodedImage, DatasetError> {
    let img = image::open(path).map_err(|source| DatasetError::Image { path: path.into(), source })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let bad = || DatasetError::Image {
        path: path.into(),
        source: image::ImageError::Parameter(image::error::ParameterError::from_kind(
            image::error::ParameterErrorKind::DimensionMismatch,
        )),
    };
    Ok(match img {
        image::DynamicImage::ImageLuma8(g) => {
            DecodedImage::Mono8(ImageU8::from_vec(w, h, 1, g.into_raw()).ok_or_else(bad)?)
        }
        image::DynamicImage::ImageLuma16(g) => {
            DecodedImage::Mono16(ImageU16 { width: w, height: h, data: g.into_raw() })
        }
        other => DecodedImage::Rgb8(ImageU8::from_vec(w, h, 3, other.to_rgb8().into_raw()).ok_or_else(bad)?),
    })
}
