//! What the node publishes, built in one place for the node and for offline replay: the topic
//! names and QoS, `~/detections`, `~/confidence`, `~/confidence_stamped`, `~/debug_image` and,
//! in RGB-D mode, `~/target_point`, `~/detections_3d` and `~/markers`. The same tracking result
//! gives byte-identical messages on the robot and in a replayed bag.

use crate::overlay;
use crate::ros::msgs::{
    BoundingBox2D, BoundingBox3D, Classification, ColorRGBA, Detection2D, Detection2DArray, Detection3D,
    Detection3DArray, DiagnosticArray, Float32, Header, Image, Marker, MarkerArray, ObjectHypothesis,
    ObjectHypothesisWithPose, Point, PointStamped, Pose, PoseWithCovariance, RosMessage, Vector3,
};
use crate::ros::params::{NodeParams, Reliability};
use crate::ros::srv::{ParameterEvent, TransitionEvent};
use crate::ros::target3d::{self, CameraModel};
use crate::ros::targets::Answer;
use crate::sensor::depth::Target3d;
use crate::sensor::{ImageU8, Modality};
use crate::tracker::TargetState;

/// A topic the node publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    Detections,
    Confidence,
    ConfidenceStamped,
    DebugImage,
    Diagnostics,
    ParameterEvents,
    TransitionEvent,
    TargetPoint,
    Detections3d,
    Markers,
}

/// QoS of one publisher (history keep-last, durability volatile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputQos {
    pub reliability: Reliability,
    pub depth: usize,
}

impl Output {
    pub const ALL: [Output; 10] = [
        Output::Detections,
        Output::Confidence,
        Output::ConfidenceStamped,
        Output::DebugImage,
        Output::Diagnostics,
        Output::ParameterEvents,
        Output::TransitionEvent,
        Output::TargetPoint,
        Output::Detections3d,
        Output::Markers,
    ];

    /// The outputs of the RGB-D 3D step.
    pub fn is_3d(self) -> bool {
        matches!(self, Output::TargetPoint | Output::Detections3d | Output::Markers)
    }

    /// What a node with these parameters advertises: the 3D outputs only in depth modality
    /// (`modality` is read once at start-up).
    pub fn advertised(params: &NodeParams) -> Vec<Output> {
        Self::ALL.into_iter().filter(|o| !o.is_3d() || params.modality == Modality::Depth).collect()
    }

    /// The name relative to the node (private `~/`), so namespaces and remappings apply.
    pub fn topic(self) -> &'static str {
        match self {
            Output::Detections => "~/detections",
            Output::Confidence => "~/confidence",
            Output::ConfidenceStamped => "~/confidence_stamped",
            Output::DebugImage => "~/debug_image",
            Output::Diagnostics => "/diagnostics",
            Output::ParameterEvents => "/parameter_events",
            Output::TransitionEvent => "~/transition_event",
            Output::TargetPoint => "~/target_point",
            Output::Detections3d => "~/detections_3d",
            Output::Markers => "~/markers",
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            Output::Detections => Detection2DArray::TYPE_NAME,
            Output::Confidence => Float32::TYPE_NAME,
            Output::ConfidenceStamped => Classification::TYPE_NAME,
            Output::DebugImage => Image::TYPE_NAME,
            Output::Diagnostics => DiagnosticArray::TYPE_NAME,
            Output::ParameterEvents => ParameterEvent::TYPE_NAME,
            Output::TransitionEvent => TransitionEvent::TYPE_NAME,
            Output::TargetPoint => PointStamped::TYPE_NAME,
            Output::Detections3d => Detection3DArray::TYPE_NAME,
            Output::Markers => MarkerArray::TYPE_NAME,
        }
    }

    /// Reliable keep-last 10 (what RViz and `ros2 topic echo` expect; best-effort readers match
    /// too), except `debug_image.reliability` for the debug image and rclcpp's parameter-events
    /// profile (keep last 1000) for `/parameter_events`.
    pub fn qos(self, params: &NodeParams) -> OutputQos {
        match self {
            Output::DebugImage => OutputQos { reliability: params.debug_image.reliability, depth: 10 },
            Output::ParameterEvents => OutputQos { reliability: Reliability::Reliable, depth: 1000 },
            _ => OutputQos { reliability: Reliability::Reliable, depth: 10 },
        }
    }

    /// The fully qualified name for a node `node_name` in `namespace` (`/` or `/a/b`).
    pub fn resolved(self, namespace: &str, node_name: &str) -> String {
        expand_topic(self.topic(), namespace, node_name)
    }
}

