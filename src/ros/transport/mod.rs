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

use anyhow::Context as _;

use crate::model::PATrack;
use crate::ros::params::NodeParams;

/// Builds the network the parameters name (`model_path`, `model_config`, `device`,
/// `precision`); empty `model_path` gives the deterministic test weights.
pub fn build_model(params: &NodeParams) -> anyhow::Result<PATrack> {
    let device = crate::device::parse_device(&params.device)?;
    let precision = params.precision.parse()?;
    let path = (!params.model_path.is_empty()).then(|| std::path::Path::new(&params.model_path));
    let mut model =
        crate::model::load::build(path, &params.model_config, device, precision).map_err(|e| match path {
            Some(p) => anyhow::Error::from(e).context(format!("loading weights from {}", p.display())),
            None => e.into(),
        })?;
    if params.candidate_elimination > 0.0 {
        let ce = crate::model::CandidateElimination::ostrack(model.cfg.depth, params.candidate_elimination);
        model.set_candidate_elimination(Some(ce)).context("parameter `candidate_elimination`")?;
        log::info!("candidate elimination on: {}", model.cfg.label());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params(model_path: &str, keep: f64) -> NodeParams {
        NodeParams {
            model_path: model_path.into(),
            model_config: "tiny".into(),
            device: "cpu".into(),
            precision: "fp32".into(),
            threads: 1,
            candidate_elimination: keep,
            ..NodeParams::default()
        }
    }

    #[test]
    fn candidate_elimination_parameter_reaches_the_rgb_only_network_and_is_refused_by_patrack() {
        let ostrack = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/checkpoint/ostrack_tiny_ep0300.pth.tar");
        let model = build_model(&params(ostrack, 0.7)).unwrap();
        let ce = model.cfg.candidate_elimination.clone().expect("candidate elimination on");
        assert_eq!(ce, crate::model::CandidateElimination::ostrack(model.cfg.depth, 0.7));
        assert!(build_model(&params(ostrack, 0.0)).unwrap().cfg.candidate_elimination.is_none());
        // The two-stream network (tiny test weights) refuses it, naming the parameter.
        let err = format!("{:#}", build_model(&params("", 0.7)).unwrap_err());
        assert!(err.contains("candidate_elimination") && err.contains("RGB-only"), "{err}");
    }
}
