//! The node core: the tracker behind the topics, without a middleware.
//!
//! Inputs are raw CDR payloads (with the 4-byte encapsulation header) per [`Input`] topic, fed
//! to [`NodeCore::handle`] by a transport as they arrive; outputs are CDR payloads handed to a
//! [`Sink`]. The lifecycle, the services and the parameter rules around it are in
//! [`crate::ros::managed`]; the r2r transport (robots) and the DDS transport (no ROS install,
//! wire tests) are thin glue over that, so the behaviour tested here is the behaviour on the
//! robot.
//!
//! # Threads
//! * The transport's receive path calls [`NodeCore::handle`]: CDR decoding, ApproximateTime
//!   pairing, `~/init` / `~/reset` bookkeeping, the rate cap. It never waits for inference.
//! * The inference thread takes the **newest** synchronized pair from a latest-wins slot; a pair
//!   replaced before the thread got to it is counted as skipped (`pairs_skipped_busy`). Image
//!   decoding happens here, so skipped pairs cost no pixel work. A failure of the network (a
//!   panic inside libtorch's infallible ops included) is caught per pair, counted, logged
//!   (rate-limited) and reported as ERROR in the diagnostics while it lasts; the next pair is
//!   served. Should the thread end anyway, the diagnostics say so at ERROR.
//! * The debug thread draws `~/debug_image` from the last processed frame, again latest-wins,
//!   so drawing never delays the next inference. It only runs when [`Sink::subscriber_count`]
//!   reports a subscriber or `publish_debug_image` is set.
//! * The transport calls [`NodeCore::diagnostics`] about once a second.
//!
//! Bad input (malformed CDR, inconsistent images, bad init boxes) never stops the node: each
//! is a rate-limited warning and a counter in the diagnostics.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::model::PATrack;
use crate::ros::inputs::CameraMsg;
pub use crate::ros::inputs::{Input, InputMessage};
use crate::ros::msgs::{
    CameraInfo, Detection2D, DiagnosticArray, Header, MsgError, RegionOfInterest, RosMessage, Time,
};
use crate::ros::output::{self, Answer3d, Output};
use crate::ros::params::{NodeParams, ParamsError};
use crate::ros::slot::{lock, Slot, Warner};
use crate::ros::sync::{ApproxSync, SyncError, SyncStats};
use crate::ros::target3d::{self, CameraModel};
use crate::ros::targets::{answer_pair, Answer, Event, InitBox, TargetSet};
use crate::sensor::depth::{DepthImage, NoDepth};
use crate::sensor::{self, ImageU8, Modality};
use crate::tracker::{BoxXywh, TargetState};

/// Synchronized pairs kept after pairing, so that `~/init` stamped with a frame the operator
/// saw (e.g. on `~/debug_image`) still finds that frame.
pub const RECENT_PAIRS: usize = 8;

/// Name of the inference thread; the panic hook of the node binaries recognises it.
pub const INFERENCE_THREAD: &str = "patrack-inference";

/// Errors of starting the node core.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("tracker: {0}")]
    Tracker(String),
    #[error("starting the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

/// Why a message did not go out.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("no publisher for {0}")]
    NoPublisher(&'static str),
    #[error(transparent)]
    Message(#[from] MsgError),
    /// The middleware's own error, in its words.
    #[error("{0}")]
    Middleware(String),
}

/// Where the node's outputs go: one publisher per [`Output`], all taking CDR with the
/// encapsulation header. Called from the node's threads, hence `Sync`.
pub trait Sink: Send + Sync {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), SinkError>;

    /// Matched subscribers of an output, if the middleware knows; decides whether the debug
    /// image is built.
    fn subscriber_count(&self, _output: Output) -> usize {
        0
    }
}

