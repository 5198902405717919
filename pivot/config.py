"""ViT configurations: the shape of a model, independent of its weights."""
from __future__ import annotations

import dataclasses
from collections import OrderedDict

import numpy as np

__all__ = ["ViTConfig", "normalize_path"]


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """Shape of a timm-style ``VisionTransformer`` (DeiT family).

    Tokens are ``[cls] [dist] patches`` (the distillation token only when ``distilled``); the
    position embedding covers all of them. ``mlp_hidden = int(embed_dim * mlp_ratio)`` as in timm.
    """
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    distilled: bool = False
    norm_eps: float = 1e-6

    def __post_init__(self):
        for field in ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"ViTConfig.{field} must be a positive integer, got {value!r}")
        if self.img_size % self.patch_size:
            raise ValueError(f"ViTConfig.img_size ({self.img_size}) must be a multiple of patch_size ({self.patch_size})")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"ViTConfig.embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})")
        if not (self.mlp_ratio > 0) or self.mlp_hidden < 1:
            raise ValueError(f"ViTConfig.mlp_ratio must give a positive hidden size, got {self.mlp_ratio!r}")
        if not (self.norm_eps > 0):
            raise ValueError(f"ViTConfig.norm_eps must be positive, got {self.norm_eps!r}")

    # -- derived sizes
    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size ** 2

    @property
    def num_prefix_tokens(self) -> int:
        return 2 if self.distilled else 1

    @property
    def num_tokens(self) -> int:
        """T: patches plus the class (and distillation) token."""
        return self.num_patches + self.num_prefix_tokens

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def replace(self, **changes) -> "ViTConfig":
        return dataclasses.replace(self, **changes)

    def weight_shapes(self) -> "OrderedDict[str, tuple[int, ...]]":
        """timm's state-dict key names and shapes for this config, in timm's order."""
        C, H, K = self.embed_dim, self.mlp_hidden, self.num_classes
        s: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        s["cls_token"] = (1, 1, C)
        if self.distilled:
            s["dist_token"] = (1, 1, C)
        s["pos_embed"] = (1, self.num_tokens, C)
        s["patch_embed.proj.weight"] = (C, self.in_chans, self.patch_size, self.patch_size)
        s["patch_embed.proj.bias"] = (C,)
        for i in range(self.depth):
            b = f"blocks.{i}."
            s[b + "norm1.weight"] = (C,)
            s[b + "norm1.bias"] = (C,)
            s[b + "attn.qkv.weight"] = (3 * C, C)
            s[b + "attn.qkv.bias"] = (3 * C,)
            s[b + "attn.proj.weight"] = (C, C)
            s[b + "attn.proj.bias"] = (C,)
            s[b + "norm2.weight"] = (C,)
            s[b + "norm2.bias"] = (C,)
            s[b + "mlp.fc1.weight"] = (H, C)
            s[b + "mlp.fc1.bias"] = (H,)
            s[b + "mlp.fc2.weight"] = (C, H)
            s[b + "mlp.fc2.bias"] = (C,)
        s["norm.weight"] = (C,)
        s["norm.bias"] = (C,)
        s["head.weight"] = (K, C)
        s["head.bias"] = (K,)
        if self.distilled:
            s["head_dist.weight"] = (K, C)
            s["head_dist.bias"] = (K,)
        return s

    # -- presets
    @classmethod
    def preset(cls, name: str) -> "ViTConfig":
        """Config of a timm model by name, e.g. ``ViTConfig.preset("deit_small_patch16_224")``."""
        try:
            return _PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(_PRESETS))}") from None

    @staticmethod
    def presets() -> list[str]:
        return sorted(_PRESETS)


_PRESETS: dict[str, ViTConfig] = {}
for _size, (_dim, _heads) in {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}.items():
    _PRESETS[f"deit_{_size}_patch16_224"] = ViTConfig(embed_dim=_dim, num_heads=_heads)
    _PRESETS[f"deit_{_size}_distilled_patch16_224"] = ViTConfig(embed_dim=_dim, num_heads=_heads, distilled=True)
    _PRESETS[f"vit_{_size}_patch16_224"] = ViTConfig(embed_dim=_dim, num_heads=_heads)


def normalize_path(path, depth: int) -> np.ndarray:
    """A path as a C-contiguous uint8 array of length ``depth`` with values in {0, 1}.

    ``None`` means every encoder active. 1 = the encoder's attention runs, 0 = skipped
    (the encoder computes ``x + mlp(norm2(x))`` only).
    """
    if path is None:
        return np.ones(depth, dtype=np.uint8)
    arr = np.asarray(path)
    if arr.ndim != 1:
        raise ValueError(f"path must be a 1-D sequence of 0/1 values, got shape {arr.shape}")
    if arr.shape[0] != depth:
        raise ValueError(f"path has {arr.shape[0]} entries but the model has {depth} encoders")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise ValueError(f"path values must be 0 or 1, got dtype {arr.dtype}")
    bad = sorted(set(np.unique(arr).tolist()) - {0, 1})
    if bad:
        raise ValueError(f"path values must be 0 or 1, got {bad}")
    return np.ascontiguousarray(arr, dtype=np.uint8)
