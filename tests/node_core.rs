//! The node core through its public API with an in-memory transport: CDR in, CDR out, the tiny
//! model with hashed weights on the CPU.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patrack::device::Precision;
use patrack::model::{ModelConfig, PATrack};
use patrack::ros::msgs::{
    BoundingBox2D, Detection2D, Detection2DArray, DiagnosticArray, DiagnosticStatus, Empty, Float32, Header, Image,
    Point2D, Pose2D, RosMessage, Time,
};
use patrack::ros::node::{Input, NodeCore, Sink, SinkError};
use patrack::ros::output::Output;
use patrack::ros::params::NodeParams;
use tch::Device;

const WIDTH: u32 = 160;
const HEIGHT: u32 = 120;
const IDLE: Duration = Duration::from_secs(60);
/// 30 Hz frames starting at t = 100 s.
const START_NS: i64 = 100_000_000_000;
const PERIOD_NS: i64 = 33_333_333;

#[derive(Default)]
struct MemorySink {
    published: Mutex<Vec<(Output, Vec<u8>)>>,
    debug_subscribers: AtomicUsize,
}

impl Sink for MemorySink {
    fn publish(&self, output: Output, cdr: &[u8]) -> Result<(), SinkError> {
        self.published.lock().unwrap().push((output, cdr.to_vec()));
        Ok(())
    }

    fn subscriber_count(&self, output: Output) -> usize {
        match output {
            Output::DebugImage => self.debug_subscribers.load(Ordering::SeqCst),
            _ => 0,
        }
    }
}

impl MemorySink {
    fn take<M: RosMessage>(&self, output: Output) -> Vec<M> {
        let mut all = self.published.lock().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|(o, _)| *o == output);
        *all = rest;
        mine.into_iter().map(|(_, bytes)| M::decode(&bytes).expect("the node publishes valid CDR")).collect()
    }
}

fn model() -> PATrack {
    let mut m = PATrack::new(ModelConfig::tiny(), Device::Cpu, Precision::Fp32).unwrap();
    m.fill_hashed();
    m
}

fn params() -> NodeParams {
    let mut p = NodeParams {
        device: "cpu".into(),
        precision: "fp32".into(),
        model_config: "tiny".into(),
        ..Default::default()
    };
    // Hashed weights do not track; keep the target "tracking" so every frame is answered with a box.
    p.tracker.lost_frames = 0;
    p
}

fn start(p: NodeParams) -> (NodeCore, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let core = NodeCore::new(p, model(), sink.clone()).unwrap();
    (core, sink)
}

fn header(stamp_ns: i64) -> Header {
    Header { stamp: Time::from_ns(stamp_ns).unwrap(), frame_id: "camera".into() }
}

/// A textured rgb8 image (a bright square moving with `n`) and its mono16 thermal partner.
fn rgb(stamp_ns: i64, n: i64) -> Vec<u8> {
    let mut data = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    for y in 0..HEIGHT as i64 {
        for x in 0..WIDTH as i64 {
            let i = ((y * WIDTH as i64 + x) * 3) as usize;
            let inside = (40 + n..70 + n).contains(&x) && (40..70).contains(&y);
            let v = if inside { 230 } else { ((x * 7 + y * 3) % 64) as u8 as i64 };
            data[i..i + 3].copy_from_slice(&[v as u8, (v / 2) as u8, 30]);
        }
    }
    Image {
        header: header(stamp_ns),
        height: HEIGHT,
        width: WIDTH,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: WIDTH * 3,
        data,
    }
    .encode()
    .unwrap()
}

fn thermal(stamp_ns: i64) -> Vec<u8> {
    let (w, h) = (WIDTH / 2, HEIGHT / 2);
    let data = (0..w * h).flat_map(|i| (3000u16 + (i % 97) as u16).to_le_bytes()).collect();
    Image {
        header: header(stamp_ns),
        height: h,
        width: w,
        encoding: "mono16".into(),
        is_bigendian: 0,
        step: w * 2,
        data,
    }
    .encode()
    .unwrap()
}

fn stamp(n: i64) -> i64 {
    START_NS + n * PERIOD_NS
}

/// Feeds pair `n` with equal stamps (paired at once) and waits for the node to answer it.
fn feed_pair(core: &NodeCore, n: i64) {
    core.handle(Input::Rgb, &rgb(stamp(n), n));
    core.handle(Input::Aux, &thermal(stamp(n)));
    assert!(core.wait_idle(IDLE), "node did not finish pair {n}");
}

