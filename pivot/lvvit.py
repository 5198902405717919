"""LV-ViT support: how a model with LV-ViT features is laid out for the C engine.

LV-ViT ("All tokens matter: token labeling", Jiang et al. 2021; TokenLabeling's
``tlt/models/lvvit.py``) is a ViT with a convolutional patch embedding, residual branches divided
by ``skip_lam``, no qkv bias and a token-labeling auxiliary head (see :class:`pivot.ViTConfig`).
``pivot.ViT`` runs any config with these features (``not config.is_timm_vit``) through
``pivot._core.vit_forward`` (csrc/lvvit.c). This module packs the weights for it:

* one flat float32 array, the model's ``_params``: first the engine's transformer array (the
  layout of csrc/engine.h for the config that ``patch_embed.proj`` sees, with a zero
  ``attn.qkv.bias`` where the model has none), then ``aux_head.weight`` and ``aux_head.bias``,
  then the stem's raw tensors (convolution weights and BatchNorm weight, bias, running_mean,
  running_var) exactly as loaded, so that ``state_dict()`` gives back what was loaded;
* the stem folded for inference (:func:`fold_batchnorm`), a small separate array computed once
  when the model is built: BatchNorm at eval is ``y = (conv(x) - mean) / sqrt(var + eps) * gamma
  + beta``, an affine map per output channel, so ``conv`` with weight ``W * s`` and bias
  ``beta - mean * s`` (``s = gamma / sqrt(var + eps)``, computed in float64) gives the same
  ``y`` with no BatchNorm left to run. ``pivot.reference.lvvit`` runs BatchNorm unfolded, so the
  tests check the folding.
"""
from __future__ import annotations

import numpy as np

from .config import ViTConfig

__all__ = ["BATCHNORM_EPS", "fold_batchnorm", "STEM_LAYERS"]

# nn.BatchNorm2d's default epsilon, which PatchEmbed4_2 keeps.
BATCHNORM_EPS = 1e-5

# The stem's convolutions: (name, kernel, stride, padding); each is followed by BatchNorm and ReLU.
STEM_LAYERS = (("conv1", 7, 2, 3), ("conv2", 3, 1, 1), ("conv3", 3, 1, 1))


def fold_batchnorm(conv_weight, bn_weight, bn_bias, running_mean, running_var, eps: float = BATCHNORM_EPS):
    """``(weight, bias)`` float32 of the bias-free convolution ``conv_weight`` (Cout, Cin, k, k)
    followed by eval-mode BatchNorm: ``conv(x, weight) + bias == bn(conv(x, conv_weight))``.

    ``scale = bn_weight / sqrt(running_var + eps)``; ``weight = conv_weight * scale`` per output
    channel; ``bias = bn_bias - running_mean * scale``; computed in float64.
    """
    w = np.asarray(conv_weight, dtype=np.float64)
    gamma, beta, mean, var = (np.asarray(a, dtype=np.float64) for a in (bn_weight, bn_bias, running_mean, running_var))
    if w.ndim != 4 or not (gamma.shape == beta.shape == mean.shape == var.shape == (w.shape[0],)):
        raise ValueError(f"fold_batchnorm: conv weight {w.shape} needs BatchNorm vectors of length {w.shape[0] if w.ndim else '?'}, "
                         f"got {gamma.shape}, {beta.shape}, {mean.shape}, {var.shape}")
    if np.any(var + eps <= 0):
        raise ValueError("fold_batchnorm: running_var + eps must be positive")
    scale = gamma / np.sqrt(var + eps)
    return (w * scale[:, None, None, None]).astype(np.float32), (beta - mean * scale).astype(np.float32)


def stem_keys(config: ViTConfig) -> list:
    """The stem's state-dict keys, in ``weight_shapes()`` order (empty without the conv stem)."""
    if config.stem != "lvvit_conv":
        return []
    keys = []
    for i in (1, 2, 3):
        keys.append(f"patch_embed.conv{i}.weight")
        keys += [f"patch_embed.bn{i}.{name}" for name in ("weight", "bias", "running_mean", "running_var")]
    return keys


