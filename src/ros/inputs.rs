//! What the node subscribes to: topic names, types and QoS per input, and the decoded messages.

use crate::ros::msgs::{
    CameraInfo, CompressedImage, Detection2D, Empty, Header, Image, MsgError, RegionOfInterest, RosMessage, StringMsg,
};
use crate::ros::params::{ImageTransport, NodeParams, Reliability};
use crate::sensor::{self, Modality};

/// Keep-last depth of the command subscriptions and of the output publishers (the ROS default
/// profile).
pub const COMMAND_QUEUE_DEPTH: usize = 10;

/// A topic the node subscribes to. Names are relative (or private, `~/`), so namespaces and
/// remappings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    Rgb,
    Aux,
    RgbCompressed,
    AuxCompressed,
    AuxCompressedDepth,
    Init,
    InitRoi,
    Reset,
    /// The RGB camera's calibration (RGB-D mode only).
    RgbCameraInfo,
    /// Forgets the target whose id the message holds (`std_msgs/String`).
    ResetTarget,
}

/// QoS of one subscription (history is always keep-last, durability volatile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputQos {
    pub reliability: Reliability,
    pub depth: usize,
}

impl Input {
    pub const COUNT: usize = 10;
    pub const ALL: [Input; Input::COUNT] = [
        Input::Rgb,
        Input::Aux,
        Input::RgbCompressed,
        Input::AuxCompressed,
        Input::AuxCompressedDepth,
        Input::Init,
        Input::InitRoi,
        Input::Reset,
        Input::RgbCameraInfo,
        Input::ResetTarget,
    ];

