"""Shared helpers of the engine tests: small configs and random weights with non-zero biases."""
import numpy as np

import pivot

SMALL = pivot.ViTConfig(img_size=32, patch_size=8, in_chans=3, num_classes=10, embed_dim=48, depth=4,
                        num_heads=3, mlp_ratio=4.0)
# odd sizes everywhere: 5x5 grid of 5-pixel patches, 2 channels, head_dim 7, mlp ratio 2.5
ODD = pivot.ViTConfig(img_size=25, patch_size=5, in_chans=2, num_classes=7, embed_dim=35, depth=3,
                      num_heads=5, mlp_ratio=2.5)
DISTILLED = pivot.ViTConfig(img_size=32, patch_size=16, in_chans=3, num_classes=12, embed_dim=64, depth=3,
                            num_heads=4, distilled=True)


def random_weights(config, seed=0, scale=0.2):
    """Every tensor random (biases and LayerNorm parameters too), so that each one matters."""
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in config.weight_shapes().items():
        w = rng.standard_normal(shape) * scale
        if key.endswith("norm1.weight") or key.endswith("norm2.weight") or key == "norm.weight":
            w = 1.0 + w
        weights[key] = w.astype(np.float32)
    return weights


def random_images(config, batch, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, config.in_chans, config.img_size, config.img_size)).astype(np.float32)


def block_flat(weights, i):
    """The flat parameter vector of block i, in the C engine's order."""
    keys = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
            "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
            "mlp.fc2.weight", "mlp.fc2.bias"]
    return np.concatenate([weights[f"blocks.{i}.{k}"].ravel() for k in keys]).astype(np.float32)


def block_weights(weights, i):
    p = f"blocks.{i}."
    return {k[len(p):]: v for k, v in weights.items() if k.startswith(p)}
