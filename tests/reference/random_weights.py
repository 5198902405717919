"""Deterministic random ViT weights and images in pure NumPy.

Shared by tests/reference/make_timm_reference.py (run under timm's venv) and the tests (run
with pivot), so both sides build bit-identical float32 weights from a seed, without storing them.
Each tensor is drawn from its own generator seeded by (seed, crc32(name)), so the values do not
depend on the order of the keys. Values are deliberately non-trivial (LayerNorm weights away
from 1, nonzero biases) so that a wrong norm, bias or layout shows up in the logits.
"""
from __future__ import annotations

import hashlib
import zlib

import numpy as np

__all__ = ["make_weights", "make_images", "digest"]


def _generator(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def make_weights(shapes: dict, seed: int) -> dict[str, np.ndarray]:
    """name -> float32 array for every ``name -> shape`` in ``shapes``.

    LayerNorm weights (``norm*.weight``) are ``1 + 0.1 * N(0, 1)``, biases ``0.02 * N(0, 1)``,
    everything else (matrices, conv kernel, cls/dist tokens, position embedding) ``0.02 * N(0, 1)``.
    """
    weights = {}
    for name, shape in shapes.items():
        normal = _generator(seed, name).standard_normal(tuple(shape))
        last = name.rsplit(".", 2)
        is_norm_weight = len(last) >= 2 and last[-1] == "weight" and last[-2].startswith("norm")
        values = 1.0 + 0.1 * normal if is_norm_weight else 0.02 * normal
        weights[name] = values.astype(np.float32)
    return weights


def make_images(n: int, chans: int, size: int, seed: int) -> np.ndarray:
    """(n, chans, size, size) float32 images, standard normal (like normalized pixels)."""
    rng = np.random.default_rng([int(seed), 0x1A6E])
    return rng.standard_normal((n, chans, size, size)).astype(np.float32)


def digest(arrays: dict) -> str:
    """sha256 over names and float32 bytes in sorted name order: both sides must agree on it."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(arrays[name], dtype="<f4").tobytes())
    return h.hexdigest()
