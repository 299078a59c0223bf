//! Camera images to tracker frames: ROS image encodings, thermal/depth/event preparation and
//! registration of the auxiliary camera to the RGB camera.

mod image;

pub use image::ImageU8;
