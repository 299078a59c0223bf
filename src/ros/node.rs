//! The node core: everything the ROS node does except talking to a middleware.
//!
//! Inputs are raw CDR payloads (with the 4-byte encapsulation header) per [`Input`] topic, fed
//! to [`NodeCore::handle`] by a transport as they arrive; outputs are CDR payloads handed to a
//! [`Sink`]. The r2r transport (robots) and the DDS transport (no ROS install, wire tests) are
//! thin glue over this, so the behaviour tested here is the behaviour on the robot.
//!
//! # Threads
//! * The transport's receive path calls [`NodeCore::handle`]: CDR decoding, ApproximateTime
//!   pairing, `~/init` / `~/reset` bookkeeping. It never waits for inference.
//! * The inference thread takes the **newest** synchronized pair from a latest-wins slot; a pair
//!   replaced before the thread got to it is counted as skipped (`pairs_skipped_busy`). Image
//!   decoding happens here, so skipped pairs cost no pixel work.
//! * The debug thread draws `~/debug_image` from the last processed frame, again latest-wins,
//!   so drawing never delays the next inference. It only runs when [`Sink::subscriber_count`]
//!   reports a subscriber or `publish_debug_image` is set.
//! * The transport calls [`NodeCore::publish_diagnostics`] about once a second.
//!
//! Bad input (malformed CDR, inconsistent images, bad init boxes) never stops the node: each
//! is a rate-limited warning and a counter in the diagnostics.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::model::PATrack;
use crate::ros::msgs::{
    CompressedImage, Detection2D, DiagnosticArray, DiagnosticStatus, Empty, Header, Image, KeyValue, MsgError,
    RosMessage, Time,
};
use crate::ros::output::{self, Output};
use crate::ros::params::{NodeParams, ParamsError};
use crate::ros::sync::{ApproxSync, SyncError, SyncStats};
use crate::sensor::{self, ImageU8};
use crate::tracker::{BoxXywh, TargetState, TrackResult, Tracker};

/// Synchronized pairs kept after pairing, so that `~/init` stamped with a frame the operator
/// saw (e.g. on `~/debug_image`) still finds that frame.
pub const RECENT_PAIRS: usize = 8;

/// Least time between two warnings of the same kind; the ones in between are counted.
pub const WARN_INTERVAL: Duration = Duration::from_secs(5);

/// Name of the node's entry in `/diagnostics`.
pub const DIAGNOSTIC_NAME: &str = "patrack: tracker";

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

/// A topic the node subscribes to. Names are relative (or private, `~/`), so namespaces and
/// remappings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    Rgb,
    Aux,
    RgbCompressed,
    AuxCompressed,
    Init,
    Reset,
}

impl Input {
    pub const ALL: [Input; 6] =
        [Input::Rgb, Input::Aux, Input::RgbCompressed, Input::AuxCompressed, Input::Init, Input::Reset];

