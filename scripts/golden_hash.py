"""The golden hash rule (src/model/hashinit.rs) in numpy, for the Python scripts that write
fixtures or run the official code on the same deterministic weights and inputs as the Rust tests.

u(key, i) = fmix32(fnv1a32(key) ^ (i * 0x9E3779B1 mod 2^32)) >> 8, divided by 2^24: uniform in
[0, 1), float64, for the flat index i of the tensor named `key`.
"""

import math

import numpy as np

MASK = np.uint64(0xFFFFFFFF)


def fnv1a32(s):
    h = 2166136261
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def uniform(key, n):
    """u in [0, 1) (float64) for the flat indices 0..n-1 of tensor `key`."""
    i = np.arange(n, dtype=np.uint64)
    h = np.uint64(fnv1a32(key)) ^ ((i * np.uint64(0x9E3779B1)) & MASK)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & MASK
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & MASK
    h ^= h >> np.uint64(16)
    return (h >> np.uint64(8)).astype(np.float64) / float(1 << 24)


def hashed_value(key, shape):
    """The weight value rule (first matching line wins), float64 -> float32 once;
    `num_batches_tracked` is zero (int64)."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape)) if shape else 1
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    u = uniform(key, n)
    if key.endswith("running_var"):
        v = 0.5 + u
    elif key.endswith("running_mean"):
        v = 0.2 * (u - 0.5)
    elif "pos_embed" in key or "cls_token" in key:
        v = 0.2 * (u - 0.5)
    elif len(shape) == 1 and key.endswith(".weight"):
        v = 1.0 + 0.2 * (u - 0.5)
    elif len(shape) <= 1:
        v = 0.2 * (u - 0.5)
    else:
        fan_in = n // shape[0]
        v = (2.0 * u - 1.0) * math.sqrt(3.0 / fan_in)
    return v.astype(np.float32).reshape(shape)


def hashed_input(key, shape):
    """Hashed inputs: uniform in [-2, 2) (src/model/hashinit.rs `hash_input`), float32."""
    u = uniform(key, int(np.prod(shape)))
    return (2.0 * (2.0 * u - 1.0)).astype(np.float32).reshape(shape)
