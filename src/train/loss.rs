//! OSTrack's training objective (`lib/train/actors/ostrack.py`, `lib/utils/heapmap_utils.py`,
//! `lib/utils/focal_loss.py`): a weighted focal loss on the score map against a Gaussian target,
//! and GIoU (weight 2) + L1 (weight 5) on the box decoded at the score map's peak.

use tch::{Kind, Tensor};

use crate::model::HeadOutput;

pub const GIOU_WEIGHT: f64 = 2.0;
pub const L1_WEIGHT: f64 = 5.0;
pub const FOCAL_WEIGHT: f64 = 1.0;

/// CenterNet's Gaussian radius for a box of `w` x `h` feature cells at IoU overlap `min_overlap`.
pub fn gaussian_radius(w: f64, h: f64, min_overlap: f64) -> f64 {
    let b1 = h + w;
    let c1 = w * h * (1.0 - min_overlap) / (1.0 + min_overlap);
    let r1 = (b1 + (b1 * b1 - 4.0 * c1).sqrt()) / 2.0;
    let b2 = 2.0 * (h + w);
    let c2 = (1.0 - min_overlap) * w * h;
    let r2 = (b2 + (b2 * b2 - 16.0 * c2).sqrt()) / 2.0;
    let a3 = 4.0 * min_overlap;
    let b3 = -2.0 * min_overlap * (h + w);
    let c3 = (min_overlap - 1.0) * w * h;
    let r3 = (b3 + (b3 * b3 - 4.0 * a3 * c3).sqrt()) / 2.0;
    r1.min(r2).min(r3)
}

/// The score-map target of one box (x, y, w, h as fractions of the search crop) on a `side` x
/// `side` map: a Gaussian of diameter `2r + 1`, sigma `diameter / 6`, peak 1 at the rounded
/// centre cell, as `generate_heatmap` with min_overlap 0.7.
pub fn gaussian_target(box_norm: [f64; 4], side: usize) -> Vec<f32> {
    let s = side as f64;
    let [x, y, w, h] = box_norm.map(|v| v * s);
    let (cx, cy) = ((x + w / 2.0).round() as i64, (y + h / 2.0).round() as i64);
    let radius = gaussian_radius(w, h, 0.7).max(0.0).floor() as i64;
    let sigma = (2 * radius + 1) as f64 / 6.0;
    let mut map = vec![0f32; side * side];
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            let (px, py) = (cx + dx, cy + dy);
            if px < 0 || py < 0 || px >= side as i64 || py >= side as i64 {
                continue;
            }
            let g = (-((dx * dx + dy * dy) as f64) / (2.0 * sigma * sigma)).exp();
            // CenterNet zeroes values below machine precision times the maximum.
            let g = if g < f64::EPSILON { 0.0 } else { g };
            let cell = &mut map[py as usize * side + px as usize];
            *cell = cell.max(g as f32);
        }
    }
    map
}

/// The focal loss of CenterNet/OSTrack: `pred`, `gt` (B, 1, H, W).
pub fn focal_loss(pred: &Tensor, gt: &Tensor) -> Tensor {
    let pos = gt.eq(1.0).to_kind(Kind::Float);
    let neg = gt.lt(1.0).to_kind(Kind::Float);
    let neg_weights = (gt.neg() + 1.0).pow_tensor_scalar(4.0);
    let pred = pred.clamp_min(1e-12);
    let pos_loss = (pred.log() * (pred.neg() + 1.0).pow_tensor_scalar(2.0) * &pos).sum(Kind::Float);
    let neg_loss = ((pred.neg() + 1.0).log() * pred.pow_tensor_scalar(2.0) * neg_weights * neg).sum(Kind::Float);
    let num_pos = pos.sum(Kind::Float);
    // num_pos is 0 only when no cell reached 1 (never with a centre inside the map).
    -(pos_loss + neg_loss) / num_pos.clamp_min(1.0)
}

