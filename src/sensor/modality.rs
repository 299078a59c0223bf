//! Auxiliary-modality preparation: thermal, depth or event images to the 3-channel 8-bit image
//! that fills channels 3-5 of the tracker frame, exactly as the PATrack reference prepares them.
//!
//! * **Thermal** (RGB-T, `get_x_frame(..., 'rgbrgb')`): the reference reads the IR image as a
//!   3-channel colour image and converts BGR to RGB, so a 3-channel thermal image is used as is
//!   (our decoder already yields RGB). Grey images are replicated to 3 channels; raw 16-bit counts
//!   and 32-bit temperatures are first mapped to 8 bits by a [`ThermalScaling`] rule.
//! * **Depth** (RGB-D, `get_rgbd_frame(..., 'rgbcolormap', depth_clip=True)`): clip at
//!   `min(3 * median, 10 m)`, min-max normalise to 8 bits and apply OpenCV's JET colormap, kept in
//!   **B, G, R** order as the reference does ([`depth_to_colormap_bgr`]).
//! * **Event** (RGB-E): the reference dataset (VisEvent) stores events already rendered as
//!   3-channel frames (`event_imgs/*.bmp`) and the tracker uses them like RGB images. Raw event
//!   streams (`event_camera_msgs/EventPacket`, `dvs_msgs/EventArray`) must therefore be
//!   accumulated into frames upstream (e.g. polarity-coloured images over a time window) and
//!   published as `mono8`/`rgb8`/`bgr8`; such frames are prepared like thermal images.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::decode::{DecodedImage, ImageF32, ImageU16, MonoImage};
use super::depth::DepthImage;
use super::registration::{register_to_rgb, Homography, RegistrationError};
use super::ImageU8;

pub use super::jet_lut::JET_LUT_BGR;

/// Largest clip value of the reference depth path, in millimetres (10 m).
pub const DEPTH_CLIP_MAX_MM: f64 = 10_000.0;

/// Errors while preparing the auxiliary image or assembling the tracker frame.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("a {modality} image cannot be prepared from {kind} pixels")]
    UnsupportedInput { modality: Modality, kind: &'static str },
    #[error("invalid thermal scaling: {0}")]
    InvalidScaling(String),
    #[error("the RGB image must have 3 channels, it has {channels}")]
    RgbChannels { channels: usize },
    #[error("the prepared aux image must have 1 or 3 channels, it has {channels}")]
    AuxChannels { channels: usize },
    #[error("the RGB camera image must be 8-bit colour or grey, got {kind}")]
    RgbInput { kind: &'static str },
    #[error("image buffer of {len} bytes does not match its {width}x{height}x{channels} header")]
    InconsistentImage { width: usize, height: usize, channels: usize, len: usize },
    #[error("cannot register the aux image to the RGB image: {0}")]
    Registration(RegistrationError),
}

impl From<RegistrationError> for PrepareError {
    fn from(e: RegistrationError) -> Self {
        PrepareError::Registration(e)
    }
}

/// The auxiliary modality paired with RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    Thermal,
    Depth,
    Event,
}

impl Modality {
    /// The lowercase name used in configs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Thermal => "thermal",
            Modality::Depth => "depth",
            Modality::Event => "event",
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A modality name that is not `thermal`, `depth` or `event`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown modality `{0}` (expected thermal, depth or event)")]
pub struct ParseModalityError(pub String);

impl FromStr for Modality {
    type Err = ParseModalityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "thermal" => Ok(Modality::Thermal),
            "depth" => Ok(Modality::Depth),
            "event" => Ok(Modality::Event),
            _ => Err(ParseModalityError(s.to_owned())),
        }
    }
}

/// How 16-bit counts or 32-bit temperatures become 8-bit grey values (thermal and event frames).
///
/// Values map linearly from `[lo, hi]` to `0..=255` (round half to even, clamped); NaN/Inf become 0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum ThermalScaling {
    /// Fixed range in the image's own units (raw counts for 16-bit, e.g. kelvin or °C for 32FC1).
    Fixed { min: f64, max: f64 },
    /// Per-frame stretch between two percentiles (in percent, `0 <= low < high <= 100`, linear
    /// interpolation between order statistics as numpy's default). A flat frame maps to 0.
    Percentile { low: f64, high: f64 },
}

