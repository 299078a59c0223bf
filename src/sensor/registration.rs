//! Registration of the auxiliary camera (thermal, depth, event) into the RGB image geometry.
//!
//! The tracker needs the two images pixel-aligned: channel 3-5 of pixel (x, y) must look at the
//! same scene point as channels 0-2. Datasets such as LasHeR, DepthTrack or VisEvent ship
//! registered pairs; on a robot the two cameras differ, and a planar homography is the usual
//! approximation (exact for a distant scene or a shared optical centre).
//!
//! **Convention.** A [`Homography`] stores `aux_from_rgb`: it maps homogeneous RGB pixel
//! coordinates `(x, y, 1)` to aux pixel coordinates, with integer coordinates at pixel centres
//! (the OpenCV convention). That is the direction needed for sampling: every output (RGB-grid)
//! pixel looks up where it lies in the aux image.
//!
//! **Obtaining H.** From a stereo calibration of the two cameras (for a scene plane at depth d,
//! `H = K_aux (R - t nᵀ / d) K_rgb⁻¹`), or from four or more point correspondences clicked in
//! both images: [`Homography::from_correspondences`] solves the exact 4-point case;
//! `cv2.findHomography(rgb_pts, aux_pts)` gives a robust least-squares `aux_from_rgb` for more
//! points (swap the arguments and use [`Homography::from_rgb_from_aux`] if you have the other
//! direction).

use nalgebra::{Matrix3, SMatrix, SVector, Vector3};

use super::decode::{MAX_PIXEL_BYTES, MAX_SIDE_PX};
use super::ImageU8;

/// Errors of the registration step.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("homography has non-finite entries")]
    NonFinite,
    #[error("homography is singular")]
    Singular,
    #[error(
        "homography is near-singular or of extreme scale: acting on coordinates in units of \
         {NOMINAL_SIDE_PX} px, its condition number is {condition:.3e} (limit {MAX_CONDITION:e})"
    )]
    IllConditioned { condition: f64 },
    #[error(
        "homography maps the whole {rgb_width}x{rgb_height} RGB image outside the {aux_width}x{aux_height} \
         aux image (the aux stream would be ignored)"
    )]
    NoOverlap { rgb_width: usize, rgb_height: usize, aux_width: usize, aux_height: usize },
    #[error("homography sends part of the RGB image to infinity (its horizon crosses the image)")]
    CrossesHorizon,
    #[error(
        "homography scales areas by {relative_scale:.3e} times the plain resize between the images \
         somewhere in the RGB image (accepted: 1/{MAX_RELATIVE_AREA_SCALE} to {MAX_RELATIVE_AREA_SCALE})"
    )]
    AreaScale { relative_scale: f64 },
    #[error("point correspondences are degenerate (three of the four points are collinear?)")]
    Degenerate,
    #[error("output size {width}x{height}x{channels} is zero or over the limits")]
    BadOutputSize { width: usize, height: usize, channels: usize },
    #[error("image buffer of {len} bytes does not match its {width}x{height}x{channels} header")]
    InconsistentImage { width: usize, height: usize, channels: usize, len: usize },
}

/// Pixel unit of the conditioning check: a homography is judged as it acts on coordinates in
/// units of this many pixels, so a translation by hundreds of pixels is not "ill-conditioned".
pub const NOMINAL_SIDE_PX: f64 = 1000.0;
/// Largest condition number (largest / smallest singular value) of the homography in nominal
/// units. Camera-to-camera homographies are below 100 (a 10x zoom with a 2000 px shift: about
/// 20); beyond this the matrix is numerically singular or scales by orders of magnitude.
pub const MAX_CONDITION: f64 = 1e6;
/// Widest accepted local area scale of the mapping relative to the plain resize between the two
/// images (thermal cameras of a tenth the resolution are still 1).
pub const MAX_RELATIVE_AREA_SCALE: f64 = 100.0;

/// A planar homography mapping RGB pixel coordinates to aux pixel coordinates (see module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Homography {
    aux_from_rgb: Matrix3<f64>,
}