fn init_msg(stamp_ns: i64, x: f64, y: f64, w: f64, h: f64) -> Vec<u8> {
    Detection2D {
        header: header(stamp_ns),
        bbox: BoundingBox2D {
            center: Pose2D { position: Point2D { x: x + w / 2.0, y: y + h / 2.0 }, theta: 0.0 },
            size_x: w,
            size_y: h,
        },
        ..Default::default()
    }
    .encode()
    .unwrap()
}

fn stamps(dets: &[Detection2DArray]) -> Vec<i64> {
    dets.iter().map(|d| d.header.stamp_ns()).collect()
}

#[test]
fn uninitialised_node_answers_every_pair_with_an_empty_array() {
    let (core, sink) = start(params());
    for n in 0..4 {
        feed_pair(&core, n);
    }
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!(stamps(&dets), (0..4).map(stamp).collect::<Vec<_>>());
    assert!(dets.iter().all(|d| d.detections.is_empty() && d.header.frame_id == "camera"));
    let conf: Vec<Float32> = sink.take(Output::Confidence);
    assert_eq!(conf.len(), 4);
    assert!(sink.take::<Image>(Output::DebugImage).is_empty(), "no debug image without subscriber or parameter");
    assert_eq!(core.stats().processed, 4);
}

#[test]
fn init_message_on_a_buffered_frame_starts_tracking_from_that_frame() {
    let (core, sink) = start(params());
    for n in 0..3 {
        feed_pair(&core, n);
    }
    sink.take::<Detection2DArray>(Output::Detections);
    // The operator clicked on frame 1, which is still buffered: the track starts there, and
    // since frame 1 was answered already, the next pair carries the first box.
    core.handle(Input::Init, &init_msg(stamp(1), 40.0, 40.0, 30.0, 30.0));
    assert!(core.wait_idle(IDLE));
    assert!(sink.take::<Detection2DArray>(Output::Detections).is_empty(), "no answer out of stamp order");
    assert_eq!(core.stats().inits_applied, 1);
    assert_eq!(core.stats().state, Some(patrack::tracker::TargetState::Tracking));
    for n in 3..6 {
        feed_pair(&core, n);
    }
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!(stamps(&dets), (3..6).map(stamp).collect::<Vec<_>>());
    assert_eq!(dets[0].detections[0].id, "1");
    for d in &dets {
        assert_eq!(d.detections.len(), 1, "tracking: one detection per frame");
        let det = &d.detections[0];
        assert_eq!(det.header, d.header);
        let score = det.results[0].hypothesis.score;
        assert!((0.0..=1.0).contains(&score) && det.bbox.size_x > 0.0 && det.bbox.size_y > 0.0);
        let cx = det.bbox.center.position.x;
        assert!((0.0..=f64::from(WIDTH)).contains(&cx), "box centre {cx} inside the image");
    }
    let conf: Vec<Float32> = sink.take(Output::Confidence);
    assert_eq!(conf.last().unwrap().data as f64, dets.last().unwrap().detections[0].results[0].hypothesis.score);

    // Reset: empty again until the next init.
    core.handle(Input::Reset, &Empty::default().encode().unwrap());
    feed_pair(&core, 6);
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!(stamps(&dets), vec![stamp(6)]);
    assert!(dets[0].detections.is_empty());
    assert_eq!(core.stats().resets, 1);
}

#[test]
fn init_for_a_frame_not_yet_paired_waits_for_it_and_unstamped_init_takes_the_next_pair() {
    let (core, sink) = start(params());
    feed_pair(&core, 0);
    core.handle(Input::Init, &init_msg(stamp(2), 40.0, 40.0, 30.0, 30.0));
    feed_pair(&core, 1);
    feed_pair(&core, 2);
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!(stamps(&dets), vec![stamp(0), stamp(1), stamp(2)]);
    assert_eq!(dets.iter().map(|d| d.detections.len()).collect::<Vec<_>>(), vec![0, 0, 1]);
    // The init frame is answered with the init box itself, score 1.
    let d = &dets[2].detections[0];
    let got = (d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y);
    println!("init box (cx, cy, w, h) = {got:?}, expected exactly (55, 55, 30, 30)");
    assert_eq!(got, (55.0, 55.0, 30.0, 30.0));
    assert_eq!(
        (d.results[0].hypothesis.score, d.results[0].hypothesis.class_id.as_str(), d.id.as_str()),
        (1.0, "target", "1")
    );

    // An init with a zero stamp (e.g. `ros2 topic pub` without a header) applies to the next pair.
    core.handle(Input::Init, &init_msg(0, 10.0, 10.0, 20.0, 20.0));
    feed_pair(&core, 3);
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!(dets[0].detections[0].bbox.size_x, 20.0);
    assert_eq!(dets[0].detections[0].id, "2", "a new init starts a new track id");
}

