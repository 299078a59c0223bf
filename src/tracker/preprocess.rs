//! Template/search crops, OpenCV-exact resize and normalisation, bit-exact with the reference
//! (`sample_target` of `lib/train/data/processing_utils.py`, `cv2.resize` on uint8, and
//! `PreprocessorMM.process` of `lib/test/tracker/data_utils.py`).
//!
//! The padded crop is never materialised: the resize reads the frame through a `PaddedView`
//! that answers zero outside the copied window, so a 900 px search crop costs
//! O(out * out * channels), like the 256 px one.

use crate::sensor::ImageU8;

/// ImageNet mean per RGB channel; the reference uses it for both 3-channel groups.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation per RGB channel.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Largest accepted crop side, in frame pixels (a box ~8000 px wide with the search factor 4).
pub const MAX_CROP_SIZE_PX: usize = 32_768;
/// Largest accepted output side, in pixels.
pub const MAX_OUTPUT_SIZE_PX: usize = 8_192;
/// Largest accepted output patch or crop row buffer, in bytes (256 MiB).
pub const MAX_BUFFER_BYTES: usize = 256 * 1024 * 1024;

/// OpenCV's `INTER_RESIZE_COEF_BITS` = 11: bilinear weights are integers summing to ~2048.
const RESIZE_COEF_SCALE: f32 = 2048.0;

/// Errors of the crop / resize / normalise step.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("box {} must be finite with positive width and height", box_text(box_xywh))]
    InvalidBox { box_xywh: [f64; 4] },
    #[error("box {} lies too far outside any image", box_text(box_xywh))]
    BoxOutOfRange { box_xywh: [f64; 4] },
    #[error("crop factor {0} must be finite and positive")]
    InvalidFactor(f64),
    #[error("crop of {crop_size_px} px exceeds the {MAX_CROP_SIZE_PX} px limit")]
    CropTooLarge { crop_size_px: f64 },
    #[error("output size {width}x{height} must be between 1 and {MAX_OUTPUT_SIZE_PX} px")]
    InvalidOutputSize { width: usize, height: usize },
    #[error("{what} of {bytes} bytes exceeds the {MAX_BUFFER_BYTES} byte limit")]
    TooManyBytes { what: &'static str, bytes: u128 },
    #[error("image buffer of {len} bytes does not match its {width}x{height}x{channels} header (or it is empty)")]
    InconsistentImage { width: usize, height: usize, channels: usize, len: usize },
    #[error("cannot build the input tensor: {0}")]
    Torch(tch::TchError),
}

impl From<tch::TchError> for PreprocessError {
    fn from(e: tch::TchError) -> Self {
        PreprocessError::Torch(e)
    }
}

/// `x,y,w,h` for messages.
fn box_text(b: &[f64; 4]) -> String {
    format!("{},{},{},{}", b[0], b[1], b[2], b[3])
}

fn check_image(im: &ImageU8) -> Result<(), PreprocessError> {
    if im.is_consistent() && im.width > 0 && im.height > 0 {
        Ok(())
    } else {
        Err(PreprocessError::InconsistentImage {
            width: im.width,
            height: im.height,
            channels: im.channels,
            len: im.data.len(),
        })
    }
}

fn check_output_size(width: usize, height: usize, channels: usize) -> Result<(), PreprocessError> {
    if !((1..=MAX_OUTPUT_SIZE_PX).contains(&width) && (1..=MAX_OUTPUT_SIZE_PX).contains(&height)) {
        return Err(PreprocessError::InvalidOutputSize { width, height });
    }
    check_bytes("output patch", [width, height, channels])
}

/// Product of the factors, refused over [`MAX_BUFFER_BYTES`].
fn check_bytes(what: &'static str, factors: [usize; 3]) -> Result<(), PreprocessError> {
    let bytes = factors.iter().map(|&f| f as u128).product::<u128>();
    if bytes > MAX_BUFFER_BYTES as u128 {
        return Err(PreprocessError::TooManyBytes { what, bytes });
    }
    Ok(())
}

