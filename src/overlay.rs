//! Drawing on RGB frames: the tracked box, a label line (score, state) and side-by-side
//! composition. Used by the node's `~/debug_image`, the demo and replay. A built-in 5x7 bitmap
//! font keeps this free of font files.

use crate::sensor::ImageU8;
use crate::tracker::{BoxXywh, TargetState};

/// Colour of the box per state: green tracking, orange lost, grey otherwise.
pub fn state_colour(state: TargetState) -> [u8; 3] {
    match state {
        TargetState::Tracking => [40, 220, 60],
        TargetState::Lost => [255, 140, 0],
        TargetState::Uninitialised => [160, 160, 160],
    }
}

/// Sets one pixel of a 3-channel image if inside.
fn put(img: &mut ImageU8, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as usize) < img.width && (y as usize) < img.height && img.channels >= 3 {
        let i = (y as usize * img.width + x as usize) * img.channels;
        img.data[i..i + 3].copy_from_slice(&c);
    }
}

/// Draws the outline of `b` with `thickness` pixels (clipped to the image).
pub fn draw_box(img: &mut ImageU8, b: BoxXywh, colour: [u8; 3], thickness: i64) {
    if !b.is_finite() {
        return;
    }
    let (x0, y0) = (b.x.round() as i64, b.y.round() as i64);
    let (x1, y1) = ((b.x + b.w).round() as i64 - 1, (b.y + b.h).round() as i64 - 1);
    let (w, h) = (img.width as i64, img.height as i64);
    for t in 0..thickness {
        for x in x0.max(-1)..=x1.min(w) {
            put(img, x, y0 + t, colour);
            put(img, x, y1 - t, colour);
        }
        for y in y0.max(-1)..=y1.min(h) {
            put(img, x0 + t, y, colour);
            put(img, x1 - t, y, colour);
        }
    }
}

/// 5x7 glyphs, one byte per row (low 5 bits, MSB left).
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_lowercase() {
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [31, 2, 4, 2, 1, 17, 14],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        'a' => [14, 17, 17, 31, 17, 17, 17],
        'b' => [30, 17, 17, 30, 17, 17, 30],
        'c' => [14, 17, 16, 16, 16, 17, 14],
        'd' => [30, 17, 17, 17, 17, 17, 30],
        'e' => [31, 16, 16, 30, 16, 16, 31],
        'f' => [31, 16, 16, 30, 16, 16, 16],
        'g' => [14, 17, 16, 23, 17, 17, 15],
        'h' => [17, 17, 17, 31, 17, 17, 17],
        'i' => [14, 4, 4, 4, 4, 4, 14],
        'j' => [7, 2, 2, 2, 2, 18, 12],
        'k' => [17, 18, 20, 24, 20, 18, 17],
        'l' => [16, 16, 16, 16, 16, 16, 31],
        'm' => [17, 27, 21, 21, 17, 17, 17],
        'n' => [17, 17, 25, 21, 19, 17, 17],
        'o' => [14, 17, 17, 17, 17, 17, 14],
        'p' => [30, 17, 17, 30, 16, 16, 16],
        'q' => [14, 17, 17, 17, 21, 18, 13],
        'r' => [30, 17, 17, 30, 20, 18, 17],
        's' => [15, 16, 16, 14, 1, 1, 30],
        't' => [31, 4, 4, 4, 4, 4, 4],
        'u' => [17, 17, 17, 17, 17, 17, 14],
        'v' => [17, 17, 17, 17, 17, 10, 4],
        'w' => [17, 17, 17, 21, 21, 21, 10],
        'x' => [17, 17, 10, 4, 10, 17, 17],
        'y' => [17, 17, 17, 10, 4, 4, 4],
        'z' => [31, 1, 2, 4, 8, 16, 31],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        ':' => [0, 12, 12, 0, 12, 12, 0],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 31],
        '/' => [1, 1, 2, 4, 8, 16, 16],
        '%' => [24, 25, 2, 4, 8, 19, 3],
        '=' => [0, 0, 31, 0, 31, 0, 0],
        _ => [0; 7],
    }
}

/// Writes `text` at (x, y) with integer `scale`, on a dark backing strip for legibility.
pub fn draw_text(img: &mut ImageU8, x: i64, y: i64, text: &str, colour: [u8; 3], scale: i64) {
    let n = text.chars().count() as i64;
    for yy in y - scale..y + 8 * scale {
        for xx in x - scale..x + n * 6 * scale {
            put(img, xx, yy, [0, 0, 0]);
        }
    }
    for (k, c) in text.chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (16 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            put(img, x + (k as i64 * 6 + col) * scale + dx, y + row as i64 * scale + dy, colour);
                        }
                    }
                }
            }
        }
    }
}