#[test]
fn initial_bbox_parameter_initialises_on_the_first_pair() {
    let mut p = params();
    p.initial_bbox = [40.0, 40.0, 30.0, 30.0];
    let (core, sink) = start(p);
    for n in 0..3 {
        feed_pair(&core, n);
    }
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!(dets.iter().map(|d| d.detections.len()).collect::<Vec<_>>(), vec![1, 1, 1]);
    assert_eq!(dets[0].detections[0].bbox.center.position.x, 55.0);
    assert_eq!(core.stats().inits_applied, 1);
}

#[test]
fn jittered_stamps_pair_by_approximate_time_and_the_answer_carries_the_rgb_stamp() {
    let (core, sink) = start(params());
    // aux lags rgb by 3 ms: a pair is complete once the next message proves it best.
    for n in 0..5 {
        core.handle(Input::Rgb, &rgb(stamp(n), n));
        core.handle(Input::Aux, &thermal(stamp(n) + 3_000_000));
        assert!(core.wait_idle(IDLE));
    }
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    // The last pair waits for a later message, as message_filters does.
    assert_eq!(stamps(&dets), (0..4).map(stamp).collect::<Vec<_>>());
    // An aux frame 80 ms away from any RGB frame is outside max_interval_s (50 ms): dropped.
    core.handle(Input::Aux, &thermal(stamp(7) + 80_000_000));
    core.handle(Input::Rgb, &rgb(stamp(20), 0));
    core.handle(Input::Aux, &thermal(stamp(20)));
    assert!(core.wait_idle(IDLE));
    let stats = core.stats();
    assert!(stats.sync.dropped_a.total() + stats.sync.dropped_b.total() >= 1, "{:?}", stats.sync);
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert!(stamps(&dets).contains(&stamp(20)), "{:?}", stamps(&dets));
}

#[test]
fn bad_input_is_counted_and_never_stops_the_node() {
    let (core, sink) = start(params());
    let good = rgb(stamp(0), 0);
    // Malformed CDR of every kind.
    core.handle(Input::Rgb, &[]);
    core.handle(Input::Rgb, &[0, 1, 0, 0, 255, 255, 255, 255]);
    core.handle(Input::Rgb, &good[..good.len() / 2]);
    core.handle(Input::Aux, &[7, 7, 7, 7, 7, 7]);
    core.handle(Input::Init, &[0, 1, 0]);
    core.handle(Input::Reset, &[]);
    // Well-formed CDR with an inconsistent image: data shorter than step * height.
    let mut bad = Image::decode(&rgb(stamp(1), 1)).unwrap();
    bad.data.truncate(100);
    core.handle(Input::Rgb, &bad.encode().unwrap());
    core.handle(Input::Aux, &thermal(stamp(1)));
    assert!(core.wait_idle(IDLE));
    // Init boxes of zero size or outside the image.
    core.handle(Input::Init, &init_msg(stamp(0), 10.0, 10.0, 0.0, 5.0));
    core.handle(Input::Init, &init_msg(stamp(0), f64::NAN, 10.0, 5.0, 5.0));
    core.handle(Input::Init, &init_msg(stamp(2), 5000.0, 5000.0, 10.0, 10.0));
    for n in 2..4 {
        feed_pair(&core, n);
    }
    let stats = core.stats();
    println!("{stats:?}");
    assert_eq!(stats.malformed[Input::Rgb.index()], 3, "rgb");
    assert_eq!(stats.malformed[Input::Aux.index()], 1, "aux");
    assert_eq!(stats.malformed[Input::Init.index()], 1, "init");
    assert_eq!(stats.malformed[Input::Reset.index()], 1, "reset");
    assert_eq!(stats.frame_errors, 1);
    assert_eq!(stats.inits_rejected, 3);
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!(stamps(&dets), vec![stamp(2), stamp(3)], "the node keeps answering");
    assert!(dets.iter().all(|d| d.detections.is_empty()));

    let diag = core.diagnostics(Time { sec: 1, nanosec: 0 }, &[]);
    let status = &diag.status[0];
    assert_eq!(status.level, DiagnosticStatus::WARN);
    assert_eq!(value(status, "malformed_messages_total"), "6");
    assert_eq!(value(status, "frame_errors_total"), "1");
    assert_eq!(value(status, "inits_rejected_total"), "3");
}

