//! The managed-node (lifecycle) state machine of ROS 2's `rcl_lifecycle`, so launch-time
//! lifecycle managers (`launch_ros` `LifecycleNode`, nav2's lifecycle manager, `ros2 lifecycle`)
//! can drive the node. r2r has no lifecycle API; the node offers the standard services
//! (`~/change_state`, `~/get_state`, `~/get_available_states`, `~/get_available_transitions`,
//! `~/get_transition_graph`) and publishes `~/transition_event` from this table.
//!
//! What each transition does in this node is in [`crate::ros::managed`]: configure loads the
//! model and starts the tracker threads, activate lets camera messages in and outputs out,
//! deactivate stops them again (the model stays loaded), cleanup frees the model, shutdown
//! ends in `finalized`.

use crate::ros::srv::{State, Transition, TransitionDescription};

/// Primary and transition states with their `lifecycle_msgs/State` ids and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifecycleState {
    Unconfigured,
    Inactive,
    Active,
    Finalized,
    Configuring,
    CleaningUp,
    ShuttingDown,
    Activating,
    Deactivating,
    ErrorProcessing,
}

impl LifecycleState {
    pub const PRIMARY: [LifecycleState; 4] =
        [LifecycleState::Unconfigured, LifecycleState::Inactive, LifecycleState::Active, LifecycleState::Finalized];
    pub const ALL: [LifecycleState; 10] = [
        LifecycleState::Unconfigured,
        LifecycleState::Inactive,
        LifecycleState::Active,
        LifecycleState::Finalized,
        LifecycleState::Configuring,
        LifecycleState::CleaningUp,
        LifecycleState::ShuttingDown,
        LifecycleState::Activating,
        LifecycleState::Deactivating,
        LifecycleState::ErrorProcessing,
    ];

    pub fn id(self) -> u8 {
        match self {
            LifecycleState::Unconfigured => 1,
            LifecycleState::Inactive => 2,
            LifecycleState::Active => 3,
            LifecycleState::Finalized => 4,
            LifecycleState::Configuring => 10,
            LifecycleState::CleaningUp => 11,
            LifecycleState::ShuttingDown => 12,
            LifecycleState::Activating => 13,
            LifecycleState::Deactivating => 14,
            LifecycleState::ErrorProcessing => 15,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            LifecycleState::Unconfigured => "unconfigured",
            LifecycleState::Inactive => "inactive",
            LifecycleState::Active => "active",
            LifecycleState::Finalized => "finalized",
            LifecycleState::Configuring => "configuring",
            LifecycleState::CleaningUp => "cleaningup",
            LifecycleState::ShuttingDown => "shuttingdown",
            LifecycleState::Activating => "activating",
            LifecycleState::Deactivating => "deactivating",
            LifecycleState::ErrorProcessing => "errorprocessing",
        }
    }

    pub fn msg(self) -> State {
        State { id: self.id(), label: self.label().to_owned() }
    }
}

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// What a requested transition does once its callback has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Error,
}

/// One edge of the state machine: `start --(id, label)--> goal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub id: u8,
    pub label: &'static str,
    pub start: LifecycleState,
    pub goal: LifecycleState,
}

impl Edge {
    pub fn msg(&self) -> TransitionDescription {
        TransitionDescription {
            transition: Transition { id: self.id, label: self.label.to_owned() },
            start_state: self.start.msg(),
            goal_state: self.goal.msg(),
        }
    }
}

use LifecycleState as S;

const fn edge(id: u8, label: &'static str, start: LifecycleState, goal: LifecycleState) -> Edge {
    Edge { id, label, start, goal }
}

/// rcl_lifecycle's default transition graph (ids of `lifecycle_msgs/Transition`).
pub const GRAPH: &[Edge] = &[
    edge(1, "configure", S::Unconfigured, S::Configuring),
    edge(10, "transition_success", S::Configuring, S::Inactive),
    edge(11, "transition_failure", S::Configuring, S::Unconfigured),
    edge(12, "transition_error", S::Configuring, S::ErrorProcessing),
    edge(2, "cleanup", S::Inactive, S::CleaningUp),
    edge(20, "transition_success", S::CleaningUp, S::Unconfigured),
    edge(21, "transition_failure", S::CleaningUp, S::Inactive),
    edge(22, "transition_error", S::CleaningUp, S::ErrorProcessing),
    edge(3, "activate", S::Inactive, S::Activating),
    edge(30, "transition_success", S::Activating, S::Active),
    edge(31, "transition_failure", S::Activating, S::Inactive),
    edge(32, "transition_error", S::Activating, S::ErrorProcessing),
    edge(4, "deactivate", S::Active, S::Deactivating),
    edge(40, "transition_success", S::Deactivating, S::Inactive),
    edge(41, "transition_failure", S::Deactivating, S::Active),
    edge(42, "transition_error", S::Deactivating, S::ErrorProcessing),
    edge(5, "shutdown", S::Unconfigured, S::ShuttingDown),
    edge(6, "shutdown", S::Inactive, S::ShuttingDown),
    edge(7, "shutdown", S::Active, S::ShuttingDown),
    edge(50, "transition_success", S::ShuttingDown, S::Finalized),
    edge(51, "transition_failure", S::ShuttingDown, S::Finalized),
    edge(52, "transition_error", S::ShuttingDown, S::ErrorProcessing),
    edge(60, "transition_success", S::ErrorProcessing, S::Unconfigured),
    edge(61, "transition_failure", S::ErrorProcessing, S::Finalized),
    edge(62, "transition_error", S::ErrorProcessing, S::Finalized),
];

