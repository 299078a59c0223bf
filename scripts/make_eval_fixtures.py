#!/usr/bin/env python3
"""Synthetic benchmark inputs for the metric tests, scored with the reference toolkits.

Writes tests/data/eval/ (relative to the repository root):
  lasher/seqs.txt, lasher/gt/<seq>.txt, lasher/results/<tracker>/<seq>.txt
  rgbt234/seqs.txt, rgbt234/gt/<seq>/{visible,infrared}.txt, rgbt234/results/<tracker>/<seq>.txt
  gtot/seqs.txt, gtot/gt/<seq>/groundTruth_{v,i}.txt (l,t,r,b), gtot/results/<tracker>/<seq>.txt
  depthtrack/seqs.txt, depthtrack/gt/<seq>/groundtruth.txt (nan rows when absent),
      depthtrack/results/<tracker>/longterm/<seq>/<seq>_001.txt and <seq>_001_confidence.value
  expected.json: the scores computed here with the toolkits.

The RGB-T scores come from PyPI `rgbt` 1.0.1 (its LasHeR/RGBT234/GTOT classes with the
ground-truth paths pointed at these files). The DepthTrack scores come from PyPI `vot-toolkit`
0.9.0: its own `determine_thresholds`, `compute_tpr_curves` and region parser; the three
aggregation steps (`PrecisionRecallCurve`, `FScoreCurve`, `PrecisionRecall`) need a whole
workspace to run, so their few lines of arithmetic are restated below, unchanged.

Environment: python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r scripts/requirements-eval.txt
The output is deterministic (fixed seed).
"""
import json
import math
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "eval")
TRACKERS = ("good", "poor")
RNG = np.random.default_rng(20261126)


def write_rows(path, rows, fmt="{:.2f}", sep=","):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for r in rows:
            if isinstance(r, str):
                f.write(r + "\n")
            else:
                f.write(sep.join(fmt.format(v) for v in r) + "\n")


def walk_gt(n, w_img=320, h_img=240):
    """A target box drifting smoothly inside the image, x,y,w,h with fractional values."""
    x, y, w, h = RNG.uniform(40, 200), RNG.uniform(30, 150), RNG.uniform(20, 60), RNG.uniform(20, 60)
    rows = []
    for _ in range(n):
        x = float(np.clip(x + RNG.normal(0, 3), 0, w_img - w))
        y = float(np.clip(y + RNG.normal(0, 3), 0, h_img - h))
        w = float(np.clip(w + RNG.normal(0, 1), 8, 80))
        h = float(np.clip(h + RNG.normal(0, 1), 8, 80))
        rows.append([x, y, w, h])
    return rows


def tracker_rows(gt, noise, drift_from):
    """Ground truth plus noise; after `drift_from` the tracker slides off the target. A few
    boxes land on .5 (rounding ties), a few have zero size (the toolkit's invalid boxes)."""
    rows = []
    off = np.zeros(2)
    for i, (x, y, w, h) in enumerate(gt):
        if i >= drift_from:
            off += RNG.normal(4, 2, size=2)
        r = [x + off[0] + RNG.normal(0, noise), y + off[1] + RNG.normal(0, noise),
             w * RNG.uniform(0.8, 1.2), h * RNG.uniform(0.8, 1.2)]
        if i % 11 == 5:
            r = [math.floor(r[0]) + 0.5, math.floor(r[1]) + 0.5, math.floor(r[2]) + 0.5, r[3]]
        if i % 17 == 9:
            r[2] = 0.0
        rows.append(r)
    return rows


