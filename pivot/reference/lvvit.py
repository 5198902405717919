"""Plain NumPy float64 reference of LV-ViT's pieces (csrc/lvvit.c), for the tests.

Written from TokenLabeling's ``models/layers.py`` (PatchEmbed4_2) and ``tlt/models/lvvit.py``:
BatchNorm runs UNFOLDED here (eval mode: running statistics), so that holding the C engine, which
folds it into the convolutions, equal to this reference checks the folding. The transformer part
is ``pivot.reference.engine.forward_branches``, which handles LV-ViT configs.
"""
from __future__ import annotations

import numpy as np

__all__ = ["conv2d", "batchnorm", "relu", "conv_stem", "aux_head_logits"]

BATCHNORM_EPS = 1e-5  # nn.BatchNorm2d's default, kept by PatchEmbed4_2


def conv2d(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """torch.nn.functional.conv2d with a square kernel and zero padding: x (B, Cin, H, W),
    weight (Cout, Cin, k, k) -> (B, Cout, Ho, Wo), Ho = (H + 2 padding - k) // stride + 1."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    B, Cin, H, W = x.shape
    Cout, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho, Wo = (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1
    out = np.zeros((Cout, B, Ho, Wo))
    for ky in range(k):          # one kernel tap at a time: out += w[:, :, ky, kx] @ shifted input
        for kx in range(k):
            patch = xp[:, :, ky:ky + stride * (Ho - 1) + 1:stride, kx:kx + stride * (Wo - 1) + 1:stride]
            out += np.tensordot(w[:, :, ky, kx], patch, axes=([1], [1]))   # (Cout, B, Ho, Wo)
    out = out.transpose(1, 0, 2, 3)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out


def batchnorm(x, weight, bias, running_mean, running_var, eps=BATCHNORM_EPS) -> np.ndarray:
    """nn.BatchNorm2d in eval mode over (B, C, H, W): (x - mean) / sqrt(var + eps) * weight + bias."""
    shape = (1, -1, 1, 1)
    f = lambda a: np.asarray(a, dtype=np.float64).reshape(shape)  # noqa: E731
    return (np.asarray(x, dtype=np.float64) - f(running_mean)) / np.sqrt(f(running_var) + eps) * f(weight) + f(bias)


def relu(x) -> np.ndarray:
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def conv_stem(images, weights) -> np.ndarray:
    """PatchEmbed4_2 before ``proj``: (conv1 7x7/2 pad 3, conv2 3x3, conv3 3x3), each followed by
    BatchNorm and ReLU; ``weights`` holds the ``patch_embed.`` keys. -> (B, S, H/2, W/2)."""
    x = np.asarray(images, dtype=np.float64)
    for i, (stride, padding) in enumerate(((2, 3), (1, 1), (1, 1)), start=1):
        x = conv2d(x, weights[f"patch_embed.conv{i}.weight"], None, stride, padding)
        bn = f"patch_embed.bn{i}."
        x = relu(batchnorm(x, weights[bn + "weight"], weights[bn + "bias"], weights[bn + "running_mean"],
                           weights[bn + "running_var"]))
    return x


def aux_head_logits(tokens, weight, bias) -> np.ndarray:
    """Token labeling at inference: 0.5 * max over the patch tokens (B, N, C) of aux_head -> (B, K)."""
    aux = np.asarray(tokens, dtype=np.float64) @ np.asarray(weight, dtype=np.float64).T + np.asarray(bias, np.float64)
    return 0.5 * aux.max(axis=1)
