//! The pure-Rust DDS transport (ros2-client on RustDDS): the node without a ROS install, e.g. a
//! GPU workstation joining a robot's DDS domain, and the way CI runs the node over a real wire.
//!
//! ros2-client (de)serialises messages itself with `cdr-encoding`, the crate behind the
//! project's codecs, so the mirror structs of [`crate::ros::msgs`] and [`crate::ros::srv`] are
//! the wire types. Incoming messages enter the node as [`InputMessage`]s, service requests as
//! CDR through [`ManagedNode::call`] (the same path as on r2r). Outgoing CDR from the node is
//! decoded back into its struct for the typed publisher: ros2-client offers no raw writer that
//! would also appear in the node's graph entry, so that copy stays (about 0.2 ms for a 640x480
//! debug image).
//!
//! Cargo feature `dds` speaks to Jazzy (and newer) graphs, `dds-humble` to Humble's (24-byte
//! GIDs in `ros_discovery_info`; with the Jazzy layout Humble's `ros2 node list` does not show
//! the node, although topics flow).

#[cfg(all(feature = "dds", feature = "dds-humble"))]
compile_error!("features `dds` (Jazzy and newer) and `dds-humble` select different ROS graph layouts: enable one");

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use ros2_client::{
    Context, ContextOptions, MessageTypeName, Name, Node, NodeName, NodeOptions, Publisher, QosProfile, ServiceMapping,
    ServiceTypeName, Subscription,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{build_model, Input, Output, Sink, SinkError};
use crate::ros::managed::{ManagedNode, Service};
use crate::ros::msgs::{
    CameraInfo, Classification, CompressedImage, Detection2D, Detection2DArray, Detection3DArray, DiagnosticArray,
    Empty, Float32, Image, MarkerArray, PointStamped, RegionOfInterest, RosMessage, StringMsg, Time,
};
use crate::ros::node::InputMessage;
use crate::ros::output::expand_topic;
use crate::ros::params::{NodeParams, Reliability, NODE_NAME};
use crate::ros::srv;

const DIAGNOSTICS_PERIOD: Duration = Duration::from_secs(1);

/// The ROS 2 distribution the `dds*` feature builds for.
pub const DISTRO: &str = if cfg!(feature = "dds-humble") { "humble" } else { "jazzy" };

/// Where the node joins the DDS graph.
#[derive(Debug, Clone)]
pub struct DdsOptions {
    /// ROS namespace, `/` or `/a/b`.
    pub namespace: String,
    pub node_name: String,
    /// DDS domain (`ROS_DOMAIN_ID`).
    pub domain_id: u16,
    /// Stop after this long (bounded runs in tests); `None` runs until SIGINT/SIGTERM.
    pub run_for: Option<Duration>,
    /// How service requests and replies are laid out on DDS: `Enhanced` for Fast DDS peers (the
    /// default RMW of Humble and Jazzy), `Cyclone` for rmw_cyclonedds peers.
    pub service_mapping: ServiceMapping,
}

impl Default for DdsOptions {
    fn default() -> Self {
        let domain_id = std::env::var("ROS_DOMAIN_ID").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        Self {
            namespace: "/".into(),
            node_name: NODE_NAME.into(),
            domain_id,
            run_for: None,
            service_mapping: ServiceMapping::Enhanced,
        }
    }
}

/// `pkg/msg/Type` (or `pkg/srv/Type`) as ros2-client's package and type names.
fn split_type(full: &str) -> (&str, &str) {
    let package = full.split('/').next().unwrap_or_default();
    let name = full.rsplit('/').next().unwrap_or_default();
    (package, name)
}

fn type_name(full: &str) -> MessageTypeName {
    let (package, name) = split_type(full);
    MessageTypeName::new(package, name)
}

fn qos(depth: usize, reliability: Reliability) -> QosProfile {
    let base = match reliability {
        Reliability::Reliable => QosProfile::publisher_default(),
        Reliability::BestEffort => QosProfile::subscription_default(),
    };
    base.history(ros2_client::qos::History::KeepLast { depth })
}

/// A typed publisher that takes the node's CDR.
trait CdrPublisher: Send + Sync {
    fn publish_cdr(&self, cdr: &[u8]) -> Result<(), SinkError>;
    fn subscribers(&self, node: &Node) -> usize;
}

// ros2-client serves only types marked as messages.
macro_rules! dds_message {
    ($($t:ty),* $(,)?) => { $(impl ros2_client::Message for $t {})* };
}
dds_message!(
    srv::GetParametersRequest,
    srv::GetParametersResponse,
    srv::GetParameterTypesRequest,
    srv::GetParameterTypesResponse,
    srv::SetParametersRequest,
    srv::SetParametersResponse,
    srv::SetParametersAtomicallyRequest,
    srv::SetParametersAtomicallyResponse,
    srv::DescribeParametersRequest,
    srv::DescribeParametersResponse,
    srv::ListParametersRequest,
    srv::ListParametersResponse,
    srv::ChangeStateRequest,
    srv::ChangeStateResponse,
    srv::EmptyRequest,
    srv::GetStateResponse,
    srv::GetAvailableStatesResponse,
    srv::GetAvailableTransitionsResponse,
    srv::SetBoolRequest,
    srv::TriggerResponse,
);

impl<M: RosMessage + Serialize + std::fmt::Debug + Send + Sync> CdrPublisher for Publisher<M> {
    fn publish_cdr(&self, cdr: &[u8]) -> Result<(), SinkError> {
        let msg = M::decode(cdr)?;
        // ros2-client's write errors only implement Debug.
        self.publish(msg).map_err(|e| SinkError::Middleware(format!("{e:?}")))
    }

    fn subscribers(&self, node: &Node) -> usize {
        self.get_subscription_count(node)
    }
}

struct DdsSink {
    publishers: Vec<(Output, Box<dyn CdrPublisher>)>,
    /// The node answers matched-subscriber queries (its spinner keeps the graph current).
    node: Arc<Mutex<Node>>,
}

impl Sink for DdsSink {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), SinkError> {
        let (_, publisher) =
            self.publishers.iter().find(|(o, _)| *o == output).ok_or(SinkError::NoPublisher(output.topic()))?;
        publisher.publish_cdr(cdr)
    }

    fn subscriber_count(&self, output: Output) -> usize {
        let node = self.node.lock().unwrap_or_else(PoisonError::into_inner);
        self.publishers.iter().find(|(o, _)| *o == output).map_or(0, |(_, p)| p.subscribers(&node))
    }
}

