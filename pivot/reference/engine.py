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
    "layernorm", "rmsnorm", "norm", "gelu", "swiglu", "activation", "softmax", "linear", "attention", "mlp", "block", "patch_embed",
    "embed_tokens", "attention_pool", "head", "forward", "forward_branches",
]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def layernorm(x, weight, bias, eps=1e-6) -> np.ndarray:
    """LayerNorm over the last axis (biased variance, as torch)."""
    x = _f64(x)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * _f64(weight) + _f64(bias)


def rmsnorm(x, weight, eps=1e-6) -> np.ndarray:
    """timm's RmsNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight."""
    x = _f64(x)
    return x / np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + eps) * _f64(weight)


def norm(x, weight, bias, eps=1e-6) -> np.ndarray:
    """The model's norm: LayerNorm, or RmsNorm where the norm has no bias (``norm_layer="rmsnorm"``)."""
    return rmsnorm(x, weight, eps) if bias is None else layernorm(x, weight, bias, eps)


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


def attention(x, qkv_w, qkv_b, proj_w, proj_b, num_heads, qk_norm=None, eps=1e-6, out_norm=None) -> np.ndarray:
    """timm Attention.forward on already-normalized tokens x (B, T, C); ``qk_norm``:
    ``(q_norm.w, q_norm.b, k_norm.w, k_norm.b)`` (LayerNorm over head_dim) or None; ``out_norm``:
    ``(attn.norm.w, attn.norm.b)``, timm's scale_attn_norm before proj, or None."""
    x = _f64(x)
    B, T, C = x.shape
    hd = C // num_heads
    qkv = linear(x, qkv_w, qkv_b).reshape(B, T, 3, num_heads, hd).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]                       # (B, NH, T, hd)
    if qk_norm is not None:
        q, k = norm(q, qk_norm[0], qk_norm[1], eps), norm(k, qk_norm[2], qk_norm[3], eps)
    attn = softmax(q @ k.transpose(0, 1, 3, 2) * hd ** -0.5)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    if out_norm is not None:
        out = norm(out, out_norm[0], out_norm[1], eps)
    return linear(out, proj_w, proj_b)


def activation(x, act: str = "gelu") -> np.ndarray:
    """The MLP activations of ``pivot.config.ACTIVATIONS``: exact GELU, tanh GELU, QuickGELU."""
    x = _f64(x)
    if act == "gelu":
        return gelu(x)
    if act == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if act == "quick_gelu":
        return x / (1.0 + np.exp(-1.702 * x))
    if act == "silu":
        return x / (1.0 + np.exp(-x))
    raise ValueError(f"unknown activation {act!r}")


def mlp(x, fc1_w, fc1_b, fc2_w, fc2_b, act: str = "gelu", hidden_norm=None, eps=1e-6) -> np.ndarray:
    """timm Mlp: fc2(norm(act(fc1(x)))); ``hidden_norm``: ``(mlp.norm.w, mlp.norm.b)`` (scale_mlp_norm) or None."""
    h = activation(linear(x, fc1_w, fc1_b), act)
    if hidden_norm is not None:
        h = norm(h, hidden_norm[0], hidden_norm[1], eps)
    return linear(h, fc2_w, fc2_b)


def swiglu(x, g_w, g_b, x_w, x_b, fc2_w, fc2_b, act: str = "silu", hidden_norm=None, eps=1e-6) -> np.ndarray:
    """timm SwiGLU: fc2(norm(act(fc1_g(x)) * fc1_x(x)))."""
    h = activation(linear(x, g_w, g_b), act) * linear(x, x_w, x_b)
    if hidden_norm is not None:
        h = norm(h, hidden_norm[0], hidden_norm[1], eps)
    return linear(h, fc2_w, fc2_b)


def _block_weights(weights, i):
    p = f"blocks.{i}."
    return {k[len(p):]: v for k, v in weights.items() if k.startswith(p)}


def qk_norm_weights(w):
    """``(q_norm.w, q_norm.b, k_norm.w, k_norm.b)`` of a block's keys, or None without qk_norm."""
    if "attn.q_norm.weight" not in w:
        return None
    return tuple(w.get(f"attn.{n}.{p}") for n in ("q_norm", "k_norm") for p in ("weight", "bias"))


