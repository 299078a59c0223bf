//! The node as the ROS graph sees it, without a middleware: lifecycle transitions, the parameter
//! services, `~/enable` and `~/reset`, all through [`ManagedNode::call`] with CDR requests, as
//! both transports hand them over.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use patrack::device::Precision;
use patrack::model::{ModelConfig, PATrack};
use patrack::ros::lifecycle::LifecycleState;
use patrack::ros::managed::{ManagedNode, Service};
use patrack::ros::msgs::{Detection2DArray, DiagnosticArray, DiagnosticStatus, Header, Image, RosMessage, Time};
use patrack::ros::node::{Input, Sink, SinkError};
use patrack::ros::output::Output;
use patrack::ros::params::NodeParams;
use patrack::ros::srv::*;
use tch::Device;

#[derive(Default)]
struct MemorySink {
    published: Mutex<Vec<(Output, Vec<u8>)>>,
}

impl Sink for MemorySink {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), SinkError> {
        self.published.lock().unwrap().push((output, cdr.to_vec()));
        Ok(())
    }
}

impl MemorySink {
    fn take<M: RosMessage>(&self, output: Output) -> Vec<M> {
        let mut all = self.published.lock().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|(o, _)| *o == output);
        *all = rest;
        mine.into_iter().map(|(_, bytes)| M::decode(&bytes).unwrap()).collect()
    }
}

fn params(autostart: bool) -> NodeParams {
    let mut p = NodeParams {
        device: "cpu".into(),
        precision: "fp32".into(),
        model_config: "tiny".into(),
        autostart,
        ..Default::default()
    };
    p.tracker.lost_frames = 0;
    p
}

fn node(p: NodeParams, fail_to_load: bool) -> (ManagedNode, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let factory = Box::new(move |p: &NodeParams| -> Result<PATrack, Box<dyn std::error::Error + Send + Sync>> {
        if fail_to_load {
            return Err("weights file /nonexistent.safetensors: No such file or directory".into());
        }
        let mut m = PATrack::new(ModelConfig::tiny(), Device::Cpu, Precision::Fp32)?;
        assert_eq!(p.model_config, "tiny");
        m.fill_hashed();
        Ok(m)
    });
    let clock = Box::new(|| Time { sec: 7, nanosec: 0 });
    (ManagedNode::new("/robot/patrack", p, factory, sink.clone(), clock), sink)
}

/// Calls a service with a CDR request and decodes the CDR answer, as a transport does.
fn call<Req: RosMessage, Resp: RosMessage>(node: &ManagedNode, service: Service, request: &Req) -> Resp {
    let answer = node.call(service, &request.encode().unwrap()).unwrap();
    Resp::decode(&answer).unwrap()
}

fn change(node: &ManagedNode, label: &str) -> bool {
    let request = ChangeStateRequest { transition: Transition { id: 0, label: label.into() } };
    call::<_, ChangeStateResponse>(node, Service::ChangeState, &request).success
}

fn pair(node: &ManagedNode, n: i64) {
    let stamp = Time::from_ns(1_000_000_000 + n * 33_000_000).unwrap();
    let header = Header { stamp, frame_id: "cam".into() };
    let rgb = Image {
        header: header.clone(),
        height: 48,
        width: 64,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: 192,
        data: (0..64 * 48 * 3).map(|i| (i % 251) as u8).collect(),
    };
    let aux = Image { encoding: "mono8".into(), step: 64, data: vec![9; 64 * 48], ..rgb.clone() };
    node.handle(Input::Rgb, &rgb.encode().unwrap());
    node.handle(Input::Aux, &aux.encode().unwrap());
    if let Some(core) = node.core() {
        assert!(core.wait_idle(Duration::from_secs(60)));
    }
}

fn double(name: &str, v: f64) -> Parameter {
    Parameter {
        name: name.into(),
        value: ParameterValue { type_: parameter_type::DOUBLE, double_value: v, ..Default::default() },
    }
}