struct Names<'a> {
    namespace: &'a str,
    node_name: &'a str,
}

impl Names<'_> {
    fn topic(&self, relative: &str) -> anyhow::Result<Name> {
        let full = expand_topic(relative, self.namespace, self.node_name);
        Name::parse(&full).map_err(|e| anyhow::anyhow!("topic name {full}: {e:?}"))
    }
}

fn publisher<M>(
    node: &mut Node,
    names: &Names,
    output: Output,
    params: &NodeParams,
) -> anyhow::Result<Box<dyn CdrPublisher>>
where
    M: RosMessage + Serialize + std::fmt::Debug + Send + Sync + 'static,
{
    let q = output.qos(params);
    let qos = qos(q.depth, q.reliability);
    let topic = node
        .create_topic(&names.topic(output.topic())?, type_name(output.type_name()), &qos)
        .map_err(|e| anyhow::anyhow!("topic {}: {e:?}", output.topic()))?;
    let p: Publisher<M> =
        node.create_publisher(&topic, Some(qos)).map_err(|e| anyhow::anyhow!("publisher {}: {e:?}", output.topic()))?;
    Ok(Box::new(p))
}

fn subscription<M: 'static>(
    node: &mut Node,
    names: &Names,
    input: Input,
    params: &NodeParams,
) -> anyhow::Result<Subscription<M>> {
    let q = input.qos(params);
    let qos = qos(q.depth, q.reliability);
    let topic = node
        .create_topic(&names.topic(input.topic())?, type_name(input.type_name()), &qos)
        .map_err(|e| anyhow::anyhow!("topic {}: {e:?}", input.topic()))?;
    node.create_subscription(&topic, Some(qos)).map_err(|e| anyhow::anyhow!("subscription {}: {e:?}", input.topic()))
}