impl Homography {
    /// The identity: both images share one pixel grid.
    pub fn identity() -> Self {
        Self { aux_from_rgb: Matrix3::identity() }
    }

    /// Wraps a matrix that maps RGB pixel coordinates to aux pixel coordinates. Refuses
    /// non-finite, singular and near-singular or huge matrices (judged in units of
    /// [`NOMINAL_SIDE_PX`]; see [`MAX_CONDITION`]).
    pub fn from_aux_from_rgb(aux_from_rgb: Matrix3<f64>) -> Result<Self, RegistrationError> {
        if !aux_from_rgb.iter().all(|v| v.is_finite()) {
            return Err(RegistrationError::NonFinite);
        }
        if aux_from_rgb.determinant() == 0.0 {
            return Err(RegistrationError::Singular);
        }
        // In nominal units: T H T^-1 with T = diag(1/s, 1/s, 1).
        let s = NOMINAL_SIDE_PX;
        let t = Matrix3::new(1.0 / s, 0.0, 0.0, 0.0, 1.0 / s, 0.0, 0.0, 0.0, 1.0);
        let t_inv = Matrix3::new(s, 0.0, 0.0, 0.0, s, 0.0, 0.0, 0.0, 1.0);
        let nominal = t * aux_from_rgb * t_inv;
        let sv = nominal.singular_values();
        let (largest_sv, smallest_sv) = (sv.max(), sv.min());
        let condition = if smallest_sv > 0.0 { largest_sv / smallest_sv } else { f64::INFINITY };
        if condition.is_nan() || condition > MAX_CONDITION {
            return Err(RegistrationError::IllConditioned { condition });
        }
        Ok(Self { aux_from_rgb })
    }

    /// Checks the homography against the two images' sizes: no point of the RGB image may be
    /// sent to infinity, some of it must land inside the aux image, and the local area scale
    /// must stay within [`MAX_RELATIVE_AREA_SCALE`] of the plain resize between the images.
    /// Otherwise the aux half of every frame would be black or a smear of a few aux pixels, and
    /// the tracker would silently run on RGB alone.
    pub fn check_against(&self, rgb_size: (usize, usize), aux_size: (usize, usize)) -> Result<(), RegistrationError> {
        const GRID: usize = 9;
        let (rgb_w, rgb_h) = (rgb_size.0.max(1) as f64, rgb_size.1.max(1) as f64);
        let (aux_w, aux_h) = (aux_size.0.max(1) as f64, aux_size.1.max(1) as f64);
        let resize_area = (aux_w * aux_h) / (rgb_w * rgb_h);
        let m = &self.aux_from_rgb;
        let points: Vec<Vector3<f64>> = (0..GRID * GRID)
            .map(|k| {
                let x = -0.5 + rgb_w * (k % GRID) as f64 / (GRID - 1) as f64;
                let y = -0.5 + rgb_h * (k / GRID) as f64 / (GRID - 1) as f64;
                m * Vector3::new(x, y, 1.0)
            })
            .collect();
        let all_ahead = points.iter().all(|p| p.z > 0.0);
        let all_behind = points.iter().all(|p| p.z < 0.0);
        if !(all_ahead || all_behind) {
            return Err(RegistrationError::CrossesHorizon);
        }
        let mut inside = 0;
        for p in &points {
            let (u, v) = (p.x / p.z, p.y / p.z);
            if (-0.5..=aux_w - 0.5).contains(&u) && (-0.5..=aux_h - 0.5).contains(&v) {
                inside += 1;
            }
            // Local area scale of a homography: det(H) / w^3.
            let relative_scale = (m.determinant() / p.z.powi(3)).abs() / resize_area;
            if !(relative_scale.is_finite()
                && (1.0 / MAX_RELATIVE_AREA_SCALE..=MAX_RELATIVE_AREA_SCALE).contains(&relative_scale))
            {
                return Err(RegistrationError::AreaScale { relative_scale });
            }
        }
        if inside == 0 {
            return Err(RegistrationError::NoOverlap {
                rgb_width: rgb_size.0,
                rgb_height: rgb_size.1,
                aux_width: aux_size.0,
                aux_height: aux_size.1,
            });
        }
        Ok(())
    }