impl Default for ThermalScaling {
    fn default() -> Self {
        ThermalScaling::Percentile { low: 1.0, high: 99.0 }
    }
}

impl ThermalScaling {
    fn validate(&self) -> Result<(), PrepareError> {
        match *self {
            ThermalScaling::Fixed { min, max } if min.is_finite() && max.is_finite() && max > min => Ok(()),
            ThermalScaling::Fixed { min, max } => {
                Err(PrepareError::InvalidScaling(format!("fixed range needs finite min < max, got [{min}, {max}]")))
            }
            ThermalScaling::Percentile { low, high }
                if (0.0..=100.0).contains(&low) && (0.0..=100.0).contains(&high) && low < high =>
            {
                Ok(())
            }
            ThermalScaling::Percentile { low, high } => Err(PrepareError::InvalidScaling(format!(
                "percentiles need 0 <= low < high <= 100, got {low} and {high}"
            ))),
        }
    }
}

/// Settings of the auxiliary path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuxConfig {
    /// Mapping of 16/32-bit thermal (or event) images to 8 bits.
    pub thermal_scaling: ThermalScaling,
    /// Row-major 3x3 homography from RGB pixel coordinates to aux pixel coordinates (see
    /// [`super::registration`]). `None`: the cameras share a pixel grid, up to a plain resize.
    pub aux_from_rgb: Option<[[f64; 3]; 3]>,
}

impl AuxConfig {
    /// The configured registration, validated.
    pub fn homography(&self) -> Result<Option<Homography>, PrepareError> {
        let Some(m) = self.aux_from_rgb else {
            return Ok(None);
        };
        let matrix = nalgebra::Matrix3::from_fn(|r, c| m[r][c]);
        Ok(Some(Homography::from_aux_from_rgb(matrix)?))
    }
}

fn check_u8(im: &ImageU8) -> Result<(), PrepareError> {
    if im.is_consistent() {
        Ok(())
    } else {
        Err(PrepareError::InconsistentImage {
            width: im.width,
            height: im.height,
            channels: im.channels,
            len: im.data.len(),
        })
    }
}

fn check_mono<T>(im: &MonoImage<T>) -> Result<(), PrepareError> {
    if im.width.checked_mul(im.height) == Some(im.data.len()) {
        Ok(())
    } else {
        Err(PrepareError::InconsistentImage { width: im.width, height: im.height, channels: 1, len: im.data.len() })
    }
}

/// Replicates a 1-channel image to 3 equal channels.
pub fn gray_to_rgb(width: usize, height: usize, gray: &[u8]) -> ImageU8 {
    let mut data = vec![0u8; gray.len() * 3];
    for (o, &g) in data.chunks_exact_mut(3).zip(gray) {
        o.copy_from_slice(&[g, g, g]);
    }
    ImageU8 { width, height, channels: 3, data }
}

/// The RGB camera image as the 3-channel RGB part of the tracker frame (grey is replicated).
pub fn prepare_rgb(decoded: DecodedImage) -> Result<ImageU8, PrepareError> {
    match decoded {
        DecodedImage::Rgb8(im) => {
            check_u8(&im)?;
            Ok(im)
        }
        DecodedImage::Mono8(im) => {
            check_u8(&im)?;
            Ok(gray_to_rgb(im.width, im.height, &im.data))
        }
        other => Err(PrepareError::RgbInput { kind: other.kind() }),
    }
}

/// Prepares the auxiliary image of the given modality as a 3-channel 8-bit image in its own
/// pixel grid (registration happens in [`assemble_frame`]).
pub fn prepare_aux(decoded: DecodedImage, modality: Modality, config: &AuxConfig) -> Result<ImageU8, PrepareError> {
    let aux = prepare_aux_planes(decoded, modality, config)?;
    Ok(if aux.channels == 1 { gray_to_rgb(aux.width, aux.height, &aux.data) } else { aux })
}