/// Expands a node-relative topic name as rcl does: `~/x` is `<ns>/<node>/x`, `x` is `<ns>/x`,
/// `/x` stays. `namespace` is `/` or `/a/b`.
pub fn expand_topic(topic: &str, namespace: &str, node_name: &str) -> String {
    let ns = namespace.trim_end_matches('/');
    if let Some(rest) = topic.strip_prefix("~/") {
        format!("{ns}/{node_name}/{rest}")
    } else if topic.starts_with('/') {
        topic.to_owned()
    } else {
        format!("{ns}/{topic}")
    }
}

/// The `~/detections` message: one detection per target that is tracking (with the target's id),
/// none for a target lost or uninitialised.
pub fn detections(header: &Header, answers: &[Answer], class_id: &str) -> Detection2DArray {
    let detections = answers
        .iter()
        .filter_map(|a| {
            let r = a.result.filter(|r| r.state == TargetState::Tracking)?;
            Some(Detection2D {
                header: header.clone(),
                results: vec![ObjectHypothesisWithPose {
                    hypothesis: ObjectHypothesis { class_id: class_id.to_owned(), score: f64::from(r.score) },
                    ..Default::default()
                }],
                bbox: BoundingBox2D::from_xywh(r.bbox),
                id: a.id.clone(),
            })
        })
        .collect();
    Detection2DArray { header: header.clone(), detections }
}

/// The `~/confidence` message: the frame's score, 0 while uninitialised; with several targets the
/// lowest of their scores (the target nearest to being lost), 0 without targets.
pub fn confidence(answers: &[Answer]) -> Float32 {
    let lowest = answers.iter().map(Answer::score).reduce(f32::min);
    Float32 { data: lowest.unwrap_or(0.0) }
}

/// The `~/confidence_stamped` message: each target's score with the image's header, every frame
/// (also while lost, when `~/detections` is empty), as `vision_msgs/Classification`; one
/// hypothesis per target, in the order of the targets (that of `~/detections`).
pub fn confidence_stamped(header: &Header, answers: &[Answer], class_id: &str) -> Classification {
    Classification {
        header: header.clone(),
        results: answers
            .iter()
            .map(|a| ObjectHypothesis { class_id: class_id.to_owned(), score: f64::from(a.score()) })
            .collect(),
    }
}

/// The `~/debug_image` message: the RGB half of `frame`, optionally blended with its aux half
/// (`aux_blend` in [0, 1]), with the boxes drawn in their state's colour; rgb8 with the image's
/// header. One target: the label, state and score at the top left. Several: each box labelled
/// with its id and score, and the number of targets at the top left.
pub fn debug_image(frame: &ImageU8, header: &Header, answers: &[Answer], class_id: &str, aux_blend: f64) -> Image {
    let mut rgb = overlay::rgb_of(frame);
    if aux_blend > 0.0 {
        if let Some(aux) = overlay::aux_of(frame) {
            rgb = overlay::blend(&rgb, &aux, aux_blend as f32);
        }
    }
    if let [one] = answers {
        let colour = overlay::state_colour(one.state());
        if let Some(r) = one.result {
            overlay::draw_box(&mut rgb, r.bbox, colour, 2);
        }
        overlay::draw_text(&mut rgb, 4, 4, &format!("{class_id} {} {:.2}", one.state(), one.score()), colour, 1);
    } else {
        for a in answers {
            let Some(r) = a.result else { continue };
            let colour = overlay::state_colour(r.state);
            overlay::draw_box(&mut rgb, r.bbox, colour, 2);
            // The label sits above the box, or inside it at the image's top edge.
            let y = if r.bbox.y >= 12.0 { r.bbox.y as i64 - 10 } else { r.bbox.y.max(0.0) as i64 + 3 };
            overlay::draw_text(&mut rgb, r.bbox.x.max(0.0) as i64, y, &format!("{} {:.2}", a.id, r.score), colour, 1);
        }
        let tracking = answers.iter().filter(|a| a.state() == TargetState::Tracking).count();
        let text = format!("{class_id} {} targets, {tracking} tracking", answers.len());
        overlay::draw_text(&mut rgb, 4, 4, &text, overlay::state_colour(TargetState::Tracking), 1);
    }
    Image::packed(header.clone(), rgb.width, rgb.height, "rgb8", 3, rgb.data)
}

/// Namespace of the node's markers in `~/markers`.
pub const MARKER_NAMESPACE: &str = "patrack";
/// Marker ids, the same in every message: the target's box and its label.
pub const MARKER_ID_BOX: i32 = 0;
pub const MARKER_ID_LABEL: i32 = 1;