/// Drains one subscription into the node on its own thread (RustDDS streams are not `Send`,
/// so they cannot move between runtime workers). The thread holds only a weak reference: once
/// the node stops, it is dropped and the thread ends at its next message.
fn drain<M, F>(managed: &Arc<ManagedNode>, input: Input, sub: Subscription<M>, wrap: F) -> anyhow::Result<()>
where
    M: DeserializeOwned + Send + 'static,
    F: Fn(M) -> InputMessage + Send + 'static,
{
    let managed = Arc::downgrade(managed);
    std::thread::Builder::new().name(format!("dds-{}", input.key())).spawn(move || {
        futures::executor::block_on(async move {
            let mut stream = Box::pin(sub.async_stream());
            while let Some(received) = stream.next().await {
                let Some(managed) = managed.upgrade() else { break };
                match received {
                    Ok((msg, _info)) => managed.handle_message(input, wrap(msg)),
                    Err(e) => log::debug!("{}: receive error {e:?}", input.topic()),
                }
            }
        })
    })?;
    Ok(())
}

/// Serves one service on its own thread: typed requests from ros2-client go to the node as CDR.
fn serve<Req, Resp>(
    node: &mut Node,
    names: &Names,
    managed: &Arc<ManagedNode>,
    service: Service,
    mapping: ServiceMapping,
) -> anyhow::Result<()>
where
    Req: RosMessage + ros2_client::Message + Clone + Send + 'static,
    Resp: RosMessage + ros2_client::Message + Send + 'static,
{
    let (package, name) = split_type(service.type_name());
    let qos = QosProfile::publisher_default();
    let server = node
        .create_server::<Req, Resp>(
            mapping,
            &names.topic(service.name())?,
            &ServiceTypeName::new(package, name),
            qos.clone(),
            qos,
        )
        .map_err(|e| anyhow::anyhow!("service {}: {e:?}", service.name()))?;
    let managed = Arc::downgrade(managed);
    std::thread::Builder::new().name(format!("dds-srv-{}", service.name().trim_start_matches("~/"))).spawn(
        move || {
            futures::executor::block_on(async move {
                let mut requests = server.receive_request_stream();
                while let Some(received) = requests.next().await {
                    let Some(managed) = managed.upgrade() else { break };
                    let (id, request) = match received {
                        Ok(r) => r,
                        Err(e) => {
                            log::debug!("{}: receive error {e:?}", service.name());
                            continue;
                        }
                    };
                    let answer =
                        request.encode().and_then(|cdr| managed.call(service, &cdr)).and_then(|cdr| Resp::decode(&cdr));
                    match answer {
                        Ok(response) => {
                            if let Err(e) = server.send_response(id, response) {
                                log::warn!("{}: sending the reply: {e:?}", service.name());
                            }
                        }
                        Err(e) => log::warn!("{}: {e}", service.name()),
                    }
                }
            })
        },
    )?;
    Ok(())
}