    /// Builds the homography from a matrix in the opposite direction (aux pixel coordinates to
    /// RGB pixel coordinates) by inverting it.
    pub fn from_rgb_from_aux(rgb_from_aux: Matrix3<f64>) -> Result<Self, RegistrationError> {
        if !rgb_from_aux.iter().all(|v| v.is_finite()) {
            return Err(RegistrationError::NonFinite);
        }
        let inverse = rgb_from_aux.try_inverse().ok_or(RegistrationError::Singular)?;
        Self::from_aux_from_rgb(inverse)
    }

    /// The plain resize between two pixel grids of different sizes covering the same field of
    /// view, with pixel centres aligned as in OpenCV's `resize` (`u = (x + 0.5) * sx - 0.5`).
    pub fn scale_between(rgb_size: (usize, usize), aux_size: (usize, usize)) -> Self {
        let sx = aux_size.0 as f64 / rgb_size.0.max(1) as f64;
        let sy = aux_size.1 as f64 / rgb_size.1.max(1) as f64;
        let m = Matrix3::new(sx, 0.0, 0.5 * sx - 0.5, 0.0, sy, 0.5 * sy - 0.5, 0.0, 0.0, 1.0);
        Self { aux_from_rgb: m }
    }

    /// Exact homography through four correspondences `rgb_px[i] -> aux_px[i]` (pixel
    /// coordinates, x then y). Uses Hartley normalisation for numerical conditioning.
    pub fn from_correspondences(rgb_px: &[[f64; 2]; 4], aux_px: &[[f64; 2]; 4]) -> Result<Self, RegistrationError> {
        if !rgb_px.iter().chain(aux_px.iter()).flatten().all(|v| v.is_finite()) {
            return Err(RegistrationError::NonFinite);
        }
        let t_rgb = normalising_transform(rgb_px).ok_or(RegistrationError::Degenerate)?;
        let t_aux = normalising_transform(aux_px).ok_or(RegistrationError::Degenerate)?;
        let mut a = SMatrix::<f64, 8, 8>::zeros();
        let mut b = SVector::<f64, 8>::zeros();
        for (i, (p, q)) in rgb_px.iter().zip(aux_px.iter()).enumerate() {
            let p = t_rgb * Vector3::new(p[0], p[1], 1.0);
            let q = t_aux * Vector3::new(q[0], q[1], 1.0);
            let (x, y, u, v) = (p.x, p.y, q.x, q.y);
            // u = (h0 x + h1 y + h2) / (h6 x + h7 y + 1), likewise v with h3..h5.
            let r = 2 * i;
            a.row_mut(r).copy_from_slice(&[x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y]);
            a.row_mut(r + 1).copy_from_slice(&[0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y]);
            b[r] = u;
            b[r + 1] = v;
        }
        let h = a.lu().solve(&b).ok_or(RegistrationError::Degenerate)?;
        let normalised = Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0);
        let t_aux_inv = t_aux.try_inverse().ok_or(RegistrationError::Degenerate)?;
        let m = t_aux_inv * normalised * t_rgb;
        Self::from_aux_from_rgb(m / m[(2, 2)]).map_err(|_| RegistrationError::Degenerate)
    }

    /// The matrix mapping RGB pixel coordinates to aux pixel coordinates.
    pub fn aux_from_rgb(&self) -> Matrix3<f64> {
        self.aux_from_rgb
    }

    /// Where RGB pixel (x, y) lies in the aux image; `None` at infinity.
    pub fn map_rgb_to_aux(&self, x_px: f64, y_px: f64) -> Option<(f64, f64)> {
        let p = self.aux_from_rgb * Vector3::new(x_px, y_px, 1.0);
        let (u, v) = (p.x / p.z, p.y / p.z);
        (u.is_finite() && v.is_finite()).then_some((u, v))
    }
}

