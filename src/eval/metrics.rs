//! One-pass-evaluation scores of the RGB-T benchmarks, rule for rule as the PyPI `rgbt` toolkit
//! 1.0.1 computes them (`rgbt/metrics/metrics.py`, `rgbt/utils.py`), which the LasHeR, RGBT234
//! and GTOT papers' numbers come from.
//!
//! The toolkit's arithmetic is numpy float32 (boxes load as float32 and numpy 2 keeps float32 for
//! scalar maths with Python numbers), while its thresholds are float64 `np.linspace` values. The
//! per-frame IoU and centre error are therefore computed in `f32` here in the toolkit's operation
//! order and compared in `f64`, so frames exactly on a threshold fall on the same side.
//!
//! Conventions shared by every benchmark (the toolkit's "strict" mode, which is what runs unless
//! a user calls `RGBT_start()` by hand):
//! * boxes are `x, y, w, h` with the pixel-inclusive convention: the right edge is `x + w - 1`,
//!   the centre `x + (w - 1) / 2`;
//! * raw results are rounded to integers (numpy `round`, ties to even) when loaded;
//! * success counts `IoU > t` for 21 thresholds `t = 0, 0.05, ..., 1`, its score is the mean of
//!   the curve; precision counts `error <= t` (GTOT: `< t`).

/// A box `[x, y, w, h]` in float32, as the toolkit holds it.
pub type Rect32 = [f32; 4];

/// Errors of the score computations and their inputs.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("sequence {seq}: {n_result} result boxes for {n_gt} ground-truth boxes")]
    Length { seq: String, n_result: usize, n_gt: usize },
    #[error("sequence {seq}: {what}")]
    Sequence { seq: String, what: String },
    #[error("no sequences to score")]
    Empty,
}

/// The scores of one tracker on one benchmark, with the curves behind them (fractions, not
/// percent).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Area under the success curve (mean over the IoU thresholds).
    pub success_auc: f64,
    /// Precision at the benchmark's representative centre-error threshold (20 px; GTOT 5 px).
    pub precision: f64,
    /// Normalised precision at 0.2 (LasHeR and VisEvent rules only).
    pub norm_precision: Option<f64>,
    /// Success rate per IoU threshold in [`Scores::success_thresholds`].
    pub success_curve: Vec<f64>,
    pub success_thresholds: Vec<f64>,
    /// Precision per centre-error threshold (pixels) in [`Scores::precision_thresholds_px`].
    pub precision_curve: Vec<f64>,
    pub precision_thresholds_px: Vec<f64>,
    pub norm_precision_curve: Option<Vec<f64>>,
    pub norm_precision_thresholds: Option<Vec<f64>>,
    /// Frames scored, over all sequences.
    pub n_frames: usize,
    pub n_sequences: usize,
}

/// `np.linspace(start, stop, num)` exactly: `i * step + start`, the last value set to `stop`.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// Success thresholds: `np.linspace(0, 1, 21)`.
pub fn iou_thresholds() -> Vec<f64> {
    linspace(0.0, 1.0, 21)
}

/// numpy's `maximum`/`minimum` propagate NaN, Rust's `f32::max` does not.
fn np_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a >= b {
        a
    } else {
        b
    }
}

fn np_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a <= b {
        a
    } else {
        b
    }
}

/// `rgbt.utils.IoU` (pixel-inclusive corners).
pub fn iou(r1: &Rect32, r2: &Rect32) -> f32 {
    let ltrb = |r: &Rect32| [r[0], r[1], r[2] + r[0] - 1.0, r[3] + r[1] - 1.0];
    let [x1, y1, x2, y2] = ltrb(r1);
    let [tx1, ty1, tx2, ty2] = ltrb(r2);
    let xx1 = np_max(tx1, x1);
    let yy1 = np_max(ty1, y1);
    let xx2 = np_min(tx2, x2);
    let yy2 = np_min(ty2, y2);
    let ww = np_max(0.0, xx2 - xx1 + 1.0);
    let hh = np_max(0.0, yy2 - yy1 + 1.0);
    let area = r1[3] * r1[2];
    let target_a = r2[3] * r2[2];
    let inter = ww * hh;
    inter / (area + target_a - inter)
}

