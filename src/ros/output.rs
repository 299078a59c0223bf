//! What the node publishes, built in one place for the node and for offline replay: the topic
//! names and QoS, `~/detections`, `~/confidence`, `~/confidence_stamped` and `~/debug_image`. The same tracking result gives
//! byte-identical messages on the robot and in a replayed bag.

use crate::overlay;
use crate::ros::msgs::{
    BoundingBox2D, Classification, Detection2D, Detection2DArray, DiagnosticArray, Float32, Header, Image,
    ObjectHypothesis, ObjectHypothesisWithPose, Point2D, Pose2D, RosMessage,
};
use crate::ros::params::{NodeParams, Reliability};
use crate::ros::srv::{ParameterEvent, TransitionEvent};
use crate::sensor::ImageU8;
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
}

/// QoS of one publisher (history keep-last, durability volatile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputQos {
    pub reliability: Reliability,
    pub depth: usize,
}

impl Output {
    pub const ALL: [Output; 7] = [
        Output::Detections,
        Output::Confidence,
        Output::ConfidenceStamped,
        Output::DebugImage,
        Output::Diagnostics,
        Output::ParameterEvents,
        Output::TransitionEvent,
    ];

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
}
