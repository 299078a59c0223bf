//! Image files on disk: folder listing and decoding into the sensor path's image types. The
//! benchmark layouts built on them are in [`crate::eval::layout`].

use std::path::{Path, PathBuf};

use std::io::Read;

use crate::sensor::decode::{decode_encoded, DecodeError};
use crate::sensor::DecodedImage;

/// Largest image file read, in bytes. Encoded images are far smaller than their pixels, and
/// the pixels are bounded by [`crate::sensor::decode::MAX_PIXEL_BYTES`].
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Errors reading sequences. Each message names the file and states the cause once.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {cause}")]
    Image { path: PathBuf, cause: DecodeError },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} has {bytes} bytes, over the {MAX_IMAGE_FILE_BYTES}-byte limit for an image file")]
    FileTooLarge { path: PathBuf, bytes: u64 },
}

/// The image files of a folder (png, jpg, jpeg; bmp as VisEvent ships them), sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let rd = std::fs::read_dir(dir).map_err(|cause| DatasetError::Io { path: dir.into(), cause })?;
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
/// Decoded through [`crate::sensor::decode::decode_encoded`], with the camera path's limits.
pub fn load_decoded(path: &Path) -> Result<DecodedImage, DatasetError> {
    let io = |cause| DatasetError::Io { path: path.into(), cause };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(DatasetError::NotAFile { path: path.into() });
    }
    if meta.len() > MAX_IMAGE_FILE_BYTES {
        return Err(DatasetError::FileTooLarge { path: path.into(), bytes: meta.len() });
    }
    let mut bytes = Vec::new();
    file.take(MAX_IMAGE_FILE_BYTES).read_to_end(&mut bytes).map_err(io)?;
    decode_encoded(&bytes).map_err(|cause| DatasetError::Image { path: path.into(), cause })
}
