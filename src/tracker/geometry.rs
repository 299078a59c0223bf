//! Boxes and the map from the search crop back to the image (`patrack.py` l.116-122) and
//! `clip_box` (`lib/utils/box_ops.py` l.97-106).

/// A box as top-left corner and size, in pixels of the full image.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BoxXywh {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A box as centre and size (units given where it is used).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxCxcywh<T> {
    pub cx: T,
    pub cy: T,
    pub w: T,
    pub h: T,
}

impl std::fmt::Display for BoxXywh {
    /// `x,y,w,h` in pixels, as box files and the `--init` flag write it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{},{}", self.x, self.y, self.w, self.h)
    }
}

impl BoxXywh {
    pub fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        Self { x, y, w, h }
    }

    pub fn to_array(self) -> [f64; 4] {
        [self.x, self.y, self.w, self.h]
    }

    pub fn center(&self) -> (f64, f64) {
        (self.x + 0.5 * self.w, self.y + 0.5 * self.h)
    }

    pub fn is_finite(&self) -> bool {
        [self.x, self.y, self.w, self.h].iter().all(|v| v.is_finite())
    }

    /// Intersection over union (0 for empty boxes).
    pub fn iou(&self, other: &BoxXywh) -> f64 {
        let ix = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let iy = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        let inter = ix.max(0.0) * iy.max(0.0);
        let union = self.w * self.h + other.w * other.h - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// Maps `box_norm` (cx, cy, w, h as fractions of the search crop) back to image pixels around the
/// previous state. The scaling runs in f32 as the reference does (a float32 tensor times the crop
/// size, divided by the f32-rounded resize factor); the rest in f64.
pub fn map_back(box_norm: BoxCxcywh<f32>, prev: BoxXywh, search_size: usize, resize_factor: f64) -> BoxXywh {
    let rf = resize_factor as f32;
    let scale = |v: f32| ((v * search_size as f32) / rf) as f64;
    let (pcx, pcy, pw, ph) = (scale(box_norm.cx), scale(box_norm.cy), scale(box_norm.w), scale(box_norm.h));
    let half = 0.5 * search_size as f64 / resize_factor;
    let (prev_cx, prev_cy) = (prev.x + 0.5 * prev.w, prev.y + 0.5 * prev.h);
    let cx = pcx + (prev_cx - half);
    let cy = pcy + (prev_cy - half);
    BoxXywh { x: cx - 0.5 * pw, y: cy - 0.5 * ph, w: pw, h: ph }
}

/// `clip_box(box, H, W, margin)`: keeps at least `margin` pixels of the box inside the image.
pub fn clip_box(b: BoxXywh, height: usize, width: usize, margin: f64) -> BoxXywh {
    let (w_img, h_img) = (width as f64, height as f64);
    let (x2, y2) = (b.x + b.w, b.y + b.h);
    let x1 = b.x.max(0.0).min(w_img - margin);
    let x2 = x2.max(margin).min(w_img);
    let y1 = b.y.max(0.0).min(h_img - margin);
    let y2 = y2.max(margin).min(h_img);
    BoxXywh { x: x1, y: y1, w: (x2 - x1).max(margin), h: (y2 - y1).max(margin) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_margin_inside() {
        let b = clip_box(BoxXywh::new(-50.0, 300.0, 30.0, 40.0), 240, 320, 10.0);
        assert_eq!(b, BoxXywh::new(0.0, 230.0, 10.0, 10.0));
        let inside = BoxXywh::new(10.0, 20.0, 30.0, 40.0);
        assert_eq!(clip_box(inside, 240, 320, 10.0), inside);
    }

    #[test]
    fn iou_of_shifted_boxes() {
        let a = BoxXywh::new(0.0, 0.0, 10.0, 10.0);
        let b = BoxXywh::new(5.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-12);
        assert_eq!(a.iou(&BoxXywh::new(20.0, 20.0, 1.0, 1.0)), 0.0);
    }
}
