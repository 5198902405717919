"""Reuse paths and linear attention in pivot.torch (the twin and patched timm-like modules)."""
import copy

import numpy as np
import pytest

import pivot

from engine_util import ODD, random_images, random_weights

torch = pytest.importorskip("torch")
import pivot.torch as pt  # noqa: E402  (torch is installed: a failure here is pivot's, not a skip)

SIX = pivot.ViTConfig(img_size=32, patch_size=8, in_chans=3, num_classes=10, embed_dim=48, depth=6, num_heads=3)


@pytest.mark.parametrize("path", [[1, 2, 2, 1, 0, 2], [0, 1, 2, 0, 2, 2], [1] * 6])
def test_twin_reuse_matches_engine(path):
    model = pivot.ViT(SIX, random_weights(SIX, seed=2))
    module = pt.from_vit(model)
    images = random_images(SIX, 3)
    with torch.inference_mode():
        want = module(torch.from_numpy(images), path=path).numpy()
    assert np.abs(model(images, path=path) - want).max() <= 1e-4


@pytest.mark.parametrize("cfg", [SIX, ODD], ids=["six", "odd"])
def test_twin_linear_attention_matches_engine(cfg):
    cfg = cfg.replace(attention="relu_linear")
    model = pivot.ViT(cfg, random_weights(cfg, seed=2))
    module = pt.from_vit(model)
    images = random_images(cfg, 2)
    with torch.inference_mode():
        want = module(torch.from_numpy(images)).numpy()
    assert np.abs(model(images) - want).max() <= 1e-4


def test_reuse_path_round_trips_and_gradients_reach_the_source():
    model = pivot.ViT(SIX, random_weights(SIX, seed=2), path=[1, 2, 2, 1, 0, 2])
    module = pt.from_vit(model)
    assert module.path.tolist() == [1, 2, 2, 1, 0, 2]
    assert pt.to_vit(module).path.tolist() == [1, 2, 2, 1, 0, 2]
    module.train()
    loss = module(torch.from_numpy(random_images(SIX, 2))).square().sum()
    loss.backward()
    # block 0's q/k rows get gradient only through the probabilities that blocks 1 and 2 reuse
    assert module.blocks[0].attn.qkv.weight.grad[:2 * SIX.embed_dim].abs().sum() > 0
    # reusing blocks never use their own q and k
    assert module.blocks[1].attn.qkv.weight.grad[:2 * SIX.embed_dim].abs().sum() == 0
    with pytest.raises(ValueError, match="no earlier encoder is active"):
        module(torch.zeros(1, 3, 32, 32), path=[2, 1, 1, 1, 1, 1])


class TimmLike(torch.nn.Module):
    """timm's VisionTransformer forward shape: embedding, ``self.blocks(x)`` (an nn.Sequential), norm, head."""

    def __init__(self, twin):
        super().__init__()
        self.twin = twin
        self.blocks = torch.nn.Sequential(*twin.blocks)

    def forward(self, images):
        t = self.twin
        x = t.patch_embed(images)
        x = torch.cat([t.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + t.pos_embed
        return t.head(t.norm(self.blocks(x))[:, 0])


def test_patch_timm_modes_on_a_timm_like_module():
    model = pivot.ViT(SIX, random_weights(SIX, seed=2))
    images = torch.from_numpy(random_images(SIX, 2))
    path = [1, 2, 1, 0, 2, 2]
    patched = pt.patch_timm_modes(TimmLike(pt.from_vit(model)), path=path)
    with torch.inference_mode():
        assert np.abs(patched(images).numpy() - model(images.numpy(), path=path)).max() <= 1e-4
    linear = pt.patch_timm_modes(patched, attention="relu_linear")  # path back to all active
    lmodel = pivot.ViT(SIX.replace(attention="relu_linear"), model.state_dict())
    with torch.inference_mode():
        assert np.abs(linear(images).numpy() - lmodel(images.numpy())).max() <= 1e-4
    with pytest.raises(ValueError, match="softmax"):
        pt.patch_timm_modes(patched, path=path, attention="relu_linear")
    with pytest.raises(ValueError, match="attention must be one of"):
        pt.patch_timm_modes(patched, attention="linear")