/// The first three channels of an image (RGB of a 6-channel frame), or gray replicated.
pub fn rgb_of(img: &ImageU8) -> ImageU8 {
    let mut out = ImageU8::zeros(img.width, img.height, 3);
    for (o, p) in out.data.chunks_exact_mut(3).zip(img.data.chunks_exact(img.channels.max(1))) {
        if p.len() >= 3 {
            o.copy_from_slice(&p[..3]);
        } else {
            o.fill(p[0]);
        }
    }
    out
}

/// Channels 3..6 of a 6-channel frame as an RGB image (the prepared aux image).
pub fn aux_of(img: &ImageU8) -> Option<ImageU8> {
    if img.channels != 6 {
        return None;
    }
    let mut out = ImageU8::zeros(img.width, img.height, 3);
    for (o, p) in out.data.chunks_exact_mut(3).zip(img.data.chunks_exact(6)) {
        o.copy_from_slice(&p[3..6]);
    }
    Some(out)
}

/// Blends `b` over `a` with weight `alpha` in [0, 1] (same size, 3 channels).
pub fn blend(a: &ImageU8, b: &ImageU8, alpha: f32) -> ImageU8 {
    let alpha = alpha.clamp(0.0, 1.0);
    let mut out = a.clone();
    if a.width == b.width && a.height == b.height && a.channels == b.channels {
        for (o, &v) in out.data.iter_mut().zip(&b.data) {
            *o = ((1.0 - alpha) * *o as f32 + alpha * v as f32).round() as u8;
        }
    }
    out
}

/// Places images left to right (3 channels, top-aligned, black fill).
pub fn hstack(images: &[&ImageU8]) -> ImageU8 {
    let width = images.iter().map(|i| i.width).sum();
    let height = images.iter().map(|i| i.height).max().unwrap_or(0);
    let mut out = ImageU8::zeros(width, height, 3);
    let mut x0 = 0;
    for img in images {
        for y in 0..img.height {
            for x in 0..img.width {
                let s = (y * img.width + x) * img.channels;
                let d = (y * width + x0 + x) * 3;
                out.data[d..d + 3].copy_from_slice(&img.data[s..s + 3.min(img.channels)]);
            }
        }
        x0 += img.width;
    }
    out
}

/// An annotated view of a tracked 6-channel frame: RGB | aux, the box on both, a label line.
pub fn annotate(frame: &ImageU8, bbox: Option<BoxXywh>, score: f32, state: TargetState, label: &str) -> ImageU8 {
    let mut rgb = rgb_of(frame);
    let mut aux = aux_of(frame).unwrap_or_else(|| rgb.clone());
    let colour = state_colour(state);
    if let Some(b) = bbox {
        draw_box(&mut rgb, b, colour, 2);
        draw_box(&mut aux, b, colour, 2);
    }
    let mut out = hstack(&[&rgb, &aux]);
    let text = format!("{label} {state} score {score:.3}");
    draw_text(&mut out, 4, 4, &text, colour, 1);
    out
}

/// Saves a 3-channel image as PNG.
pub fn save_png(img: &ImageU8, path: &std::path::Path) -> Result<(), image::ImageError> {
    image::save_buffer(path, &img.data, img.width as u32, img.height as u32, image::ExtendedColorType::Rgb8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_outline_is_drawn_inside_the_image_only() {
        let mut img = ImageU8::zeros(20, 10, 3);
        draw_box(&mut img, BoxXywh::new(2.0, 2.0, 5.0, 4.0), [255, 0, 0], 1);
        assert_eq!(img.pixel(2, 2), &[255, 0, 0]);
        assert_eq!(img.pixel(6, 5), &[255, 0, 0]);
        assert_eq!(img.pixel(4, 3), &[0, 0, 0]); // interior untouched
        draw_box(&mut img, BoxXywh::new(-100.0, -100.0, 1e6, 1e6), [1, 1, 1], 3); // no panic
        draw_box(&mut img, BoxXywh::new(f64::NAN, 0.0, 1.0, 1.0), [1, 1, 1], 3);
    }

    #[test]
    fn text_sets_glyph_pixels() {
        let mut img = ImageU8::zeros(40, 12, 3);
        draw_text(&mut img, 1, 1, "1", [9, 9, 9], 1);
        // '1' row 0 = 0b00100: the middle column of the glyph.
        assert_eq!(img.pixel(1 + 2, 1), &[9, 9, 9]);
        assert_eq!(img.pixel(1, 1), &[0, 0, 0]);
    }
}
