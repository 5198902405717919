"""A plain PyTorch twin of pivot's engine: timm's key names, attention-skip paths, trainable
(``pivot.train`` fine-tunes it).

``VisionTransformer(config)`` is an ``nn.Module`` whose ``state_dict()`` has exactly timm's keys
(so timm checkpoints load with ``load_state_dict``), and whose ``forward(images, path=None)``
skips the attention of encoders where path is 0 (``x + mlp(norm2(x))``). It is the PyTorch peer
of the benchmarks and a cross-check in the tests. Importing this module imports torch; importing
``pivot`` does not.

LV-ViT configs (``ViTConfig.preset("lvvit_s")``) build the model of TokenLabeling's
``tlt/models/lvvit.py`` and ``models/layers.py``, re-written from that public definition: the
``PatchEmbed4_2`` stem (conv1/bn1/relu, conv2/bn2/relu, conv3/bn3/relu, proj; BatchNorm in eval
mode on its running statistics), blocks ``x + attn(norm1(x)) / skip_lam`` and
``x + mlp(norm2(x)) / skip_lam``, ``qkv`` without bias, and at eval the output
``head(x[:, 0]) + 0.5 * aux_head(x[:, 1:]).max(1)[0]``. Its ``state_dict()`` has the official
checkpoint's keys (``num_batches_tracked`` included, as any BatchNorm2d).

Paths may hold 2 (attention reuse) and configs ``attention="relu_linear"`` (see ``pivot.modes``);
``patch_timm_modes(module, path, attention)`` makes a timm-like ``VisionTransformer`` run them.

    module = pivot.torch.from_vit(model)        # pivot.ViT -> nn.Module (weights copied)
    model = pivot.torch.to_vit(module)          # nn.Module -> pivot.ViT
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .config import LINEAR_ATTENTION_EPS, ViTConfig, normalize_path

__all__ = ["VisionTransformer", "from_vit", "to_vit", "patch_timm_modes"]


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attention: str = "softmax",
                 qk_norm: bool = False, eps: float = 1e-6, scale_norm: bool = False, norm_layer=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        # timm's qk_norm: LayerNorm over head_dim of q and k
        make = norm_layer or (lambda n: nn.LayerNorm(n, eps=eps))
        self.q_norm = make(self.head_dim) if qk_norm else None
        self.k_norm = make(self.head_dim) if qk_norm else None
        self.norm = make(dim) if scale_norm else None  # timm's scale_attn_norm
        self.proj = nn.Linear(dim, dim)
        self.attention = attention  # "softmax" or "relu_linear"

    def forward(self, x, reuse_probs=None, return_probs: bool = False):
        """The branch output; with ``return_probs`` also the softmax probabilities (B, NH, T, T).
        ``reuse_probs`` (modes): apply these probabilities to this layer's V (no q k^T, no softmax)."""
        return _attention_branch(self.qkv, self.proj, self.num_heads, self.attention, x, reuse_probs, return_probs,
                                 self.q_norm, self.k_norm, self.norm)


def _attention_branch(qkv_layer, proj_layer, num_heads, attention, x, reuse_probs=None, return_probs=False,
                      q_norm=None, k_norm=None, out_norm=None):
    # softmax attention (optionally returning its probabilities), reuse of given
    # probabilities (only the V third of qkv is computed) and ReLU linear attention
    B, T, C = x.shape
    hd = C // num_heads
    probs = None
    if reuse_probs is not None:
        bias = None if qkv_layer.bias is None else qkv_layer.bias[2 * C:]
        v = nn.functional.linear(x, qkv_layer.weight[2 * C:], bias).reshape(B, T, num_heads, hd).transpose(1, 2)
        out = reuse_probs @ v
    else:
        qkv = qkv_layer(x).reshape(B, T, 3, num_heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if q_norm is not None:
            q, k = q_norm(q), k_norm(k)
        if attention == "relu_linear":
            q, k = torch.relu(q), torch.relu(k)
            kv = k.transpose(-2, -1) @ v                              # (B, NH, hd, hd)
            denom = q @ k.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (B, NH, T, 1)
            out = (q @ kv) / (denom + LINEAR_ATTENTION_EPS)
        elif return_probs:
            probs = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1)
            out = probs @ v
        elif torch.is_grad_enabled():
            # Training: the explicit softmax trains 25% faster than SDPA's backward on CPU at small T
            # (measured: 0.29 vs 0.39 s per step, 50 tokens, batch 128, 2 threads).
            out = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1) @ v
        else:
            out = nn.functional.scaled_dot_product_attention(q, k, v)  # default scale head_dim^-0.5, as timm
    out = out.transpose(1, 2).reshape(B, T, C)
    if out_norm is not None and not isinstance(out_norm, nn.Identity):
        out = out_norm(out)
    out = proj_layer(out)
    return (out, probs) if return_probs else out


