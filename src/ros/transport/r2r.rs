//! The r2r (rcl) transport: raw CDR subscriptions and untyped publishers around the node core.
//!
//! Kept as thin as the [`Sink`] contract allows; everything with behaviour lives in
//! [`crate::ros::node`] and is tested there. This file cannot be linked without a sourced ROS 2
//! install; CI type-checks it with `--features ros,r2r/doc-only`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::r2r::{Parameter, ParameterValue, PublisherUntyped, QosProfile};
use anyhow::Context as _;
use futures::StreamExt;

use super::{build_model, Input, Output, Sink, OUTPUT_QUEUE_DEPTH, SENSOR_QUEUE_DEPTH};
use crate::ros::msgs::Time;
use crate::ros::node::NodeCore;
use crate::ros::params::{NodeParams, NODE_NAME};

/// How long one `spin_once` waits for work; bounds the shutdown delay.
const SPIN_TIMEOUT: Duration = Duration::from_millis(10);
const DIAGNOSTICS_PERIOD: Duration = Duration::from_secs(1);

/// One untyped publisher per output. r2r publishers are `Send` but not `Sync`, hence the mutex.
struct R2rSink {
    publishers: Mutex<HashMap<Output, PublisherUntyped>>,
}

impl Sink for R2rSink {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), String> {
        let publishers = self.publishers.lock().unwrap_or_else(PoisonError::into_inner);
        let publisher = publishers.get(&output).ok_or_else(|| format!("no publisher for {}", output.topic()))?;
        publisher.publish_raw(cdr).map_err(|e| e.to_string())
    }

    fn subscriber_count(&self, output: Output) -> usize {
        let publishers = self.publishers.lock().unwrap_or_else(PoisonError::into_inner);
        publishers.get(&output).and_then(|p| p.get_inter_process_subscription_count().ok()).unwrap_or(0)
    }
}

/// Forwards the `log` facade to rcutils, so the core's messages reach the console and `/rosout`.
struct RosLog {
    logger_name: String,
    level: log::LevelFilter,
}

impl log::Log for RosLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let severity = match record.level() {
            log::Level::Error => ::r2r::LogSeverity::Error,
            log::Level::Warn => ::r2r::LogSeverity::Warn,
            log::Level::Info => ::r2r::LogSeverity::Info,
            log::Level::Debug | log::Level::Trace => ::r2r::LogSeverity::Debug,
        };
        let message = record.args().to_string();
        // What r2r's log_* macros expand to; called directly to keep the record's file and line.
        ::r2r::log(&message, &self.logger_name, record.file().unwrap_or(""), record.line().unwrap_or(0), severity);
    }

    fn flush(&self) {}
}

/// A ROS parameter value as the YAML value [`NodeParams::with_value`] reads.
pub fn yaml_value(value: &ParameterValue) -> Option<serde_yaml::Value> {
    use serde_yaml::Value;
    Some(match value {
        ParameterValue::NotSet => return None,
        ParameterValue::Bool(v) => Value::from(*v),
        ParameterValue::Integer(v) => Value::from(*v),
        ParameterValue::Double(v) => Value::from(*v),
        ParameterValue::String(v) => Value::from(v.as_str()),
        ParameterValue::BoolArray(v) => Value::from(v.clone()),
        ParameterValue::ByteArray(v) => Value::from(v.clone()),
        ParameterValue::IntegerArray(v) => Value::from(v.clone()),
        ParameterValue::DoubleArray(v) => Value::from(v.clone()),
        ParameterValue::StringArray(v) => Value::from(v.clone()),
    })
}

/// The ROS parameter for a YAML value from [`NodeParams::flatten`].
fn parameter_value(value: &serde_yaml::Value) -> ParameterValue {
    use serde_yaml::Value;
    match value {
        Value::Bool(v) => ParameterValue::Bool(*v),
        Value::Number(n) if n.is_f64() => ParameterValue::Double(n.as_f64().unwrap_or_default()),
        Value::Number(n) => ParameterValue::Integer(n.as_i64().unwrap_or_default()),
        Value::String(s) => ParameterValue::String(s.clone()),
        Value::Sequence(items) => ParameterValue::DoubleArray(items.iter().filter_map(Value::as_f64).collect()),
        _ => ParameterValue::NotSet,
    }
}