/// [`prepare_aux`] without replicating a grey result to 3 channels: grey thermal and event
/// images stay 1-channel until they are stacked into the frame, which saves a full-frame pass.
fn prepare_aux_planes(decoded: DecodedImage, modality: Modality, config: &AuxConfig) -> Result<ImageU8, PrepareError> {
    let kind = decoded.kind();
    match (modality, decoded) {
        (Modality::Thermal | Modality::Event, DecodedImage::Rgb8(im) | DecodedImage::Mono8(im)) => {
            check_u8(&im)?;
            Ok(im)
        }
        (Modality::Thermal | Modality::Event, DecodedImage::Mono16(im)) => {
            check_mono(&im)?;
            let gray = scale_u16_to_u8(&im.data, &config.thermal_scaling)?;
            Ok(ImageU8 { width: im.width, height: im.height, channels: 1, data: gray })
        }
        (Modality::Thermal | Modality::Event, DecodedImage::Float32(im)) => {
            check_mono(&im)?;
            let gray = scale_f32_to_u8(&im.data, &config.thermal_scaling)?;
            Ok(ImageU8 { width: im.width, height: im.height, channels: 1, data: gray })
        }
        (Modality::Depth, DecodedImage::Mono16(im)) => {
            check_mono(&im)?;
            Ok(depth_to_colormap_bgr(&im))
        }
        (Modality::Depth, DecodedImage::Float32(im)) => {
            check_mono(&im)?;
            Ok(depth_to_colormap_bgr(&depth_metres_to_mm(&im)))
        }
        (Modality::Depth, DecodedImage::Rgb8(_) | DecodedImage::Mono8(_)) => {
            Err(PrepareError::UnsupportedInput { modality, kind })
        }
    }
}

/// Registers a prepared aux image to the RGB image and stacks them into the 6-channel tracker
/// frame `[R, G, B, a0, a1, a2]`; a 1-channel (grey) aux image fills all three aux channels.
pub fn assemble_frame(rgb: &ImageU8, aux: &ImageU8, config: &AuxConfig) -> Result<ImageU8, PrepareError> {
    check_u8(rgb)?;
    check_u8(aux)?;
    if rgb.channels != 3 {
        return Err(PrepareError::RgbChannels { channels: rgb.channels });
    }
    if aux.channels != 1 && aux.channels != 3 {
        return Err(PrepareError::AuxChannels { channels: aux.channels });
    }
    let homography = config.homography()?;
    // Same size and no homography: registration is the identity, stack without a copy.
    let registered;
    let aux = if homography.is_none() && (aux.width, aux.height) == (rgb.width, rgb.height) {
        aux
    } else {
        registered = register_to_rgb(aux, rgb.width, rgb.height, homography.as_ref())?;
        &registered
    };
    ImageU8::stack_rgb_aux(rgb, aux).ok_or(PrepareError::InconsistentImage {
        width: aux.width,
        height: aux.height,
        channels: aux.channels,
        len: aux.data.len(),
    })
}

/// [`prepare_aux`] followed by [`assemble_frame`]: the whole path from two decoded camera images
/// to the tracker's 6-channel frame.
pub fn prepare_frame(
    rgb: &ImageU8,
    aux: DecodedImage,
    modality: Modality,
    config: &AuxConfig,
) -> Result<ImageU8, PrepareError> {
    let aux = prepare_aux_planes(aux, modality, config)?;
    assemble_frame(rgb, &aux, config)
}

