//! The node as a ROS graph sees it: a managed (lifecycle) node around [`NodeCore`] that also
//! answers the parameter services and the `std_srvs` switches. Transports create one
//! [`ManagedNode`], subscribe and advertise what [`Input::subscribed`], [`Output::advertised`] and
//! [`Service::ALL`] list, and hand it raw CDR: messages to [`ManagedNode::handle`], requests to
//! [`ManagedNode::call`]. Everything with behaviour is here and tested without a middleware.
//!
//! | lifecycle state | model | camera messages | outputs |
//! |---|---|---|---|
//! | unconfigured | not loaded | dropped | diagnostics only |
//! | inactive | loaded, threads running | dropped | diagnostics only |
//! | active | loaded | tracked | all |
//! | finalized | freed | dropped | diagnostics only |
//!
//! With `autostart` (the default) the node configures and activates itself at start, so a plain
//! `ros2 run` / `ros2 launch` tracks at once; lifecycle managers start it with
//! `autostart:=false` and drive the transitions. `enabled` / `~/enable` is a lighter switch
//! inside `active`: camera messages are dropped, the model stays loaded.

use std::sync::{Arc, Mutex};

use crate::model::PATrack;
use crate::ros::diagnostics;
use crate::ros::inputs::Input;
use crate::ros::lifecycle::{self, Action, LifecycleState, Outcome};
use crate::ros::msgs::{DiagnosticArray, MsgError, RosMessage, Time};
use crate::ros::node::{NodeCore, NodeStats, Sink, SinkError};
use crate::ros::output::Output;
use crate::ros::parameters::{self, SetOutcome};
use crate::ros::params::NodeParams;
use crate::ros::slot::lock;
use crate::ros::srv::{
    parameter_type, ChangeStateRequest, ChangeStateResponse, DescribeParametersRequest, DescribeParametersResponse,
    EmptyRequest, GetAvailableStatesResponse, GetAvailableTransitionsResponse, GetParameterTypesRequest,
    GetParameterTypesResponse, GetParametersRequest, GetParametersResponse, GetStateResponse, ListParametersRequest,
    ListParametersResponse, Parameter, ParameterEvent, ParameterValue, SetBoolRequest, SetParametersAtomicallyRequest,
    SetParametersAtomicallyResponse, SetParametersRequest, SetParametersResponse, TransitionEvent, TriggerResponse,
};

/// Builds the network for the parameters (run by the configure transition).
pub type ModelFactory =
    Box<dyn Fn(&NodeParams) -> Result<PATrack, Box<dyn std::error::Error + Send + Sync>> + Send + Sync>;

/// The node's clock (the ROS clock, simulated with `use_sim_time`), for event stamps.
pub type Clock = Box<dyn Fn() -> Time + Send + Sync>;

/// A service the node offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    GetParameters,
    GetParameterTypes,
    SetParameters,
    SetParametersAtomically,
    DescribeParameters,
    ListParameters,
    ChangeState,
    GetState,
    GetAvailableStates,
    GetAvailableTransitions,
    GetTransitionGraph,
    Reset,
    Enable,
}

impl Service {
    pub const ALL: [Service; 13] = [
        Service::GetParameters,
        Service::GetParameterTypes,
        Service::SetParameters,
        Service::SetParametersAtomically,
        Service::DescribeParameters,
        Service::ListParameters,
        Service::ChangeState,
        Service::GetState,
        Service::GetAvailableStates,
        Service::GetAvailableTransitions,
        Service::GetTransitionGraph,
        Service::Reset,
        Service::Enable,
    ];