/// The kind of work a requested transition asks the node to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Configure,
    Cleanup,
    Activate,
    Deactivate,
    Shutdown,
}

/// Errors of a change-state request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("transition {requested} is not available in state {state} (available: {available})")]
    NotAvailable { requested: String, state: LifecycleState, available: String },
}

/// The transitions a client may request in `state` (the graph's edges out of a primary state).
pub fn available(state: LifecycleState) -> Vec<Edge> {
    GRAPH.iter().filter(|e| e.start == state && e.id < 10).copied().collect()
}

/// The requested edge for a `ChangeState` request: by id, or by label when the id is 0 (as
/// rclcpp's service does, so `ros2 lifecycle set NODE configure` works).
pub fn requested(state: LifecycleState, transition: &Transition) -> Result<Edge, LifecycleError> {
    let open = available(state);
    let found = open
        .iter()
        .find(|e| if transition.id == 0 { e.label == transition.label } else { e.id == transition.id })
        .copied();
    found.ok_or_else(|| LifecycleError::NotAvailable {
        requested: if transition.id == 0 { transition.label.clone() } else { format!("{}", transition.id) },
        state,
        available: open.iter().map(|e| format!("{} ({})", e.label, e.id)).collect::<Vec<_>>().join(", "),
    })
}

/// The work of a requested edge.
pub fn action(edge: &Edge) -> Action {
    match edge.goal {
        S::Configuring => Action::Configure,
        S::CleaningUp => Action::Cleanup,
        S::Activating => Action::Activate,
        S::Deactivating => Action::Deactivate,
        _ => Action::Shutdown,
    }
}

/// The edge that leaves a transition state with `outcome`.
pub fn completion(from: LifecycleState, outcome: Outcome) -> Edge {
    let offset = match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Error => 2,
    };
    let base = match from {
        S::Configuring => 10,
        S::CleaningUp => 20,
        S::Activating => 30,
        S::Deactivating => 40,
        S::ShuttingDown => 50,
        _ => 60,
    };
    GRAPH.iter().find(|e| e.id == base + offset).copied().unwrap_or(GRAPH[GRAPH.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_transitions_match_rcl_lifecycle() {
        let labels = |s| available(s).iter().map(|e| (e.id, e.label)).collect::<Vec<_>>();
        assert_eq!(labels(S::Unconfigured), [(1, "configure"), (5, "shutdown")]);
        assert_eq!(labels(S::Inactive), [(2, "cleanup"), (3, "activate"), (6, "shutdown")]);
        assert_eq!(labels(S::Active), [(4, "deactivate"), (7, "shutdown")]);
        assert!(labels(S::Finalized).is_empty());
    }

    #[test]
    fn requests_by_id_or_label_and_refusals_list_what_is_open() {
        let by_label = Transition { id: 0, label: "shutdown".into() };
        assert_eq!(requested(S::Active, &by_label).unwrap().id, 7);
        assert_eq!(requested(S::Inactive, &Transition { id: 3, label: String::new() }).unwrap().goal, S::Activating);
        let err = requested(S::Unconfigured, &Transition { id: 3, label: String::new() }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "transition 3 is not available in state unconfigured (available: configure (1), shutdown (5))"
        );
    }

    #[test]
    fn every_transition_state_completes_in_three_ways() {
        for (from, success, failure) in [
            (S::Configuring, S::Inactive, S::Unconfigured),
            (S::CleaningUp, S::Unconfigured, S::Inactive),
            (S::Activating, S::Active, S::Inactive),
            (S::Deactivating, S::Inactive, S::Active),
            (S::ShuttingDown, S::Finalized, S::Finalized),
        ] {
            assert_eq!(completion(from, Outcome::Success).goal, success);
            assert_eq!(completion(from, Outcome::Failure).goal, failure);
            assert_eq!(completion(from, Outcome::Error).goal, S::ErrorProcessing);
            assert!(completion(from, Outcome::Success).start == from);
        }
        assert_eq!(completion(S::ErrorProcessing, Outcome::Success).goal, S::Unconfigured);
    }
}
