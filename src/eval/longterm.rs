//! Long-term tracking precision, recall and F-score, as the VOT toolkit's long-term analysis
//! (`vot/analysis/longterm.py`: `determine_thresholds`, `compute_tpr_curves`,
//! `PrecisionRecallCurve`, `FScoreCurve`, `PrecisionRecall`; overlaps from
//! `vot/region/raster.py`) computes them for DepthTrack and the VOT-LT challenges.
//!
//! * Thresholds come from all per-frame confidences of the tracker over all sequences (NaN
//!   dropped), sorted descending and sub-sampled to 98 values when there are more, with `+inf`
//!   and `-inf` added at the ends.
//! * Per sequence and threshold `t`, the frames with `confidence >= t` are the reported ones:
//!   precision is their mean overlap (1 when none), recall their summed overlap divided by the
//!   number of frames where the target is visible.
//! * Curves are averaged over sequences; the F-score is `2 P R / (P + R)` per threshold and the
//!   reported triple is the one at the first maximal F.
//!
//! Overlaps are the toolkit's rasterised ones: boxes rounded to whole pixels, clipped to the image,
//! both-absent counts as 1.

/// A region in a VOT trajectory or ground-truth file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Region {
    /// `x, y, w, h` in pixels.
    Rect([f64; 4]),
    /// A special code (`1` initialisation, `0` target absent / NaN box) or no region.
    Special(f64),
}

/// Errors of the long-term scores.
#[derive(Debug, thiserror::Error)]
pub enum LongTermError {
    #[error("line {line}: not a VOT region (one number, or x,y,w,h): {text:?}")]
    Region { line: usize, text: String },
    #[error("line {line}: not a confidence value: {text:?}")]
    Confidence { line: usize, text: String },
    #[error("sequence {seq}: {what}")]
    Sequence { seq: String, what: String },
    #[error("no sequences to score")]
    Empty,
}

impl Region {
    fn is_special(&self) -> bool {
        matches!(self, Region::Special(_))
    }
}

/// `vot.region.io.parse_region` for the special and rectangle cases.
pub fn parse_region(text: &str) -> Option<Region> {
    let tokens: Vec<f64> = text.trim().split(',').map(|t| t.trim().parse::<f64>()).collect::<Result<_, _>>().ok()?;
    match tokens.as_slice() {
        [code] => Some(Region::Special(*code)),
        [x, y, w, h] => {
            if tokens.iter().any(|v| v.is_nan()) {
                Some(Region::Special(0.0))
            } else {
                Some(Region::Rect([*x, *y, *w, *h]))
            }
        }
        _ => None,
    }
}

/// A VOT trajectory or ground-truth text file, one region per line.
pub fn parse_regions(text: &str) -> Result<Vec<Region>, LongTermError> {
    super::metrics::universal_lines(text)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_region(l).ok_or_else(|| LongTermError::Region { line: i + 1, text: l.into() }))
        .collect()
}

/// A `*_confidence.value` file: one value per frame; a blank line (the initialisation frame)
/// is a missing property, which the analysis reads as confidence 0.
pub fn parse_confidences(text: &str) -> Result<Vec<f64>, LongTermError> {
    super::metrics::universal_lines(text)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let l = l.trim();
            if l.is_empty() {
                Ok(0.0)
            } else {
                l.parse::<f64>().map_err(|_| LongTermError::Confidence { line: i + 1, text: l.into() })
            }
        })
        .collect()
}

/// Inclusive integer pixel bounds `(left, top, right, bottom)` as `_bounds_rectangle`; special
/// regions give `(0, 0, 0, 0)`.
fn bounds(r: &Region) -> (i64, i64, i64, i64) {
    match r {
        Region::Rect(d) => {
            let d = d.map(f64::round_ties_even);
            (d[0] as i64, d[1] as i64, (d[0] + d[2] - 1.0) as i64, (d[1] + d[3] - 1.0) as i64)
        }
        Region::Special(_) => (0, 0, 0, 0),
    }
}