    /// The name relative to the node.
    pub fn name(self) -> &'static str {
        match self {
            Service::GetParameters => "~/get_parameters",
            Service::GetParameterTypes => "~/get_parameter_types",
            Service::SetParameters => "~/set_parameters",
            Service::SetParametersAtomically => "~/set_parameters_atomically",
            Service::DescribeParameters => "~/describe_parameters",
            Service::ListParameters => "~/list_parameters",
            Service::ChangeState => "~/change_state",
            Service::GetState => "~/get_state",
            Service::GetAvailableStates => "~/get_available_states",
            Service::GetAvailableTransitions => "~/get_available_transitions",
            Service::GetTransitionGraph => "~/get_transition_graph",
            Service::Reset => "~/reset",
            Service::Enable => "~/enable",
        }
    }

    /// The service type, `pkg/srv/Name`.
    pub fn type_name(self) -> &'static str {
        match self {
            Service::GetParameters => "rcl_interfaces/srv/GetParameters",
            Service::GetParameterTypes => "rcl_interfaces/srv/GetParameterTypes",
            Service::SetParameters => "rcl_interfaces/srv/SetParameters",
            Service::SetParametersAtomically => "rcl_interfaces/srv/SetParametersAtomically",
            Service::DescribeParameters => "rcl_interfaces/srv/DescribeParameters",
            Service::ListParameters => "rcl_interfaces/srv/ListParameters",
            Service::ChangeState => "lifecycle_msgs/srv/ChangeState",
            Service::GetState => "lifecycle_msgs/srv/GetState",
            Service::GetAvailableStates => "lifecycle_msgs/srv/GetAvailableStates",
            Service::GetAvailableTransitions | Service::GetTransitionGraph => {
                "lifecycle_msgs/srv/GetAvailableTransitions"
            }
            Service::Reset => "std_srvs/srv/Trigger",
            Service::Enable => "std_srvs/srv/SetBool",
        }
    }
}

struct Inner {
    state: LifecycleState,
    params: NodeParams,
    /// The running core (inactive or active).
    core: Option<Arc<NodeCore>>,
}

/// See the module docs.
pub struct ManagedNode {
    node_fqn: String,
    sink: Arc<dyn Sink>,
    factory: ModelFactory,
    clock: Clock,
    inner: Mutex<Inner>,
    /// The core while active: the only one the receive path feeds.
    active: Mutex<Option<Arc<NodeCore>>>,
    dropped_inactive: Mutex<u64>,
}

impl ManagedNode {
    /// A node named `node_fqn` (`/ns/name`) in state `unconfigured`, parameters already resolved
    /// and validated. Publishes the declared parameters on `/parameter_events` as rclcpp does.
    pub fn new(node_fqn: &str, params: NodeParams, factory: ModelFactory, sink: Arc<dyn Sink>, clock: Clock) -> Self {
        let node = Self {
            node_fqn: node_fqn.to_owned(),
            sink,
            factory,
            clock,
            inner: Mutex::new(Inner { state: LifecycleState::Unconfigured, core: None, params: params.clone() }),
            active: Mutex::new(None),
            dropped_inactive: Mutex::new(0),
        };
        node.publish_parameter_event(parameters::all(&params), Vec::new());
        node
    }

    /// With `autostart`, configures and activates; returns whether the node is active. A failed
    /// configure (the model did not load) is logged by the transition and leaves the node
    /// unconfigured.
    pub fn start(&self) -> bool {
        if !self.params().autostart {
            log::info!("autostart is off: waiting in state unconfigured for a lifecycle manager (configure, activate)");
            return false;
        }
        self.transition_by_label("configure") && self.transition_by_label("activate")
    }

    fn transition_by_label(&self, label: &str) -> bool {
        let request = ChangeStateRequest { transition: crate::ros::srv::Transition { id: 0, label: label.into() } };
        self.change_state(&request).success
    }

    /// The parameters in force.
    pub fn params(&self) -> NodeParams {
        lock(&self.inner).params.clone()
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        lock(&self.inner).state
    }

    /// The running core, when configured.
    pub fn core(&self) -> Option<Arc<NodeCore>> {
        lock(&self.inner).core.clone()
    }

    /// The core's counters (zero when unconfigured).
    pub fn stats(&self) -> NodeStats {
        self.core().map(|c| c.stats()).unwrap_or_default()
    }

