//! `sensor_msgs/Image` and `sensor_msgs/CompressedImage` payloads to typed images.
//!
//! Raw images are read row by row through `step` (rows may carry padding) and honour
//! `is_bigendian` for 16- and 32-bit pixels. Colour always comes out in R, G, B order (alpha
//! dropped), so the rest of the pipeline never sees BGR.

use std::io::Cursor;

use super::ImageU8;

/// Largest accepted width or height, in pixels. Far above any real camera; it exists so that a
/// hostile header cannot make us allocate gigabytes.
pub const MAX_SIDE_PX: u32 = 16_384;

/// Largest accepted decoded pixel buffer, in bytes (256 MiB).
pub const MAX_PIXEL_BYTES: u64 = 256 * 1024 * 1024;

/// Length of the `compressedDepth` configuration header that precedes the PNG stream
/// (`compressed_depth_image_transport`: an `i32` format enum and two `f32` quantisation parameters).
pub const COMPRESSED_DEPTH_HEADER_BYTES: usize = 12;

/// Errors while turning a ROS image payload into pixels.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported image encoding `{0}` (supported: rgb8, bgr8, rgba8, bgra8, 8UC3, 8UC4, mono8, 8UC1, mono16, 16UC1, 32FC1)")]
    UnsupportedEncoding(String),
    #[error("image has zero size ({width}x{height})")]
    ZeroSize { width: u32, height: u32 },
    #[error("image {width}x{height} exceeds the {max_side_px} px per side limit")]
    TooLarge { width: u32, height: u32, max_side_px: u32 },
    #[error("image {width}x{height} needs {bytes} bytes of pixel data, over the {max_bytes} byte limit")]
    TooManyBytes { width: u32, height: u32, bytes: u64, max_bytes: u64 },
    #[error("row step {step} is smaller than width * bytes per pixel = {min_step}")]
    StepTooSmall { step: u32, min_step: u64 },
    #[error("data holds {len} bytes, but step * height = {needed}")]
    DataTooShort { len: usize, needed: u64 },
    #[error("data holds {len} bytes, expected exactly step * height = {expected}")]
    WrongDataLength { len: usize, expected: u64 },
    #[error("unsupported compressed image format `{0}` (supported: jpeg, png, compressedDepth png)")]
    UnsupportedCompressedFormat(String),
    #[error("compressedDepth payload of {len} bytes is shorter than its {COMPRESSED_DEPTH_HEADER_BYTES}-byte header")]
    CompressedDepthHeader { len: usize },
    #[error("compressedDepth `{raw_encoding}` needs a 16-bit grey PNG, got {color}")]
    CompressedDepthColor { raw_encoding: String, color: &'static str },
    /// The codec's own reason is part of the message (e.g. a truncated JPEG, or a PNG whose
    /// header declares more pixels than the limits allow).
    #[error("cannot decode compressed image: {0}")]
    Codec(image::ImageError),
    #[error("cannot read compressed image header: {0}")]
    CodecIo(std::io::Error),
}

/// The pixel layout of a decoded image in words, for messages.
fn color_name(color: image::ColorType) -> &'static str {
    use image::ColorType as C;
    match color {
        C::L8 => "8-bit grey",
        C::La8 => "8-bit grey with alpha",
        C::Rgb8 => "8-bit RGB",
        C::Rgba8 => "8-bit RGBA",
        C::L16 => "16-bit grey",
        C::La16 => "16-bit grey with alpha",
        C::Rgb16 => "16-bit RGB",
        C::Rgba16 => "16-bit RGBA",
        C::Rgb32F => "32-bit float RGB",
        C::Rgba32F => "32-bit float RGBA",
        _ => "another pixel layout",
    }
}

/// A one-channel image of 16-bit or 32-bit values, row-major without padding:
/// `data[y * width + x]`.
#[derive(Clone, PartialEq)]
pub struct MonoImage<T> {
    pub width: usize,
    pub height: usize,
    pub data: Vec<T>,
}

/// 16-bit single-channel image (depth in mm for `16UC1`, raw thermal counts for `mono16`).
pub type ImageU16 = MonoImage<u16>;
/// 32-bit float single-channel image (depth in metres, or temperatures).
pub type ImageF32 = MonoImage<f32>;

impl<T> std::fmt::Debug for MonoImage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MonoImage<{}>({}x{})", std::any::type_name::<T>(), self.width, self.height)
    }
}

/// A decoded camera image, in the most faithful representation of its encoding.
#[derive(Clone, Debug, PartialEq)]
pub enum DecodedImage {
    /// 8-bit colour, 3 channels in R, G, B order (BGR inputs swapped, alpha dropped).
    Rgb8(ImageU8),
    /// 8-bit grey, 1 channel.
    Mono8(ImageU8),
    /// 16-bit grey (`mono16`, `16UC1`), host byte order.
    Mono16(ImageU16),
    /// 32-bit float grey (`32FC1`), host byte order; may hold NaN/Inf.
    Float32(ImageF32),
}

