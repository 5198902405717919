"""Reference logits from timm's real VisionTransformer, for tests/test_timm_reference.py.

Made with (from the repository root, timm 1.0.31 / torch 2.14.1 in the venv /opt/timmenv):

    /opt/timmenv/bin/python tests/reference/make_timm_reference.py

It builds each model with ``pretrained=False`` (nothing is downloaded), loads deterministic
random weights from tests/reference/random_weights.py with ``strict=True``, and runs a batch of
generated images on the full path and on skip paths. A skipped encoder's forward is replaced by
``x + drop_path2(ls2(mlp(norm2(x))))``: its attention branch is not run at all, which is what a
PIVOT path means. The output tests/reference/timm_reference.npz stores, per case, the config
(JSON), the timm key -> shape list (JSON), the seeds, digests of the weights and images, the
paths and the float64 logits - no weights, so it stays small. The tests regenerate the weights
from the seeds and check the digests first, so a change in NumPy's random streams shows up as
such rather than as a logit mismatch.
"""
from __future__ import annotations

import json
import os
import sys
import types

import numpy as np
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from random_weights import digest, make_images, make_weights  # noqa: E402

COMMAND = "/opt/timmenv/bin/python tests/reference/make_timm_reference.py"
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "timm_reference.npz")
BATCH = 2


def _custom_model():
    return VisionTransformer(img_size=32, patch_size=4, in_chans=1, num_classes=10, embed_dim=96,
                             depth=6, num_heads=3, mlp_ratio=2.0)


def _custom_distilled_model():
    from timm.models.deit import VisionTransformerDistilled
    return VisionTransformerDistilled(img_size=48, patch_size=8, in_chans=3, num_classes=7, embed_dim=64,
                                      depth=4, num_heads=2, mlp_ratio=3.0)


# name -> (builder, weight seed, image seed, paths)
CASES = {
    "deit_tiny_patch16_224": (
        lambda: timm.create_model("deit_tiny_patch16_224", pretrained=False), 1, 101,
        [[1] * 12, [1, 0] * 6, [1, 1, 1] + [0] * 9, [0] * 12]),
    "deit_tiny_distilled_patch16_224": (
        lambda: timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False), 2, 102,
        [[1] * 12, [0, 1] * 6, [1] * 6 + [0] * 6]),
    "custom_img32_patch4_dim96_depth6_chans1": (
        _custom_model, 3, 103,
        [[1] * 6, [1, 0, 1, 0, 1, 0], [0, 0, 1, 1, 0, 0], [0] * 6]),
    "custom_distilled_img48_patch8_dim64_depth4": (
        _custom_distilled_model, 4, 104,
        [[1] * 4, [1, 0, 0, 1], [0, 1, 1, 0]]),
}


def _config(model) -> dict:
    """The model's shape as pivot.ViTConfig fields, read from the built timm module."""
    block = model.blocks[0]
    patch = model.patch_embed.proj.kernel_size
    assert patch[0] == patch[1]
    return dict(
        img_size=int(model.patch_embed.img_size[0]), patch_size=int(patch[0]),
        in_chans=int(model.patch_embed.proj.in_channels), num_classes=int(model.num_classes),
        embed_dim=int(model.embed_dim), depth=len(model.blocks), num_heads=int(block.attn.num_heads),
        mlp_ratio=block.mlp.fc1.out_features / model.embed_dim,
        distilled=hasattr(model, "dist_token"), norm_eps=float(model.norm.eps),
    )


def _skip_attention(block):
    def forward(self, x, *args, **kwargs):
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
    block.forward = types.MethodType(forward, block)


def _run(model_builder, weights, images, path):
    model = model_builder().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    for block, active in zip(model.blocks, path):
        if not active:
            _skip_attention(block)
    with torch.no_grad():
        logits = model(torch.from_numpy(images))
    assert logits.shape == (images.shape[0], model.num_classes), logits.shape
    return logits.double().numpy()


def main():
    torch.set_num_threads(1)
    out = {
        "command": np.array(COMMAND),
        "timm_version": np.array(timm.__version__),
        "torch_version": np.array(torch.__version__),
        "numpy_version": np.array(np.__version__),
        "cases": np.array(json.dumps(list(CASES))),
    }
    for name, (builder, weight_seed, image_seed, paths) in CASES.items():
        model = builder().eval()
        config = _config(model)
        shapes = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        assert all(len(p) == config["depth"] for p in paths)
        weights = make_weights({k: tuple(s) for k, s in shapes}, weight_seed)
        images = make_images(BATCH, config["in_chans"], config["img_size"], image_seed)
        logits = np.stack([_run(builder, weights, images, path) for path in paths])
        print(f"{name}: config {config}, {len(shapes)} tensors, logits {logits.shape}, "
              f"|logits| max {np.abs(logits).max():.3f}, full-vs-skip max diff "
              f"{np.abs(logits[1:] - logits[:1]).max():.3f}")
        out[f"{name}/config"] = np.array(json.dumps(config))
        out[f"{name}/shapes"] = np.array(json.dumps(shapes))
        out[f"{name}/weight_seed"] = np.array(weight_seed)
        out[f"{name}/image_seed"] = np.array(image_seed)
        out[f"{name}/batch"] = np.array(BATCH)
        out[f"{name}/weights_digest"] = np.array(digest(weights))
        out[f"{name}/images_digest"] = np.array(digest({"images": images}))
        out[f"{name}/paths"] = np.array(paths, dtype=np.uint8)
        out[f"{name}/logits"] = logits
    np.savez_compressed(OUTPUT, **out)
    print(f"wrote {OUTPUT} ({os.path.getsize(OUTPUT)} bytes)")


if __name__ == "__main__":
    main()