/// The pixels of `r` inside the raster bounds, as an inclusive interval pair (may be empty).
fn raster_span(r: &Region, rb: (i64, i64, i64, i64)) -> Option<(i64, i64, i64, i64)> {
    let Region::Rect(_) = r else { return None };
    let (x0, y0, x1, y1) = bounds(r);
    if x0 > rb.2 || x1 < rb.0 || y0 > rb.3 || y1 < rb.1 {
        return None;
    }
    let (l, t, rr, b) = (x0.max(rb.0), y0.max(rb.1), x1.min(rb.2), y1.min(rb.3));
    (l <= rr && t <= b).then_some((l, t, rr, b))
}

fn area(s: Option<(i64, i64, i64, i64)>) -> i64 {
    s.map(|(l, t, r, b)| (r - l + 1) * (b - t + 1)).unwrap_or(0)
}

/// `vot.region.raster.calculate_overlap` for rectangles and special regions, bounded by the
/// image size `(width, height)`.
pub fn overlap(a: &Region, b: &Region, image_size: (i64, i64)) -> f64 {
    let (ba, bb) = (bounds(a), bounds(b));
    let union = (ba.0.min(bb.0), ba.1.min(bb.1), ba.2.max(bb.2), ba.3.max(bb.3));
    if union.0 >= union.2 || union.1 >= union.3 {
        // Two empty regions are the same region.
        return 1.0;
    }
    let rb = (union.0.max(0), union.1.max(0), (image_size.0 - 1).min(union.2), (image_size.1 - 1).min(union.3));
    if rb.0 >= rb.2 || rb.1 >= rb.3 {
        return 0.0;
    }
    let (sa, sb) = (raster_span(a, rb), raster_span(b, rb));
    let inter = match (sa, sb) {
        (Some(p), Some(q)) => {
            let (l, t, r, b) = (p.0.max(q.0), p.1.max(q.1), p.2.min(q.2), p.3.min(q.3));
            if l <= r && t <= b {
                (r - l + 1) * (b - t + 1)
            } else {
                0
            }
        }
        _ => 0,
    };
    let union_px = area(sa) + area(sb) - inter;
    if union_px > 0 {
        inter as f64 / union_px as f64
    } else {
        0.0
    }
}

/// `determine_thresholds(scores, resolution)`.
pub fn determine_thresholds(scores: &[f64], resolution: usize) -> Vec<f64> {
    let mut s: Vec<f64> = scores.iter().copied().filter(|v| !v.is_nan()).collect();
    s.sort_by(|a, b| b.total_cmp(a));
    let n_inner = resolution.saturating_sub(2);
    let mut out = vec![f64::INFINITY];
    if s.len() > n_inner && n_inner > 0 {
        let delta = s.len() / n_inner;
        let idx = super::metrics::linspace(delta as f64, (s.len() - delta) as f64, n_inner);
        out.extend(idx.iter().map(|&i| s[(i.round_ties_even() as usize).min(s.len() - 1)]));
    } else {
        out.extend(s);
    }
    out.push(f64::NEG_INFINITY);
    out
}

/// One sequence of a long-term run.
#[derive(Debug, Clone)]
pub struct LtSequence {
    pub name: String,
    pub trajectory: Vec<Region>,
    pub confidence: Vec<f64>,
    pub groundtruth: Vec<Region>,
    /// Image `(width, height)` in pixels, the bounds of the overlaps.
    pub image_size: (i64, i64),
}

/// Precision, recall and F-score at the best threshold, with the averaged curves.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LtScores {
    pub precision: f64,
    pub recall: f64,
    pub f_score: f64,
    /// Confidence thresholds, from `+inf` down to `-inf`.
    #[serde(with = "non_finite")]
    pub thresholds: Vec<f64>,
    #[serde(with = "non_finite")]
    pub precision_curve: Vec<f64>,
    #[serde(with = "non_finite")]
    pub recall_curve: Vec<f64>,
    /// NaN where precision and recall are both 0.
    #[serde(with = "non_finite")]
    pub f_curve: Vec<f64>,
    pub n_sequences: usize,
}

