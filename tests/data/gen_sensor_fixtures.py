#!/usr/bin/env python3
"""Generates the small OpenCV reference fixtures used by tests/sensor_decode.rs and
tests/preprocess_golden.rs (cv2_reference.safetensors and the PNG/JPEG files beside it).

Needs numpy and opencv-python-headless (made with numpy 2.4.6, opencv-python-headless 5.0.0 on
x86-64). Run from anywhere: python3 tests/data/gen_sensor_fixtures.py
Everything is seeded, so a rerun rewrites identical files (the JPEG only with the same libjpeg).
"""
import json
import math
import os
import struct

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261126)
tensors = {}


def put(name, array):
    tensors[name] = np.ascontiguousarray(array)


# --- cv2.resize (default INTER_LINEAR) on uint8 for odd sizes and channel counts -------------
# (channels, in_w, in_h, out_w, out_h): upscales, non-integer downscales, exact 2x for 3 channels
# (INTER_AREA rounding half up) and for 5/6 channels (half to even), degenerate 1-px inputs.
RESIZE_CASES = [
    (1, 7, 5, 13, 9),
    (2, 9, 11, 4, 5),
    (3, 20, 14, 10, 7),
    (5, 20, 14, 10, 7),
    (6, 40, 40, 20, 20),
    (4, 33, 17, 11, 29),
    (6, 13, 12, 40, 40),
    (6, 57, 61, 32, 32),
    (1, 1, 1, 3, 2),
    (3, 5, 1, 2, 3),
    (7, 6, 9, 15, 4),
]
for i, (c, iw, ih, ow, oh) in enumerate(RESIZE_CASES):
    # Smooth content plus noise, so that rounding ties actually occur.
    yy, xx = np.mgrid[0:ih, 0:iw]
    base = (xx * 37 + yy * 23)[:, :, None] + np.arange(c)[None, None, :] * 50
    img = ((base + rng.integers(0, 4, (ih, iw, c))) % 256).astype(np.uint8)
    out = cv2.resize(img, (ow, oh))
    put(f"resize.{i}.src", img)
    put(f"resize.{i}.dst", out.reshape(oh, ow, c))

# --- sample_target (official code, lib/train/data/processing_utils.py) on random boxes -------


def sample_target(im, target_bb, search_area_factor, output_sz):
    x, y, w, h = target_bb
    crop_sz = math.ceil(math.sqrt(w * h) * search_area_factor)
    if crop_sz < 1:
        raise Exception("Too small bounding box.")
    x1 = round(x + 0.5 * w - crop_sz * 0.5)
    x2 = x1 + crop_sz
    y1 = round(y + 0.5 * h - crop_sz * 0.5)
    y2 = y1 + crop_sz
    x1_pad = max(0, -x1)
    x2_pad = max(x2 - im.shape[1] + 1, 0)
    y1_pad = max(0, -y1)
    y2_pad = max(y2 - im.shape[0] + 1, 0)
    im_crop = im[y1 + y1_pad:y2 - y2_pad, x1 + x1_pad:x2 - x2_pad, :]
    im_crop_padded = cv2.copyMakeBorder(im_crop, y1_pad, y2_pad, x1_pad, x2_pad, cv2.BORDER_CONSTANT)
    assert im_crop_padded.shape[:2] == (crop_sz, crop_sz)
    resize_factor = output_sz / crop_sz
    return cv2.resize(im_crop_padded, (output_sz, output_sz)), resize_factor


scene = rng.integers(0, 256, (29, 37, 6), dtype=np.uint8)
put("crops.scene", scene)
boxes = []
while len(boxes) < 40:
    w, h = float(rng.uniform(0.7, 30)), float(rng.uniform(0.7, 30))
    x, y = float(rng.uniform(-w * 0.8, 37 - w * 0.2)), float(rng.uniform(-h * 0.8, 29 - h * 0.2))
    if len(boxes) % 4 == 0:  # half-integer centres exercise the rounding ties
        x, y, w, h = round(x) + 0.5, round(y), float(round(w)), float(round(h)) + 1.0
    factor = [2.0, 4.0][len(boxes) % 2]
    out = [16, 24, 32][len(boxes) % 3]
    patch, rf = sample_target(scene, [x, y, w, h], factor, out)
    put(f"crops.{len(boxes)}.patch", patch)
    boxes.append({"box_xywh": [x, y, w, h], "factor": factor, "output_size": out, "resize_factor": repr(rf)})