/// [`prepare_frame`] that also hands back the raw depth image in depth modality (for the 3D
/// step, [`super::depth`]); in the other modalities the second value is `None`. No pixel is
/// copied for it: the depth image is colour-mapped from a reference and returned.
pub fn prepare_frame_keeping_depth(
    rgb: &ImageU8,
    aux: DecodedImage,
    modality: Modality,
    config: &AuxConfig,
) -> Result<(ImageU8, Option<DepthImage>), PrepareError> {
    let depth = match (modality, aux) {
        (Modality::Depth, DecodedImage::Mono16(im)) => DepthImage::Millimetres(im),
        (Modality::Depth, DecodedImage::Float32(im)) => DepthImage::Metres(im),
        (_, aux) => return prepare_frame(rgb, aux, modality, config).map(|frame| (frame, None)),
    };
    let colormap = match &depth {
        DepthImage::Millimetres(im) => {
            check_mono(im)?;
            depth_to_colormap_bgr(im)
        }
        DepthImage::Metres(im) => {
            check_mono(im)?;
            depth_to_colormap_bgr(&depth_metres_to_mm(im))
        }
    };
    let frame = assemble_frame(rgb, &colormap, config)?;
    Ok((frame, Some(depth)))
}

// ---------------------------------------------------------------------------------------------
// Thermal / event scaling

/// Linear map of `[lo, hi]` to 0..=255; a degenerate range maps everything to 0.
fn linear_to_u8(value: f64, lo: f64, hi: f64) -> u8 {
    if !value.is_finite() || hi <= lo {
        return 0;
    }
    ((value - lo) * (255.0 / (hi - lo))).round_ties_even().clamp(0.0, 255.0) as u8
}

/// The `percent` percentile of sorted data given by an order-statistic lookup, numpy "linear".
fn percentile_linear(count: usize, percent: f64, kth: impl Fn(usize) -> f64) -> f64 {
    let pos = percent / 100.0 * (count - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    let a = kth(i);
    if frac == 0.0 || i + 1 >= count {
        a
    } else {
        a + frac * (kth(i + 1) - a)
    }
}

/// 16-bit counts to 8 bits per `scaling`. Percentiles come from a histogram, so this is O(n).
pub fn scale_u16_to_u8(values: &[u16], scaling: &ThermalScaling) -> Result<Vec<u8>, PrepareError> {
    scaling.validate()?;
    let (lo, hi) = match *scaling {
        ThermalScaling::Fixed { min, max } => (min, max),
        ThermalScaling::Percentile { low, high } => {
            if values.is_empty() {
                return Ok(Vec::new());
            }
            let hist = histogram_u16(values);
            let kth = |k: usize| f64::from(kth_smallest_u16(&hist, k));
            (percentile_linear(values.len(), low, kth), percentile_linear(values.len(), high, kth))
        }
    };
    // Cheaper to map each distinct value once than every pixel: a table over the values that
    // occur (a thermal frame spans a few thousand counts, not 65536).
    if values.is_empty() {
        return Ok(Vec::new());
    }
    // Folds over copied values vectorise; `Iterator::min` on references does not (6x slower).
    let first = values.iter().fold(u16::MAX, |a, &b| a.min(b));
    let last = values.iter().fold(u16::MIN, |a, &b| a.max(b));
    let mut lut = vec![0u8; 1 << 16];
    for v in first..=last {
        lut[usize::from(v)] = linear_to_u8(f64::from(v), lo, hi);
    }
    // A 65536-entry array: every u16 index is in bounds, so the lookups carry no checks.
    let lut: &[u8; 1 << 16] = lut.as_slice().try_into().expect("65536 entries");
    Ok(values.iter().map(|&v| lut[usize::from(v)]).collect())
}

/// 32-bit values (e.g. temperatures) to 8 bits per `scaling`; NaN/Inf pixels become 0 and are
/// left out of the percentiles.
pub fn scale_f32_to_u8(values: &[f32], scaling: &ThermalScaling) -> Result<Vec<u8>, PrepareError> {
    scaling.validate()?;
    let (lo, hi) = match *scaling {
        ThermalScaling::Fixed { min, max } => (min, max),
        ThermalScaling::Percentile { low, high } => {
            let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
            if finite.is_empty() {
                return Ok(vec![0; values.len()]);
            }
            finite.sort_unstable_by(f32::total_cmp);
            let kth = |k: usize| f64::from(finite.get(k).copied().unwrap_or(0.0));
            (percentile_linear(finite.len(), low, kth), percentile_linear(finite.len(), high, kth))
        }
    };
    Ok(values.iter().map(|&v| linear_to_u8(f64::from(v), lo, hi)).collect())
}

fn histogram_u16(values: &[u16]) -> Vec<u32> {
    // u32 counts: half the cache footprint of usize; an image has far fewer than 2^32 pixels
    // (decode caps the size).
    let mut hist = vec![0u32; 1 << 16];
    for &v in values {
        hist[usize::from(v)] += 1;
    }
    hist
}

/// The k-th smallest value (0-based) described by a 65536-bin histogram; the largest value when
/// k is past the end.
fn kth_smallest_u16(hist: &[u32], k: usize) -> u16 {
    let mut seen = 0usize;
    let mut last = 0u16;
    for (value, &count) in (0..=u16::MAX).zip(hist) {
        if count == 0 {
            continue;
        }
        seen += count as usize;
        last = value;
        if seen > k {
            return value;
        }
    }
    last
}

// ---------------------------------------------------------------------------------------------
// Depth: the reference RGB-D path (`lib/train/dataset/depth_utils.py`, `get_rgbd_frame`)

/// Metres (REP 118 `32FC1`) to millimetres as the reference's uint16 PNGs hold them: rounded
/// half to even and saturated like OpenCV's `convertTo`; NaN, Inf and negatives become 0 (invalid).
pub fn depth_metres_to_mm(depth_m: &ImageF32) -> ImageU16 {
    let data = depth_m
        .data
        .iter()
        .map(|&m| {
            let mm = f64::from(m) * 1000.0;
            if mm.is_finite() && mm > 0.0 {
                mm.round_ties_even().min(f64::from(u16::MAX)) as u16
            } else {
                0
            }
        })
        .collect();
    MonoImage { width: depth_m.width, height: depth_m.height, data }
}

/// Result of the reference's depth clip step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthClip {
    /// numpy median over all pixels, zeros included (mean of the middle two for an even count).
    pub median_mm: f64,
    /// `min(3 * median, 10000)`; pixels strictly above it were clipped.
    pub max_depth_mm: f64,
    /// The value clipped pixels received: `max_depth_mm` truncated into uint16.
    pub clip_value_mm: u16,
}