/// JSON has no infinities or NaN: those values are written as the strings `"inf"`, `"-inf"`
/// and `"nan"` so the thresholds survive a round trip.
mod non_finite {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        Num(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let vals: Vec<Value> = v
            .iter()
            .map(|&x| match x {
                x if x.is_finite() => Value::Num(x),
                x if x.is_nan() => Value::Text("nan".into()),
                x if x > 0.0 => Value::Text("inf".into()),
                _ => Value::Text("-inf".into()),
            })
            .collect();
        vals.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let vals = Vec::<Value>::deserialize(d)?;
        vals.into_iter()
            .map(|v| match v {
                Value::Num(x) => Ok(x),
                Value::Text(t) => match t.as_str() {
                    "inf" => Ok(f64::INFINITY),
                    "-inf" => Ok(f64::NEG_INFINITY),
                    "nan" => Ok(f64::NAN),
                    other => Err(serde::de::Error::custom(format!("not a number: {other:?}"))),
                },
            })
            .collect()
    }
}

/// `compute_tpr_curves` (bounded): precision and recall per threshold.
fn tpr_curves(seq: &LtSequence, thresholds: &[f64]) -> Result<(Vec<f64>, Vec<f64>), LongTermError> {
    let bad = |what: String| LongTermError::Sequence { seq: seq.name.clone(), what };
    if seq.trajectory.len() != seq.groundtruth.len() || seq.trajectory.len() != seq.confidence.len() {
        return Err(bad(format!(
            "{} regions, {} confidences, {} ground-truth regions",
            seq.trajectory.len(),
            seq.confidence.len(),
            seq.groundtruth.len()
        )));
    }
    let overlaps: Vec<f64> =
        seq.trajectory.iter().zip(&seq.groundtruth).map(|(t, g)| overlap(t, g, seq.image_size)).collect();
    let n_visible = seq.groundtruth.iter().filter(|g| !g.is_special()).count();
    if n_visible == 0 {
        return Err(bad("the target is never visible in the ground truth".into()));
    }
    let mut precision = Vec::with_capacity(thresholds.len());
    let mut recall = Vec::with_capacity(thresholds.len());
    for &t in thresholds {
        let picked: Vec<f64> = overlaps.iter().zip(&seq.confidence).filter(|(_, &c)| c >= t).map(|(&o, _)| o).collect();
        if picked.is_empty() {
            precision.push(1.0);
            recall.push(0.0);
        } else {
            let sum: f64 = picked.iter().sum();
            precision.push(sum / picked.len() as f64);
            recall.push(sum / n_visible as f64);
        }
    }
    Ok((precision, recall))
}