impl DecodedImage {
    /// (width, height) in pixels.
    pub fn size(&self) -> (usize, usize) {
        match self {
            DecodedImage::Rgb8(im) | DecodedImage::Mono8(im) => (im.width, im.height),
            DecodedImage::Mono16(im) => (im.width, im.height),
            DecodedImage::Float32(im) => (im.width, im.height),
        }
    }

    /// Short name of the pixel layout, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodedImage::Rgb8(_) => "rgb8",
            DecodedImage::Mono8(_) => "mono8",
            DecodedImage::Mono16(_) => "mono16",
            DecodedImage::Float32(_) => "32FC1",
        }
    }
}

/// The raw encodings we accept, with their pixel layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Rgb8,
    Bgr8,
    Rgba8,
    Bgra8,
    Mono8,
    Mono16,
    Float32,
}

impl Encoding {
    fn parse(name: &str) -> Option<Self> {
        // OpenCV's 8UC3/8UC4 carry no channel order; cv_bridge treats them as BGR(A), as OpenCV does.
        Some(match name {
            "rgb8" => Encoding::Rgb8,
            "bgr8" | "8UC3" => Encoding::Bgr8,
            "rgba8" => Encoding::Rgba8,
            "bgra8" | "8UC4" => Encoding::Bgra8,
            "mono8" | "8UC1" => Encoding::Mono8,
            "mono16" | "16UC1" => Encoding::Mono16,
            "32FC1" => Encoding::Float32,
            _ => return None,
        })
    }

    fn bytes_per_pixel(self) -> u64 {
        match self {
            Encoding::Mono8 => 1,
            Encoding::Mono16 => 2,
            Encoding::Rgb8 | Encoding::Bgr8 => 3,
            Encoding::Rgba8 | Encoding::Bgra8 | Encoding::Float32 => 4,
        }
    }
}

/// Checks the size limits shared by raw and compressed images; returns (width, height) as usize.
fn check_size(width: u32, height: u32, bytes_per_pixel: u64) -> Result<(usize, usize), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::ZeroSize { width, height });
    }
    if width > MAX_SIDE_PX || height > MAX_SIDE_PX {
        return Err(DecodeError::TooLarge { width, height, max_side_px: MAX_SIDE_PX });
    }
    // u32 * u32 * 4 cannot overflow u64, but keep the arithmetic checked on principle.
    let bytes = u64::from(width)
        .checked_mul(u64::from(height))
        .and_then(|n| n.checked_mul(bytes_per_pixel))
        .unwrap_or(u64::MAX);
    if bytes > MAX_PIXEL_BYTES {
        return Err(DecodeError::TooManyBytes { width, height, bytes, max_bytes: MAX_PIXEL_BYTES });
    }
    let w = usize::try_from(width).map_err(|_| DecodeError::TooLarge { width, height, max_side_px: MAX_SIDE_PX })?;
    let h = usize::try_from(height).map_err(|_| DecodeError::TooLarge { width, height, max_side_px: MAX_SIDE_PX })?;
    Ok((w, h))
}

