//! Preprocessing against the official PATrack goldens (tests/data/preprocess.*, copied from the
//! shared golden set; see its README §4): the 22 `sample_target` crops, the RGB-D depth
//! colormap path and the normalised network inputs must all match bit for bit.

use patrack::sensor::modality::{apply_jet_bgr, depth_clip_mm, normalize_minmax_u8, JET_LUT_BGR};
use patrack::sensor::{
    assemble_frame, prepare_aux, prepare_frame, AuxConfig, DecodedImage, ImageU8, Modality, MonoImage,
};
use patrack::tracker::preprocess::{normalize, normalize_to_tensor, sample_target};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/preprocess.safetensors");
const GOLDEN_JSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/preprocess.json");

struct Golden {
    bytes: Vec<u8>,
}

impl Golden {
    fn load() -> Self {
        Self { bytes: std::fs::read(GOLDEN).expect("read tests/data/preprocess.safetensors") }
    }

    fn view(&self, name: &str) -> (Dtype, Vec<usize>, &[u8]) {
        let st = SafeTensors::deserialize(&self.bytes).expect("parse safetensors");
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        (t.dtype(), t.shape().to_vec(), t.data())
    }

    fn u8(&self, name: &str) -> (Vec<usize>, Vec<u8>) {
        let (dtype, shape, data) = self.view(name);
        assert_eq!(dtype, Dtype::U8, "{name}");
        (shape, data.to_vec())
    }