fn value<'a>(status: &'a DiagnosticStatus, key: &str) -> &'a str {
    status
        .values
        .iter()
        .find(|kv| kv.key == key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", status.values))
        .value
        .as_str()
}

#[test]
fn diagnostics_report_rates_state_latency_and_device() {
    let mut p = params();
    p.initial_bbox = [40.0, 40.0, 30.0, 30.0];
    let (core, sink) = start(p);
    let _ = core.diagnostics(Time::default(), &[]); // opens the rate window
    let window_start = Instant::now();
    for n in 0..5 {
        feed_pair(&core, n);
    }
    std::thread::sleep(Duration::from_millis(50));
    let elapsed_s = window_start.elapsed().as_secs_f64();
    let diag = core.diagnostics(Time { sec: 42, nanosec: 7 }, &[("lifecycle", "active".into())]);
    // What is published is the encoded message.
    let diag = DiagnosticArray::decode(&diag.encode().unwrap()).unwrap();
    assert_eq!(diag.header.stamp, Time { sec: 42, nanosec: 7 });
    let status = &diag.status[0];
    assert_eq!(value(status, "lifecycle"), "active");
    assert!(sink.take::<DiagnosticArray>(Output::Diagnostics).is_empty());
    println!("{status:?}");
    assert_eq!(status.name, "patrack: tracker");
    assert_eq!(status.hardware_id, "cpu");
    assert_eq!(status.level, DiagnosticStatus::OK);
    assert_eq!(value(status, "state"), "tracking");
    assert_eq!(value(status, "device"), "cpu");
    assert_eq!(value(status, "processed_total"), "5");
    assert_eq!(value(status, "track_id"), "1");
    let rgb_rate: f64 = value(status, "rgb_rate_hz").parse().unwrap();
    let expected = 5.0 / elapsed_s;
    println!("rgb rate {rgb_rate:.2} Hz, expected {expected:.2} Hz (tolerance 20 %)");
    assert!((rgb_rate - expected).abs() <= 0.2 * expected);
    let inference_ms: f64 = value(status, "inference_ms_mean").parse().unwrap();
    let latency_ms: f64 = value(status, "latency_ms_mean").parse().unwrap();
    assert!(inference_ms > 0.0 && latency_ms >= inference_ms, "{inference_ms} {latency_ms}");
    assert_eq!(value(status, "pairs_skipped_busy_total"), "0");
}

#[test]
fn newest_pair_wins_when_inference_is_busy() {
    let (core, sink) = start(params());
    core.handle(Input::Init, &init_msg(0, 40.0, 40.0, 30.0, 30.0));
    let pairs = 30;
    for n in 0..pairs {
        core.handle(Input::Rgb, &rgb(stamp(n), n));
        core.handle(Input::Aux, &thermal(stamp(n)));
    }
    assert!(core.wait_idle(IDLE));
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    let s = stamps(&dets);
    let stats = core.stats();
    println!("answered {} of {pairs} pairs, skipped {}", s.len(), stats.pairs_skipped_busy);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "answers in stamp order");
    assert_eq!(*s.last().unwrap(), stamp(pairs - 1), "the newest pair is always processed");
    assert_eq!(s.len() as u64 + stats.pairs_skipped_busy, pairs as u64);
    assert_eq!(stats.sync.pairs, pairs as u64);
}