def _pair(w, name):
    """(name.weight, name.bias) when the block has that norm, else None."""
    return (w[name + ".weight"], w.get(name + ".bias")) if name + ".weight" in w else None


def block(x, w, num_heads, eps=1e-6, attn_active=True, skip_lam=1.0, act="gelu"):
    """One pre-norm encoder; ``w`` holds the block's keys without the ``blocks.i.`` prefix (no
    ``attn.qkv.bias``: qkv without bias; ``ls1.gamma`` / ``ls2.gamma``: layer scale;
    ``attn.q_norm`` / ``attn.k_norm``: qk_norm).

    Returns (out, attn_branch or None, mlp_branch): branches are before the residual add, before
    the layer scale and before LV-ViT's division by ``skip_lam`` (out = x + ls(branch) / skip_lam).
    A skipped encoder (``attn_active=False``) computes x + ls2(mlp(norm2(x))) / skip_lam only.
    """
    x = _f64(x)
    a = None
    ls1, ls2 = (_f64(w[k]) if k in w else 1.0 for k in ("ls1.gamma", "ls2.gamma"))
    if attn_active:
        a = attention(norm(x, w["norm1.weight"], w.get("norm1.bias"), eps), w["attn.qkv.weight"],
                      w.get("attn.qkv.bias"), w["attn.proj.weight"], w.get("attn.proj.bias"), num_heads,
                      qk_norm_weights(w), eps, _pair(w, "attn.norm"))
        x = x + a * ls1 / skip_lam
    h = norm(x, w["norm2.weight"], w.get("norm2.bias"), eps)
    if "mlp.fc1_g.weight" in w:
        m = swiglu(h, w["mlp.fc1_g.weight"], w.get("mlp.fc1_g.bias"), w["mlp.fc1_x.weight"], w.get("mlp.fc1_x.bias"),
                   w["mlp.fc2.weight"], w.get("mlp.fc2.bias"), act, _pair(w, "mlp.norm"), eps)
    else:
        m = mlp(h, w["mlp.fc1.weight"], w.get("mlp.fc1.bias"), w["mlp.fc2.weight"], w.get("mlp.fc2.bias"), act,
                _pair(w, "mlp.norm"), eps)
    return x + m * ls2 / skip_lam, a, m


def patch_embed(images, weight, bias, patch_size) -> np.ndarray:
    """Conv2d with kernel = stride = patch_size, flattened to tokens (B, num_patches, C); the grid
    is floored (pixels past the last whole patch are not read)."""
    images = _f64(images)
    B, Cin, S, _ = images.shape
    G, P = S // patch_size, patch_size
    images = images[:, :, :G * P, :G * P]
    patches = images.reshape(B, Cin, G, P, G, P).transpose(0, 2, 4, 1, 3, 5).reshape(B, G * G, Cin * P * P)
    out = patches @ _f64(weight).reshape(weight.shape[0], -1).T
    return out if bias is None else out + _f64(bias)


def embed_tokens(config: ViTConfig, weights, images) -> np.ndarray:
    """Tokens (B, T, C) before the first encoder: patch embedding, the prefix tokens
    ([cls] [dist] [reg x R]) and the position embedding (over the patches only with
    ``no_embed_class``), then ``norm_pre``; timm's ``_pos_embed`` and ``norm_pre``."""
    images = _f64(images)
    B, C = images.shape[0], config.embed_dim
    if config.stem == "lvvit_conv":
        from .lvvit import conv_stem
        images = conv_stem(images, weights)
    x = patch_embed(images, weights["patch_embed.proj.weight"], weights.get("patch_embed.proj.bias"),
                    config.proj_kernel)
    if config.patch_norm:
        x = norm(x, weights["patch_embed.norm.weight"], weights.get("patch_embed.norm.bias"), config.norm_eps)
    prefix = [np.broadcast_to(_f64(weights[k]), (B, weights[k].shape[1], C))
              for k in ("cls_token", "dist_token", "reg_token") if k in weights]
    pos = _f64(weights["pos_embed"])
    if config.no_embed_class:
        x = np.concatenate(prefix + [x + pos], axis=1)
    else:
        x = np.concatenate(prefix + [x], axis=1) + pos
    if config.norm_pre:
        x = norm(x, weights["norm_pre.weight"], weights.get("norm_pre.bias"), config.norm_eps)
    return x


