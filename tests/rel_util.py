"""Small models shared by the reliability tests (tests/test_rel_*.py)."""
import numpy as np

import pivot

TIMM = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=3, num_classes=3, embed_dim=8, depth=3, num_heads=2,
                       mlp_ratio=2.0)
LVVIT = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=3, num_classes=3, embed_dim=8, depth=2, num_heads=2,
                        mlp_ratio=2.0, stem="lvvit_conv", stem_channels=4, skip_lam=2.0, aux_head=True,
                        qkv_bias=False)
CONFIGS = {"timm": TIMM, "lvvit": LVVIT}


def images(config, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, config.in_chans, config.img_size, config.img_size)).astype(np.float32)
