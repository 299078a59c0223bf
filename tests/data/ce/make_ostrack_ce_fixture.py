"""Writes `ostrack_ce.safetensors` and `ostrack_ce.json` (see README.md here): candidate
elimination computed by the official OSTrack code.

The network is built from the official modules of botaoye/OSTrack (commit
33b5e12586216b7fd0e95d255bd01ba44cbec759), imported from a checkout of that repository, not
transcribed: `lib/models/ostrack/vit_ce.py` (`VisionTransformerCE.forward_features`: the blocks,
`global_index_s`, dropped tokens restored as zeros after the final norm by `scatter_`),
`lib/models/layers/attn_blocks.py` (`CEBlock`, `candidate_elimination`), `lib/models/layers/attn.py`,
`lib/models/ostrack/base_backbone.py` (`finetune_track`), `lib/models/layers/head.py`
(`CenterPredictor`), `lib/models/ostrack/ostrack.py` (`OSTrack.forward`, `forward_head`), the
official configuration file `experiments/ostrack/vitb_256_mae_ce_32x4_ep300.yaml` (CE in blocks
3, 6, 9 keeping 0.7 of the search tokens each, template range `CTR_POINT`), and the tracker's
template mask `lib/utils/ce_utils.py::generate_mask_cond` (what `lib/test/tracker/ostrack.py`
passes as `ce_template_mask`).

Only the widths are small: ViT width 64 with 2 heads and MLP 128 instead of 768 / 12 / 3072, head
32 channels instead of 256; depth (12), patch (16), template 128 px, search 256 px and every CE
setting are the released model's. Every weight follows the golden hash rule (tests/data/README.md),
so the Rust test rebuilds the same network with `PATrack::fill_hashed`; the inputs are the hashed
inputs `ce.z` (2, 3, 128, 128) and `ce.x` (2, 3, 256, 256), a batch of two so that each sample
sorts its own tokens.

    python3 -m venv /tmp/venv-ce
    /tmp/venv-ce/bin/pip install torch==2.4.1 torchvision==0.19.1 timm==0.5.4 easydict pyyaml numpy
    git clone https://github.com/botaoye/OSTrack /tmp/OSTrack && git -C /tmp/OSTrack checkout 33b5e12
    /tmp/venv-ce/bin/python tests/data/ce/make_ostrack_ce_fixture.py /tmp/OSTrack
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OSTRACK_COMMIT = "33b5e12586216b7fd0e95d255bd01ba44cbec759"

EMBED, DEPTH, HEADS, MLP_RATIO, HEAD_CH = 64, 12, 2, 2.0, 32
BATCH = 2

# ---------------------------------------------------------------- the golden hash rule

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
import golden_hash  # noqa: E402  (scripts/golden_hash.py)


def hashed(key, shape):
    return torch.from_numpy(golden_hash.hashed_value(key, shape))


def hashed_input(key, shape):
    return torch.from_numpy(golden_hash.hashed_input(key, shape))


def write_safetensors(path, tensors, metadata):
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- the official network

def build(repo):
    sys.path.insert(0, repo)
    from lib.config.ostrack.config import cfg, update_config_from_file
    from lib.models.layers.head import build_box_head
    from lib.models.ostrack.ostrack import OSTrack
    from lib.models.ostrack.vit_ce import VisionTransformerCE
    from lib.utils.ce_utils import generate_mask_cond

    update_config_from_file(os.path.join(repo, "experiments/ostrack/vitb_256_mae_ce_32x4_ep300.yaml"))
    cfg.MODEL.HEAD.NUM_CHANNELS = HEAD_CH
    # `vit_base_patch16_224_ce` with the official CE settings, at width 64 (build_ostrack fixes 768).
    backbone = VisionTransformerCE(
        patch_size=cfg.MODEL.BACKBONE.STRIDE, embed_dim=EMBED, depth=DEPTH, num_heads=HEADS, mlp_ratio=MLP_RATIO,
        qkv_bias=True, drop_path_rate=cfg.TRAIN.DROP_PATH_RATE,
        ce_loc=cfg.MODEL.BACKBONE.CE_LOC, ce_keep_ratio=cfg.MODEL.BACKBONE.CE_KEEP_RATIO,
    )
    backbone.finetune_track(cfg=cfg, patch_start_index=1)
    net = OSTrack(backbone, build_box_head(cfg, EMBED), aux_loss=False, head_type=cfg.MODEL.HEAD.TYPE).eval()
    with torch.no_grad():
        for key, t in net.state_dict().items():
            if key.endswith("num_batches_tracked"):
                t.zero_()
            else:
                t.copy_(hashed(key, tuple(t.shape)))
    mask = generate_mask_cond(cfg, BATCH, "cpu", None)
    return net, cfg, mask


def run(net, mask, z, x):
    """The official forward; each CE block's kept and removed search-token indices by a hook on
    its outputs `(x, global_index_t, global_index_s, removed_index_s, attn)`."""
    kept, margins, hooks = [], [], []
    for i in net.backbone.ce_loc:
        def hook(_m, _inp, out, i=i):
            kept.append((i, out[2].clone(), out[3].clone()))
        hooks.append(net.backbone.blocks[i].register_forward_hook(hook))
        # The attention the block sorts on, to record how far the cut is from a tie.
        def attn_hook(_m, _inp, out, i=i):
            attn = out[1]  # (B, heads, N, N)
            lt = (net.backbone.pos_embed_z.shape[1])
            centre = mask[0].nonzero()[0, 0].item()
            a = attn[:, :, centre, lt:].mean(dim=1)
            s = a.sort(dim=1, descending=True).values
            keep = math.ceil(net.backbone.blocks[i].keep_ratio_search * a.shape[1])
            margins.append((i, (s[:, keep - 1] - s[:, keep]).min().item(), s[:, keep - 1].max().item()))
        hooks.append(net.backbone.blocks[i].attn.register_forward_hook(attn_hook))
    with torch.no_grad():
        out = net(z, x, ce_template_mask=mask)
    for h in hooks:
        h.remove()
    return out, kept, margins


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OSTRACK_CHECKOUT (botaoye/OSTrack at {OSTRACK_COMMIT[:7]})")
    repo = os.path.abspath(sys.argv[1])
    net, cfg, mask = build(repo)
    ts, ss = cfg.DATA.TEMPLATE.SIZE, cfg.DATA.SEARCH.SIZE
    z = hashed_input("ce.z", (BATCH, 3, ts, ts))
    x = hashed_input("ce.x", (BATCH, 3, ss, ss))
    out, kept, margins = run(net, mask, z, x)
    out64, kept64, _ = run(net.double(), mask, z.double(), x.double())
    for (i, k, r), (_, k64, r64) in zip(kept, kept64):
        assert torch.equal(k, k64) and torch.equal(r, r64), f"block {i}: fp64 keeps other tokens"

    lx = (ss // cfg.MODEL.BACKBONE.STRIDE) ** 2
    tensors = {
        "score_map": out["score_map"].float(),
        "size_map": out["size_map"].float(),
        "offset_map": out["offset_map"].float(),
        # The head's input tokens: the final norm of the kept tokens, zeros where tokens were dropped.
        "search_tokens": out["backbone_feat"][:, -lx:].float(),
        "template_mask": mask.to(torch.int64),
    }
    for i, k, r in kept:
        tensors[f"kept.{i}"] = k.to(torch.int64)
        tensors[f"removed.{i}"] = r.to(torch.int64)
    fp64_gap = max((out[k] - out64[k].float()).abs().max().item() for k in ("score_map", "size_map", "offset_map"))
    meta = {
        "generator": "tests/data/ce/make_ostrack_ce_fixture.py",
        "official": f"botaoye/OSTrack {OSTRACK_COMMIT}",
        "torch": torch.__version__,
        "sizes": json.dumps({
            "embed_dim": EMBED, "depth": DEPTH, "num_heads": HEADS, "mlp_dim": int(EMBED * MLP_RATIO),
            "patch_size": cfg.MODEL.BACKBONE.STRIDE, "template_size": ts, "search_size": ss, "head_channels": HEAD_CH,
        }),
        "ce_loc": json.dumps(list(cfg.MODEL.BACKBONE.CE_LOC)),
        "ce_keep_ratio": json.dumps(list(cfg.MODEL.BACKBONE.CE_KEEP_RATIO)),
        "ce_template_range": cfg.MODEL.BACKBONE.CE_TEMPLATE_RANGE,
        "inputs": f"hashed ce.z ({BATCH},3,{ts},{ts}) and ce.x ({BATCH},3,{ss},{ss})",
        "fp64_gap": f"{fp64_gap:.3e}",
        "cut_margins": json.dumps([{"block": i, "min_gap": g, "attention_at_cut": v} for i, g, v in margins]),
    }
    path = os.path.join(HERE, "ostrack_ce.safetensors")
    write_safetensors(path, tensors, meta)
    with open(os.path.join(HERE, "ostrack_ce.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes")
    for i, k, _ in kept:
        print(f"block {i}: keeps {k.shape[1]} search tokens")
    print("cut margins:", margins, "fp64 gap", fp64_gap)


if __name__ == "__main__":
    main()