def attention_pool(config: ViTConfig, weights, x) -> np.ndarray:
    """timm's AttentionPoolLatent (``global_pool="map"``) over the patch tokens of x (B, T, C) ->
    (B, C) (timm's default ``pool_include_prefix=False`` leaves the prefix tokens out)."""
    w = {k[len("attn_pool."):]: v for k, v in weights.items() if k.startswith("attn_pool.")}
    if not config.pool_include_prefix:
        x = x[:, config.num_prefix_tokens:]
    B, T, C = x.shape
    nh, hd = config.num_heads, config.head_dim
    q = linear(w["latent"], w["q.weight"], w["q.bias"]).reshape(1, 1, nh, hd).transpose(0, 2, 1, 3)
    kv = linear(x, w["kv.weight"], w["kv.bias"]).reshape(B, T, 2, nh, hd).transpose(2, 0, 3, 1, 4)
    attn = softmax(q @ kv[0].transpose(0, 1, 3, 2) * hd ** -0.5)   # (B, NH, 1, T)
    y = linear((attn @ kv[1]).transpose(0, 2, 1, 3).reshape(B, 1, C), w["proj.weight"], w["proj.bias"])
    y = y + mlp(norm(y, w["norm.weight"], w.get("norm.bias"), config.norm_eps), w["mlp.fc1.weight"],
                w["mlp.fc1.bias"], w["mlp.fc2.weight"], w["mlp.fc2.bias"], config.act)
    return y[:, 0]


def head(config: ViTConfig, weights, x) -> np.ndarray:
    """timm's ``forward_head`` on the final tokens x (B, T, C): norm (before pooling unless
    ``fc_norm``), pooling (``global_pool``, over the patch tokens for avg / max / avgmax),
    fc_norm, the head(s); headless (num_classes 0): the pooled features."""
    eps, n = config.norm_eps, 0 if config.pool_include_prefix else config.num_prefix_tokens
    if config.final_norm and not config.fc_norm:
        x = norm(x, weights["norm.weight"], weights.get("norm.bias"), eps)
    pool = config.global_pool
    if pool == "token":
        f = x[:, 0]
    elif pool == "map":
        f = attention_pool(config, weights, x)
    else:
        avg, mx = x[:, n:].mean(axis=1), x[:, n:].max(axis=1)
        f = avg if pool == "avg" else mx if pool == "max" else 0.5 * (avg + mx)
    if config.fc_norm:
        f = norm(f, weights["fc_norm.weight"], weights.get("fc_norm.bias"), eps)
    if not config.num_classes:
        return f
    logits = linear(f, weights["head.weight"], weights["head.bias"])
    if config.distilled:
        logits = (logits + linear(x[:, 1], weights["head_dist.weight"], weights["head_dist.bias"])) / 2
    if config.aux_head:
        from .lvvit import aux_head_logits
        logits = logits + aux_head_logits(x[:, config.num_prefix_tokens:], weights["aux_head.weight"], weights["aux_head.bias"])
    return logits


def forward_branches(config: ViTConfig, weights, images, path=None):
    """(logits (B, K), attn_outputs [D x (B, T, C) or None], mlp_outputs [D x (B, T, C)]) in float64."""
    path = normalize_path(path, config.depth)
    x = embed_tokens(config, weights, images)
    attn_outputs, mlp_outputs = [], []
    for i in range(config.depth):
        x, a, m = block(x, _block_weights(weights, i), config.num_heads, config.norm_eps, bool(path[i]),
                        config.skip_lam, config.act)
        attn_outputs.append(a)
        mlp_outputs.append(m)
    return head(config, weights, x), attn_outputs, mlp_outputs


def forward(config: ViTConfig, weights, images, path=None) -> np.ndarray:
    """Logits (B, num_classes) in float64."""
    return forward_branches(config, weights, images, path)[0]
