"""Writes `adamw_reference.safetensors` (see README.md here): what PyTorch's own AdamW and gradient
clipping do to a few tensors over five steps, the reference for patrack's optimizer
(`src/train/optim.rs`), which must keep its moments in files for an exact resume.

The official trainer (PATrack / OSTrack `lib/train/trainers/ltr_trainer.py` and
`base_functions.py`) does, per step: `loss.backward()`, `torch.nn.utils.clip_grad_norm_(params,
0.1)`, `optimizer.step()` with `torch.optim.AdamW(lr=4e-4, weight_decay=1e-4)` (betas, eps at
their defaults), the learning rate from `StepLR` (x0.1 at the drop). Here the gradients are set
directly (hashed values, scaled per step so that clipping is active in some steps and not in
others), the learning rate drops after step 3, and every step's parameters, the clip's total
norm and the final moments are saved.

    python3 -m venv /tmp/venv-adamw && /tmp/venv-adamw/bin/pip install torch==2.4.1 numpy
    /tmp/venv-adamw/bin/python tests/data/train/make_adamw_fixture.py
"""

import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {"a.weight": (4, 3), "a.bias": (5,), "b.conv": (2, 2, 3, 3)}
LRS = [4e-4, 4e-4, 4e-4, 4e-5, 4e-5]
GRAD_SCALE = [1.0, 1e-3, 3.0, 1e-2, 1.0]
WEIGHT_DECAY, MAX_NORM = 1e-4, 0.1


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
import golden_hash  # noqa: E402  (scripts/golden_hash.py)


def hashed_input(key, shape):
    """The golden rule's hashed inputs: uniform in [-2, 2) (src/model/hashinit.rs `hash_input`)."""
    return torch.from_numpy(golden_hash.hashed_input(key, shape))


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    params = {k: torch.nn.Parameter(hashed_input(f"param.{k}", s)) for k, s in SHAPES.items()}
    out = {f"init.{k}": p.detach().clone() for k, p in params.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=LRS[0], weight_decay=WEIGHT_DECAY)
    norms = []
    for step, (lr, scale) in enumerate(zip(LRS, GRAD_SCALE)):
        for k, p in params.items():
            p.grad = hashed_input(f"grad.{step}.{k}", SHAPES[k]) * scale
        norms.append(torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_NORM).item())
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        for k, p in params.items():
            out[f"step{step + 1}.{k}"] = p.detach().clone()
    for k, p in params.items():
        out[f"exp_avg.{k}"] = opt.state[p]["exp_avg"].clone()
        out[f"exp_avg_sq.{k}"] = opt.state[p]["exp_avg_sq"].clone()
    out["clip_total_norm"] = torch.tensor(norms, dtype=torch.float32)
    meta = {
        "generator": "tests/data/train/make_adamw_fixture.py",
        "torch": torch.__version__,
        "lrs": json.dumps(LRS),
        "grad_scale": json.dumps(GRAD_SCALE),
        "weight_decay": str(WEIGHT_DECAY),
        "max_norm": str(MAX_NORM),
        "clipped_steps": json.dumps([i + 1 for i, n in enumerate(norms) if n > MAX_NORM]),
    }
    path = os.path.join(HERE, "adamw_reference.safetensors")
    write_safetensors(path, out, meta)
    print(f"{path}: {os.path.getsize(path)} bytes; clip norms {norms}")


if __name__ == "__main__":
    main()