/// A snapshot of the node's counters (monotonic since start).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStats {
    /// Messages received per [`Input`] (index = declaration order), decodable or not.
    pub received: [u64; Input::COUNT],
    /// Messages whose CDR did not decode, per [`Input`].
    pub malformed: [u64; Input::COUNT],
    pub sync: SyncStats,
    /// Pairs replaced in the latest-wins slot before inference took them.
    pub pairs_skipped_busy: u64,
    /// Pairs left out by `max_rate_hz`.
    pub pairs_skipped_rate: u64,
    /// Camera messages dropped because the node is disabled (`enabled`, `~/enable`).
    pub dropped_disabled: u64,
    /// Pairs whose images could not be decoded or combined.
    pub frame_errors: u64,
    /// Pairs run through the tracker (init or track), each answered on `~/detections`.
    pub processed: u64,
    pub inits_applied: u64,
    pub inits_rejected: u64,
    pub resets: u64,
    /// Pairs the tracker refused (an error it returned).
    pub track_errors: u64,
    /// Pairs on which the network failed (a panic caught on the inference thread).
    pub inference_failures: u64,
    /// Failures since the last pair that went through; > 0 means "failing now".
    pub consecutive_failures: u64,
    pub last_failure: String,
    /// False once the inference thread has ended (it should only end at shutdown).
    pub inference_alive: bool,
    pub publish_errors: u64,
    pub debug_images: u64,
    pub debug_skipped: u64,
    /// The first target's state and score (the target's, with one).
    pub state: Option<TargetState>,
    pub last_score: f32,
    /// One target: its track number (counts the applied inits). Several: the number of targets.
    pub track_id: u64,
    /// Every target after the last answered pair: id, state, score.
    pub targets: Vec<(String, TargetState, f32)>,
    /// Sum and count of inference (decode + prepare + track) and end-to-end (pair complete to
    /// detections published) latencies, milliseconds.
    pub inference_ms_sum: f64,
    pub latency_ms_sum: f64,
    pub latency_ms_max: f64,
    /// RGB-D: `CameraInfo` messages received and refused (invalid calibration), the camera in
    /// use (its description), answered pairs placed in 3D and tracked pairs without a depth.
    pub camera_info_received: u64,
    pub camera_info_invalid: u64,
    pub camera: Option<String>,
    pub targets_3d: u64,
    pub depth_missing: u64,
    pub last_depth_missing: String,
}

#[derive(Debug)]
struct SyncedPair {
    rgb: CameraMsg,
    aux: CameraMsg,
    stamp_ns: i64,
    completed: Instant,
}

impl SyncedPair {
    fn aux_stamp_ns(&self) -> i64 {
        self.aux.header().stamp_ns()
    }
}

/// What the inference thread has to do next, applied in this order. Merged while it is busy: a
/// reset or init is never lost, only tracking pairs are replaced by newer ones.
#[derive(Default)]
struct Work {
    reset_all: bool,
    reset_ids: Vec<String>,
    inits: Vec<(Arc<SyncedPair>, InitBox)>,
    pair: Option<Arc<SyncedPair>>,
}

struct DebugJob {
    frame: ImageU8,
    header: Header,
    answers: Vec<Answer>,
}

struct Shared {
    params: Mutex<(u64, NodeParams)>,
    sink: Arc<dyn Sink>,
    work: Slot<Work>,
    debug: Slot<DebugJob>,
    stats: Mutex<NodeStats>,
    warner: Mutex<Warner>,
    device: String,
    inference_alive: AtomicBool,
    /// The RGB camera from the latest valid `rgb/camera_info` (RGB-D).
    camera: Mutex<Option<CameraModel>>,
}

impl Shared {
    fn params(&self) -> (u64, NodeParams) {
        lock(&self.params).clone()
    }

    fn warn(&self, kind: &'static str, message: impl FnOnce() -> String) {
        lock(&self.warner).warn(kind, message);
    }

    fn stats(&self) -> MutexGuard<'_, NodeStats> {
        lock(&self.stats)
    }

    fn publish<M: RosMessage>(&self, output: Output, msg: &M) {
        let result = msg.encode().map_err(SinkError::from).and_then(|bytes| self.sink.publish(output, &bytes));
        if let Err(e) = result {
            self.stats().publish_errors += 1;
            self.warn("publish", || format!("publishing {}: {e}", output.topic()));
        }
    }

    fn debug_wanted(&self, params: &NodeParams) -> bool {
        params.publish_debug_image || self.sink.subscriber_count(Output::DebugImage) > 0
    }
}

/// Receive-path state: pairing, the init waiting for its frame, the switches it applies.
struct Front {
    sync: ApproxSync<CameraMsg, CameraMsg>,
    recent: VecDeque<Arc<SyncedPair>>,
    /// Inits whose frame has not been paired yet: each applied to the first pair stamped at or
    /// after its stamp (`i64::MIN`: the next pair).
    pending_inits: Vec<(i64, InitBox)>,
    /// `max_targets` > 1: init messages name their target by id.
    multi: bool,
    enabled: bool,
    /// Least stamp distance between tracked pairs (`max_rate_hz`), 0 for no cap.
    min_period_ns: i64,
    last_queued_ns: Option<i64>,
}

