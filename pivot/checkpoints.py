"""Which model a checkpoint is: key mapping and config inference for timm and Hugging Face
``transformers`` ViTs.

* :func:`infer_config`: the :class:`~pivot.ViTConfig` of a timm ``VisionTransformer`` (or
  LV-ViT) state dict from its key names and shapes; what the shapes do not record (head count,
  pooling, activation) comes from metadata, the caller, or a clear error.
* :func:`config_from_timm_module`: the config of a live timm model, read from its modules'
  attributes; a model with a feature pivot does not run is refused naming the feature.
* :func:`transformers_to_timm`: a ``transformers`` ViT / DeiT state dict and ``config.json`` as a
  pivot config and timm-keyed state dict (``load_transformers`` takes the model object or a
  ``save_pretrained`` directory, read with pivot's own safetensors reader).

File formats (safetensors, npz, pth) are :mod:`pivot.io`'s job.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping

import numpy as np

from .config import ACTIVATIONS, LVVIT_VARIANTS, MAX_DEPTH, ViTConfig
from .io import WeightsFileError

__all__ = ["infer_config", "heads_that_fit", "config_from_timm_module", "timm_state_dict", "load_timm",
           "transformers_to_timm", "load_transformers", "UnsupportedModelError"]


class UnsupportedModelError(ValueError):
    """A model uses a feature pivot's engine does not run (named in the message)."""


def heads_that_fit(embed_dim: int) -> list[int]:
    """Head counts that divide ``embed_dim`` with a head size of at least 8 (the choices a caller picks from)."""
    return [h for h in range(1, embed_dim + 1) if embed_dim % h == 0 and embed_dim // h >= 8]


def _need_num_heads(embed_dim: int, where: str = "the state dict") -> None:
    choices = heads_that_fit(embed_dim)
    raise ValueError(f"{where} does not record the number of attention heads, and a wrong guess loads silently "
                     f"wrong: pass num_heads= (for embed_dim {embed_dim} one of {choices}; timm's ViT-S uses 6, "
                     f"ViT-B 12, ViT-L 16), or load a file written by pivot.ViT.save, which records it")
# ---------------------------------------------------------------------------------------------
# timm state dicts

_BLOCK_KEY = re.compile(r"blocks\.([0-9]+)\.")
_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(ViTConfig))

# The LV-ViT variants (pivot.config.LVVIT_VARIANTS) by (embed_dim, depth): skip_lam and num_heads,
# which the weights do not record. lvvit_t is registered but has no released checkpoint.
_LVVIT_VARIANTS = {(dim, depth): (lam, heads) for dim, depth, heads, lam, _ in LVVIT_VARIANTS.values()}


