//! ROS image payloads to tracker frames, through the public `sensor` API.
//!
//! OpenCV references come from tests/data/cv2_reference.safetensors and the PNG/JPEG/
//! compressedDepth files beside it, written by tests/data/gen_sensor_fixtures.py.

use patrack::sensor::decode::{MAX_PIXEL_BYTES, MAX_SIDE_PX};
use patrack::sensor::modality::normalize_minmax_u8;
use patrack::sensor::{
    assemble_frame, decode_compressed, decode_image, prepare_aux, prepare_frame, prepare_rgb, AuxConfig, DecodeError,
    DecodedImage, ImageU8, Modality, MonoImage, PrepareError, ThermalScaling,
};
use safetensors::{Dtype, SafeTensors};

fn data_path(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Tensor `name` of cv2_reference.safetensors as (shape, little-endian bytes).
fn reference(bytes: &[u8], name: &str, dtype: Dtype) -> (Vec<usize>, Vec<u8>) {
    let st = SafeTensors::deserialize(bytes).expect("parse cv2_reference.safetensors");
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), dtype, "{name}");
    (t.shape().to_vec(), t.data().to_vec())
}

fn i32s(bytes: &[u8]) -> Vec<i32> {
    bytes.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Lays out rows of pixel bytes with `pad` junk bytes after each row.
fn padded(rows: &[Vec<u8>], pad: usize) -> (u32, Vec<u8>) {
    let step = rows[0].len() + pad;
    let mut data = Vec::new();
    for row in rows {
        data.extend_from_slice(row);
        data.extend(std::iter::repeat_n(0xEE, pad));
    }
    (step as u32, data)
}

fn rgb8(im: DecodedImage) -> ImageU8 {
    match im {
        DecodedImage::Rgb8(im) => im,
        other => panic!("expected rgb8, got {other:?}"),
    }
}

// A 3x2 test image, R G B per pixel.
const RGB: [[u8; 3]; 6] = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15], [16, 17, 18]];

fn expected_rgb() -> Vec<u8> {
    RGB.iter().flatten().copied().collect()
}

/// How an encoding lays out one RGB pixel in memory.
type PixelLayout = fn([u8; 3]) -> Vec<u8>;

#[test]
fn colour_encodings_come_out_as_rgb_with_row_padding_skipped() {
    let layouts: [(&str, PixelLayout); 6] = [
        ("rgb8", |p| p.to_vec()),
        ("bgr8", |p| vec![p[2], p[1], p[0]]),
        ("8UC3", |p| vec![p[2], p[1], p[0]]),
        ("rgba8", |p| vec![p[0], p[1], p[2], 99]),
        ("bgra8", |p| vec![p[2], p[1], p[0], 99]),
        ("8UC4", |p| vec![p[2], p[1], p[0], 99]),
    ];
    for (encoding, layout) in layouts {
        let rows: Vec<Vec<u8>> = RGB.chunks(3).map(|r| r.iter().flat_map(|&p| layout(p)).collect()).collect();
        for pad in [0, 3] {
            let (step, data) = padded(&rows, pad);
            let im = rgb8(decode_image(encoding, 3, 2, step, 0, &data).expect(encoding));
            assert_eq!((im.width, im.height, im.channels), (3, 2, 3), "{encoding}");
            assert_eq!(im.data, expected_rgb(), "{encoding} with {pad} padding bytes");
        }
    }
}

#[test]
fn mono8_keeps_one_channel() {
    let rows = vec![vec![1, 2, 3], vec![4, 5, 6]];
    for encoding in ["mono8", "8UC1"] {
        let (step, data) = padded(&rows, 5);
        let DecodedImage::Mono8(im) = decode_image(encoding, 3, 2, step, 0, &data).unwrap() else {
            panic!("{encoding}: not mono8")
        };
        assert_eq!((im.channels, im.data.clone()), (1, vec![1, 2, 3, 4, 5, 6]));
    }
}

