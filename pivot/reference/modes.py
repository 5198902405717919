"""Plain NumPy float64 reference of the encoder modes (csrc/modes.c, csrc/sim_modes.c), for the tests.

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
from . import sim as _sim

__all__ = ["attention_probs", "reuse_attention", "linear_attention", "forward_branches", "forward",
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


def forward_branches(config: ViTConfig, weights, images, path=None, with_probs=False):
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
    return forward_branches(config, weights, images, path)[0]


def _elementwise(op, rows, cols, count, hw, block):
    """A PS pass priced like the GELU lookup (ReLU of Q and K, linear attention's division)."""
    row = _sim.ps_row("relu", rows, cols, count, hw, block, 3)
    row["op"] = op
    return row


def vit_rows(cfg, path, hw, batch=1, entropy=False, attention="softmax"):
    """Simulator rows (pivot.reference.sim conventions) of a ViT with paths over {0, 1, 2}.

    Per encoder: skip (0) as in ``pivot.reference.sim.vit_rows``; active softmax (1): norm1, qkv,
    qk, softmax (PS), sv, proj; reuse (2): norm1, v (B*T, C, C), sv, proj (no qk, no softmax);
    linear attention (1 with ``attention="relu_linear"``): norm1, qkv, relu_qk (PS, B*T x 2C),
    kv = phi(K)^T [V | 1] (hd, hd + 1, T) and q_kv = phi(Q) [KV | ksum] (T, hd + 1, hd) per image
    and head on the array (the extra column carries the normalizer), linear_div (PS, T x hd per
    image and head), proj. Then norm2, fc1, gelu, fc2 always.
    """
    if attention == "relu_linear" and 2 in list(path):
        raise ValueError("reuse (2) needs softmax attention")
    B, T, Cd, H = batch, cfg["num_tokens"], cfg["embed_dim"], cfg["num_heads"]
    hd, hidden = Cd // H, cfg["mlp_hidden"]
    g, ps = _sim.gemm_row, _sim.ps_row
    rows = [g(B * cfg["num_patches"], Cd, cfg["patch_dim"], 1, hw, "patch_embed", -1, 3)]
    for i in range(cfg["depth"]):
        mode = int(path[i])
        if mode:
            rows.append(ps("norm1", B * T, Cd, 1, hw, i, 3))
        if mode == 2:
            rows += [g(B * T, Cd, Cd, 1, hw, "v", i, 0), g(T, hd, T, B * H, hw, "sv", i, 0)]
        elif mode == 1 and attention == "relu_linear":
            rows += [g(B * T, 3 * Cd, Cd, 1, hw, "qkv", i, 0), _elementwise("relu_qk", B * T, 2 * Cd, 1, hw, i),
                     g(hd, hd + 1, T, B * H, hw, "kv", i, 0), g(T, hd + 1, hd, B * H, hw, "q_kv", i, 0),
                     _elementwise("linear_div", T, hd, B * H, hw, i)]
        elif mode == 1:
            rows += [g(B * T, 3 * Cd, Cd, 1, hw, "qkv", i, 0), g(T, T, hd, B * H, hw, "qk", i, 0),
                     ps("softmax", T, T, B * H, hw, i, 1), g(T, hd, T, B * H, hw, "sv", i, 0)]
        if mode:
            rows.append(g(B * T, Cd, Cd, 1, hw, "proj", i, 0))
        rows += [ps("norm2", B * T, Cd, 1, hw, i, 3), g(B * T, hidden, Cd, 1, hw, "fc1", i, 2),
                 ps("gelu", B * T, hidden, 1, hw, i, 2), g(B * T, Cd, hidden, 1, hw, "fc2", i, 2)]
    rows.append(ps("norm", B * cfg["num_prefix_tokens"], Cd, 1, hw, -1, 3))
    rows.append(g(B, cfg["num_classes"], Cd, 1, hw, "head", -1, 3))
    if cfg["distilled"]:
        rows.append(g(B, cfg["num_classes"], Cd, 1, hw, "head_dist", -1, 3))
    if entropy:
        rows.append(ps("entropy", B, cfg["num_classes"], 1, hw, -1, 3))
    return rows
