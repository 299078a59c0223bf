//! The target in 3D: a robust distance from the depth pixels inside its box, and the box centre
//! back-projected to that distance in the RGB camera's optical frame.
//!
//! The raw depth image (16UC1 millimetres or 32FC1 metres, REP 118) is read *before* it is
//! colour-mapped for the network, and only where it is needed: each RGB pixel of the central part
//! of the box (`roi_fraction` of its width and height, at most [`MAX_SAMPLES_PER_SIDE`] pixels a
//! side, evenly spread) is mapped through the registration homography (RGB pixel to aux pixel,
//! the same one that registers the frame for the network) and the nearest depth pixel is read.
//! No full-frame warp: a 640x480 frame costs at most 4096 lookups.
//!
//! Zeros, NaN, infinities and values outside `[min_m, max_m]` are no reading. From the valid
//! readings, [`DepthStatistic::Median`] takes the median (robust while the target fills more than
//! half of the sampled area: holes and a minority of background pixels do not move it);
//! [`DepthStatistic::Mode`] takes the densest depth interval ([`MODE_WINDOW_FRACTION`] wide
//! relative to its near end; ties go to the nearer one) and returns the median of the readings in
//! it: the largest surface wins even when background pixels are the majority of no single
//! surface, e.g. a thin target in front of a receding floor.
//!
//! **Registration, not extrinsics.** The depth read through the homography is taken as the
//! distance along the RGB camera's optical axis. That is exact when the depth image is already
//! registered to the RGB camera (RealSense `aligned_depth_to_color`, Orbbec/Azure "depth to
//! colour" modes: the homography is then the identity or a plain resize). For a separate depth
//! camera the homography is a planar approximation and the depth is the depth camera's: the
//! error is about the cameras' offset along the optical axis (millimetres for side-by-side
//! cameras) plus the homography's misregistration off its plane. A true reprojection would need
//! the depth camera's intrinsics and the depth-to-RGB extrinsic (TF), which the node does not use.

use super::camera::{box_to_pixel, CameraError, PinholeIntrinsics};
use super::decode::{ImageF32, ImageU16};
use super::registration::Homography;

/// Most sampled RGB pixels along each side of the box's central part.
pub const MAX_SAMPLES_PER_SIDE: usize = 64;
/// Width of the mode's depth window relative to its near end (4 %: a few times the noise of
/// structured-light and stereo depth at a few metres).
pub const MODE_WINDOW_FRACTION: f64 = 0.04;

/// A raw depth image as the camera delivers it.
#[derive(Debug, Clone, PartialEq)]
pub enum DepthImage {
    /// `16UC1`: millimetres, 0 = no reading.
    Millimetres(ImageU16),
    /// `32FC1`: metres, NaN / 0 / infinity = no reading.
    Metres(ImageF32),
}

impl DepthImage {
    /// (width, height) in pixels.
    pub fn size(&self) -> (usize, usize) {
        match self {
            DepthImage::Millimetres(im) => (im.width, im.height),
            DepthImage::Metres(im) => (im.width, im.height),
        }
    }

    /// The reading at (x, y) in metres; NaN when there is none. The caller keeps (x, y) inside.
    fn metres_at(&self, x: usize, y: usize) -> f64 {
        match self {
            DepthImage::Millimetres(im) => match im.data[y * im.width + x] {
                0 => f64::NAN,
                mm => f64::from(mm) / 1000.0,
            },
            DepthImage::Metres(im) => f64::from(im.data[y * im.width + x]),
        }
    }

    fn is_consistent(&self) -> bool {
        let (w, h) = self.size();
        let len = match self {
            DepthImage::Millimetres(im) => im.data.len(),
            DepthImage::Metres(im) => im.data.len(),
        };
        w.checked_mul(h) == Some(len) && w > 0 && h > 0
    }
}

/// How the distance is taken from the valid readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DepthStatistic {
    Median,
    Mode,
}

/// Settings of the depth estimate (the node's `depth.*` parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthSampling {
    /// Side of the sampled central part relative to the box's, in (0, 1].
    pub roi_fraction: f64,
    /// Valid readings lie in `[min_m, max_m]`.
    pub min_m: f64,
    pub max_m: f64,
    pub statistic: DepthStatistic,
    /// Least share of the sampled pixels with a valid reading; below it there is no estimate.
    pub min_valid_fraction: f64,
}

impl Default for DepthSampling {
    fn default() -> Self {
        Self { roi_fraction: 0.5, min_m: 0.1, max_m: 10.0, statistic: DepthStatistic::Median, min_valid_fraction: 0.1 }
    }
}

