//! The RGB-D 3D step shared by the node and the replay: the RGB camera's `CameraInfo` to pinhole
//! intrinsics, and a tracked box to a [`Target3d`] with the node's parameters.
//!
//! **CameraInfo.** The node subscribes to `rgb/camera_info` (best effort, keep last 1, so both
//! reliable and best-effort publishers are received) and uses the latest message it has: camera
//! drivers publish it with every frame, and the intrinsics are assumed constant, so it is not
//! paired with the images. `K` gives the intrinsics and distortion is ignored (see
//! [`crate::sensor::camera`]); binning and a region of interest are refused. The depth camera's
//! own `CameraInfo` is not used: the depth image is read through the registration homography
//! (see [`crate::sensor::depth`] for what that assumes).

use crate::ros::msgs::{CameraInfo, Header};
use crate::ros::params::NodeParams;
use crate::sensor::camera::{CameraError, PinholeIntrinsics};
use crate::sensor::depth::{self, DepthImage, DepthView, ImageBox, NoDepth, Target3d};
use crate::tracker::{BoxXywh, TargetState, TrackResult};

/// The RGB camera as its latest valid `CameraInfo` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraModel {
    pub intrinsics: PinholeIntrinsics,
    /// The camera's optical frame (the `CameraInfo` header's `frame_id`).
    pub frame_id: String,
}

impl CameraModel {
    /// Reads the intrinsics of a `CameraInfo`; binning over 1 and a partial region of interest
    /// are refused, as they change the intrinsics of the image actually delivered.
    pub fn from_camera_info(info: &CameraInfo) -> Result<Self, CameraError> {
        if info.binning_x > 1 || info.binning_y > 1 {
            return Err(CameraError::Binning { x: info.binning_x, y: info.binning_y });
        }
        let roi = &info.roi;
        let no_roi = (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 0, 0, 0);
        let full_roi = roi.x_offset == 0 && roi.y_offset == 0 && roi.width == info.width && roi.height == info.height;
        if !(no_roi || full_roi) {
            return Err(CameraError::Roi {
                x_offset: roi.x_offset,
                y_offset: roi.y_offset,
                width: roi.width,
                height: roi.height,
            });
        }
        let intrinsics = PinholeIntrinsics::from_k(&info.k, info.width, info.height)?;
        Ok(Self { intrinsics, frame_id: info.header.frame_id.clone() })
    }

    /// A camera given by its intrinsics alone (`patrack replay --intrinsics`); outputs keep the
    /// images' frame ids.
    pub fn from_intrinsics(intrinsics: PinholeIntrinsics) -> Self {
        Self { intrinsics, frame_id: String::new() }
    }

    /// A short description for the log and the diagnostics.
    pub fn describe(&self) -> String {
        let k = &self.intrinsics;
        let size = if k.width_px == 0 { "any size".to_owned() } else { format!("{}x{}", k.width_px, k.height_px) };
        format!("{size}, fx {:.1} fy {:.1} cx {:.1} cy {:.1} px", k.fx_px, k.fy_px, k.cx_px, k.cy_px)
    }
}

/// The header of the 3D outputs: the RGB image's, with the camera's frame id when the image has
/// none (RViz cannot place a marker in frame "").
pub fn header_3d(rgb_header: &Header, camera: &CameraModel) -> Header {
    let mut header = rgb_header.clone();
    if header.frame_id.is_empty() {
        header.frame_id.clone_from(&camera.frame_id);
    }
    header
}

/// The tracked `bbox` in 3D from the pair's raw depth image, with the registration and `depth.*`
/// settings of `params`.
pub fn locate(
    params: &NodeParams,
    camera: &CameraModel,
    depth: &DepthImage,
    rgb_size: (usize, usize),
    bbox: BoxXywh,
) -> Result<Target3d, NoDepth> {
    // The frame of this pair was assembled with the same homography, which refuses an invalid
    // one first; parameters are validated before they are put in force.
    let homography = params.aux_config().homography().ok().flatten();
    let aux_from_rgb = depth::aux_from_rgb(homography.as_ref(), rgb_size, depth.size());
    let view = DepthView { depth, aux_from_rgb: &aux_from_rgb, rgb_size, intrinsics: &camera.intrinsics };
    let image_box = ImageBox { x_px: bbox.x, y_px: bbox.y, width_px: bbox.w, height_px: bbox.h };
    depth::locate_target(&view, image_box, &params.depth_sampling())
}

/// The 3D target of an answered pair: `Ok(None)` when there is none to look for (not tracking),
/// an error when the target is tracked but cannot be placed (no depth image in this modality,
/// too few depth readings, a calibration for another image size).
pub fn target_of(
    params: &NodeParams,
    camera: &CameraModel,
    depth: Option<&DepthImage>,
    rgb_size: (usize, usize),
    result: Option<&TrackResult>,
) -> Result<Option<Target3d>, NoDepth> {
    match (result, depth) {
        (Some(r), Some(depth)) if r.state == TargetState::Tracking => {
            locate(params, camera, depth, rgb_size, r.bbox).map(Some)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ros::msgs::{RegionOfInterest, Time};

    fn info() -> CameraInfo {
        CameraInfo {
            header: Header { stamp: Time { sec: 1, nanosec: 0 }, frame_id: "cam_optical".into() },
            width: 640,
            height: 480,
            k: [600.0, 0.0, 320.0, 0.0, 610.0, 240.0, 0.0, 0.0, 1.0],
            ..Default::default()
        }
    }

    #[test]
    fn camera_info_gives_k_and_refuses_binning_and_roi() {
        let model = CameraModel::from_camera_info(&info()).unwrap();
        assert_eq!(
            (model.intrinsics.fx_px, model.intrinsics.fy_px, model.intrinsics.cx_px, model.intrinsics.cy_px),
            (600.0, 610.0, 320.0, 240.0)
        );
        assert_eq!(model.frame_id, "cam_optical");
        assert_eq!(model.describe(), "640x480, fx 600.0 fy 610.0 cx 320.0 cy 240.0 px");
        let full = CameraInfo {
            roi: RegionOfInterest { width: 640, height: 480, ..Default::default() },
            binning_x: 1,
            ..info()
        };
        assert!(CameraModel::from_camera_info(&full).is_ok());
        let binned = CameraInfo { binning_x: 2, ..info() };
        assert_eq!(CameraModel::from_camera_info(&binned).unwrap_err(), CameraError::Binning { x: 2, y: 0 });
        let roi = CameraInfo {
            roi: RegionOfInterest { x_offset: 10, y_offset: 0, width: 100, height: 100, do_rectify: false },
            ..info()
        };
        assert!(matches!(CameraModel::from_camera_info(&roi), Err(CameraError::Roi { .. })));
        let uncalibrated = CameraInfo { k: [0.0; 9], ..info() };
        assert!(matches!(CameraModel::from_camera_info(&uncalibrated), Err(CameraError::Focal { .. })));
    }

    #[test]
    fn the_3d_header_is_the_image_s_with_the_camera_frame_as_fallback() {
        let model = CameraModel::from_camera_info(&info()).unwrap();
        let image = Header { stamp: Time { sec: 5, nanosec: 6 }, frame_id: "color".into() };
        assert_eq!(header_3d(&image, &model), image);
        let anonymous = Header { frame_id: String::new(), ..image.clone() };
        assert_eq!(header_3d(&anonymous, &model).frame_id, "cam_optical");
        assert_eq!(header_3d(&anonymous, &model).stamp, image.stamp);
    }
}
