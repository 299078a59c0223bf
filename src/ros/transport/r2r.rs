//! The r2r (rcl) transport: raw CDR subscriptions, untyped publishers and typed services around
//! [`ManagedNode`].
//!
//! Kept as thin as the contract allows; everything with behaviour lives in
//! [`crate::ros::managed`] and below and is tested there. Service requests arrive as r2r's typed
//! messages and are handed to the node as CDR (rmw's own serialisation), so the node's codecs
//! answer them as on every other transport. This file cannot be linked without a sourced ROS 2
//! install; CI type-checks it with `--features ros,r2r/doc-only`. The `std_srvs` services
//! (`~/reset`, `~/enable`) and `use_sim_time` are compiled only where the ROS install has
//! `std_srvs` / `rosgraph_msgs` (build.rs sets `patrack_std_srvs` / `patrack_sim_time`), because
//! r2r's pre-generated doc-only bindings lack them.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::r2r::{PublisherUntyped, QosProfile, WrappedServiceTypeSupport, WrappedTypesupport};
use anyhow::Context as _;
use futures::StreamExt;

use super::{build_model, Input, Output, Sink, SinkError};
use crate::ros::args::RosArgs;
use crate::ros::inputs::qos_hint;
use crate::ros::managed::{ManagedNode, Service};
use crate::ros::msgs::Time;
use crate::ros::params::{NodeParams, ParamSources, Reliability, NODE_NAME};

/// How long one `spin_once` waits for work; bounds the shutdown delay.
const SPIN_TIMEOUT: Duration = Duration::from_millis(10);
const DIAGNOSTICS_PERIOD: Duration = Duration::from_secs(1);
/// Seconds of silence on a camera input (while active) before the node says why it may be silent.
const QOS_HINT_AFTER_S: u32 = 5;

/// One untyped publisher per output. r2r publishers are `Send` but not `Sync`, hence the mutex.
struct R2rSink {
    publishers: Mutex<HashMap<Output, PublisherUntyped>>,
}

impl Sink for R2rSink {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), SinkError> {
        let publishers = self.publishers.lock().unwrap_or_else(PoisonError::into_inner);
        let publisher = publishers.get(&output).ok_or(SinkError::NoPublisher(output.topic()))?;
        publisher.publish_raw(cdr).map_err(|e| SinkError::Middleware(e.to_string()))
    }

    fn subscriber_count(&self, output: Output) -> usize {
        let publishers = self.publishers.lock().unwrap_or_else(PoisonError::into_inner);
        publishers.get(&output).and_then(|p| p.get_inter_process_subscription_count().ok()).unwrap_or(0)
    }
}

/// Forwards the `log` facade to rcutils, so the node's messages reach the console and
/// `/rosout` under the node's logger, filtered by `--ros-args --log-level` (rcutils applies the
/// level; the `log` max level only saves formatting what it would drop).
struct RosLog {
    logger_name: String,
    /// r2r's own messages go to a child logger, so they are not mistaken for the node's.
    r2r_logger_name: String,
}

impl log::Log for RosLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let from_r2r = record.target().starts_with("r2r");
        let mut level = record.level();
        let message = record.args().to_string();
        // rcl reports a failed take when a publisher leaves the graph mid-message; r2r logs that
        // as an error, but nothing is lost that the node could act on.
        if from_r2r && message.starts_with("failed to take serialized message") {
            level = log::Level::Debug;
        }
        let severity = match level {
            log::Level::Error => ::r2r::LogSeverity::Error,
            log::Level::Warn => ::r2r::LogSeverity::Warn,
            log::Level::Info => ::r2r::LogSeverity::Info,
            log::Level::Debug | log::Level::Trace => ::r2r::LogSeverity::Debug,
        };
        let logger = if from_r2r { &self.r2r_logger_name } else { &self.logger_name };
        // r2r hands the text to C as a C string: an interior NUL (from a topic's data) would
        // panic there.
        let message = message.replace('\0', "\\0");
        ::r2r::log(&message, logger, record.file().unwrap_or(""), record.line().unwrap_or(0), severity);
    }

    fn flush(&self) {}
}

fn qos(reliability: Reliability, depth: usize) -> QosProfile {
    let base = match reliability {
        Reliability::BestEffort => QosProfile::default().best_effort(),
        Reliability::Reliable => QosProfile::default().reliable(),
    };
    base.keep_last(depth)
}

fn reliability_of(profile: &QosProfile) -> Reliability {
    match profile.reliability {
        ::r2r::qos::ReliabilityPolicy::BestEffort => Reliability::BestEffort,
        _ => Reliability::Reliable,
    }
}