fn centre(r: &Rect32) -> (f32, f32) {
    ((r[2] - 1.0) / 2.0 + r[0], (r[3] - 1.0) / 2.0 + r[1])
}

/// `rgbt.utils.CLE`: centre location error in pixels; `gt` second.
pub fn centre_error_px(r: &Rect32, gt: &Rect32) -> f32 {
    let (c1, c2) = (centre(r), centre(gt));
    let (dx, dy) = (c1.0 - c2.0, c1.1 - c2.1);
    (dx * dx + dy * dy).sqrt()
}

/// `rgbt.utils.normalize_CLE`: both centres divided by the ground-truth size (plus the
/// toolkit's 1e-8, which float32 mostly absorbs).
pub fn norm_centre_error(r: &Rect32, gt: &Rect32) -> f32 {
    let (c1, c2) = (centre(r), centre(gt));
    let (w, h) = (gt[2] + 1e-8, gt[3] + 1e-8);
    let (dx, dy) = (c1.0 / w - c2.0 / w, c1.1 / h - c2.1 / h);
    (dx * dx + dy * dy).sqrt()
}

/// `np.round` on float32: ties to even.
pub fn round_box(r: &Rect32) -> Rect32 {
    r.map(|v| v.round_ties_even())
}

/// GTOT ground truth is `left, top, right, bottom`; `rgbt.utils.ltrb_2_ltwh` (strict).
pub fn ltrb_to_ltwh(r: &Rect32) -> Rect32 {
    [r[0], r[1], r[2] - r[0] + 1.0, r[3] - r[1] + 1.0]
}

/// The text with Python's universal newlines (`\r\n`, `\r` and `\n` all end a line), as the
/// toolkits read files: a few RGBT234 ground-truth files have bare `\r` line breaks inside.
pub fn universal_lines(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        text.into()
    }
}

/// One sequence's raw result and ground truth, already loaded.
#[derive(Debug, Clone)]
pub struct SeqBoxes {
    pub name: String,
    /// The tracker's boxes, `x, y, w, h`. The scores round them as the toolkit does on loading
    /// (already done, so a no-op, for files read by [`super::boxfile::read_result`]).
    pub result: Vec<Rect32>,
    /// Ground truth (RGBT234 and GTOT: the visible camera's).
    pub gt: Vec<Rect32>,
    /// The infrared camera's ground truth (RGBT234, GTOT), same length as `gt`.
    pub gt_infrared: Option<Vec<Rect32>>,
}

fn frac_above(vals: &[f32], t: f64) -> f64 {
    vals.iter().filter(|&&v| v as f64 > t).count() as f64 / vals.len() as f64
}

fn frac_at_most(vals: &[f32], t: f64) -> f64 {
    vals.iter().filter(|&&v| v as f64 <= t).count() as f64 / vals.len() as f64
}

fn mean_rows(rows: &[Vec<f64>]) -> Vec<f64> {
    let n = rows.len() as f64;
    let width = rows.first().map(Vec::len).unwrap_or(0);
    (0..width).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n).collect()
}

/// The result boxes as `SR_LasHeR` / `PR_LasHeR` / `NPR` prepare them: rounded, frame 0
/// replaced by the ground truth, cut to the ground truth's length, and a box with `w <= 0` or
/// `h <= 0` replaced by the previous frame's.
fn lasher_serial(seq: &SeqBoxes) -> Result<Vec<Rect32>, MetricsError> {
    let n_gt = seq.gt.len();
    if seq.result.len() < n_gt || n_gt == 0 {
        // The toolkit indexes past the end (IndexError) for short results.
        return Err(MetricsError::Length { seq: seq.name.clone(), n_result: seq.result.len(), n_gt });
    }
    let mut serial: Vec<Rect32> = seq.result[..n_gt].iter().map(round_box).collect();
    serial[0] = seq.gt[0];
    for i in 1..n_gt {
        if serial[i][2] <= 0.0 || serial[i][3] <= 0.0 {
            serial[i] = serial[i - 1];
        }
    }
    Ok(serial)
}