def make_rgbt(kind, seqs, lengths):
    base = os.path.join(ROOT, kind)
    write_rows(os.path.join(base, "seqs.txt"), seqs)
    gts = {}
    for s, n in zip(seqs, lengths):
        gt_v = walk_gt(n)
        # The infrared camera's box is slightly shifted (registration error), as in RGBT234/GTOT.
        gt_i = [[x + RNG.normal(1.5, 1), y + RNG.normal(-1, 1), w, h] for x, y, w, h in gt_v]
        if kind == "lasher":
            # Invalid ground truth the way LasHeR has it: absent target and a box on the border.
            gt_v[7] = [0, 0, 0, 0]
            gt_v[8] = [0, 0, 0, 0]
            gt_v[12][0] = 0.0
            write_rows(os.path.join(base, "gt", s + ".txt"), gt_v)
        elif kind == "rgbt234":
            write_rows(os.path.join(base, "gt", s, "visible.txt"), gt_v)
            write_rows(os.path.join(base, "gt", s, "infrared.txt"), gt_i)
        else:
            ltrb = lambda r: [r[0], r[1], r[0] + r[2], r[1] + r[3]]
            write_rows(os.path.join(base, "gt", s, "groundTruth_v.txt"), [ltrb(r) for r in gt_v], sep=" ")
            write_rows(os.path.join(base, "gt", s, "groundTruth_i.txt"), [ltrb(r) for r in gt_i], sep=" ")
        gts[s] = gt_v
        for t, noise, drift in (("good", 2.0, n - 5), ("poor", 6.0, n // 2)):
            write_rows(os.path.join(base, "results", t, s + ".txt"), tracker_rows(gt_v, noise, drift))


def score_rgbt():
    from rgbt.dataset.basedataset import BaseRGBTDataet
    from rgbt import LasHeR, RGBT234, GTOT
    from rgbt.metrics import PR_LasHeR, SR_LasHeR, NPR, MPR, MSR

    out = {}
    seqs = lambda k: list(np.loadtxt(os.path.join(ROOT, k, "seqs.txt"), dtype=str))

    # LasHeR: the class's constructor reads the bundled attribute files, so build it around our
    # ground truth with the base constructor and the same metric objects.
    ds = LasHeR.__new__(LasHeR)
    BaseRGBTDataet.__init__(ds, gt_path=os.path.join(ROOT, "lasher", "gt"), seqs=seqs("lasher"), bbox_type="ltwh")
    ds.PR_fun, ds.SR_fun, ds.NPR_fun = PR_LasHeR(), SR_LasHeR(), NPR()
    out["lasher"] = {}
    for t in TRACKERS:
        ds(t, os.path.join(ROOT, "lasher", "results", t))
        out["lasher"][t] = {"success": float(ds.SR(t)[0]), "precision": float(ds.PR(t)[0]),
                            "norm_precision": float(ds.NPR(t)[0])}

    ds = RGBT234.__new__(RGBT234)
    BaseRGBTDataet.__init__(ds, gt_path=os.path.join(ROOT, "rgbt234", "gt"), seqs=seqs("rgbt234"), bbox_type="ltwh",
                            v_name="visible.txt", i_name="infrared.txt")
    ds.MPR_fun, ds.MSR_fun = MPR(), MSR()
    out["rgbt234"] = {}
    for t in TRACKERS:
        ds(t, os.path.join(ROOT, "rgbt234", "results", t))
        out["rgbt234"][t] = {"success": float(ds.MSR(t)[0]), "precision": float(ds.MPR(t)[0])}

    ds = GTOT(gt_path=os.path.join(ROOT, "gtot", "gt"), seq_name_path=os.path.join(ROOT, "gtot", "seqs.txt"))
    out["gtot"] = {}
    for t in TRACKERS:
        ds(t, os.path.join(ROOT, "gtot", "results", t))
        out["gtot"][t] = {"success": float(ds.MSR(t)[0]), "precision": float(ds.MPR(t)[0])}
    return out


def make_depthtrack(seqs, lengths, size):
    base = os.path.join(ROOT, "depthtrack")
    write_rows(os.path.join(base, "seqs.txt"), seqs)
    for s, n in zip(seqs, lengths):
        gt = walk_gt(n, *size)
        gt_rows = [r if not (15 <= i < 22) else "nan,nan,nan,nan" for i, r in enumerate(gt)]
        write_rows(os.path.join(base, "gt", s, "groundtruth.txt"), gt_rows)
        for t, noise, drift in (("good", 2.0, n - 5), ("poor", 6.0, n // 2)):
            rows = tracker_rows(gt, noise, drift)
            conf = []
            for i in range(n):
                absent = 15 <= i < 22
                c = RNG.uniform(0.0, 0.4) if absent else RNG.uniform(0.3, 1.0)
                if t == "poor":
                    c = RNG.uniform(0.0, 1.0)
                conf.append(round(float(c), 4))
            traj = ["1"] + [",".join("{:.2f}".format(v) for v in r) for r in rows[1:]]
            # The tracker reports "target absent" as a special region on a few frames.
            traj[16] = "0"
            d = os.path.join(base, "results", t, "longterm", s)
            write_rows(os.path.join(d, s + "_001.txt"), traj)
            write_rows(os.path.join(d, s + "_001_confidence.value"), [""] + ["{:.4f}".format(c) for c in conf[1:]])


def score_depthtrack(size):
    from vot.analysis.longterm import determine_thresholds, compute_tpr_curves
    from vot.region.io import read_trajectory

    base = os.path.join(ROOT, "depthtrack")
    seqs = [l.strip() for l in open(os.path.join(base, "seqs.txt")) if l.strip()]

    class Seq:
        def __init__(self, gt):
            self._gt = gt
            self.size = size

        def groundtruth(self):
            return self._gt

    def parse_float(line):  # vot.tracker.results.Trajectory.read
        return None if not line.strip() else float(line.strip())

    out = {}
    for t in TRACKERS:
        runs = []
        for s in seqs:
            gt = read_trajectory(os.path.join(base, "gt", s, "groundtruth.txt"))
            d = os.path.join(base, "results", t, "longterm", s)
            traj = read_trajectory(os.path.join(d, s + "_001.txt"))
            conf = [parse_float(l) for l in open(os.path.join(d, s + "_001_confidence.value"))]
            conf = [0 if c is None else c for c in conf]  # properties(i).get('confidence', 0)
            runs.append((Seq(gt), traj, conf))
        thresholds = determine_thresholds(itertools_chain([c for _, _, c in runs]), 100)
        # PrecisionRecallCurves (one run per sequence) and PrecisionRecallCurve.aggregate
        curve = None
        for seq, traj, conf in runs:
            pr, re = compute_tpr_curves(traj, conf, seq, thresholds, True, True)
            partial = list(zip(pr, re))
            curve = partial if curve is None else [(p1 + p2, r1 + r2) for (p1, r1), (p2, r2) in zip(curve, partial)]
        curve = [(re / len(runs), pr / len(runs)) for pr, re in curve]
        # FScoreCurve (beta 1) and PrecisionRecall
        f_curve = [((1 + 1) * pr_ * re_) / (1 * pr_ + re_) for pr_, re_ in curve]
        f_score = max(f_curve)
        best = f_curve.index(f_score)
        out[t] = {"precision": float(curve[best][1]), "recall": float(curve[best][0]), "f_score": float(f_score),
                  "n_thresholds": len(thresholds)}
    return out


def itertools_chain(lists):
    return [v for l in lists for v in l]


def main():
    import rgbt  # noqa: F401  (fail early when the toolkit is missing)

    make_rgbt("lasher", ["seqA", "seqB", "seqC"], [40, 55, 33])
    make_rgbt("rgbt234", ["car1", "dog2", "man3"], [45, 30, 52])
    make_rgbt("gtot", ["Tunnel", "Otcbvs"], [38, 47])
    size = (320, 240)
    make_depthtrack(["box_room", "cup_desk", "pot_floor"], [50, 60, 45], size)
    import importlib.metadata as md
    expected = {
        "generator": "scripts/make_eval_fixtures.py",
        "versions": {p: md.version(p) for p in ("rgbt", "numpy", "vot-toolkit")},
        "depthtrack_image_size": list(size),
    }
    expected.update(score_rgbt())
    expected["depthtrack"] = score_depthtrack(size)
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
    json.dump(expected, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