fn serve_all(
    node: &mut Node,
    names: &Names,
    managed: &Arc<ManagedNode>,
    mapping: ServiceMapping,
) -> anyhow::Result<()> {
    use srv::*;
    for service in Service::ALL {
        let (n, m) = (&mut *node, managed);
        match service {
            Service::GetParameters => {
                serve::<GetParametersRequest, GetParametersResponse>(n, names, m, service, mapping)?
            }
            Service::GetParameterTypes => {
                serve::<GetParameterTypesRequest, GetParameterTypesResponse>(n, names, m, service, mapping)?
            }
            Service::SetParameters => {
                serve::<SetParametersRequest, SetParametersResponse>(n, names, m, service, mapping)?
            }
            Service::SetParametersAtomically => {
                serve::<SetParametersAtomicallyRequest, SetParametersAtomicallyResponse>(n, names, m, service, mapping)?
            }
            Service::DescribeParameters => {
                serve::<DescribeParametersRequest, DescribeParametersResponse>(n, names, m, service, mapping)?
            }
            Service::ListParameters => {
                serve::<ListParametersRequest, ListParametersResponse>(n, names, m, service, mapping)?
            }
            Service::ChangeState => serve::<ChangeStateRequest, ChangeStateResponse>(n, names, m, service, mapping)?,
            Service::GetState => serve::<EmptyRequest, GetStateResponse>(n, names, m, service, mapping)?,
            Service::GetAvailableStates => {
                serve::<EmptyRequest, GetAvailableStatesResponse>(n, names, m, service, mapping)?
            }
            Service::GetAvailableTransitions | Service::GetTransitionGraph => {
                serve::<EmptyRequest, GetAvailableTransitionsResponse>(n, names, m, service, mapping)?
            }
            Service::Reset => serve::<EmptyRequest, TriggerResponse>(n, names, m, service, mapping)?,
            Service::Enable => serve::<SetBoolRequest, TriggerResponse>(n, names, m, service, mapping)?,
        }
    }
    Ok(())
}

fn now() -> Time {
    let ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos());
    ns.ok().and_then(|ns| i64::try_from(ns).ok()).and_then(Time::from_ns).unwrap_or_default()
}