impl Front {
    /// Adds an init waiting for its frame, in place of an earlier one it replaces.
    fn add_pending(&mut self, stamp_ns: i64, init: InitBox) {
        self.pending_inits.retain(|(_, p)| !p.replaced_by(&init));
        self.pending_inits.push((stamp_ns, init));
    }
}

/// The least stamp distance for `max_rate_hz`, 5 % short of the period: camera stamps jitter,
/// and a 30 Hz camera capped at 10 Hz must give every third frame, whose distance is a
/// nanosecond under 100 ms.
fn min_period_ns(params: &NodeParams) -> i64 {
    if params.max_rate_hz > 0.0 {
        (0.95e9 / params.max_rate_hz).round() as i64
    } else {
        0
    }
}

/// Rates of the previous diagnostics call.
struct DiagWindow {
    at: Instant,
    stats: NodeStats,
}

/// The transport-independent node. See the module docs.
pub struct NodeCore {
    shared: Arc<Shared>,
    front: Mutex<Front>,
    diag: Mutex<DiagWindow>,
    threads: Vec<JoinHandle<()>>,
}

impl NodeCore {
    /// Validates the parameters and starts the inference and debug threads. The model moves
    /// to the inference thread: libtorch tensors may be sent between threads but not shared.
    pub fn new(params: NodeParams, model: PATrack, sink: Arc<dyn Sink>) -> Result<Self, NodeError> {
        params.validate()?;
        let sync = ApproxSync::new(params.sync_config())?;
        let tracker_config = params.tracker_config();
        let max_targets = params.max_targets as usize;
        let front = Front {
            sync,
            recent: VecDeque::new(),
            pending_inits: Vec::new(),
            multi: params.max_targets > 1,
            enabled: params.enabled,
            min_period_ns: min_period_ns(&params),
            last_queued_ns: None,
        };
        let shared = Arc::new(Shared {
            device: crate::device::device_name(model.device()),
            params: Mutex::new((0, params)),
            sink,
            work: Slot::new(),
            debug: Slot::new(),
            stats: Mutex::new(NodeStats { inference_alive: true, ..NodeStats::default() }),
            warner: Mutex::new(Warner::default()),
            inference_alive: AtomicBool::new(true),
            camera: Mutex::new(None),
        });
        let mut threads = Vec::new();
        let s = shared.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let inference = std::thread::Builder::new().name(INFERENCE_THREAD.into()).spawn(move || {
            // Marks the thread dead however it ends, a panic outside the per-pair guard included.
            struct Alive<'a>(&'a Shared);
            impl Drop for Alive<'_> {
                fn drop(&mut self) {
                    self.0.inference_alive.store(false, Ordering::SeqCst);
                }
            }
            let _alive = Alive(&s);
            match TargetSet::new(model, tracker_config, max_targets) {
                Ok(targets) => {
                    let _ = started_tx.send(Ok(()));
                    inference_loop(&s, targets);
                }
                Err(e) => {
                    let _ = started_tx.send(Err(e.to_string()));
                }
            }
        });
        threads.push(inference.map_err(|e| NodeError::Thread("inference", e))?);
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(NodeError::Tracker(e)),
            Err(_) => return Err(NodeError::Tracker("the inference thread ended while starting".into())),
        }
        let s = shared.clone();
        let debug = std::thread::Builder::new().name("patrack-debug".into()).spawn(move || debug_loop(&s));
        match debug {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                shared.work.close();
                for t in threads {
                    let _ = t.join();
                }
                return Err(NodeError::Thread("debug", e));
            }
        }
        Ok(Self {
            shared,
            front: Mutex::new(front),
            diag: Mutex::new(DiagWindow { at: Instant::now(), stats: NodeStats::default() }),
            threads,
        })
    }

    /// The parameters in force.
    pub fn params(&self) -> NodeParams {
        self.shared.params().1
    }

    /// The device the network runs on (`cpu`, `cuda:0`).
    pub fn device(&self) -> &str {
        &self.shared.device
    }

    /// Puts new parameters in force (validated by the caller, see
    /// [`crate::ros::parameters`]); the inference thread picks them up before its next pair.
    /// A new non-zero `initial_bbox` starts the target on the next pair.
    pub fn update_params(&self, params: NodeParams) {
        let mut front = lock(&self.front);
        let mut guard = lock(&self.shared.params);
        if params.initial_bbox != guard.1.initial_bbox {
            if let Some(bbox) = params.initial_box() {
                log::info!("initial_bbox set: starting the target on the next pair: {bbox}");
                front.add_pending(i64::MIN, InitBox { id: None, bbox });
            }
        }
        if params.enabled != front.enabled {
            log::info!(
                "{}",
                if params.enabled { "enabled: tracking" } else { "disabled: camera messages are dropped" }
            );
        }
        front.enabled = params.enabled;
        front.min_period_ns = min_period_ns(&params);
        *guard = (guard.0 + 1, params);
    }

    /// Feeds one message received on `input` (CDR with encapsulation header). Never blocks on
    /// inference; errors are logged (rate-limited) and counted, never returned.
    pub fn handle(&self, input: Input, cdr: &[u8]) {
        match InputMessage::decode(input, cdr) {
            Ok(msg) => self.handle_message(input, msg),
            Err(e) => {
                let mut stats = self.shared.stats();
                stats.received[input.index()] += 1;
                stats.malformed[input.index()] += 1;
                drop(stats);
                self.shared.warn(input.topic(), || format!("dropping malformed message on {}: {e}", input.topic()));
            }
        }
    }

    /// [`NodeCore::handle`] for a transport whose middleware has already decoded the message
    /// (with the same mirror structs). A message of the wrong kind for `input` is dropped and
    /// counted as malformed.
    pub fn handle_message(&self, input: Input, msg: InputMessage) {
        self.shared.stats().received[input.index()] += 1;
        match (input, msg) {
            (Input::Rgb | Input::Aux, InputMessage::Image(m)) => self.on_camera(input, CameraMsg::Raw(m)),
            (
                Input::RgbCompressed | Input::AuxCompressed | Input::AuxCompressedDepth,
                InputMessage::CompressedImage(m),
            ) => self.on_camera(input, CameraMsg::Compressed(m)),
            (Input::Init, InputMessage::Init(det)) => self.on_init(&det),
            (Input::InitRoi, InputMessage::InitRoi(roi)) => self.on_init_roi(&roi),
            (Input::Reset, InputMessage::Reset) => self.reset(),
            (Input::RgbCameraInfo, InputMessage::CameraInfo(info)) => self.on_camera_info(&info),
            (Input::ResetTarget, InputMessage::ResetTarget(id)) => self.reset_target(&id),
            (_, other) => {
                self.shared.stats().malformed[input.index()] += 1;
                let kind = other.kind();
                self.shared.warn(input.topic(), || format!("dropping a {kind} received on {}", input.topic()));
            }
        }
    }

    /// The latest valid calibration replaces the one in use; an invalid one is refused (counted
    /// and warned about, rate-limited) and the previous one stays.
    fn on_camera_info(&self, info: &CameraInfo) {
        self.shared.stats().camera_info_received += 1;
        match CameraModel::from_camera_info(info) {
            Ok(model) => {
                let mut camera = lock(&self.shared.camera);
                if camera.as_ref() != Some(&model) {
                    let description = model.describe();
                    log::info!("RGB camera calibration from {}: {description}", Input::RgbCameraInfo.topic());
                    *camera = Some(model);
                    drop(camera);
                    self.shared.stats().camera = Some(description);
                }
            }
            Err(e) => {
                self.shared.stats().camera_info_invalid += 1;
                self.shared.warn("camera_info", || {
                    format!("ignoring the CameraInfo on {}: {e}", Input::RgbCameraInfo.topic())
                });
            }
        }
    }

    fn on_camera(&self, input: Input, msg: CameraMsg) {
        let stamp_ns = msg.header().stamp_ns();
        let mut front = lock(&self.front);
        if !front.enabled {
            drop(front);
            self.shared.stats().dropped_disabled += 1;
            return;
        }
        let pairs = if input.is_rgb() { front.sync.push_a(stamp_ns, msg) } else { front.sync.push_b(stamp_ns, msg) };
        let sync_stats = front.sync.stats();
        let mut rate_skipped = 0;
        for pair in pairs {
            let pair =
                Arc::new(SyncedPair { stamp_ns: pair.stamp_a_ns, rgb: pair.a, aux: pair.b, completed: Instant::now() });
            if front.recent.len() >= RECENT_PAIRS {
                front.recent.pop_front();
            }
            front.recent.push_back(pair.clone());
            let due: Vec<InitBox> = {
                let (due, waiting) =
                    std::mem::take(&mut front.pending_inits).into_iter().partition(|(s, _)| pair.stamp_ns >= *s);
                front.pending_inits = waiting;
                due.into_iter().map(|(_, init)| init).collect()
            };
            // The cap is in stamp time, so a bag played at any speed is tracked alike.
            let too_soon = front.last_queued_ns.is_some_and(|last| pair.stamp_ns - last < front.min_period_ns);
            if !due.is_empty() {
                front.last_queued_ns = Some(pair.stamp_ns);
                self.queue_inits(pair, due);
            } else if front.min_period_ns > 0 && too_soon {
                rate_skipped += 1;
            } else {
                front.last_queued_ns = Some(pair.stamp_ns);
                self.queue_pair(pair);
            }
        }
        drop(front);
        let mut stats = self.shared.stats();
        stats.sync = sync_stats;
        stats.pairs_skipped_rate += rate_skipped;
    }

    fn queue_pair(&self, pair: Arc<SyncedPair>) {
        let mut skipped = false;
        self.shared.work.update(|w| {
            let w = w.get_or_insert_with(Work::default);
            skipped = w.pair.replace(pair).is_some();
        });
        if skipped {
            self.shared.stats().pairs_skipped_busy += 1;
        }
    }

    /// Queues `inits` on `pair` in one update, so that the inference thread applies them together
    /// (and the pair's answer carries every one of them).
    fn queue_inits(&self, pair: Arc<SyncedPair>, inits: Vec<InitBox>) {
        let mut skipped = 0;
        self.shared.work.update(|w| {
            let w = w.get_or_insert_with(Work::default);
            // Tracking pairs not newer than the init frame are obsolete once it is applied.
            if w.pair.as_ref().is_some_and(|p| p.stamp_ns <= pair.stamp_ns) {
                w.pair = None;
                skipped += 1;
            }
            for init in inits {
                w.inits.retain(|(_, queued)| !queued.replaced_by(&init));
                w.inits.push((pair.clone(), init));
            }
        });
        self.shared.stats().pairs_skipped_busy += skipped;
    }

    /// The id an init message names: with several targets its `id` (empty: a new target), with
    /// one none (the id is the track number).
    fn init_id(&self, id: &str, topic: &str) -> Result<Option<String>, ()> {
        if !lock(&self.front).multi || id.is_empty() {
            return Ok(None);
        }
        match crate::tracker::TargetId::new(id) {
            Ok(_) => Ok(Some(id.to_owned())),
            Err(e) => {
                self.shared.stats().inits_rejected += 1;
                self.shared.warn("init-id", || format!("ignoring {topic}: {e}"));
                Err(())
            }
        }
    }

    fn valid_init_box(&self, bbox: BoxXywh, topic: &str) -> bool {
        if bbox.is_finite() && bbox.w > 0.0 && bbox.h > 0.0 {
            return true;
        }
        self.shared.stats().inits_rejected += 1;
        self.shared.warn("init-box", || format!("ignoring {topic} with an empty or non-finite box {bbox}"));
        false
    }

    fn on_init(&self, det: &Detection2D) {
        let bbox = det.bbox.to_xywh();
        if !self.valid_init_box(bbox, "~/init") {
            return;
        }
        let Ok(id) = self.init_id(&det.id, "~/init") else { return };
        let target = id.as_ref().map_or_else(String::new, |id| format!("target '{id}' "));
        let init = InitBox { id, bbox };
        let stamp_ns = det.header.stamp_ns();
        let mut front = lock(&self.front);
        let buffered = front.recent.iter().rev().find(|p| p.stamp_ns == stamp_ns || p.aux_stamp_ns() == stamp_ns);
        if let Some(pair) = buffered.cloned() {
            front.pending_inits.retain(|(_, p)| !p.replaced_by(&init));
            drop(front);
            log::info!("init {target}on the buffered frame stamped {stamp_ns} ns: {bbox}");
            self.queue_inits(pair, vec![init]);
        } else {
            log::info!("init {target}for stamp {stamp_ns} ns (not buffered): applied to the next pair: {bbox}");
            front.add_pending(stamp_ns, init);
        }
    }

    /// `sensor_msgs/RegionOfInterest` has no header: the box applies to the next pair.
    fn on_init_roi(&self, roi: &RegionOfInterest) {
        let bbox =
            BoxXywh::new(f64::from(roi.x_offset), f64::from(roi.y_offset), f64::from(roi.width), f64::from(roi.height));
        if !self.valid_init_box(bbox, "~/init_roi") {
            return;
        }
        log::info!("init from ~/init_roi, applied to the next pair: {bbox}");
        lock(&self.front).add_pending(i64::MIN, InitBox { id: None, bbox });
    }

    /// Forgets every target (and the inits waiting for their frames); `~/reset` topic and
    /// service.
    pub fn reset(&self) {
        lock(&self.front).pending_inits.clear();
        self.shared.work.update(|w| {
            let w = w.get_or_insert_with(Work::default);
            w.reset_all = true;
            w.reset_ids.clear();
            w.inits.clear();
        });
        log::info!("reset: every target forgotten");
    }

    /// Forgets the target `id` (and its inits waiting for their frames); `~/reset_target`. With
    /// one target, `id` is its track number (the `id` of its detections).
    pub fn reset_target(&self, id: &str) {
        if let Err(e) = crate::tracker::TargetId::new(id) {
            self.shared.warn("reset-id", || format!("ignoring {}: {e}", Input::ResetTarget.topic()));
            return;
        }
        let named = |init: &InitBox| init.id.as_deref() == Some(id);
        lock(&self.front).pending_inits.retain(|(_, init)| !named(init));
        self.shared.work.update(|w| {
            let w = w.get_or_insert_with(Work::default);
            w.inits.retain(|(_, init)| !named(init));
            w.reset_ids.push(id.to_owned());
        });
    }

    /// A copy of the counters.
    pub fn stats(&self) -> NodeStats {
        let mut stats = self.shared.stats().clone();
        stats.inference_alive = self.shared.inference_alive.load(Ordering::SeqCst);
        stats
    }

    /// Waits until every queued pair and debug image is done (for tests and orderly replay);
    /// false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // The inference thread may hand the debug thread new work, so check both twice.
        for _ in 0..2 {
            if !(self.shared.work.wait_idle(deadline) && self.shared.debug.wait_idle(deadline)) {
                return false;
            }
        }
        self.shared.work.is_idle() && self.shared.debug.is_idle()
    }

    /// The diagnostics message for the time since the previous call (rates are per second of
    /// that window), stamped `stamp`; `context` adds the lifecycle state and the like.
    pub fn diagnostics(&self, stamp: Time, context: &[(&str, String)]) -> DiagnosticArray {
        let now = Instant::now();
        let stats = self.stats();
        let mut window = lock(&self.diag);
        let elapsed_s = now.duration_since(window.at).as_secs_f64().max(1e-3);
        let prev = std::mem::replace(&mut window.stats, stats.clone());
        window.at = now;
        drop(window);
        let window = crate::ros::diagnostics::Window { now: &stats, before: &prev, elapsed_s };
        crate::ros::diagnostics::tracker_status(&window, &self.params(), &self.shared.device, stamp, context)
    }

    /// Stops the threads after the work in hand; also done on drop.
    pub fn shutdown(&mut self) {
        self.shared.work.close();
        self.shared.debug.close();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::error!("a node thread panicked");
            }
        }
    }
}

