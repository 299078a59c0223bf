//! The targets behind the node and replay: one [`Tracker`] (`max_targets` 1, the default) or a
//! [`MultiTracker`] (several targets by id, one batched network call per frame), with the node's
//! rules for ids, so that the node and `patrack replay` answer a pair alike.
//!
//! # Ids
//! * One target: the id is the track number, counted up by every applied init (`"1"`, `"2"`,
//!   ...), as `~/detections` has always carried it; an id in the init message is ignored.
//! * Several targets: the init message's id (`Detection2D.id`) names the target; an init for an
//!   id in use re-initialises that target, a new id starts a new one (refused beyond
//!   `max_targets`). An init without an id (`~/init_roi`, `initial_bbox`, an empty `id`) starts a
//!   new target with the lowest free number as its id.
//!
//! Every answer lists the targets in the order they were first initialised; with one target the
//! list always holds exactly that target, initialised or not.

use crate::model::PATrack;
use crate::sensor::ImageU8;
use crate::tracker::{
    BoxXywh, MultiTrackError, MultiTracker, TargetId, TargetState, TrackError, TrackResult, Tracker, TrackerConfig,
};

/// One target's answer to a pair: its id and its box (none before its first init).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub id: String,
    pub result: Option<TrackResult>,
}

impl Answer {
    /// The score the outputs carry: the result's, 0 without one.
    pub fn score(&self) -> f32 {
        self.result.map_or(0.0, |r| r.score)
    }

    pub fn state(&self) -> TargetState {
        self.result.map_or(TargetState::Uninitialised, |r| r.state)
    }
}

/// What a pair brought: the answers, and why targets could not be tracked in it (their answers
/// carry no box for this pair): one text per failed target, or one for a failed step.
#[derive(Debug, Default)]
pub struct Step {
    pub answers: Vec<Answer>,
    pub errors: Vec<String>,
}

enum Engine {
    One { tracker: Tracker, track_id: u64 },
    Many(MultiTracker),
}

/// An init waiting to be applied: the target's id (several targets only; `None`: a new target,
/// or the one target) and its box.
#[derive(Debug, Clone, PartialEq)]
pub struct InitBox {
    pub id: Option<String>,
    pub bbox: BoxXywh,
}

impl InitBox {
    /// A later init replaces this one: with one target every init does, with several one for
    /// the same id (or another one without an id).
    pub fn replaced_by(&self, later: &InitBox) -> bool {
        self.id == later.id
    }
}

/// One or several targets (see the module docs).
pub struct TargetSet {
    engine: Engine,
}

impl TargetSet {
    /// `max_targets` 1 gives the single-target [`Tracker`] (with its CUDA graph), more a
    /// [`MultiTracker`].
    pub fn new(model: PATrack, cfg: TrackerConfig, max_targets: usize) -> Result<Self, MultiTrackError> {
        let engine = if max_targets == 1 {
            Engine::One { tracker: Tracker::new(model, cfg)?, track_id: 0 }
        } else {
            Engine::Many(MultiTracker::new(model, cfg, max_targets)?)
        };
        Ok(Self { engine })
    }

    pub fn max_targets(&self) -> usize {
        match &self.engine {
            Engine::One { .. } => 1,
            Engine::Many(m) => m.max_targets(),
        }
    }

    pub fn set_config(&mut self, cfg: TrackerConfig) -> Result<(), TrackError> {
        match &mut self.engine {
            Engine::One { tracker, .. } => tracker.set_config(cfg),
            Engine::Many(m) => m.set_config(cfg),
        }
    }

    /// No target is initialised.
    pub fn is_empty(&self) -> bool {
        match &self.engine {
            Engine::One { tracker, .. } => tracker.state() == TargetState::Uninitialised,
            Engine::Many(m) => m.is_empty(),
        }
    }

    /// The track number of the single-target mode (0 before the first init); the number of
    /// targets in the multi-target mode.
    pub fn track_id(&self) -> u64 {
        match &self.engine {
            Engine::One { track_id, .. } => *track_id,
            Engine::Many(m) => m.len() as u64,
        }
    }

    /// The standing answers: each target's current box, state and last score, without a step.
    pub fn current(&self) -> Vec<Answer> {
        match &self.engine {
            Engine::One { tracker, track_id } => vec![Answer {
                id: track_id.to_string(),
                result: tracker.bbox().map(|bbox| TrackResult {
                    bbox,
                    score: tracker.last_score(),
                    state: tracker.state(),
                }),
            }],
            Engine::Many(m) => m
                .targets()
                .into_iter()
                .map(|t| Answer {
                    id: t.id.to_string(),
                    result: t.bbox.map(|bbox| TrackResult { bbox, score: t.score, state: t.state }),
                })
                .collect(),
        }
    }