#[test]
fn lifecycle_transitions_load_activate_and_free_the_tracker() {
    let (node, sink) = node(params(false), false);
    assert!(!node.start(), "autostart off: stays unconfigured");
    let state: GetStateResponse = call(&node, Service::GetState, &EmptyRequest::default());
    assert_eq!(state.current_state, State { id: 1, label: "unconfigured".into() });
    pair(&node, 0);
    assert_eq!(node.dropped_inactive(), 2);
    assert!(node.core().is_none());

    // A transition that is not available is refused and changes nothing.
    assert!(!change(&node, "activate"));
    assert_eq!(node.state(), LifecycleState::Unconfigured);

    assert!(change(&node, "configure"));
    assert_eq!(node.state(), LifecycleState::Inactive);
    assert!(node.core().is_some(), "configure loads the model");
    let events: Vec<TransitionEvent> = sink.take(Output::TransitionEvent);
    let steps: Vec<(u8, u8, u8)> =
        events.iter().map(|e| (e.transition.id, e.start_state.id, e.goal_state.id)).collect();
    assert_eq!(steps, [(1, 1, 10), (10, 10, 2)], "configure, then on_configure success");
    assert_eq!(events[0].timestamp, 7_000_000_000);
    pair(&node, 1);
    assert!(sink.take::<Detection2DArray>(Output::Detections).is_empty(), "inactive: no outputs");

    let open: GetAvailableTransitionsResponse = call(&node, Service::GetAvailableTransitions, &EmptyRequest::default());
    let labels: Vec<&str> = open.available_transitions.iter().map(|t| t.transition.label.as_str()).collect();
    assert_eq!(labels, ["cleanup", "activate", "shutdown"]);

    assert!(change(&node, "activate"));
    pair(&node, 2);
    assert_eq!(sink.take::<Detection2DArray>(Output::Detections).len(), 1, "active: tracked");
    assert!(change(&node, "deactivate"));
    pair(&node, 3);
    assert!(sink.take::<Detection2DArray>(Output::Detections).is_empty());
    assert!(change(&node, "cleanup"));
    assert!(node.core().is_none(), "cleanup frees the model");
    assert!(change(&node, "shutdown"));
    assert_eq!(node.state(), LifecycleState::Finalized);
    let graph: GetAvailableTransitionsResponse = call(&node, Service::GetTransitionGraph, &EmptyRequest::default());
    assert_eq!(graph.available_transitions.len(), 25);
    let states: GetAvailableStatesResponse = call(&node, Service::GetAvailableStates, &EmptyRequest::default());
    assert_eq!(states.available_states.len(), 10);
}

#[test]
fn a_model_that_does_not_load_fails_configure_and_leaves_the_node_unconfigured() {
    let (node, sink) = node(params(true), true);
    assert!(!node.start());
    assert_eq!(node.state(), LifecycleState::Unconfigured);
    let events: Vec<TransitionEvent> = sink.take(Output::TransitionEvent);
    assert_eq!(events.last().map(|e| (e.transition.id, e.goal_state.id)), Some((11, 1)), "on_configure failure");
    let diag = node.diagnostics(Time::default());
    assert_eq!(diag.status[0].message, "unconfigured (lifecycle): model not loaded");
}