    fn i32(&self, name: &str) -> (Vec<usize>, Vec<i32>) {
        let (dtype, shape, data) = self.view(name);
        assert_eq!(dtype, Dtype::I32, "{name}");
        (shape, data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn f32(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let (dtype, shape, data) = self.view(name);
        assert_eq!(dtype, Dtype::F32, "{name}");
        (shape, data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn f64_scalar(&self, name: &str) -> f64 {
        let (dtype, shape, data) = self.view(name);
        assert_eq!((dtype, shape.len()), (Dtype::F64, 0), "{name}");
        f64::from_le_bytes(data.try_into().expect("8 bytes"))
    }

    fn image(&self, name: &str) -> ImageU8 {
        let (shape, data) = self.u8(name);
        let channels = if shape.len() == 3 { shape[2] } else { 1 };
        ImageU8::from_vec(shape[1], shape[0], channels, data).expect("consistent image")
    }
}

#[derive(Deserialize)]
struct CropCase {
    case: String,
    box_xywh: [f64; 4],
    factor: f64,
    output_size: usize,
    crop_size: usize,
    x1: i64,
    y1: i64,
    x1_pad: usize,
    x2_pad: usize,
    y1_pad: usize,
    y2_pad: usize,
    /// Python's repr of the factor: parsed with `str::parse`, which rounds correctly (serde_json's
    /// default float parser can be off by one ulp).
    resize_factor_repr: String,
}

#[derive(Deserialize)]
struct DepthFacts {
    median_including_zeros: f64,
    max_depth_float: f64,
    max_depth_after_uint16_assignment: u16,
}

#[derive(Deserialize)]
struct GoldenJson {
    crops: Vec<CropCase>,
    depth: DepthFacts,
}

fn golden_json() -> GoldenJson {
    let text = std::fs::read_to_string(GOLDEN_JSON).expect("read tests/data/preprocess.json");
    serde_json::from_str(&text).expect("parse preprocess.json")
}

/// Largest absolute difference and number of differing elements.
fn diff_u8(a: &[u8], b: &[u8]) -> (u8, usize) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0, 0), |(m, n), (&x, &y)| (m.max(x.abs_diff(y)), n + usize::from(x != y)))
}

/// The 6-channel frame `[R, G, B, a0, a1, a2]`, built through the sensor API.
fn scene_frame(golden: &Golden) -> ImageU8 {
    let rgb = golden.image("scene.rgb");
    let aux = golden.image("scene.aux");
    prepare_frame(&rgb, DecodedImage::Rgb8(aux), Modality::Thermal, &AuxConfig::default()).expect("frame")
}

#[test]
fn all_22_crops_match_the_reference() {
    let golden = Golden::load();
    let cases = golden_json().crops;
    assert_eq!(cases.len(), 22);
    let frame = scene_frame(&golden);
    assert_eq!((frame.width, frame.height, frame.channels), (320, 240, 6));
    for case in &cases {
        let crop = sample_target(&frame, case.box_xywh, case.factor, case.output_size).expect("crop");
        let w = crop.window;
        assert_eq!(
            (crop.crop_size, w.x1_px, w.y1_px, w.pad_left_px, w.pad_right_px, w.pad_top_px, w.pad_bottom_px),
            (case.crop_size, case.x1, case.y1, case.x1_pad, case.x2_pad, case.y1_pad, case.y2_pad),
            "{}: crop geometry",
            case.case
        );
        let golden_factor = golden.f64_scalar(&format!("crop.{}.resize_factor", case.case));
        assert_eq!(crop.resize_factor.to_bits(), golden_factor.to_bits(), "{}: resize_factor", case.case);
        let json_factor: f64 = case.resize_factor_repr.parse().expect("float repr");
        assert_eq!(crop.resize_factor.to_bits(), json_factor.to_bits(), "{}: resize_factor (json)", case.case);

        let expected = golden.image(&format!("crop.{}.patch", case.case));
        assert_eq!((crop.patch.width, crop.patch.height, crop.patch.channels), (expected.width, expected.height, 6));
        let (max_diff, count) = diff_u8(&crop.patch.data, &expected.data);
        println!(
            "{:<20} crop {:>3} -> {:>3}: max |diff| = {max_diff} grey levels over {count} bytes (tolerance 0)",
            case.case, case.crop_size, case.output_size
        );
        assert_eq!(count, 0, "{}: patch differs", case.case);
    }
}

#[test]
fn depth_colormap_path_is_bit_exact() {
    let golden = Golden::load();
    let facts = golden_json().depth;
    let (shape, input) = golden.i32("depth.input");
    let depth_mm: Vec<u16> = input.iter().map(|&v| u16::try_from(v).expect("uint16 depth")).collect();

    let mut clipped = depth_mm.clone();
    let clip = depth_clip_mm(&mut clipped);
    assert_eq!(clip.median_mm, facts.median_including_zeros);
    assert_eq!(clip.max_depth_mm, facts.max_depth_float);
    assert_eq!(clip.clip_value_mm, facts.max_depth_after_uint16_assignment);
    let (_, golden_clipped) = golden.i32("depth.clipped");
    let clipped_diff = clipped.iter().zip(&golden_clipped).filter(|(&a, &b)| i32::from(a) != b).count();
    println!("depth.clipped: {clipped_diff} differing pixels (tolerance 0)");
    assert_eq!(clipped_diff, 0);

    let normalized = normalize_minmax_u8(&clipped);
    let (_, golden_normalized) = golden.u8("depth.normalized_u8");
    let (max_diff, count) = diff_u8(&normalized, &golden_normalized);
    println!("depth.normalized_u8: max |diff| = {max_diff} over {count} pixels (tolerance 0)");
    assert_eq!(count, 0);

    let (_, lut) = golden.u8("depth.jet_lut_bgr");
    assert_eq!(JET_LUT_BGR.iter().flatten().copied().collect::<Vec<u8>>(), lut);
    let golden_colormap = golden.image("depth.colormap_bgr");
    let (max_diff, count) = diff_u8(&apply_jet_bgr(&normalized), &golden_colormap.data);
    println!("depth.colormap_bgr (steps): max |diff| = {max_diff} over {count} bytes (tolerance 0)");
    assert_eq!(count, 0);

    // The same through the public modality API, from millimetres (16UC1) and from metres (32FC1).
    let (height, width) = (shape[0], shape[1]);
    let mm = MonoImage { width, height, data: depth_mm.clone() };
    let from_mm = prepare_aux(DecodedImage::Mono16(mm), Modality::Depth, &AuxConfig::default()).expect("depth aux");
    assert_eq!(from_mm, golden_colormap);
    let metres = MonoImage { width, height, data: depth_mm.iter().map(|&v| f32::from(v) / 1000.0).collect() };
    let from_m = prepare_aux(DecodedImage::Float32(metres), Modality::Depth, &AuxConfig::default()).expect("depth aux");
    let (max_diff, count) = diff_u8(&from_m.data, &golden_colormap.data);
    println!("depth.colormap_bgr from 32FC1 metres: max |diff| = {max_diff} over {count} bytes (tolerance 0)");
    assert_eq!(count, 0);

    // RGB-D frame: the colormap stays in B, G, R order in channels 3-5.
    let rgb = golden.image("scene.rgb");
    let frame = assemble_frame(&rgb, &from_mm, &AuxConfig::default()).expect("frame");
    let aux_part: Vec<u8> = frame.data.chunks_exact(6).flat_map(|p| [p[3], p[4], p[5]]).collect();
    assert_eq!(aux_part, golden_colormap.data);
}

#[test]
fn normalised_tensors_are_bit_exact() {
    let golden = Golden::load();
    for (patch_key, norm_key) in
        [("crop.middle_template.patch", "norm.template"), ("crop.middle_search.patch", "norm.search")]
    {
        let patch = golden.image(patch_key);
        let (shape, expected) = golden.f32(norm_key);
        assert_eq!(shape, vec![1, 6, patch.height, patch.width]);
        let got = normalize(&patch).expect("normalise");
        let max_diff = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let bit_mismatches = got.iter().zip(&expected).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        println!(
            "{norm_key}: max |diff| = {max_diff:e}, {bit_mismatches} values not bit-identical (tolerance: bit-exact)"
        );
        assert_eq!(bit_mismatches, 0);

        let tensor = normalize_to_tensor(&patch).expect("tensor");
        assert_eq!(tensor.size(), vec![1, 6, patch.height as i64, patch.width as i64]);
        let flat: Vec<f32> = Vec::<f32>::try_from(tensor.flatten(0, -1)).expect("tensor to vec");
        assert!(flat.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "{norm_key}: tensor differs");
    }
}

#[test]
fn crops_then_normalisation_reproduce_the_network_input() {
    // End to end: frame -> template crop -> normalised tensor equals norm.template.
    let golden = Golden::load();
    let frame = scene_frame(&golden);
    let crop = sample_target(&frame, [140.0, 100.0, 40.0, 30.0], 2.0, 128).expect("crop");
    let (_, expected) = golden.f32("norm.template");
    let got = normalize(&crop.patch).expect("normalise");
    let bit_mismatches = got.iter().zip(&expected).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    println!("frame -> norm.template: {bit_mismatches} values not bit-identical (tolerance: bit-exact)");
    assert_eq!(bit_mismatches, 0);
}

// ---------------------------------------------------------------------------------------------
// Wider OpenCV coverage (tests/data/cv2_reference.safetensors, written by
// tests/data/gen_sensor_fixtures.py with opencv-python-headless): odd sizes and channel counts,
// and the official `sample_target` on 40 random boxes around a small 6-channel image.

const CV2_REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cv2_reference.safetensors");

struct Cv2Reference {
    bytes: Vec<u8>,
}

impl Cv2Reference {
    fn load() -> Self {
        Self { bytes: std::fs::read(CV2_REFERENCE).expect("read tests/data/cv2_reference.safetensors") }
    }

