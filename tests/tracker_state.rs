//! The tracker's state machine, its input checks, the three modality pairs end to end, and the
//! GPU crop path (run on the CPU) against the OpenCV-exact crops.

mod common;

use common::load_golden;
use patrack::device::Precision;
use patrack::model::{ModelConfig, PATrack};
use patrack::sensor::{decode_image, prepare_frame, prepare_rgb, AuxConfig, ImageU8, Modality};
use patrack::tracker::preprocess::{normalize_to_tensor, sample_target};
use patrack::tracker::{gpu, BoxXywh, TargetState, TrackError, Tracker, TrackerConfig};
use tch::{Device, Tensor};

fn tiny_tracker(cfg: TrackerConfig) -> Tracker {
    let mut m = PATrack::new(ModelConfig::tiny(), Device::Cpu, Precision::Fp32).unwrap();
    m.fill_hashed();
    Tracker::new(m, cfg).unwrap()
}

/// A 6-channel frame: a bright square at (x, y) on a textured background.
fn scene(w: usize, h: usize, x: usize, y: usize) -> ImageU8 {
    let mut img = ImageU8::zeros(w, h, 6);
    for yy in 0..h {
        for xx in 0..w {
            let inside = (x..x + 20).contains(&xx) && (y..y + 16).contains(&yy);
            let bg = ((xx * 3 + yy * 5) % 64) as u8;
            let v = if inside { 230 } else { bg };
            let i = (yy * w + xx) * 6;
            img.data[i..i + 6].copy_from_slice(&[v, bg, 255 - v, v, v, v]);
        }
    }
    img
}

#[test]
fn bad_inputs_are_errors_and_leave_the_tracker_usable() {
    let mut t = tiny_tracker(TrackerConfig::default());
    let f = scene(160, 120, 60, 50);
    assert!(matches!(t.track(&f), Err(TrackError::NotInitialised)));
    for b in [
        BoxXywh::new(10.0, 10.0, 0.0, 5.0),
        BoxXywh::new(10.0, 10.0, 5.0, -1.0),
        BoxXywh::new(f64::NAN, 10.0, 5.0, 5.0),
        BoxXywh::new(500.0, 10.0, 5.0, 5.0),
        BoxXywh::new(-50.0, -50.0, 10.0, 10.0),
    ] {
        assert!(matches!(t.init(&f, b), Err(TrackError::BadBox(..))), "{b:?}");
        assert_eq!(t.state(), TargetState::Uninitialised);
    }
    let rgb_only = ImageU8::zeros(160, 120, 3);
    assert!(matches!(t.init(&rgb_only, BoxXywh::new(1.0, 1.0, 5.0, 5.0)), Err(TrackError::Channels(3))));
    t.init(&f, BoxXywh::new(60.0, 50.0, 20.0, 16.0)).unwrap();
    let r = t.track(&f).unwrap();
    assert_eq!(r.state, TargetState::Tracking);
    assert!(r.bbox.is_finite() && (0.0..=1.0).contains(&r.score));
}

#[test]
fn target_is_lost_after_consecutive_misses_and_recovers_on_init() {
    // Every score is below a threshold of 1.0, so every frame is a miss.
    let mut t = tiny_tracker(TrackerConfig { lost_threshold: 1.0, lost_frames: 3, ..Default::default() });
    let f = scene(160, 120, 60, 50);
    let init = BoxXywh::new(60.0, 50.0, 20.0, 16.0);
    t.init(&f, init).unwrap();
    let states: Vec<_> = (0..5).map(|_| t.track(&f).unwrap()).collect();
    assert_eq!(states[0].state, TargetState::Tracking);
    assert_eq!(states[1].state, TargetState::Tracking);
    assert_eq!(states[2].state, TargetState::Lost);
    // While lost the reported box is the last one before the loss, and scores stay low.
    assert_eq!(states[2].bbox, states[1].bbox);
    assert_eq!(states[4].bbox, states[1].bbox);
    assert!(states.iter().all(|r| r.score < 1.0));
    t.init(&f, init).unwrap();
    assert_eq!(t.state(), TargetState::Tracking);
    t.reset();
    assert_eq!(t.state(), TargetState::Uninitialised);
    assert!(matches!(t.track(&f), Err(TrackError::NotInitialised)));
}

#[test]
fn a_frame_size_change_reinitialises_on_the_scaled_box() {
    let mut t = tiny_tracker(TrackerConfig { lost_frames: 0, ..Default::default() });
    t.init(&scene(160, 120, 60, 50), BoxXywh::new(60.0, 50.0, 20.0, 16.0)).unwrap();
    let r = t.track(&scene(320, 240, 120, 100)).unwrap();
    assert_eq!(r.state, TargetState::Tracking);
    assert!(r.bbox.x + r.bbox.w <= 320.0 + 1e-9 && r.bbox.y + r.bbox.h <= 240.0 + 1e-9);
}