/// A box in RGB image coordinates measured from the image's edges (the tracker's convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageBox {
    pub x_px: f64,
    pub y_px: f64,
    pub width_px: f64,
    pub height_px: f64,
}

/// Why there is no distance for a box.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoDepth {
    #[error("the box has no RGB pixel inside the image")]
    Outside,
    #[error("{valid} of {sampled} sampled depth pixels are valid (need {needed_percent:.0} %)")]
    TooFewValid { valid: usize, sampled: usize, needed_percent: f64 },
    #[error("the depth image is inconsistent (its buffer does not match its size)")]
    Inconsistent,
    #[error(transparent)]
    Camera(#[from] CameraError),
}

/// A distance and how it was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthEstimate {
    pub depth_m: f64,
    /// RGB pixels sampled and those with a valid reading.
    pub sampled: usize,
    pub valid: usize,
}

/// The registration that maps RGB pixels to aux pixels, as the frame assembly uses it: the
/// configured homography, else the identity for equal sizes, else the plain resize.
pub fn aux_from_rgb(homography: Option<&Homography>, rgb_size: (usize, usize), aux_size: (usize, usize)) -> Homography {
    match homography {
        Some(h) => *h,
        None if rgb_size == aux_size => Homography::identity(),
        None => Homography::scale_between(rgb_size, aux_size),
    }
}

/// Indices of the pixels (integer at pixel centres) whose centre lies in `[lo, hi]` (box
/// coordinates), inside `0..len`, at most [`MAX_SAMPLES_PER_SIDE`] evenly spread.
fn sample_indices(lo: f64, hi: f64, len: usize) -> Vec<usize> {
    // Pixel i's centre is i + 0.5 in box coordinates.
    let first = (lo - 0.5).ceil().max(0.0);
    let last = (hi - 0.5).floor().min(len as f64 - 1.0);
    // NaN (a NaN box) compares false: no pixels.
    if first.partial_cmp(&last).is_none_or(|o| o == std::cmp::Ordering::Greater) {
        return Vec::new();
    }
    let (first, last) = (first as usize, last as usize);
    let count = last - first + 1;
    if count <= MAX_SAMPLES_PER_SIDE {
        return (first..=last).collect();
    }
    let step = (count - 1) as f64 / (MAX_SAMPLES_PER_SIDE - 1) as f64;
    (0..MAX_SAMPLES_PER_SIDE).map(|k| first + (k as f64 * step).round() as usize).collect()
}

/// The target's distance from the depth pixels of the central part of `bbox` (see the module
/// docs). `rgb_size` is the RGB image's (width, height); `aux_from_rgb` maps RGB pixels to
/// `depth` pixels.
pub fn estimate_depth(
    depth: &DepthImage,
    aux_from_rgb: &Homography,
    rgb_size: (usize, usize),
    bbox: ImageBox,
    sampling: &DepthSampling,
) -> Result<DepthEstimate, NoDepth> {
    if !depth.is_consistent() {
        return Err(NoDepth::Inconsistent);
    }
    let (cx, cy) = (bbox.x_px + 0.5 * bbox.width_px, bbox.y_px + 0.5 * bbox.height_px);
    let (half_w, half_h) = (0.5 * sampling.roi_fraction * bbox.width_px, 0.5 * sampling.roi_fraction * bbox.height_px);
    let xs = sample_indices(cx - half_w, cx + half_w, rgb_size.0);
    let ys = sample_indices(cy - half_h, cy + half_h, rgb_size.1);
    if xs.is_empty() || ys.is_empty() {
        return Err(NoDepth::Outside);
    }
    let (depth_w, depth_h) = depth.size();
    let (max_u, max_v) = (depth_w as f64 - 0.5, depth_h as f64 - 0.5);
    let mut readings = Vec::with_capacity(xs.len() * ys.len());
    for &y in &ys {
        for &x in &xs {
            let Some((u, v)) = aux_from_rgb.map_rgb_to_aux(x as f64, y as f64) else { continue };
            // Nearest depth pixel; points off the depth image have no reading.
            if !((-0.5..max_u).contains(&u) && (-0.5..max_v).contains(&v)) {
                continue;
            }
            let z = depth.metres_at((u + 0.5).floor() as usize, (v + 0.5).floor() as usize);
            if z.is_finite() && z >= sampling.min_m && z <= sampling.max_m {
                readings.push(z);
            }
        }
    }
    let sampled = xs.len() * ys.len();
    let valid = readings.len();
    if valid == 0 || (valid as f64) < sampling.min_valid_fraction * sampled as f64 {
        return Err(NoDepth::TooFewValid { valid, sampled, needed_percent: 100.0 * sampling.min_valid_fraction });
    }
    let depth_m = match sampling.statistic {
        DepthStatistic::Median => median(&mut readings),
        DepthStatistic::Mode => densest_window_median(&mut readings, MODE_WINDOW_FRACTION),
    };
    Ok(DepthEstimate { depth_m, sampled, valid })
}

