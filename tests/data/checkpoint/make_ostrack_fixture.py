"""Writes `ostrack_tiny_ep0300.pth.tar` and `ostrack_tiny.reference.json` (see README.md here).

An OSTrack-format checkpoint at a tiny size: the state dict has exactly the key names of OSTrack's
`vitb_256_mae_ce_32x4_ep300` (`OSTrack_ep0300.pth.tar`, 242 keys at ViT-B size; here 4 blocks),
built by a torch module with OSTrack's attribute names, every value from the golden hash rule
(tests/data/README.md, golden README section 1), wrapped the way OSTrack's trainer saves
checkpoints (`lib/train/trainers/base_trainer.py`, `save_checkpoint`): `epoch`, `actor_type`,
`net_type`, `net`, `net_info`, `constructor`, `optimizer` (AdamW state dict with OSTrack's two
parameter groups), `stats` (objects of `lib.train.admin.stats.AverageMeter`) and `settings` (a
`lib.train.admin.settings.Settings` object), saved with `torch.save` (zip format).

The reference JSON holds the network's three output maps for hashed inputs, computed by the torch
module below: OSTrack's inference forward with candidate elimination off (patch embedding, position
embeddings, joint attention blocks, final norm, the last search tokens as a map, CENTER head).

    python3 -m venv /tmp/venv-ckpt && /tmp/venv-ckpt/bin/pip install torch==2.4.1 numpy
    /tmp/venv-ckpt/bin/python tests/data/checkpoint/make_ostrack_fixture.py
"""

import collections
import json
import os
import sys
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

# Sizes: patrack's `tiny` configuration (src/model/config.rs) in OSTrack's structure.
EMBED, DEPTH, HEADS, MLP, PATCH = 64, 4, 2, 128, 16
TEMPLATE, SEARCH, HEAD_CH = 64, 128, 32
PRETRAIN_POS = 197  # the MAE ViT's 224 px position table (14 x 14 + cls), unused by OSTrack

# ---------------------------------------------------------------- the golden hash rule

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
import golden_hash  # noqa: E402  (scripts/golden_hash.py)


def hashed(key, shape):
    return torch.from_numpy(golden_hash.hashed_value(key, shape))


def hashed_input(key, shape):
    return torch.from_numpy(golden_hash.hashed_input(key, shape))


# ---------------------------------------------------------------- OSTrack's module names