    pub fn topic(self) -> &'static str {
        match self {
            Input::Rgb => "rgb/image",
            Input::Aux => "aux/image",
            Input::RgbCompressed => "rgb/image/compressed",
            Input::AuxCompressed => "aux/image/compressed",
            Input::AuxCompressedDepth => "aux/image/compressedDepth",
            Input::Init => "~/init",
            Input::InitRoi => "~/init_roi",
            Input::Reset => "~/reset",
            Input::RgbCameraInfo => "rgb/camera_info",
            Input::ResetTarget => "~/reset_target",
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            Input::Rgb | Input::Aux => Image::TYPE_NAME,
            Input::RgbCompressed | Input::AuxCompressed | Input::AuxCompressedDepth => CompressedImage::TYPE_NAME,
            Input::Init => Detection2D::TYPE_NAME,
            Input::InitRoi => RegionOfInterest::TYPE_NAME,
            Input::Reset => Empty::TYPE_NAME,
            Input::RgbCameraInfo => CameraInfo::TYPE_NAME,
            Input::ResetTarget => StringMsg::TYPE_NAME,
        }
    }

    /// A camera image stream (as opposed to a command or a calibration).
    pub fn is_camera(self) -> bool {
        !matches!(self, Input::Init | Input::InitRoi | Input::Reset | Input::RgbCameraInfo | Input::ResetTarget)
    }

    /// The RGB camera, raw or compressed.
    pub fn is_rgb(self) -> bool {
        matches!(self, Input::Rgb | Input::RgbCompressed)
    }

    /// Cameras take the `rgb.*` / `aux.*` QoS (best effort by default, so they receive from
    /// reliable and best-effort publishers alike); commands are reliable. The camera info is best
    /// effort keep last 1: only the latest matters, and drivers publish it reliable or best
    /// effort.
    pub fn qos(self, params: &NodeParams) -> InputQos {
        let stream = match self {
            Input::Rgb | Input::RgbCompressed => &params.rgb,
            Input::Aux | Input::AuxCompressed | Input::AuxCompressedDepth => &params.aux,
            Input::Init | Input::InitRoi | Input::Reset | Input::ResetTarget => {
                return InputQos { reliability: Reliability::Reliable, depth: COMMAND_QUEUE_DEPTH }
            }
            Input::RgbCameraInfo => return InputQos { reliability: Reliability::BestEffort, depth: 1 },
        };
        InputQos { reliability: stream.reliability, depth: stream.depth as usize }
    }

    /// Short key for diagnostics values.
    pub fn key(self) -> &'static str {
        match self {
            Input::Rgb | Input::RgbCompressed => "rgb",
            Input::Aux | Input::AuxCompressed | Input::AuxCompressedDepth => "aux",
            Input::Init => "init",
            Input::InitRoi => "init_roi",
            Input::Reset => "reset",
            Input::RgbCameraInfo => "camera_info",
            Input::ResetTarget => "reset_target",
        }
    }

    /// The two camera inputs the parameters select (`rgb.transport`, `aux.transport`).
    pub fn cameras(params: &NodeParams) -> [Input; 2] {
        let rgb = match params.rgb_transport() {
            ImageTransport::Raw => Input::Rgb,
            _ => Input::RgbCompressed,
        };
        let aux = match params.aux_transport() {
            ImageTransport::Raw => Input::Aux,
            ImageTransport::Compressed => Input::AuxCompressed,
            ImageTransport::CompressedDepth => Input::AuxCompressedDepth,
        };
        [rgb, aux]
    }

    /// Every topic to subscribe with these parameters: the two cameras, then the commands, then
    /// in RGB-D mode the RGB camera's calibration.
    pub fn subscribed(params: &NodeParams) -> Vec<Input> {
        let [rgb, aux] = Self::cameras(params);
        let mut inputs = vec![rgb, aux, Input::Init, Input::InitRoi, Input::Reset, Input::ResetTarget];
        if params.modality == Modality::Depth {
            inputs.push(Input::RgbCameraInfo);
        }
        inputs
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One decoded input message.
#[derive(Debug, Clone)]
pub enum InputMessage {
    Image(Image),
    CompressedImage(CompressedImage),
    Init(Detection2D),
    InitRoi(RegionOfInterest),
    Reset,
    /// Boxed: a CameraInfo is three times the size of the other messages.
    CameraInfo(Box<CameraInfo>),
    /// The id of the target to forget.
    ResetTarget(String),
}

impl InputMessage {
    /// Decodes CDR (with encapsulation header) as the type `input` carries.
    pub fn decode(input: Input, cdr: &[u8]) -> Result<Self, MsgError> {
        Ok(match input {
            Input::Rgb | Input::Aux => InputMessage::Image(Image::decode(cdr)?),
            Input::RgbCompressed | Input::AuxCompressed | Input::AuxCompressedDepth => {
                InputMessage::CompressedImage(CompressedImage::decode(cdr)?)
            }
            Input::Init => InputMessage::Init(Detection2D::decode(cdr)?),
            Input::InitRoi => InputMessage::InitRoi(RegionOfInterest::decode(cdr)?),
            Input::Reset => {
                Empty::decode(cdr)?;
                InputMessage::Reset
            }
            Input::RgbCameraInfo => InputMessage::CameraInfo(Box::new(CameraInfo::decode(cdr)?)),
            Input::ResetTarget => InputMessage::ResetTarget(StringMsg::decode(cdr)?.data),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            InputMessage::Image(_) => Image::TYPE_NAME,
            InputMessage::CompressedImage(_) => CompressedImage::TYPE_NAME,
            InputMessage::Init(_) => Detection2D::TYPE_NAME,
            InputMessage::InitRoi(_) => RegionOfInterest::TYPE_NAME,
            InputMessage::Reset => Empty::TYPE_NAME,
            InputMessage::CameraInfo(_) => CameraInfo::TYPE_NAME,
            InputMessage::ResetTarget(_) => StringMsg::TYPE_NAME,
        }
    }
}

/// One camera message of either kind, decoded only as far as the header; the pixels are decoded
/// on the inference thread, and only for the pairs it tracks.
#[derive(Debug, Clone)]
pub enum CameraMsg {
    Raw(Image),
    Compressed(CompressedImage),
}

impl CameraMsg {
    pub fn header(&self) -> &Header {
        match self {
            CameraMsg::Raw(m) => &m.header,
            CameraMsg::Compressed(m) => &m.header,
        }
    }

    pub fn decode(&self) -> Result<sensor::DecodedImage, sensor::DecodeError> {
        match self {
            CameraMsg::Raw(m) => sensor::decode_image(&m.encoding, m.width, m.height, m.step, m.is_bigendian, &m.data),
            CameraMsg::Compressed(m) => sensor::decode_compressed(&m.format, &m.data),
        }
    }
}

/// Why a camera input may receive nothing, from the publishers the graph shows on its topic
/// (`resolved` is the name after remapping): none at all, or only ones whose QoS cannot match
/// (a best-effort publisher never delivers to a reliable subscription, the most common cause of
/// "no output"). `received_before` tells a camera that stopped (its publishers left) from a topic
/// that never had one (a naming fault). `None` when a matching publisher exists.
pub fn qos_hint(
    input: Input,
    resolved: &str,
    ours: Reliability,
    publishers: &[(String, Reliability)],
    received_before: bool,
) -> Option<String> {
    if publishers.is_empty() && received_before {
        return Some(format!("{resolved} has no publisher any more: the camera stopped or its driver left"));
    }
    if publishers.is_empty() {
        return Some(format!(
            "no publisher on {resolved} (the node's {}): check the topic name, the remapping and the namespace",
            input.topic()
        ));
    }
    if ours == Reliability::Reliable && publishers.iter().all(|(_, r)| *r == Reliability::BestEffort) {
        let who: Vec<&str> = publishers.iter().map(|(n, _)| n.as_str()).collect();
        let group = if input.is_rgb() { "rgb" } else { "aux" };
        return Some(format!(
            "{resolved}: incompatible QoS, nothing is received: the subscription requests reliable, the publisher(s) {} \
             offer best_effort; set {group}.reliability:=best_effort",
            who.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_follow_the_transport_parameters() {
        let mut p = NodeParams::default();
        assert_eq!(Input::cameras(&p), [Input::Rgb, Input::Aux]);
        p.aux.transport = ImageTransport::CompressedDepth;
        assert_eq!(Input::cameras(&p), [Input::Rgb, Input::AuxCompressedDepth]);
        p.use_compressed = true;
        assert_eq!(Input::cameras(&p), [Input::RgbCompressed, Input::AuxCompressedDepth]);
        assert_eq!(Input::AuxCompressedDepth.topic(), "aux/image/compressedDepth");
        p.rgb.reliability = Reliability::Reliable;
        p.rgb.depth = 2;
        assert_eq!(Input::RgbCompressed.qos(&p), InputQos { reliability: Reliability::Reliable, depth: 2 });
        assert_eq!(Input::Init.qos(&p).reliability, Reliability::Reliable);
        for (i, input) in Input::ALL.iter().enumerate() {
            assert_eq!(input.index(), i);
        }
        assert!(!Input::subscribed(&p).contains(&Input::RgbCameraInfo));
        p.modality = Modality::Depth;
        assert_eq!(Input::subscribed(&p).last(), Some(&Input::RgbCameraInfo));
        let q = Input::RgbCameraInfo.qos(&p);
        assert_eq!(q, InputQos { reliability: Reliability::BestEffort, depth: 1 });
    }

    #[test]
    fn qos_hints_name_the_cause() {
        let none = qos_hint(Input::Rgb, "/cam/image", Reliability::BestEffort, &[], false).unwrap();
        assert!(none.starts_with("no publisher on /cam/image"), "{none}");
        let left = qos_hint(Input::Rgb, "/cam/image", Reliability::BestEffort, &[], true).unwrap();
        assert!(left.contains("no publisher any more") && !left.contains("remapping"), "{left}");
        let be = [("/camera_driver".to_owned(), Reliability::BestEffort)];
        let hint = qos_hint(Input::Aux, "/thermal", Reliability::Reliable, &be, false).unwrap();
        assert!(hint.contains("incompatible QoS") && hint.contains("aux.reliability:=best_effort"), "{hint}");
        assert_eq!(qos_hint(Input::Aux, "/thermal", Reliability::BestEffort, &be, false), None);
        let reliable = [("/driver".to_owned(), Reliability::Reliable)];
        assert_eq!(qos_hint(Input::Rgb, "/cam", Reliability::Reliable, &reliable, true), None);
    }
}