/// Where the square crop lies in the frame, as `sample_target` computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropWindow {
    /// Crop side in frame pixels: `ceil(sqrt(w * h) * factor)`.
    pub crop_size_px: usize,
    /// Top-left corner of the crop in frame pixels (may be negative).
    pub x1_px: i64,
    pub y1_px: i64,
    /// Zero padding on each side, in crop pixels. Right/bottom include the reference's "+1": the
    /// last frame column/row is never copied but padded when the crop reaches the border.
    pub pad_left_px: usize,
    pub pad_right_px: usize,
    pub pad_top_px: usize,
    pub pad_bottom_px: usize,
}

/// A resized crop and how it maps back to the frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Crop {
    /// `out x out x channels` pixels.
    pub patch: ImageU8,
    /// `out / crop_size` (patch pixels per frame pixel), as the reference computes it.
    pub resize_factor: f64,
    /// Crop side in frame pixels.
    pub crop_size: usize,
    /// Placement of the crop in the frame.
    pub window: CropWindow,
}

/// Computes the crop window of `sample_target` for a box `[x, y, w, h]` (frame pixels) in an
/// image of `image_width` x `image_height` pixels.
pub fn crop_window(
    box_xywh: [f64; 4],
    factor: f64,
    image_width: usize,
    image_height: usize,
) -> Result<CropWindow, PreprocessError> {
    let [x, y, w, h] = box_xywh;
    if !(x.is_finite() && y.is_finite() && w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) {
        return Err(PreprocessError::InvalidBox { box_xywh });
    }
    if !(factor.is_finite() && factor > 0.0) {
        return Err(PreprocessError::InvalidFactor(factor));
    }
    let crop_size_f = ((w * h).sqrt() * factor).ceil();
    if crop_size_f < 1.0 {
        // The reference raises "Too small bounding box." here (w * h underflowed to 0).
        return Err(PreprocessError::InvalidBox { box_xywh });
    }
    if crop_size_f > MAX_CROP_SIZE_PX as f64 {
        return Err(PreprocessError::CropTooLarge { crop_size_px: crop_size_f });
    }
    // Python evaluates `round(x + 0.5 * w - crop_sz * 0.5)` left to right, round half to even.
    let x1_f = (x + 0.5 * w - crop_size_f * 0.5).round_ties_even();
    let y1_f = (y + 0.5 * h - crop_size_f * 0.5).round_ties_even();
    // Keeps all later integer arithmetic far from overflow.
    const COORD_LIMIT: f64 = (1u64 << 40) as f64;
    if x1_f.abs() > COORD_LIMIT || y1_f.abs() > COORD_LIMIT {
        return Err(PreprocessError::BoxOutOfRange { box_xywh });
    }
    let crop_size_px = crop_size_f as usize;
    let (x1_px, y1_px) = (x1_f as i64, y1_f as i64);
    let crop = crop_size_px as i64;
    let pad = |v: i64| v.max(0) as usize;
    Ok(CropWindow {
        crop_size_px,
        x1_px,
        y1_px,
        pad_left_px: pad(-x1_px),
        pad_right_px: pad(x1_px + crop - image_width as i64 + 1),
        pad_top_px: pad(-y1_px),
        pad_bottom_px: pad(y1_px + crop - image_height as i64 + 1),
    })
}

/// A frame seen through a window that may stick out of it: `(vx, vy)` in view coordinates is
/// frame pixel `(vx + x0, vy + y0)` when it lies in the copied window, and zero otherwise.
struct PaddedView<'a> {
    image: &'a ImageU8,
    x0: i64,
    y0: i64,
    width: usize,
    height: usize,
    /// View-coordinate half-open ranges that map to copied frame pixels.
    valid_x: std::ops::Range<usize>,
    valid_y: std::ops::Range<usize>,
}

impl<'a> PaddedView<'a> {
    fn whole(image: &'a ImageU8) -> Self {
        Self {
            image,
            x0: 0,
            y0: 0,
            width: image.width,
            height: image.height,
            valid_x: 0..image.width,
            valid_y: 0..image.height,
        }
    }