#[test]
fn debug_image_follows_subscribers_and_the_parameter() {
    let (core, sink) = start(params());
    feed_pair(&core, 0);
    assert!(sink.take::<Image>(Output::DebugImage).is_empty());
    sink.debug_subscribers.store(1, Ordering::SeqCst);
    core.handle(Input::Init, &init_msg(stamp(1), 40.0, 40.0, 30.0, 30.0));
    feed_pair(&core, 1);
    let images: Vec<Image> = sink.take(Output::DebugImage);
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!((img.width, img.height, img.encoding.as_str(), img.step), (WIDTH, HEIGHT, "rgb8", WIDTH * 3));
    assert_eq!(img.header.stamp_ns(), stamp(1));
    // The init box outline is drawn in the tracking colour at its top-left corner.
    let px = |x: u32, y: u32| &img.data[((y * WIDTH + x) * 3) as usize..][..3];
    assert_eq!(px(41, 41), [40, 220, 60]);
    // Away from box and label the pixels are the RGB input.
    let input = Image::decode(&rgb(stamp(1), 1)).unwrap();
    let i = ((100 * WIDTH + 150) * 3) as usize;
    assert_eq!(px(150, 100), &input.data[i..i + 3]);

    sink.debug_subscribers.store(0, Ordering::SeqCst);
    core.update_params(core.params().with_value("publish_debug_image", serde_yaml::Value::Bool(true)).unwrap());
    feed_pair(&core, 2);
    assert_eq!(sink.take::<Image>(Output::DebugImage).len(), 1);
}

#[test]
fn decoded_messages_take_the_same_path_and_wrong_kinds_are_dropped() {
    use patrack::ros::node::InputMessage;
    let (core, sink) = start(params());
    let image = |bytes: Vec<u8>| match InputMessage::decode(Input::Rgb, &bytes).unwrap() {
        InputMessage::Image(m) => m,
        other => panic!("{other:?}"),
    };
    core.handle_message(Input::Rgb, InputMessage::Image(image(rgb(stamp(0), 0))));
    core.handle_message(Input::Aux, InputMessage::Image(image(thermal(stamp(0)))));
    core.handle_message(Input::Aux, InputMessage::Reset);
    assert!(core.wait_idle(IDLE));
    assert_eq!(stamps(&sink.take(Output::Detections)), vec![stamp(0)]);
    assert_eq!(core.stats().malformed[Input::Aux.index()], 1);
    assert_eq!(core.stats().received[Input::Aux.index()], 2);
}

/// 640x480 rgb8 + mono16 pairs through the whole node path without the network (the tracker is
/// uninitialised): every pair is answered. The time this takes is measured by
/// `patrack bench --node`, not here.
#[test]
fn uninitialised_node_answers_every_vga_pair() {
    const W: u32 = 640;
    const H: u32 = 480;
    let (core, sink) = start(params());
    let rgb_msg = |n: i64| {
        let data = (0..W * H * 3).map(|i| (i % 251) as u8).collect();
        Image {
            header: header(stamp(n)),
            height: H,
            width: W,
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: W * 3,
            data,
        }
        .encode()
        .unwrap()
    };
    let aux_msg = |n: i64| {
        let data = (0..W * H).flat_map(|i| (3000u16 + (i % 997) as u16).to_le_bytes()).collect();
        Image {
            header: header(stamp(n)),
            height: H,
            width: W,
            encoding: "mono16".into(),
            is_bigendian: 0,
            step: W * 2,
            data,
        }
        .encode()
        .unwrap()
    };
    let pairs = 30;
    let messages: Vec<(Vec<u8>, Vec<u8>)> = (0..pairs).map(|n| (rgb_msg(n), aux_msg(n))).collect();
    for (rgb, aux) in &messages {
        core.handle(Input::Rgb, rgb);
        core.handle(Input::Aux, aux);
        assert!(core.wait_idle(IDLE));
    }
    assert_eq!(sink.take::<Detection2DArray>(Output::Detections).len(), pairs as usize);
    assert_eq!(core.stats().frame_errors, 0);
}

/// A tiny model whose center head has a weight of the wrong shape: init works (template tokens
/// only), every track step fails inside libtorch, which panics in tch's infallible ops.
fn model_failing_at_run_time() -> PATrack {
    let m = model();
    let mut vars = m.vs.variables();
    let (name, var) = vars.iter_mut().find(|(k, _)| k.ends_with("conv5_ctr.weight")).expect("center head weight");
    println!("breaking {name}");
    tch::no_grad(|| var.set_data(&tch::Tensor::zeros([1], (tch::Kind::Float, Device::Cpu))));
    m
}