#[test]
fn parameter_services_refuse_with_reasons_and_report_what_is_in_force() {
    let (node, sink) = node(params(true), false);
    assert!(node.start());
    let declared: Vec<ParameterEvent> = sink.take(Output::ParameterEvents);
    assert_eq!(declared.len(), 1);
    assert_eq!(declared[0].node, "/robot/patrack");
    assert_eq!(declared[0].new_parameters.len(), node.params().flatten().len());

    let mut model_path = double("model_path", 0.0);
    model_path.value =
        ParameterValue { type_: parameter_type::STRING, string_value: "/x.pt".into(), ..Default::default() };
    let request = SetParametersRequest {
        parameters: vec![
            model_path,
            double("tracker.lost_threshold", 2.0),
            double("tracker.lost_threshold", 0.4),
            double("nope", 1.0),
        ],
    };
    let answer: SetParametersResponse = call(&node, Service::SetParameters, &request);
    let got: Vec<(bool, &str)> = answer.results.iter().map(|r| (r.successful, r.reason.as_str())).collect();
    println!("{got:?}");
    assert!(!got[0].0);
    assert!(got[0].1.contains("read-only"));
    assert!(!got[1].0);
    assert!(got[1].1.contains("within [0, 1]"));
    assert_eq!(got[2], (true, ""));
    assert_eq!(got[3], (false, "unknown parameter `nope`"));

    let values: GetParametersResponse = call(
        &node,
        Service::GetParameters,
        &GetParametersRequest { names: vec!["tracker.lost_threshold".into(), "model_path".into()] },
    );
    assert_eq!(values.values[0].double_value, 0.4, "the accepted value is in force");
    assert_eq!(values.values[1].string_value, "", "the refused one is not");
    assert_eq!(node.core().unwrap().params().tracker.lost_threshold, 0.4, "and reached the tracker");
    let events: Vec<ParameterEvent> = sink.take(Output::ParameterEvents);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].changed_parameters, vec![double("tracker.lost_threshold", 0.4)]);

    let described: DescribeParametersResponse =
        call(&node, Service::DescribeParameters, &DescribeParametersRequest { names: vec!["device".into()] });
    assert!(described.descriptors[0].read_only);
    assert_eq!(described.descriptors[0].additional_constraints, "auto | cpu | cuda | cuda:N");
    let listed: ListParametersResponse =
        call(&node, Service::ListParameters, &ListParametersRequest { prefixes: vec!["sync".into()], depth: 0 });
    assert_eq!(listed.result.names, ["sync.queue_size", "sync.max_interval_s"]);
    let types: GetParameterTypesResponse =
        call(&node, Service::GetParameterTypes, &GetParameterTypesRequest { names: vec!["enabled".into()] });
    assert_eq!(types.types, [parameter_type::BOOL]);

    // Atomically: related values move together, or nothing changes.
    let mut scaling = double("thermal.scaling", 0.0);
    scaling.value =
        ParameterValue { type_: parameter_type::STRING, string_value: "fixed".into(), ..Default::default() };
    let atomic = SetParametersAtomicallyRequest {
        parameters: vec![scaling, double("thermal.low", 28000.0), double("thermal.high", 32000.0)],
    };
    let answer: SetParametersAtomicallyResponse = call(&node, Service::SetParametersAtomically, &atomic);
    assert!(answer.result.successful, "{}", answer.result.reason);
    assert_eq!(node.params().thermal.high, 32000.0);
}

#[test]
fn enable_and_reset_services_switch_the_running_tracker() {
    let (node, sink) = node(params(true), false);
    assert!(node.start());
    let off: TriggerResponse = call(&node, Service::Enable, &SetBoolRequest { data: false });
    assert!(off.success, "{}", off.message);
    assert!(!node.params().enabled);
    pair(&node, 0);
    assert!(sink.take::<Detection2DArray>(Output::Detections).is_empty());
    let on: TriggerResponse = call(&node, Service::Enable, &SetBoolRequest { data: true });
    assert!(on.success);
    pair(&node, 1);
    assert_eq!(sink.take::<Detection2DArray>(Output::Detections).len(), 1);
    let reset: TriggerResponse = call(&node, Service::Reset, &EmptyRequest::default());
    assert!(reset.success, "{}", reset.message);
    let events: Vec<ParameterEvent> = sink.take(Output::ParameterEvents);
    assert_eq!(events.iter().map(|e| e.changed_parameters.len()).sum::<usize>(), 2, "enabled changed twice");

    // A request that does not decode is an error for the transport, not a crash.
    assert!(node.call(Service::SetParameters, &[0, 1, 0, 0, 0xff]).is_err());
    node.publish_diagnostics();
    let diag: Vec<DiagnosticArray> = sink.take(Output::Diagnostics);
    let status = &diag[0].status[0];
    assert_ne!(status.level, DiagnosticStatus::ERROR);
    assert!(status.values.iter().any(|kv| kv.key == "lifecycle" && kv.value == "active"));
}