/// A ground-truth box with any value `<= 0` marks a frame the LasHeR toolkit scores as -1:
/// never a success (`-1 > t` is false) but always within precision (`-1 <= t` is true).
fn lasher_gt_invalid(gt: &Rect32) -> bool {
    gt.iter().any(|&v| v <= 0.0)
}

/// LasHeR (and, with the same rules, VisEvent): `SR_LasHeR`, `PR_LasHeR` and `NPR` of the
/// `rgbt` toolkit. The ground truth is rounded like the results, as the toolkit loads both with
/// the same function.
pub fn lasher(seqs: &[SeqBoxes]) -> Result<Scores, MetricsError> {
    if seqs.is_empty() {
        return Err(MetricsError::Empty);
    }
    let (sr_t, pr_t, npr_t) = (iou_thresholds(), linspace(0.0, 50.0, 51), linspace(0.0, 0.5, 51));
    let (mut sr, mut pr, mut npr) = (Vec::new(), Vec::new(), Vec::new());
    let mut n_frames = 0;
    for seq in seqs {
        let gt_rounded = SeqBoxes { gt: seq.gt.iter().map(round_box).collect(), ..seq.clone() };
        let serial = lasher_serial(&gt_rounded)?;
        let gt = &gt_rounded.gt;
        let mut ious: Vec<f32> = serial.iter().zip(gt).map(|(r, g)| iou(r, g)).collect();
        let mut errs: Vec<f32> = serial.iter().zip(gt).map(|(r, g)| centre_error_px(r, g)).collect();
        let mut nerrs: Vec<f32> = serial.iter().zip(gt).map(|(r, g)| norm_centre_error(r, g)).collect();
        for (i, g) in gt.iter().enumerate() {
            if lasher_gt_invalid(g) {
                ious[i] = -1.0;
                errs[i] = -1.0;
                nerrs[i] = -1.0;
            }
        }
        n_frames += ious.len();
        sr.push(sr_t.iter().map(|&t| frac_above(&ious, t)).collect::<Vec<_>>());
        pr.push(pr_t.iter().map(|&t| frac_at_most(&errs, t)).collect::<Vec<_>>());
        npr.push(npr_t.iter().map(|&t| frac_at_most(&nerrs, t)).collect::<Vec<_>>());
    }
    let (sr_curve, pr_curve, npr_curve) = (mean_rows(&sr), mean_rows(&pr), mean_rows(&npr));
    Ok(Scores {
        success_auc: sr_curve.iter().sum::<f64>() / sr_curve.len() as f64,
        precision: pr_curve[20],
        norm_precision: Some(npr_curve[20]),
        success_curve: sr_curve,
        success_thresholds: sr_t,
        precision_curve: pr_curve,
        precision_thresholds_px: pr_t,
        norm_precision_curve: Some(npr_curve),
        norm_precision_thresholds: Some(npr_t),
        n_frames,
        n_sequences: seqs.len(),
    })
}

/// Per-frame best of the visible and infrared ground truth (`MSR`/`MPR`): the larger IoU and the
/// smaller centre error. The results are rounded; frame 0 is kept as the tracker wrote it.
fn max_modality(seq: &SeqBoxes) -> Result<(Vec<f32>, Vec<f32>), MetricsError> {
    let gt_i = seq
        .gt_infrared
        .as_ref()
        .ok_or_else(|| MetricsError::Sequence { seq: seq.name.clone(), what: "no infrared ground truth".into() })?;
    if gt_i.len() != seq.gt.len() {
        return Err(MetricsError::Sequence {
            seq: seq.name.clone(),
            what: format!("{} visible but {} infrared ground-truth boxes", seq.gt.len(), gt_i.len()),
        });
    }
    let serial: Vec<Rect32> = seq.result.iter().map(round_box).collect();
    // `serial_process` zips, so the shorter of result and ground truth decides the frames.
    let n = serial.len().min(seq.gt.len());
    if n == 0 {
        return Err(MetricsError::Length { seq: seq.name.clone(), n_result: serial.len(), n_gt: seq.gt.len() });
    }
    let ious = (0..n).map(|i| np_max(iou(&serial[i], &seq.gt[i]), iou(&serial[i], &gt_i[i]))).collect();
    let errs = (0..n)
        .map(|i| np_min(centre_error_px(&serial[i], &seq.gt[i]), centre_error_px(&serial[i], &gt_i[i])))
        .collect();
    Ok((ious, errs))
}