CROP_CASES = boxes

# --- the RGB-D depth path (lib/train/dataset/depth_utils.py, get_rgbd_frame) ----------------


def depth_reference(dp):
    dp = dp.copy()
    max_depth = min(np.median(dp) * 3, 10000)
    dp[dp > max_depth] = max_depth
    norm = cv2.normalize(dp, None, 0, 255, cv2.NORM_MINMAX)
    norm = np.asarray(norm, dtype=np.uint8)
    return norm, cv2.applyColorMap(norm, cv2.COLORMAP_JET)


DEPTH_CASES = {
    # No zero pixel, so min > 0 and the float32 shift is non-zero; odd pixel count.
    "nozero_odd": rng.integers(300, 5000, (11, 15)).astype(np.uint16),
    # Zeros, far outliers and an even pixel count.
    "zeros_even": np.where(rng.random((10, 16)) < 0.1, 0, rng.integers(500, 3000, (10, 16))).astype(np.uint16),
    "constant": np.full((4, 6), 1234, np.uint16),
}
DEPTH_CASES["zeros_even"][0, :3] = 65535
for name, dp in DEPTH_CASES.items():
    norm, cm = depth_reference(dp)
    put(f"depth.{name}.input", dp.astype(np.int32))
    put(f"depth.{name}.normalized_u8", norm)
    put(f"depth.{name}.colormap_bgr", cm)

# --- compressed images -------------------------------------------------------------------
yy, xx = np.mgrid[0:12, 0:16]
rgb = np.stack([xx * 15, yy * 20, (xx + yy) * 8], axis=-1).astype(np.uint8)
bgr = rgb[:, :, ::-1]
ok, png = cv2.imencode(".png", bgr)
assert ok
open(os.path.join(HERE, "rgb_16x12.png"), "wb").write(png.tobytes())
ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
assert ok
open(os.path.join(HERE, "rgb_16x12.jpg"), "wb").write(jpg.tobytes())
put("compressed.rgb", rgb)
put("compressed.jpeg_decoded_by_cv2_rgb", cv2.imdecode(jpg, cv2.IMREAD_COLOR)[:, :, ::-1])

depth_mm = (1000 + xx * 97 + yy * 311).astype(np.uint16)
depth_mm[0, 0] = 0
ok, depth_png = cv2.imencode(".png", depth_mm)
assert ok
# compressed_depth_image_transport, 16UC1: 12-byte header (format enum, two floats) + PNG.
header = struct.pack("<iff", 0, 0.0, 0.0)
open(os.path.join(HERE, "depth_16x12.compressed_depth_16uc1"), "wb").write(header + depth_png.tobytes())
put("compressed.depth_mm", depth_mm.astype(np.int32))

# 32FC1: inverse-depth quantisation as the plugin's encoder does (depth_quantization 100,
# depth_max 10 m): v = a / z + b, 0 for invalid or far pixels.
depth_m = depth_mm.astype(np.float32) / 1000.0
depth_m[0, 0] = np.nan
quant_a = np.float32(100.0 * (100.0 + 1.0))
quant_b = np.float32(1.0 - quant_a / 10.0)
with np.errstate(invalid="ignore", divide="ignore"):
    inv = np.where(np.isfinite(depth_m) & (depth_m < 10.0), quant_a / depth_m + quant_b, 0)
inv_u16 = inv.astype(np.uint16)
ok, inv_png = cv2.imencode(".png", inv_u16)
assert ok
header = struct.pack("<iff", 0, float(quant_a), float(quant_b))
open(os.path.join(HERE, "depth_16x12.compressed_depth_32fc1"), "wb").write(header + inv_png.tobytes())
put("compressed.depth_m", depth_m)

# --- write safetensors by hand (no extra dependency) ---------------------------------------
DTYPES = {np.uint8: "U8", np.int32: "I32", np.float32: "F32"}
header, blobs, offset = {}, [], 0
for name in sorted(tensors):
    arr = tensors[name]
    raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    header[name] = {"dtype": DTYPES[arr.dtype.type], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
    blobs.append(raw)
    offset += len(raw)
header["__metadata__"] = {
    "content": "OpenCV references for patrack sensor/preprocess tests",
    "opencv": cv2.__version__,
    "resize_cases": json.dumps(RESIZE_CASES),
    "crop_cases": json.dumps(CROP_CASES),
}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(os.path.join(HERE, "cv2_reference.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print("wrote", len(tensors), "tensors")