/// Serves one service: each typed request goes to the node as CDR, the CDR answer back as the
/// typed response.
fn serve<T>(node: &mut ::r2r::Node, managed: &Arc<ManagedNode>, service: Service) -> anyhow::Result<()>
where
    T: WrappedServiceTypeSupport + 'static,
{
    let mut requests = node
        .create_service::<T>(service.name(), QosProfile::services_default())
        .with_context(|| format!("offering the service {}", service.name()))?;
    let managed = managed.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let answer = request
                .message
                .to_serialized_bytes()
                .map_err(|e| e.to_string())
                .and_then(|cdr| managed.call(service, &cdr).map_err(|e| e.to_string()))
                .and_then(|cdr| T::Response::from_serialized_bytes(&cdr).map_err(|e| e.to_string()));
            let sent = match answer {
                Ok(response) => request.respond(response).map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                log::warn!("service {}: {e}", service.name());
            }
        }
    });
    Ok(())
}

fn serve_all(node: &mut ::r2r::Node, managed: &Arc<ManagedNode>) -> anyhow::Result<()> {
    use ::r2r::{lifecycle_msgs::srv as lc, rcl_interfaces::srv as rcl};
    for service in Service::ALL {
        match service {
            Service::GetParameters => serve::<rcl::GetParameters::Service>(node, managed, service)?,
            Service::GetParameterTypes => serve::<rcl::GetParameterTypes::Service>(node, managed, service)?,
            Service::SetParameters => serve::<rcl::SetParameters::Service>(node, managed, service)?,
            Service::SetParametersAtomically => serve::<rcl::SetParametersAtomically::Service>(node, managed, service)?,
            Service::DescribeParameters => serve::<rcl::DescribeParameters::Service>(node, managed, service)?,
            Service::ListParameters => serve::<rcl::ListParameters::Service>(node, managed, service)?,
            Service::ChangeState => serve::<lc::ChangeState::Service>(node, managed, service)?,
            Service::GetState => serve::<lc::GetState::Service>(node, managed, service)?,
            Service::GetAvailableStates => serve::<lc::GetAvailableStates::Service>(node, managed, service)?,
            Service::GetAvailableTransitions | Service::GetTransitionGraph => {
                serve::<lc::GetAvailableTransitions::Service>(node, managed, service)?
            }
            #[cfg(patrack_std_srvs)]
            Service::Reset => serve::<::r2r::std_srvs::srv::Trigger::Service>(node, managed, service)?,
            #[cfg(patrack_std_srvs)]
            Service::Enable => serve::<::r2r::std_srvs::srv::SetBool::Service>(node, managed, service)?,
            #[cfg(not(patrack_std_srvs))]
            Service::Reset | Service::Enable => {
                log::warn!("{} is not offered: this build found no std_srvs in the ROS install", service.name())
            }
        }
    }
    Ok(())
}

/// The ROS clock (diagnostics and event stamps) follows `/clock` from now on.
#[cfg(patrack_sim_time)]
fn enable_sim_time(node: &mut ::r2r::Node) -> anyhow::Result<()> {
    let time_source = node.get_time_source();
    time_source.enable_sim_time(node).context("use_sim_time: subscribing to /clock")?;
    Ok(())
}

#[cfg(not(patrack_sim_time))]
fn enable_sim_time(_node: &mut ::r2r::Node) -> anyhow::Result<()> {
    anyhow::bail!(
        "use_sim_time: this build of the node found no rosgraph_msgs in the ROS install (rebuild with it sourced)"
    )
}