/// The box at the score map's peak, as `CenterPredictor.cal_bbox`: (B, 4) cx, cy, w, h in
/// fractions of the crop. Gradients flow through the size and offset maps.
pub fn peak_box(out: &HeadOutput) -> Tensor {
    let score = &out.score_map;
    let (b, _, h, w) = score.size4().expect("score map is (B, 1, H, W)");
    let idx = score.flatten(1, -1).argmax(1, true); // (B, 1)
    let gather =
        |m: &Tensor| m.flatten(2, -1).gather(2, &idx.unsqueeze(1).expand([b, 2, 1], false), false).squeeze_dim(2);
    let size = gather(&out.size_map); // (B, 2)
    let offset = gather(&out.offset_map);
    let idx = idx.squeeze_dim(1).to_kind(Kind::Float);
    let ix = idx.remainder(w as f64);
    let iy = (idx / w as f64).floor();
    let cx = (ix + offset.select(1, 0)) / w as f64;
    let cy = (iy + offset.select(1, 1)) / h as f64;
    Tensor::stack(&[cx, cy, size.select(1, 0), size.select(1, 1)], 1)
}

fn cxcywh_to_xyxy(b: &Tensor) -> Tensor {
    let (cx, cy, w, h) = (b.select(1, 0), b.select(1, 1), b.select(1, 2), b.select(1, 3));
    Tensor::stack(&[&cx - &w / 2.0, &cy - &h / 2.0, &cx + &w / 2.0, &cy + &h / 2.0], 1)
}

/// Generalised IoU of matching rows of two (B, 4) xyxy tensors: (giou, iou), each (B,).
pub fn giou(a: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
    let area = |t: &Tensor| (t.select(1, 2) - t.select(1, 0)) * (t.select(1, 3) - t.select(1, 1));
    let lt = a.narrow(1, 0, 2).maximum(&b.narrow(1, 0, 2));
    let rb = a.narrow(1, 2, 2).minimum(&b.narrow(1, 2, 2));
    let wh = (rb - lt).clamp_min(0.0);
    let inter = wh.select(1, 0) * wh.select(1, 1);
    let union = area(a) + area(b) - &inter;
    let iou = &inter / &union;
    let lt = a.narrow(1, 0, 2).minimum(&b.narrow(1, 0, 2));
    let rb = a.narrow(1, 2, 2).maximum(&b.narrow(1, 2, 2));
    let wh = (rb - lt).clamp_min(0.0);
    let enclosing = wh.select(1, 0) * wh.select(1, 1);
    (&iou - (&enclosing - &union) / enclosing, iou)
}

/// The loss terms of one batch.
#[derive(Debug)]
pub struct Losses {
    pub total: Tensor,
    pub giou: f64,
    pub l1: f64,
    pub focal: f64,
    pub mean_iou: f64,
}