    /// Camera messages dropped because the node was not active.
    pub fn dropped_inactive(&self) -> u64 {
        *lock(&self.dropped_inactive)
    }

    /// One message received on `input`: to the core while active, else dropped (counted) without
    /// decoding.
    pub fn handle(&self, input: Input, cdr: &[u8]) {
        let core = lock(&self.active).clone();
        match core {
            Some(core) => core.handle(input, cdr),
            None => *lock(&self.dropped_inactive) += 1,
        }
    }

    /// [`ManagedNode::handle`] for a message the middleware has already decoded.
    pub fn handle_message(&self, input: Input, msg: crate::ros::node::InputMessage) {
        let core = lock(&self.active).clone();
        match core {
            Some(core) => core.handle_message(input, msg),
            None => *lock(&self.dropped_inactive) += 1,
        }
    }

    fn publish<M: RosMessage>(&self, output: Output, msg: &M) {
        let result = msg.encode().map_err(SinkError::from).and_then(|cdr| self.sink.publish(output, &cdr));
        if let Err(e) = result {
            log::warn!("publishing {}: {e}", output.topic());
        }
    }

    fn publish_parameter_event(&self, new_parameters: Vec<Parameter>, changed_parameters: Vec<Parameter>) {
        let event = ParameterEvent {
            stamp: (self.clock)(),
            node: self.node_fqn.clone(),
            new_parameters,
            changed_parameters,
            deleted_parameters: Vec::new(),
        };
        self.publish(Output::ParameterEvents, &event);
    }

    /// Puts an accepted parameter change in force: in the running core, on
    /// `/parameter_events`, in the log.
    fn apply(&self, inner: &mut Inner, outcome: SetOutcome) -> SetOutcome {
        if !outcome.changed.is_empty() {
            inner.params = outcome.params.clone();
            if let Some(core) = &inner.core {
                core.update_params(outcome.params.clone());
            }
            let names: Vec<&str> = outcome.changed.iter().map(|p| p.name.as_str()).collect();
            log::info!("parameters changed: {}", names.join(", "));
            self.publish_parameter_event(Vec::new(), outcome.changed.clone());
        }
        outcome
    }

    pub fn get_parameters(&self, request: &GetParametersRequest) -> GetParametersResponse {
        parameters::get(&self.params(), &request.names)
    }

    pub fn get_parameter_types(&self, request: &GetParameterTypesRequest) -> GetParameterTypesResponse {
        parameters::types(&request.names)
    }

    pub fn describe_parameters(&self, request: &DescribeParametersRequest) -> DescribeParametersResponse {
        parameters::describe(&request.names)
    }

    pub fn list_parameters(&self, request: &ListParametersRequest) -> ListParametersResponse {
        parameters::list(request)
    }

    /// `set_parameters`: each parameter in order; refusals come back with their reason.
    pub fn set_parameters(&self, request: &SetParametersRequest) -> SetParametersResponse {
        let mut inner = lock(&self.inner);
        let outcome = parameters::set(&inner.params, &request.parameters);
        for (p, r) in request.parameters.iter().zip(&outcome.results).filter(|(_, r)| !r.successful) {
            log::warn!("refused to set parameter {}: {}", p.name, r.reason);
        }
        SetParametersResponse { results: self.apply(&mut inner, outcome).results }
    }

    /// `set_parameters_atomically`: all or none, validated together.
    pub fn set_parameters_atomically(
        &self,
        request: &SetParametersAtomicallyRequest,
    ) -> SetParametersAtomicallyResponse {
        let mut inner = lock(&self.inner);
        let outcome = parameters::set_atomically(&inner.params, &request.parameters);
        if let Some(r) = outcome.results.first().filter(|r| !r.successful) {
            log::warn!("refused to set parameters atomically: {}", r.reason);
        }
        let result = self.apply(&mut inner, outcome).results.into_iter().next().unwrap_or_default();
        SetParametersAtomicallyResponse { result }
    }

