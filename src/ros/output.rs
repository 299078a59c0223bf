//! What the node publishes, built in one place for the node and for offline replay: the topic
//! names and QoS, `~/detections`, `~/confidence`, `~/confidence_stamped`, `~/debug_image` and,
//! in RGB-D mode, `~/target_point`, `~/detections_3d` and `~/markers`. The same tracking result
//! gives byte-identical messages on the robot and in a replayed bag.

use crate::overlay;
use crate::ros::msgs::{
    BoundingBox2D, BoundingBox3D, Classification, ColorRGBA, Detection2D, Detection2DArray, Detection3D,
    Detection3DArray, DiagnosticArray, Float32, Header, Image, Marker, MarkerArray, ObjectHypothesis,
    ObjectHypothesisWithPose, Point, Point2D, PointStamped, Pose, Pose2D, PoseWithCovariance, RosMessage, Vector3,
};
use crate::ros::params::{NodeParams, Reliability};
use crate::ros::srv::{ParameterEvent, TransitionEvent};
use crate::ros::target3d::{self, CameraModel};
use crate::sensor::depth::Target3d;
use crate::sensor::{ImageU8, Modality};
use crate::tracker::{TargetState, TrackResult};

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

/// The `~/detections` message: one detection while tracking, none while lost or uninitialised.
pub fn detections(header: &Header, result: Option<&TrackResult>, class_id: &str, track_id: u64) -> Detection2DArray {
    let detections = match result {
        Some(r) if r.state == TargetState::Tracking => {
            let (cx, cy) = r.bbox.center();
            vec![Detection2D {
                header: header.clone(),
                results: vec![ObjectHypothesisWithPose {
                    hypothesis: ObjectHypothesis { class_id: class_id.to_owned(), score: f64::from(r.score) },
                    ..Default::default()
                }],
                bbox: BoundingBox2D {
                    center: Pose2D { position: Point2D { x: cx, y: cy }, theta: 0.0 },
                    size_x: r.bbox.w,
                    size_y: r.bbox.h,
                },
                id: track_id.to_string(),
            }]
        }
        _ => Vec::new(),
    };
    Detection2DArray { header: header.clone(), detections }
}

/// The `~/confidence` message: the frame's score, 0 while uninitialised.
pub fn confidence(result: Option<&TrackResult>) -> Float32 {
    Float32 { data: result.map_or(0.0, |r| r.score) }
}

/// The `~/confidence_stamped` message: the frame's score with the image's header, every frame
/// (also while lost, when `~/detections` is empty), as `vision_msgs/Classification`.
pub fn confidence_stamped(header: &Header, result: Option<&TrackResult>, class_id: &str) -> Classification {
    Classification {
        header: header.clone(),
        results: vec![ObjectHypothesis {
            class_id: class_id.to_owned(),
            score: f64::from(result.map_or(0.0, |r| r.score)),
        }],
    }
}

