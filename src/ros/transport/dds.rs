//! The pure-Rust DDS transport (ros2-client on RustDDS): the node without a ROS install, e.g. a
//! GPU workstation joining a robot's DDS domain, and the way CI runs the node over a real wire.
//!
//! ros2-client (de)serialises messages itself with `cdr-encoding`, the crate behind the
//! project's codecs, so the mirror structs of [`crate::ros::msgs`] are the wire types: incoming
//! messages enter the core through [`NodeCore::handle_message`], outgoing CDR from the core is
//! decoded back into its struct for the typed publisher.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use ros2_client::{
    Context, ContextOptions, MessageTypeName, Name, Node, NodeName, NodeOptions, Publisher, QosProfile, Subscription,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{build_model, Input, Output, Sink, OUTPUT_QUEUE_DEPTH, SENSOR_QUEUE_DEPTH};
use crate::ros::msgs::{
    CompressedImage, Detection2D, Detection2DArray, DiagnosticArray, Empty, Float32, Image, RosMessage, Time,
};
use crate::ros::node::{InputMessage, NodeCore};
use crate::ros::output::expand_topic;
use crate::ros::params::{NodeParams, NODE_NAME};

const DIAGNOSTICS_PERIOD: Duration = Duration::from_secs(1);

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
}

impl Default for DdsOptions {
    fn default() -> Self {
        let domain_id = std::env::var("ROS_DOMAIN_ID").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        Self { namespace: "/".into(), node_name: NODE_NAME.into(), domain_id, run_for: None }
    }
}

/// `pkg/msg/Type` as ros2-client's type name.
fn type_name(full: &str) -> MessageTypeName {
    let package = full.split('/').next().unwrap_or_default();
    let name = full.rsplit('/').next().unwrap_or_default();
    MessageTypeName::new(package, name)
}

fn qos(depth: usize, reliable: bool) -> QosProfile {
    let base = if reliable { QosProfile::publisher_default() } else { QosProfile::subscription_default() };
    base.history(ros2_client::qos::History::KeepLast { depth })
}

struct Publishers {
    detections: Publisher<Detection2DArray>,
    confidence: Publisher<Float32>,
    debug_image: Publisher<Image>,
    diagnostics: Publisher<DiagnosticArray>,
}

struct DdsSink {
    publishers: Publishers,
    /// The node answers matched-subscriber queries (its spinner keeps the graph current).
    node: Mutex<Node>,
}

fn publish<M: RosMessage + Serialize + std::fmt::Debug>(publisher: &Publisher<M>, cdr: &[u8]) -> Result<(), String> {
    let msg = M::decode(cdr).map_err(|e| e.to_string())?;
    publisher.publish(msg).map_err(|e| format!("{e:?}"))
}

impl Sink for DdsSink {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), String> {
        let p = &self.publishers;
        match output {
            Output::Detections => publish(&p.detections, cdr),
            Output::Confidence => publish(&p.confidence, cdr),
            Output::DebugImage => publish(&p.debug_image, cdr),
            Output::Diagnostics => publish(&p.diagnostics, cdr),
        }
    }

    fn subscriber_count(&self, output: Output) -> usize {
        let node = self.node.lock().unwrap_or_else(PoisonError::into_inner);
        let p = &self.publishers;
        match output {
            Output::Detections => p.detections.get_subscription_count(&node),
            Output::Confidence => p.confidence.get_subscription_count(&node),
            Output::DebugImage => p.debug_image.get_subscription_count(&node),
            Output::Diagnostics => p.diagnostics.get_subscription_count(&node),
        }
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

fn publisher<M: Serialize>(node: &mut Node, names: &Names, output: Output) -> anyhow::Result<Publisher<M>> {
    let qos = qos(OUTPUT_QUEUE_DEPTH, true);
    let topic = node
        .create_topic(&names.topic(output.topic())?, type_name(output.type_name()), &qos)
        .map_err(|e| anyhow::anyhow!("topic {}: {e:?}", output.topic()))?;
    node.create_publisher(&topic, Some(qos)).map_err(|e| anyhow::anyhow!("publisher {}: {e:?}", output.topic()))
}

fn subscription<M: 'static>(node: &mut Node, names: &Names, input: Input) -> anyhow::Result<Subscription<M>> {
    let qos = if input.is_sensor_data() { qos(SENSOR_QUEUE_DEPTH, false) } else { qos(OUTPUT_QUEUE_DEPTH, true) };
    let topic = node
        .create_topic(&names.topic(input.topic())?, type_name(input.type_name()), &qos)
        .map_err(|e| anyhow::anyhow!("topic {}: {e:?}", input.topic()))?;
    node.create_subscription(&topic, Some(qos)).map_err(|e| anyhow::anyhow!("subscription {}: {e:?}", input.topic()))
}