    /// Tracks every target into `frame`. A failed step (a bad frame, the network) is an error of
    /// every target, whose answers then carry no box.
    pub fn track(&mut self, frame: &ImageU8) -> Step {
        match &mut self.engine {
            Engine::One { tracker, track_id } => {
                let id = track_id.to_string();
                if tracker.state() == TargetState::Uninitialised {
                    return Step { answers: vec![Answer { id, result: None }], errors: Vec::new() };
                }
                match tracker.track(frame) {
                    Ok(r) => Step { answers: vec![Answer { id, result: Some(r) }], errors: Vec::new() },
                    Err(e) => Step { answers: vec![Answer { id, result: None }], errors: vec![e.to_string()] },
                }
            }
            Engine::Many(m) => match m.track(frame) {
                Ok(results) => {
                    let mut step = Step::default();
                    for (id, r) in results {
                        let id = id.to_string();
                        match r {
                            Ok(r) => step.answers.push(Answer { id, result: Some(r) }),
                            Err(e) => {
                                step.errors.push(format!("target '{id}': {e}"));
                                step.answers.push(Answer { id, result: None });
                            }
                        }
                    }
                    step
                }
                Err(e) => Step {
                    answers: m.targets().into_iter().map(|t| Answer { id: t.id.to_string(), result: None }).collect(),
                    errors: vec![e.to_string()],
                },
            },
        }
    }

    /// Starts target `id` (see the module docs for ids) on `bbox` of `frame`; the id it got.
    pub fn init(&mut self, id: Option<&str>, frame: &ImageU8, bbox: BoxXywh) -> Result<String, MultiTrackError> {
        match &mut self.engine {
            Engine::One { tracker, track_id } => {
                tracker.init(frame, bbox)?;
                *track_id += 1;
                Ok(track_id.to_string())
            }
            Engine::Many(m) => {
                let id = match id.filter(|s| !s.is_empty()) {
                    Some(id) => TargetId::new(id)?,
                    None => free_id(m),
                };
                m.init(id.clone(), frame, bbox)?;
                Ok(id.to_string())
            }
        }
    }

    /// Forgets every target and, with one target, starts the track numbers again at 1 (a new
    /// run, e.g. a replay; `reset_all` keeps counting, as the node does).
    pub fn restart(&mut self) {
        self.reset_all();
        if let Engine::One { track_id, .. } = &mut self.engine {
            *track_id = 0;
        }
    }

    /// Forgets every target.
    pub fn reset_all(&mut self) {
        match &mut self.engine {
            Engine::One { tracker, .. } => tracker.reset(),
            Engine::Many(m) => m.reset_all(),
        }
    }

    /// Forgets target `id`; with one target, `id` is its track number.
    pub fn reset(&mut self, id: &str) -> Result<(), MultiTrackError> {
        match &mut self.engine {
            Engine::One { tracker, track_id } => {
                if tracker.state() == TargetState::Uninitialised || id != track_id.to_string() {
                    return Err(MultiTrackError::UnknownTarget(TargetId::new(id)?));
                }
                tracker.reset();
                Ok(())
            }
            Engine::Many(m) => m.reset(&TargetId::new(id)?),
        }
    }
}

impl From<Tracker> for TargetSet {
    fn from(tracker: Tracker) -> Self {
        Self { engine: Engine::One { tracker, track_id: 0 } }
    }
}

/// The lowest number not in use as an id (at most `max_targets` are, so one of 1..=33 is free).
fn free_id(m: &MultiTracker) -> TargetId {
    let used: Vec<String> = m.targets().into_iter().map(|t| t.id.to_string()).collect();
    let n = (1..).find(|n: &u64| !used.contains(&n.to_string())).unwrap_or(u64::MAX);
    TargetId::number(n)
}

/// What happened while answering a pair, for the caller to count and log.
pub enum Event<'a> {
    InitApplied,
    InitRejected(&'a dyn std::fmt::Display),
    TrackFailed(&'a str),
}

/// The node's answer to one pair (also replay's): the targets there are are tracked into
/// `frame`, then `inits` applied (an applied init answers for its target with its box, score 1,
/// Tracking). With one target an init replaces the tracking step (a rejected one leaves the
/// standing answer).
pub fn answer_pair(
    targets: &mut TargetSet,
    frame: &ImageU8,
    inits: &[InitBox],
    mut on: impl FnMut(Event<'_>),
) -> Vec<Answer> {
    let single = targets.max_targets() == 1;
    let mut answers = if targets.is_empty() || (single && !inits.is_empty()) {
        targets.current()
    } else {
        let step = targets.track(frame);
        if !step.errors.is_empty() {
            on(Event::TrackFailed(&step.errors.join("; ")));
        }
        step.answers
    };
    for init in inits {
        match targets.init(init.id.as_deref(), frame, init.bbox) {
            Ok(id) => {
                on(Event::InitApplied);
                let answer = Answer {
                    id,
                    result: Some(TrackResult { bbox: init.bbox, score: 1.0, state: TargetState::Tracking }),
                };
                if single {
                    answers = vec![answer];
                } else if let Some(a) = answers.iter_mut().find(|a| a.id == answer.id) {
                    *a = answer;
                } else {
                    answers.push(answer);
                }
            }
            Err(e) => on(Event::InitRejected(&e)),
        }
    }
    answers
}
