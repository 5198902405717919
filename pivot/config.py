"""ViT configurations: the shape of a model, independent of its weights."""
from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from collections import OrderedDict

import numpy as np

__all__ = ["ViTConfig", "normalize_path", "path_effort", "STEMS", "ATTENTIONS", "POOLS", "ACTIVATIONS",
           "LINEAR_ATTENTION_EPS"]

# Patch embeddings: "patch" is timm's one Conv2d (kernel = stride = patch_size); "lvvit_conv" is
# LV-ViT's PatchEmbed4_2 (three conv+BatchNorm+ReLU layers, then a patch_size/2 projection).
STEMS = ("patch", "lvvit_conv")

# Attention of the encoders: "softmax" is timm's; "relu_linear" is softmax-free ReLU linear
# attention (Trio-ViT style; pivot/reference/modes.py): per head
# out = phi(Q) (phi(K)^T V) / (phi(Q) (phi(K)^T 1) + LINEAR_ATTENTION_EPS), phi = ReLU. It uses
# the same weights (qkv, proj) as softmax attention, so the choice is a config field, not a path
# value: a path still says which encoders run their attention (and which skip it).
ATTENTIONS = ("softmax", "relu_linear")
# Pooling of the final tokens into one feature vector (timm's global_pool): "token" reads the
# first prefix token; "avg", "max" and "avgmax" (0.5 * (avg + max)) pool the patch tokens only
# (not the prefix tokens); "map" is timm's AttentionPoolLatent head (over the patch tokens too).
POOLS = ("token", "avg", "max", "avgmax", "map")
# MLP activations: exact (erf) GELU, tanh-approximated GELU (timm's gelu_tanh), QuickGELU
# (x * sigmoid(1.702 x), OpenAI CLIP's).
ACTIVATIONS = ("gelu", "gelu_tanh", "quick_gelu", "silu")
MLPS = ("mlp", "swiglu")  # ViTConfig.mlp_layer: timm's Mlp, or SwiGLU (fc1_g, fc1_x, act(g) * x, fc2)
NORMS = ("layernorm", "rmsnorm")  # ViTConfig.norm_layer: every norm of the model

# Added to the denominator of linear attention: keeps a query row whose phi(Q) phi(K)^T 1 is 0
# (every ReLU'd product 0) finite (its output is then 0). Small next to typical sums (O(T)).
LINEAR_ATTENTION_EPS = 1e-6

# Size limits: a config read from a stranger's file (``pivot.config`` metadata, inferred shapes)
# must fail here, quickly and clearly, rather than hang listing a billion encoders or overflow a
# size product in C. Every size reaches C as an int (BLAS takes ints); depth is far above any
# published ViT (ViT-22B: 48).
MAX_DEPTH = 4096
MAX_SIZE = 2 ** 31 - 1
# mlp_ratio and skip_lam beyond this are typos or attacks (published ViTs: mlp_ratio <= 8, skip_lam <= 3).
MAX_RATIO = 1e6


def as_int(owner: str, field: str, value, low: int = 1, high: int = MAX_SIZE) -> int:
    """``value`` as a Python int in [low, high], or a ValueError naming ``owner.field``.

    Any integer type converts (``operator.index``: NumPy's fixed-width integers become Python
    ints, so derived sizes cannot wrap around); bools, floats and strings are refused."""
    kind = "a positive integer" if low == 1 else f"an integer >= {low}"
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}.{field} must be {kind}, got the bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{owner}.{field} must be {kind}, got {value!r} ({type(value).__name__})") from None
    if number < low:
        raise ValueError(f"{owner}.{field} must be {kind}, got {number}")
    if number > high:
        raise ValueError(f"{owner}.{field} must be {kind} at most {high}, got {number}")
    return number


def as_real(owner: str, field: str, value, low: float, high: float, low_open: bool = False,
            allow_inf: bool = False, what: str | None = None) -> float:
    """``value`` as a finite Python float in [low, high] (``(low, high]`` with ``low_open``), or a
    ValueError naming ``owner.field`` (``what`` describes the allowed values); bools and strings
    are refused, ``inf`` only with ``allow_inf``."""
    if what is None:
        what = (("a positive finite number" if low_open else "a finite number >= 0") if low == 0
                else f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}]")
        what += f" at most {high:g}" if low == 0 else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}.{field} must be {what}, got {value!r} ({type(value).__name__})")
    number = float(value)
    if allow_inf and number == math.inf:
        return number
    if not math.isfinite(number) or number < low or (low_open and number == low) or number > high:
        raise ValueError(f"{owner}.{field} must be {what}, got {value!r}")
    return number