#[test]
fn a_failing_network_is_counted_reported_as_error_and_the_node_keeps_serving() {
    let sink = Arc::new(MemorySink::default());
    let mut p = params();
    p.initial_bbox = [40.0, 40.0, 30.0, 30.0];
    let mut core = NodeCore::new(p, model_failing_at_run_time(), sink.clone()).unwrap();
    let _ = core.diagnostics(Time::default(), &[]);
    for n in 0..4 {
        feed_pair(&core, n);
    }
    let stats = core.stats();
    println!("{} failures, last: {}", stats.inference_failures, stats.last_failure);
    // Pair 0 initialises (no head), pairs 1..3 fail in the head.
    assert_eq!((stats.inits_applied, stats.inference_failures, stats.consecutive_failures), (1, 3, 3));
    assert!(stats.inference_alive, "the thread survives the failures");
    assert!(!stats.last_failure.is_empty());
    let diag = core.diagnostics(Time::default(), &[]);
    let status = &diag.status[0];
    assert_eq!(status.level, DiagnosticStatus::ERROR, "{}", status.message);
    assert!(status.message.starts_with("inference failing (3 pairs in a row)"), "{}", status.message);
    assert_eq!(value(status, "inference_failures_total"), "3");
    // Only the init frame was answered; the node still takes new work: a new init succeeds and
    // clears the failing state.
    assert_eq!(sink.take::<Detection2DArray>(Output::Detections).len(), 1);
    core.handle(Input::Init, &init_msg(0, 40.0, 40.0, 30.0, 30.0));
    feed_pair(&core, 4);
    assert_eq!(core.stats().consecutive_failures, 0);
    assert_ne!(core.diagnostics(Time::default(), &[]).status[0].level, DiagnosticStatus::ERROR);
    // A stopped inference thread never passes for a healthy node.
    core.shutdown();
    let status = core.diagnostics(Time::default(), &[]).status.remove(0);
    assert_eq!(status.level, DiagnosticStatus::ERROR);
    assert!(status.message.contains("inference thread has stopped"), "{}", status.message);
}

#[test]
fn no_mean_is_reported_before_the_first_frame() {
    let (core, _sink) = start(params());
    let diag = core.diagnostics(Time::default(), &[]);
    let keys: Vec<&str> = diag.status[0].values.iter().map(|kv| kv.key.as_str()).collect();
    assert!(!keys.contains(&"inference_ms_mean") && !keys.contains(&"latency_ms_mean"), "{keys:?}");
    assert!(diag.status[0].values.iter().all(|kv| kv.value != "nan"));
}

#[test]
fn rate_cap_follows_stamp_time_and_runtime_changes() {
    let mut p = params();
    // 10 Hz cap on 30 Hz pairs: every third pair is tracked.
    p.max_rate_hz = 10.0;
    let (core, sink) = start(p);
    for n in 0..9 {
        feed_pair(&core, n);
    }
    let answered = stamps(&sink.take(Output::Detections));
    assert_eq!(answered, vec![stamp(0), stamp(3), stamp(6)]);
    assert_eq!(core.stats().pairs_skipped_rate, 6);
    core.update_params(core.params().with_value("max_rate_hz", 0.0.into()).unwrap());
    for n in 9..12 {
        feed_pair(&core, n);
    }
    assert_eq!(stamps(&sink.take(Output::Detections)), (9..12).map(stamp).collect::<Vec<_>>());
}

#[test]
fn disabled_node_drops_camera_messages_and_resumes_when_enabled() {
    let (core, sink) = start(params());
    core.update_params(core.params().with_value("enabled", false.into()).unwrap());
    for n in 0..3 {
        feed_pair(&core, n);
    }
    assert!(sink.take::<Detection2DArray>(Output::Detections).is_empty());
    assert_eq!(core.stats().dropped_disabled, 6);
    let diag = core.diagnostics(Time::default(), &[]);
    assert!(diag.status[0].message.starts_with("disabled"), "{}", diag.status[0].message);
    core.update_params(core.params().with_value("enabled", true.into()).unwrap());
    feed_pair(&core, 3);
    assert_eq!(stamps(&sink.take(Output::Detections)), vec![stamp(3)]);
}