/// The `~/debug_image` message: the RGB half of `frame`, optionally blended with its aux half
/// (`aux_blend` in [0, 1]), with the box, the label, the state and the score drawn; rgb8 with the
/// image's header.
pub fn debug_image(
    frame: &ImageU8,
    header: &Header,
    result: Option<&TrackResult>,
    class_id: &str,
    aux_blend: f64,
) -> Image {
    let mut rgb = overlay::rgb_of(frame);
    if aux_blend > 0.0 {
        if let Some(aux) = overlay::aux_of(frame) {
            rgb = overlay::blend(&rgb, &aux, aux_blend as f32);
        }
    }
    let (state, score) = result.map_or((TargetState::Uninitialised, 0.0), |r| (r.state, r.score));
    let colour = overlay::state_colour(state);
    if let Some(r) = result {
        overlay::draw_box(&mut rgb, r.bbox, colour, 2);
    }
    overlay::draw_text(&mut rgb, 4, 4, &format!("{class_id} {state} {score:.2}"), colour, 1);
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

/// The `~/detections_3d` message: one detection when the frame has a 3D target (tracking, with a
/// valid depth), none otherwise. `results[0]` carries class_id and confidence as in 2D, its pose
/// the surface point; `bbox` is the camera-aligned box of [`Target3d`] (identity orientation in the
/// optical frame); `id` the track id.
pub fn detections_3d(
    header: &Header,
    target: Option<&Target3d>,
    score: f32,
    class_id: &str,
    track_id: u64,
) -> Detection3DArray {
    let detections = target
        .map(|t| Detection3D {
            header: header.clone(),
            results: vec![ObjectHypothesisWithPose {
                hypothesis: ObjectHypothesis { class_id: class_id.to_owned(), score: f64::from(score) },
                pose: PoseWithCovariance { pose: pose_at(t.position_m), ..Default::default() },
            }],
            bbox: BoundingBox3D {
                center: pose_at(t.box_center_m),
                size: Vector3 { x: t.size_m[0], y: t.size_m[1], z: t.size_m[2] },
            },
            id: track_id.to_string(),
        })
        .into_iter()
        .collect();
    Detection3DArray { header: header.clone(), detections }
}

/// The `~/markers` message for RViz. With a 3D target: a translucent green cube (id
/// [`MARKER_ID_BOX`]) on the 3D box and a text label (id [`MARKER_ID_LABEL`]: class, track id
/// and score) just above it, both added without a lifetime so a paused bag keeps showing them.
/// Without one (lost, no depth): a single `DELETEALL` of the namespace, so the last target's
/// markers disappear at once.
pub fn markers(header: &Header, target: Option<&Target3d>, score: f32, class_id: &str, track_id: u64) -> MarkerArray {
    let marker = |id: i32, type_: i32, action: i32| Marker {
        header: header.clone(),
        ns: MARKER_NAMESPACE.to_owned(),
        id,
        type_,
        action,
        ..Default::default()
    };
    let Some(t) = target else {
        return MarkerArray { markers: vec![marker(0, Marker::CUBE, Marker::DELETEALL)] };
    };
    let [width_m, height_m, extent_m] = t.size_m;
    let cube = Marker {
        pose: pose_at(t.box_center_m),
        scale: Vector3 { x: width_m, y: height_m, z: extent_m },
        color: ColorRGBA { r: 0.16, g: 0.86, b: 0.24, a: 0.5 },
        ..marker(MARKER_ID_BOX, Marker::CUBE, Marker::ADD)
    };
    // Text height in metres, readable at the target's scale; y points down in the optical frame.
    let text_m = (0.25 * height_m).clamp(0.05, 0.5);
    let [x, y, _] = t.position_m;
    let label = Marker {
        pose: pose_at([x, y - 0.5 * height_m - 0.75 * text_m, t.box_center_m[2]]),
        scale: Vector3 { x: 0.0, y: 0.0, z: text_m },
        color: ColorRGBA { r: 1.0, g: 1.0, b: 1.0, a: 1.0 },
        text: format!("{class_id} {track_id} {score:.2}"),
        ..marker(MARKER_ID_LABEL, Marker::TEXT_VIEW_FACING, Marker::ADD)
    };
    MarkerArray { markers: vec![cube, label] }
}

/// The 3D outputs of one answered pair in RGB-D mode (once a calibration is known).
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs3d {
    /// `~/target_point`, only with a 3D target.
    pub target_point: Option<PointStamped>,
    pub detections_3d: Detection3DArray,
    pub markers: MarkerArray,
}

/// Builds [`Outputs3d`] with the header of the 3D outputs ([`target3d::header_3d`]) and the
/// pair's score and track.
pub fn outputs_3d(
    rgb_header: &Header,
    camera: &CameraModel,
    target: Option<&Target3d>,
    result: Option<&TrackResult>,
    class_id: &str,
    track_id: u64,
) -> Outputs3d {
    let header = target3d::header_3d(rgb_header, camera);
    let score = result.map_or(0.0, |r| r.score);
    Outputs3d {
        target_point: target.map(|t| target_point(&header, t)),
        detections_3d: detections_3d(&header, target, score, class_id, track_id),
        markers: markers(&header, target, score, class_id, track_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ros::msgs::Time;
    use crate::tracker::BoxXywh;

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
        let msg = detections(&header, Some(&tracking), "person", 7);
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
        assert!(detections(&header, Some(&lost), "person", 7).detections.is_empty());
        assert!(detections(&header, None, "person", 7).detections.is_empty());
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
        let msg = detections_3d(&header, Some(&t), 0.75, "person", 7);
        assert_eq!(msg.header, header);
        let d = &msg.detections[0];
        assert_eq!((d.id.as_str(), &d.header), ("7", &header));
        assert_eq!(d.results[0].hypothesis, ObjectHypothesis { class_id: "person".into(), score: 0.75 });
        assert_eq!(d.results[0].pose.pose.position, point([0.4, 0.2, 2.0]));
        assert_eq!(d.bbox.center.position, point([0.4, 0.2, 2.1]));
        assert_eq!(d.bbox.center.orientation, crate::ros::msgs::Quaternion::default());
        assert_eq!(d.bbox.size, Vector3 { x: 0.2, y: 0.4, z: 0.2 });
        assert!(detections_3d(&header, None, 0.75, "person", 7).detections.is_empty());

        let m = markers(&header, Some(&t), 0.75, "person", 7).markers;
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
        let gone = markers(&header, None, 0.0, "person", 7).markers;
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].ns.as_str(), gone[0].action), ("patrack", Marker::DELETEALL));
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