/// Runs the node until SIGINT/SIGTERM: the `patrack_node` binary.
pub fn run() -> anyhow::Result<()> {
    crate::ros::node::install_panic_hook();
    let args = RosArgs::parse(std::env::args()).context("reading --ros-args")?;
    let ctx = ::r2r::Context::create()?;
    let mut node = ::r2r::Node::create(ctx, NODE_NAME, "")?;
    let logger_name = node.logger().to_owned();
    let level = args.log_level(&logger_name).unwrap_or(log::LevelFilter::Info);
    let r2r_logger_name = format!("{logger_name}.r2r");
    if log::set_boxed_logger(Box::new(RosLog { logger_name: logger_name.clone(), r2r_logger_name })).is_ok() {
        log::set_max_level(level);
    }
    let node_fqn = node.fully_qualified_name()?;
    let sources = ParamSources::read(&args.params_files, &args.params)?;
    let resolved = NodeParams::resolve(&sources, &node_fqn)?;
    for name in &resolved.unknown {
        log::warn!("ignoring the parameter {name}: the node has no parameter of that name");
    }
    let params = resolved.params;
    if params.use_sim_time {
        enable_sim_time(&mut node)?;
    }

    let mut publishers = HashMap::new();
    for output in Output::advertised(&params) {
        let q = output.qos(&params);
        let publisher = node
            .create_publisher_untyped(output.topic(), output.type_name(), qos(q.reliability, q.depth))
            .with_context(|| format!("advertising {}", output.topic()))?;
        publishers.insert(output, publisher);
    }
    let sink = Arc::new(R2rSink { publishers: Mutex::new(publishers) });
    let clock = node.get_ros_clock();
    let now = Box::new(move || {
        let ns = clock.lock().unwrap_or_else(PoisonError::into_inner).get_now().map(|d| d.as_nanos());
        ns.ok().and_then(|ns| i64::try_from(ns).ok()).and_then(Time::from_ns).unwrap_or_default()
    });
    let factory = Box::new(|p: &NodeParams| build_model(p).map_err(Into::into));
    let managed = Arc::new(ManagedNode::new(&node_fqn, params.clone(), factory, sink, now));
    log::info!("patrack node {node_fqn} on {} ({})", params.device, params.modality);

    let runtime = tokio::runtime::Runtime::new()?;
    let _guard = runtime.enter();
    serve_all(&mut node, &managed)?;
    let cameras = Input::cameras(&params);
    let [rgb_topic, aux_topic] = cameras.map(|i| args.resolve_topic(i.topic(), NODE_NAME));
    crate::limits::check_distinct_topics(&rgb_topic, &aux_topic).context("the camera remappings")?;
    for input in Input::subscribed(&params) {
        let q = input.qos(&params);
        let mut stream = node
            .subscribe_raw(input.topic(), input.type_name(), qos(q.reliability, q.depth))
            .with_context(|| format!("subscribing to {}", input.topic()))?;
        let managed = managed.clone();
        // Drained continuously: r2r's queues drop the newest message when full.
        tokio::spawn(async move {
            while let Some(cdr) = stream.next().await {
                managed.handle(input, &cdr);
            }
        });
    }
    let mut timer = node.create_timer(DIAGNOSTICS_PERIOD)?;
    let node = Arc::new(Mutex::new(node));
    let graph = node.clone();
    let managed_diag = managed.clone();
    let topics: Vec<(Input, String)> = cameras.iter().map(|i| (*i, args.resolve_topic(i.topic(), NODE_NAME))).collect();
    tokio::spawn(async move {
        let mut said = BTreeSet::new();
        let mut before = managed_diag.stats();
        // Seconds each camera input has been silent while active; publishers that start a little
        // after the node are not worth a warning.
        let mut silent_s = [0u32; 2];
        while timer.tick().await.is_ok() {
            managed_diag.publish_diagnostics();
            let stats = managed_diag.stats();
            let active = managed_diag.state() == crate::ros::lifecycle::LifecycleState::Active;
            for (k, (input, resolved)) in topics.iter().enumerate() {
                let silent = active && stats.received[input.index()] == before.received[input.index()];
                silent_s[k] = if silent { silent_s[k] + 1 } else { 0 };
                if silent_s[k] < QOS_HINT_AFTER_S {
                    continue;
                }
                let publishers = {
                    let node = graph.lock().unwrap_or_else(PoisonError::into_inner);
                    node.get_publishers_info_by_topic(resolved, false).unwrap_or_default()
                };
                let publishers: Vec<(String, Reliability)> = publishers
                    .iter()
                    .map(|p| {
                        (
                            format!("{}/{}", p.node_namespace.trim_end_matches('/'), p.node_name),
                            reliability_of(&p.qos_profile),
                        )
                    })
                    .collect();
                let ours = input.qos(&managed_diag.params()).reliability;
                let received_before = stats.received[input.index()] > 0;
                if let Some(hint) = qos_hint(*input, resolved, ours, &publishers, received_before) {
                    if said.insert(hint.clone()) {
                        log::warn!("{hint}");
                    }
                }
            }
            before = stats;
        }
    });
    managed.start();

    let running = Arc::new(AtomicBool::new(true));
    let result = runtime.block_on(async {
        let spinning = running.clone();
        let spin = tokio::task::spawn_blocking(move || {
            while spinning.load(Ordering::Relaxed) {
                node.lock().unwrap_or_else(PoisonError::into_inner).spin_once(SPIN_TIMEOUT);
            }
        });
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => log::info!("SIGINT: shutting down"),
            _ = terminate.recv() => log::info!("SIGTERM: shutting down"),
        }
        running.store(false, Ordering::Relaxed);
        spin.await?;
        anyhow::Ok(())
    });
    // The tasks hold clones of the node; stopping the runtime drops them, then the core's
    // threads are joined here.
    managed.shutdown();
    drop(_guard);
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}