#[test]
fn region_of_interest_and_a_runtime_initial_bbox_start_the_target_on_the_next_pair() {
    use patrack::ros::msgs::{Classification, RegionOfInterest};
    let (core, sink) = start(params());
    feed_pair(&core, 0);
    let roi = RegionOfInterest { x_offset: 40, y_offset: 40, width: 30, height: 20, do_rectify: false };
    core.handle(Input::InitRoi, &roi.encode().unwrap());
    feed_pair(&core, 1);
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!(dets.iter().map(|d| d.detections.len()).collect::<Vec<_>>(), vec![0, 1]);
    let b = &dets[1].detections[0].bbox;
    assert_eq!((b.center.position.x, b.center.position.y, b.size_x, b.size_y), (55.0, 50.0, 30.0, 20.0));
    // ~/confidence_stamped carries the score with the image header every frame.
    let scores: Vec<Classification> = sink.take(Output::ConfidenceStamped);
    assert_eq!(scores.len(), 2);
    assert_eq!(scores[1].header.stamp_ns(), stamp(1));
    assert_eq!((scores[1].results[0].class_id.as_str(), scores[1].results[0].score), ("target", 1.0));
    assert_eq!(scores[0].results[0].score, 0.0);
    // An empty ROI is refused.
    core.handle(Input::InitRoi, &RegionOfInterest::default().encode().unwrap());
    assert_eq!(core.stats().inits_rejected, 1);
    // Setting initial_bbox while running re-initialises on the next pair with a new track id.
    core.update_params(core.params().with_value("initial_bbox", vec![10.0, 10.0, 20.0, 20.0].into()).unwrap());
    feed_pair(&core, 2);
    let dets: Vec<Detection2DArray> = sink.take(Output::Detections);
    assert_eq!((dets[0].detections[0].bbox.size_x, dets[0].detections[0].id.as_str()), (20.0, "2"));
}

/// A 16UC1 depth image at half the RGB size: 2 m everywhere.
fn depth_2m(stamp_ns: i64) -> Vec<u8> {
    let (w, h) = (WIDTH / 2, HEIGHT / 2);
    let data = (0..w * h).flat_map(|_| 2000u16.to_le_bytes()).collect();
    Image {
        header: header(stamp_ns),
        height: h,
        width: w,
        encoding: "16UC1".into(),
        is_bigendian: 0,
        step: w * 2,
        data,
    }
    .encode()
    .unwrap()
}

#[test]
fn rgbd_diagnostics_say_when_there_is_no_camera_info_and_count_refused_ones() {
    use patrack::ros::msgs::{CameraInfo, MarkerArray, PointStamped};
    let mut p = params();
    p.modality = patrack::sensor::Modality::Depth;
    p.initial_bbox = [40.0, 40.0, 30.0, 30.0];
    let (core, sink) = start(p);
    let pair = |n: i64| {
        core.handle(Input::Rgb, &rgb(stamp(n), n));
        core.handle(Input::Aux, &depth_2m(stamp(n)));
        assert!(core.wait_idle(IDLE), "node did not finish pair {n}");
    };
    let status = |core: &NodeCore| core.diagnostics(Time::default(), &[]).status.remove(0);
    pair(0);
    let s = status(&core);
    assert_eq!(value(&s, "state"), "tracking");
    assert_eq!(value(&s, "camera_info"), "none received: no 3D output");
    assert_eq!(value(&s, "targets_3d_total"), "0");
    assert!(sink.take::<MarkerArray>(Output::Markers).is_empty());

    // An uncalibrated camera (K = 0) is refused and counted; still no 3D output.
    let info = |k: [f64; 9]| {
        CameraInfo { header: header(stamp(1)), width: WIDTH, height: HEIGHT, k, ..Default::default() }.encode().unwrap()
    };
    core.handle(Input::RgbCameraInfo, &info([0.0; 9]));
    pair(1);
    let s = status(&core);
    assert_eq!(value(&s, "camera_info_invalid_total"), "1");
    assert_eq!(value(&s, "camera_info"), "none received: no 3D output");
    assert!(sink.take::<PointStamped>(Output::TargetPoint).is_empty());

    // A valid one: the next pair is placed at 2 m.
    core.handle(Input::RgbCameraInfo, &info([100.0, 0.0, 79.5, 0.0, 100.0, 59.5, 0.0, 0.0, 1.0]));
    pair(2);
    let s = status(&core);
    assert_eq!(value(&s, "camera_info"), "160x120, fx 100.0 fy 100.0 cx 79.5 cy 59.5 px");
    assert_eq!(value(&s, "targets_3d_total"), "1");
    let points = sink.take::<PointStamped>(Output::TargetPoint);
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].header.stamp_ns(), points[0].point.z), (stamp(2), 2.0));
    assert_eq!(sink.take::<MarkerArray>(Output::Markers).len(), 1);
}