/// Decodes the fields of a `sensor_msgs/Image` into a [`DecodedImage`].
///
/// `data` must hold exactly `step * height` bytes and `step >= width * bytes_per_pixel`; the
/// padding at the end of each row is skipped. `is_bigendian != 0` marks 16/32-bit data as big
/// endian (it is meaningless for 8-bit encodings).
pub fn decode_image(
    encoding: &str,
    width: u32,
    height: u32,
    step: u32,
    is_bigendian: u8,
    data: &[u8],
) -> Result<DecodedImage, DecodeError> {
    let enc = Encoding::parse(encoding).ok_or_else(|| DecodeError::UnsupportedEncoding(encoding.to_owned()))?;
    let bpp = enc.bytes_per_pixel();
    let (w, h) = check_size(width, height, bpp)?;
    let min_step = u64::from(width) * bpp;
    if u64::from(step) < min_step {
        return Err(DecodeError::StepTooSmall { step, min_step });
    }
    let needed = u64::from(step) * u64::from(height);
    let len = data.len();
    if (len as u64) < needed {
        return Err(DecodeError::DataTooShort { len, needed });
    }
    if len as u64 != needed {
        return Err(DecodeError::WrongDataLength { len, expected: needed });
    }
    // Both fit in usize: they are bounded by data.len().
    let step = step as usize;
    let row_bytes = min_step as usize;
    let rows = data.chunks_exact(step).map(|row| &row[..row_bytes]);
    let big_endian = is_bigendian != 0;

    Ok(match enc {
        Encoding::Rgb8 | Encoding::Bgr8 | Encoding::Rgba8 | Encoding::Bgra8 => {
            let src_channels = bpp as usize;
            let swap = matches!(enc, Encoding::Bgr8 | Encoding::Bgra8);
            let mut out = Vec::with_capacity(w * h * 3);
            if enc == Encoding::Rgb8 {
                // Already the frame's layout: whole rows at once (a per-pixel copy is 5x slower).
                rows.for_each(|row| out.extend_from_slice(row));
                return Ok(DecodedImage::Rgb8(ImageU8 { width: w, height: h, channels: 3, data: out }));
            }
            for row in rows {
                for px in row.chunks_exact(src_channels) {
                    if swap {
                        out.extend_from_slice(&[px[2], px[1], px[0]]);
                    } else {
                        out.extend_from_slice(&px[..3]);
                    }
                }
            }
            DecodedImage::Rgb8(ImageU8 { width: w, height: h, channels: 3, data: out })
        }
        Encoding::Mono8 => {
            let mut out = Vec::with_capacity(w * h);
            rows.for_each(|row| out.extend_from_slice(row));
            DecodedImage::Mono8(ImageU8 { width: w, height: h, channels: 1, data: out })
        }
        Encoding::Mono16 => {
            let mut out = Vec::with_capacity(w * h);
            for row in rows {
                out.extend(row.chunks_exact(2).map(|b| {
                    let b = [b[0], b[1]];
                    if big_endian {
                        u16::from_be_bytes(b)
                    } else {
                        u16::from_le_bytes(b)
                    }
                }));
            }
            DecodedImage::Mono16(MonoImage { width: w, height: h, data: out })
        }
        Encoding::Float32 => {
            let mut out = Vec::with_capacity(w * h);
            for row in rows {
                out.extend(row.chunks_exact(4).map(|b| {
                    let b = [b[0], b[1], b[2], b[3]];
                    if big_endian {
                        f32::from_be_bytes(b)
                    } else {
                        f32::from_le_bytes(b)
                    }
                }));
            }
            DecodedImage::Float32(MonoImage { width: w, height: h, data: out })
        }
    })
}

/// Decoder limits that keep a hostile header from allocating more than the raw path allows.
fn decoder_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE_PX);
    limits.max_image_height = Some(MAX_SIDE_PX);
    limits.max_alloc = Some(MAX_PIXEL_BYTES);
    limits
}

fn decode_with_limits(bytes: &[u8]) -> Result<image::DynamicImage, DecodeError> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(DecodeError::CodecIo)?;
    reader.limits(decoder_limits());
    reader.decode().map_err(DecodeError::Codec)
}

/// Decodes an encoded image file's bytes (PNG or JPEG, recognised from the bytes) with the same
/// limits as camera messages ([`MAX_SIDE_PX`], [`MAX_PIXEL_BYTES`]): the one entry point for image
/// files, so `run`, `eval`, training and replay refuse the same oversized images. 8-bit grey comes
/// out as `Mono8`, 16-bit grey (depth PNGs) as `Mono16`, everything else as `Rgb8`.
pub fn decode_encoded(bytes: &[u8]) -> Result<DecodedImage, DecodeError> {
    dynamic_to_decoded(decode_with_limits(bytes)?)
}

/// Decodes the fields of a `sensor_msgs/CompressedImage`.
///
/// `format` is the ROS 2 format string, e.g. `"rgb8; jpeg compressed bgr8"`, `"png"` or
/// `"16UC1; compressedDepth png"`; the codec itself is recognised from the bytes. JPEG/PNG colour
/// comes out as [`DecodedImage::Rgb8`] (image_transport encodes real colours whatever the
/// original channel order), 8-bit grey as `Mono8`, 16-bit grey PNG as `Mono16`.
///
/// `compressedDepth` (from `compressed_depth_image_transport`, PNG flavour) is supported: for
/// `16UC1` the PNG holds millimetres; for `32FC1` it holds quantised inverse depth, which is
/// turned back into metres as `depth = a / (v - b)` (NaN where `v == 0`), as the plugin does.
/// The RVL flavour is rejected.
pub fn decode_compressed(format: &str, data: &[u8]) -> Result<DecodedImage, DecodeError> {
    let format_lower = format.to_ascii_lowercase();
    if format_lower.contains("compresseddepth") {
        return decode_compressed_depth(format, &format_lower, data);
    }
    let known_codec = format_lower.is_empty()
        || format_lower.contains("jpeg")
        || format_lower.contains("jpg")
        || format_lower.contains("png");
    if !known_codec {
        return Err(DecodeError::UnsupportedCompressedFormat(format.to_owned()));
    }
    let image = decode_with_limits(data)?;
    dynamic_to_decoded(image)
}