/// Drains one subscription into the core on its own thread (RustDDS streams are not `Send`,
/// so they cannot move between runtime workers). The thread holds only a weak reference: once
/// the node stops, the core is dropped and the thread ends at its next message.
fn drain<M, F>(core: &Arc<NodeCore>, input: Input, sub: Subscription<M>, wrap: F) -> anyhow::Result<()>
where
    M: DeserializeOwned + Send + 'static,
    F: Fn(M) -> InputMessage + Send + 'static,
{
    let core = Arc::downgrade(core);
    std::thread::Builder::new().name(format!("dds-{}", input.key())).spawn(move || {
        futures::executor::block_on(async move {
            let mut stream = Box::pin(sub.async_stream());
            while let Some(received) = stream.next().await {
                let Some(core) = core.upgrade() else { break };
                match received {
                    Ok((msg, _info)) => core.handle_message(input, wrap(msg)),
                    Err(e) => log::debug!("{}: receive error {e:?}", input.topic()),
                }
            }
        })
    })?;
    Ok(())
}

/// Runs the node over DDS until SIGINT/SIGTERM or `options.run_for`: `patrack node`.
pub fn run(params: NodeParams, options: &DdsOptions) -> anyhow::Result<()> {
    params.validate()?;
    let model = build_model(&params)?;
    let context = Context::with_options(ContextOptions::new().domain_id(options.domain_id))
        .map_err(|e| anyhow::anyhow!("starting DDS: {e:?}"))?;
    let node_name = NodeName::new(&options.namespace, &options.node_name)
        .map_err(|e| anyhow::anyhow!("node name {}: {e:?}", options.node_name))?;
    let mut node = context
        .new_node(node_name, NodeOptions::new().enable_rosout(true))
        .map_err(|e| anyhow::anyhow!("creating the node: {e:?}"))?;
    let names = Names { namespace: &options.namespace, node_name: &options.node_name };

    let runtime = tokio::runtime::Runtime::new()?;
    let spinner = node.spinner().map_err(|e| anyhow::anyhow!("node spinner: {e:?}"))?;
    runtime.spawn(async move {
        if let Err(e) = spinner.spin().await {
            log::error!("DDS spinner stopped: {e:?}");
        }
    });

    let publishers = Publishers {
        detections: publisher(&mut node, &names, Output::Detections)?,
        confidence: publisher(&mut node, &names, Output::Confidence)?,
        debug_image: publisher(&mut node, &names, Output::DebugImage)?,
        diagnostics: publisher(&mut node, &names, Output::Diagnostics)?,
    };
    let inputs = Input::subscribed(&params);
    let mut images = Vec::new();
    let mut compressed = Vec::new();
    for input in &inputs[..2] {
        if params.use_compressed {
            compressed.push((*input, subscription::<CompressedImage>(&mut node, &names, *input)?));
        } else {
            images.push((*input, subscription::<Image>(&mut node, &names, *input)?));
        }
    }
    let init = subscription::<Detection2D>(&mut node, &names, Input::Init)?;
    let reset = subscription::<Empty>(&mut node, &names, Input::Reset)?;

    log::info!(
        "patrack node on DDS domain {} as {}/{}: {params:?}",
        options.domain_id,
        options.namespace.trim_end_matches('/'),
        options.node_name
    );
    let sink = Arc::new(DdsSink { publishers, node: Mutex::new(node) });
    let core = Arc::new(NodeCore::new(params, model, sink)?);
    for (input, sub) in images {
        drain(&core, input, sub, InputMessage::Image)?;
    }
    for (input, sub) in compressed {
        drain(&core, input, sub, InputMessage::CompressedImage)?;
    }
    drain(&core, Input::Init, init, InputMessage::Init)?;
    drain(&core, Input::Reset, reset, |_| InputMessage::Reset)?;
    let core_diag = Arc::downgrade(&core);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(DIAGNOSTICS_PERIOD);
        loop {
            interval.tick().await;
            let Some(core_diag) = core_diag.upgrade() else { break };
            let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos());
            let stamp = now_ns.ok().and_then(|ns| i64::try_from(ns).ok()).and_then(Time::from_ns);
            core_diag.publish_diagnostics(stamp.unwrap_or_default());
        }
    });

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
    let stats = core.stats();
    log::info!(
        "processed {} pairs, skipped {} while busy, {} malformed messages",
        stats.processed,
        stats.pairs_skipped_busy,
        stats.malformed.iter().sum::<u64>()
    );
    // Dropping the core joins the node's threads and drops the DDS node (its spinner is told
    // to stop while the runtime still runs); dropping the context tells peers that we left.
    drop(core);
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(context);
    result.context("waiting for shutdown")
}