    pub fn topic(self) -> &'static str {
        match self {
            Input::Rgb => "rgb/image",
            Input::Aux => "aux/image",
            Input::RgbCompressed => "rgb/image/compressed",
            Input::AuxCompressed => "aux/image/compressed",
            Input::Init => "~/init",
            Input::Reset => "~/reset",
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            Input::Rgb | Input::Aux => Image::TYPE_NAME,
            Input::RgbCompressed | Input::AuxCompressed => CompressedImage::TYPE_NAME,
            Input::Init => Detection2D::TYPE_NAME,
            Input::Reset => Empty::TYPE_NAME,
        }
    }

    /// Camera streams take sensor-data QoS (best effort, keep last); commands are reliable.
    pub fn is_sensor_data(self) -> bool {
        !matches!(self, Input::Init | Input::Reset)
    }

    /// Short key for diagnostics values.
    pub fn key(self) -> &'static str {
        match self {
            Input::Rgb | Input::RgbCompressed => "rgb",
            Input::Aux | Input::AuxCompressed => "aux",
            Input::Init => "init",
            Input::Reset => "reset",
        }
    }

    /// The topics to subscribe with these parameters (raw or compressed cameras).
    pub fn subscribed(params: &NodeParams) -> Vec<Input> {
        let cameras =
            if params.use_compressed { [Input::RgbCompressed, Input::AuxCompressed] } else { [Input::Rgb, Input::Aux] };
        vec![cameras[0], cameras[1], Input::Init, Input::Reset]
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where the node's outputs go: one publisher per [`Output`], all taking CDR with the
/// encapsulation header. Called from the node's threads, hence `Sync`.
pub trait Sink: Send + Sync {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), String>;

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
    pub received: [u64; 6],
    /// Messages whose CDR did not decode, per [`Input`].
    pub malformed: [u64; 6],
    pub sync: SyncStats,
    /// Pairs replaced in the latest-wins slot before inference took them.
    pub pairs_skipped_busy: u64,
    /// Pairs whose images could not be decoded or combined.
    pub frame_errors: u64,
    /// Pairs run through the tracker (init or track), each answered on `~/detections`.
    pub processed: u64,
    pub inits_applied: u64,
    pub inits_rejected: u64,
    pub resets: u64,
    pub track_errors: u64,
    pub publish_errors: u64,
    pub debug_images: u64,
    pub debug_skipped: u64,
    pub state: Option<TargetState>,
    pub last_score: f32,
    pub track_id: u64,
    /// Sum and count of inference (decode + prepare + track) and end-to-end (pair complete to
    /// detections published) latencies, milliseconds.
    pub inference_ms_sum: f64,
    pub latency_ms_sum: f64,
    pub latency_ms_max: f64,
}

/// One camera message of either kind, decoded only as far as the header.
#[derive(Debug, Clone)]
enum CameraMsg {
    Raw(Image),
    Compressed(CompressedImage),
}

impl CameraMsg {
    fn header(&self) -> &Header {
        match self {
            CameraMsg::Raw(m) => &m.header,
            CameraMsg::Compressed(m) => &m.header,
        }
    }

    fn decode(&self) -> Result<sensor::DecodedImage, sensor::DecodeError> {
        match self {
            CameraMsg::Raw(m) => sensor::decode_image(&m.encoding, m.width, m.height, m.step, m.is_bigendian, &m.data),
            CameraMsg::Compressed(m) => sensor::decode_compressed(&m.format, &m.data),
        }
    }
}

#[derive(Debug)]
struct SyncedPair {
    rgb: CameraMsg,
    aux: CameraMsg,
    stamp_ns: i64,
    completed: Instant,
}

/// What the inference thread has to do next. Merged while it is busy: a reset or init is never
/// lost, only tracking pairs are replaced by newer ones.
#[derive(Default)]
struct Work {
    reset: bool,
    init: Option<(Arc<SyncedPair>, BoxXywh)>,
    pair: Option<Arc<SyncedPair>>,
}

struct DebugJob {
    frame: ImageU8,
    header: Header,
    result: Option<TrackResult>,
}

/// A one-value mailbox between threads: the producer overwrites, the consumer takes.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    changed: Condvar,
}

struct SlotState<T> {
    value: Option<T>,
    busy: bool,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the node down with it; the data are counters and queues
    // that stay usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Slot<T> {
    fn new() -> Self {
        Self { state: Mutex::new(SlotState { value: None, busy: false, closed: false }), changed: Condvar::new() }
    }

    fn update(&self, f: impl FnOnce(&mut Option<T>)) {
        let mut s = lock(&self.state);
        f(&mut s.value);
        self.changed.notify_all();
    }