#[test]
fn sixteen_bit_honours_endianness_and_step() {
    let values: [u16; 6] = [0, 1, 258, 4660, 65535, 40000];
    for encoding in ["mono16", "16UC1"] {
        for big_endian in [0u8, 1] {
            let rows: Vec<Vec<u8>> = values
                .chunks(3)
                .map(|r| {
                    r.iter().flat_map(|v| if big_endian == 1 { v.to_be_bytes() } else { v.to_le_bytes() }).collect()
                })
                .collect();
            let (step, data) = padded(&rows, 2);
            let DecodedImage::Mono16(im) = decode_image(encoding, 3, 2, step, big_endian, &data).unwrap() else {
                panic!("{encoding}: not mono16")
            };
            assert_eq!(im.data, values, "{encoding} big_endian={big_endian}");
        }
    }
}

#[test]
fn float_depth_honours_endianness() {
    let values = [0.5f32, -1.25, f32::INFINITY, 3.0e3, 1.0e-3, 7.0];
    for big_endian in [0u8, 1] {
        let rows: Vec<Vec<u8>> = values
            .chunks(3)
            .map(|r| r.iter().flat_map(|v| if big_endian == 1 { v.to_be_bytes() } else { v.to_le_bytes() }).collect())
            .collect();
        let (step, data) = padded(&rows, 4);
        let DecodedImage::Float32(im) = decode_image("32FC1", 3, 2, step, big_endian, &data).unwrap() else {
            panic!("not 32FC1")
        };
        assert_eq!(im.data, values);
    }
    // NaN survives decoding (bit pattern compared, since NaN != NaN).
    let nan = f32::NAN.to_le_bytes();
    let DecodedImage::Float32(im) = decode_image("32FC1", 1, 1, 4, 0, &nan).unwrap() else { panic!() };
    assert!(im.data[0].is_nan());
}

#[test]
fn malformed_headers_are_typed_errors() {
    let e = |r: Result<DecodedImage, DecodeError>| r.expect_err("must fail");
    for encoding in ["yuv422", "rgb16", "bayer_rggb8", "64FC1", "", "RGB8"] {
        assert!(
            matches!(e(decode_image(encoding, 1, 1, 3, 0, &[0; 3])), DecodeError::UnsupportedEncoding(_)),
            "{encoding:?}"
        );
    }
    assert!(matches!(e(decode_image("rgb8", 0, 2, 0, 0, &[])), DecodeError::ZeroSize { .. }));
    assert!(matches!(e(decode_image("rgb8", 2, 0, 6, 0, &[])), DecodeError::ZeroSize { .. }));
    let side = MAX_SIDE_PX + 1;
    assert!(matches!(e(decode_image("mono8", side, 1, side, 0, &[])), DecodeError::TooLarge { .. }));
    assert!(matches!(e(decode_image("mono8", 1, side, 1, 0, &[])), DecodeError::TooLarge { .. }));
    assert!(matches!(e(decode_image("mono8", u32::MAX, u32::MAX, u32::MAX, 0, &[])), DecodeError::TooLarge { .. }));
    // 16384 x 16384 x 3 bytes = 768 MiB, over the byte cap although each side is allowed.
    let err = e(decode_image("rgb8", MAX_SIDE_PX, MAX_SIDE_PX, MAX_SIDE_PX * 3, 0, &[]));
    assert!(matches!(err, DecodeError::TooManyBytes { max_bytes: MAX_PIXEL_BYTES, .. }), "{err}");
    assert!(matches!(
        e(decode_image("rgb8", 4, 1, 11, 0, &[0; 11])),
        DecodeError::StepTooSmall { step: 11, min_step: 12 }
    ));
    assert!(matches!(
        e(decode_image("bgra8", 2, 2, 8, 0, &[0; 15])),
        DecodeError::DataTooShort { len: 15, needed: 16 }
    ));
    assert!(matches!(
        e(decode_image("mono16", 2, 2, 4, 0, &[0; 9])),
        DecodeError::WrongDataLength { len: 9, expected: 8 }
    ));
    // A huge step times the height is computed without overflow and reported, not allocated.
    assert!(matches!(e(decode_image("mono8", 2, 3, u32::MAX, 0, &[0; 6])), DecodeError::DataTooShort { .. }));
}

