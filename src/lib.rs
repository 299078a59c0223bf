//! patrack: the PATrack multi-modal single-object tracker (RGB + thermal, depth or event frames)
//! on libtorch, as a ROS 2 node and an offline tool.
//!
//! | module | what it holds |
//! |---|---|
//! | [`device`] | libtorch devices, precisions, run-time CUDA loading, `patrack info` facts |
//! | [`model`] | the network: one struct per official PyTorch submodule, strict weight loading, checkpoints |
//! | [`tracker`] | crops, resize, normalisation, Hann window, decoding and the target state machine |
//! | [`sensor`] | ROS image encodings to frames, thermal/depth/event preparation, registration |
//! | [`bag`] | rosbag2 MCAP reading/writing and offline replay through the tracker |
//! | [`eval`] | benchmark layouts, runs and the toolkits' scores, tables and plots |
//! | [`dataset`] | image files on disk: listing and decoding |
//! | [`limits`] | shape checks of untrusted YAML before parsing, distinct RGB/aux topics |
//! | [`overlay`] | drawing boxes and labels on frames |
//! | [`train`] | progressive adaptation training, its losses and the synthetic RGB+X generator |
//! | [`cli`] | the `patrack` command line |
//! | [`ros`] | message codecs (CDR), ApproximateTime sync, the node core and its transports |

pub mod bag;
pub mod cli;
pub mod dataset;
pub mod device;
pub mod eval;
pub mod limits;
pub mod model;
pub mod overlay;
pub mod ros;
pub mod sensor;
pub mod tracker;
pub mod train;