    /// The crop of `sample_target`. The copied frame window is
    /// `[max(x1, 0), min(x2, W - 1))`: the reference's "+1" pad excludes the last column.
    /// Where the reference's slicing would misbehave (a crop entirely outside the frame gives
    /// negative slice ends in numpy), this view simply reads zeros.
    fn crop(image: &'a ImageU8, window: &CropWindow) -> Self {
        let crop = window.crop_size_px as i64;
        let valid = |start_px: i64, size: usize| -> std::ops::Range<usize> {
            let lo = start_px.max(0);
            let hi = (start_px + crop).min(size as i64 - 1);
            if hi <= lo {
                0..0
            } else {
                (lo - start_px) as usize..(hi - start_px) as usize
            }
        };
        Self {
            image,
            x0: window.x1_px,
            y0: window.y1_px,
            width: window.crop_size_px,
            height: window.crop_size_px,
            valid_x: valid(window.x1_px, image.width),
            valid_y: valid(window.y1_px, image.height),
        }
    }

    /// Bytes in one view row.
    fn row_bytes(&self) -> usize {
        self.width * self.image.channels
    }

    /// Writes view row `vy` into `buf` (`row_bytes()` long): the copied frame pixels, zeros in
    /// the padding.
    fn fill_row(&self, vy: usize, buf: &mut [u8]) {
        let channels = self.image.channels;
        let stride = self.image.width * channels;
        let y = vy as i64 + self.y0;
        let source = if self.valid_y.contains(&vy) && !self.valid_x.is_empty() {
            let x = (self.valid_x.start as i64 + self.x0) as usize;
            let start = y as usize * stride + x * channels;
            self.image.data.get(start..start + self.valid_x.len() * channels)
        } else {
            None
        };
        match source {
            Some(pixels) => {
                let (left, rest) = buf.split_at_mut(self.valid_x.start * channels);
                let (middle, right) = rest.split_at_mut(pixels.len());
                left.fill(0);
                middle.copy_from_slice(pixels);
                right.fill(0);
            }
            None => buf.fill(0),
        }
    }
}

/// Crops the box's neighbourhood and resizes it to `out x out`, exactly as the reference
/// `sample_target(frame, box, factor, out)` does with `cv2.resize` (any channel count).
pub fn sample_target(frame: &ImageU8, box_xywh: [f64; 4], factor: f64, out: usize) -> Result<Crop, PreprocessError> {
    check_image(frame)?;
    check_output_size(out, out, frame.channels)?;
    let window = crop_window(box_xywh, factor, frame.width, frame.height)?;
    // The resize keeps up to three crop rows in memory.
    check_bytes("crop row buffers", [window.crop_size_px, frame.channels, 3])?;
    let view = PaddedView::crop(frame, &window);
    let patch = resize_view(&view, out, out);
    Ok(Crop { patch, resize_factor: out as f64 / window.crop_size_px as f64, crop_size: window.crop_size_px, window })
}

/// `cv2.resize(src, (out_width, out_height))` with the default `INTER_LINEAR` on uint8, bit-exact
/// (including OpenCV's silent switch to `INTER_AREA` for an exact 2x downscale and the plain
/// copy at equal size), for any channel count.
pub fn resize_u8(src: &ImageU8, out_width: usize, out_height: usize) -> Result<ImageU8, PreprocessError> {
    check_image(src)?;
    check_output_size(out_width, out_height, src.channels)?;
    Ok(resize_view(&PaddedView::whole(src), out_width, out_height))
}

fn resize_view(view: &PaddedView<'_>, out_width: usize, out_height: usize) -> ImageU8 {
    let channels = view.image.channels;
    let mut out = ImageU8::zeros(out_width, out_height, channels);
    if view.width == out_width && view.height == out_height {
        copy_view(view, &mut out);
    } else if view.width == 2 * out_width && view.height == 2 * out_height {
        area_half(view, &mut out);
    } else {
        linear(view, &mut out);
    }
    out
}

fn copy_view(view: &PaddedView<'_>, out: &mut ImageU8) {
    let row_bytes = view.row_bytes();
    for (vy, out_row) in out.data.chunks_exact_mut(row_bytes).enumerate() {
        view.fill_row(vy, out_row);
    }
}