fn dynamic_to_decoded(image: image::DynamicImage) -> Result<DecodedImage, DecodeError> {
    use image::DynamicImage as D;
    let (width, height) = (image.width(), image.height());
    let (w, h) = check_size(width, height, 4)?;
    Ok(match image {
        D::ImageLuma8(buf) => DecodedImage::Mono8(ImageU8 { width: w, height: h, channels: 1, data: buf.into_raw() }),
        D::ImageLumaA8(_) => {
            DecodedImage::Mono8(ImageU8 { width: w, height: h, channels: 1, data: image.to_luma8().into_raw() })
        }
        D::ImageLuma16(buf) => DecodedImage::Mono16(MonoImage { width: w, height: h, data: buf.into_raw() }),
        D::ImageRgb8(buf) => DecodedImage::Rgb8(ImageU8 { width: w, height: h, channels: 3, data: buf.into_raw() }),
        other => DecodedImage::Rgb8(ImageU8 { width: w, height: h, channels: 3, data: other.to_rgb8().into_raw() }),
    })
}

fn decode_compressed_depth(format: &str, format_lower: &str, data: &[u8]) -> Result<DecodedImage, DecodeError> {
    if format_lower.contains("rvl") {
        return Err(DecodeError::UnsupportedCompressedFormat(format.to_owned()));
    }
    let raw_encoding = format.split(';').next().unwrap_or("").trim().to_owned();
    let Some((header, png)) = data.split_at_checked(COMPRESSED_DEPTH_HEADER_BYTES) else {
        return Err(DecodeError::CompressedDepthHeader { len: data.len() });
    };
    let image = decode_with_limits(png)?;
    let color = color_name(image.color());
    let image::DynamicImage::ImageLuma16(buf) = image else {
        return Err(DecodeError::CompressedDepthColor { raw_encoding, color });
    };
    let (w, h) = check_size(buf.width(), buf.height(), 4)?;
    match raw_encoding.as_str() {
        "16UC1" | "mono16" => Ok(DecodedImage::Mono16(MonoImage { width: w, height: h, data: buf.into_raw() })),
        "32FC1" => {
            // The header is written in the publisher's native order; ROS machines are little endian.
            let quant_a = f32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let quant_b = f32::from_le_bytes([header[8], header[9], header[10], header[11]]);
            let depth_m = buf
                .into_raw()
                .into_iter()
                .map(|v| if v == 0 { f32::NAN } else { quant_a / (f32::from(v) - quant_b) })
                .collect();
            Ok(DecodedImage::Float32(MonoImage { width: w, height: h, data: depth_m }))
        }
        _ => Err(DecodeError::UnsupportedCompressedFormat(format.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(im: DecodedImage) -> ImageU8 {
        match im {
            DecodedImage::Rgb8(im) => im,
            other => panic!("expected rgb8, got {other:?}"),
        }
    }

    #[test]
    fn bgr_and_alpha_become_rgb() {
        let px = [10u8, 20, 30, 40];
        let bgra = decode_image("bgra8", 1, 1, 4, 0, &px).unwrap();
        assert_eq!(rgb(bgra).data, vec![30, 20, 10]);
        let rgba = decode_image("rgba8", 1, 1, 4, 0, &px).unwrap();
        assert_eq!(rgb(rgba).data, vec![10, 20, 30]);
        let cv = decode_image("8UC3", 1, 1, 3, 0, &px[..3]).unwrap();
        assert_eq!(rgb(cv).data, vec![30, 20, 10]);
    }

    #[test]
    fn step_smaller_than_row_is_rejected() {
        let err = decode_image("mono16", 4, 1, 7, 0, &[0; 7]).unwrap_err();
        assert!(matches!(err, DecodeError::StepTooSmall { step: 7, min_step: 8 }), "{err}");
    }

    #[test]
    fn size_limits() {
        assert!(matches!(decode_image("mono8", 0, 3, 0, 0, &[]), Err(DecodeError::ZeroSize { .. })));
        assert!(matches!(
            decode_image("mono8", MAX_SIDE_PX + 1, 1, MAX_SIDE_PX + 1, 0, &[]),
            Err(DecodeError::TooLarge { .. })
        ));
        // 16384 x 16384 x 4 bytes = 1 GiB > 256 MiB.
        assert!(matches!(
            decode_image("32FC1", MAX_SIDE_PX, MAX_SIDE_PX, MAX_SIDE_PX * 4, 0, &[]),
            Err(DecodeError::TooManyBytes { .. })
        ));
    }
}