/// Clip step: `dp[dp > min(median(dp) * 3, 10000)] = that value`, truncated to an integer as the
/// uint16 assignment in numpy does. Modifies `depth_mm` in place. An empty slice is left alone.
pub fn depth_clip_mm(depth_mm: &mut [u16]) -> DepthClip {
    let n = depth_mm.len();
    if n == 0 {
        return DepthClip { median_mm: 0.0, max_depth_mm: 0.0, clip_value_mm: 0 };
    }
    let hist = histogram_u16(depth_mm);
    let median_mm = if n % 2 == 1 {
        f64::from(kth_smallest_u16(&hist, n / 2))
    } else {
        (f64::from(kth_smallest_u16(&hist, n / 2 - 1)) + f64::from(kth_smallest_u16(&hist, n / 2))) / 2.0
    };
    let max_depth_mm = (median_mm * 3.0).min(DEPTH_CLIP_MAX_MM);
    // The value is in [0, 10000], so the truncating cast is exact numpy behaviour.
    let clip_value_mm = max_depth_mm.trunc() as u16;
    for v in depth_mm.iter_mut() {
        if f64::from(*v) > max_depth_mm {
            *v = clip_value_mm;
        }
    }
    DepthClip { median_mm, max_depth_mm, clip_value_mm }
}