/// OpenCV's `resizeAreaFast` for a 2x2 block average. For 1, 3 and 4 channels its vector path
/// rounds half up (`(sum + 2) >> 2`); for other counts its generic path computes
/// `saturate_cast<uchar>(sum * 0.25f)`, i.e. round half to even. So a 6-channel crop must not be
/// split into two 3-channel resizes here.
fn area_half(view: &PaddedView<'_>, out: &mut ImageU8) {
    let channels = out.channels;
    let half_up = matches!(channels, 1 | 3 | 4);
    let mut top = vec![0u8; view.row_bytes()];
    let mut bottom = vec![0u8; view.row_bytes()];
    for (dy, out_row) in out.data.chunks_exact_mut(out.width * channels).enumerate() {
        view.fill_row(2 * dy, &mut top);
        view.fill_row(2 * dy + 1, &mut bottom);
        let blocks = top.chunks_exact(2 * channels).zip(bottom.chunks_exact(2 * channels));
        for (out_px, (t, b)) in out_row.chunks_exact_mut(channels).zip(blocks) {
            let (t0, t1) = t.split_at(channels);
            let (b0, b1) = b.split_at(channels);
            for (c, o) in out_px.iter_mut().enumerate() {
                let sum = u32::from(t0[c]) + u32::from(t1[c]) + u32::from(b0[c]) + u32::from(b1[c]);
                let (quotient, remainder) = (sum >> 2, sum & 3);
                let round_up =
                    if half_up { remainder >= 2 } else { remainder > 2 || (remainder == 2 && quotient & 1 == 1) };
                *o = (quotient + u32::from(round_up)).min(255) as u8;
            }
        }
    }
}

/// One output index of OpenCV's linear resize: two source indices and 11-bit weights.
#[derive(Clone, Copy, Debug)]
struct Tap {
    src0: usize,
    src1: usize,
    weight0: i32,
    weight1: i32,
}

/// The fractional source position of output index `d`, as OpenCV computes it: the position in
/// double, rounded to float, then `floor` and the remainder in float.
fn source_position(d: usize, scale: f64) -> (i64, f32) {
    let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
    let s = f.floor();
    (s as i64, f - s)
}

fn weights(f: f32) -> (i32, i32) {
    // Both products are exact (power-of-two scale); the round matches cvRound (half to even).
    (((1.0 - f) * RESIZE_COEF_SCALE).round_ties_even() as i32, (f * RESIZE_COEF_SCALE).round_ties_even() as i32)
}

/// Horizontal taps: a tap outside the source collapses onto the edge pixel with weights (2048, 0).
fn horizontal_taps(in_size: usize, out_size: usize) -> Vec<Tap> {
    let scale = 1.0 / (out_size as f64 / in_size as f64);
    let last = in_size as i64 - 1;
    (0..out_size)
        .map(|d| {
            let (mut s, mut f) = source_position(d, scale);
            if s < 0 {
                (s, f) = (0, 0.0);
            }
            if s >= last {
                (s, f) = (last, 0.0);
            }
            let (weight0, weight1) = weights(f);
            let src0 = s as usize;
            Tap { src0, src1: (src0 + 1).min(last as usize), weight0, weight1 }
        })
        .collect()
}

/// Vertical taps: the two source rows are clamped to the image but keep their weights.
fn vertical_taps(in_size: usize, out_size: usize) -> Vec<Tap> {
    let scale = 1.0 / (out_size as f64 / in_size as f64);
    let last = in_size as i64 - 1;
    (0..out_size)
        .map(|d| {
            let (s, f) = source_position(d, scale);
            let (weight0, weight1) = weights(f);
            Tap { src0: s.clamp(0, last) as usize, src1: (s + 1).clamp(0, last) as usize, weight0, weight1 }
        })
        .collect()
}

/// Horizontal pass of one source row: `w0 * p[s0] + w1 * p[s1]` per output pixel and channel.
fn reduce_row<const C: usize>(source: &[u8], taps: &[(usize, usize, i32, i32)], reduced: &mut [i32]) {
    for (&(o0, o1, w0, w1), out_px) in taps.iter().zip(reduced.chunks_exact_mut(C)) {
        let (Some(p0), Some(p1)) = (source.get(o0..o0 + C), source.get(o1..o1 + C)) else {
            continue;
        };
        for c in 0..C {
            out_px[c] = w0 * i32::from(p0[c]) + w1 * i32::from(p1[c]);
        }
    }
}