/// numpy's median (the mean of the middle two for an even count) of a non-empty slice; reorders it.
fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    let (below, mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *mid;
    if n % 2 == 1 {
        upper
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    }
}

/// The median of the readings in the densest interval `[z, z * (1 + fraction)]` (the nearest of
/// equally dense ones). Sorts `values` (non-empty).
fn densest_window_median(values: &mut [f64], fraction: f64) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let (mut best_start, mut best_end) = (0, 0);
    let mut end = 0;
    for start in 0..values.len() {
        let limit = values[start] * (1.0 + fraction);
        end = end.max(start);
        while end < values.len() && values[end] <= limit {
            end += 1;
        }
        if end - start > best_end - best_start {
            (best_start, best_end) = (start, end);
        }
    }
    median(&mut values[best_start..best_end])
}

/// The target in the RGB camera's optical frame (REP 103: x right, y down, z forward), metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target3d {
    /// The box centre back-projected to the estimated distance: a point on the target's visible
    /// surface.
    pub position_m: [f64; 3],
    /// Width and height from the 2D box at that distance; the depth extent, which one view
    /// cannot measure, is taken as the smaller of the two.
    pub size_m: [f64; 3],
    /// Centre of the camera-aligned 3D box whose front face passes through `position_m`.
    pub box_center_m: [f64; 3],
    pub depth: DepthEstimate,
}

/// Everything the 3D step needs besides the box: the depth image, the registration from RGB
/// pixels to its pixels, the RGB image's size and the RGB camera's intrinsics.
#[derive(Debug, Clone, Copy)]
pub struct DepthView<'a> {
    pub depth: &'a DepthImage,
    pub aux_from_rgb: &'a Homography,
    pub rgb_size: (usize, usize),
    pub intrinsics: &'a PinholeIntrinsics,
}