def as_bool(owner: str, field: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}.{field} must be a bool, got {value!r}")
    return bool(value)


def _check_size_limits(config) -> None:
    sizes = {"img_size": config.img_size, "patch_size": config.patch_size, "in_chans": config.in_chans,
             "num_classes": config.num_classes, "embed_dim": config.embed_dim, "num_heads": config.num_heads,
             "stem_channels": config.stem_channels, "mlp_hidden": config.mlp_hidden,
             "3 * embed_dim": 3 * config.embed_dim, "num_tokens": config.num_tokens}
    for name, value in sizes.items():
        if value > MAX_SIZE:
            raise ValueError(f"ViTConfig {name} is {value}, more than the {MAX_SIZE} pivot's C engine supports")
    # Python ints: exact. The largest per-image activation (B = 1) must be addressable too.
    tokens, heads = config.num_tokens, config.num_heads
    if tokens * tokens * heads > MAX_SIZE * 8 or tokens * max(config.mlp_hidden, 3 * config.embed_dim) > MAX_SIZE * 8:
        raise ValueError(f"ViTConfig is too large: {tokens} tokens x {heads} heads / {config.mlp_hidden} hidden "
                         f"activations exceed what pivot's C engine addresses")


_NORM_NAMES = ("norm_pre", "norm1", "norm2", "q_norm", "k_norm", "norm", "fc_norm")


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """Shape of a timm-style ``VisionTransformer`` (DeiT family) or of an LV-ViT.

    Tokens are ``[cls] [dist] patches`` (the distillation token only when ``distilled``); the
    position embedding covers all of them. ``mlp_hidden = int(embed_dim * mlp_ratio)`` as in timm.

    LV-ViT ("All tokens matter: token labeling", Jiang et al. 2021; ``ViTConfig.preset("lvvit_s")``)
    uses the last five fields:

    * ``stem="lvvit_conv"``: the patch embedding is LV-ViT's ``PatchEmbed4_2``: conv 7x7 stride 2
      padding 3 (``stem_channels`` out, no bias) + BatchNorm + ReLU, twice conv 3x3 stride 1
      padding 1 + BatchNorm + ReLU, then ``proj``, a conv with kernel = stride = patch_size / 2
      (with bias). BatchNorm runs on its running statistics (eval mode, eps 1e-5).
    * ``skip_lam``: each block computes ``x = x + attn(norm1(x)) / skip_lam`` and
      ``x = x + mlp(norm2(x)) / skip_lam`` (1 = timm's block).
    * ``aux_head``: a token-labeling head ``aux_head`` (Linear C -> num_classes) on the normalized
      patch tokens; the logits are ``head(x_cls) + 0.5 * max over patches of aux_head(x_patch)``,
      LV-ViT's inference output.
    * ``qkv_bias``: whether ``attn.qkv`` has a bias (LV-ViT: no).

    ``attention`` (``ATTENTIONS``): ``"softmax"`` (timm) or ``"relu_linear"``, softmax-free ReLU
    linear attention in every encoder (same weights; see ``pivot.config.LINEAR_ATTENTION_EPS``).

    The rest of timm's ``VisionTransformer`` (DeiT III, DINOv2, CLIP, SigLIP, registers, ...):

    * ``class_token`` (``cls_token``), ``reg_tokens`` (``reg_token`` (1, R, C), after the class
      token): the prefix tokens are ``[cls] [dist] [reg x R]``; ``no_embed_class``: the position
      embedding covers the patches only (the prefix tokens get none).
    * ``global_pool`` (``POOLS``): what the head reads (``"token"``: the first token; ``"avg"``,
      ``"max"``, ``"avgmax"``: the patch tokens pooled; ``"map"``: timm's attention-pooling
      head ``attn_pool``). ``fc_norm``: the final LayerNorm runs after pooling (``fc_norm.*``)
      instead of before it (``norm.*``). ``norm_pre``: a LayerNorm after the position embedding.
    * ``layer_scale``: each branch is multiplied by ``blocks.i.ls1.gamma`` / ``ls2.gamma`` before
      the residual add. ``qk_norm``: LayerNorm of q and k per head (``attn.q_norm``, ``attn.k_norm``).
      ``scale_attn_norm``: a LayerNorm (C) of the attention output before ``attn.proj``
      (``attn.norm``); ``scale_mlp_norm``: a LayerNorm (hidden) before ``mlp.fc2`` (``mlp.norm``).
    * ``final_norm=False``: no final norm at all (neither ``norm`` nor ``fc_norm``; RADIO).
      ``pool_include_prefix``: avg / max / avgmax / map pool over all tokens, prefix included.
    * ``norm_layer`` (``NORMS``): every norm is a LayerNorm, or timm's RmsNorm
      (``x / sqrt(mean(x^2) + eps) * weight``, no ``.bias`` keys).
    * ``mlp_layer`` (``MLPS``): timm's ``Mlp`` or ``SwiGLU`` (``fc2(act(fc1_g(x)) * fc1_x(x))``,
      ``act`` usually ``"silu"``); ``proj_bias=False``: ``attn.proj`` and the MLP's linears have no
      bias; ``patch_norm``: a norm of the patch tokens before the position embedding
      (``patch_embed.norm``, timm's ``embed_norm_layer``).
    * ``img_size`` need not be a multiple of ``patch_size`` (timm's conv floors the grid: the last
      ``img_size % patch_size`` rows and columns of pixels are not read).
    * ``act`` (``ACTIVATIONS``): the MLP's activation. ``patch_bias``: whether
      ``patch_embed.proj`` has a bias. ``num_classes=0``: headless, the output is the pooled
      (normalized) features, ``embed_dim`` wide.

    ``input_mean``, ``input_std`` (one value per channel, for pixels scaled to [0, 1]): the input
    normalization the model was trained with, ``(pixel / 255 - mean) / std``; ``model(images)``
    applies it to uint8 images. None: timm's default for the model (``input_normalization``).
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
    stem: str = "patch"
    stem_channels: int = 64
    skip_lam: float = 1.0
    aux_head: bool = False
    qkv_bias: bool = True
    attention: str = "softmax"
    input_mean: tuple | None = None
    input_std: tuple | None = None
    class_token: bool = True
    reg_tokens: int = 0
    no_embed_class: bool = False
    global_pool: str = "token"
    fc_norm: bool = False
    norm_pre: bool = False
    layer_scale: bool = False
    act: str = "gelu"
    patch_bias: bool = True
    qk_norm: bool = False
    final_norm: bool = True
    pool_include_prefix: bool = False
    scale_attn_norm: bool = False
    scale_mlp_norm: bool = False
    norm_layer: str = "layernorm"
    mlp_layer: str = "mlp"
    proj_bias: bool = True
    patch_norm: bool = False

    def __post_init__(self):
        # Every field is converted to its Python type on entry (a frozen dataclass: object.__setattr__).
        def put(field, value):
            object.__setattr__(self, field, value)

        for field in ("img_size", "patch_size", "in_chans", "embed_dim", "num_heads", "stem_channels"):
            put(field, as_int("ViTConfig", field, getattr(self, field)))
        put("num_classes", as_int("ViTConfig", "num_classes", self.num_classes, low=0))
        put("reg_tokens", as_int("ViTConfig", "reg_tokens", self.reg_tokens, low=0, high=4096))
        put("depth", as_int("ViTConfig", "depth", self.depth, high=MAX_DEPTH))
        put("mlp_ratio", as_real("ViTConfig", "mlp_ratio", self.mlp_ratio, 0, MAX_RATIO, low_open=True))
        put("norm_eps", as_real("ViTConfig", "norm_eps", self.norm_eps, 0, 1, low_open=True))
        put("skip_lam", as_real("ViTConfig", "skip_lam", self.skip_lam, 0, MAX_RATIO, low_open=True))
        for field in ("distilled", "aux_head", "qkv_bias", "class_token", "no_embed_class", "fc_norm", "norm_pre",
                      "layer_scale", "patch_bias", "qk_norm", "final_norm", "pool_include_prefix", "scale_attn_norm",
                      "scale_mlp_norm", "proj_bias", "patch_norm"):
            put(field, as_bool("ViTConfig", field, getattr(self, field)))
        for field, allowed in (("stem", STEMS), ("attention", ATTENTIONS), ("global_pool", POOLS),
                               ("act", ACTIVATIONS), ("norm_layer", NORMS), ("mlp_layer", MLPS)):
            if not isinstance(getattr(self, field), str) or getattr(self, field) not in allowed:
                raise ValueError(f"ViTConfig.{field} must be one of {allowed}, got {getattr(self, field)!r}")
        for field, low in (("input_mean", -MAX_RATIO), ("input_std", 0)):
            value = getattr(self, field)
            if value is not None:
                if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != self.in_chans:
                    raise ValueError(f"ViTConfig.{field} must be None or {self.in_chans} number(s), one per channel, "
                                     f"got {value!r}")
                put(field, tuple(as_real("ViTConfig", f"{field}[{i}]", v, low, MAX_RATIO, low_open=low == 0)
                                 for i, v in enumerate(value)))
        if self.img_size % self.patch_size and self.stem != "patch":
            raise ValueError(f"ViTConfig.img_size ({self.img_size}) must be a multiple of patch_size ({self.patch_size})")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"ViTConfig.embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})")
        if self.mlp_hidden < 1:
            raise ValueError(f"ViTConfig.mlp_ratio must give a positive hidden size, got {self.mlp_ratio!r}")
        if self.stem == "lvvit_conv" and self.patch_size % 2:
            raise ValueError(f"ViTConfig.patch_size ({self.patch_size}) must be even for stem='lvvit_conv' "
                             f"(a stride-2 convolution, then a patch_size/2 projection)")
        if self.distilled and self.aux_head:
            raise ValueError("ViTConfig: distilled and aux_head cannot be combined (no model defines how "
                             "their outputs would mix)")
        if self.num_prefix_tokens == 0 and self.global_pool == "token":
            raise ValueError("ViTConfig: global_pool='token' needs a prefix token (class_token=True or reg_tokens > 0)")
        if self.distilled and (not self.class_token or self.global_pool != "token"):
            raise ValueError("ViTConfig: distilled (DeiT's class + distillation heads) needs class_token=True and "
                             "global_pool='token'")
        if (self.distilled or self.aux_head) and self.num_classes == 0:
            raise ValueError("ViTConfig: a headless model (num_classes=0) cannot have distilled or aux_head heads")
        if self.mlp_layer == "swiglu" and self.global_pool == "map":
            raise ValueError("ViTConfig: mlp_layer='swiglu' with global_pool='map' is not supported (the pooling "
                             "head's MLP is timm's Mlp)")
        if self.fc_norm and not self.final_norm:
            raise ValueError("ViTConfig: fc_norm is the final norm after pooling; it needs final_norm=True")
        if self.stem != "patch" and not self.is_plain_block:
            raise ValueError("ViTConfig: LV-ViT's conv stem combines with timm's plain blocks only")
        _check_size_limits(self)

    # -- derived sizes
    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size ** 2

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patches: class token, distillation token, register tokens."""
        return int(self.class_token) + int(self.distilled) + self.reg_tokens

    @property
    def head_norm_tokens(self) -> int:
        """Tokens per image the final norm runs on for the head (what PIVOT-Sim counts): the class
        (and distillation) tokens under token pooling, the patches before avg / max pooling, the one
        pooled vector under ``fc_norm``."""
        if self.fc_norm:
            return 1
        if self.global_pool == "token":
            return max(1, int(self.class_token) + int(self.distilled))  # token 0 is a register without a class token
        return self.num_patches

    @property
    def num_tokens(self) -> int:
        """T: patches plus the prefix tokens (class, distillation, registers)."""
        return self.num_patches + self.num_prefix_tokens

    @property
    def pos_tokens(self) -> int:
        """Tokens the position embedding covers: the patches only with ``no_embed_class``."""
        return self.num_patches if self.no_embed_class else self.num_tokens

    @property
    def num_features(self) -> int:
        """Width of the model's output: num_classes, or embed_dim for a headless model."""
        return self.num_classes or self.embed_dim

    @property
    def is_plain_block(self) -> bool:
        """True when the model uses none of the fields beyond DeiT's (prefix tokens, pooling, norms,
        layer scale, activation, biases): its flat parameters are the state dict in order."""
        return (self.class_token and not self.reg_tokens and not self.no_embed_class and self.global_pool == "token"
                and not self.fc_norm and not self.norm_pre and not self.layer_scale and self.act == "gelu"
                and self.patch_bias and not self.qk_norm and self.num_classes > 0 and self.final_norm
                and not self.pool_include_prefix and not self.scale_attn_norm and not self.scale_mlp_norm
                and self.norm_layer == "layernorm" and self.mlp_layer == "mlp" and self.proj_bias
                and not self.patch_norm)

    @property
    def proj_size(self) -> int:
        """Height = width of the map that the patch projection (``patch_embed.proj``) reads:
        the image, or the conv stem's output (img_size / 2)."""
        return self.img_size // 2 if self.stem == "lvvit_conv" else self.img_size

    @property
    def proj_kernel(self) -> int:
        """Kernel = stride of ``patch_embed.proj``: patch_size, or patch_size / 2 after the conv stem."""
        return self.patch_size // 2 if self.stem == "lvvit_conv" else self.patch_size

    @property
    def proj_in_chans(self) -> int:
        """Channels that ``patch_embed.proj`` reads: in_chans, or stem_channels after the conv stem."""
        return self.stem_channels if self.stem == "lvvit_conv" else self.in_chans

    @property
    def is_timm_vit(self) -> bool:
        """True when the model is a DeiT-style timm VisionTransformer (no LV-ViT feature, nothing
        beyond DeiT's fields): the flat parameter array is then the state dict in order."""
        return self.stem == "patch" and self.skip_lam == 1 and not self.aux_head and self.qkv_bias and self.is_plain_block

    @property
    def has_lvvit_features(self) -> bool:
        """True when the model uses LV-ViT's conv stem, skip_lam or aux head."""
        return self.stem != "patch" or self.skip_lam != 1 or self.aux_head

    @property
    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` per channel for pixels in [0, 1]: ``input_mean``/``input_std``, or timm's
        default when they are None (ImageNet's statistics for 3 channels, as DeiT and LV-ViT use;
        0.5 / 0.5 otherwise)."""
        if self.input_mean is not None and self.input_std is not None:
            return self.input_mean, self.input_std
        default = _IMAGENET_MEAN_STD if self.in_chans == 3 else ((0.5,) * self.in_chans, (0.5,) * self.in_chans)
        return self.input_mean or default[0], self.input_std or default[1]

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def replace(self, **changes) -> "ViTConfig":
        return dataclasses.replace(self, **changes)

    def weight_shapes(self) -> "OrderedDict[str, tuple[int, ...]]":
        """State-dict key names and shapes for this config, in the order the model's ``state_dict()``
        lists them: timm's for a ViT / DeiT, the official TokenLabeling repository's for an LV-ViT
        (``patch_embed.conv1`` ... ``patch_embed.bn3``, no ``attn.qkv.bias``, ``aux_head``).

        BatchNorm layers list weight, bias, running_mean and running_var; their integer
        ``num_batches_tracked`` counters (training bookkeeping) are not weights and are left out.
        """
        C, H, K = self.embed_dim, self.mlp_hidden, self.num_classes
        s: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        if self.class_token:
            s["cls_token"] = (1, 1, C)
        if self.distilled:
            s["dist_token"] = (1, 1, C)
        if self.reg_tokens:
            s["reg_token"] = (1, self.reg_tokens, C)
        s["pos_embed"] = (1, self.pos_tokens, C)
        if self.stem == "lvvit_conv":
            S = self.stem_channels
            for i, (cin, k) in enumerate(((self.in_chans, 7), (S, 3), (S, 3)), start=1):
                s[f"patch_embed.conv{i}.weight"] = (S, cin, k, k)
                for name in ("weight", "bias", "running_mean", "running_var"):
                    s[f"patch_embed.bn{i}.{name}"] = (S,)
        P = self.proj_kernel
        s["patch_embed.proj.weight"] = (C, self.proj_in_chans, P, P)
        if self.patch_bias:
            s["patch_embed.proj.bias"] = (C,)
        if self.patch_norm:
            s["patch_embed.norm.weight"] = (C,)
            s["patch_embed.norm.bias"] = (C,)
        if self.norm_pre:
            s["norm_pre.weight"] = (C,)
            s["norm_pre.bias"] = (C,)
        hd = self.head_dim
        for i in range(self.depth):
            b = f"blocks.{i}."
            s[b + "norm1.weight"] = (C,)
            s[b + "norm1.bias"] = (C,)
            s[b + "attn.qkv.weight"] = (3 * C, C)
            if self.qkv_bias:
                s[b + "attn.qkv.bias"] = (3 * C,)
            if self.qk_norm:
                for name in ("q_norm", "k_norm"):
                    s[b + f"attn.{name}.weight"] = (hd,)
                    s[b + f"attn.{name}.bias"] = (hd,)
            if self.scale_attn_norm:
                s[b + "attn.norm.weight"] = (C,)
                s[b + "attn.norm.bias"] = (C,)
            s[b + "attn.proj.weight"] = (C, C)
            s[b + "attn.proj.bias"] = (C,)
            if self.layer_scale:
                s[b + "ls1.gamma"] = (C,)
            s[b + "norm2.weight"] = (C,)
            s[b + "norm2.bias"] = (C,)
            for fc1 in (("fc1_g", "fc1_x") if self.mlp_layer == "swiglu" else ("fc1",)):
                s[b + f"mlp.{fc1}.weight"] = (H, C)
                s[b + f"mlp.{fc1}.bias"] = (H,)
            if self.scale_mlp_norm:
                s[b + "mlp.norm.weight"] = (H,)
                s[b + "mlp.norm.bias"] = (H,)
            s[b + "mlp.fc2.weight"] = (C, H)
            s[b + "mlp.fc2.bias"] = (C,)
            if self.layer_scale:
                s[b + "ls2.gamma"] = (C,)
        if self.final_norm and not self.fc_norm:
            s["norm.weight"] = (C,)
            s["norm.bias"] = (C,)
        if self.global_pool == "map":
            s["attn_pool.latent"] = (1, 1, C)
            s["attn_pool.q.weight"] = (C, C)
            s["attn_pool.q.bias"] = (C,)
            s["attn_pool.kv.weight"] = (2 * C, C)
            s["attn_pool.kv.bias"] = (2 * C,)
            s["attn_pool.proj.weight"] = (C, C)
            s["attn_pool.proj.bias"] = (C,)
            s["attn_pool.norm.weight"] = (C,)
            s["attn_pool.norm.bias"] = (C,)
            s["attn_pool.mlp.fc1.weight"] = (H, C)
            s["attn_pool.mlp.fc1.bias"] = (H,)
            s["attn_pool.mlp.fc2.weight"] = (C, H)
            s["attn_pool.mlp.fc2.bias"] = (C,)
        if self.fc_norm:
            s["fc_norm.weight"] = (C,)
            s["fc_norm.bias"] = (C,)
        if not self.proj_bias:
            for i in range(self.depth):
                for key in ("attn.proj.bias", "mlp.fc1.bias", "mlp.fc1_g.bias", "mlp.fc1_x.bias", "mlp.fc2.bias"):
                    s.pop(f"blocks.{i}.{key}", None)
        if self.norm_layer == "rmsnorm":  # RmsNorm has a weight only
            for key in [k for k in s if k.endswith(".bias") and k.split(".")[-2] in _NORM_NAMES]:
                del s[key]
        if K:
            s["head.weight"] = (K, C)
            s["head.bias"] = (K,)
        if self.distilled:
            s["head_dist.weight"] = (K, C)
            s["head_dist.bias"] = (K,)
        if self.aux_head:
            s["aux_head.weight"] = (K, C)
            s["aux_head.bias"] = (K,)
        return s

    # -- presets
    @classmethod
    def preset(cls, name: str) -> "ViTConfig":
        """Config of a model by name: timm's (``ViTConfig.preset("deit_small_patch16_224")``) or
        LV-ViT's at 224 (``"lvvit_t"``, ``"lvvit_s"``, ``"lvvit_m"``, ``"lvvit_l"``, as the
        TokenLabeling repository's ``tlt/models/lvvit.py`` registers them; for its 384/448
        checkpoints use ``.replace(img_size=...)`` or let ``pivot.ViT.from_timm`` infer it)."""
        try:
            return _PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(_PRESETS))}") from None

    @staticmethod
    def presets() -> list[str]:
        return sorted(_PRESETS)


# timm's IMAGENET_DEFAULT_MEAN / _STD (DeiT, LV-ViT), for pixels in [0, 1]. Presets stay shapes (as
# infer_config reads them from weights); weights trained otherwise, such as the original ViT's
# (timm's vit_*: IMAGENET_INCEPTION_MEAN / _STD, 0.5 / 0.5), pass input_mean= and input_std=.
_IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

_PRESETS: dict[str, ViTConfig] = {}
for _size, (_dim, _heads) in {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}.items():
    _PRESETS[f"deit_{_size}_patch16_224"] = ViTConfig(embed_dim=_dim, num_heads=_heads)
    _PRESETS[f"deit_{_size}_distilled_patch16_224"] = ViTConfig(embed_dim=_dim, num_heads=_heads, distilled=True)
    _PRESETS[f"vit_{_size}_patch16_224"] = ViTConfig(embed_dim=_dim, num_heads=_heads)
# LV-ViT (tlt/models/lvvit.py): patch 16, mlp ratio 3, qkv_bias=False, nn.LayerNorm's eps 1e-5,
# PatchEmbed4_2 stem (64 channels; 128 for LV-ViT-L's PatchEmbed4_2_128), token-labeling aux head.
# The one table of the variants: pivot.io's infer_config reads skip_lam and num_heads from it by
# (embed_dim, depth), as the weights record neither.
LVVIT_VARIANTS = {  # name: (embed_dim, depth, num_heads, skip_lam, stem_channels)
    "lvvit_t": (240, 12, 4, 1.0, 64), "lvvit_s": (384, 16, 6, 2.0, 64),
    "lvvit_m": (512, 20, 8, 2.0, 64), "lvvit_l": (768, 24, 12, 3.0, 128)}
for _name, (_dim, _depth, _heads, _lam, _stem_ch) in LVVIT_VARIANTS.items():
    _PRESETS[_name] = ViTConfig(embed_dim=_dim, depth=_depth, num_heads=_heads, mlp_ratio=3.0, norm_eps=1e-5,
                                stem="lvvit_conv", stem_channels=_stem_ch, skip_lam=_lam, aux_head=True,
                                qkv_bias=False)


def normalize_path(path, depth: int, allow_reuse: bool = False) -> np.ndarray:
    """A path as a C-contiguous uint8 array of length ``depth``.

    ``None`` means every encoder active. 1 = the encoder's attention runs, 0 = skipped
    (the encoder computes ``x + mlp(norm2(x))`` only). With ``allow_reuse=True`` the value 2 is
    accepted too: the encoder reuses the attention probabilities of the nearest earlier active
    encoder (TReX-style attention reuse, see ``pivot.modes``); such an encoder needs an active
    encoder before it.
    """
    allowed = (0, 1, 2) if allow_reuse else (0, 1)
    what = "0 or 1 (or 2: reuse attention)" if allow_reuse else "0 or 1"
    if path is None:
        return np.ones(depth, dtype=np.uint8)
    arr = np.asarray(path)
    if arr.ndim != 1:
        raise ValueError(f"path must be a 1-D sequence of {what} values, got shape {arr.shape}")
    if arr.shape[0] != depth:
        raise ValueError(f"path has {arr.shape[0]} entries but the model has {depth} encoders")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise ValueError(f"path values must be {what}, got dtype {arr.dtype}")
    bad = sorted(set(np.unique(arr).tolist()) - set(allowed))
    if bad:
        hint = " (2 = attention reuse: pass allow_reuse=True where reuse is supported)" if not allow_reuse and bad == [2] else ""
        raise ValueError(f"path values must be {what}, got {bad}{hint}")
    # A private copy: the caller may change their array later, or from another thread.
    arr = np.array(arr, dtype=np.uint8, order="C", copy=True)
    if allow_reuse and (arr == 2).any():
        first_reuse = int(np.argmax(arr == 2))
        if not (arr[:first_reuse] == 1).any():
            raise ValueError(f"path entry {first_reuse} reuses attention (2) but no earlier encoder is active (1): "
                             f"a reusing encoder takes the probabilities of the nearest earlier active encoder")
    return arr


def path_effort(path) -> int:
    """The effort of a path: its number of computed attentions (entries equal to 1).

    A skipped encoder (0) computes no attention, and neither does a reusing one (2: it takes the
    probabilities of an earlier encoder). Every effort key (``pivot.search``, ``pivot.pareto``,
    ``best_paths``, the zoo cards, the CLI) is this count."""
    arr = np.asarray(path)
    if arr.ndim != 1:
        raise ValueError(f"a path is 1-D, got shape {arr.shape}")
    return int(np.count_nonzero(arr == 1))