    /// Blocks until a value is there (marking the consumer busy) or the slot is closed.
    fn take(&self) -> Option<T> {
        let mut s = lock(&self.state);
        s.busy = false;
        self.changed.notify_all();
        loop {
            if s.closed {
                return None;
            }
            if let Some(v) = s.value.take() {
                s.busy = true;
                return Some(v);
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn is_idle(&self) -> bool {
        let s = lock(&self.state);
        s.value.is_none() && !s.busy
    }

    fn wait_idle(&self, deadline: Instant) -> bool {
        let mut s = lock(&self.state);
        while s.value.is_some() || s.busy {
            let now = Instant::now();
            if now >= deadline || s.closed {
                return false;
            }
            s = self.changed.wait_timeout(s, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_all();
    }
}

/// Logs a warning per kind at most once per [`WARN_INTERVAL`], with the number suppressed.
#[derive(Default)]
struct Warner {
    last: HashMap<&'static str, (Instant, u64)>,
}

impl Warner {
    /// Returns whether the warning was logged (not suppressed).
    fn warn(&mut self, kind: &'static str, message: impl FnOnce() -> String) -> bool {
        let now = Instant::now();
        match self.last.get_mut(kind) {
            Some((at, suppressed)) if now.duration_since(*at) < WARN_INTERVAL => {
                *suppressed += 1;
                false
            }
            Some((at, suppressed)) => {
                let n = std::mem::take(suppressed);
                *at = now;
                log::warn!("{} ({n} more like this since the last report)", message());
                true
            }
            None => {
                self.last.insert(kind, (now, 0));
                log::warn!("{}", message());
                true
            }
        }
    }
}

struct Shared {
    params: Mutex<(u64, NodeParams)>,
    sink: Arc<dyn Sink>,
    work: Slot<Work>,
    debug: Slot<DebugJob>,
    stats: Mutex<NodeStats>,
    warner: Mutex<Warner>,
    device: String,
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
        let result = msg.encode().map_err(|e| e.to_string()).and_then(|bytes| self.sink.publish(output, &bytes));
        if let Err(e) = result {
            self.stats().publish_errors += 1;
            self.warn("publish", || format!("publishing {}: {e}", output.topic()));
        }
    }

    fn debug_wanted(&self, params: &NodeParams) -> bool {
        params.publish_debug_image || self.sink.subscriber_count(Output::DebugImage) > 0
    }
}

/// Pairing state of the receive path.
struct Front {
    sync: ApproxSync<CameraMsg, CameraMsg>,
    recent: VecDeque<Arc<SyncedPair>>,
    /// An init whose frame has not been paired yet: applied to the first pair stamped at or
    /// after `stamp_ns`.
    pending_init: Option<(i64, BoxXywh)>,
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
        let shared = Arc::new(Shared {
            device: crate::device::device_name(model.device()),
            params: Mutex::new((0, params)),
            sink,
            work: Slot::new(),
            debug: Slot::new(),
            stats: Mutex::new(NodeStats::default()),
            warner: Mutex::new(Warner::default()),
        });
        let mut threads = Vec::new();
        let s = shared.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let inference =
            std::thread::Builder::new().name("patrack-inference".into()).spawn(move || {
                match Tracker::new(model, tracker_config) {
                    Ok(tracker) => {
                        let _ = started_tx.send(Ok(()));
                        inference_loop(&s, tracker);
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
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
            front: Mutex::new(Front { sync, recent: VecDeque::new(), pending_init: None }),
            diag: Mutex::new(DiagWindow { at: Instant::now(), stats: NodeStats::default() }),
            threads,
        })
    }

    /// The parameters in force.
    pub fn params(&self) -> NodeParams {
        self.shared.params().1
    }

    /// Changes one runtime parameter (see [`crate::ros::params::RUNTIME_PARAMETERS`]).
    pub fn set_parameter(&self, name: &str, value: serde_yaml::Value) -> Result<(), ParamsError> {
        let mut guard = lock(&self.shared.params);
        let next = guard.1.with_runtime_value(name, value)?;
        log::info!("parameter {name} changed");
        *guard = (guard.0 + 1, next);
        Ok(())
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
            (Input::RgbCompressed | Input::AuxCompressed, InputMessage::CompressedImage(m)) => {
                self.on_camera(input, CameraMsg::Compressed(m))
            }
            (Input::Init, InputMessage::Init(det)) => self.on_init(&det),
            (Input::Reset, InputMessage::Reset) => self.on_reset(),
            (_, other) => {
                self.shared.stats().malformed[input.index()] += 1;
                let kind = other.kind();
                self.shared.warn(input.topic(), || format!("dropping a {kind} received on {}", input.topic()));
            }
        }
    }

    fn on_camera(&self, input: Input, msg: CameraMsg) {
        let stamp_ns = msg.header().stamp_ns();
        let mut front = lock(&self.front);
        let pairs = match input {
            Input::Rgb | Input::RgbCompressed => front.sync.push_a(stamp_ns, msg),
            _ => front.sync.push_b(stamp_ns, msg),
        };
        let sync_stats = front.sync.stats();
        for pair in pairs {
            let pair =
                Arc::new(SyncedPair { stamp_ns: pair.stamp_a_ns, rgb: pair.a, aux: pair.b, completed: Instant::now() });
            if front.recent.len() >= RECENT_PAIRS {
                front.recent.pop_front();
            }
            front.recent.push_back(pair.clone());
            match front.pending_init {
                Some((init_stamp_ns, bbox)) if pair.stamp_ns >= init_stamp_ns => {
                    front.pending_init = None;
                    self.queue_init(pair, bbox);
                }
                _ => self.queue_pair(pair),
            }
        }
        self.shared.stats().sync = sync_stats;
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

    fn queue_init(&self, pair: Arc<SyncedPair>, bbox: BoxXywh) {
        let mut skipped = 0;
        self.shared.work.update(|w| {
            let w = w.get_or_insert_with(Work::default);
            // Tracking pairs not newer than the init frame are obsolete once it is applied.
            if w.pair.as_ref().is_some_and(|p| p.stamp_ns <= pair.stamp_ns) {
                w.pair = None;
                skipped += 1;
            }
            w.init = Some((pair, bbox));
        });
        self.shared.stats().pairs_skipped_busy += skipped;
    }

    fn on_init(&self, det: &Detection2D) {
        let (w, h) = (det.bbox.size_x, det.bbox.size_y);
        let bbox = BoxXywh::new(det.bbox.center.position.x - 0.5 * w, det.bbox.center.position.y - 0.5 * h, w, h);
        if !(bbox.is_finite() && w > 0.0 && h > 0.0) {
            self.shared.stats().inits_rejected += 1;
            self.shared.warn("init-box", || format!("ignoring ~/init with an empty or non-finite box {bbox:?}"));
            return;
        }
        let stamp_ns = det.header.stamp_ns();
        let mut front = lock(&self.front);
        let buffered = front.recent.iter().rev().find(|p| p.stamp_ns == stamp_ns || p.aux_stamp_ns() == stamp_ns);
        if let Some(pair) = buffered.cloned() {
            front.pending_init = None;
            drop(front);
            log::info!("init on the buffered frame stamped {stamp_ns} ns: {bbox:?}");
            self.queue_init(pair, bbox);
        } else {
            log::info!("init for stamp {stamp_ns} ns (not buffered): applied to the next pair: {bbox:?}");
            front.pending_init = Some((stamp_ns, bbox));
        }
    }

    fn on_reset(&self) {
        lock(&self.front).pending_init = None;
        self.shared.work.update(|w| {
            let w = w.get_or_insert_with(Work::default);
            w.reset = true;
            w.init = None;
        });
        log::info!("reset: target forgotten");
    }

    /// A copy of the counters.
    pub fn stats(&self) -> NodeStats {
        self.shared.stats().clone()
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
    /// that window), stamped `stamp`.
    pub fn diagnostics(&self, stamp: Time) -> DiagnosticArray {
        let now = Instant::now();
        let stats = self.stats();
        let mut window = lock(&self.diag);
        let elapsed_s = now.duration_since(window.at).as_secs_f64().max(1e-3);
        let prev = std::mem::replace(&mut window.stats, stats.clone());
        window.at = now;
        drop(window);
        let params = self.params();
        let rate = |now: u64, before: u64| format!("{:.2}", now.saturating_sub(before) as f64 / elapsed_s);
        let processed = stats.processed.saturating_sub(prev.processed);
        let mean = |sum: f64, before: f64| {
            if processed == 0 {
                "nan".to_owned()
            } else {
                format!("{:.2}", (sum - before) / processed as f64)
            }
        };
        let cameras = Input::subscribed(&params);
        let mut values = Vec::new();
        let mut kv = |key: &str, value: String| values.push(KeyValue { key: key.to_owned(), value });
        for input in &cameras[..2] {
            let i = input.index();
            kv(&format!("{}_rate_hz", input.key()), rate(stats.received[i], prev.received[i]));
        }
        kv("pairs_rate_hz", rate(stats.sync.pairs, prev.sync.pairs));
        kv("processed_rate_hz", rate(stats.processed, prev.processed));
        let drops = |s: &SyncStats| (s.dropped_a.total(), s.dropped_b.total());
        let (now_a, now_b) = drops(&stats.sync);
        let (prev_a, prev_b) = drops(&prev.sync);
        kv("sync_dropped_rgb", (now_a - prev_a.min(now_a)).to_string());
        kv("sync_dropped_aux", (now_b - prev_b.min(now_b)).to_string());
        kv("sync_dropped_total", (now_a + now_b).to_string());
        kv("pairs_skipped_busy", stats.pairs_skipped_busy.saturating_sub(prev.pairs_skipped_busy).to_string());
        kv("pairs_skipped_busy_total", stats.pairs_skipped_busy.to_string());
        let malformed: u64 = stats.malformed.iter().sum();
        kv("malformed_messages_total", malformed.to_string());
        kv("frame_errors_total", stats.frame_errors.to_string());
        kv("inits_rejected_total", stats.inits_rejected.to_string());
        kv("track_errors_total", stats.track_errors.to_string());
        kv("inference_ms_mean", mean(stats.inference_ms_sum, prev.inference_ms_sum));
        kv("latency_ms_mean", mean(stats.latency_ms_sum, prev.latency_ms_sum));
        kv("latency_ms_max_total", format!("{:.2}", stats.latency_ms_max));
        let state = stats.state.unwrap_or(TargetState::Uninitialised);
        kv("state", state.to_string());
        kv("confidence", format!("{:.3}", stats.last_score));
        kv("track_id", stats.track_id.to_string());
        kv("processed_total", stats.processed.to_string());
        kv("device", self.shared.device.clone());
        let received_cameras = cameras[..2].iter().all(|i| stats.received[i.index()] > prev.received[i.index()]);
        let errors_now = stats.malformed.iter().sum::<u64>() > prev.malformed.iter().sum::<u64>()
            || stats.frame_errors > prev.frame_errors
            || stats.track_errors > prev.track_errors
            || stats.publish_errors > prev.publish_errors;
        let (level, message) = if !received_cameras {
            (DiagnosticStatus::WARN, "waiting for rgb and aux images".to_owned())
        } else if errors_now {
            (DiagnosticStatus::WARN, format!("{state}; input or processing errors (see counters)"))
        } else if state == TargetState::Lost {
            (DiagnosticStatus::WARN, "target lost".to_owned())
        } else {
            (DiagnosticStatus::OK, state.to_string())
        };
        DiagnosticArray {
            header: Header { stamp, frame_id: String::new() },
            status: vec![DiagnosticStatus {
                level,
                name: DIAGNOSTIC_NAME.to_owned(),
                message,
                hardware_id: self.shared.device.clone(),
                values,
            }],
        }
    }

    /// Publishes [`NodeCore::diagnostics`] on `/diagnostics`.
    pub fn publish_diagnostics(&self, stamp: Time) {
        let msg = self.diagnostics(stamp);
        self.shared.publish(Output::Diagnostics, &msg);
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

impl SyncedPair {
    fn aux_stamp_ns(&self) -> i64 {
        self.aux.header().stamp_ns()
    }
}

/// One decoded input message.
#[derive(Debug, Clone)]
pub enum InputMessage {
    Image(Image),
    CompressedImage(CompressedImage),
    Init(Detection2D),
    Reset,
}

impl InputMessage {
    /// Decodes CDR (with encapsulation header) as the type `input` carries.
    pub fn decode(input: Input, cdr: &[u8]) -> Result<Self, MsgError> {
        Ok(match input {
            Input::Rgb | Input::Aux => InputMessage::Image(Image::decode(cdr)?),
            Input::RgbCompressed | Input::AuxCompressed => InputMessage::CompressedImage(CompressedImage::decode(cdr)?),
            Input::Init => InputMessage::Init(Detection2D::decode(cdr)?),
            Input::Reset => {
                Empty::decode(cdr)?;
                InputMessage::Reset
            }
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            InputMessage::Image(_) => Image::TYPE_NAME,
            InputMessage::CompressedImage(_) => CompressedImage::TYPE_NAME,
            InputMessage::Init(_) => Detection2D::TYPE_NAME,
            InputMessage::Reset => Empty::TYPE_NAME,
        }
    }
}

/// The inference thread's state besides the tracker.
struct Inference<'a> {
    shared: &'a Shared,
    tracker: Tracker,
    params_generation: u64,
    params: NodeParams,
    initial_box_used: bool,
    /// Stamp of the newest pair answered on `~/detections`.
    last_answered_ns: Option<i64>,
}

fn inference_loop(shared: &Shared, tracker: Tracker) {
    let (params_generation, params) = shared.params();
    let mut inf =
        Inference { shared, tracker, params_generation, params, initial_box_used: false, last_answered_ns: None };
    while let Some(work) = shared.work.take() {
        inf.refresh_params();
        if work.reset {
            inf.tracker.reset();
            let mut stats = shared.stats();
            stats.resets += 1;
            stats.state = Some(TargetState::Uninitialised);
        }
        let mut init_stamp_ns = None;
        if let Some((pair, bbox)) = work.init {
            init_stamp_ns = Some(pair.stamp_ns);
            inf.process(&pair, Some(bbox));
        }
        if let Some(pair) = work.pair {
            if init_stamp_ns.is_some_and(|s| s >= pair.stamp_ns) {
                shared.stats().pairs_skipped_busy += 1;
            } else {
                inf.process(&pair, None);
            }
        }
    }
}

impl Inference<'_> {
    fn refresh_params(&mut self) {
        let (generation, params) = self.shared.params();
        if generation != self.params_generation {
            if let Err(e) = self.tracker.set_config(params.tracker_config()) {
                self.shared.warn("params", || format!("tracker rejected new parameters: {e}"));
            }
            self.params_generation = generation;
            self.params = params;
        }
    }

    fn frame(&self, pair: &SyncedPair) -> Result<ImageU8, String> {
        let rgb = pair.rgb.decode().map_err(|e| format!("rgb image: {e}"))?;
        let rgb = sensor::prepare_rgb(rgb).map_err(|e| format!("rgb image: {e}"))?;
        let aux = pair.aux.decode().map_err(|e| format!("aux image: {e}"))?;
        sensor::prepare_frame(&rgb, aux, self.params.modality, &self.params.aux_config())
            .map_err(|e| format!("aux image: {e}"))
    }

    /// Runs one pair through the tracker (init with `init_box`, else track when a target is
    /// set) and publishes the answer for its stamp.
    fn process(&mut self, pair: &SyncedPair, mut init_box: Option<BoxXywh>) {
        self.refresh_params();
        let start = Instant::now();
        let frame = match self.frame(pair) {
            Ok(f) => f,
            Err(e) => {
                self.shared.stats().frame_errors += 1;
                self.shared.warn("frame", || format!("skipping pair stamped {} ns: {e}", pair.stamp_ns));
                return;
            }
        };
        if init_box.is_none() && !self.initial_box_used && self.tracker.state() == TargetState::Uninitialised {
            init_box = self.params.initial_box();
            self.initial_box_used = true;
        }
        let result = match init_box {
            Some(bbox) => match self.tracker.init(&frame, bbox) {
                Ok(()) => {
                    let mut stats = self.shared.stats();
                    stats.inits_applied += 1;
                    stats.track_id += 1;
                    Some(TrackResult { bbox, score: 1.0, state: TargetState::Tracking })
                }
                Err(e) => {
                    self.shared.stats().inits_rejected += 1;
                    self.shared.warn("init", || format!("init box rejected: {e}"));
                    self.current()
                }
            },
            None if self.tracker.state() == TargetState::Uninitialised => None,
            None => match self.tracker.track(&frame) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.shared.stats().track_errors += 1;
                    self.shared.warn("track", || format!("tracking failed on pair stamped {} ns: {e}", pair.stamp_ns));
                    None
                }
            },
        };
        let inference_ms = start.elapsed().as_secs_f64() * 1e3;
        // Outputs stay in stamp order: an init on a buffered frame that was already answered
        // starts the track there, and the next pair carries the first box.
        if self.last_answered_ns.is_some_and(|last| pair.stamp_ns <= last) {
            let mut stats = self.shared.stats();
            stats.state = Some(self.tracker.state());
            stats.last_score = result.map_or(0.0, |r| r.score);
            return;
        }
        self.last_answered_ns = Some(pair.stamp_ns);
        let header = pair.rgb.header().clone();
        let track_id = self.shared.stats().track_id;
        let detections = output::detections(&header, result.as_ref(), &self.params.class_id, track_id);
        self.shared.publish(Output::Detections, &detections);
        self.shared.publish(Output::Confidence, &output::confidence(result.as_ref()));
        let latency_ms = pair.completed.elapsed().as_secs_f64() * 1e3;
        {
            let mut stats = self.shared.stats();
            stats.processed += 1;
            stats.inference_ms_sum += inference_ms;
            stats.latency_ms_sum += latency_ms;
            stats.latency_ms_max = stats.latency_ms_max.max(latency_ms);
            stats.state = Some(self.tracker.state());
            stats.last_score = result.map_or(0.0, |r| r.score);
        }
        if self.shared.debug_wanted(&self.params) {
            let mut replaced = false;
            self.shared.debug.update(|slot| replaced = slot.replace(DebugJob { frame, header, result }).is_some());
            if replaced {
                self.shared.stats().debug_skipped += 1;
            }
        }
    }

    /// The tracker's standing answer when this frame brought no new one.
    fn current(&self) -> Option<TrackResult> {
        let bbox = self.tracker.bbox()?;
        Some(TrackResult { bbox, score: self.shared.stats().last_score, state: self.tracker.state() })
    }
}

fn debug_loop(shared: &Shared) {
    while let Some(job) = shared.debug.take() {
        let (_, params) = shared.params();
        let image =
            output::debug_image(&job.frame, &job.header, job.result.as_ref(), &params.class_id, params.debug_aux_blend);
        shared.publish(Output::DebugImage, &image);
        shared.stats().debug_images += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited_per_kind() {
        let mut w = Warner::default();
        let logged: Vec<bool> = (0..5).map(|_| w.warn("a", String::new)).collect();
        assert_eq!(logged, [true, false, false, false, false]);
        assert!(w.warn("b", String::new));
        assert_eq!(w.last["a"].1, 4);
        // After the interval the next one is logged and the suppressed count restarts.
        let (at, _) = w.last.get_mut("a").unwrap();
        *at = at.checked_sub(WARN_INTERVAL).unwrap();
        assert!(w.warn("a", String::new));
        assert_eq!(w.last["a"].1, 0);
    }

    #[test]
    fn slot_keeps_the_latest_value_and_reports_idle() {
        let slot = Slot::new();
        slot.update(|v| *v = Some(1));
        slot.update(|v| *v = Some(2));
        assert!(!slot.is_idle());
        assert_eq!(slot.take(), Some(2));
        assert!(!slot.is_idle(), "busy until the consumer asks again");
        slot.close();
        assert_eq!(slot.take(), None);
    }
}