impl Drop for NodeCore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The inference thread's state besides the targets.
struct Inference<'a> {
    shared: &'a Shared,
    targets: TargetSet,
    params_generation: u64,
    params: NodeParams,
    initial_box_used: bool,
    /// Stamp of the newest pair answered on `~/detections`.
    last_answered_ns: Option<i64>,
    /// The one-time hint that RGB-D 3D outputs wait for a `CameraInfo` was given.
    camera_hint_given: bool,
}

fn inference_loop(shared: &Shared, targets: TargetSet) {
    let (params_generation, params) = shared.params();
    let mut inf = Inference {
        shared,
        targets,
        params_generation,
        params,
        initial_box_used: false,
        last_answered_ns: None,
        camera_hint_given: false,
    };
    while let Some(work) = shared.work.take() {
        inf.refresh_params();
        if work.reset_all {
            inf.targets.reset_all();
            let mut stats = shared.stats();
            stats.resets += 1;
            stats.state = Some(TargetState::Uninitialised);
            stats.targets.clear();
        }
        for id in &work.reset_ids {
            match inf.targets.reset(id) {
                Ok(()) => {
                    log::info!("reset: target '{id}' forgotten");
                    let mut stats = shared.stats();
                    stats.resets += 1;
                    stats.targets.retain(|(t, _, _)| t != id);
                }
                Err(e) => shared.warn("reset-id", || format!("{}: {e}", Input::ResetTarget.topic())),
            }
        }
        // Inits on the same pair are applied together, after one tracking step on it.
        let mut init_stamp_ns = None;
        let mut inits = work.inits.into_iter().peekable();
        while let Some((pair, first)) = inits.next() {
            let mut group = vec![first];
            while let Some((_, init)) = inits.next_if(|(p, _)| Arc::ptr_eq(p, &pair)) {
                group.push(init);
            }
            init_stamp_ns = init_stamp_ns.max(Some(pair.stamp_ns));
            inf.guarded(&pair, &group);
        }
        if let Some(pair) = work.pair {
            if init_stamp_ns.is_some_and(|s| s >= pair.stamp_ns) {
                shared.stats().pairs_skipped_busy += 1;
            } else {
                inf.guarded(&pair, &[]);
            }
        }
    }
}

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