class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, EMBED, PATCH, PATCH)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(EMBED, 3 * EMBED)
        self.proj = nn.Linear(EMBED, EMBED)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * (c // HEADS) ** -0.5
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(EMBED, MLP)
        self.fc2 = nn.Linear(MLP, EMBED)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):  # OSTrack's CEBlock with keep ratio 1
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(EMBED, eps=1e-6)
        self.attn = Attention()
        self.norm2 = nn.LayerNorm(EMBED, eps=1e-6)
        self.mlp = Mlp()

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformerCE(nn.Module):
    def __init__(self):
        super().__init__()
        # Parameters before submodules, as in OSTrack's state dict (ostrack_state_dict_keys.txt).
        self.cls_token = nn.Parameter(torch.zeros(1, 1, EMBED))
        self.pos_embed = nn.Parameter(torch.zeros(1, PRETRAIN_POS, EMBED))
        self.pos_embed_z = nn.Parameter(torch.zeros(1, (TEMPLATE // PATCH) ** 2, EMBED))
        self.pos_embed_x = nn.Parameter(torch.zeros(1, (SEARCH // PATCH) ** 2, EMBED))
        self.patch_embed = PatchEmbed()
        self.blocks = nn.Sequential(*[Block() for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(EMBED, eps=1e-6)

    def forward(self, z, x):
        z = self.patch_embed(z) + self.pos_embed_z
        x = self.patch_embed(x) + self.pos_embed_x
        return self.norm(self.blocks(torch.cat([z, x], dim=1)))


def conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CenterPredictor(nn.Module):
    def __init__(self):
        super().__init__()
        ch = [EMBED, HEAD_CH, HEAD_CH // 2, HEAD_CH // 4, HEAD_CH // 8]
        for branch, out in (("ctr", 1), ("offset", 2), ("size", 2)):
            for k in range(4):
                setattr(self, f"conv{k + 1}_{branch}", conv(ch[k], ch[k + 1]))
            setattr(self, f"conv5_{branch}", nn.Conv2d(ch[4], out, 1))

    def branch(self, name, x):
        for k in range(4):
            x = getattr(self, f"conv{k + 1}_{name}")(x)
        return getattr(self, f"conv5_{name}")(x)

    def forward(self, x):
        sig = lambda t: torch.clamp(t.sigmoid(), min=1e-4, max=1 - 1e-4)
        return sig(self.branch("ctr", x)), sig(self.branch("size", x)), self.branch("offset", x)


class OSTrack(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = VisionTransformerCE()
        self.box_head = CenterPredictor()

    def forward(self, z, x):
        feat = self.backbone(z, x)
        lx = (SEARCH // PATCH) ** 2
        opt = feat[:, -lx:].unsqueeze(-1).permute((0, 3, 2, 1)).contiguous()
        side = SEARCH // PATCH
        return self.box_head(opt.view(-1, EMBED, side, side))


def fill_hashed(net):
    with torch.no_grad():
        for key, t in net.state_dict().items():
            if key.endswith("num_batches_tracked"):
                t.zero_()
            else:
                t.copy_(hashed(key, tuple(t.shape)))


# ---------------------------------------------------------------- trainer objects

def trainer_class(module, name, doc):
    """A class pickled under OSTrack's module path, which a checkpoint reader will not have."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    cls = type(name, (), {"__module__": module, "__doc__": doc})
    setattr(sys.modules[module], name, cls)
    return cls


Settings = trainer_class("lib.train.admin.settings", "Settings", "Training settings, e.g. the paths to datasets.")
EnvironmentSettings = trainer_class("lib.train.admin.local", "EnvironmentSettings", "Local paths.")
AverageMeter = trainer_class("lib.train.admin.stats", "AverageMeter", "Running average of a statistic.")


def meter(val, avg, count):
    m = AverageMeter()
    m.val, m.avg, m.sum, m.count, m.history, m.has_new_data = val, avg, avg * count, count, [avg], True
    return m


def main():
    torch.manual_seed(0)
    net = OSTrack().eval()
    fill_hashed(net)

    # OSTrack's optimizer: AdamW, the head at lr, the backbone at lr * 0.1. One step on the head's
    # last convolutions gives the state dict a real (small) per-parameter state.
    params = dict(net.named_parameters())
    groups = [
        {"params": [p for n, p in params.items() if "backbone" not in n]},
        {"params": [p for n, p in params.items() if "backbone" in n], "lr": 4e-5},
    ]
    optimizer = torch.optim.AdamW(groups, lr=4e-4, weight_decay=1e-4)
    loss = sum(p.sum() for n, p in params.items() if n.startswith("box_head.conv5_"))
    loss.backward()
    optimizer.step()
    fill_hashed(net)  # the saved weights are the hashed ones

    settings = Settings()
    settings.env = EnvironmentSettings()
    settings.env.workspace_dir = "/home/user/OSTrack"
    settings.env.pretrained_networks = "/home/user/OSTrack/pretrained_networks"
    settings.use_gpu = True
    settings.script_name = "ostrack"
    settings.config_name = "vitb_256_mae_ce_32x4_ep300"
    settings.project_path = "train/ostrack/vitb_256_mae_ce_32x4_ep300"
    settings.local_rank = -1
    settings.use_lmdb = False
    settings.output_sz = {"template": TEMPLATE, "search": SEARCH}
    settings.search_area_factor = {"template": 2.0, "search": 4.0}
    settings.center_jitter_factor = {"template": 0, "search": 3}
    settings.scale_jitter_factor = {"template": 0, "search": 0.25}
    settings.grad_clip_norm = 0.1
    settings.batchsize = 32
    settings.scheduler_type = "step"
    stats = collections.OrderedDict(
        train=collections.OrderedDict([("Loss/total", meter(3.1, 3.2, 60000)), ("IoU", meter(0.83, 0.82, 60000))]),
        val=None,
    )
    state = {
        "epoch": 300,
        "actor_type": "OSTrackActor",
        "net_type": "OSTrack",
        "net": net.state_dict(),
        "net_info": None,
        "constructor": None,
        "optimizer": optimizer.state_dict(),
        "stats": stats,
        "settings": settings,
    }
    path = os.path.join(HERE, "ostrack_tiny_ep0300.pth.tar")
    torch.save(state, path)

    # The reference: OSTrack's forward on hashed crops (the RGB channels of patrack's 6-channel
    # `input.z` / `input.x` hashed inputs).
    z = hashed_input("input.z", (1, 6, TEMPLATE, TEMPLATE))[:, :3]
    x = hashed_input("input.x", (1, 6, SEARCH, SEARCH))[:, :3]
    with torch.no_grad():
        score, size, offset = net(z, x)
        score64, size64, offset64 = net.double()(z.double(), x.double())
    reference = {
        "generator": "tests/data/checkpoint/make_ostrack_fixture.py",
        "torch": torch.__version__,
        "keys": len(state["net"]),
        "sizes": {
            "embed_dim": EMBED, "depth": DEPTH, "num_heads": HEADS, "mlp_dim": MLP, "patch_size": PATCH,
            "template_size": TEMPLATE, "search_size": SEARCH, "head_channels": HEAD_CH,
        },
        "inputs": "RGB channels (0-2) of the hashed inputs input.z (1,6,64,64) and input.x (1,6,128,128)",
        "score_map": score.flatten().tolist(),
        "size_map": size.flatten().tolist(),
        "offset_map": offset.flatten().tolist(),
        "fp64_gap": max(
            (score - score64).abs().max().item(),
            (size - size64).abs().max().item(),
            (offset - offset64).abs().max().item(),
        ),
    }
    with open(os.path.join(HERE, "ostrack_tiny.reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes, {len(state['net'])} state-dict entries;"
          f" score map [{score.min().item():.4f}, {score.max().item():.4f}], fp64 gap {reference['fp64_gap']:.2e}")


if __name__ == "__main__":
    main()