fn point([x, y, z]: [f64; 3]) -> Point {
    Point { x, y, z }
}

fn pose_at(position_m: [f64; 3]) -> Pose {
    Pose { position: point(position_m), ..Default::default() }
}

/// The `~/target_point` message: the point of the target's surface seen at its box centre, in
/// the camera's optical frame. Published only for a frame with a 3D target.
pub fn target_point(header: &Header, target: &Target3d) -> PointStamped {
    PointStamped { header: header.clone(), point: point(target.position_m) }
}

/// A target's answer with its 3D placement, when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer3d {
    pub answer: Answer,
    pub target: Option<Target3d>,
}

/// The `~/detections_3d` message: one detection per target placed in 3D (tracking, with a valid
/// depth), none for the others. `results[0]` carries class_id and confidence as in 2D, its pose
/// the surface point; `bbox` is the camera-aligned box of [`Target3d`] (identity orientation in
/// the optical frame); `id` the target's id.
pub fn detections_3d(header: &Header, targets: &[Answer3d], class_id: &str) -> Detection3DArray {
    let detections = targets
        .iter()
        .filter_map(|a| {
            let t = a.target.as_ref()?;
            Some(Detection3D {
                header: header.clone(),
                results: vec![ObjectHypothesisWithPose {
                    hypothesis: ObjectHypothesis { class_id: class_id.to_owned(), score: f64::from(a.answer.score()) },
                    pose: PoseWithCovariance { pose: pose_at(t.position_m), ..Default::default() },
                }],
                bbox: BoundingBox3D {
                    center: pose_at(t.box_center_m),
                    size: Vector3 { x: t.size_m[0], y: t.size_m[1], z: t.size_m[2] },
                },
                id: a.answer.id.clone(),
            })
        })
        .collect();
    Detection3DArray { header: header.clone(), detections }
}

/// Marker colours per target (the first is the single target's green).
const MARKER_COLOURS: [ColorRGBA; 4] = [
    ColorRGBA { r: 0.16, g: 0.86, b: 0.24, a: 0.5 },
    ColorRGBA { r: 0.20, g: 0.55, b: 1.0, a: 0.5 },
    ColorRGBA { r: 1.0, g: 0.60, b: 0.10, a: 0.5 },
    ColorRGBA { r: 0.85, g: 0.25, b: 0.85, a: 0.5 },
];

/// The `~/markers` message for RViz. Per target placed in 3D: a translucent cube (id
/// [`MARKER_ID_BOX`] + 2 i for the i-th target) on its 3D box and a text label (id
/// [`MARKER_ID_LABEL`] + 2 i: class, target id and score) just above it, added without a lifetime
/// so a paused bag keeps showing them. With one target and no 3D position (lost, no depth): a
/// single `DELETEALL` of the namespace, so its markers disappear at once. With several targets
/// the message starts with that `DELETEALL`, so a target that left takes its markers along.
pub fn markers(header: &Header, targets: &[Answer3d], class_id: &str) -> MarkerArray {
    let marker = |id: i32, type_: i32, action: i32| Marker {
        header: header.clone(),
        ns: MARKER_NAMESPACE.to_owned(),
        id,
        type_,
        action,
        ..Default::default()
    };
    let delete_all = marker(0, Marker::CUBE, Marker::DELETEALL);
    let mut markers = Vec::new();
    if targets.len() > 1 || targets.iter().all(|a| a.target.is_none()) {
        markers.push(delete_all);
    }
    for (i, a) in targets.iter().enumerate() {
        let Some(t) = &a.target else { continue };
        let base = 2 * i32::try_from(i).unwrap_or(i32::MAX / 2 - 1);
        let [width_m, height_m, extent_m] = t.size_m;
        markers.push(Marker {
            pose: pose_at(t.box_center_m),
            scale: Vector3 { x: width_m, y: height_m, z: extent_m },
            color: MARKER_COLOURS[i % MARKER_COLOURS.len()],
            ..marker(MARKER_ID_BOX + base, Marker::CUBE, Marker::ADD)
        });
        // Text height in metres, readable at the target's scale; y points down in the optical
        // frame.
        let text_m = (0.25 * height_m).clamp(0.05, 0.5);
        let [x, y, _] = t.position_m;
        markers.push(Marker {
            pose: pose_at([x, y - 0.5 * height_m - 0.75 * text_m, t.box_center_m[2]]),
            scale: Vector3 { x: 0.0, y: 0.0, z: text_m },
            color: ColorRGBA { r: 1.0, g: 1.0, b: 1.0, a: 1.0 },
            text: format!("{class_id} {} {:.2}", a.answer.id, a.answer.score()),
            ..marker(MARKER_ID_LABEL + base, Marker::TEXT_VIEW_FACING, Marker::ADD)
        });
    }
    MarkerArray { markers }
}