impl Inference<'_> {
    fn refresh_params(&mut self) {
        let (generation, params) = self.shared.params();
        if generation != self.params_generation {
            if let Err(e) = self.targets.set_config(params.tracker_config()) {
                self.shared.warn("params", || format!("tracker rejected new parameters: {e}"));
            }
            self.params_generation = generation;
            self.params = params;
        }
    }

    /// [`Inference::process`] behind a guard: a panic inside the network (libtorch's infallible
    /// ops panic on a failed kernel) costs this pair, not the node.
    fn guarded(&mut self, pair: &SyncedPair, inits: &[InitBox]) {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.process(pair, inits)));
        let mut stats = self.shared.stats();
        match outcome {
            Ok(()) => stats.consecutive_failures = 0,
            Err(payload) => {
                let text = panic_text(payload.as_ref());
                stats.inference_failures += 1;
                stats.consecutive_failures += 1;
                stats.last_failure.clone_from(&text);
                drop(stats);
                self.shared
                    .warn("inference", || format!("inference failed on the pair stamped {} ns: {text}", pair.stamp_ns));
            }
        }
    }

    /// The 6-channel frame of a pair, and in RGB-D mode its raw depth image.
    fn frame(&self, pair: &SyncedPair) -> Result<(ImageU8, Option<DepthImage>), String> {
        let rgb = pair.rgb.decode().map_err(|e| format!("rgb image: {e}"))?;
        let rgb = sensor::prepare_rgb(rgb).map_err(|e| format!("rgb image: {e}"))?;
        let aux = pair.aux.decode().map_err(|e| format!("aux image: {e}"))?;
        sensor::prepare_frame_keeping_depth(&rgb, aux, self.params.modality, &self.params.aux_config())
            .map_err(|e| format!("aux image: {e}"))
    }

    /// Runs one pair through the targets (tracking the ones there are, then applying `inits`)
    /// and publishes the answer for its stamp.
    fn process(&mut self, pair: &SyncedPair, inits: &[InitBox]) {
        self.refresh_params();
        let start = Instant::now();
        let (frame, depth) = match self.frame(pair) {
            Ok(f) => f,
            Err(e) => {
                self.shared.stats().frame_errors += 1;
                self.shared.warn("frame", || format!("skipping the pair stamped {} ns: {e}", pair.stamp_ns));
                return;
            }
        };
        let mut inits = inits.to_vec();
        if inits.is_empty() && !self.initial_box_used && self.targets.is_empty() {
            inits.extend(self.params.initial_box().map(|bbox| InitBox { id: None, bbox }));
            self.initial_box_used = true;
        }
        let answers = answer_pair(&mut self.targets, &frame, &inits, |event| match event {
            Event::InitApplied => self.shared.stats().inits_applied += 1,
            Event::InitRejected(e) => {
                self.shared.stats().inits_rejected += 1;
                self.shared.warn("init", || format!("init box rejected: {e}"));
            }
            Event::TrackFailed(e) => {
                self.shared.stats().track_errors += 1;
                self.shared.warn("track", || format!("tracking failed on the pair stamped {} ns: {e}", pair.stamp_ns));
            }
        });
        let inference_ms = start.elapsed().as_secs_f64() * 1e3;
        let first = answers.first();
        {
            let mut stats = self.shared.stats();
            stats.state = Some(first.map_or(TargetState::Uninitialised, Answer::state));
            stats.last_score = first.map_or(0.0, Answer::score);
            stats.track_id = self.targets.track_id();
            stats.targets =
                answers.iter().filter(|a| a.result.is_some()).map(|a| (a.id.clone(), a.state(), a.score())).collect();
        }
        // Outputs stay in stamp order: an init on a buffered frame that was already answered
        // starts the track there, and the next pair carries the first box.
        if self.last_answered_ns.is_some_and(|last| pair.stamp_ns <= last) {
            return;
        }
        self.last_answered_ns = Some(pair.stamp_ns);
        let header = pair.rgb.header().clone();
        let class_id = &self.params.class_id;
        self.shared.publish(Output::Detections, &output::detections(&header, &answers, class_id));
        self.shared.publish(Output::Confidence, &output::confidence(&answers));
        self.shared.publish(Output::ConfidenceStamped, &output::confidence_stamped(&header, &answers, class_id));
        if self.params.modality == Modality::Depth {
            self.publish_3d(&header, &frame, depth.as_ref(), &answers);
        }
        let latency_ms = pair.completed.elapsed().as_secs_f64() * 1e3;
        {
            let mut stats = self.shared.stats();
            stats.processed += 1;
            stats.inference_ms_sum += inference_ms;
            stats.latency_ms_sum += latency_ms;
            stats.latency_ms_max = stats.latency_ms_max.max(latency_ms);
        }
        if self.shared.debug_wanted(&self.params) {
            let mut replaced = false;
            self.shared.debug.update(|slot| replaced = slot.replace(DebugJob { frame, header, answers }).is_some());
            if replaced {
                self.shared.stats().debug_skipped += 1;
            }
        }
    }

    /// RGB-D: places the tracked box in 3D and publishes `~/target_point` (only with a 3D
    /// target), `~/detections_3d` and `~/markers` (every answered pair). Nothing is published
    /// before the first valid `CameraInfo`.
    fn publish_3d(&mut self, header: &Header, frame: &ImageU8, depth: Option<&DepthImage>, answers: &[Answer]) {
        let Some(camera) = lock(&self.shared.camera).clone() else {
            if !std::mem::replace(&mut self.camera_hint_given, true) {
                log::warn!(
                    "no valid sensor_msgs/CameraInfo on {} yet: ~/target_point, ~/detections_3d and ~/markers stay \
                     silent until one arrives (remap it to the RGB camera's camera_info topic)",
                    Input::RgbCameraInfo.topic()
                );
            }
            return;
        };
        let size = (frame.width, frame.height);
        let placed: Vec<Answer3d> = answers
            .iter()
            .map(|a| {
                let target =
                    target3d::target_of(&self.params, &camera, depth, size, a.result.as_ref()).unwrap_or_else(|e| {
                        self.note_no_depth(header, &e);
                        None
                    });
                Answer3d { answer: a.clone(), target }
            })
            .collect();
        let out = output::outputs_3d(header, &camera, &placed, &self.params.class_id);
        if let Some(point) = &out.target_point {
            self.shared.publish(Output::TargetPoint, point);
            self.shared.stats().targets_3d += 1;
        }
        self.shared.publish(Output::Detections3d, &out.detections_3d);
        self.shared.publish(Output::Markers, &out.markers);
    }

    /// A tracked box without a 3D position: counted; a calibration that does not fit the images
    /// is warned about (rate-limited), a box without enough depth readings only logged at debug.
    fn note_no_depth(&self, header: &Header, e: &NoDepth) {
        let mut stats = self.shared.stats();
        stats.depth_missing += 1;
        stats.last_depth_missing = e.to_string();
        drop(stats);
        let stamp_ns = header.stamp_ns();
        match e {
            NoDepth::Camera(_) | NoDepth::Inconsistent => {
                self.shared.warn("target3d", || format!("no 3D position for the pair stamped {stamp_ns} ns: {e}"))
            }
            _ => log::debug!("no 3D position for the pair stamped {stamp_ns} ns: {e}"),
        }
    }
}

fn debug_loop(shared: &Shared) {
    while let Some(job) = shared.debug.take() {
        let (_, params) = shared.params();
        let image =
            output::debug_image(&job.frame, &job.header, &job.answers, &params.class_id, params.debug_aux_blend);
        shared.publish(Output::DebugImage, &image);
        shared.stats().debug_images += 1;
    }
}

/// Routes panics to the `log` facade: the inference thread's at debug level (its guard already
/// reports each failure, rate-limited, with the panic's text), every other thread's as errors.
/// The node binaries install it at start so a failing kernel does not flood stderr at 30 Hz.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let text = panic_text(info.payload());
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        if name == INFERENCE_THREAD {
            log::debug!("panic on the inference thread{place}: {text}");
        } else {
            log::error!("thread {name} panicked{place}: {text}");
        }
    }));
}