/// RGBT234 (`MSR`, `MPR`): maximum success and precision over the two cameras' ground truth,
/// averaged per sequence.
pub fn rgbt234(seqs: &[SeqBoxes]) -> Result<Scores, MetricsError> {
    if seqs.is_empty() {
        return Err(MetricsError::Empty);
    }
    let (sr_t, pr_t) = (iou_thresholds(), linspace(0.0, 50.0, 51));
    let (mut sr, mut pr) = (Vec::new(), Vec::new());
    let mut n_frames = 0;
    for seq in seqs {
        let (ious, errs) = max_modality(seq)?;
        n_frames += ious.len();
        sr.push(sr_t.iter().map(|&t| frac_above(&ious, t)).collect::<Vec<_>>());
        pr.push(pr_t.iter().map(|&t| frac_at_most(&errs, t)).collect::<Vec<_>>());
    }
    let (sr_curve, pr_curve) = (mean_rows(&sr), mean_rows(&pr));
    Ok(Scores {
        success_auc: sr_curve.iter().sum::<f64>() / sr_curve.len() as f64,
        precision: pr_curve[20],
        norm_precision: None,
        success_curve: sr_curve,
        success_thresholds: sr_t,
        precision_curve: pr_curve,
        precision_thresholds_px: pr_t,
        norm_precision_curve: None,
        norm_precision_thresholds: None,
        n_frames,
        n_sequences: seqs.len(),
    })
}

