//! Transports: the middleware glue around [`ManagedNode`](crate::ros::managed::ManagedNode).
//!
//! The contract between a transport and the node has three parts, all raw CDR with the
//! encapsulation header, so the project's own codecs are what runs on every middleware:
//! * in: the transport subscribes to every topic of [`Input::subscribed`] with
//!   [`Input::qos`] and calls [`ManagedNode::handle`](crate::ros::managed::ManagedNode::handle)
//!   for each message as it arrives, never waiting for inference;
//! * out: the transport implements [`Sink`] with one publisher per [`Output::advertised`] (QoS from
//!   [`Output::qos`]) and calls
//!   [`ManagedNode::publish_diagnostics`](crate::ros::managed::ManagedNode::publish_diagnostics)
//!   about once a second;
//! * services: it offers every [`Service`](crate::ros::managed::Service) and answers each request
//!   with [`ManagedNode::call`](crate::ros::managed::ManagedNode::call).
//!
//! | transport | feature | used for |
//! |---|---|---|
//! | `r2r` (rcl) | `ros` | the node on robots (`patrack_node`, launched by `ros2 launch`) |
//! | `dds` (ros2-client / RustDDS) | `dds` (Jazzy graphs) or `dds-humble` | the same node without a ROS install (`patrack node`), and the CI wire test |

#[cfg(feature = "dds-transport")]
pub mod dds;
#[cfg(feature = "ros")]
pub mod r2r;

pub use crate::ros::node::{Input, Sink, SinkError};
pub use crate::ros::output::Output;

use crate::model::PATrack;
use crate::ros::params::NodeParams;

/// Builds the network the parameters name (`model_path`, `model_config`, `device`,
/// `precision`); empty `model_path` gives the deterministic test weights.
pub fn build_model(params: &NodeParams) -> anyhow::Result<PATrack> {
    let device = crate::device::parse_device(&params.device)?;
    let precision = params.precision.parse()?;
    let path = (!params.model_path.is_empty()).then(|| std::path::Path::new(&params.model_path));
    let model = crate::model::load::build(path, &params.model_config, device, precision).map_err(|e| match path {
        Some(p) => anyhow::Error::from(e).context(format!("loading weights from {}", p.display())),
        None => e.into(),
    })?;
    let threads = crate::device::apply_thread_policy(params.threads as usize, model.cfg.estimated_parameters());
    log::debug!("{threads} intra-op CPU thread(s)");
    log::info!("network on {}", crate::device::device_name(model.device()));
    if model.is_rgb_only() {
        log::warn!(
            "the weights are an RGB-only tracker (OSTrack format): the {} images are still paired, \
             but they do not reach the network; train the adapters (patrack train --stage adapt) to use them",
            params.modality
        );
    }
    Ok(model)
}