/// The 3D outputs of one answered pair in RGB-D mode (once a calibration is known).
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs3d {
    /// `~/target_point`: the first target (in the targets' order) placed in 3D, if any.
    pub target_point: Option<PointStamped>,
    pub detections_3d: Detection3DArray,
    pub markers: MarkerArray,
}

/// Builds [`Outputs3d`] with the header of the 3D outputs ([`target3d::header_3d`]).
pub fn outputs_3d(rgb_header: &Header, camera: &CameraModel, targets: &[Answer3d], class_id: &str) -> Outputs3d {
    let header = target3d::header_3d(rgb_header, camera);
    Outputs3d {
        target_point: targets.iter().find_map(|a| a.target.as_ref()).map(|t| target_point(&header, t)),
        detections_3d: detections_3d(&header, targets, class_id),
        markers: markers(&header, targets, class_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ros::msgs::Time;
    use crate::tracker::{BoxXywh, TrackResult};

    #[test]
    fn topics_expand_like_rcl() {
        assert_eq!(expand_topic("~/detections", "/", "patrack"), "/patrack/detections");
        assert_eq!(expand_topic("~/detections", "/robot", "patrack"), "/robot/patrack/detections");
        assert_eq!(expand_topic("rgb/image", "/robot/", "patrack"), "/robot/rgb/image");
        assert_eq!(expand_topic("rgb/image", "/", "patrack"), "/rgb/image");
        assert_eq!(expand_topic("/diagnostics", "/robot", "patrack"), "/diagnostics");
    }

    #[test]
    fn detections_are_empty_unless_tracking() {
        let header = Header { stamp: Time { sec: 3, nanosec: 4 }, frame_id: "cam".into() };
        let tracking =
            TrackResult { bbox: BoxXywh::new(10.0, 20.0, 30.0, 40.0), score: 0.5, state: TargetState::Tracking };
        let one = |result: Option<TrackResult>| [Answer { id: "7".into(), result }];
        let msg = detections(&header, &one(Some(tracking)), "person");
        assert_eq!(msg.header, header);
        assert_eq!(msg.detections.len(), 1);
        let d = &msg.detections[0];
        assert_eq!(
            (d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y),
            (25.0, 40.0, 30.0, 40.0)
        );
        assert_eq!(d.results[0].hypothesis.class_id, "person");
        assert_eq!(d.results[0].hypothesis.score, 0.5);
        assert_eq!(d.id, "7");
        assert_eq!(d.header, header);
        let lost = TrackResult { state: TargetState::Lost, ..tracking };
        assert!(detections(&header, &one(Some(lost)), "person").detections.is_empty());
        assert!(detections(&header, &one(None), "person").detections.is_empty());
        assert_eq!(confidence(&one(Some(lost))).data, 0.5);
        assert_eq!(confidence(&one(None)).data, 0.0);
        assert_eq!(confidence_stamped(&header, &one(None), "person").results.len(), 1);
    }

    fn target() -> Target3d {
        Target3d {
            position_m: [0.4, 0.2, 2.0],
            size_m: [0.2, 0.4, 0.2],
            box_center_m: [0.4, 0.2, 2.1],
            depth: crate::sensor::depth::DepthEstimate { depth_m: 2.0, sampled: 100, valid: 90 },
        }
    }

    #[test]
    fn the_3d_outputs_carry_the_target_and_nothing_without_one() {
        let header = Header { stamp: Time { sec: 3, nanosec: 4 }, frame_id: "cam".into() };
        let t = target();
        assert_eq!(target_point(&header, &t), PointStamped { header: header.clone(), point: point([0.4, 0.2, 2.0]) });
        let tracking =
            TrackResult { bbox: BoxXywh::new(1.0, 2.0, 3.0, 4.0), score: 0.75, state: TargetState::Tracking };
        let one =
            |target: Option<Target3d>| [Answer3d { answer: Answer { id: "7".into(), result: Some(tracking) }, target }];
        let msg = detections_3d(&header, &one(Some(t)), "person");
        assert_eq!(msg.header, header);
        let d = &msg.detections[0];
        assert_eq!((d.id.as_str(), &d.header), ("7", &header));
        assert_eq!(d.results[0].hypothesis, ObjectHypothesis { class_id: "person".into(), score: 0.75 });
        assert_eq!(d.results[0].pose.pose.position, point([0.4, 0.2, 2.0]));
        assert_eq!(d.bbox.center.position, point([0.4, 0.2, 2.1]));
        assert_eq!(d.bbox.center.orientation, crate::ros::msgs::Quaternion::default());
        assert_eq!(d.bbox.size, Vector3 { x: 0.2, y: 0.4, z: 0.2 });
        assert!(detections_3d(&header, &one(None), "person").detections.is_empty());

        let m = markers(&header, &one(Some(t)), "person").markers;
        assert_eq!(m.len(), 2);
        let (cube, label) = (&m[0], &m[1]);
        assert_eq!((cube.ns.as_str(), cube.id, cube.type_, cube.action), ("patrack", 0, Marker::CUBE, Marker::ADD));
        assert_eq!(cube.pose.position, point([0.4, 0.2, 2.1]));
        assert_eq!(cube.scale, Vector3 { x: 0.2, y: 0.4, z: 0.2 });
        assert_eq!(cube.lifetime, crate::ros::msgs::Duration::default());
        assert_eq!((label.id, label.type_, label.text.as_str()), (1, Marker::TEXT_VIEW_FACING, "person 7 0.75"));
        // Above the box (y is down): 0.2 - 0.2 - 0.75 * 0.1.
        assert!((label.pose.position.y - -0.075).abs() < 1e-12, "{:?}", label.pose.position);
        assert!(m.iter().all(|x| x.header == header));
        let gone = markers(&header, &one(None), "person").markers;
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].ns.as_str(), gone[0].action), ("patrack", Marker::DELETEALL));
    }

    #[test]
    fn several_targets_give_one_detection_marker_pair_and_score_each() {
        let header = Header { stamp: Time { sec: 1, nanosec: 0 }, frame_id: "cam".into() };
        let r = |x: f64, score: f32, state| Some(TrackResult { bbox: BoxXywh::new(x, 0.0, 10.0, 10.0), score, state });
        let answers = [
            Answer { id: "person".into(), result: r(0.0, 0.8, TargetState::Tracking) },
            Answer { id: "boat".into(), result: r(50.0, 0.1, TargetState::Lost) },
            Answer { id: "car".into(), result: r(100.0, 0.6, TargetState::Tracking) },
        ];
        let d = detections(&header, &answers, "thing").detections;
        let ids: Vec<&str> = d.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["person", "car"]);
        assert_eq!(d[1].bbox.center.position.x, 105.0);
        assert_eq!(confidence(&answers).data, 0.1);
        let scores: Vec<f64> = confidence_stamped(&header, &answers, "thing").results.iter().map(|h| h.score).collect();
        assert_eq!(scores, [f64::from(0.8f32), f64::from(0.1f32), f64::from(0.6f32)]);
        assert_eq!(confidence(&[]).data, 0.0);
        assert!(detections(&header, &[], "thing").detections.is_empty());

        let placed = [
            Answer3d { answer: answers[0].clone(), target: Some(target()) },
            Answer3d { answer: answers[1].clone(), target: None },
            Answer3d { answer: answers[2].clone(), target: Some(target()) },
        ];
        let d3 = detections_3d(&header, &placed, "thing").detections;
        assert_eq!(d3.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["person", "car"]);
        let m = markers(&header, &placed, "thing").markers;
        // DELETEALL first (targets may have left), then cube and label of targets 0 and 2.
        let kinds: Vec<(i32, i32)> = m.iter().map(|m| (m.id, m.action)).collect();
        assert_eq!(
            kinds,
            [(0, Marker::DELETEALL), (0, Marker::ADD), (1, Marker::ADD), (4, Marker::ADD), (5, Marker::ADD)]
        );
        assert_eq!(m[4].text, "thing car 0.60");
        assert_ne!(m[1].color, m[3].color);
    }

    #[test]
    fn the_3d_outputs_are_advertised_in_depth_mode_only() {
        let mut p = NodeParams::default();
        assert_eq!(Output::advertised(&p).len(), 7);
        assert!(Output::advertised(&p).iter().all(|o| !o.is_3d()));
        p.modality = Modality::Depth;
        assert_eq!(Output::advertised(&p), Output::ALL);
        assert_eq!(Output::Markers.resolved("/robot", "patrack"), "/robot/patrack/markers");
        assert_eq!(Output::Detections3d.type_name(), "vision_msgs/msg/Detection3DArray");
    }
}
