//! Crop, resize and normalise on the GPU from one upload of the rows the crop covers.
//!
//! Same window as the CPU path ([`crop_window`]); the resize is PyTorch's bilinear interpolation
//! with half-pixel centres, which is what OpenCV's `INTER_LINEAR` computes up to its 11-bit
//! fixed-point rounding (within 1 grey level); for an exact 2x downscale it averages each 2x2
//! block, as OpenCV's `INTER_AREA` switch does. The result is rounded to uint8 values before
//! normalising, as the CPU path's patch is.

use tch::{Device, Kind, Tensor};

use super::preprocess::{crop_window, PreprocessError, IMAGENET_MEAN, IMAGENET_STD};
use super::BoxXywh;
use crate::sensor::ImageU8;

/// The normalised (1, C, out, out) crop on `device`, with the crop size and resize factor.
pub fn crop_normalize(
    frame: &ImageU8,
    bbox: BoxXywh,
    factor: f64,
    out: usize,
    device: Device,
) -> Result<(Tensor, usize, f64), PreprocessError> {
    let w = crop_window(bbox.to_array(), factor, frame.width, frame.height)?;
    let (c, fw) = (frame.channels as i64, frame.width as i64);
    let crop = w.crop_size_px as i64;
    // The frame region the crop copies (the rest is zero padding).
    let x0 = w.x1_px + w.pad_left_px as i64;
    let y0 = w.y1_px + w.pad_top_px as i64;
    let x1 = w.x1_px + crop - w.pad_right_px as i64;
    let y1 = w.y1_px + crop - w.pad_bottom_px as i64;
    let region = if x1 > x0 && y1 > y0 {
        // Only the rows the crop covers travel to the device (a contiguous part of the frame).
        let inconsistent = || PreprocessError::InconsistentImage {
            width: frame.width,
            height: frame.height,
            channels: frame.channels,
            len: frame.data.len(),
        };
        let rows = frame.data.get((y0 * fw * c) as usize..(y1 * fw * c) as usize).ok_or_else(inconsistent)?;
        let rows = Tensor::f_from_slice(rows)?.f_view([y1 - y0, fw, c])?.f_to_device(device)?;
        rows.narrow(1, x0, x1 - x0)
    } else {
        Tensor::zeros([0, 0, c], (Kind::Uint8, device))
    };
    // (h, w, C) u8 -> (1, C, crop, crop) f32 with zero padding.
    let chw = region.permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float);
    let padded = if region.numel() == 0 {
        Tensor::zeros([1, c, crop, crop], (Kind::Float, device))
    } else {
        chw.constant_pad_nd([w.pad_left_px as i64, w.pad_right_px as i64, w.pad_top_px as i64, w.pad_bottom_px as i64])
    };
    let o = out as i64;
    let resized = if crop == o {
        padded
    } else {
        padded.upsample_bilinear2d([o, o], false, None, None).round().clamp(0.0, 255.0)
    };
    // The ImageNet statistics apply to every 3-channel group.
    let stats = |s: &[f32; 3]| {
        let v: Vec<f32> = (0..frame.channels).map(|k| s[k % 3]).collect();
        Tensor::from_slice(&v).to_device(device).view([1, c, 1, 1])
    };
    let (mean, std) = (stats(&IMAGENET_MEAN), stats(&IMAGENET_STD));
    let normalised = (resized / 255.0 - mean) / std;
    Ok((normalised, w.crop_size_px, out as f64 / w.crop_size_px as f64))
}