/// sensor_msgs/Image payloads for each modality pair, through the sensor path, into the tracker.
#[test]
fn three_modality_pairs_run_end_to_end() {
    let (w, h) = (160u32, 120u32);
    let rgb: Vec<u8> = (0..w * h).flat_map(|i| [(i % 251) as u8, (i % 13 * 19) as u8, 90]).collect();
    let rgb = prepare_rgb(decode_image("rgb8", w, h, w * 3, 0, &rgb).unwrap()).unwrap();
    let thermal: Vec<u8> = (0..w * h).flat_map(|i| (3000u16 + (i % 97) as u16 * 40).to_le_bytes()).collect();
    let depth: Vec<u8> = (0..w * h).flat_map(|i| (500u16 + (i % 89) as u16 * 30).to_le_bytes()).collect();
    let event: Vec<u8> = (0..w * h).map(|i| if i % 7 == 0 { 255 } else { 0 }).collect();
    let cases = [
        (Modality::Thermal, decode_image("mono16", w, h, w * 2, 0, &thermal).unwrap()),
        (Modality::Depth, decode_image("16UC1", w, h, w * 2, 0, &depth).unwrap()),
        (Modality::Event, decode_image("mono8", w, h, w, 0, &event).unwrap()),
    ];
    for (modality, aux) in cases {
        let frame = prepare_frame(&rgb, aux, modality, &AuxConfig::default()).unwrap();
        assert_eq!((frame.width, frame.height, frame.channels), (160, 120, 6));
        let mut t = tiny_tracker(TrackerConfig::default());
        t.init(&frame, BoxXywh::new(50.0, 40.0, 30.0, 24.0)).unwrap();
        for _ in 0..3 {
            let r = t.track(&frame).unwrap();
            let b = r.bbox;
            assert!(
                b.is_finite() && b.x >= 0.0 && b.y >= 0.0 && b.x + b.w <= 160.0 && b.y + b.h <= 120.0,
                "{modality:?} {b:?}"
            );
        }
    }
}

/// The GPU crop path (resize by bilinear interpolation) stays within one grey level of the
/// OpenCV-exact CPU path on the golden crops; run here on the CPU device.
#[test]
fn gpu_crop_path_is_within_one_grey_level_of_opencv() {
    let g = load_golden("preprocess.safetensors");
    let to_img = |t: &Tensor| {
        let s = t.size();
        ImageU8::from_vec(s[1] as usize, s[0] as usize, s[2] as usize, Vec::<u8>::try_from(&t.flatten(0, -1)).unwrap())
            .unwrap()
    };
    let frame = ImageU8::concat_channels(&to_img(&g["scene.rgb"]), &to_img(&g["scene.aux"])).unwrap();
    let one_level = 1.0 / (255.0 * 0.224) + 1e-5; // one grey level after normalising (smallest std)
    let boxes = [
        [140.0, 100.0, 40.0, 30.0],
        [272.0, 192.0, 32.0, 32.0],
        [300.0, 225.0, 40.0, 30.0],
        [-10.0, -6.0, 36.0, 28.0],
        [200.3, 50.7, 5.2, 6.1],
        [60.0, 40.0, 90.0, 20.0],
        [96.0, 56.0, 128.0, 128.0],
        [130.0, 90.0, 64.0, 64.0],
    ];
    for b in boxes {
        for (factor, out) in [(2.0, 128usize), (4.0, 256)] {
            let cpu = sample_target(&frame, b, factor, out).unwrap();
            let exact = normalize_to_tensor(&cpu.patch).unwrap();
            let bx = BoxXywh::new(b[0], b[1], b[2], b[3]);
            let (gpu_t, crop_size, rf) = gpu::crop_normalize(&frame, bx, factor, out, Device::Cpu).unwrap();
            assert_eq!((crop_size, rf), (cpu.crop_size, cpu.resize_factor));
            let d = common::max_abs_diff(&gpu_t, &exact);
            println!("box {b:?} factor {factor}: max diff {d:.4} (one grey level = {one_level:.4})");
            assert!(d <= one_level, "box {b:?} factor {factor}: {d}");
        }
    }
}

#[test]
fn a_tiny_frame_mid_stream_is_an_error_not_a_box() {
    // A 1x1 frame after a good one used to re-initialise on the scaled box and answer
    // (-9,-9,10,10) "tracking".
    let mut t = tiny_tracker(TrackerConfig::default());
    let f = scene(160, 120, 60, 50);
    t.init(&f, BoxXywh::new(60.0, 50.0, 20.0, 16.0)).unwrap();
    let tiny = ImageU8::zeros(1, 1, 6);
    let err = t.track(&tiny).unwrap_err();
    println!("{err}");
    assert!(matches!(err, TrackError::FrameTooSmall { width: 1, height: 1 }), "{err}");
    // The tracker carries on with the next good frame.
    assert_eq!(t.track(&f).unwrap().state, TargetState::Tracking);
    let err = t.init(&ImageU8::zeros(15, 200, 6), BoxXywh::new(1.0, 1.0, 5.0, 5.0)).unwrap_err();
    assert!(matches!(err, TrackError::FrameTooSmall { .. }), "{err}");
}

#[test]
fn lost_search_scale_is_bounded_and_messages_show_boxes_plainly() {
    let huge = TrackerConfig { lost_search_scale: 1e6, ..TrackerConfig::default() };
    let err = huge.validate().unwrap_err().to_string();
    println!("{err}");
    assert!(err.contains("lost_search_scale") && err.contains('4'), "{err}");
    assert!(TrackerConfig { lost_search_scale: 4.0, ..TrackerConfig::default() }.validate().is_ok());
    // No Debug output (`BoxXywh { x: NaN, .. }`) in the message.
    let mut t = tiny_tracker(TrackerConfig::default());
    let err = t.init(&scene(160, 120, 60, 50), BoxXywh::new(f64::NAN, 1.0, 5.0, 5.0)).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("NaN,1,5,5") && !err.to_string().contains("BoxXywh"), "{err}");
}