/// `cv2.normalize(dp, None, 0, 255, NORM_MINMAX)` on a uint16 image followed by `astype(uint8)`.
///
/// OpenCV computes `scale = 255 * (1 / (max - min))` and `shift = -min * scale` in double, then
/// converts with float32 `v * scale + shift` (a rounded multiply, then an add: no fused
/// multiply-add), rounding half to even and saturating to uint16. A constant image gives scale 0,
/// i.e. all zeros.
pub fn normalize_minmax_u8(depth: &[u16]) -> Vec<u8> {
    let (Some(&min), Some(&max)) = (depth.iter().min(), depth.iter().max()) else {
        return Vec::new();
    };
    let (min, max) = (f64::from(min), f64::from(max));
    let scale = 255.0 * if max - min > f64::EPSILON { 1.0 / (max - min) } else { 0.0 };
    let shift = 0.0 - min * scale;
    let (scale32, shift32) = (scale as f32, shift as f32);
    depth
        .iter()
        .map(|&v| {
            let value = (f32::from(v) * scale32 + shift32).round_ties_even().clamp(0.0, 65535.0) as u16;
            // numpy's uint16 -> uint8 cast keeps the low byte; values are <= 255 here anyway.
            (value & 0xff) as u8
        })
        .collect()
}

/// `cv2.applyColorMap(gray, COLORMAP_JET)`: one `[B, G, R]` triple per pixel.
pub fn apply_jet_bgr(gray: &[u8]) -> Vec<u8> {
    gray.iter().flat_map(|&v| JET_LUT_BGR[usize::from(v)]).collect()
}

