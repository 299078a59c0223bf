//! The RGB camera's pinhole model: pixels to rays in its optical frame.
//!
//! **Conventions.** Pixel coordinates follow OpenCV and `sensor_msgs/CameraInfo`: integer
//! coordinates are pixel *centres*, so `cx = (width - 1) / 2` is the middle of the image. The
//! tracker's boxes follow the benchmark convention instead (a box's `x` is measured from the
//! image's left *edge*, pixel `i` spans `[i, i + 1)`), so a box coordinate `c` is the pixel
//! coordinate `c - 0.5` ([`box_to_pixel`]). The optical frame is REP 103's: `x` right, `y` down,
//! `z` forward along the optical axis, metres.
//!
//! **What is modelled.** The intrinsic matrix `K` of `CameraInfo` (focal lengths, principal
//! point, skew). Lens distortion is not: the node back-projects the box centre as if the image
//! were rectified. That is exact for rectified images and for the near-distortion-free colour
//! streams of RGB-D cameras (RealSense, Orbbec, Azure Kinect colour after their drivers'
//! undistortion, whose `CameraInfo` then carries `K` = `P`); with a strongly distorting lens
//! (fisheye, wide-angle webcams) feed the node `image_rect` and a `CameraInfo` whose `K` is the
//! rectified camera's (`P`'s left 3x3). Binning and a region of interest are refused rather than
//! half-applied.

/// Errors of a camera model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CameraError {
    #[error("the focal lengths must be finite and positive, got fx {fx_px} px, fy {fy_px} px (an uncalibrated camera publishes K = 0)")]
    Focal { fx_px: f64, fy_px: f64 },
    #[error("the principal point and skew must be finite, got cx {cx_px}, cy {cy_px}, skew {skew_px}")]
    NonFinite { cx_px: f64, cy_px: f64, skew_px: f64 },
    #[error("K must have the form [fx, s, cx, 0, fy, cy, 0, 0, 1], got K[1][0] = {k10} and the last row [{k20}, {k21}, {k22}]")]
    Form { k10: f64, k20: f64, k21: f64, k22: f64 },
    #[error("binning {x}x{y} is not supported (the node needs the full-resolution calibration)")]
    Binning { x: u32, y: u32 },
    #[error("a region of interest ({width}x{height} at {x_offset},{y_offset}) is not supported (the node needs the full image)")]
    Roi { x_offset: u32, y_offset: u32, width: u32, height: u32 },
    #[error("the calibration is for {calibrated_width}x{calibrated_height} images, the RGB image is {image_width}x{image_height}")]
    SizeMismatch { calibrated_width: u32, calibrated_height: u32, image_width: usize, image_height: usize },
}

/// Pinhole intrinsics in pixels (see the module docs for the conventions), with the image size
/// they were calibrated for (0 x 0: not stated, any size is accepted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PinholeIntrinsics {
    pub fx_px: f64,
    pub fy_px: f64,
    pub cx_px: f64,
    pub cy_px: f64,
    /// `K[0][1]`, almost always 0.
    pub skew_px: f64,
    pub width_px: u32,
    pub height_px: u32,
}

impl PinholeIntrinsics {
    /// Intrinsics without skew for images of any size.
    pub fn new(fx_px: f64, fy_px: f64, cx_px: f64, cy_px: f64) -> Result<Self, CameraError> {
        let k = [fx_px, 0.0, cx_px, 0.0, fy_px, cy_px, 0.0, 0.0, 1.0];
        Self::from_k(&k, 0, 0)
    }

    /// From the row-major 3x3 matrix `K` of a `CameraInfo` and the image size it states.
    pub fn from_k(k: &[f64; 9], width_px: u32, height_px: u32) -> Result<Self, CameraError> {
        let (fx_px, skew_px, cx_px, fy_px, cy_px) = (k[0], k[1], k[2], k[4], k[5]);
        if !(fx_px.is_finite() && fy_px.is_finite() && fx_px > 0.0 && fy_px > 0.0) {
            return Err(CameraError::Focal { fx_px, fy_px });
        }
        if !(cx_px.is_finite() && cy_px.is_finite() && skew_px.is_finite()) {
            return Err(CameraError::NonFinite { cx_px, cy_px, skew_px });
        }
        if k[3] != 0.0 || k[6] != 0.0 || k[7] != 0.0 || k[8] != 1.0 {
            return Err(CameraError::Form { k10: k[3], k20: k[6], k21: k[7], k22: k[8] });
        }
        Ok(Self { fx_px, fy_px, cx_px, cy_px, skew_px, width_px, height_px })
    }