/// Runs the node over DDS until SIGINT/SIGTERM or `options.run_for`: `patrack node`.
pub fn run(params: NodeParams, options: &DdsOptions) -> anyhow::Result<()> {
    crate::ros::node::install_panic_hook();
    params.validate()?;
    let context = Context::with_options(ContextOptions::new().domain_id(options.domain_id))
        .map_err(|e| anyhow::anyhow!("starting DDS: {e:?}"))?;
    let node_name = NodeName::new(&options.namespace, &options.node_name)
        .map_err(|e| anyhow::anyhow!("node name {}: {e:?}", options.node_name))?;
    // The node offers its own parameter services (with ranges, read-only flags and refusals).
    let node_options = NodeOptions::new().enable_rosout(true).start_parameter_services(false);
    let mut node =
        context.new_node(node_name, node_options).map_err(|e| anyhow::anyhow!("creating the node: {e:?}"))?;
    let names = Names { namespace: &options.namespace, node_name: &options.node_name };

    let runtime = tokio::runtime::Runtime::new()?;
    let spinner = node.spinner().map_err(|e| anyhow::anyhow!("node spinner: {e:?}"))?;
    runtime.spawn(async move {
        if let Err(e) = spinner.spin().await {
            log::error!("DDS spinner stopped: {e:?}");
        }
    });

    let p = &params;
    let mut publishers = Vec::new();
    for output in Output::advertised(p) {
        let (n, names) = (&mut node, &names);
        let publisher = match output {
            Output::Detections => publisher::<Detection2DArray>(n, names, output, p)?,
            Output::Confidence => publisher::<Float32>(n, names, output, p)?,
            Output::ConfidenceStamped => publisher::<Classification>(n, names, output, p)?,
            Output::DebugImage => publisher::<Image>(n, names, output, p)?,
            Output::Diagnostics => publisher::<DiagnosticArray>(n, names, output, p)?,
            Output::ParameterEvents => publisher::<srv::ParameterEvent>(n, names, output, p)?,
            Output::TransitionEvent => publisher::<srv::TransitionEvent>(n, names, output, p)?,
            Output::TargetPoint => publisher::<PointStamped>(n, names, output, p)?,
            Output::Detections3d => publisher::<Detection3DArray>(n, names, output, p)?,
            Output::Markers => publisher::<MarkerArray>(n, names, output, p)?,
        };
        publishers.push((output, publisher));
    }
    let mut images = Vec::new();
    let mut compressed = Vec::new();
    for input in Input::cameras(&params) {
        match input {
            Input::Rgb | Input::Aux => images.push((input, subscription::<Image>(&mut node, &names, input, p)?)),
            _ => compressed.push((input, subscription::<CompressedImage>(&mut node, &names, input, p)?)),
        }
    }
    let init = subscription::<Detection2D>(&mut node, &names, Input::Init, p)?;
    let init_roi = subscription::<RegionOfInterest>(&mut node, &names, Input::InitRoi, p)?;
    let reset = subscription::<Empty>(&mut node, &names, Input::Reset, p)?;
    let reset_target = subscription::<StringMsg>(&mut node, &names, Input::ResetTarget, p)?;
    let camera_info = if Input::subscribed(p).contains(&Input::RgbCameraInfo) {
        Some(subscription::<CameraInfo>(&mut node, &names, Input::RgbCameraInfo, p)?)
    } else {
        None
    };

    let node_fqn = expand_topic("~", &options.namespace, &options.node_name).trim_end_matches('/').to_owned();
    log::info!(
        "patrack node {node_fqn} on DDS domain {} ({DISTRO} graph): {} on {}",
        options.domain_id,
        params.modality,
        params.device
    );
    let node = Arc::new(Mutex::new(node));
    let sink = Arc::new(DdsSink { publishers, node: node.clone() });
    let factory = Box::new(|p: &NodeParams| build_model(p).map_err(Into::into));
    let managed = Arc::new(ManagedNode::new(&node_fqn, params.clone(), factory, sink, Box::new(now)));
    {
        let mut n = node.lock().unwrap_or_else(PoisonError::into_inner);
        serve_all(&mut n, &names, &managed, options.service_mapping)?;
    }
    for (input, sub) in images {
        drain(&managed, input, sub, InputMessage::Image)?;
    }
    for (input, sub) in compressed {
        drain(&managed, input, sub, InputMessage::CompressedImage)?;
    }
    drain(&managed, Input::Init, init, InputMessage::Init)?;
    drain(&managed, Input::InitRoi, init_roi, InputMessage::InitRoi)?;
    drain(&managed, Input::Reset, reset, |_| InputMessage::Reset)?;
    drain(&managed, Input::ResetTarget, reset_target, |m| InputMessage::ResetTarget(m.data))?;
    if let Some(sub) = camera_info {
        drain(&managed, Input::RgbCameraInfo, sub, |m| InputMessage::CameraInfo(Box::new(m)))?;
    }
    let diag = Arc::downgrade(&managed);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(DIAGNOSTICS_PERIOD);
        loop {
            interval.tick().await;
            let Some(diag) = diag.upgrade() else { break };
            diag.publish_diagnostics();
        }
    });
    managed.start();

    let result = runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let deadline = async {
            match options.run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => log::info!("SIGINT: shutting down"),
            _ = terminate.recv() => log::info!("SIGTERM: shutting down"),
            _ = deadline => log::info!("run time over: shutting down"),
        }
        anyhow::Ok(())
    });
    let stats = managed.stats();
    log::info!(
        "processed {} pairs, skipped {} while busy, {} malformed messages, {} inference failures",
        stats.processed,
        stats.pairs_skipped_busy,
        stats.malformed.iter().sum::<u64>(),
        stats.inference_failures
    );
    // Stopping the node joins its threads; dropping the DDS node tells the spinner to stop while
    // the runtime still runs; dropping the context tells peers that we left.
    managed.shutdown();
    drop(managed);
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(node);
    drop(context);
    result.context("waiting for shutdown")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_feature_selects_the_distribution_s_gid_layout() {
        // Humble's rmw_dds_common Gid is 24 bytes, Iron's and newer 16; graph tools read the
        // node's entry in ros_discovery_info with their own layout.
        let expected = if cfg!(feature = "dds-humble") { 24 } else { 16 };
        assert_eq!(ros2_client::gid::GID_LENGTH, expected, "{}", super::DISTRO);
    }
}