/// `gt_boxes`: (B, 4) x, y, w, h in fractions of the search crop; `gt_maps`: (B, 1, H, W).
pub fn losses(out: &HeadOutput, gt_boxes: &Tensor, gt_maps: &Tensor) -> Losses {
    let pred = cxcywh_to_xyxy(&peak_box(out));
    let gt = Tensor::cat(&[gt_boxes.narrow(1, 0, 2), gt_boxes.narrow(1, 0, 2) + gt_boxes.narrow(1, 2, 2)], 1)
        .clamp(0.0, 1.0);
    let (g, iou) = giou(&pred, &gt);
    // OSTrack replaces a NaN GIoU loss (degenerate predicted box) by 0.
    let giou_loss = (g.neg() + 1.0).nan_to_num(0.0, None, None).mean(Kind::Float);
    let l1 = (&pred - &gt).abs().mean(Kind::Float);
    let focal = focal_loss(&out.score_map, gt_maps);
    let total = &giou_loss * GIOU_WEIGHT + &l1 * L1_WEIGHT + &focal * FOCAL_WEIGHT;
    Losses {
        giou: giou_loss.double_value(&[]),
        l1: l1.double_value(&[]),
        focal: focal.double_value(&[]),
        mean_iou: iou.nan_to_num(0.0, None, None).mean(Kind::Float).double_value(&[]),
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_radius_matches_centernet() {
        // Hand-computed with CenterNet's formula for a 4 x 2 box at overlap 0.7: r3 is smallest.
        let (w, h, o): (f64, f64, f64) = (4.0, 2.0, 0.7);
        let (a3, b3, c3) = (4.0 * o, -2.0 * o * (h + w), (o - 1.0) * w * h);
        let r3 = (b3 + (b3 * b3 - 4.0 * a3 * c3).sqrt()) / 2.0;
        assert!((gaussian_radius(w, h, o) - r3).abs() < 1e-12);
        assert!((r3 - 0.7356).abs() < 1e-3, "{r3}");
    }

    #[test]
    fn target_peaks_at_the_rounded_centre() {
        // Box centre (0.5, 0.25) on an 8 x 8 map -> cell (4, 2); 0.3 x 0.3 box -> radius 0.
        let m = gaussian_target([0.35, 0.1, 0.3, 0.3], 8);
        assert_eq!(m[2 * 8 + 4], 1.0);
        assert_eq!(m.iter().filter(|&&v| v > 0.0).count(), 1);
        // A large box gets a spread target, still peaking at 1.
        let m = gaussian_target([0.1, 0.1, 0.8, 0.8], 16);
        assert_eq!(m.iter().cloned().fold(0.0, f32::max), 1.0);
        assert!(m.iter().filter(|&&v| v > 0.0).count() > 9);
    }

    #[test]
    fn giou_of_known_boxes() {
        let a = Tensor::from_slice(&[0.0f32, 0.0, 2.0, 2.0, 0.0, 0.0, 1.0, 1.0]).view([2, 4]);
        let b = Tensor::from_slice(&[1.0f32, 1.0, 3.0, 3.0, 2.0, 2.0, 3.0, 3.0]).view([2, 4]);
        let (g, iou) = giou(&a, &b);
        // Overlap 1, union 7, hull 9: iou 1/7, giou 1/7 - 2/9. Disjoint unit boxes: hull 9, union 2.
        let g: Vec<f32> = Vec::try_from(g).unwrap();
        let iou: Vec<f32> = Vec::try_from(iou).unwrap();
        assert!((iou[0] - 1.0 / 7.0).abs() < 1e-6 && iou[1] == 0.0);
        assert!((g[0] - (1.0 / 7.0 - 2.0 / 9.0)).abs() < 1e-6);
        assert!((g[1] - (0.0 - 7.0 / 9.0)).abs() < 1e-6);
    }

    #[test]
    fn focal_loss_rewards_the_right_peak() {
        let gt = Tensor::from_slice(&[0.0f32, 1.0, 0.5, 0.0]).view([1, 1, 2, 2]);
        let good = Tensor::from_slice(&[0.01f32, 0.9, 0.3, 0.01]).view([1, 1, 2, 2]);
        let bad = Tensor::from_slice(&[0.9f32, 0.1, 0.3, 0.9]).view([1, 1, 2, 2]);
        let (lg, lb) = (focal_loss(&good, &gt).double_value(&[]), focal_loss(&bad, &gt).double_value(&[]));
        // Hand computation for `good`: pos -(0.1^2 ln 0.9); neg (1-0.5)^4 0.3^2 ln 0.7 + 2 * 0.01^2 ln 0.99.
        let expect = -(0.01 * 0.9f64.ln() + 0.0625 * 0.09 * 0.7f64.ln() + 2.0 * 1e-4 * 0.99f64.ln());
        assert!((lg - expect).abs() < 1e-6, "{lg} vs {expect}");
        assert!(lb > 10.0 * lg);
    }

    #[test]
    fn peak_box_reads_the_maps_at_the_argmax() {
        let mut score = vec![0.1f32; 16];
        score[2 * 4 + 3] = 0.9; // row 2, col 3
        let out = HeadOutput {
            score_map: Tensor::from_slice(&score).view([1, 1, 4, 4]),
            size_map: Tensor::full([1, 2, 4, 4], 0.25, (Kind::Float, tch::Device::Cpu)),
            offset_map: Tensor::full([1, 2, 4, 4], 0.5, (Kind::Float, tch::Device::Cpu)),
        };
        let b: Vec<f32> = Vec::try_from(peak_box(&out).view([-1])).unwrap();
        assert_eq!(b, vec![3.5 / 4.0, 2.5 / 4.0, 0.25, 0.25]);
    }
}