def _norm(config: ViTConfig, dim: int) -> nn.Module:
    """The model's norm layer: LayerNorm, or RmsNorm (``norm_layer="rmsnorm"``, weight only)."""
    if config.norm_layer == "rmsnorm":
        return nn.RMSNorm(dim, eps=config.norm_eps)
    return nn.LayerNorm(dim, eps=config.norm_eps)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x) (OpenAI CLIP's)."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def _activation(act: str) -> nn.Module:
    return {"gelu": lambda: nn.GELU(), "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
            "quick_gelu": QuickGELU, "silu": lambda: nn.SiLU()}[act]()


class LayerScale(nn.Module):
    """timm's LayerScale: the branch times a learned per-channel ``gamma``."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, act: str = "gelu", norm: bool = False, eps: float = 1e-6,
                 norm_layer=None, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act = _activation(act)  # exact erf GELU unless the config says otherwise
        make = norm_layer or (lambda n: nn.LayerNorm(n, eps=eps))
        self.norm = make(hidden) if norm else nn.Identity()  # timm's scale_mlp_norm
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x):
        return self.fc2(self.norm(self.act(self.fc1(x))))


class SwiGLU(nn.Module):
    """timm's SwiGLU: fc2(norm(act(fc1_g(x)) * fc1_x(x)))."""

    def __init__(self, dim: int, hidden: int, act: str = "silu", norm: bool = False, bias: bool = True,
                 norm_layer=None):
        super().__init__()
        self.fc1_g = nn.Linear(dim, hidden, bias=bias)
        self.fc1_x = nn.Linear(dim, hidden, bias=bias)
        self.act = _activation(act)
        self.norm = norm_layer(hidden) if norm else nn.Identity()
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x):
        return self.fc2(self.norm(self.act(self.fc1_g(x)) * self.fc1_x(x)))