def _shape(state_dict: Mapping, key: str, why: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise ValueError(f"cannot infer the ViT config: key {key!r} is missing ({why})")
    shape = getattr(state_dict[key], "shape", None)
    if shape is None:
        raise TypeError(f"state_dict[{key!r}] is a {type(state_dict[key]).__name__}, not an array")
    return tuple(int(d) for d in shape)


def infer_config(state_dict: Mapping, num_heads: int | None = None, **overrides) -> ViTConfig:
    """The :class:`~pivot.ViTConfig` of a timm ``VisionTransformer`` or LV-ViT state dict, from its
    key names and tensor shapes.

    depth from the ``blocks.N.`` indices, embed dim, patch size and channels from
    ``patch_embed.proj.weight``, distilled from ``dist_token``, image size from ``pos_embed``,
    classes from ``head.weight``, mlp ratio from ``blocks.0.mlp.fc1.weight``, qkv_bias from
    ``blocks.0.attn.qkv.bias``; the register tokens, layer scale, ``qk_norm``, ``norm_pre``,
    ``fc_norm``, attention pooling (``attn_pool.*``), patch bias and a missing head (headless) from
    their keys; ``no_embed_class`` from the length of ``pos_embed``. The head count is not in the
    shapes: pass ``num_heads`` (an error lists the choices otherwise; LV-ViT's official variants
    are known). Neither are the pooling and the activation: ``global_pool`` defaults to timm's
    choice for the keys (``"map"`` with ``attn_pool``, ``"avg"`` with ``fc_norm`` or without a
    class token, else ``"token"``) and ``act`` to ``"gelu"``; pass them as overrides when the model
    differs (or load the live module with ``config_from_timm_module``). ``overrides`` (any
    ViTConfig field, e.g. ``norm_eps=1e-5``) are applied last.

    LV-ViT (TokenLabeling checkpoints) is recognized by ``patch_embed.conv1.weight`` (its conv stem:
    stem_channels and in_chans from it, patch_size = 2 x proj's kernel) or ``aux_head.weight``;
    it gets LayerNorm eps 1e-5 (``nn.LayerNorm``'s default, which LV-ViT keeps). ``skip_lam`` is
    not in the weights either: it and the default head count come from the official variant of the
    same embed dim and depth (LV-ViT-T/S/M/L: skip_lam 1/2/2/3, 4/6/8/12 heads); any other LV-ViT
    needs ``skip_lam=`` passed.
    """
    unknown = sorted(set(overrides) - set(_CONFIG_FIELDS))
    if unknown:
        raise TypeError(f"unknown ViTConfig override(s) {', '.join(unknown)}; valid: {', '.join(f for f in _CONFIG_FIELDS if f != 'num_heads')}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}")

    # Block indices are sizes read from names: bounded before a range over them is built.
    digits = {m.group(1) for key in state_dict if isinstance(key, str) and (m := _BLOCK_KEY.match(key))}
    if not digits:
        raise ValueError("cannot infer the ViT config: no 'blocks.N.' keys (not a timm VisionTransformer state dict?)")
    significant = {d: d.lstrip("0") or "0" for d in digits}
    too_deep = [d for d, v in significant.items() if len(v) > len(str(MAX_DEPTH)) or int(v) >= MAX_DEPTH]
    if too_deep:
        shown = min(too_deep, key=len)
        raise WeightsFileError(f"cannot infer the ViT config: block index {shown[:20]}{'...' if len(shown) > 20 else ''} "
                               f"is beyond the {MAX_DEPTH} encoders pivot supports")
    indices = {int(v) for v in significant.values()}
    depth = max(indices) + 1
    if indices != set(range(depth)):
        missing = sorted(set(range(depth)) - indices)
        raise ValueError(f"cannot infer the ViT config: block indices are not contiguous from 0 (missing blocks {missing})")

    proj = _shape(state_dict, "patch_embed.proj.weight", "it gives embed dim, channels and patch size")
    if len(proj) != 4:
        raise ValueError(f"patch_embed.proj.weight must be 4-D (embed_dim, in_chans, patch, patch), got shape {proj}")
    embed_dim, in_chans, patch_h, patch_w = proj
    if patch_h != patch_w:
        raise ValueError(f"only square patches are supported; patch_embed.proj.weight has a {patch_h}x{patch_w} kernel")
    lvvit = {}
    if "patch_embed.conv1.weight" in state_dict:  # LV-ViT's PatchEmbed4_2 stem
        conv1 = _shape(state_dict, "patch_embed.conv1.weight", "")
        if len(conv1) != 4 or conv1[2:] != (7, 7):
            raise ValueError(f"patch_embed.conv1.weight has shape {conv1}, expected (stem_channels, in_chans, 7, 7) "
                             f"of LV-ViT's convolutional patch embedding")
        if in_chans != conv1[0]:
            raise ValueError(f"patch_embed.proj.weight reads {in_chans} channels but patch_embed.conv1 makes {conv1[0]}")
        lvvit = dict(stem="lvvit_conv", stem_channels=conv1[0])
        in_chans, patch_h = conv1[1], 2 * patch_h
    if "aux_head.weight" in state_dict:
        lvvit["aux_head"] = True
    class_token = "cls_token" in state_dict
    if class_token:
        cls = _shape(state_dict, "cls_token", "")
        if cls != (1, 1, embed_dim):
            raise ValueError(f"cls_token has shape {cls}, expected (1, 1, {embed_dim}) from patch_embed.proj.weight")
    distilled = "dist_token" in state_dict
    reg_tokens = 0
    if "reg_token" in state_dict:
        reg = _shape(state_dict, "reg_token", "")
        if len(reg) != 3 or reg[0] != 1 or reg[2] != embed_dim:
            raise ValueError(f"reg_token has shape {reg}, expected (1, registers, {embed_dim})")
        reg_tokens = reg[1]

    pos = _shape(state_dict, "pos_embed", "it gives the image size")
    if len(pos) != 3 or pos[0] != 1 or pos[2] != embed_dim:
        raise ValueError(f"pos_embed has shape {pos}, expected (1, tokens, {embed_dim})")
    prefix = int(class_token) + int(distilled) + reg_tokens
    patches = pos[1] - prefix
    grid = math.isqrt(max(patches, 0))
    no_embed_class = False
    if patches < 1 or grid * grid != patches:
        if prefix and math.isqrt(pos[1]) ** 2 == pos[1]:  # timm's no_embed_class (DeiT III, DINOv2 with registers)
            no_embed_class, grid = True, math.isqrt(pos[1])
        else:
            raise ValueError(f"pos_embed has {pos[1]} tokens; with or without the {prefix} prefix token(s) that is "
                             f"not a square grid of patches")

    num_classes = 0
    if "head.weight" in state_dict:
        head = _shape(state_dict, "head.weight", "")
        if len(head) != 2 or head[1] != embed_dim:
            raise ValueError(f"head.weight has shape {head}, expected (num_classes, {embed_dim})")
        num_classes = head[0]

    swiglu = "blocks.0.mlp.fc1_g.weight" in state_dict
    fc1_key = "blocks.0.mlp.fc1_g.weight" if swiglu else "blocks.0.mlp.fc1.weight"
    fc1 = _shape(state_dict, fc1_key, "it gives the MLP ratio")
    if len(fc1) != 2 or fc1[1] != embed_dim or fc1[0] < 1:
        raise ValueError(f"{fc1_key} has shape {fc1}, expected (hidden, {embed_dim})")
    mlp_ratio = fc1[0] / embed_dim
    # ViTConfig.mlp_hidden is int(embed_dim * mlp_ratio); step past rounding that would lose one.
    while int(embed_dim * mlp_ratio) < fc1[0]:
        mlp_ratio = math.nextafter(mlp_ratio, math.inf)

    qkv = _shape(state_dict, "blocks.0.attn.qkv.weight", "it gives the attention's shape")
    if qkv != (3 * embed_dim, embed_dim):
        raise ValueError(f"blocks.0.attn.qkv.weight has shape {qkv}, expected ({3 * embed_dim}, {embed_dim})")
    fields = dict(img_size=grid * patch_h, patch_size=patch_h, in_chans=in_chans, num_classes=num_classes,
                  embed_dim=embed_dim, depth=depth, mlp_ratio=mlp_ratio, distilled=distilled)
    if "blocks.0.attn.qkv.bias" not in state_dict:
        fields["qkv_bias"] = False
    fields.update(class_token=class_token, reg_tokens=reg_tokens, no_embed_class=no_embed_class,
                  patch_bias="patch_embed.proj.bias" in state_dict, norm_pre="norm_pre.weight" in state_dict,
                  layer_scale="blocks.0.ls1.gamma" in state_dict, qk_norm="blocks.0.attn.q_norm.weight" in state_dict,
                  fc_norm="fc_norm.weight" in state_dict,
                  final_norm="norm.weight" in state_dict or "fc_norm.weight" in state_dict,
                  scale_attn_norm="blocks.0.attn.norm.weight" in state_dict,
                  scale_mlp_norm="blocks.0.mlp.norm.weight" in state_dict,
                  norm_layer="layernorm" if "blocks.0.norm1.bias" in state_dict else "rmsnorm",
                  proj_bias="blocks.0.attn.proj.bias" in state_dict, patch_norm="patch_embed.norm.weight" in state_dict)
    if swiglu:  # timm's SwiGLU gates with SiLU unless act= says otherwise
        fields.update(mlp_layer="swiglu", act="silu")
    fields["global_pool"] = ("map" if "attn_pool.latent" in state_dict else
                             "avg" if fields["fc_norm"] or not (class_token or reg_tokens) else "token")
    if lvvit:
        fields.update(lvvit, norm_eps=1e-5)
        variant = _LVVIT_VARIANTS.get((embed_dim, depth))
        if variant is not None:
            fields["skip_lam"] = variant[0]
            if num_heads is None and "embed_dim" not in overrides:
                num_heads = variant[1]
        elif "skip_lam" not in overrides:
            raise ValueError(f"cannot infer skip_lam of this LV-ViT (embed_dim {embed_dim}, depth {depth} is none of "
                             f"LV-ViT-T/S/M/L, and the weights do not record it); pass skip_lam= (and num_heads=)")
    fields.update(overrides)
    if num_heads is None:
        _need_num_heads(fields["embed_dim"])
    return ViTConfig(num_heads=num_heads, **fields)


# ---------------------------------------------------------------------------------------------
# live timm models

def _cls(obj) -> str:
    return type(obj).__name__


def _layernorm_eps(norm, what: str):
    """eps of a timm/torch LayerNorm with weight and bias or a timm RmsNorm with weight, None for
    Identity; anything else is refused (config_from_timm_module refuses a mix of the two)."""
    if _cls(norm) == "Identity":
        return None
    if _cls(norm) == "RmsNorm" and getattr(norm, "weight", None) is not None:
        return float(norm.eps)
    if _cls(norm) != "LayerNorm" or getattr(norm, "weight", None) is None or getattr(norm, "bias", None) is None:
        raise UnsupportedModelError(f"{what} is a {_cls(norm)}; pivot runs LayerNorm with weight and bias "
                                    f"or RmsNorm with weight there")
    return float(norm.eps)


def _activation(act, what: str) -> str:
    name = _cls(act)
    if name == "GELU":
        return {"none": "gelu", "tanh": "gelu_tanh"}[getattr(act, "approximate", "none")]
    if name == "GELUTanh":
        return "gelu_tanh"
    if name == "QuickGELU":
        return "quick_gelu"
    if name == "SiLU":
        return "silu"
    raise UnsupportedModelError(f"{what} activation {name}; pivot runs {', '.join(ACTIVATIONS)}")


def _square(value, what: str) -> int:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or pair[0] != pair[1]:
        raise UnsupportedModelError(f"non-square {what} {pair}")
    return int(pair[0])


def config_from_timm_module(module) -> ViTConfig:
    """The :class:`~pivot.ViTConfig` of a live timm ``VisionTransformer`` (or DeiT's distilled
    variant), read from its modules' attributes (nothing guessed). A model with a feature pivot's
    engine does not run (hybrid conv stems, rotary embeddings, other block or attention classes,
    dynamic image size, ...) raises :class:`UnsupportedModelError` naming the feature."""
    name = _cls(module)
    if name not in ("VisionTransformer", "VisionTransformerDistilled"):
        raise UnsupportedModelError(f"model class {name}: pivot loads timm's VisionTransformer family")
    pe = module.patch_embed
    if _cls(pe) != "PatchEmbed":
        raise UnsupportedModelError(f"patch embedding {_cls(pe)} (hybrid conv stem): pivot runs timm's PatchEmbed")
    # dynamic_img_size: timm keeps the (B, H, W, C) grid and resamples pos_embed to the input's grid,
    # an identity at the model's own image size, the only size pivot runs
    dynamic = bool(getattr(module, "dynamic_img_size", False))
    flat = getattr(pe, "flatten", True) or (dynamic and str(getattr(pe, "output_fmt", "")).endswith("NHWC"))
    if _cls(pe.proj) != "Conv2d" or not flat:
        raise UnsupportedModelError("patch embedding with a non-Conv2d projection or another output layout")
    patch_norm = _layernorm_eps(getattr(pe, "norm", None) or _Identity(), "patch_embed.norm")
    if getattr(module, "rope", None) is not None:
        raise UnsupportedModelError("rotary position embeddings (rope)")
    if module.pos_embed is None:
        raise UnsupportedModelError("no position embedding (pos_embed=None)")
    if module.pos_embed.dim() != 3:
        raise UnsupportedModelError("position embedding of another shape")
    img = _square(pe.img_size, "image size")
    patch = _square(pe.patch_size, "patch size")
    # img % patch != 0: the stride-patch conv floors the grid, as pivot's patch embedding does
    if img % patch and getattr(pe, "dynamic_img_pad", False):
        raise UnsupportedModelError(f"dynamic_img_pad (image size {img} padded to a multiple of the patch size {patch})")
    grid = _square(getattr(pe, "grid_size", (img // patch, img // patch)), "patch grid")
    if grid != img // patch or module.pos_embed.shape[1] != grid * grid + (
            0 if getattr(module, "no_embed_class", False) else int(module.num_prefix_tokens)):
        raise UnsupportedModelError(f"patch grid {grid} of a {img} px image in {patch} px patches")
    if pe.proj.stride != pe.proj.kernel_size or pe.proj.padding not in ((0, 0), 0, "valid"):
        raise UnsupportedModelError("patch embedding with overlapping patches or padding")
    C = int(module.embed_dim)
    blocks = list(module.blocks)
    eps, acts, hidden = set(), set(), set()
    if patch_norm is not None:
        eps.add(patch_norm)
    layer_scale = qk_norm = qkv_bias = None
    for i, blk in enumerate(blocks):
        where = f"blocks.{i}"
        if _cls(blk) != "Block":
            raise UnsupportedModelError(f"{where} is a {_cls(blk)}; pivot runs timm's Block")
        attn, mlp = blk.attn, blk.mlp
        if _cls(attn) != "Attention":
            raise UnsupportedModelError(f"{where}.attn is a {_cls(attn)}; pivot runs timm's Attention")
        if _cls(mlp) not in ("Mlp", "SwiGLU"):
            raise UnsupportedModelError(f"{where}.mlp is a {_cls(mlp)}; pivot runs timm's Mlp and SwiGLU")
        swiglu = _cls(mlp) == "SwiGLU"
        fc1s = (mlp.fc1_g, mlp.fc1_x) if swiglu else (mlp.fc1,)
        if swiglu and mlp.fc1_x.weight.shape != mlp.fc1_g.weight.shape:
            raise UnsupportedModelError(f"{where}.mlp: SwiGLU with fc1_g and fc1_x of different shapes")
        an = _layernorm_eps(getattr(attn, "norm", None) or _Identity(), f"{where}.attn.norm (scale_attn_norm)")
        mn = _layernorm_eps(getattr(mlp, "norm", None) or _Identity(), f"{where}.mlp.norm (scale_mlp_norm)")
        eps.update(e for e in (an, mn) if e is not None)
        biases = {layer.bias is not None for layer in (attn.proj, *fc1s, mlp.fc2)}
        if len(biases) != 1:
            raise UnsupportedModelError(f"{where}: attention proj and MLP linears not all with or all without bias")
        for n in ("norm1", "norm2"):
            e = _layernorm_eps(getattr(blk, n), f"{where}.{n}")
            if e is None:
                raise UnsupportedModelError(f"{where}.{n} is Identity")
            eps.add(e)
        qn = [_layernorm_eps(getattr(attn, n), f"{where}.attn.{n}") for n in ("q_norm", "k_norm")]
        eps.update(e for e in qn if e is not None)
        flags = (_cls(blk.ls1) == "LayerScale", qn[0] is not None, attn.qkv.bias is not None, an is not None,
                 mn is not None, swiglu, biases == {True})
        for n in ("ls1", "ls2"):
            if _cls(getattr(blk, n)) not in ("LayerScale", "Identity"):
                raise UnsupportedModelError(f"{where}.{n} is a {_cls(getattr(blk, n))}")
        if (_cls(blk.ls2) == "LayerScale") != flags[0] or (qn[1] is None) != (qn[0] is None):
            raise UnsupportedModelError(f"{where}: layer scale or qk_norm on one branch only")
        if layer_scale is None:
            layer_scale, qk_norm, qkv_bias, attn_norm, mlp_norm, mlp_swiglu, proj_bias = flags
        elif (layer_scale, qk_norm, qkv_bias, attn_norm, mlp_norm, mlp_swiglu, proj_bias) != flags:
            raise UnsupportedModelError("blocks that differ in layer scale, qk_norm, qkv bias, scale norms, MLP "
                                        "class or biases")
        if int(attn.num_heads) != int(blocks[0].attn.num_heads) or abs(float(attn.scale) - attn.head_dim ** -0.5) > 1e-12:
            raise UnsupportedModelError(f"{where}: attention with another head count or scale")
        acts.add(_activation(mlp.act, f"{where}.mlp"))
        hidden.add(int(fc1s[0].out_features))
    if len(acts) != 1 or len(hidden) != 1:
        raise UnsupportedModelError("blocks that differ in MLP activation or width")
    fc_norm = _layernorm_eps(module.fc_norm, "fc_norm")
    norm = _layernorm_eps(module.norm, "norm")
    norm_pre = _layernorm_eps(module.norm_pre, "norm_pre")
    if fc_norm is not None and norm is not None:
        raise UnsupportedModelError("final norm: pivot runs at most one of norm (before pooling) and fc_norm (after)")
    eps.update(e for e in (fc_norm, norm, norm_pre) if e is not None)
    pool = module.global_pool
    if pool not in ("token", "avg", "max", "avgmax", "map"):
        raise UnsupportedModelError(f"global_pool {pool!r}")
    attn_pool = getattr(module, "attn_pool", None)
    if pool == "map" and mlp_swiglu:
        raise UnsupportedModelError("SwiGLU blocks with an attention-pooling head (map)")
    if pool == "map":
        ap = attn_pool
        if (_cls(ap) != "AttentionPoolLatent" or ap.latent_len != 1 or ap.pos_embed is not None or
                ap.pool != "token" or _cls(ap.q_norm) != "Identity" or ap.num_heads != blocks[0].attn.num_heads or
                ap.mlp.fc1.out_features != next(iter(hidden)) or _activation(ap.mlp.act, "attn_pool.mlp") != next(iter(acts))):
            raise UnsupportedModelError("an attention-pooling head (map) other than timm's default AttentionPoolLatent")
        eps.add(_layernorm_eps(ap.norm, "attn_pool.norm"))
    if len(eps) != 1:
        raise UnsupportedModelError(f"LayerNorms with different eps {sorted(eps)}")
    kinds = {_cls(m) for m in module.modules() if _cls(m) in ("LayerNorm", "RmsNorm")}
    if len(kinds) > 1:
        raise UnsupportedModelError("LayerNorm and RmsNorm mixed in one model")
    head = module.head
    if _cls(head) not in ("Linear", "Identity"):
        raise UnsupportedModelError(f"head {_cls(head)}")
    distilled = name == "VisionTransformerDistilled"
    if distilled and getattr(module, "distilled_training", False):
        raise UnsupportedModelError("distilled_training mode (returns two outputs)")
    mean = std = None
    pcfg = getattr(module, "pretrained_cfg", None) or {}
    if pcfg.get("mean") is not None and len(pcfg["mean"]) == pe.proj.in_channels:
        mean, std = tuple(float(v) for v in pcfg["mean"]), tuple(float(v) for v in pcfg["std"])
    num_classes = int(head.out_features) if _cls(head) == "Linear" else 0
    mlp_ratio = next(iter(hidden)) / C
    while int(C * mlp_ratio) < next(iter(hidden)):
        mlp_ratio = math.nextafter(mlp_ratio, math.inf)
    return ViTConfig(img_size=img, patch_size=patch, in_chans=int(pe.proj.in_channels), num_classes=num_classes,
                     embed_dim=C, depth=len(blocks), num_heads=int(blocks[0].attn.num_heads), mlp_ratio=mlp_ratio,
                     distilled=distilled, norm_eps=next(iter(eps)), qkv_bias=bool(qkv_bias),
                     input_mean=mean, input_std=std, class_token=bool(module.has_class_token),
                     reg_tokens=int(module.num_reg_tokens), no_embed_class=bool(module.no_embed_class),
                     global_pool=pool, fc_norm=fc_norm is not None, norm_pre=norm_pre is not None,
                     layer_scale=bool(layer_scale), act=next(iter(acts)), patch_bias=pe.proj.bias is not None,
                     qk_norm=bool(qk_norm), final_norm=fc_norm is not None or norm is not None,
                     pool_include_prefix=bool(getattr(module, "pool_include_prefix", False)) and pool != "token",
                     scale_attn_norm=bool(attn_norm), scale_mlp_norm=bool(mlp_norm),
                     norm_layer="rmsnorm" if kinds == {"RmsNorm"} else "layernorm",
                     mlp_layer="swiglu" if mlp_swiglu else "mlp", proj_bias=bool(proj_bias),
                     patch_norm=patch_norm is not None)


class _Identity:
    pass


_Identity.__name__ = "Identity"


def timm_state_dict(module) -> dict:
    """A torch module's state dict as float32 NumPy arrays (detached copies)."""
    return {k: v.detach().cpu().float().numpy().copy() for k, v in module.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def _is_torch_module(obj) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__)


def load_timm(source, num_heads=None, **overrides):
    """``(config, state_dict, metadata)`` of a timm model: a live module (config read from it), a
    file or a dict (config from pivot metadata, a ``pretrained_cfg`` / ``config.json`` beside the
    file, or the key names and shapes; see :func:`infer_config`)."""
    from . import io as _io

    if _is_torch_module(source):
        config = config_from_timm_module(source)
        if num_heads is not None:
            overrides = dict(overrides, num_heads=num_heads)
        return (config.replace(**overrides) if overrides else config), timm_state_dict(source), {}
    state, metadata = _io.load_state_dict(source)
    metadata = metadata or {}
    if "pivot.config" in metadata:
        config = _io.config_from_metadata(metadata["pivot.config"], repr(source))
        if num_heads is not None:
            overrides = dict(overrides, num_heads=num_heads)
        return (config.replace(**overrides) if overrides else config), state, metadata
    if num_heads is None and isinstance(source, (str, os.PathLike)):
        num_heads = _heads_beside(os.fspath(source))
    return infer_config(state, num_heads=num_heads, **overrides), state, metadata


def _heads_beside(path: str):
    """num_heads from a ``config.json`` beside a weight file (timm's hub layout: ``architecture``
    plus ``model_args``, or a Hugging Face config's ``num_attention_heads``), or None."""
    cfg_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    if not os.path.isfile(cfg_path):
        return None
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    for holder in (cfg.get("model_args") or {}, cfg.get("pretrained_cfg") or {}, cfg):
        if isinstance(holder, dict):
            for key in ("num_heads", "num_attention_heads"):
                if isinstance(holder.get(key), int) and not isinstance(holder.get(key), bool):
                    return holder[key]
    return None


# ---------------------------------------------------------------------------------------------
# Hugging Face transformers ViT / DeiT

_HF4_NAMES = {"norm1": "layernorm_before", "q": "attention.attention.query", "k": "attention.attention.key",
              "v": "attention.attention.value", "proj": "attention.output.dense", "norm2": "layernorm_after",
              "fc1": "intermediate.dense", "fc2": "output.dense"}
_HF5_NAMES = {"norm1": "layernorm_before", "q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj",
              "proj": "attention.o_proj", "norm2": "layernorm_after", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
_HF_ACTS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "quick_gelu": "quick_gelu"}


def transformers_to_timm(hf_config: Mapping, state: Mapping):
    """``(config, timm state dict)`` of a ``transformers`` ``ViTForImageClassification`` /
    ``DeiTForImageClassification`` (or ``DeiTForImageClassificationWithTeacher``, headless
    ``ViTModel`` / ``DeiTModel`` without a pooler) from its ``config.json`` fields and its state dict.
    DeiT's distillation token without a distillation head is a prefix token that no head reads
    (a register, in timm's terms)."""
    cfg = dict(hf_config)
    model_type = cfg.get("model_type")
    if model_type not in ("vit", "deit"):
        raise UnsupportedModelError(f"transformers model_type {model_type!r}: pivot loads 'vit' and 'deit'")
    state = {k: np.asarray(v, np.float32) for k, v in state.items()}
    base = model_type + "."
    if not any(k.startswith(base) for k in state):
        base = ""
    if any(k.startswith(base + "pooler.") for k in state):
        raise UnsupportedModelError("the pooler of ViTModel/DeiTModel (add_pooling_layer=True)")
    act = _HF_ACTS.get(cfg.get("hidden_act", "gelu"))
    if act is None:
        raise UnsupportedModelError(f"hidden_act {cfg.get('hidden_act')!r}")
    C, D, NH = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"])
    e = base + "embeddings."
    out = {"cls_token": state[e + "cls_token"]}
    has_dist = e + "distillation_token" in state
    teacher = "distillation_classifier.weight" in state
    if has_dist and teacher:
        out["dist_token"] = state[e + "distillation_token"]
    elif has_dist:
        out["reg_token"] = state[e + "distillation_token"]
    out["pos_embed"] = state[e + "position_embeddings"]
    out["patch_embed.proj.weight"] = state[e + "patch_embeddings.projection.weight"]
    out["patch_embed.proj.bias"] = state[e + "patch_embeddings.projection.bias"]
    qkv_bias = bool(cfg.get("qkv_bias", True))
    # transformers 4 names a layer encoder.layer.i.{attention.attention.query, ...}; 5 names it
    # layers.i.{attention.q_proj, ...}
    v5 = any(k.startswith(base + "layers.") for k in state)
    names = (_HF5_NAMES if v5 else _HF4_NAMES)
    for i in range(D):
        h, b = f"{base}layers.{i}." if v5 else f"{base}encoder.layer.{i}.", f"blocks.{i}."

        def get(part, leaf):
            key = h + names[part] + "." + leaf
            if key not in state:
                raise WeightsFileError(f"transformers {model_type} state dict: key {key!r} is missing")
            return state[key]

        out[b + "norm1.weight"], out[b + "norm1.bias"] = get("norm1", "weight"), get("norm1", "bias")
        out[b + "attn.qkv.weight"] = np.concatenate([get(n, "weight") for n in ("q", "k", "v")])
        if qkv_bias:
            out[b + "attn.qkv.bias"] = np.concatenate([get(n, "bias") for n in ("q", "k", "v")])
        for part, timm_name in (("proj", "attn.proj"), ("norm2", "norm2"), ("fc1", "mlp.fc1"), ("fc2", "mlp.fc2")):
            out[b + timm_name + ".weight"], out[b + timm_name + ".bias"] = get(part, "weight"), get(part, "bias")
    out["norm.weight"] = state[base + "layernorm.weight"]
    out["norm.bias"] = state[base + "layernorm.bias"]
    num_classes = 0
    if teacher:
        out["head.weight"], out["head.bias"] = state["cls_classifier.weight"], state["cls_classifier.bias"]
        out["head_dist.weight"] = state["distillation_classifier.weight"]
        out["head_dist.bias"] = state["distillation_classifier.bias"]
        num_classes = out["head.weight"].shape[0]
    elif "classifier.weight" in state:
        out["head.weight"], out["head.bias"] = state["classifier.weight"], state["classifier.bias"]
        num_classes = out["head.weight"].shape[0]
    img = _square(cfg.get("image_size", 224), "image size")
    patch = _square(cfg.get("patch_size", 16), "patch size")
    H = int(cfg["intermediate_size"])
    mlp_ratio = H / C
    while int(C * mlp_ratio) < H:
        mlp_ratio = math.nextafter(mlp_ratio, math.inf)
    config = ViTConfig(img_size=img, patch_size=patch, in_chans=int(cfg.get("num_channels", 3)),
                       num_classes=num_classes, embed_dim=C, depth=D, num_heads=NH, mlp_ratio=mlp_ratio,
                       distilled=has_dist and teacher, norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
                       qkv_bias=qkv_bias, reg_tokens=int(has_dist and not teacher), act=act)
    return config, out


def load_transformers(source):
    """``(config, timm state dict)`` of a ``transformers`` ViT / DeiT model object or a directory
    written by its ``save_pretrained`` (``config.json`` + ``model.safetensors``, read with
    pivot's own reader: transformers is not needed)."""
    from . import io as _io

    if isinstance(source, (str, os.PathLike)):
        folder = os.fspath(source)
        cfg_path = os.path.join(folder, "config.json")
        weights = os.path.join(folder, "model.safetensors")
        if not os.path.isdir(folder) or not os.path.isfile(cfg_path) or not os.path.isfile(weights):
            raise ValueError(f"{folder!r} is not a save_pretrained directory (config.json and model.safetensors)")
        try:
            with open(cfg_path, encoding="utf-8") as f:
                hf_config = json.load(f)
        except ValueError as exc:
            raise WeightsFileError(f"{cfg_path}: not valid JSON ({exc})") from None
        if not isinstance(hf_config, dict):
            raise WeightsFileError(f"{cfg_path}: not a JSON object")
        state, _ = _io.load_state_dict(weights)
        return transformers_to_timm(hf_config, state)
    if not _is_torch_module(source) or not hasattr(source, "config"):
        raise TypeError(f"source must be a transformers model or a save_pretrained directory, got {_cls(source)}")
    return transformers_to_timm(source.config.to_dict(), timm_state_dict(source))