#[test]
fn png_and_jpeg_from_opencv() {
    let refs = read("cv2_reference.safetensors");
    let (_, rgb) = reference(&refs, "compressed.rgb", Dtype::U8);
    let png = rgb8(decode_compressed("rgb8; png compressed bgr8", &read("rgb_16x12.png")).expect("png"));
    assert_eq!((png.width, png.height, png.channels), (16, 12, 3));
    assert_eq!(png.data, rgb, "PNG is lossless");

    let jpeg = rgb8(decode_compressed("bgr8; jpeg compressed bgr8", &read("rgb_16x12.jpg")).expect("jpeg"));
    let (_, cv2_jpeg) = reference(&refs, "compressed.jpeg_decoded_by_cv2_rgb", Dtype::U8);
    let max_diff = jpeg.data.iter().zip(&cv2_jpeg).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
    // Different JPEG decoders (image's vs libjpeg-turbo) may differ by rounding in IDCT/upsampling.
    println!("JPEG vs cv2.imdecode: max |diff| = {max_diff} grey levels (tolerance 4)");
    assert!(max_diff <= 4);
}

#[test]
fn png_round_trip_through_the_image_crate() {
    use image::ImageEncoder;
    // 16-bit grey PNG (depth) and 8-bit colour PNG, both lossless.
    let depth: Vec<u16> = (0..35u16).map(|i| i * 1871).collect();
    let depth_bytes: Vec<u8> = depth.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&depth_bytes, 7, 5, image::ExtendedColorType::L16)
        .unwrap();
    let DecodedImage::Mono16(decoded) = decode_compressed("16UC1; png compressed mono16", &png).unwrap() else {
        panic!("not mono16")
    };
    assert_eq!((decoded.width, decoded.height, decoded.data), (7, 5, depth));

    let rgba: Vec<u8> = (0..4 * 3 * 2).map(|i| (i * 11) as u8).collect();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png).write_image(&rgba, 3, 2, image::ExtendedColorType::Rgba8).unwrap();
    let im = rgb8(decode_compressed("png", &png).unwrap());
    let expected: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert_eq!(im.data, expected, "alpha dropped, order kept");

    let gray = vec![3u8, 50, 200, 255];
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
        .write_image(&gray, 2, 2, image::ExtendedColorType::L8)
        .unwrap();
    let DecodedImage::Mono8(im) = decode_compressed("mono8; jpeg compressed mono8", &jpeg).unwrap() else {
        panic!("not mono8")
    };
    let max_diff = im.data.iter().zip(&gray).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
    println!("grey JPEG q100 round trip: max |diff| = {max_diff} (tolerance 3)");
    assert!(max_diff <= 3);
}

