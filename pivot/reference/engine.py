"""Plain NumPy float64 reference of every engine kernel (csrc/engine.c), for the tests.

Written for clarity, not speed: each function follows timm's ``VisionTransformer`` literally.
Weights are mappings of timm key -> array; every computation runs in float64. LV-ViT configs
(conv stem, skip_lam, aux head, no qkv bias) follow TokenLabeling's model definition, with the
stem from ``pivot.reference.lvvit`` (BatchNorm unfolded).
"""
from __future__ import annotations

import math

import numpy as np

from ..config import ViTConfig, normalize_path

__all__ = [
    "layernorm", "gelu", "softmax", "linear", "attention", "mlp", "block", "patch_embed", "forward",
    "forward_branches",
]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def layernorm(x, weight, bias, eps=1e-6) -> np.ndarray:
    """LayerNorm over the last axis (biased variance, as torch)."""
    x = _f64(x)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * _f64(weight) + _f64(bias)


def gelu(x) -> np.ndarray:
    """Exact GELU, x * Phi(x) with the erf form."""
    x = _f64(x)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))) if x.size else x.copy()


def softmax(x, axis=-1) -> np.ndarray:
    """Softmax with the maximum subtracted."""
    x = _f64(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def linear(x, weight, bias=None) -> np.ndarray:
    """torch.nn.Linear: x @ weight^T + bias, weight (out, in)."""
    y = _f64(x) @ _f64(weight).T
    return y if bias is None else y + _f64(bias)


def attention(x, qkv_w, qkv_b, proj_w, proj_b, num_heads) -> np.ndarray:
    """timm Attention.forward on already-normalized tokens x (B, T, C)."""
    x = _f64(x)
    B, T, C = x.shape
    hd = C // num_heads
    qkv = linear(x, qkv_w, qkv_b).reshape(B, T, 3, num_heads, hd).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]                       # (B, NH, T, hd)
    attn = softmax(q @ k.transpose(0, 1, 3, 2) * hd ** -0.5)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    return linear(out, proj_w, proj_b)


def mlp(x, fc1_w, fc1_b, fc2_w, fc2_b) -> np.ndarray:
    """timm Mlp: fc2(gelu(fc1(x)))."""
    return linear(gelu(linear(x, fc1_w, fc1_b)), fc2_w, fc2_b)


def _block_weights(weights, i):
    p = f"blocks.{i}."
    return {k[len(p):]: v for k, v in weights.items() if k.startswith(p)}


def block(x, w, num_heads, eps=1e-6, attn_active=True, skip_lam=1.0):
    """One pre-norm encoder; ``w`` holds the block's keys without the ``blocks.i.`` prefix (no
    ``attn.qkv.bias``: qkv without bias).

    Returns (out, attn_branch or None, mlp_branch): branches are before the residual add and before
    LV-ViT's division by ``skip_lam`` (out = x + branch / skip_lam). A skipped encoder
    (``attn_active=False``) computes x + mlp(norm2(x)) / skip_lam only.
    """
    x = _f64(x)
    a = None
    if attn_active:
        a = attention(layernorm(x, w["norm1.weight"], w["norm1.bias"], eps), w["attn.qkv.weight"],
                      w.get("attn.qkv.bias"), w["attn.proj.weight"], w["attn.proj.bias"], num_heads)
        x = x + a / skip_lam
    m = mlp(layernorm(x, w["norm2.weight"], w["norm2.bias"], eps), w["mlp.fc1.weight"], w["mlp.fc1.bias"],
            w["mlp.fc2.weight"], w["mlp.fc2.bias"])
    return x + m / skip_lam, a, m


def patch_embed(images, weight, bias, patch_size) -> np.ndarray:
    """Conv2d with kernel = stride = patch_size, flattened to tokens (B, num_patches, C)."""
    images = _f64(images)
    B, Cin, S, _ = images.shape
    G, P = S // patch_size, patch_size
    patches = images.reshape(B, Cin, G, P, G, P).transpose(0, 2, 4, 1, 3, 5).reshape(B, G * G, Cin * P * P)
    return patches @ _f64(weight).reshape(weight.shape[0], -1).T + _f64(bias)


def forward_branches(config: ViTConfig, weights, images, path=None):
    """(logits (B, K), attn_outputs [D x (B, T, C) or None], mlp_outputs [D x (B, T, C)]) in float64."""
    path = normalize_path(path, config.depth)
    images = _f64(images)
    B = images.shape[0]
    C = config.embed_dim
    if config.stem == "lvvit_conv":
        from .lvvit import conv_stem
        images = conv_stem(images, weights)
    x = patch_embed(images, weights["patch_embed.proj.weight"], weights["patch_embed.proj.bias"], config.proj_kernel)
    prefix = [np.broadcast_to(_f64(weights["cls_token"]), (B, 1, C))]
    if config.distilled:
        prefix.append(np.broadcast_to(_f64(weights["dist_token"]), (B, 1, C)))
    x = np.concatenate(prefix + [x], axis=1) + _f64(weights["pos_embed"])
    attn_outputs, mlp_outputs = [], []
    for i in range(config.depth):
        x, a, m = block(x, _block_weights(weights, i), config.num_heads, config.norm_eps, bool(path[i]),
                        config.skip_lam)
        attn_outputs.append(a)
        mlp_outputs.append(m)
    x = layernorm(x, weights["norm.weight"], weights["norm.bias"], config.norm_eps)
    logits = linear(x[:, 0], weights["head.weight"], weights["head.bias"])
    if config.distilled:
        logits = (logits + linear(x[:, 1], weights["head_dist.weight"], weights["head_dist.bias"])) / 2
    if config.aux_head:
        from .lvvit import aux_head_logits
        logits = logits + aux_head_logits(x[:, config.num_prefix_tokens:], weights["aux_head.weight"],
                                          weights["aux_head.bias"])
    return logits, attn_outputs, mlp_outputs


def forward(config: ViTConfig, weights, images, path=None) -> np.ndarray:
    """Logits (B, num_classes) in float64."""
    return forward_branches(config, weights, images, path)[0]