def _packing(config: ViTConfig) -> list:
    """``[(key or None, shape)]`` in the order of the model's flat array (csrc/engine.h's layout);
    None = zeros for a bias the model does not have (qkv, patch embedding, RmsNorm's norms)."""
    shapes = config.weight_shapes()
    full = config.replace(norm_layer="layernorm", proj_bias=True).weight_shapes()
    C = config.embed_dim

    def entry(key, zero_shape=None):
        return (key, shapes[key]) if key in shapes else (None, zero_shape or full[key])

    def present(keys):
        return [entry(k) for k in keys if k in full]

    out = present(("cls_token", "dist_token", "reg_token", "pos_embed", "patch_embed.proj.weight"))
    out.append(entry("patch_embed.proj.bias", (C,)))
    out += present(("patch_embed.norm.weight", "patch_embed.norm.bias", "norm_pre.weight", "norm_pre.bias"))
    fc1 = (("mlp.fc1_g.weight", "mlp.fc1_x.weight", "mlp.fc1_g.bias", "mlp.fc1_x.bias") if config.mlp_layer == "swiglu"
           else ("mlp.fc1.weight", "mlp.fc1.bias"))  # the engine's fc1: (2H, C) [g; x] for SwiGLU
    for i in range(config.depth):
        b = f"blocks.{i}."
        for name in ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                     "attn.proj.bias", "norm2.weight", "norm2.bias") + fc1 + ("mlp.fc2.weight", "mlp.fc2.bias"):
            out.append(entry(b + name, (3 * C,) if name == "attn.qkv.bias" else None))
        out += present(b + k for k in ("ls1.gamma", "ls2.gamma", "attn.q_norm.weight", "attn.q_norm.bias",
                                       "attn.k_norm.weight", "attn.k_norm.bias", "attn.norm.weight",
                                       "attn.norm.bias", "mlp.norm.weight", "mlp.norm.bias"))
    final = "fc_norm" if config.fc_norm else "norm"
    tail = [f"{final}.weight", f"{final}.bias"] if config.final_norm else []
    tail += [k for k in full if k.startswith("attn_pool.")]
    tail += ["head.weight", "head.bias", "head_dist.weight", "head_dist.bias", "aux_head.weight", "aux_head.bias"]
    out += present(tail + stem_keys(config))
    return out


def offsets(config: ViTConfig) -> dict:
    """key -> (offset, shape) of each ``weight_shapes()`` tensor in the model's flat array."""
    out, offset = {}, 0
    for key, shape in _packing(config):
        if key is not None:
            out[key] = (offset, shape)
        offset += int(np.prod(shape))
    return out


def pack(config: ViTConfig, arrays: dict) -> np.ndarray:
    """The model's flat float32 array from ``weight_shapes()`` key -> array (shapes checked)."""
    parts = [np.zeros(int(np.prod(shape)), np.float32) if key is None else
             np.asarray(arrays[key]).astype(np.float32, copy=False).ravel() for key, shape in _packing(config)]
    return np.concatenate(parts)


def engine_floats(config: ViTConfig) -> int:
    """Length of the part of the flat array that the C engine reads (all but the raw stem)."""
    return int(sum(int(np.prod(shape)) for key, shape in _packing(config) if key not in set(stem_keys(config))))


def folded_stem(config: ViTConfig, params: np.ndarray):
    """The stem array of ``pivot._core.vit_forward`` (folded weight and bias per conv, see
    :func:`fold_batchnorm`), or None without the conv stem."""
    if config.stem != "lvvit_conv":
        return None
    where = offsets(config)

    def get(key):
        offset, shape = where[key]
        return params[offset:offset + int(np.prod(shape))].reshape(shape)

    parts = []
    for i in (1, 2, 3):
        w, b = fold_batchnorm(get(f"patch_embed.conv{i}.weight"), *(get(f"patch_embed.bn{i}.{name}") for name in
                                                                   ("weight", "bias", "running_mean", "running_var")))
        parts += [w.ravel(), b]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def stem_macs(config: ViTConfig) -> int:
    """Multiply-accumulates of the conv stem for one image (0 without it)."""
    if config.stem != "lvvit_conv":
        return 0
    half, S = config.img_size // 2, config.stem_channels
    return half * half * S * (config.in_chans * 7 * 7 + 2 * S * 3 * 3)


def stem_gemm_shapes(config: ViTConfig) -> list:
    """The stem's convolutions as im2col GEMMs for one image, ``[(M, N, K)]`` in the simulator's
    convention ``out (M, N) = A (M, K) @ B (K, N)``: M = output pixels, N = output channels,
    K = in_channels * kernel^2 (empty without the conv stem)."""
    if config.stem != "lvvit_conv":
        return []
    half, S = config.img_size // 2, config.stem_channels
    return [(half * half, S, config.in_chans * 7 * 7), (half * half, S, S * 3 * 3), (half * half, S, S * 3 * 3)]


def random_stem_weight(rng, key: str, shape):
    """LV-ViT's init of a stem tensor for ``pivot.ViT.random``: convolutions keep torch's default
    (kaiming uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))), since LV-ViT's
    ``_init_weights`` re-initializes only Linear and LayerNorm; BatchNorm starts as the identity
    (weight and running_var 1, bias and running_mean 0)."""
    if key.endswith(".weight") and len(shape) == 4:
        bound = 1.0 / np.sqrt(np.prod(shape[1:]))
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    if key.endswith(".weight") or key.endswith(".running_var"):
        return np.ones(shape, np.float32)
    return np.zeros(shape, np.float32)