    /// `~/enable` (`std_srvs/SetBool`): the `enabled` parameter.
    pub fn enable(&self, request: &SetBoolRequest) -> TriggerResponse {
        let value = ParameterValue { type_: parameter_type::BOOL, bool_value: request.data, ..Default::default() };
        let request = SetParametersRequest { parameters: vec![Parameter { name: "enabled".into(), value }] };
        let result = self.set_parameters(&request).results.into_iter().next().unwrap_or_default();
        let message = match (result.successful, request.parameters[0].value.bool_value) {
            (false, _) => result.reason,
            (true, true) => "enabled: tracking".into(),
            (true, false) => "disabled: camera messages are dropped, the model stays loaded".into(),
        };
        TriggerResponse { success: result.successful, message }
    }

    /// `~/reset` (`std_srvs/Trigger`): forgets the target.
    pub fn reset(&self) -> TriggerResponse {
        match self.core() {
            Some(core) => {
                core.reset();
                TriggerResponse { success: true, message: "target forgotten; waiting for ~/init".into() }
            }
            None => TriggerResponse { success: false, message: format!("nothing to reset in state {}", self.state()) },
        }
    }

    pub fn get_state(&self) -> GetStateResponse {
        GetStateResponse { current_state: self.state().msg() }
    }

    pub fn get_available_states(&self) -> GetAvailableStatesResponse {
        GetAvailableStatesResponse { available_states: LifecycleState::ALL.iter().map(|s| s.msg()).collect() }
    }

    pub fn get_available_transitions(&self) -> GetAvailableTransitionsResponse {
        let open = lifecycle::available(self.state());
        GetAvailableTransitionsResponse { available_transitions: open.iter().map(|e| e.msg()).collect() }
    }

    pub fn get_transition_graph(&self) -> GetAvailableTransitionsResponse {
        GetAvailableTransitionsResponse { available_transitions: lifecycle::GRAPH.iter().map(|e| e.msg()).collect() }
    }

    fn publish_transition(&self, edge: &lifecycle::Edge) {
        let timestamp = u64::try_from((self.clock)().to_ns()).unwrap_or_default();
        let d = edge.msg();
        let event = TransitionEvent {
            timestamp,
            transition: d.transition,
            start_state: d.start_state,
            goal_state: d.goal_state,
        };
        self.publish(Output::TransitionEvent, &event);
    }

    /// `~/change_state`: runs the transition's work and publishes both steps on
    /// `~/transition_event`. Refused requests (not available in this state) change nothing.
    pub fn change_state(&self, request: &ChangeStateRequest) -> ChangeStateResponse {
        let mut inner = lock(&self.inner);
        let edge = match lifecycle::requested(inner.state, &request.transition) {
            Ok(edge) => edge,
            Err(e) => {
                log::warn!("lifecycle: {e}");
                return ChangeStateResponse { success: false };
            }
        };
        self.publish_transition(&edge);
        inner.state = edge.goal;
        let outcome = self.run(&mut inner, lifecycle::action(&edge));
        let done = lifecycle::completion(edge.goal, outcome);
        self.publish_transition(&done);
        inner.state = done.goal;
        // From error processing the node cleans up and lands in unconfigured.
        if inner.state == LifecycleState::ErrorProcessing {
            self.stop(&mut inner);
            let recovered = lifecycle::completion(LifecycleState::ErrorProcessing, Outcome::Success);
            self.publish_transition(&recovered);
            inner.state = recovered.goal;
        }
        log::info!("lifecycle: {} -> {}", edge.start, inner.state);
        ChangeStateResponse { success: outcome == Outcome::Success }
    }

    fn stop(&self, inner: &mut Inner) {
        *lock(&self.active) = None;
        // The last reference joins the core's threads and frees the model.
        inner.core = None;
    }

