"""Plain NumPy float64 reference of the encoder modes (csrc/modes.c), for the tests.

* Attention reuse (TReX): path value 2. A reusing encoder takes the softmax probabilities
  (B, NH, T, T) of the nearest earlier active encoder (path value 1) and applies them to its own
  V = norm1(x) @ qkv_w[2C:]^T + qkv_b[2C:], then its own proj: no q k^T, no softmax.
* ReLU linear attention (Trio-ViT style softmax-free attention), ``config.attention ==
  "relu_linear"``: per head out = phi(Q) (phi(K)^T V) / (phi(Q) (phi(K)^T 1) + eps), phi = ReLU,
  eps = ``pivot.config.LINEAR_ATTENTION_EPS``; no 1/sqrt(hd) scale (it would cancel in the ratio).
"""
from __future__ import annotations

import numpy as np

from ..config import LINEAR_ATTENTION_EPS, ViTConfig, normalize_path
from . import engine as _ref
from .sim import vit_rows  # the simulator's rows of every mode (csrc/sim.c)

__all__ = ["attention_probs", "reuse_attention", "linear_attention", "forward_intermediates", "forward",
           "vit_rows"]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _heads(x, qkv_w, qkv_b, num_heads):
    B, T, C = x.shape
    hd = C // num_heads
    qkv = _ref.linear(x, qkv_w, qkv_b).reshape(B, T, 3, num_heads, hd).transpose(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]  # (B, NH, T, hd) each


def _merge(out, proj_w, proj_b):
    B, NH, T, hd = out.shape
    return _ref.linear(out.transpose(0, 2, 1, 3).reshape(B, T, NH * hd), proj_w, proj_b)


def attention_probs(x, qkv_w, qkv_b, num_heads) -> np.ndarray:
    """softmax(q k^T / sqrt(hd)) of normalized tokens x (B, T, C): (B, NH, T, T)."""
    q, k, _ = _heads(_f64(x), qkv_w, qkv_b, num_heads)
    return _ref.softmax(q @ k.transpose(0, 1, 3, 2) * q.shape[-1] ** -0.5)


def reuse_attention(x, probs, qkv_w, qkv_b, proj_w, proj_b, num_heads) -> np.ndarray:
    """Attention branch on normalized tokens x (B, T, C) with given probabilities (B, NH, T, T)."""
    x = _f64(x)
    C = x.shape[-1]
    B, T = x.shape[:2]
    hd = C // num_heads
    v = _ref.linear(x, _f64(qkv_w)[2 * C:], None if qkv_b is None else _f64(qkv_b)[2 * C:])
    v = v.reshape(B, T, num_heads, hd).transpose(0, 2, 1, 3)
    return _merge(_f64(probs) @ v, proj_w, proj_b)


def linear_attention(x, qkv_w, qkv_b, proj_w, proj_b, num_heads, eps=LINEAR_ATTENTION_EPS) -> np.ndarray:
    """ReLU linear attention branch on normalized tokens x (B, T, C)."""
    q, k, v = _heads(_f64(x), qkv_w, qkv_b, num_heads)
    q, k = np.maximum(q, 0.0), np.maximum(k, 0.0)
    kv = k.transpose(0, 1, 3, 2) @ v                  # (B, NH, hd, hd)
    ksum = k.sum(axis=2)[..., None]                   # (B, NH, hd, 1)
    return _merge((q @ kv) / (q @ ksum + eps), proj_w, proj_b)


def forward_intermediates(config: ViTConfig, weights, images, path=None, with_probs=False):
    """(logits, attn_outputs, mlp_outputs[, probs]) in float64 for paths over {0, 1, 2} and either
    attention kind; attn_outputs[i] is None exactly when path[i] == 0; probs[i] (B, NH, T, T) for
    active softmax encoders (a reusing encoder lists the probabilities it reused), else None."""
    if not config.is_timm_vit:
        raise ValueError("the modes reference covers timm ViTs (no LV-ViT features)")
    path = normalize_path(path, config.depth, allow_reuse=True)
    linear = config.attention == "relu_linear"
    images = _f64(images)
    B, C = images.shape[0], config.embed_dim
    x = _ref.patch_embed(images, weights["patch_embed.proj.weight"], weights["patch_embed.proj.bias"],
                         config.patch_size)
    prefix = [np.broadcast_to(_f64(weights["cls_token"]), (B, 1, C))]
    if config.distilled:
        prefix.append(np.broadcast_to(_f64(weights["dist_token"]), (B, 1, C)))
    x = np.concatenate(prefix + [x], axis=1) + _f64(weights["pos_embed"])
    attn_outputs, mlp_outputs, probs_list, last = [], [], [], None
    for i in range(config.depth):
        w = _ref._block_weights(weights, i)
        a, p = None, None
        if path[i]:
            xn = _ref.layernorm(x, w["norm1.weight"], w["norm1.bias"], config.norm_eps)
            args = (w["attn.qkv.weight"], w.get("attn.qkv.bias"))
            if linear:
                a = linear_attention(xn, *args, w["attn.proj.weight"], w["attn.proj.bias"], config.num_heads)
            else:
                if path[i] == 1:
                    last = attention_probs(xn, *args, config.num_heads)
                p = last
                a = reuse_attention(xn, last, *args, w["attn.proj.weight"], w["attn.proj.bias"], config.num_heads)
            x = x + a
        m = _ref.mlp(_ref.layernorm(x, w["norm2.weight"], w["norm2.bias"], config.norm_eps), w["mlp.fc1.weight"],
                     w["mlp.fc1.bias"], w["mlp.fc2.weight"], w["mlp.fc2.bias"])
        x = x + m
        attn_outputs.append(a)
        mlp_outputs.append(m)
        probs_list.append(p)
    x = _ref.layernorm(x, weights["norm.weight"], weights["norm.bias"], config.norm_eps)
    logits = _ref.linear(x[:, 0], weights["head.weight"], weights["head.bias"])
    if config.distilled:
        logits = (logits + _ref.linear(x[:, 1], weights["head_dist.weight"], weights["head_dist.bias"])) / 2
    if with_probs:
        return logits, attn_outputs, mlp_outputs, probs_list
    return logits, attn_outputs, mlp_outputs


def forward(config: ViTConfig, weights, images, path=None) -> np.ndarray:
    """Logits (B, num_classes) in float64."""
    return forward_intermediates(config, weights, images, path)[0]