/// The reference RGB-D aux image: clip, min-max normalise, JET colormap in **B, G, R** order
/// (the reference never converts it to RGB, and the network was trained on that order).
pub fn depth_to_colormap_bgr(depth_mm: &ImageU16) -> ImageU8 {
    let mut clipped = depth_mm.data.clone();
    depth_clip_mm(&mut clipped);
    let gray = normalize_minmax_u8(&clipped);
    ImageU8 { width: depth_mm.width, height: depth_mm.height, channels: 3, data: apply_jet_bgr(&gray) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modality_names_round_trip() {
        for m in [Modality::Thermal, Modality::Depth, Modality::Event] {
            assert_eq!(m.to_string().parse::<Modality>().unwrap(), m);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(" Depth ".parse::<Modality>().unwrap(), Modality::Depth);
        assert!("rgb".parse::<Modality>().is_err());
    }

    #[test]
    fn config_parses_from_yaml() {
        let cfg: AuxConfig = serde_yaml::from_str("thermal_scaling: {mode: fixed, min: 7000, max: 9000}\n").unwrap();
        assert_eq!(cfg.thermal_scaling, ThermalScaling::Fixed { min: 7000.0, max: 9000.0 });
        assert_eq!(cfg.aux_from_rgb, None);
        assert_eq!(serde_yaml::from_str::<AuxConfig>("{}").unwrap(), AuxConfig::default());
    }

    #[test]
    fn median_even_and_odd_counts() {
        // Even count: median = (2 + 4) / 2 = 3, max_depth = 9, only 10 is clipped.
        let mut even = [0u16, 2, 4, 10];
        let clip = depth_clip_mm(&mut even);
        assert_eq!((clip.median_mm, clip.max_depth_mm, clip.clip_value_mm), (3.0, 9.0, 9));
        assert_eq!(even, [0, 2, 4, 9]);
        // Odd count: median 5, max_depth 15; 16 is clipped, 14 stays.
        let mut odd = [16u16, 0, 14, 4, 5];
        let clip = depth_clip_mm(&mut odd);
        assert_eq!(clip.median_mm, 5.0);
        assert_eq!(odd, [15, 0, 14, 4, 5]);
        // Half-integer median 3.5: max_depth 10.5 is stored truncated as 10.
        let mut half = [11u16, 0, 4, 3];
        let clip = depth_clip_mm(&mut half);
        assert_eq!((clip.median_mm, clip.max_depth_mm, clip.clip_value_mm), (3.5, 10.5, 10));
        assert_eq!(half, [10, 0, 4, 3]);
        // The 10 m cap.
        let mut far = [9000u16; 3];
        assert_eq!(depth_clip_mm(&mut far).max_depth_mm, 10_000.0);
    }

    #[test]
    fn normalize_constant_image_is_zero() {
        assert_eq!(normalize_minmax_u8(&[7, 7, 7]), vec![0, 0, 0]);
        // 100 * f32(1.275) = 127.4999976 rounds to 127.5 in float32, then half-to-even gives 128
        // (what cv2.normalize returns; a fused multiply-add would give 127).
        assert_eq!(normalize_minmax_u8(&[0, 100, 200]), vec![0, 128, 255]);
    }

    #[test]
    fn fixed_and_percentile_scaling() {
        let fixed = ThermalScaling::Fixed { min: 100.0, max: 355.0 };
        assert_eq!(scale_u16_to_u8(&[0, 100, 228, 355, 60000], &fixed).unwrap(), vec![0, 0, 128, 255, 255]);
        // 0..=100: the 10th and 90th percentiles are 10 and 90.
        let values: Vec<u16> = (0..=100).collect();
        let pct = ThermalScaling::Percentile { low: 10.0, high: 90.0 };
        let out = scale_u16_to_u8(&values, &pct).unwrap();
        assert_eq!((out[10], out[50], out[90], out[0], out[100]), (0, 128, 255, 0, 255));
        let floats: Vec<f32> = values.iter().map(|&v| f32::from(v)).chain([f32::NAN]).collect();
        let out_f = scale_f32_to_u8(&floats, &pct).unwrap();
        assert_eq!(&out_f[..101], &out[..]);
        assert_eq!(out_f[101], 0);
        assert!(scale_u16_to_u8(&values, &ThermalScaling::Percentile { low: 50.0, high: 50.0 }).is_err());
        assert!(scale_u16_to_u8(&values, &ThermalScaling::Fixed { min: 1.0, max: f64::NAN }).is_err());
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 50) = 2.5 and ([1, 2, 3, 4], 1) = 1.03.
        let data = [1.0, 2.0, 3.0, 4.0];
        let kth = |k: usize| data[k];
        assert_eq!(percentile_linear(4, 50.0, kth), 2.5);
        assert!((percentile_linear(4, 1.0, kth) - 1.03).abs() < 1e-12);
    }

    #[test]
    fn depth_rejects_colour_input() {
        let rgb = ImageU8::zeros(2, 2, 3);
        let err = prepare_aux(DecodedImage::Rgb8(rgb), Modality::Depth, &AuxConfig::default()).unwrap_err();
        assert!(matches!(err, PrepareError::UnsupportedInput { .. }), "{err}");
    }

    #[test]
    fn metres_to_millimetres() {
        let m = MonoImage { width: 5, height: 1, data: vec![1.5, f32::NAN, -1.0, f32::INFINITY, 70.0] };
        assert_eq!(depth_metres_to_mm(&m).data, vec![1500, 0, 0, 0, 65535]);
    }

    #[test]
    fn keeping_the_depth_gives_the_same_frame() {
        let rgb = ImageU8 { width: 4, height: 2, channels: 3, data: (0..24).collect() };
        let mm = MonoImage { width: 2, height: 1, data: vec![1200u16, 0] };
        let config = AuxConfig::default();
        let (frame, depth) =
            prepare_frame_keeping_depth(&rgb, DecodedImage::Mono16(mm.clone()), Modality::Depth, &config).unwrap();
        assert_eq!(frame, prepare_frame(&rgb, DecodedImage::Mono16(mm.clone()), Modality::Depth, &config).unwrap());
        assert_eq!(depth, Some(DepthImage::Millimetres(mm)));
        let m = MonoImage { width: 4, height: 2, data: vec![1.5f32; 8] };
        let (_, depth) =
            prepare_frame_keeping_depth(&rgb, DecodedImage::Float32(m.clone()), Modality::Depth, &config).unwrap();
        assert_eq!(depth, Some(DepthImage::Metres(m)));
        let grey = ImageU8 { width: 4, height: 2, channels: 1, data: vec![9; 8] };
        let (_, none) =
            prepare_frame_keeping_depth(&rgb, DecodedImage::Mono8(grey), Modality::Thermal, &config).unwrap();
        assert_eq!(none, None);
    }
}