    fn run(&self, inner: &mut Inner, action: Action) -> Outcome {
        match action {
            Action::Configure => {
                let model = match (self.factory)(&inner.params) {
                    Ok(model) => model,
                    Err(e) => {
                        log::error!("configure failed: the model did not load: {e}");
                        return Outcome::Failure;
                    }
                };
                match NodeCore::new(inner.params.clone(), model, self.sink.clone()) {
                    Ok(core) => {
                        inner.core = Some(Arc::new(core));
                        Outcome::Success
                    }
                    Err(e) => {
                        log::error!("configure failed: {e}");
                        Outcome::Failure
                    }
                }
            }
            Action::Activate => match &inner.core {
                Some(core) => {
                    *lock(&self.active) = Some(core.clone());
                    Outcome::Success
                }
                None => Outcome::Error,
            },
            Action::Deactivate => {
                *lock(&self.active) = None;
                Outcome::Success
            }
            Action::Cleanup | Action::Shutdown => {
                self.stop(inner);
                Outcome::Success
            }
        }
    }

    /// The `/diagnostics` message; call about once a second.
    pub fn diagnostics(&self, stamp: Time) -> DiagnosticArray {
        let (state, core) = {
            let inner = lock(&self.inner);
            (inner.state, inner.core.clone())
        };
        let context = [("lifecycle", state.to_string())];
        match core {
            Some(core) if state == LifecycleState::Active => core.diagnostics(stamp, &context),
            Some(core) => {
                // Inactive: the cameras are not read, so their silence is no fault.
                let mut msg = core.diagnostics(stamp, &context);
                if let Some(status) = msg.status.first_mut() {
                    if status.level != crate::ros::msgs::DiagnosticStatus::ERROR {
                        status.level = crate::ros::msgs::DiagnosticStatus::OK;
                        status.message = "inactive (lifecycle): model loaded, camera messages dropped".into();
                    }
                }
                msg
            }
            None => diagnostics::idle_status(stamp, &format!("{state} (lifecycle): model not loaded"), &context),
        }
    }

    /// Publishes [`ManagedNode::diagnostics`].
    pub fn publish_diagnostics(&self) {
        let msg = self.diagnostics((self.clock)());
        self.publish(Output::Diagnostics, &msg);
    }

    /// Answers one request given as CDR (with encapsulation header) with the response's CDR.
    /// A request that does not decode is an error for the transport to log; the node goes on.
    pub fn call(&self, service: Service, request: &[u8]) -> Result<Vec<u8>, MsgError> {
        match service {
            Service::GetParameters => self.get_parameters(&RosMessage::decode(request)?).encode(),
            Service::GetParameterTypes => self.get_parameter_types(&RosMessage::decode(request)?).encode(),
            Service::SetParameters => self.set_parameters(&RosMessage::decode(request)?).encode(),
            Service::SetParametersAtomically => self.set_parameters_atomically(&RosMessage::decode(request)?).encode(),
            Service::DescribeParameters => self.describe_parameters(&RosMessage::decode(request)?).encode(),
            Service::ListParameters => self.list_parameters(&RosMessage::decode(request)?).encode(),
            Service::ChangeState => self.change_state(&RosMessage::decode(request)?).encode(),
            Service::GetState => {
                EmptyRequest::decode(request)?;
                self.get_state().encode()
            }
            Service::GetAvailableStates => {
                EmptyRequest::decode(request)?;
                self.get_available_states().encode()
            }
            Service::GetAvailableTransitions => {
                EmptyRequest::decode(request)?;
                self.get_available_transitions().encode()
            }
            Service::GetTransitionGraph => {
                EmptyRequest::decode(request)?;
                self.get_transition_graph().encode()
            }
            Service::Reset => {
                EmptyRequest::decode(request)?;
                self.reset().encode()
            }
            Service::Enable => self.enable(&RosMessage::decode(request)?).encode(),
        }
    }

    /// Stops the core (shutdown of the process).
    pub fn shutdown(&self) {
        let mut inner = lock(&self.inner);
        self.stop(&mut inner);
    }
}