/// GTOT (`MSR_GTOT`, `MPR_GTOT`): the same per-frame maxima as RGBT234 but pooled over all
/// frames of all sequences, precision with a strict `< t` at 5 px (thresholds 0..25 step 0.5),
/// and success as the trapezoid area under the pooled curve. `gt`/`gt_infrared` must already be
/// converted from GTOT's `l,t,r,b` with [`ltrb_to_ltwh`].
pub fn gtot(seqs: &[SeqBoxes]) -> Result<Scores, MetricsError> {
    if seqs.is_empty() {
        return Err(MetricsError::Empty);
    }
    let (sr_t, pr_t) = (iou_thresholds(), linspace(0.0, 25.0, 51));
    let mut sr_counts = vec![0usize; sr_t.len()];
    let mut pr_counts = vec![0usize; pr_t.len()];
    let mut n_frames = 0usize;
    for seq in seqs {
        let (ious, errs) = max_modality(seq)?;
        n_frames += ious.len();
        for (c, &t) in sr_counts.iter_mut().zip(&sr_t) {
            *c += ious.iter().filter(|&&v| v as f64 > t).count();
        }
        for (c, &t) in pr_counts.iter_mut().zip(&pr_t) {
            *c += errs.iter().filter(|&&v| (v as f64) < t).count();
        }
    }
    let step = sr_t[1];
    let a: f64 = sr_counts[1..].iter().map(|&c| c as f64 * step).sum();
    let b: f64 = sr_counts[..sr_counts.len() - 1].iter().map(|&c| c as f64 * step).sum();
    let nf = n_frames as f64;
    Ok(Scores {
        success_auc: (a + b) / 2.0 / nf,
        precision: pr_counts[10] as f64 / nf,
        norm_precision: None,
        success_curve: sr_counts.iter().map(|&c| c as f64 / nf).collect(),
        success_thresholds: sr_t,
        precision_curve: pr_counts.iter().map(|&c| c as f64 / nf).collect(),
        precision_thresholds_px: pr_t,
        norm_precision_curve: None,
        norm_precision_thresholds: None,
        n_frames,
        n_sequences: seqs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_uses_inclusive_pixels() {
        // Two 10x10 boxes overlapping by 5 columns: 50 / 150.
        let v = iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 10.0, 10.0]);
        println!("iou {v} vs 1/3, diff {:e} (tol 1e-6)", (v as f64 - 1.0 / 3.0).abs());
        assert!((v as f64 - 1.0 / 3.0).abs() < 1e-6);
        // Touching boxes share no pixel: the right edge of the first is x = 9.
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 10.0, 10.0]), 0.0);
    }

    #[test]
    fn centre_error_and_normalised() {
        let e = centre_error_px(&[3.0, 4.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]);
        assert_eq!(e, 5.0);
        let n = norm_centre_error(&[10.0, 0.0, 20.0, 10.0], &[0.0, 0.0, 20.0, 10.0]);
        println!("normalised error {n} vs 0.5");
        assert!((n - 0.5).abs() < 1e-6);
    }

    #[test]
    fn rounding_is_ties_to_even_like_numpy() {
        assert_eq!(round_box(&[0.5, 1.5, 2.5, -0.5]), [0.0, 2.0, 2.0, -0.0]);
    }

    #[test]
    fn linspace_matches_numpy_values() {
        let t = iou_thresholds();
        assert_eq!(t.len(), 21);
        // numpy: np.linspace(0, 1, 21)[3] == 0.15000000000000002
        assert_eq!(t[3], 0.15000000000000002);
        assert_eq!(t[20], 1.0);
        assert_eq!(linspace(0.0, 25.0, 51)[10], 5.0);
    }

    #[test]
    fn lasher_hand_computed() {
        // Three frames: frame 0 is replaced by the ground truth (IoU 1), frame 1 exact, frame 2
        // has invalid ground truth (counted -1: a failure for success, a hit for precision).
        let gt = vec![[10.0, 10.0, 20.0, 20.0], [12.0, 10.0, 20.0, 20.0], [0.0, 0.0, 0.0, 0.0]];
        let result = vec![[100.0, 100.0, 5.0, 5.0], [12.0, 10.0, 20.0, 20.0], [50.0, 50.0, 20.0, 20.0]];
        let s = lasher(&[SeqBoxes { name: "a".into(), result, gt, gt_infrared: None }]).unwrap();
        // IoU = [1, 1, -1]: success 2/3 at thresholds 0..0.95, 0 at 1.0 (strict >).
        let auc = (20.0 * 2.0 / 3.0) / 21.0;
        println!("success {} vs {auc}, diff {:e} (tol 1e-12)", s.success_auc, (s.success_auc - auc).abs());
        assert!((s.success_auc - auc).abs() < 1e-12);
        assert_eq!(s.precision, 1.0);
        assert_eq!(s.norm_precision, Some(1.0));
    }

    #[test]
    fn lasher_replaces_empty_boxes_by_the_previous() {
        let gt = vec![[10.0, 10.0, 20.0, 20.0]; 3];
        let result = vec![[0.0; 4], [10.0, 10.0, 20.0, 20.0], [10.0, 10.0, 0.0, 20.0]];
        let s = lasher(&[SeqBoxes { name: "a".into(), result, gt, gt_infrared: None }]).unwrap();
        // Frame 2 takes frame 1's box: every frame is exact.
        assert_eq!(s.success_curve[19], 1.0);
    }

    #[test]
    fn lasher_rejects_short_results() {
        let gt = vec![[10.0, 10.0, 20.0, 20.0]; 3];
        let err = lasher(&[SeqBoxes { name: "a".into(), result: vec![[0.0; 4]], gt, gt_infrared: None }]);
        assert!(matches!(err, Err(MetricsError::Length { n_result: 1, n_gt: 3, .. })));
    }

    #[test]
    fn gtot_pooled_hand_computed() {
        // One sequence, two frames: IoU 1 and 0; errors 0 and large.
        let gt = vec![[0.0, 0.0, 10.0, 10.0]; 2];
        let result = vec![[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 10.0, 10.0]];
        let s = gtot(&[SeqBoxes { name: "a".into(), result, gt: gt.clone(), gt_infrared: Some(gt) }]).unwrap();
        // Counts above t: 1 for t < 1, 0 at t = 1; trapezoid: (19 + 20) * 0.05 / 2 / 2 frames.
        let want = (19.0 + 20.0) * 0.05 / 2.0 / 2.0;
        println!("gtot success {} vs {want}", s.success_auc);
        assert!((s.success_auc - want).abs() < 1e-12);
        assert_eq!(s.precision, 0.5);
    }
}
