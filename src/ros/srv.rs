//! Mirror structs of the services the node offers and of the messages they publish:
//! `rcl_interfaces` (the six parameter services and `/parameter_events`), `lifecycle_msgs` (the
//! managed-node interface) and `std_srvs` (`~/reset`, `~/enable`).
//!
//! As in [`crate::ros::msgs`], the serde field order is the CDR wire format; the layouts are those
//! of Humble and Jazzy (identical for these types) and are checked against PyPI `rosbags` by
//! `tests/codecs.rs`. Service requests and responses are plain messages named
//! `pkg/srv/Name_Request` / `pkg/srv/Name_Response`, as rosidl names them.

use serde::{Deserialize, Serialize};

use crate::ros::msgs::{ros_message, Time};

// ---------------------------------------------------------------------------------------------
// rcl_interfaces

/// `rcl_interfaces/msg/ParameterType` constants.
pub mod parameter_type {
    pub const NOT_SET: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INTEGER: u8 = 2;
    pub const DOUBLE: u8 = 3;
    pub const STRING: u8 = 4;
    pub const BYTE_ARRAY: u8 = 5;
    pub const BOOL_ARRAY: u8 = 6;
    pub const INTEGER_ARRAY: u8 = 7;
    pub const DOUBLE_ARRAY: u8 = 8;
    pub const STRING_ARRAY: u8 = 9;
}

/// `rcl_interfaces/msg/ParameterValue`: a tagged union; only the field `type` names is used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterValue {
    #[serde(rename = "type")]
    pub type_: u8,
    pub bool_value: bool,
    pub integer_value: i64,
    pub double_value: f64,
    pub string_value: String,
    #[serde(with = "serde_bytes")]
    pub byte_array_value: Vec<u8>,
    pub bool_array_value: Vec<bool>,
    pub integer_array_value: Vec<i64>,
    pub double_array_value: Vec<f64>,
    pub string_array_value: Vec<String>,
}
ros_message!(ParameterValue, "rcl_interfaces/msg/ParameterValue");

/// `rcl_interfaces/msg/Parameter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub value: ParameterValue,
}
ros_message!(Parameter, "rcl_interfaces/msg/Parameter");

/// `rcl_interfaces/msg/FloatingPointRange` (inclusive; `step` 0 means continuous).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FloatingPointRange {
    pub from_value: f64,
    pub to_value: f64,
    pub step: f64,
}
ros_message!(FloatingPointRange, "rcl_interfaces/msg/FloatingPointRange");

/// `rcl_interfaces/msg/IntegerRange` (inclusive; `step` 0 means any integer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegerRange {
    pub from_value: i64,
    pub to_value: i64,
    pub step: u64,
}
ros_message!(IntegerRange, "rcl_interfaces/msg/IntegerRange");

/// `rcl_interfaces/msg/ParameterDescriptor`; the ranges are bounded sequences of at most one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterDescriptor {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: u8,
    pub description: String,
    pub additional_constraints: String,
    pub read_only: bool,
    pub dynamic_typing: bool,
    pub floating_point_range: Vec<FloatingPointRange>,
    pub integer_range: Vec<IntegerRange>,
}
ros_message!(ParameterDescriptor, "rcl_interfaces/msg/ParameterDescriptor");

/// `rcl_interfaces/msg/SetParametersResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetParametersResult {
    pub successful: bool,
    pub reason: String,
}
ros_message!(SetParametersResult, "rcl_interfaces/msg/SetParametersResult");

/// `rcl_interfaces/msg/ParameterEvent`, published on `/parameter_events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterEvent {
    pub stamp: Time,
    /// Fully qualified name of the node.
    pub node: String,
    pub new_parameters: Vec<Parameter>,
    pub changed_parameters: Vec<Parameter>,
    pub deleted_parameters: Vec<Parameter>,
}
ros_message!(ParameterEvent, "rcl_interfaces/msg/ParameterEvent");

/// `rcl_interfaces/msg/ListParametersResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListParametersResult {
    pub names: Vec<String>,
    pub prefixes: Vec<String>,
}
ros_message!(ListParametersResult, "rcl_interfaces/msg/ListParametersResult");

/// `rcl_interfaces/srv/GetParameters` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParametersRequest {
    pub names: Vec<String>,
}
ros_message!(GetParametersRequest, "rcl_interfaces/srv/GetParameters_Request");

/// `rcl_interfaces/srv/GetParameters` response: one value per requested name, `NOT_SET` for
/// unknown names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetParametersResponse {
    pub values: Vec<ParameterValue>,
}
ros_message!(GetParametersResponse, "rcl_interfaces/srv/GetParameters_Response");

/// `rcl_interfaces/srv/SetParameters` request (also the `SetParametersAtomically` request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetParametersRequest {
    pub parameters: Vec<Parameter>,
}
ros_message!(SetParametersRequest, "rcl_interfaces/srv/SetParameters_Request");

/// `rcl_interfaces/srv/SetParameters` response: one result per parameter, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetParametersResponse {
    pub results: Vec<SetParametersResult>,
}
ros_message!(SetParametersResponse, "rcl_interfaces/srv/SetParameters_Response");

