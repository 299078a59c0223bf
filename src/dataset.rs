//! Image files on disk: folder listing and decoding into the sensor path's image types. The
//! benchmark layouts built on them are in [`crate::eval::layout`].

use std::path::{Path, PathBuf};

use crate::sensor::{DecodedImage, ImageU16, ImageU8};

/// Errors reading sequences.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Image { path: PathBuf, source: image::ImageError },
}

/// The image files of a folder (png, jpg, jpeg, bmp), sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let rd = std::fs::read_dir(dir).map_err(|source| DatasetError::Io { path: dir.into(), source })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg" | "bmp"))
        })
        .collect();
    files.sort();
    Ok(files)
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