/// Reads the node's parameter overrides (`--params-file`, `-p`) over the defaults and declares
/// every parameter, so `ros2 param list/get/dump` show the full set.
fn read_parameters(node: &::r2r::Node) -> anyhow::Result<NodeParams> {
    let mut params = NodeParams::default();
    let mut declared = node.params.lock().unwrap_or_else(PoisonError::into_inner);
    let known = params.flatten();
    for (name, default) in &known {
        match declared.get(name).and_then(|p| yaml_value(&p.value)) {
            Some(value) => {
                params = params.with_value(name, value).with_context(|| format!("parameter {name}"))?;
            }
            None => {
                declared.insert(name.clone(), Parameter::new(parameter_value(default)));
            }
        }
    }
    for name in declared.keys() {
        if !known.iter().any(|(k, _)| k == name) {
            log::warn!("ignoring unknown parameter {name}");
        }
    }
    Ok(params)
}

fn qos(input: Input) -> QosProfile {
    if input.is_sensor_data() {
        QosProfile::sensor_data().keep_last(SENSOR_QUEUE_DEPTH)
    } else {
        QosProfile::default().keep_last(OUTPUT_QUEUE_DEPTH)
    }
}

/// Runs the node until SIGINT/SIGTERM: the `patrack_node` binary.
pub fn run() -> anyhow::Result<()> {
    let ctx = ::r2r::Context::create()?;
    let mut node = ::r2r::Node::create(ctx, NODE_NAME, "")?;
    let logger_name = node.logger().to_owned();
    let level = std::env::var("RUST_LOG").ok().and_then(|s| s.parse().ok()).unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(RosLog { logger_name, level })).is_ok() {
        log::set_max_level(level);
    }
    let params = read_parameters(&node)?;
    let model = build_model(&params)?;

    let mut streams = Vec::new();
    for input in Input::subscribed(&params) {
        let stream = node
            .subscribe_raw(input.topic(), input.type_name(), qos(input))
            .with_context(|| format!("subscribing to {}", input.topic()))?;
        streams.push((input, stream));
    }
    let mut publishers = HashMap::new();
    for output in Output::ALL {
        let qos = QosProfile::default().keep_last(OUTPUT_QUEUE_DEPTH);
        let publisher = node
            .create_publisher_untyped(output.topic(), output.type_name(), qos)
            .with_context(|| format!("advertising {}", output.topic()))?;
        publishers.insert(output, publisher);
    }
    // The parameter handler also switches the ROS clock to /clock when use_sim_time is set.
    let (parameter_service, mut parameter_events) = node.make_parameter_handler()?;
    let mut timer = node.create_timer(DIAGNOSTICS_PERIOD)?;
    let clock = node.get_ros_clock();
    log::info!("patrack node: {params:?}");
    let sink = Arc::new(R2rSink { publishers: Mutex::new(publishers) });
    let core = Arc::new(NodeCore::new(params, model, sink)?);

    let runtime = tokio::runtime::Runtime::new()?;
    let running = Arc::new(AtomicBool::new(true));
    let result = runtime.block_on(async {
        tokio::spawn(parameter_service);
        for (input, mut stream) in streams {
            let core = core.clone();
            // Drained continuously: r2r's 10-slot queues drop the newest message when full.
            tokio::spawn(async move {
                while let Some(cdr) = stream.next().await {
                    core.handle(input, &cdr);
                }
            });
        }
        let core_params = core.clone();
        tokio::spawn(async move {
            while let Some((name, value)) = parameter_events.next().await {
                let Some(value) = yaml_value(&value) else { continue };
                if let Err(e) = core_params.set_parameter(&name, value) {
                    log::warn!("parameter {name} not applied: {e}");
                }
            }
        });
        let core_diag = core.clone();
        tokio::spawn(async move {
            while timer.tick().await.is_ok() {
                let now_ns = clock.lock().unwrap_or_else(PoisonError::into_inner).get_now().map(|d| d.as_nanos());
                let stamp = now_ns.ok().and_then(|ns| i64::try_from(ns).ok()).and_then(Time::from_ns);
                core_diag.publish_diagnostics(stamp.unwrap_or_default());
            }
        });
        let node = Arc::new(Mutex::new(node));
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
    // Stream tasks hold clones of the core; stopping the runtime drops them, then the last
    // reference joins the inference and debug threads.
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(core);
    result
}
