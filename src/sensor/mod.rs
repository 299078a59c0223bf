//! Camera images to tracker frames: ROS image encodings, thermal/depth/event preparation and
//! registration of the auxiliary camera to the RGB camera.
//!
//! One frame's path: [`decode_image`] / [`decode_compressed`] turn message payloads into a
//! [`DecodedImage`]; [`prepare_rgb`] and [`prepare_aux`] make the two 3-channel halves;
//! [`assemble_frame`] registers the aux half to the RGB grid and stacks the 6-channel frame.
//! In RGB-D, [`prepare_frame_keeping_depth`] also hands back the raw depth image, from which
//! [`depth::locate_target`] places the tracked box in 3D with the RGB camera's
//! [`camera::PinholeIntrinsics`].

pub mod camera;
pub mod decode;
pub mod depth;
mod image;
mod jet_lut;
pub mod modality;
pub mod registration;

pub use decode::{decode_compressed, decode_image, DecodeError, DecodedImage, ImageF32, ImageU16, MonoImage};
pub use image::ImageU8;
pub use modality::{
    assemble_frame, prepare_aux, prepare_frame, prepare_frame_keeping_depth, prepare_rgb, AuxConfig, Modality,
    ParseModalityError, PrepareError, ThermalScaling,
};
pub use registration::{Homography, RegistrationError};
