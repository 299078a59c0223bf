#!/usr/bin/env python3
"""Speed baseline: the OFFICIAL PATrack PyTorch module, eager mode.

Builds the model from a local checkout of the official code
(github.com/ouha1998/Learning-Progressive-Adaptation-for-Multi-Modal-Tracking, folder PATrack/)
exactly as the official tracker does (experiments/patrack/rgbt.yaml, build_patrack(cfg,
training=False), load_state_dict(strict=True), eval), fills every state-dict entry with the
deterministic hash rule of the golden vectors (the same rule as src/model/hashinit.rs: fnv1a32 of
the key, fmix32, value rule by key/shape), optionally proves that it computes the official math by
comparing against the golden vectors in tests/data/, and times

  OFFICIAL_EAGER  model.forward(template, search)                   (network only)
  OFFICIAL_STEP   PATrack tracker .track(frame): crop + normalise + network + Hann + decode

This file contains only our own code. The official code is imported from --official-repo; the
released-code bugs (PATrack model spec, sections 6 and 13) are patched at run time:

  * stream fusion: `xi = torch.cat([zi, xi], dim=1)` is inserted before `x = x + xi` in
    VisionTransformerCE.forward_features (source is re-compiled in the module's namespace; the
    anchor lines are asserted, nothing else changes);
  * build_patrack instantiates the undefined name `BATrack`: aliased to the PATrack model class;
  * candidate elimination: CE_KEEP_RATIO forced to [1, 1, 1] (rgbt.yaml already says so);
  * `.cuda()` on tensors/modules is redirected to --device (a no-op on CPU);
  * import-only dependencies that inference does not use are stubbed: `vot`, `lib.vis.visdom_cus`,
    `lib.test.tracker.vis_utils` (and `torchvision.ops.boxes` if torchvision is absent).

Usage:
  python scripts/bench_official.py --official-repo PATH/TO/PATrack --device cpu --threads 2 \
      --runs 5 --warmup 1 --check-golden tests/data/model.safetensors

Needs: torch, numpy, pyyaml, easydict, timm 0.5.4 (+ its imports: pillow, torchvision),
safetensors (for --check-golden), opencv-python(-headless) (for the tracker step).
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
import textwrap
import time
import types
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_hash import hashed_input, hashed_value  # noqa: E402  (scripts/golden_hash.py)


def hashed_state_dict(model):
    import torch
    sd = {}
    for k, v in model.state_dict().items():
        arr = hashed_value(k, v.shape)
        t = torch.from_numpy(arr)
        if v.dtype != t.dtype:
            t = t.to(v.dtype)
        sd[k] = t
    return sd


# --------------------------------------------------------------------------------------------
# Importing and patching the official code
# --------------------------------------------------------------------------------------------

def _stub_module(name: str, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__dict__["__stub__"] = True
    sys.modules[name] = mod
    return mod


def install_import_stubs():
    """Stubs for modules the official inference path imports but never uses."""
    _stub_module("vot")  # VOT toolkit binding, imported at top of lib/test/tracker/patrack.py
    vis = _stub_module("lib.vis")
    vis.__path__ = []
    _stub_module("lib.vis.visdom_cus", Visdom=None)  # basetracker.py (visdom only when debugging)

    def gen_visualization(*_a, **_k):
        raise RuntimeError("visualisation stub")

    _stub_module("lib.test.tracker.vis_utils", gen_visualization=gen_visualization)
    try:
        import torchvision.ops.boxes  # noqa: F401  (box_ops.py imports box_area at module level)
    except Exception:
        def box_area(boxes):
            return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

        tv = _stub_module("torchvision")
        tv.__path__ = []
        ops = _stub_module("torchvision.ops")
        ops.__path__ = []
        _stub_module("torchvision.ops.boxes", box_area=box_area)


def redirect_cuda_calls(device):
    """The official code calls .cuda() unconditionally; send those to the chosen device."""
    import torch

    def tensor_cuda(self, device_=None, non_blocking=False, memory_format=None):
        return self.to(device, non_blocking=non_blocking)

    def module_cuda(self, device_=None):
        return self.to(device)

    torch.Tensor.cuda = tensor_cuda
    torch.nn.Module.cuda = module_cuda


def patch_stream_fusion(vca_module):
    """Insert `xi = torch.cat([zi, xi], dim=1)` before `x = x + xi` (BAT's line)."""
    cls = vca_module.VisionTransformerCE
    fn = cls.forward_features
    src = textwrap.dedent(inspect.getsource(fn))
    cat_line = re.compile(r"^(?P<ind>[ \t]+)x = torch\.cat\(\[z, x\], dim=1\)[ \t]*$", re.M)
    add_line = re.compile(r"^[ \t]+x = x \+ xi[ \t]*$", re.M)
    m = list(cat_line.finditer(src))
    assert len(m) == 1 and len(add_line.findall(src)) == 1, \
        "official forward_features changed: fusion-fix anchors not found exactly once"
    assert "xi = torch.cat([zi, xi]" not in src, "fusion fix already present in the official file"
    ind = m[0].group("ind")
    src = src[:m[0].end()] + "\n" + ind + "xi = torch.cat([zi, xi], dim=1)" + src[m[0].end():]
    filename = inspect.getsourcefile(fn) + " [fusion-fix]"
    ns = {}
    exec(compile(src, filename, "exec"), vca_module.__dict__, ns)
    cls.forward_features = ns["forward_features"]


def import_official(repo: str, device):
    repo = os.path.abspath(repo)
    if not os.path.isfile(os.path.join(repo, "lib", "models", "patrack", "ostrack_adapter.py")):
        sys.exit(f"--official-repo {repo}: lib/models/patrack/ostrack_adapter.py not found")
    sys.path.insert(0, repo)
    import lib  # noqa: F401  (the official package; must resolve to the repo)
    if not os.path.abspath(lib.__path__[0]).startswith(repo):
        sys.exit(f"'lib' resolved to {lib.__path__[0]}, not inside {repo}")
    install_import_stubs()
    redirect_cuda_calls(device)

    import lib.models.patrack.ostrack_adapter as oa
    import lib.models.patrack.vit_ce_adapter as vca
    from lib.config.patrack.config import cfg, update_config_from_file
    from lib.models.patrack import build_patrack

    # build_patrack() says `model = BATrack(...)`; the class in that module is PATrack.
    assert not hasattr(oa, "BATrack"), "official ostrack_adapter.py now defines BATrack"
    oa.BATrack = oa.PATrack
    patch_stream_fusion(vca)

    update_config_from_file(os.path.join(repo, "experiments", "patrack", "rgbt.yaml"))
    cfg.MODEL.BACKBONE.CE_KEEP_RATIO = [1, 1, 1]
    return types.SimpleNamespace(repo=repo, cfg=cfg, build_patrack=build_patrack)


def build_model(off, device):
    import torch
    model = off.build_patrack(off.cfg, training=False)  # as lib/test/tracker/patrack.py does
    sd = hashed_state_dict(model)
    model.load_state_dict(sd, strict=True)
    return model.to(device).eval(), sd


# --------------------------------------------------------------------------------------------
# Golden check
# --------------------------------------------------------------------------------------------

def _maxdiff(a, b):
    import torch
    return (a.detach().float().cpu() - b.float().cpu()).abs().max().item()


def check_golden(path, model, sd, device, tol_maps=1e-4, tol_tokens=1e-3):
    import torch
    from safetensors.torch import load_file
    from lib.test.utils.hann import hann2d

    g = load_file(path)
    ok = True

    def report(name, diff, tol, exact=False):
        nonlocal ok
        good = (diff == 0) if exact else (diff <= tol)
        ok &= good
        lim = "exact" if exact else f"tol {tol:g}"
        print(f"golden {name:<34} max|diff| = {diff:.3e}  ({lim}) {'OK' if good else 'FAIL'}")

    # 1. the weight generator against the stored samples (bit-exact)
    samples = sorted(k for k in g if k.startswith("weights.sample."))
    for k in samples:
        key = k[len("weights.sample."):]
        ref = g[k].reshape(-1)
        ours = sd[key].reshape(-1)[: ref.numel()]
        same = torch.equal(ours.to(ref.dtype), ref)
        ok &= same
        print(f"golden weights.sample.{key:<60} {'bit-exact OK' if same else 'FAIL'}")

    # 2. hashed inputs against the stored inputs (bit-exact)
    z = torch.from_numpy(hashed_input("input.z", (1, 6, 128, 128)))
    x = torch.from_numpy(hashed_input("input.x", (1, 6, 256, 256)))
    report("in.z == hash('input.z')", _maxdiff(z, g["in.z"]), 0, exact=True)
    report("in.x == hash('input.x')", _maxdiff(x, g["in.x"]), 0, exact=True)

    # 3. one fp32 forward of the official module with hooks on the debug points
    cap = {}
    hooks = [
        model.backbone.blocks[0].register_forward_hook(lambda m, i, o: cap.__setitem__("b0", (o[0], o[5]))),
        model.backbone.blocks[3].register_forward_hook(lambda m, i, o: cap.__setitem__("b3", (o[0], o[5]))),
        model.adapter_head.register_forward_pre_hook(lambda m, i: cap.__setitem__("fused", i[0].clone())),
        model.box_head.register_forward_pre_hook(lambda m, i: cap.__setitem__("head_in", i[0].clone())),
    ]
    try:
        with torch.no_grad():
            out = model.forward(template=g["in.z"].to(device), search=g["in.x"].to(device))
    finally:
        for h in hooks:
            h.remove()
    for name, key in (("score_map", "out.score_map"), ("size_map", "out.size_map"),
                      ("offset_map", "out.offset_map")):
        report(key, _maxdiff(out[name], g[key]), tol_maps)
    report("dbg.block0.rgb", _maxdiff(cap["b0"][0], g["dbg.block0.rgb"]), tol_tokens)
    report("dbg.block0.aux", _maxdiff(cap["b0"][1], g["dbg.block0.aux"]), tol_tokens)
    report("dbg.block3.rgb", _maxdiff(cap["b3"][0], g["dbg.block3.rgb"]), tol_tokens)
    report("dbg.block3.aux", _maxdiff(cap["b3"][1], g["dbg.block3.aux"]), tol_tokens)
    report("dbg.fused_search", _maxdiff(cap["fused"], g["dbg.fused_search"]), tol_tokens)
    report("dbg.head_in", _maxdiff(cap["head_in"], g["dbg.head_in"]), tol_tokens)

    # 4. the tracker's Hann window + decode (official hann2d and CenterPredictor.cal_bbox)
    win = hann2d(torch.tensor([16, 16]).long(), centered=True).to(device)
    report("out.hann_window", _maxdiff(win, g["out.hann_window"]), 1e-7)
    resp = win * out["score_map"]
    box, best = model.box_head.cal_bbox(resp, out["size_map"], out["offset_map"], return_score=True)
    idx = int(torch.argmax(resp.flatten()).item())
    same_idx = idx == int(g["out.best_index"].item())
    ok &= same_idx
    print(f"golden out.best_index                     ours {idx} ref {int(g['out.best_index'].item())} "
          f"{'OK' if same_idx else 'FAIL'}")
    report("out.windowed_best_score", _maxdiff(best.reshape(()), g["out.windowed_best_score"]), tol_maps)
    report("out.box_norm", _maxdiff(box.reshape(-1), g["out.box_norm"]), tol_maps)
    return ok


def check_tracker_golden(path, tracker, frames: int, tol_px=0.5):
    """Free-running official tracker on the golden RGB-T sequence (tracker.safetensors)."""
    import json
    from safetensors.numpy import load_file

    g = load_file(path)
    meta_path = os.path.splitext(path)[0] + ".json"
    init_box = [128.0, 92.0, 36.0, 28.0]
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        init_box = [float(v) for v in meta.get("init_box_xywh", init_box)]

    def frame(n):
        return np.concatenate([g[f"frame.{n}.rgb"], g[f"frame.{n}.aux"]], axis=2)

    tracker.initialize(frame(0), {"init_bbox": list(init_box)})
    ok = True
    for n in range(1, frames + 1):
        out = tracker.track(frame(n))
        ref = g[f"frame.{n}.state"].astype(np.float64)
        diff = float(np.abs(np.asarray(out["target_bbox"], dtype=np.float64) - ref).max())
        good = diff <= tol_px
        ok &= good
        print(f"golden tracker frame {n}: state max|diff| = {diff:.3e} px (tol {tol_px}) "
              f"{'OK' if good else 'FAIL'}")
    return ok


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def time_it(fn, runs, warmup, sync):
    for _ in range(warmup):
        fn()
    sync()
    ts = []
    for _ in range(runs):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(ts)


def summary(prefix, args, ts):
    return (f"{prefix} device={args.device} threads={args.threads} "
            f"median_ms={np.median(ts):.2f} p10_ms={np.percentile(ts, 10):.2f} "
            f"p90_ms={np.percentile(ts, 90):.2f} min_ms={np.min(ts):.2f} precision={args.precision} "
            f"runs={len(ts)} warmup={args.warmup}")


def set_tf32(enabled: bool):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official-repo", required=True, help="path to the official PATrack/ folder")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch (and OpenCV) CPU threads; 0 = default")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16 = torch.autocast(bfloat16) around the timed calls")
    ap.add_argument("--tf32", action="store_true",
                    help="allow TF32 matmul/conv in the timed fp32 runs on cuda (default: off)")
    ap.add_argument("--check-golden", metavar="MODEL_SAFETENSORS",
                    help="compare against the golden model.safetensors first (fp32, TF32 off); exit 1 on mismatch")
    ap.add_argument("--check-tracker-frames", type=int, default=2,
                    help="with --check-golden: also run the official tracker free on the first N frames of "
                         "tracker.safetensors next to it (0 = skip)")
    ap.add_argument("--no-step", action="store_true", help="skip the OFFICIAL_STEP tracker timing")
    ap.add_argument("--frame-hw", type=int, nargs=2, default=[480, 640], metavar=("H", "W"),
                    help="synthetic frame size for the tracker step (default 480 640, LasHeR-like)")
    args = ap.parse_args()

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    set_tf32(False)

    off = import_official(args.official_repo, device)
    bb = off.cfg.MODEL.BACKBONE
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
          + f", threads {args.threads}; official repo {off.repo}")
    print(f"config rgbt.yaml: backbone {bb.TYPE}, template {off.cfg.TEST.TEMPLATE_SIZE}, "
          f"search {off.cfg.TEST.SEARCH_SIZE}, head {off.cfg.MODEL.HEAD.TYPE}, "
          f"CE_LOC {list(bb.CE_LOC)}, CE_KEEP_RATIO {list(bb.CE_KEEP_RATIO)}")

    t0 = time.perf_counter()
    model, sd = build_model(off, device)
    n_params = sum(int(v.numel()) for v in sd.values() if v.dtype.is_floating_point)
    print(f"built + hashed weights: {len(sd)} entries, {n_params} float values "
          f"({time.perf_counter() - t0:.1f} s)")

    if args.check_golden:
        ok = check_golden(args.check_golden, model, sd, device)
        print(f"GOLDEN_CHECK {'PASS' if ok else 'FAIL'} ({args.check_golden})")
        if not ok:
            sys.exit(1)

    if args.tf32:
        set_tf32(True)
    if args.precision == "bf16":
        autocast = lambda: torch.autocast(device_type=args.device, dtype=torch.bfloat16)  # noqa: E731
    else:
        import contextlib
        autocast = contextlib.nullcontext
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    # ---- network only -----------------------------------------------------------------------
    z = torch.from_numpy(hashed_input("input.z", (1, 6, 128, 128))).to(device)
    x = torch.from_numpy(hashed_input("input.x", (1, 6, 256, 256))).to(device)

    def fwd():
        with torch.no_grad(), autocast():
            model.forward(template=z, search=x)

    ts_eager = time_it(fwd, args.runs, args.warmup, sync)
    print("forward ms: " + " ".join(f"{t:.1f}" for t in ts_eager))

    # ---- full tracker step -------------------------------------------------------------------
    step_line = None
    if not args.no_step:
        import cv2
        if args.threads > 0:
            cv2.setNumThreads(args.threads)
        from lib.test.tracker.patrack import PATrack as PATrackTracker

        params = types.SimpleNamespace(
            cfg=off.cfg, template_factor=off.cfg.TEST.TEMPLATE_FACTOR,
            template_size=off.cfg.TEST.TEMPLATE_SIZE, search_factor=off.cfg.TEST.SEARCH_FACTOR,
            search_size=off.cfg.TEST.SEARCH_SIZE, save_all_boxes=False, debug=0,
            checkpoint="<hashed weights>")
        state = {k: v.cpu() for k, v in model.state_dict().items()}
        del model
        orig_load = torch.load
        torch.load = lambda *_a, **_k: {"net": state}  # the tracker's checkpoint = hashed weights
        try:
            tracker = PATrackTracker(params)
        finally:
            torch.load = orig_load
        del state

        if args.check_golden and args.check_tracker_frames > 0:
            tpath = os.path.join(os.path.dirname(args.check_golden), "tracker.safetensors")
            if os.path.isfile(tpath):
                ok = check_tracker_golden(tpath, tracker, args.check_tracker_frames)
                print(f"GOLDEN_TRACKER_CHECK {'PASS' if ok else 'FAIL'} ({tpath})")
                if not ok:
                    sys.exit(1)
            else:
                print(f"(no {tpath}; tracker golden check skipped)")

        H, W = args.frame_hw
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(H, W, 6), dtype=np.uint8)
        # 60x45 box in the middle: template crop 104 -> 128, search crop 208 -> 256 (a real resize)
        init_box = [W / 2 - 30.0, H / 2 - 22.5, 60.0, 45.0]
        tracker.initialize(image, {"init_bbox": list(init_box)})

        def step():
            tracker.state = list(init_box)  # same search crop every call
            with autocast():
                tracker.track(image)

        ts_step = time_it(step, args.runs, args.warmup, sync)
        print("step ms: " + " ".join(f"{t:.1f}" for t in ts_step))
        step_line = summary("OFFICIAL_STEP", args, ts_step)
        print(step_line)

    print(summary("OFFICIAL_EAGER", args, ts_eager))


if __name__ == "__main__":
    main()