/// The target of `bbox` in 3D (see [`Target3d`]), or why there is none.
pub fn locate_target(view: &DepthView<'_>, bbox: ImageBox, sampling: &DepthSampling) -> Result<Target3d, NoDepth> {
    view.intrinsics.check_image_size(view.rgb_size.0, view.rgb_size.1)?;
    let depth = estimate_depth(view.depth, view.aux_from_rgb, view.rgb_size, bbox, sampling)?;
    let z = depth.depth_m;
    let k = view.intrinsics;
    let (cx, cy) = (bbox.x_px + 0.5 * bbox.width_px, bbox.y_px + 0.5 * bbox.height_px);
    let position_m = k.back_project(box_to_pixel(cx), box_to_pixel(cy), z);
    let (width_m, height_m) = (bbox.width_px * z / k.fx_px, bbox.height_px * z / k.fy_px);
    let extent_m = width_m.min(height_m);
    let [x, y, _] = position_m;
    Ok(Target3d { position_m, size_m: [width_m, height_m, extent_m], box_center_m: [x, y, z + 0.5 * extent_m], depth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::MonoImage;

    fn mm(width: usize, height: usize, f: impl Fn(usize, usize) -> u16) -> DepthImage {
        let data = (0..width * height).map(|i| f(i % width, i / width)).collect();
        DepthImage::Millimetres(MonoImage { width, height, data })
    }

    fn m(width: usize, height: usize, f: impl Fn(usize, usize) -> f32) -> DepthImage {
        let data = (0..width * height).map(|i| f(i % width, i / width)).collect();
        DepthImage::Metres(MonoImage { width, height, data })
    }

    fn b(x: f64, y: f64, w: f64, h: f64) -> ImageBox {
        ImageBox { x_px: x, y_px: y, width_px: w, height_px: h }
    }

    fn est(depth: &DepthImage, bbox: ImageBox, sampling: &DepthSampling) -> Result<DepthEstimate, NoDepth> {
        let size = depth.size();
        estimate_depth(depth, &Homography::identity(), size, bbox, sampling)
    }

    #[test]
    fn the_central_part_is_sampled_pixel_by_pixel() {
        // Box 20..60 x 10..30: centre (40, 20), central half 30..50 x 15..25 -> pixels whose
        // centres lie inside: x 30..=49 (20), y 15..=24 (10).
        let depth = mm(80, 40, |x, y| if (30..50).contains(&x) && (15..25).contains(&y) { 1500 } else { 4000 });
        let e = est(&depth, b(20.0, 10.0, 40.0, 20.0), &DepthSampling::default()).unwrap();
        assert_eq!((e.depth_m, e.sampled, e.valid), (1.5, 200, 200));
        // A larger box is subsampled to 64 x 64 pixels, the last pixel included.
        assert_eq!(sample_indices(0.0, 1000.0, 2000).len(), MAX_SAMPLES_PER_SIDE);
        assert_eq!(sample_indices(0.0, 1000.0, 2000).last(), Some(&999));
        assert_eq!(sample_indices(10.0, 11.0, 100), [10]);
        assert!(sample_indices(10.1, 10.4, 100).is_empty());
        assert!(sample_indices(-50.0, -10.0, 100).is_empty());
    }

    #[test]
    fn holes_nan_and_out_of_range_values_are_ignored() {
        // 16UC1: a third of the pixels are 0 (no reading), some 60000 mm (beyond max_m 10 m).
        let depth = mm(40, 40, |x, y| match (x + 3 * y) % 6 {
            0 | 1 => 0,
            2 => 60000,
            _ => 2000 + (x % 3) as u16,
        });
        let e = est(&depth, b(0.0, 0.0, 40.0, 40.0), &DepthSampling::default()).unwrap();
        assert!((e.depth_m - 2.001).abs() < 1e-12, "{e:?}");
        assert_eq!(e.sampled, 400);
        assert!(e.valid < 250 && e.valid > 150, "{e:?}");
        // 32FC1: NaN, infinities, zeros and negatives are no reading.
        let depth = m(20, 20, |x, _| match x % 5 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => 0.0,
            3 => -1.0,
            _ => 3.25,
        });
        let e = est(&depth, b(0.0, 0.0, 20.0, 20.0), &DepthSampling::default()).unwrap();
        assert_eq!((e.depth_m, e.valid, e.sampled), (3.25, 20, 100));
        // No valid pixel, or too few: no estimate, and the reason says how many.
        let empty = m(20, 20, |_, _| f32::NAN);
        let err = est(&empty, b(0.0, 0.0, 20.0, 20.0), &DepthSampling::default()).unwrap_err();
        assert_eq!(err, NoDepth::TooFewValid { valid: 0, sampled: 100, needed_percent: 10.0 });
        let strict = DepthSampling { min_valid_fraction: 0.25, ..DepthSampling::default() };
        let err = est(&depth, b(0.0, 0.0, 20.0, 20.0), &strict).unwrap_err();
        assert_eq!(err.to_string(), "20 of 100 sampled depth pixels are valid (need 25 %)");
    }

    #[test]
    fn background_inside_the_box_moves_the_median_only_past_half() {
        // A target at 1.2 m covering the left 60 % of the sampled area, a wall at 4 m behind.
        let depth = mm(100, 100, |x, _| if x < 12 { 1200 } else { 4000 });
        let all = DepthSampling { roi_fraction: 1.0, ..DepthSampling::default() };
        let e = est(&depth, b(0.0, 0.0, 20.0, 20.0), &all).unwrap();
        assert_eq!(e.depth_m, 1.2);
        // 40 % target in front of a wall (4.00-4.18 m): the median is on the wall, and so is the
        // mode (the wall is the larger surface) ...
        let depth = mm(100, 100, |x, _| if x < 8 { 1200 } else { 4000 + (x as u16 % 7) * 30 });
        assert_eq!(est(&depth, b(0.0, 0.0, 20.0, 20.0), &all).unwrap().depth_m, 4.03);
        let mode_all = DepthSampling { statistic: DepthStatistic::Mode, ..all };
        assert!(est(&depth, b(0.0, 0.0, 20.0, 20.0), &mode_all).unwrap().depth_m > 4.0);
        // ... but a background spread over depths (a floor receding from 3 to 6 m) is no single
        // surface: the mode finds the target, the median does not.
        let floor = mm(100, 100, |x, y| if x < 8 { 1200 } else { 3000 + (y as u16) * 150 + x as u16 });
        let mode = DepthSampling { statistic: DepthStatistic::Mode, ..all };
        let median = est(&floor, b(0.0, 0.0, 20.0, 20.0), &all).unwrap().depth_m;
        let by_mode = est(&floor, b(0.0, 0.0, 20.0, 20.0), &mode).unwrap().depth_m;
        println!("target 1.2 m on 40 % of the box, floor 3-6 m: median {median} m, mode {by_mode} m");
        assert!(median > 3.0);
        assert_eq!(by_mode, 1.2);
        // The central half of the same box sees only the target when it is centred on it.
        let centred = mm(100, 100, |x, _| if (4..16).contains(&x) { 1200 } else { 4000 });
        assert_eq!(est(&centred, b(0.0, 0.0, 20.0, 20.0), &DepthSampling::default()).unwrap().depth_m, 1.2);
    }

    #[test]
    fn the_mode_prefers_the_nearer_of_two_equal_surfaces() {
        let depth = mm(20, 20, |x, _| if x < 10 { 1500 } else { 2500 });
        let mode = DepthSampling { statistic: DepthStatistic::Mode, roi_fraction: 1.0, ..DepthSampling::default() };
        assert_eq!(est(&depth, b(0.0, 0.0, 20.0, 20.0), &mode).unwrap().depth_m, 1.5);
        // The median of an even count is the mean of the middle two, as numpy's.
        let median = DepthSampling { roi_fraction: 1.0, ..DepthSampling::default() };
        assert_eq!(est(&depth, b(0.0, 0.0, 20.0, 20.0), &median).unwrap().depth_m, 2.0);
    }

    #[test]
    fn depth_is_read_through_the_registration() {
        // A depth image at half resolution, registered by the plain resize: RGB pixel (x, y)
        // reads depth pixel ((x + 0.5) / 2 - 0.5) rounded. The target covers depth columns 5..10,
        // i.e. RGB columns 10..20.
        let depth = mm(40, 30, |x, _| if (5..10).contains(&x) { 900 } else { 3000 });
        let h = aux_from_rgb(None, (80, 60), (40, 30));
        let e = estimate_depth(&depth, &h, (80, 60), b(10.0, 10.0, 10.0, 10.0), &DepthSampling::default()).unwrap();
        assert_eq!(e.depth_m, 0.9);
        // A homography shifting by 20 aux pixels: the same RGB box now reads the wall.
        let shift =
            Homography::from_aux_from_rgb(nalgebra::Matrix3::new(0.5, 0.0, 19.75, 0.0, 0.5, -0.25, 0.0, 0.0, 1.0))
                .unwrap();
        let e = estimate_depth(&depth, &shift, (80, 60), b(10.0, 10.0, 10.0, 10.0), &DepthSampling::default()).unwrap();
        assert_eq!(e.depth_m, 3.0);
        // Sampled pixels that land off the depth image count as sampled, without a reading.
        let far = Homography::from_aux_from_rgb(nalgebra::Matrix3::new(1.0, 0.0, 35.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
            .unwrap();
        let e = estimate_depth(&depth, &far, (80, 60), b(0.0, 0.0, 8.0, 8.0), &DepthSampling::default()).unwrap();
        assert_eq!((e.sampled, e.valid), (16, 12), "columns 2..=5 map to 37..=40, three of them inside");
    }

    #[test]
    fn a_target_is_placed_by_hand_computed_geometry() {
        // fx = fy = 500, principal point at the middle of a 640x480 image. A 50x100 px box
        // centred 100 px right of and 50 px below the middle, its centre part at 2 m:
        // x = 100 * 2 / 500 = 0.4, y = 50 * 2 / 500 = 0.2; width 50 * 2 / 500 = 0.2 m,
        // height 0.4 m, depth extent 0.2 m, so the box centre is at z = 2.1.
        let k = PinholeIntrinsics::from_k(&[500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0], 640, 480).unwrap();
        let depth = mm(640, 480, |_, _| 2000);
        let h = Homography::identity();
        let view = DepthView { depth: &depth, aux_from_rgb: &h, rgb_size: (640, 480), intrinsics: &k };
        let t = locate_target(&view, b(395.0, 240.0, 50.0, 100.0), &DepthSampling::default()).unwrap();
        assert_eq!(t.position_m, [0.4, 0.2, 2.0]);
        assert_eq!(t.size_m, [0.2, 0.4, 0.2]);
        assert_eq!(t.box_center_m, [0.4, 0.2, 2.1]);
        // The image is not the calibrated one: refused, with both sizes.
        let view = DepthView { rgb_size: (1280, 960), ..view };
        let err = locate_target(&view, b(395.0, 240.0, 50.0, 100.0), &DepthSampling::default()).unwrap_err();
        assert!(matches!(err, NoDepth::Camera(CameraError::SizeMismatch { .. })), "{err}");
    }
}