    /// Refuses images of another size than the calibration's (when it states one).
    pub fn check_image_size(&self, image_width: usize, image_height: usize) -> Result<(), CameraError> {
        let stated = self.width_px != 0 || self.height_px != 0;
        if stated && (self.width_px as usize != image_width || self.height_px as usize != image_height) {
            return Err(CameraError::SizeMismatch {
                calibrated_width: self.width_px,
                calibrated_height: self.height_px,
                image_width,
                image_height,
            });
        }
        Ok(())
    }

    /// The point at depth `z_m` (along the optical axis) seen at pixel (`u_px`, `v_px`), in the
    /// optical frame, metres: `K⁻¹ (u, v, 1) · z`.
    pub fn back_project(&self, u_px: f64, v_px: f64, z_m: f64) -> [f64; 3] {
        let y_norm = (v_px - self.cy_px) / self.fy_px;
        let x_norm = (u_px - self.cx_px - self.skew_px * y_norm) / self.fx_px;
        [x_norm * z_m, y_norm * z_m, z_m]
    }

    /// Where a point of the optical frame (z > 0) appears, in pixel coordinates.
    pub fn project(&self, point_m: [f64; 3]) -> (f64, f64) {
        let [x, y, z] = point_m;
        (self.fx_px * x / z + self.skew_px * y / z + self.cx_px, self.fy_px * y / z + self.cy_px)
    }
}

/// A box coordinate (measured from the image's edge) as a pixel coordinate (integer at pixel
/// centres).
pub fn box_to_pixel(coordinate: f64) -> f64 {
    coordinate - 0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_projection_equals_hand_computed_values() {
        // fx 500, fy 400, cx 319.5, cy 239.5; the pixel (419.5, 139.5) is 100 px right of and
        // 100 px above the principal point: at 2 m, x = 100 * 2 / 500 = 0.4, y = -100 * 2 / 400.
        let k = PinholeIntrinsics::new(500.0, 400.0, 319.5, 239.5).unwrap();
        assert_eq!(k.back_project(419.5, 139.5, 2.0), [0.4, -0.5, 2.0]);
        assert_eq!(k.back_project(319.5, 239.5, 3.25), [0.0, 0.0, 3.25]);
        // The middle of the 640x480 image in box coordinates is (320, 240).
        assert_eq!(k.back_project(box_to_pixel(320.0), box_to_pixel(240.0), 1.0), [0.0, 0.0, 1.0]);
        // With skew 10: y_n = -0.25, x_n = (100 - 10 * -0.25) / 500 = 0.205.
        let skewed =
            PinholeIntrinsics::from_k(&[500.0, 10.0, 319.5, 0.0, 400.0, 239.5, 0.0, 0.0, 1.0], 640, 480).unwrap();
        let p = skewed.back_project(419.5, 139.5, 2.0);
        assert!((p[0] - 0.41).abs() < 1e-15 && p[1] == -0.5 && p[2] == 2.0, "{p:?}");
        let (u, v) = skewed.project(p);
        assert!((u - 419.5).abs() < 1e-12 && (v - 139.5).abs() < 1e-12, "{u} {v}");
    }

    #[test]
    fn bad_calibrations_are_refused_with_their_values() {
        let zero = PinholeIntrinsics::from_k(&[0.0; 9], 640, 480).unwrap_err();
        assert_eq!(zero, CameraError::Focal { fx_px: 0.0, fy_px: 0.0 });
        assert!(zero.to_string().contains("uncalibrated"), "{zero}");
        assert!(matches!(PinholeIntrinsics::new(500.0, 500.0, f64::NAN, 1.0), Err(CameraError::NonFinite { .. })));
        let last = PinholeIntrinsics::from_k(&[500.0, 0.0, 1.0, 0.0, 500.0, 1.0, 0.0, 0.0, 0.0], 0, 0);
        assert_eq!(last, Err(CameraError::Form { k10: 0.0, k20: 0.0, k21: 0.0, k22: 0.0 }));
        let lower = PinholeIntrinsics::from_k(&[500.0, 0.0, 1.0, 2.0, 500.0, 1.0, 0.0, 0.0, 1.0], 0, 0).unwrap_err();
        assert_eq!(
            lower.to_string(),
            "K must have the form [fx, s, cx, 0, fy, cy, 0, 0, 1], got K[1][0] = 2 and the last row [0, 0, 1]"
        );
        let k = PinholeIntrinsics::from_k(&[500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0], 640, 480).unwrap();
        k.check_image_size(640, 480).unwrap();
        let e = k.check_image_size(1280, 720).unwrap_err();
        assert_eq!(e.to_string(), "the calibration is for 640x480 images, the RGB image is 1280x720");
        PinholeIntrinsics::new(500.0, 500.0, 1.0, 1.0).unwrap().check_image_size(17, 3).unwrap();
    }
}