fn reduce_row_any(source: &[u8], taps: &[(usize, usize, i32, i32)], reduced: &mut [i32], channels: usize) {
    for (&(o0, o1, w0, w1), out_px) in taps.iter().zip(reduced.chunks_exact_mut(channels)) {
        let (Some(p0), Some(p1)) = (source.get(o0..o0 + channels), source.get(o1..o1 + channels)) else {
            continue;
        };
        for ((h, &a), &b) in out_px.iter_mut().zip(p0).zip(p1) {
            *h = w0 * i32::from(a) + w1 * i32::from(b);
        }
    }
}

/// OpenCV's uint8 `INTER_LINEAR`: each source row is reduced horizontally to int32
/// (`w0 * p0 + w1 * p1`), then two rows combine as in its SIMD vertical pass
/// `((w0 * (h0 >> 4)) >> 16) + ((w1 * (h1 >> 4)) >> 16)`, `(+ 2) >> 2`, saturated.
fn linear(view: &PaddedView<'_>, out: &mut ImageU8) {
    let channels = out.channels;
    let row_len = out.width * channels;
    // Byte offsets of the two horizontal taps in a source row, with their weights.
    let htaps: Vec<(usize, usize, i32, i32)> = horizontal_taps(view.width, out.width)
        .into_iter()
        .map(|t| (t.src0 * channels, t.src1 * channels, t.weight0, t.weight1))
        .collect();
    let vtaps = vertical_taps(view.height, out.height);
    let mut source = vec![0u8; view.row_bytes()];

    let mut horizontal = |vy: usize, reduced: &mut [i32]| {
        view.fill_row(vy, &mut source);
        // Fixed channel counts let the compiler unroll the per-pixel loop.
        match channels {
            1 => reduce_row::<1>(&source, &htaps, reduced),
            3 => reduce_row::<3>(&source, &htaps, reduced),
            4 => reduce_row::<4>(&source, &htaps, reduced),
            6 => reduce_row::<6>(&source, &htaps, reduced),
            _ => reduce_row_any(&source, &htaps, reduced, channels),
        }
    };

    // Consecutive output rows mostly share source rows; keep the last two reduced rows.
    let mut cached: [Option<usize>; 2] = [None, None];
    let mut rows = [vec![0i32; row_len], vec![0i32; row_len]];
    for (tap, out_row) in vtaps.iter().zip(out.data.chunks_exact_mut(row_len)) {
        let i0 = match cached.iter().position(|&r| r == Some(tap.src0)) {
            Some(i) => i,
            None => {
                let i = usize::from(cached[0] == Some(tap.src1));
                horizontal(tap.src0, &mut rows[i]);
                cached[i] = Some(tap.src0);
                i
            }
        };
        let i1 = match cached.iter().position(|&r| r == Some(tap.src1)) {
            Some(i) => i,
            None => {
                let i = 1 - i0;
                horizontal(tap.src1, &mut rows[i]);
                cached[i] = Some(tap.src1);
                i
            }
        };
        let (b0, b1) = (tap.weight0, tap.weight1);
        for ((o, &h0), &h1) in out_row.iter_mut().zip(&rows[i0]).zip(&rows[i1]) {
            let v = ((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16);
            *o = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
    }
}

/// `((p / 255) - mean_c) / std_c` in float32, in that order (bit-exact with the reference), laid
/// out CHW. Channel c uses the ImageNet statistics of channel `c % 3`, so both 3-channel groups of
/// a 6-channel patch share them.
pub fn normalize(patch: &ImageU8) -> Result<Vec<f32>, PreprocessError> {
    let mut out = Vec::new();
    normalize_into(patch, &mut out)?;
    Ok(out)
}

/// [`normalize`] into a reusable buffer (resized to `channels * height * width`).
pub fn normalize_into(patch: &ImageU8, out: &mut Vec<f32>) -> Result<(), PreprocessError> {
    check_image(patch)?;
    let channels = patch.channels;
    let plane = patch.width * patch.height;
    // The result depends only on the byte value and the channel's statistics, so a 256-entry
    // table per RGB channel computed with the exact formula gives identical values, faster.
    let tables: [[f32; 256]; 3] = std::array::from_fn(normalization_table);
    out.clear();
    out.resize(plane * channels, 0.0);
    for (c, out_plane) in out.chunks_exact_mut(plane).enumerate() {
        let table = &tables[c % 3];
        for (o, px) in out_plane.iter_mut().zip(patch.data.chunks_exact(channels)) {
            *o = table[usize::from(px[c])];
        }
    }
    Ok(())
}

/// The normalised patch as a `(1, C, H, W)` float32 CPU tensor.
pub fn normalize_to_tensor(patch: &ImageU8) -> Result<tch::Tensor, PreprocessError> {
    let values = normalize(patch)?;
    let shape = [1, patch.channels as i64, patch.height as i64, patch.width as i64];
    Ok(tch::Tensor::f_from_slice(&values)?.f_view(shape)?)
}

/// The normalised value of each byte value in RGB channel `c` (0-2).
fn normalization_table(c: usize) -> [f32; 256] {
    std::array::from_fn(|p| (p as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
}

/// [`normalize_to_tensor`] on `device`. Off the CPU the bytes are uploaded (a quarter of the
/// floats' size) and looked up there in the same per-channel table, so the values are identical.
pub fn normalize_on(patch: &ImageU8, device: tch::Device) -> Result<tch::Tensor, PreprocessError> {
    if device == tch::Device::Cpu {
        normalize_to_tensor(patch)
    } else {
        normalize_by_lookup(patch, device)
    }
}

fn normalize_by_lookup(patch: &ImageU8, device: tch::Device) -> Result<tch::Tensor, PreprocessError> {
    use tch::{Kind, Tensor};
    check_image(patch)?;
    let c = patch.channels as i64;
    let table: Vec<f32> = (0..patch.channels).flat_map(|ch| normalization_table(ch % 3)).collect();
    let table = Tensor::f_from_slice(&table)?.f_to_device(device)?;
    let offsets = Tensor::f_arange_start_step(0, c * 256, 256, (Kind::Int64, device))?;
    let bytes = Tensor::f_from_slice(&patch.data)?.f_to_device(device)?;
    let index = bytes.f_view([patch.height as i64, patch.width as i64, c])?.f_to_kind(Kind::Int64)? + offsets;
    Ok(table.f_take(&index)?.f_permute([2, 0, 1])?.f_unsqueeze(0)?.f_contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_normalisation_is_identical_to_the_table_path() {
        for channels in [3, 6] {
            let patch = ramp(37, 23, channels);
            let a = normalize_to_tensor(&patch).unwrap();
            let b = normalize_by_lookup(&patch, tch::Device::Cpu).unwrap();
            assert_eq!(a.size(), b.size());
            assert!(a.equal(&b), "{channels} channels");
        }
    }

    fn ramp(width: usize, height: usize, channels: usize) -> ImageU8 {
        let data = (0..width * height * channels).map(|i| (i * 7 % 251) as u8).collect();
        ImageU8 { width, height, channels, data }
    }

    #[test]
    fn crop_geometry_matches_reference_cases() {
        // Values from preprocess.json: middle_search, br_touch_template, tie_neg_template.
        let w = crop_window([140.0, 100.0, 40.0, 30.0], 4.0, 320, 240).unwrap();
        assert_eq!((w.crop_size_px, w.x1_px, w.y1_px), (139, 90, 46));
        let w = crop_window([272.0, 192.0, 32.0, 32.0], 2.0, 320, 240).unwrap();
        assert_eq!((w.crop_size_px, w.pad_right_px, w.pad_bottom_px), (64, 1, 1));
        let w = crop_window([18.0, 13.5, 30.0, 41.0], 2.0, 320, 240).unwrap();
        assert_eq!((w.x1_px, w.y1_px, w.pad_left_px, w.pad_top_px), (-2, -2, 2, 2));
    }

    #[test]
    fn invalid_boxes_are_rejected() {
        let frame = ramp(10, 10, 6);
        for b in
            [[0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 5.0, -1.0], [f64::NAN, 0.0, 5.0, 5.0], [0.0, 0.0, f64::INFINITY, 5.0]]
        {
            assert!(matches!(sample_target(&frame, b, 2.0, 16), Err(PreprocessError::InvalidBox { .. })), "{b:?}");
        }
        assert!(matches!(
            sample_target(&frame, [1e300, 0.0, 5.0, 5.0], 2.0, 16),
            Err(PreprocessError::BoxOutOfRange { .. })
        ));
        assert!(matches!(
            sample_target(&frame, [0.0, 0.0, 1e-200, 1e-200], 4.0, 16),
            Err(PreprocessError::InvalidBox { .. })
        ));
        assert!(matches!(
            sample_target(&frame, [0.0, 0.0, 1e6, 1e6], 4.0, 16),
            Err(PreprocessError::CropTooLarge { .. })
        ));
        assert!(matches!(sample_target(&frame, [0.0, 0.0, 5.0, 5.0], 0.0, 16), Err(PreprocessError::InvalidFactor(_))));
        assert!(sample_target(&frame, [0.0, 0.0, 5.0, 5.0], 2.0, 0).is_err());
        let wide = ImageU8::zeros(1, 1, 1 << 23);
        assert!(matches!(
            sample_target(&wide, [0.0, 0.0, 5.0, 5.0], 4.0, 8),
            Err(PreprocessError::TooManyBytes { .. })
        ));
        assert!(matches!(resize_u8(&wide, 20, 20), Err(PreprocessError::TooManyBytes { .. })));
        let broken = ImageU8 { width: 4, height: 4, channels: 3, data: vec![0; 7] };
        assert!(matches!(
            sample_target(&broken, [0.0, 0.0, 2.0, 2.0], 2.0, 8),
            Err(PreprocessError::InconsistentImage { .. })
        ));
    }

    #[test]
    fn crop_outside_the_frame_is_all_zero() {
        let frame = ramp(20, 10, 3);
        let crop = sample_target(&frame, [-100.0, -100.0, 4.0, 4.0], 2.0, 8).unwrap();
        assert!(crop.patch.data.iter().all(|&v| v == 0));
    }

    #[test]
    fn equal_size_is_a_copy_and_keeps_the_plus_one_pad() {
        // Box centred so that the 8 px crop covers columns/rows 12..20 of a 20x20 frame: the
        // last frame column and row (19) are replaced by zeros.
        let frame = ramp(20, 20, 2);
        let crop = sample_target(&frame, [14.0, 14.0, 4.0, 4.0], 2.0, 8).unwrap();
        assert_eq!((crop.window.x1_px, crop.window.pad_right_px), (12, 1));
        for y in 0..8 {
            for x in 0..8 {
                let expected: &[u8] = if x < 7 && y < 7 { frame.pixel(12 + x, 12 + y) } else { &[0, 0] };
                assert_eq!(crop.patch.pixel(x, y), expected, "at ({x},{y})");
            }
        }
    }

    #[test]
    fn area_rounding_depends_on_channel_count() {
        // Block sums of 2 and 6 (quotient 0 / 1, remainder 2): half-up gives 1 and 2, half-even 0 and 2.
        // Two 2x2 blocks side by side: rows [1 1 3 3] and [0 0 0 0], every channel alike.
        for (channels, expected) in [(1usize, [1u8, 2]), (2, [0, 2]), (3, [1, 2]), (6, [0, 2])] {
            let data: Vec<u8> =
                [1u8, 1, 3, 3, 0, 0, 0, 0].iter().flat_map(|&v| std::iter::repeat_n(v, channels)).collect();
            let src = ImageU8 { width: 4, height: 2, channels, data };
            let out = resize_u8(&src, 2, 1).unwrap();
            for (got, want) in out.data.chunks_exact(channels).zip(expected) {
                assert!(got.iter().all(|&v| v == want), "channels {channels}: {got:?} vs {want}");
            }
        }
    }

    #[test]
    fn linear_upscale_of_a_constant_is_constant() {
        let src = ImageU8 { width: 3, height: 5, channels: 6, data: vec![201; 3 * 5 * 6] };
        let out = resize_u8(&src, 17, 11).unwrap();
        assert!(out.data.iter().all(|&v| v == 201));
    }

    #[test]
    fn normalisation_formula() {
        let patch = ImageU8 { width: 1, height: 1, channels: 6, data: vec![0, 255, 128, 0, 255, 128] };
        let v = normalize(&patch).unwrap();
        assert_eq!(v[0], (0.0f32 / 255.0 - 0.485) / 0.229);
        assert_eq!(v[4], (255.0f32 / 255.0 - 0.456) / 0.224);
        assert_eq!(v[0], v[3]);
        assert_eq!(v[2], v[5]);
    }
}