    fn metadata_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> T {
        let (_, metadata) = SafeTensors::read_metadata(&self.bytes).expect("safetensors header");
        let text = metadata.metadata().as_ref().and_then(|m| m.get(key)).expect("metadata key").clone();
        serde_json::from_str(&text).expect("metadata json")
    }

    fn image(&self, name: &str) -> ImageU8 {
        let st = SafeTensors::deserialize(&self.bytes).expect("parse safetensors");
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), Dtype::U8);
        let shape = t.shape();
        ImageU8::from_vec(shape[1], shape[0], shape[2], t.data().to_vec()).expect("consistent image")
    }
}

#[test]
fn resize_matches_opencv_for_odd_sizes_and_channel_counts() {
    let reference = Cv2Reference::load();
    let cases: Vec<(usize, usize, usize, usize, usize)> = reference.metadata_json("resize_cases");
    assert!(cases.len() >= 10);
    for (i, &(channels, in_w, in_h, out_w, out_h)) in cases.iter().enumerate() {
        let src = reference.image(&format!("resize.{i}.src"));
        let expected = reference.image(&format!("resize.{i}.dst"));
        assert_eq!((src.width, src.height, src.channels), (in_w, in_h, channels));
        let got = patrack::tracker::preprocess::resize_u8(&src, out_w, out_h).expect("resize");
        let (max_diff, count) = diff_u8(&got.data, &expected.data);
        println!(
            "resize {channels}ch {in_w}x{in_h} -> {out_w}x{out_h}: max |diff| = {max_diff} over {count} bytes (tolerance 0)"
        );
        assert_eq!(count, 0, "case {i}");
    }
}

#[derive(Deserialize)]
struct RandomCrop {
    box_xywh: [f64; 4],
    factor: f64,
    output_size: usize,
    resize_factor: String,
}

#[test]
fn sample_target_matches_the_official_code_on_random_boxes() {
    let reference = Cv2Reference::load();
    let cases: Vec<RandomCrop> = reference.metadata_json("crop_cases");
    assert_eq!(cases.len(), 40);
    let scene = reference.image("crops.scene");
    let mut padded_cases = 0;
    for (i, case) in cases.iter().enumerate() {
        let crop = sample_target(&scene, case.box_xywh, case.factor, case.output_size).expect("crop");
        let w = crop.window;
        padded_cases += usize::from(w.pad_left_px + w.pad_right_px + w.pad_top_px + w.pad_bottom_px > 0);
        let expected_factor: f64 = case.resize_factor.parse().expect("float repr");
        assert_eq!(crop.resize_factor.to_bits(), expected_factor.to_bits(), "case {i}");
        let expected = reference.image(&format!("crops.{i}.patch"));
        let (max_diff, count) = diff_u8(&crop.patch.data, &expected.data);
        println!(
            "crop {i:>2} box {:?} x{} crop {:>3} -> {:>2}: max |diff| = {max_diff} over {count} bytes (tolerance 0)",
            case.box_xywh, case.factor, crop.crop_size, case.output_size
        );
        assert_eq!(count, 0, "case {i}");
    }
    assert!(padded_cases > 10, "the random boxes should exercise the padding ({padded_cases})");
}