#[test]
fn compressed_depth_payloads() {
    let refs = read("cv2_reference.safetensors");
    let (_, mm) = reference(&refs, "compressed.depth_mm", Dtype::I32);
    let payload = read("depth_16x12.compressed_depth_16uc1");
    let DecodedImage::Mono16(depth) = decode_compressed("16UC1; compressedDepth png", &payload).unwrap() else {
        panic!("not mono16")
    };
    let expected: Vec<u16> = i32s(&mm).into_iter().map(|v| v as u16).collect();
    assert_eq!((depth.width, depth.height), (16, 12));
    assert_eq!(depth.data, expected);

    let (_, metres) = reference(&refs, "compressed.depth_m", Dtype::F32);
    let metres = f32s(&metres);
    let payload = read("depth_16x12.compressed_depth_32fc1");
    let DecodedImage::Float32(depth) = decode_compressed("32FC1; compressedDepth", &payload).unwrap() else {
        panic!("not 32FC1")
    };
    assert!(depth.data[0].is_nan() && metres[0].is_nan(), "invalid pixel stays NaN");
    // Inverse-depth quantisation: one step at z is about z^2 / a = z^2 / 10100 m.
    let worst = depth.data[1..]
        .iter()
        .zip(&metres[1..])
        .map(|(&d, &m)| (d - m).abs() / (m * m / 10_100.0))
        .fold(0.0f32, f32::max);
    println!("compressedDepth 32FC1: max error = {worst:.3} quantisation steps (tolerance 1.01)");
    assert!(worst <= 1.01);

    assert!(matches!(
        decode_compressed("16UC1; compressedDepth png", &payload[..5]),
        Err(DecodeError::CompressedDepthHeader { len: 5 })
    ));
    assert!(matches!(
        decode_compressed("16UC1; compressedDepth rvl", &payload),
        Err(DecodeError::UnsupportedCompressedFormat(_))
    ));
    // A colour PNG behind a compressedDepth header is refused.
    let mut colour = vec![0u8; 12];
    colour.extend(read("rgb_16x12.png"));
    assert!(matches!(
        decode_compressed("16UC1; compressedDepth png", &colour),
        Err(DecodeError::CompressedDepthColor { .. })
    ));
}

/// CRC-32 (IEEE) for building PNG chunks by hand.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A PNG whose header claims `width` x `height` RGBA16 pixels but that has no image data.
fn hostile_png(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([16, 6, 0, 0, 0]);
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01".to_vec();
    png.extend(8u32.to_be_bytes());
    png.extend(&idat);
    png.extend(crc32(&idat).to_be_bytes());
    png
}

#[test]
fn hostile_or_broken_compressed_images_fail_cleanly() {
    // Too wide per side, and within the side limit but 16384^2 * 8 bytes = 2 GiB of pixels.
    for (w, h) in [(1_000_000, 1), (MAX_SIDE_PX, MAX_SIDE_PX)] {
        let err = decode_compressed("png", &hostile_png(w, h)).expect_err("must be refused");
        println!("{w}x{h} PNG header: {err} ({:?})", std::error::Error::source(&err));
        assert!(matches!(err, DecodeError::Codec(image::ImageError::Limits(_))), "{err:?}");
    }
    assert!(matches!(decode_compressed("jpeg", b"not an image"), Err(DecodeError::Codec(_))));
    let truncated = &read("rgb_16x12.jpg")[..200];
    assert!(decode_compressed("jpeg", truncated).is_err());
    assert!(matches!(
        decode_compressed("rgb8; tiff compressed rgb8", &read("rgb_16x12.png")),
        Err(DecodeError::UnsupportedCompressedFormat(_))
    ));
}

#[test]
fn depth_path_matches_opencv_on_edge_cases() {
    let refs = read("cv2_reference.safetensors");
    for case in ["nozero_odd", "zeros_even", "constant"] {
        let (shape, input) = reference(&refs, &format!("depth.{case}.input"), Dtype::I32);
        let mm: Vec<u16> = i32s(&input).into_iter().map(|v| v as u16).collect();
        let depth = MonoImage { width: shape[1], height: shape[0], data: mm.clone() };
        let aux = prepare_aux(DecodedImage::Mono16(depth), Modality::Depth, &AuxConfig::default()).unwrap();
        let (_, colormap) = reference(&refs, &format!("depth.{case}.colormap_bgr"), Dtype::U8);
        let count = aux.data.iter().zip(&colormap).filter(|(a, b)| a != b).count();
        println!("depth {case}: {count} colormap bytes differ from OpenCV (tolerance 0)");
        assert_eq!(count, 0, "{case}");

        // The normalisation alone, applied to the clipped values.
        let mut clipped = mm;
        patrack::sensor::modality::depth_clip_mm(&mut clipped);
        let (_, normalized) = reference(&refs, &format!("depth.{case}.normalized_u8"), Dtype::U8);
        assert_eq!(normalize_minmax_u8(&clipped), normalized, "{case}");
    }
}