class Block(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        C = config.embed_dim
        make = lambda n: _norm(config, n)  # noqa: E731
        self.norm1 = make(C)
        self.attn = Attention(C, config.num_heads, config.qkv_bias, config.attention, config.qk_norm, config.norm_eps,
                              config.scale_attn_norm, make)
        self.ls1 = LayerScale(C) if config.layer_scale else nn.Identity()
        self.norm2 = make(C)
        if config.mlp_layer == "swiglu":
            self.mlp = SwiGLU(C, config.mlp_hidden, config.act, config.scale_mlp_norm, config.proj_bias, make)
        else:
            self.mlp = Mlp(C, config.mlp_hidden, config.act, config.scale_mlp_norm, config.norm_eps, make,
                           config.proj_bias)
        if not config.proj_bias:
            self.attn.proj = nn.Linear(C, C, bias=False)
        self.ls2 = LayerScale(C) if config.layer_scale else nn.Identity()
        self.skip_lam = float(config.skip_lam)

    def forward(self, x, attn_active: bool = True, reuse_probs=None, return_probs: bool = False):
        """``attn_active`` False: skipped; ``reuse_probs`` (modes): reuse these probabilities;
        ``return_probs``: return (x, softmax probabilities of this block or None)."""
        # LV-ViT's Block: residual branches divided by skip_lam (1 for timm, where / 1 is exact)
        probs = None
        if attn_active:
            a = self.attn(self.norm1(x), reuse_probs, return_probs)
            if return_probs:
                a, probs = a
            x = x + self.ls1(a) / self.skip_lam
        x = x + self.ls2(self.mlp(self.norm2(x))) / self.skip_lam
        return (x, probs) if return_probs else x


class AttentionPool(nn.Module):
    """timm's AttentionPoolLatent as ``global_pool="map"`` builds it: one latent query attends over
    the tokens it is given (the patch tokens), then ``y + mlp(norm(y))``."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        C = config.embed_dim
        self.num_heads = config.num_heads
        self.latent = nn.Parameter(torch.zeros(1, 1, C))
        self.q = nn.Linear(C, C)
        self.kv = nn.Linear(C, 2 * C)
        self.proj = nn.Linear(C, C)
        self.norm = _norm(config, C)
        self.mlp = Mlp(C, config.mlp_hidden, config.act)

    def forward(self, x):
        B, T, C = x.shape
        nh, hd = self.num_heads, C // self.num_heads
        q = self.q(self.latent).reshape(1, 1, nh, hd).transpose(1, 2).expand(B, -1, -1, -1)
        k, v = self.kv(x).reshape(B, T, 2, nh, hd).permute(2, 0, 3, 1, 4).unbind(0)
        y = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1) @ v
        y = self.proj(y.transpose(1, 2).reshape(B, 1, C))
        y = y + self.mlp(self.norm(y))
        return y[:, 0]


class PatchEmbed(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_chans, config.embed_dim, config.patch_size, stride=config.patch_size,
                              bias=config.patch_bias)
        self.norm = _norm(config, config.embed_dim) if config.patch_norm else nn.Identity()

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class ConvStemPatchEmbed(nn.Module):
    """LV-ViT's PatchEmbed4_2 (``models/layers.py``): three conv + BatchNorm + ReLU layers at half
    resolution, then ``proj`` with kernel = stride = patch_size / 2."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        S, P = config.stem_channels, config.patch_size // 2
        self.conv1 = nn.Conv2d(config.in_chans, S, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(S)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(S, S, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(S)
        self.conv3 = nn.Conv2d(S, S, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(S)
        self.proj = nn.Conv2d(S, config.embed_dim, kernel_size=P, stride=P)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """timm's ``VisionTransformer`` / ``VisionTransformerDistilled`` forward, with a ``path``."""

    def __init__(self, config: ViTConfig, path=None):
        super().__init__()
        if not isinstance(config, ViTConfig):
            raise TypeError(f"config must be a pivot.ViTConfig, got {type(config).__name__}")
        self.config = config
        self.path = _modes_path(config, path)
        C, K = config.embed_dim, config.num_classes
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C)) if config.class_token else None
        self.dist_token = nn.Parameter(torch.zeros(1, 1, C)) if config.distilled else None
        self.reg_token = nn.Parameter(torch.zeros(1, config.reg_tokens, C)) if config.reg_tokens else None
        self.pos_embed = nn.Parameter(torch.zeros(1, config.pos_tokens, C))
        self.patch_embed = ConvStemPatchEmbed(config) if config.stem == "lvvit_conv" else PatchEmbed(config)
        self.norm_pre = _norm(config, C) if config.norm_pre else nn.Identity()
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = _norm(config, C) if config.final_norm and not config.fc_norm else nn.Identity()
        self.attn_pool = AttentionPool(config) if config.global_pool == "map" else None
        self.fc_norm = _norm(config, C) if config.fc_norm else nn.Identity()
        self.head = nn.Linear(C, K) if K else nn.Identity()
        self.head_dist = nn.Linear(C, K) if config.distilled else None
        self.aux_head = nn.Linear(C, K) if config.aux_head else None
        self.eval()

    def forward_features(self, images, path=None):
        """The final token map (B, T, C), after the final norm unless it runs after pooling
        (``fc_norm``); ``path=None`` uses ``self.path``."""
        path = self.path if path is None else _modes_path(self.config, path)
        x = self.patch_embed(images)
        B = x.shape[0]
        prefix = [t.expand(B, -1, -1) for t in (self.cls_token, self.dist_token, self.reg_token) if t is not None]
        if self.config.no_embed_class:
            x = torch.cat(prefix + [x + self.pos_embed], dim=1)
        else:
            x = torch.cat(prefix + [x], dim=1) + self.pos_embed
        return self.norm(_run_blocks(self.blocks, self.norm_pre(x), path))

    def forward(self, images, path=None):
        """Logits (B, num_classes), or pooled features (B, embed_dim) when headless; ``path=None``
        uses ``self.path``."""
        return self.forward_head(self.forward_features(images, path))

    def forward_head(self, x):
        """Logits from the final token map (B, T, C): pooling (timm's ``global_pool``; avg / max /
        avgmax over the patch tokens), ``fc_norm``, the head(s)."""
        pool, n = self.config.global_pool, self.config.num_prefix_tokens
        if self.config.pool_include_prefix:
            n = 0
        if pool == "token":
            f = x[:, 0]
        elif pool == "map":  # over the patch tokens unless pool_include_prefix
            f = self.attn_pool(x[:, n:])
        elif pool == "avg":
            f = x[:, n:].mean(dim=1)
        elif pool == "max":
            f = x[:, n:].amax(dim=1)
        else:
            f = 0.5 * (x[:, n:].mean(dim=1) + x[:, n:].amax(dim=1))
        logits = self.head(self.fc_norm(f))
        if self.head_dist is not None:
            logits = (logits + self.head_dist(x[:, 1])) / 2
        if self.aux_head is not None:  # LV-ViT at eval: x_cls + 0.5 * x_aux.max(1)[0]
            logits = logits + 0.5 * self.aux_head(x[:, 1:]).max(1)[0]
        return logits


def from_vit(model) -> VisionTransformer:
    """A ``VisionTransformer`` with a copy of a ``pivot.ViT``'s weights and path, in eval mode."""
    module = VisionTransformer(model.config, path=model.path)
    state = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    for key, value in module.state_dict().items():  # BatchNorm counters: not weights, keep the module's
        if key.endswith(".num_batches_tracked"):
            state[key] = value
    module.load_state_dict(state, strict=True)
    return module


def to_vit(module: VisionTransformer, path=None):
    """A ``pivot.ViT`` with a copy of the module's weights (path: the module's unless given)."""
    from .model import ViT

    weights = {k: v.detach().cpu().to(torch.float32).numpy() for k, v in module.state_dict().items()
               if not k.endswith(".num_batches_tracked")}
    return ViT(module.config, weights, path=module.path if path is None else path)


def _modes_path(config, path):
    arr = normalize_path(path, config.depth, allow_reuse=True)
    if (arr == 2).any() and config.attention != "softmax":
        raise ValueError("path value 2 (attention reuse) needs softmax attention")
    return arr


def _run_blocks(blocks, x, path):
    """Blocks over a path of 0 (skip), 1 (active), 2 (reuse the nearest earlier active block's
    probabilities). An active block computes its probabilities explicitly (no fused kernel) only
    when a later block reuses them; gradients flow into the reused probabilities."""
    path = [int(v) for v in path]
    probs = None
    for i, (block, mode) in enumerate(zip(blocks, path)):
        rest = path[i + 1:]
        nxt = rest.index(1) if 1 in rest else len(rest)
        keep = mode == 1 and 2 in rest[:nxt]
        if mode == 2:
            x = block(x, True, reuse_probs=probs)
        elif keep:
            x, probs = block(x, True, return_probs=True)
        else:
            x = block(x, mode == 1)
    return x


class _TimmBlockModes(nn.Module):
    """Wraps a timm ``Block`` (norm1, attn.qkv, attn.proj, attn.num_heads, norm2, mlp, and ls1/ls2,
    drop_path1/2 when present) so that it runs as skip / active / reuse / linear attention."""

    def __init__(self, block, attention):
        super().__init__()
        self.block = block
        self.attention = attention

    def forward(self, x, attn_active: bool = True, reuse_probs=None, return_probs: bool = False):
        b = self.block
        ident = lambda t: t  # noqa: E731
        ls1, ls2 = getattr(b, "ls1", ident), getattr(b, "ls2", ident)
        dp1, dp2 = getattr(b, "drop_path1", ident), getattr(b, "drop_path2", ident)
        probs = None
        if attn_active:
            a = _attention_branch(b.attn.qkv, b.attn.proj, b.attn.num_heads, self.attention, b.norm1(x),
                                  reuse_probs, return_probs, getattr(b.attn, "q_norm", None),
                                  getattr(b.attn, "k_norm", None), getattr(b.attn, "norm", None))
            if return_probs:
                a, probs = a
            x = x + dp1(ls1(a))
        x = x + dp2(ls2(b.mlp(b.norm2(x))))
        return (x, probs) if return_probs else x


class _TimmBlocksModes(nn.Module):
    """Replaces a timm model's ``blocks`` (an nn.Sequential) and runs them over a path."""

    def __init__(self, blocks, path, attention):
        super().__init__()
        self.wrapped = nn.ModuleList(_TimmBlockModes(b, attention) for b in blocks)
        self.path = path

    def forward(self, x):
        return _run_blocks(self.wrapped, x, self.path)


def patch_timm_modes(module, path=None, attention: str = "softmax"):
    """Make a timm-like ``VisionTransformer`` (``module.blocks`` a sequence of timm Blocks) run a
    path over {0 skip, 1 active, 2 reuse} and, with ``attention="relu_linear"``, ReLU linear
    attention, in place; returns the module. The weights stay the module's own (state_dict keys
    gain a ``.wrapped.N.block.`` infix while patched). Call again to change the path."""
    from .config import ATTENTIONS

    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    blocks = module.blocks
    if isinstance(blocks, _TimmBlocksModes):
        blocks = [w.block for w in blocks.wrapped]
    depth = len(blocks)
    arr = normalize_path(path, depth, allow_reuse=True)
    if (arr == 2).any() and attention != "softmax":
        raise ValueError("path value 2 (attention reuse) needs softmax attention")
    module.blocks = _TimmBlocksModes(blocks, arr, attention)
    return module
