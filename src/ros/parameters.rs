//! The answers of the six `rcl_interfaces` parameter services over [`NodeParams`]: what is in
//! force, with types, ranges and read-only flags from [`PARAMETERS`], and the rules for changing
//! parameters while the node runs (rclcpp's: `set_parameters` takes each parameter in order,
//! `set_parameters_atomically` all or none). The node wires these to its services and publishes
//! the accepted changes on `/parameter_events`.

use serde_yaml::Value;

use crate::ros::params::{coerce, spec_of, NodeParams, ParamKind, ParamRange, ParamSpec, ParamsError, PARAMETERS};
use crate::ros::srv::{
    parameter_type, DescribeParametersResponse, FloatingPointRange, GetParameterTypesResponse, GetParametersResponse,
    IntegerRange, ListParametersRequest, ListParametersResponse, ListParametersResult, Parameter, ParameterDescriptor,
    ParameterValue, SetParametersResult,
};

/// A YAML parameter value (as [`NodeParams::flatten`] gives it) as a ROS parameter value of the
/// parameter's type.
pub fn to_parameter_value(spec: &ParamSpec, value: &Value) -> ParameterValue {
    let mut v = ParameterValue::default();
    match spec.kind {
        ParamKind::Bool => {
            v.type_ = parameter_type::BOOL;
            v.bool_value = value.as_bool().unwrap_or_default();
        }
        ParamKind::Integer => {
            v.type_ = parameter_type::INTEGER;
            v.integer_value = value.as_i64().unwrap_or_default();
        }
        ParamKind::Double => {
            v.type_ = parameter_type::DOUBLE;
            v.double_value = value.as_f64().unwrap_or_default();
        }
        ParamKind::String => {
            v.type_ = parameter_type::STRING;
            v.string_value = value.as_str().unwrap_or_default().to_owned();
        }
        ParamKind::DoubleArray(_) => {
            v.type_ = parameter_type::DOUBLE_ARRAY;
            v.double_array_value =
                value.as_sequence().map(|s| s.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
        }
    }
    v
}

/// A ROS parameter value as YAML; `None` for `NOT_SET` or an unknown type id.
pub fn from_parameter_value(v: &ParameterValue) -> Option<Value> {
    Some(match v.type_ {
        parameter_type::BOOL => Value::from(v.bool_value),
        parameter_type::INTEGER => Value::from(v.integer_value),
        parameter_type::DOUBLE => Value::from(v.double_value),
        parameter_type::STRING => Value::from(v.string_value.as_str()),
        parameter_type::BYTE_ARRAY => Value::from(v.byte_array_value.clone()),
        parameter_type::BOOL_ARRAY => Value::from(v.bool_array_value.clone()),
        parameter_type::INTEGER_ARRAY => Value::from(v.integer_array_value.clone()),
        parameter_type::DOUBLE_ARRAY => Value::from(v.double_array_value.clone()),
        parameter_type::STRING_ARRAY => Value::from(v.string_array_value.clone()),
        _ => return None,
    })
}

fn type_id(kind: ParamKind) -> u8 {
    match kind {
        ParamKind::Bool => parameter_type::BOOL,
        ParamKind::Integer => parameter_type::INTEGER,
        ParamKind::Double => parameter_type::DOUBLE,
        ParamKind::String => parameter_type::STRING,
        ParamKind::DoubleArray(_) => parameter_type::DOUBLE_ARRAY,
    }
}

/// Every parameter in force as ROS parameters, in declaration order.
pub fn all(params: &NodeParams) -> Vec<Parameter> {
    params
        .flatten()
        .into_iter()
        .filter_map(|(name, value)| {
            let spec = spec_of(&name)?;
            Some(Parameter { value: to_parameter_value(spec, &value), name })
        })
        .collect()
}

/// `get_parameters`: the values in force; `NOT_SET` for names the node does not have.
pub fn get(params: &NodeParams, names: &[String]) -> GetParametersResponse {
    let flat = params.flatten();
    let values = names
        .iter()
        .map(|name| match (spec_of(name), flat.iter().find(|(n, _)| n == name)) {
            (Some(spec), Some((_, value))) => to_parameter_value(spec, value),
            _ => ParameterValue::default(),
        })
        .collect();
    GetParametersResponse { values }
}

/// `get_parameter_types`.
pub fn types(names: &[String]) -> GetParameterTypesResponse {
    GetParameterTypesResponse {
        types: names.iter().map(|n| spec_of(n).map_or(parameter_type::NOT_SET, |s| type_id(s.kind))).collect(),
    }
}

/// The descriptor of one parameter: type, description, allowed values, range, read-only.
pub fn descriptor(spec: &ParamSpec) -> ParameterDescriptor {
    let (floating_point_range, integer_range) = match spec.range {
        ParamRange::None => (Vec::new(), Vec::new()),
        ParamRange::Double { from, to } => {
            (vec![FloatingPointRange { from_value: from, to_value: to, step: 0.0 }], Vec::new())
        }
        ParamRange::Integer { from, to } => {
            (Vec::new(), vec![IntegerRange { from_value: from, to_value: to, step: 0 }])
        }
    };
    let mut constraints = spec.choices.to_owned();
    if let ParamKind::DoubleArray(n) = spec.kind {
        constraints = format!("exactly {n} numbers");
    }
    ParameterDescriptor {
        name: spec.name.to_owned(),
        type_: type_id(spec.kind),
        description: spec.description.to_owned(),
        additional_constraints: constraints,
        read_only: !spec.runtime,
        dynamic_typing: false,
        floating_point_range,
        integer_range,
    }
}

/// `describe_parameters`: unknown names get a descriptor of type `NOT_SET`.
pub fn describe(names: &[String]) -> DescribeParametersResponse {
    let descriptors = names
        .iter()
        .map(|name| match spec_of(name) {
            Some(spec) => descriptor(spec),
            None => ParameterDescriptor { name: name.clone(), ..Default::default() },
        })
        .collect();
    DescribeParametersResponse { descriptors }
}

/// `list_parameters` with rclcpp's prefix and depth rules: no prefixes lists every name with
/// fewer than `depth` dots (every name for depth 0, `DEPTH_RECURSIVE`); a prefix lists the names
/// under it to `depth` more levels. `prefixes` of the answer are the groups of the names listed.
pub fn list(request: &ListParametersRequest) -> ListParametersResponse {
    let depth = request.depth as usize;
    let deep_enough = |rest: &str| depth == 0 || rest.matches('.').count() < depth;
    let mut result = ListParametersResult::default();
    for spec in PARAMETERS {
        let name = spec.name;
        let listed = if request.prefixes.is_empty() {
            deep_enough(name)
        } else {
            request.prefixes.iter().any(|prefix| {
                name == prefix
                    || name.strip_prefix(prefix.as_str()).and_then(|r| r.strip_prefix('.')).is_some_and(deep_enough)
            })
        };
        if !listed {
            continue;
        }
        result.names.push(name.to_owned());
        if let Some((group, _)) = name.rsplit_once('.') {
            if !result.prefixes.iter().any(|p| p == group) {
                result.prefixes.push(group.to_owned());
            }
        }
    }
    ListParametersResponse { result }
}

/// What a `set_parameters` call did: one result per requested parameter, the parameters now in
/// force, and the ones whose value changed (for `/parameter_events`).
#[derive(Debug, Clone)]
pub struct SetOutcome {
    pub results: Vec<SetParametersResult>,
    pub params: NodeParams,
    pub changed: Vec<Parameter>,
}

/// Checks that `p` may change now and gives its YAML value of the right type.
fn requested_value(p: &Parameter) -> Result<(String, Value), ParamsError> {
    let spec = spec_of(&p.name).ok_or_else(|| ParamsError::Unknown(p.name.clone()))?;
    if !spec.runtime {
        return Err(ParamsError::ReadOnly { name: p.name.clone() });
    }
    let value = from_parameter_value(&p.value).ok_or_else(|| ParamsError::Type {
        name: p.name.clone(),
        reason: "a parameter of the node cannot be unset".into(),
    })?;
    let value = coerce(spec, value).map_err(|reason| ParamsError::Type { name: p.name.clone(), reason })?;
    Ok((p.name.clone(), value))
}

fn refusal(e: &ParamsError) -> SetParametersResult {
    SetParametersResult { successful: false, reason: e.to_string() }
}

fn changed(before: &NodeParams, after: &NodeParams) -> Vec<Parameter> {
    let old = all(before);
    all(after).into_iter().filter(|p| !old.contains(p)).collect()
}

/// `set_parameters`: each parameter in request order, each validated with the ones before it
/// applied; refused ones change nothing and say why.
pub fn set(current: &NodeParams, requested: &[Parameter]) -> SetOutcome {
    let mut params = current.clone();
    let mut results = Vec::with_capacity(requested.len());
    for p in requested {
        let next = requested_value(p).and_then(|(name, value)| params.with_value(&name, value));
        match next {
            Ok(next) => {
                params = next;
                results.push(SetParametersResult { successful: true, reason: String::new() });
            }
            Err(e) => results.push(refusal(&e)),
        }
    }
    SetOutcome { changed: changed(current, &params), results, params }
}

/// `set_parameters_atomically`: every parameter or none, validated once with all of them
/// applied (so related values such as `thermal.low` and `thermal.high` can move together).
pub fn set_atomically(current: &NodeParams, requested: &[Parameter]) -> SetOutcome {
    let values: Result<Vec<_>, _> = requested.iter().map(requested_value).collect();
    match values.and_then(|v| current.with_values(&v)) {
        Ok(params) => SetOutcome {
            changed: changed(current, &params),
            results: vec![SetParametersResult { successful: true, reason: String::new() }],
            params,
        },
        Err(e) => SetOutcome { results: vec![refusal(&e)], params: current.clone(), changed: Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, value: Value) -> Parameter {
        let spec = spec_of(name).copied().unwrap_or(PARAMETERS[0]);
        Parameter { name: name.into(), value: to_parameter_value(&spec, &value) }
    }

    fn double(name: &str, v: f64) -> Parameter {
        let mut value = ParameterValue { type_: parameter_type::DOUBLE, ..Default::default() };
        value.double_value = v;
        Parameter { name: name.into(), value }
    }

    #[test]
    fn refusals_say_why_and_change_nothing() {
        let p = NodeParams::default();
        let out = set(
            &p,
            &[
                param("model_path", Value::from("/x.safetensors")),
                param("device", Value::from("cpu")),
                double("tracker.lost_threshold", 4.0),
                double("no_such_parameter", 1.0),
                Parameter { name: "class_id".into(), value: ParameterValue::default() },
                Parameter {
                    name: "class_id".into(),
                    value: ParameterValue { type_: parameter_type::INTEGER, integer_value: 3, ..Default::default() },
                },
            ],
        );
        let reasons: Vec<&str> = out.results.iter().map(|r| r.reason.as_str()).collect();
        assert!(out.results.iter().all(|r| !r.successful), "{reasons:?}");
        assert!(reasons[0].contains("`model_path` is read-only"), "{}", reasons[0]);
        assert!(reasons[1].contains("`device` is read-only"), "{}", reasons[1]);
        assert!(reasons[2].contains("tracker.lost_threshold") && reasons[2].contains("[0, 1]"), "{}", reasons[2]);
        assert_eq!(reasons[3], "unknown parameter `no_such_parameter`");
        assert!(reasons[4].contains("cannot be unset"), "{}", reasons[4]);
        assert_eq!(reasons[5], "parameter `class_id`: expected a string, got an integer 3");
        assert_eq!(out.params, p);
        assert!(out.changed.is_empty());
        // `get` still answers what is in force.
        let got = get(&out.params, &["tracker.lost_threshold".into(), "model_path".into(), "nope".into()]);
        assert_eq!(got.values[0].double_value, 0.25);
        assert_eq!((got.values[1].type_, got.values[1].string_value.as_str()), (parameter_type::STRING, ""));
        assert_eq!(got.values[2].type_, parameter_type::NOT_SET);
    }

    #[test]
    fn accepted_changes_apply_in_order_and_are_reported_once() {
        let p = NodeParams::default();
        let out = set(
            &p,
            &[
                double("tracker.lost_threshold", 0.5),
                double("tracker.lost_threshold", 0.5),
                param("class_id", Value::from("target")),
            ],
        );
        assert!(out.results.iter().all(|r| r.successful));
        assert_eq!(out.params.tracker.lost_threshold, 0.5);
        // class_id kept its value: not a change.
        assert_eq!(out.changed, vec![double("tracker.lost_threshold", 0.5)]);
        // An integer where a double is expected is taken, as rclcpp's users write 1 for 1.0.
        let mut int = double("debug_aux_blend", 0.0);
        int.value = ParameterValue { type_: parameter_type::INTEGER, integer_value: 1, ..Default::default() };
        assert!(set(&p, &[int]).results[0].successful);
    }

    #[test]
    fn related_values_move_together_only_atomically() {
        let p = NodeParams::default();
        let fixed = [
            param("thermal.scaling", Value::from("fixed")),
            double("thermal.low", 28000.0),
            double("thermal.high", 32000.0),
        ];
        // One by one, low = 28000 crosses high = 99 and is refused with the reason.
        let one_by_one = set(&p, &fixed);
        assert_eq!(one_by_one.results.iter().map(|r| r.successful).collect::<Vec<_>>(), [true, false, true]);
        assert!(one_by_one.results[1].reason.contains("need low < high"), "{}", one_by_one.results[1].reason);
        let atomic = set_atomically(&p, &fixed);
        assert!(atomic.results[0].successful, "{}", atomic.results[0].reason);
        assert_eq!((atomic.params.thermal.low, atomic.params.thermal.high), (28000.0, 32000.0));
        assert_eq!(atomic.changed.len(), 3);
        // All or nothing.
        let refused = set_atomically(&p, &[double("thermal.low", 5.0), param("model_path", Value::from("x"))]);
        assert!(!refused.results[0].successful);
        assert_eq!(refused.params, p);
    }

    #[test]
    fn descriptors_show_types_ranges_and_read_only_flags() {
        let d = describe(&["tracker.lost_threshold".into(), "model_path".into(), "rgb.depth".into(), "x".into()])
            .descriptors;
        assert_eq!(d[0].type_, parameter_type::DOUBLE);
        assert!(!d[0].read_only);
        assert_eq!(d[0].floating_point_range, [FloatingPointRange { from_value: 0.0, to_value: 1.0, step: 0.0 }]);
        assert!(d[1].read_only);
        assert_eq!(d[1].type_, parameter_type::STRING);
        assert_eq!(d[2].integer_range, [IntegerRange { from_value: 1, to_value: 100, step: 0 }]);
        assert_eq!((d[3].name.as_str(), d[3].type_), ("x", parameter_type::NOT_SET));
        assert_eq!(
            types(&["initial_bbox".into(), "x".into()]).types,
            [parameter_type::DOUBLE_ARRAY, parameter_type::NOT_SET]
        );
    }

    #[test]
    fn listing_follows_prefixes_and_depth() {
        let all_names = list(&ListParametersRequest::default()).result;
        assert_eq!(all_names.names.len(), PARAMETERS.len());
        assert!(all_names.prefixes.contains(&"tracker".to_owned()));
        let top = list(&ListParametersRequest { prefixes: vec![], depth: 1 }).result;
        assert!(top.names.contains(&"model_path".to_owned()) && !top.names.contains(&"sync.queue_size".to_owned()));
        let tracker = list(&ListParametersRequest { prefixes: vec!["tracker".into()], depth: 0 }).result;
        assert_eq!(tracker.names, ["tracker.lost_threshold", "tracker.lost_frames", "tracker.lost_search_scale"]);
        assert_eq!(tracker.prefixes, ["tracker"]);
    }

    #[test]
    fn every_value_round_trips_through_the_ros_type() {
        for (name, value) in NodeParams::default().flatten() {
            let spec = spec_of(&name).unwrap();
            let back = from_parameter_value(&to_parameter_value(spec, &value)).unwrap();
            assert_eq!(coerce(spec, back).unwrap(), coerce(spec, value).unwrap(), "{name}");
        }
    }
}