/// `rcl_interfaces/srv/SetParametersAtomically` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetParametersAtomicallyRequest {
    pub parameters: Vec<Parameter>,
}
ros_message!(SetParametersAtomicallyRequest, "rcl_interfaces/srv/SetParametersAtomically_Request");

/// `rcl_interfaces/srv/SetParametersAtomically` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetParametersAtomicallyResponse {
    pub result: SetParametersResult,
}
ros_message!(SetParametersAtomicallyResponse, "rcl_interfaces/srv/SetParametersAtomically_Response");

/// `rcl_interfaces/srv/ListParameters` request; `depth` 0 (`DEPTH_RECURSIVE`) lists every level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListParametersRequest {
    pub prefixes: Vec<String>,
    pub depth: u64,
}
ros_message!(ListParametersRequest, "rcl_interfaces/srv/ListParameters_Request");

/// `rcl_interfaces/srv/ListParameters` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListParametersResponse {
    pub result: ListParametersResult,
}
ros_message!(ListParametersResponse, "rcl_interfaces/srv/ListParameters_Response");

/// `rcl_interfaces/srv/DescribeParameters` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeParametersRequest {
    pub names: Vec<String>,
}
ros_message!(DescribeParametersRequest, "rcl_interfaces/srv/DescribeParameters_Request");

/// `rcl_interfaces/srv/DescribeParameters` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DescribeParametersResponse {
    pub descriptors: Vec<ParameterDescriptor>,
}
ros_message!(DescribeParametersResponse, "rcl_interfaces/srv/DescribeParameters_Response");

/// `rcl_interfaces/srv/GetParameterTypes` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParameterTypesRequest {
    pub names: Vec<String>,
}
ros_message!(GetParameterTypesRequest, "rcl_interfaces/srv/GetParameterTypes_Request");

/// `rcl_interfaces/srv/GetParameterTypes` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParameterTypesResponse {
    #[serde(with = "serde_bytes")]
    pub types: Vec<u8>,
}
ros_message!(GetParameterTypesResponse, "rcl_interfaces/srv/GetParameterTypes_Response");

// ---------------------------------------------------------------------------------------------
// lifecycle_msgs

/// `lifecycle_msgs/msg/State`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub id: u8,
    pub label: String,
}
ros_message!(State, "lifecycle_msgs/msg/State");

/// `lifecycle_msgs/msg/Transition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub id: u8,
    pub label: String,
}
ros_message!(Transition, "lifecycle_msgs/msg/Transition");

/// `lifecycle_msgs/msg/TransitionDescription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionDescription {
    pub transition: Transition,
    pub start_state: State,
    pub goal_state: State,
}
ros_message!(TransitionDescription, "lifecycle_msgs/msg/TransitionDescription");

/// `lifecycle_msgs/msg/TransitionEvent`, published on `~/transition_event`; `timestamp` in
/// nanoseconds of the node's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionEvent {
    pub timestamp: u64,
    pub transition: Transition,
    pub start_state: State,
    pub goal_state: State,
}
ros_message!(TransitionEvent, "lifecycle_msgs/msg/TransitionEvent");

/// `lifecycle_msgs/srv/ChangeState` request. rclcpp takes the transition by `id`, or by `label`
/// when `id` is 0; so does the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeStateRequest {
    pub transition: Transition,
}
ros_message!(ChangeStateRequest, "lifecycle_msgs/srv/ChangeState_Request");

/// `lifecycle_msgs/srv/ChangeState` response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeStateResponse {
    pub success: bool,
}
ros_message!(ChangeStateResponse, "lifecycle_msgs/srv/ChangeState_Response");

/// The request of every service without request fields (`GetState`, `GetAvailableStates`,
/// `GetAvailableTransitions`, `std_srvs/Trigger`): rosidl's one placeholder byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyRequest {
    pub structure_needs_at_least_one_member: u8,
}
ros_message!(EmptyRequest, "lifecycle_msgs/srv/GetState_Request");

/// `lifecycle_msgs/srv/GetState` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetStateResponse {
    pub current_state: State,
}
ros_message!(GetStateResponse, "lifecycle_msgs/srv/GetState_Response");

/// `lifecycle_msgs/srv/GetAvailableStates` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAvailableStatesResponse {
    pub available_states: Vec<State>,
}
ros_message!(GetAvailableStatesResponse, "lifecycle_msgs/srv/GetAvailableStates_Response");

/// `lifecycle_msgs/srv/GetAvailableTransitions` response (also `~/get_transition_graph`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAvailableTransitionsResponse {
    pub available_transitions: Vec<TransitionDescription>,
}
ros_message!(GetAvailableTransitionsResponse, "lifecycle_msgs/srv/GetAvailableTransitions_Response");

// ---------------------------------------------------------------------------------------------
// std_srvs

/// `std_srvs/srv/SetBool` request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetBoolRequest {
    pub data: bool,
}
ros_message!(SetBoolRequest, "std_srvs/srv/SetBool_Request");

/// The response of `std_srvs/srv/Trigger` and `std_srvs/srv/SetBool` (same fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerResponse {
    pub success: bool,
    pub message: String,
}
ros_message!(TriggerResponse, "std_srvs/srv/Trigger_Response");