#[test]
fn thermal_and_event_frames() {
    let rgb = ImageU8::from_vec(2, 1, 3, vec![1, 2, 3, 4, 5, 6]).unwrap();
    let config =
        AuxConfig { thermal_scaling: ThermalScaling::Fixed { min: 1000.0, max: 1255.0 }, ..Default::default() };

    // Raw 16-bit counts: scaled, replicated to 3 channels.
    let counts = MonoImage { width: 2, height: 1, data: vec![1100u16, 5000] };
    let frame = prepare_frame(&rgb, DecodedImage::Mono16(counts), Modality::Thermal, &config).unwrap();
    assert_eq!(frame.data, vec![1, 2, 3, 100, 100, 100, 4, 5, 6, 255, 255, 255]);

    // A bgr8 event frame arrives as RGB from the decoder and is used unchanged.
    let event = decode_image("bgr8", 2, 1, 6, 0, &[30, 20, 10, 60, 50, 40]).unwrap();
    let aux = prepare_aux(event, Modality::Event, &config).unwrap();
    assert_eq!(aux.data, vec![10, 20, 30, 40, 50, 60]);

    // mono8 thermal replicated; 32FC1 temperatures scaled with a fixed range.
    let mono = decode_image("mono8", 2, 1, 2, 0, &[7, 9]).unwrap();
    assert_eq!(prepare_aux(mono, Modality::Thermal, &config).unwrap().data, vec![7, 7, 7, 9, 9, 9]);
    let celsius = MonoImage { width: 3, height: 1, data: vec![20.0f32, 30.0, f32::NAN] };
    let fixed = AuxConfig { thermal_scaling: ThermalScaling::Fixed { min: 20.0, max: 40.0 }, ..Default::default() };
    let aux = prepare_aux(DecodedImage::Float32(celsius), Modality::Thermal, &fixed).unwrap();
    assert_eq!(aux.data, vec![0, 0, 0, 128, 128, 128, 0, 0, 0]);

    // The RGB camera may be grey; 16-bit RGB is refused.
    let grey = decode_image("mono8", 2, 1, 2, 0, &[5, 6]).unwrap();
    assert_eq!(prepare_rgb(grey).unwrap().data, vec![5, 5, 5, 6, 6, 6]);
    let deep = decode_image("mono16", 1, 1, 2, 0, &[0, 1]).unwrap();
    assert!(matches!(prepare_rgb(deep), Err(PrepareError::RgbInput { .. })));
}

#[test]
fn aux_of_another_size_is_resized_to_the_rgb_grid() {
    let rgb = ImageU8::zeros(4, 2, 3);
    // Half-resolution aux: every 2x2 RGB block sees one aux pixel (interpolated in between).
    let aux = ImageU8::from_vec(2, 1, 3, vec![100, 100, 100, 200, 200, 200]).unwrap();
    let frame = assemble_frame(&rgb, &aux, &AuxConfig::default()).unwrap();
    assert_eq!((frame.width, frame.height, frame.channels), (4, 2, 6));
    let row: Vec<u8> = frame.data[..4 * 6].chunks_exact(6).map(|p| p[3]).collect();
    // u = (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> 100, 125, 175, 200.
    assert_eq!(row, vec![100, 125, 175, 200]);

    // A configured homography: aux pixel = RGB pixel shifted by one column.
    let shifted =
        AuxConfig { aux_from_rgb: Some([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), ..Default::default() };
    let aux = ImageU8::from_vec(2, 1, 3, vec![10, 11, 12, 20, 21, 22]).unwrap();
    let frame = assemble_frame(&ImageU8::zeros(2, 1, 3), &aux, &shifted).unwrap();
    assert_eq!(frame.data, vec![0, 0, 0, 20, 21, 22, 0, 0, 0, 0, 0, 0]);
    let singular = AuxConfig { aux_from_rgb: Some([[0.0; 3]; 3]), ..Default::default() };
    assert!(matches!(assemble_frame(&rgb, &aux, &singular), Err(PrepareError::Registration(_))));
}
