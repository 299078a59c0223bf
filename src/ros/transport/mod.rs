//! Transports: the middleware glue around [`NodeCore`](crate::ros::node::NodeCore).
//!
//! The contract between a transport and the core has two sides, both raw CDR with the
//! encapsulation header, so the project's own codecs are what runs on every middleware:
//! * in: the transport subscribes to every topic of [`Input::subscribed`] (sensor-data QoS for
//!   cameras, reliable for commands) and calls [`NodeCore::handle`](crate::ros::node::NodeCore::handle)
//!   for each message as it arrives, never waiting for inference;
//! * out: the transport implements [`Sink`] with one publisher per [`Output`] (reliable,
//!   keep last 10), and calls
//!   [`NodeCore::publish_diagnostics`](crate::ros::node::NodeCore::publish_diagnostics) about
//!   once a second.
//!
//! | transport | feature | used for |
//! |---|---|---|
//! | `r2r` (rcl) | `ros` | the node on robots (`patrack_node`, launched by `ros2 launch`) |
//! | `dds` (ros2-client / RustDDS) | `dds` | the same node without a ROS install (`patrack node`), and the CI wire test |

#[cfg(feature = "dds")]
pub mod dds;
#[cfg(feature = "ros")]
pub mod r2r;

pub use crate::ros::node::{Input, Sink};
pub use crate::ros::output::Output;

use crate::model::PATrack;
use crate::ros::params::NodeParams;

/// Keep-last depth of the output publishers (the ROS default profile).
pub const OUTPUT_QUEUE_DEPTH: usize = 10;

/// Keep-last depth of the camera subscriptions: small, because the node wants the newest frames
/// and the synchronizer keeps its own queues.
pub const SENSOR_QUEUE_DEPTH: usize = 5;

/// Builds the network the parameters name (`model_path`, `model_config`, `device`,
/// `precision`); empty `model_path` gives the deterministic test weights.
pub fn build_model(params: &NodeParams) -> anyhow::Result<PATrack> {
    let device = crate::device::parse_device(&params.device)?;
    let precision = params.precision.parse()?;
    let path = (!params.model_path.is_empty()).then(|| std::path::Path::new(&params.model_path));
    crate::cli::common::build_model(path, &params.model_config, device, precision)
}