/// The `average_tpr` analysis (resolution 100, beta 1) over `seqs`.
pub fn precision_recall(seqs: &[LtSequence]) -> Result<LtScores, LongTermError> {
    if seqs.is_empty() {
        return Err(LongTermError::Empty);
    }
    let all: Vec<f64> = seqs.iter().flat_map(|s| s.confidence.iter().copied()).collect();
    let thresholds = determine_thresholds(&all, 100);
    let mut pr_sum = vec![0.0; thresholds.len()];
    let mut re_sum = vec![0.0; thresholds.len()];
    for seq in seqs {
        let (p, r) = tpr_curves(seq, &thresholds)?;
        for i in 0..thresholds.len() {
            pr_sum[i] += p[i];
            re_sum[i] += r[i];
        }
    }
    let n = seqs.len() as f64;
    let precision_curve: Vec<f64> = pr_sum.iter().map(|v| v / n).collect();
    let recall_curve: Vec<f64> = re_sum.iter().map(|v| v / n).collect();
    let f_curve: Vec<f64> = precision_curve.iter().zip(&recall_curve).map(|(p, r)| 2.0 * p * r / (p + r)).collect();
    // Python's max() keeps the first maximum and never picks a NaN after a number.
    let mut best = 0;
    for (i, f) in f_curve.iter().enumerate() {
        if *f > f_curve[best] || f_curve[best].is_nan() {
            best = i;
        }
    }
    Ok(LtScores {
        precision: precision_curve[best],
        recall: recall_curve[best],
        f_score: f_curve[best],
        thresholds,
        precision_curve,
        recall_curve,
        f_curve,
        n_sequences: seqs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_counts_pixels_inside_the_image() {
        let a = Region::Rect([0.0, 0.0, 10.0, 10.0]);
        let b = Region::Rect([5.0, 0.0, 10.0, 10.0]);
        assert!((overlap(&a, &b, (100, 100)) - 50.0 / 150.0).abs() < 1e-12);
        // Clipped to a 8-pixel-wide image: a keeps 8x10, b keeps 3x10, shared 3x10.
        assert!((overlap(&a, &b, (8, 100)) - 30.0 / 80.0).abs() < 1e-12);
        // Absent target reported as absent: 1; reported present: 0.
        assert_eq!(overlap(&Region::Special(0.0), &Region::Special(0.0), (100, 100)), 1.0);
        assert_eq!(overlap(&a, &Region::Special(0.0), (100, 100)), 0.0);
    }

    #[test]
    fn thresholds_subsample_like_the_toolkit() {
        let scores: Vec<f64> = (0..200).map(|i| i as f64).collect();
        let t = determine_thresholds(&scores, 100);
        assert_eq!(t.len(), 100);
        assert_eq!(t[0], f64::INFINITY);
        // delta = 2; linspace(2, 198, 98)[0] = 2 -> the third largest score.
        assert_eq!(t[1], 197.0);
        assert_eq!(t[98], 199.0 - 198.0);
        let few = determine_thresholds(&[0.5, f64::NAN, 0.9], 100);
        assert_eq!(few, vec![f64::INFINITY, 0.9, 0.5, f64::NEG_INFINITY]);
    }

    #[test]
    fn precision_recall_hand_computed() {
        // Four frames, target visible in three. Overlaps 1, 0.5, 0 (a box while the target is
        // absent), 0 (no box while the target is visible).
        let gt = vec![
            Region::Rect([0.0, 0.0, 10.0, 10.0]),
            Region::Rect([0.0, 0.0, 10.0, 10.0]),
            Region::Special(0.0),
            Region::Rect([0.0, 0.0, 10.0, 10.0]),
        ];
        let traj = vec![
            Region::Rect([0.0, 0.0, 10.0, 10.0]),
            Region::Rect([0.0, 0.0, 10.0, 5.0]),
            Region::Rect([0.0, 0.0, 10.0, 10.0]),
            Region::Special(0.0),
        ];
        let seq = LtSequence {
            name: "s".into(),
            trajectory: traj,
            confidence: vec![0.9, 0.8, 0.7, 0.1],
            groundtruth: gt,
            image_size: (50, 50),
        };
        let s = precision_recall(&[seq]).unwrap();
        // Thresholds inf, .9, .8, .7, .1, -inf:
        //   .9: P 1, R 1/3, F 0.5;  .8: P .75, R .5, F .6;  .7: P .5, R .5, F .5;
        //   .1 and -inf: P .375, R .5.
        assert_eq!(s.thresholds.len(), 6);
        println!("P {} R {} F {} (want 0.75 0.5 0.6)", s.precision, s.recall, s.f_score);
        assert!((s.precision - 0.75).abs() < 1e-12);
        assert!((s.recall - 0.5).abs() < 1e-12);
        assert!((s.f_score - 0.6).abs() < 1e-12);
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_region("1"), Some(Region::Special(1.0)));
        assert_eq!(parse_region("nan,nan,nan,nan"), Some(Region::Special(0.0)));
        assert_eq!(parse_region("1,2,3,4"), Some(Region::Rect([1.0, 2.0, 3.0, 4.0])));
        assert_eq!(parse_region("1,2,3"), None);
        assert_eq!(parse_confidences("\n0.5\n").unwrap(), vec![0.0, 0.5]);
        assert!(parse_confidences("x").is_err());
    }
}