/// Similarity that moves the points' centroid to the origin and their mean distance to sqrt(2).
fn normalising_transform(points: &[[f64; 2]; 4]) -> Option<Matrix3<f64>> {
    let n = points.len() as f64;
    let cx = points.iter().map(|p| p[0]).sum::<f64>() / n;
    let cy = points.iter().map(|p| p[1]).sum::<f64>() / n;
    let mean_dist = points.iter().map(|p| (p[0] - cx).hypot(p[1] - cy)).sum::<f64>() / n;
    if !(mean_dist > 0.0 && mean_dist.is_finite()) {
        return None;
    }
    let s = std::f64::consts::SQRT_2 / mean_dist;
    Some(Matrix3::new(s, 0.0, -s * cx, 0.0, s, -s * cy, 0.0, 0.0, 1.0))
}

/// Warps `aux` onto an `rgb_width` x `rgb_height` grid: output pixel (x, y) takes the bilinear
/// sample of `aux` at `homography.map_rgb_to_aux(x, y)`.
///
/// Samples that fall inside the aux image's pixel area (`-0.5 ..= size - 0.5`) interpolate
/// between the nearest pixels, with taps clamped to the border so that a plain resize does not
/// darken the edges; samples outside it are zero (black), as the tracker's own crop padding is.
pub fn warp_to_rgb(
    aux: &ImageU8,
    rgb_width: usize,
    rgb_height: usize,
    homography: &Homography,
) -> Result<ImageU8, RegistrationError> {
    if !aux.is_consistent() || aux.width == 0 || aux.height == 0 {
        return Err(RegistrationError::InconsistentImage {
            width: aux.width,
            height: aux.height,
            channels: aux.channels,
            len: aux.data.len(),
        });
    }
    let channels = aux.channels;
    let out_len = rgb_width.checked_mul(rgb_height).and_then(|n| n.checked_mul(channels));
    let side_ok =
        rgb_width > 0 && rgb_height > 0 && rgb_width <= MAX_SIDE_PX as usize && rgb_height <= MAX_SIDE_PX as usize;
    let out_len = match out_len {
        Some(n) if side_ok && (n as u64) <= MAX_PIXEL_BYTES => n,
        _ => return Err(RegistrationError::BadOutputSize { width: rgb_width, height: rgb_height, channels }),
    };
    let mut out = vec![0u8; out_len];
    let (max_u, max_v) = (aux.width as f64 - 0.5, aux.height as f64 - 0.5);
    let (last_x, last_y) = (aux.width - 1, aux.height - 1);
    let row_stride = aux.width * channels;
    for (y, out_row) in out.chunks_exact_mut(rgb_width * channels).enumerate() {
        for (x, out_px) in out_row.chunks_exact_mut(channels).enumerate() {
            let Some((u, v)) = homography.map_rgb_to_aux(x as f64, y as f64) else {
                continue;
            };
            if !(-0.5..=max_u).contains(&u) || !(-0.5..=max_v).contains(&v) {
                continue;
            }
            let (u0, v0) = (u.floor(), v.floor());
            let (fu, fv) = ((u - u0) as f32, (v - v0) as f32);
            // u0 >= -1 here, so the casts are in range; clamping keeps the taps inside the image.
            let x0 = (u0.max(0.0) as usize).min(last_x);
            let x1 = ((u0 + 1.0).max(0.0) as usize).min(last_x);
            let y0 = (v0.max(0.0) as usize).min(last_y);
            let y1 = ((v0 + 1.0).max(0.0) as usize).min(last_y);
            let (r0, r1) = (y0 * row_stride, y1 * row_stride);
            for (c, o) in out_px.iter_mut().enumerate() {
                let p = |row: usize, col: usize| f32::from(aux.data[row + col * channels + c]);
                let top = p(r0, x0) + fu * (p(r0, x1) - p(r0, x0));
                let bottom = p(r1, x0) + fu * (p(r1, x1) - p(r1, x0));
                let value = top + fv * (bottom - top);
                *o = (value + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(ImageU8 { width: rgb_width, height: rgb_height, channels, data: out })
}

/// Brings `aux` into the RGB pixel grid: through `homography` when given; otherwise unchanged
/// when the sizes already agree, or by a plain bilinear resize ([`Homography::scale_between`]).
pub fn register_to_rgb(
    aux: &ImageU8,
    rgb_width: usize,
    rgb_height: usize,
    homography: Option<&Homography>,
) -> Result<ImageU8, RegistrationError> {
    match homography {
        Some(h) => {
            h.check_against((rgb_width, rgb_height), (aux.width, aux.height))?;
            warp_to_rgb(aux, rgb_width, rgb_height, h)
        }
        None if aux.width == rgb_width && aux.height == rgb_height && aux.is_consistent() => Ok(aux.clone()),
        None => {
            let h = Homography::scale_between((rgb_width, rgb_height), (aux.width, aux.height));
            warp_to_rgb(aux, rgb_width, rgb_height, &h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3-channel test pattern whose channels differ, so channel mix-ups show.
    fn pattern(width: usize, height: usize) -> ImageU8 {
        let mut data = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&[(10 * x + y) as u8, (5 * y + 1) as u8, (200 - x - y) as u8]);
            }
        }
        ImageU8 { width, height, channels: 3, data }
    }

    #[test]
    fn identity_is_a_copy() {
        let aux = pattern(9, 7);
        let out = warp_to_rgb(&aux, 9, 7, &Homography::identity()).unwrap();
        assert_eq!(out, aux);
        assert_eq!(register_to_rgb(&aux, 9, 7, None).unwrap(), aux);
    }

    #[test]
    fn integer_translation_shifts_and_zero_fills() {
        let aux = pattern(8, 6);
        // RGB pixel (x, y) sees aux pixel (x + 2, y - 1).
        let h = Homography::from_aux_from_rgb(Matrix3::new(1.0, 0.0, 2.0, 0.0, 1.0, -1.0, 0.0, 0.0, 1.0)).unwrap();
        let out = warp_to_rgb(&aux, 8, 6, &h).unwrap();
        for y in 0..6 {
            for x in 0..8 {
                let expected: &[u8] = if x + 2 < 8 && y >= 1 { aux.pixel(x + 2, y - 1) } else { &[0, 0, 0] };
                assert_eq!(out.pixel(x, y), expected, "at ({x},{y})");
            }
        }
    }

    #[test]
    fn half_pixel_translation_averages_neighbours() {
        let aux = ImageU8 { width: 4, height: 1, channels: 1, data: vec![10, 20, 40, 80] };
        let h = Homography::from_aux_from_rgb(Matrix3::new(1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)).unwrap();
        let out = warp_to_rgb(&aux, 4, 1, &h).unwrap();
        // u = 0.5, 1.5, 2.5 blend neighbours; u = 3.5 is on the last pixel's outer edge (clamped tap).
        assert_eq!(out.data, vec![15, 30, 60, 80]);
    }

    #[test]
    fn pure_scale_downsamples_by_block_average() {
        // aux is twice the RGB size: each RGB pixel centre lands between 2x2 aux pixels.
        let aux = ImageU8 { width: 4, height: 2, channels: 1, data: vec![0, 10, 100, 120, 20, 30, 140, 160] };
        let out = register_to_rgb(&aux, 2, 1, None).unwrap();
        assert_eq!(out.data, vec![15, 130]);
    }

    #[test]
    fn four_points_recover_a_homography() {
        let truth = Matrix3::new(1.1, 0.05, 12.0, -0.03, 0.95, -7.0, 1e-4, -2e-4, 1.0);
        let h_truth = Homography::from_aux_from_rgb(truth).unwrap();
        let rgb = [[0.0, 0.0], [639.0, 0.0], [639.0, 479.0], [0.0, 479.0]];
        let aux = rgb.map(|p| {
            let (u, v) = h_truth.map_rgb_to_aux(p[0], p[1]).unwrap();
            [u, v]
        });
        let h = Homography::from_correspondences(&rgb, &aux).unwrap();
        let max_diff = (h.aux_from_rgb() - truth).amax();
        println!("homography max |diff| = {max_diff:e} (tolerance 1e-9)");
        assert!(max_diff < 1e-9);
        let collinear = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        assert!(Homography::from_correspondences(&collinear, &aux).is_err());
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(Homography::from_aux_from_rgb(Matrix3::zeros()).is_err());
        assert!(Homography::from_rgb_from_aux(Matrix3::from_element(f64::NAN)).is_err());
        let aux = pattern(2, 2);
        assert!(warp_to_rgb(&aux, 0, 5, &Homography::identity()).is_err());
        let broken = ImageU8 { width: 3, height: 3, channels: 3, data: vec![0; 5] };
        assert!(register_to_rgb(&broken, 3, 3, None).is_err());
    }

    #[test]
    fn near_singular_and_extreme_homographies_are_refused() {
        // Rank one in all but rounding, a 1e9 zoom, a 1e-9 squash: each numerically singular.
        let cases = [
            Matrix3::new(1.0, 2.0, 3.0, 2.0, 4.0 + 1e-9, 6.0, 3.0, 6.0, 9.0 + 1e-9),
            Matrix3::new(1e9, 0.0, 0.0, 0.0, 1e9, 0.0, 0.0, 0.0, 1.0),
            Matrix3::new(1.0, 0.0, 0.0, 0.0, 1e-9, 0.0, 0.0, 0.0, 1.0),
        ];
        for m in cases {
            let err = Homography::from_aux_from_rgb(m).unwrap_err();
            println!("{err}");
            assert!(matches!(err, RegistrationError::IllConditioned { .. } | RegistrationError::Singular), "{err}");
        }
        // Ordinary registrations stay accepted: a shift by 500 px, a 0.1x scale (thermal at a
        // tenth of the resolution) with a shift, a mild perspective.
        for m in [
            Matrix3::new(1.0, 0.0, 500.0, 0.0, 1.0, -300.0, 0.0, 0.0, 1.0),
            Matrix3::new(0.1, 0.0, 20.0, 0.0, 0.1, 10.0, 0.0, 0.0, 1.0),
            Matrix3::new(1.1, 0.05, 12.0, -0.03, 0.95, -7.0, 1e-4, -2e-4, 1.0),
        ] {
            let h = Homography::from_aux_from_rgb(m).unwrap();
            h.check_against((640, 480), (640, 480)).or_else(|_| h.check_against((640, 480), (64, 48))).unwrap();
        }
    }

    #[test]
    fn homography_missing_the_aux_image_is_refused() {
        let aux = pattern(64, 48);
        // Shifts every RGB pixel 10 000 px to the right of the 64 px wide aux image.
        let h = Homography::from_aux_from_rgb(Matrix3::new(1.0, 0.0, 10_000.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)).unwrap();
        let err = register_to_rgb(&aux, 64, 48, Some(&h)).unwrap_err();
        println!("{err}");
        assert!(matches!(err, RegistrationError::NoOverlap { .. }), "{err}");
        // Its horizon (w = 0 at x = 32) crosses the RGB image.
        let h =
            Homography::from_aux_from_rgb(Matrix3::new(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0 / 32.0, 0.0, 1.0)).unwrap();
        let err = register_to_rgb(&aux, 64, 48, Some(&h)).unwrap_err();
        println!("{err}");
        assert!(matches!(err, RegistrationError::CrossesHorizon), "{err}");
        // Squeezes the whole RGB image into a 0.2 px wide sliver of the aux image.
        let h = Homography::from_aux_from_rgb(Matrix3::new(0.003, 0.0, 10.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)).unwrap();
        let err = register_to_rgb(&aux, 64, 48, Some(&h)).unwrap_err();
        println!("{err}");
        assert!(matches!(err, RegistrationError::AreaScale { .. }), "{err}");
        // Half the RGB image off the aux image is a registration, not an error.
        let h = Homography::from_aux_from_rgb(Matrix3::new(1.0, 0.0, 32.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)).unwrap();
        assert!(register_to_rgb(&aux, 64, 48, Some(&h)).is_ok());
    }
}
