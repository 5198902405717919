"""A plain PyTorch twin of pivot's engine: timm's key names, attention-skip paths, eval only.

``VisionTransformer(config)`` is an ``nn.Module`` whose ``state_dict()`` has exactly timm's keys
(so timm checkpoints load with ``load_state_dict``), and whose ``forward(images, path=None)``
skips the attention of encoders where path is 0 (``x + mlp(norm2(x))``). It is the PyTorch peer
of the benchmarks and a cross-check in the tests. Importing this module imports torch; importing
``pivot`` does not.

    module = pivot.torch.from_vit(model)        # pivot.ViT -> nn.Module (weights copied)
    model = pivot.torch.to_vit(module)          # nn.Module -> pivot.ViT
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .config import ViTConfig, normalize_path

__all__ = ["VisionTransformer", "from_vit", "to_vit"]


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = nn.functional.scaled_dot_product_attention(q, k, v)  # default scale head_dim^-0.5, as timm
        return self.proj(x.transpose(1, 2).reshape(B, T, C))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact erf form
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        C = config.embed_dim
        self.norm1 = nn.LayerNorm(C, eps=config.norm_eps)
        self.attn = Attention(C, config.num_heads)
        self.norm2 = nn.LayerNorm(C, eps=config.norm_eps)
        self.mlp = Mlp(C, config.mlp_hidden)

    def forward(self, x, attn_active: bool = True):
        if attn_active:
            x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_chans, config.embed_dim, config.patch_size, stride=config.patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """timm's ``VisionTransformer`` / ``VisionTransformerDistilled`` forward, with a ``path``."""

    def __init__(self, config: ViTConfig, path=None):
        super().__init__()
        if not isinstance(config, ViTConfig):
            raise TypeError(f"config must be a pivot.ViTConfig, got {type(config).__name__}")
        self.config = config
        self.path = normalize_path(path, config.depth)
        C = config.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, C)) if config.distilled else None
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, C))
        self.patch_embed = PatchEmbed(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(C, eps=config.norm_eps)
        self.head = nn.Linear(C, config.num_classes)
        self.head_dist = nn.Linear(C, config.num_classes) if config.distilled else None
        self.eval()

    def forward(self, images, path=None):
        """Logits (B, num_classes); ``path=None`` uses ``self.path``."""
        path = self.path if path is None else normalize_path(path, self.config.depth)
        x = self.patch_embed(images)
        B = x.shape[0]
        prefix = [self.cls_token.expand(B, -1, -1)]
        if self.dist_token is not None:
            prefix.append(self.dist_token.expand(B, -1, -1))
        x = torch.cat(prefix + [x], dim=1) + self.pos_embed
        for block, active in zip(self.blocks, path):
            x = block(x, bool(active))
        x = self.norm(x)
        logits = self.head(x[:, 0])
        if self.head_dist is not None:
            logits = (logits + self.head_dist(x[:, 1])) / 2
        return logits


def from_vit(model) -> VisionTransformer:
    """A ``VisionTransformer`` with a copy of a ``pivot.ViT``'s weights and path, in eval mode."""
    module = VisionTransformer(model.config, path=model.path)
    state = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    module.load_state_dict(state, strict=True)
    return module


def to_vit(module: VisionTransformer, path=None):
    """A ``pivot.ViT`` with a copy of the module's weights (path: the module's unless given)."""
    from .model import ViT

    weights = {k: v.detach().cpu().to(torch.float32).numpy() for k, v in module.state_dict().items()}
    return ViT(module.config, weights, path=module.path if path is None else path)
