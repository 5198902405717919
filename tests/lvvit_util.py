"""Shared helpers of the LV-ViT tests: a small LV-ViT-like config, official key names, random weights."""
import numpy as np

import pivot

# LV-ViT-like at a test size: 64 px, 16-channel stem, 4x4 patches of 16 px, embed 64, depth 4.
TINY = pivot.ViTConfig(img_size=64, patch_size=16, in_chans=3, num_classes=10, embed_dim=64, depth=4, num_heads=4,
                       mlp_ratio=3.0, norm_eps=1e-5, stem="lvvit_conv", stem_channels=16, skip_lam=2.0,
                       aux_head=True, qkv_bias=False)


def official_keys(depth, aux_head=True):
    """The state-dict keys of TokenLabeling's LV_ViT (tlt/models/lvvit.py with p_emb='4_2',
    qkv_bias=False), in module registration order, written out from its public source:
    LV_ViT.__init__ registers patch_embed (PatchEmbed4_2: conv1, bn1, relu, conv2, bn2, conv3, bn3,
    proj), then the cls_token and pos_embed parameters (a module's own parameters come first in
    state_dict), blocks (norm1, attn.qkv (no bias), attn.proj, norm2, mlp.fc1, mlp.fc2), norm,
    head and, with return_dense, aux_head."""
    keys = ["cls_token", "pos_embed"]
    for i in (1, 2, 3):
        keys.append(f"patch_embed.conv{i}.weight")
        keys += [f"patch_embed.bn{i}.{n}" for n in ("weight", "bias", "running_mean", "running_var",
                                                    "num_batches_tracked")]
    keys += ["patch_embed.proj.weight", "patch_embed.proj.bias"]
    for b in range(depth):
        keys += [f"blocks.{b}.{n}" for n in ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight",
                                             "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight",
                                             "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")]
    keys += ["norm.weight", "norm.bias", "head.weight", "head.bias"]
    if aux_head:
        keys += ["aux_head.weight", "aux_head.bias"]
    return keys


def random_weights(config, seed=0, scale=0.2):
    """Every tensor random, BatchNorm included (positive running_var), so that each one matters."""
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in config.weight_shapes().items():
        if key.endswith("running_var"):
            w = rng.uniform(0.5, 2.0, shape)
        elif key.endswith("running_mean"):
            w = rng.standard_normal(shape) * 0.5
        else:
            w = rng.standard_normal(shape) * scale
            if key.endswith("norm1.weight") or key.endswith("norm2.weight") or key == "norm.weight" or ".bn" in key \
                    and key.endswith(".weight"):
                w = 1.0 + w
        weights[key] = w.astype(np.float32)
    return weights


def random_images(config, batch, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, config.in_chans, config.img_size, config.img_size)).astype(np.float32)
