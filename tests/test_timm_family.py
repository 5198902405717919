"""Bring your own ViT: timm's VisionTransformer family and transformers' ViT / DeiT on pivot's engine.

Needs timm (which needs a torchvision built for the installed torch; see .ci/run's second venv):
skipped, naming timm, where it is absent. The normal run checks a fixed sample that covers every
feature; the whole family (``timm.list_models()`` filtered to VisionTransformer with timm's Block
and PatchEmbed, embed_dim <= 1280) runs with ``PIVOT_TIMM_FAMILY=all python -m pytest
tests/test_timm_family.py -m slow``.
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

timm = pytest.importorskip("timm", reason="timm (with a torchvision matching torch) is not installed")
torch = pytest.importorskip("torch")

import pivot  # noqa: E402
from pivot import checkpoints  # noqa: E402

# One model per feature: plain ViT, DeiT III (layer scale, no_embed_class), DINOv2 with registers,
# CLIP (norm_pre, QuickGELU, patch bias off), SigLIP (map pooling, no class token, tanh GELU
# via so400m-like), map pooling over registers (so150m), global average pooling with fc_norm, headless (num_classes=0).
SAMPLE = [
    "vit_tiny_patch16_224",
    "deit3_small_patch16_224",
    "vit_small_patch14_reg4_dinov2",
    "vit_base_patch32_clip_quickgelu_224",
    "vit_base_patch16_siglip_224",
    "vit_so150m_patch16_reg4_map_256",
    "vit_medium_patch16_gap_256",
    "vit_small_patch8_224",
    "beit3_base_patch16_224",  # scale_attn_norm and scale_mlp_norm
    "test_vit3",  # map pooling over all tokens (pool_include_prefix)
    "test_vit2",  # dynamic_img_size (identity at the model's own size), registers, fc_norm
    "test_vit4",  # RmsNorm
]
TOL = 1e-4


def family():
    """``(name, model)`` of every family member, built one at a time (``pretrained=False,
    depth=2``, default image size)."""
    from timm.models import _registry
    from timm.models.vision_transformer import Block, VisionTransformer
    from timm.layers import PatchEmbed
    for name in timm.list_models():
        if _registry._model_to_module.get(name) not in ("vision_transformer", "deit"):
            continue
        try:
            model = _build(name)
        except Exception:  # entry points that do not take depth=2 are outside the family test
            continue
        if (type(model) is VisionTransformer and type(model.patch_embed) is PatchEmbed and model.embed_dim <= 1280
                and all(type(b) is Block for b in model.blocks)):
            yield name, model


class _NoAttention(torch.nn.Module):
    def forward(self, x, *args, **kwargs):
        return torch.zeros_like(x)


def _build(name):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(name, pretrained=False, depth=2).eval()
    # LayerNorms and layer scales away from their init, so a transposed or missing one shows
    with torch.no_grad():
        for key, p in model.named_parameters():
            if key.endswith("gamma") or (p.dim() == 1 and "norm" in key):
                p.add_(0.2 * torch.randn_like(p))
    return model


def _check(name, model=None):
    """Returns None when pivot matches timm, else the refusal message (a named feature)."""
    model = _build(name) if model is None else model
    try:
        vit = pivot.ViT.from_timm(model)
    except checkpoints.UnsupportedModelError as exc:
        return str(exc)
    cfg = vit.config
    x = torch.randn(1, cfg.in_chans, cfg.img_size, cfg.img_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(x).numpy()
    assert want.shape == (1, cfg.num_features)
    got = vit(x.numpy(), threads=2)
    scale = float(np.abs(want).max())
    assert np.abs(got - want).max() <= TOL * scale, f"{name}: all-active differs by {np.abs(got - want).max()}"
    # from the state dict: what the weights do not record passed as overrides
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    loaded = pivot.ViT.from_timm(state, num_heads=cfg.num_heads, global_pool=cfg.global_pool, act=cfg.act,
                                 norm_eps=cfg.norm_eps, img_size=cfg.img_size,
                                 pool_include_prefix=cfg.pool_include_prefix)
    assert loaded.config.replace(input_mean=None, input_std=None) == cfg.replace(input_mean=None, input_std=None)
    assert np.array_equal(loaded(x.numpy(), threads=2), got)
    # pivot.torch's twin holds timm's keys: it loads the timm weights and computes the same
    import pivot.torch as pt
    twin = pt.from_vit(vit)
    assert set(twin.state_dict()) == set(model.state_dict())
    with torch.no_grad():
        assert np.abs(twin(x).numpy() - want).max() <= TOL * scale, f"{name}: pivot.torch twin differs"
    # one encoder's attention skipped: timm with that block's attention branch removed
    model.blocks[1].attn = _NoAttention()
    with torch.no_grad():
        want = model(x).numpy()
    got = vit(x.numpy(), path=[1, 0], threads=2)
    assert np.abs(got - want).max() <= TOL * float(np.abs(want).max()), f"{name}: skipped attention differs"
    return None


@pytest.mark.parametrize("name", SAMPLE)
def test_timm_sample_matches(name):
    assert name in timm.list_models(), f"{name} is gone from timm {timm.__version__}: pick another of its feature"
    refused = _check(name)
    assert refused is None, f"{name} refused: {refused}"


# Fields no sample model of this timm uses, on timm's own VisionTransformer built small.
CONSTRUCTED = {
    "qk_norm": dict(qk_norm=True),
    "gelu_tanh": dict(act_layer="gelu_tanh"),
    "max_pool": dict(global_pool="max", class_token=False),
    "avgmax_fc_norm": dict(global_pool="avgmax", fc_norm=True),
    "no_patch_bias_norm_pre": dict(pre_norm=True),
    "headless_registers": dict(num_classes=0, reg_tokens=2, no_embed_class=True, init_values=0.1),
    "no_final_norm_radio_like": dict(final_norm=False, reg_tokens=3, no_embed_class=True, init_values=0.1),
    "floored_grid": dict(img_size=36),  # 8 px patches: timm's conv floors the grid to 4 x 4
    "avg_include_prefix": dict(global_pool="avg", pool_include_prefix=True, reg_tokens=1),
    "aimv2_like": "aimv2",  # RmsNorm (patch embedding too), SwiGLU, no proj / MLP / qkv bias
}


def _constructed_kwargs(name):
    kwargs = CONSTRUCTED[name]
    if kwargs == "aimv2":
        from functools import partial
        from timm.layers import RmsNorm, SwiGLU
        kwargs = dict(class_token=False, fc_norm=False, mlp_ratio=2.75, global_pool="avg", qkv_bias=False,
                      proj_bias=False, act_layer="silu", norm_layer=partial(RmsNorm, eps=1e-5),
                      embed_norm_layer=partial(RmsNorm, eps=1e-5), mlp_layer=SwiGLU)
    return kwargs


@pytest.mark.parametrize("name", sorted(CONSTRUCTED))
def test_timm_constructed_features_match(name):
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    kwargs = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_classes=10)
    kwargs.update(_constructed_kwargs(name))
    model = VisionTransformer(**kwargs).eval()
    with torch.no_grad():
        for key, p in model.named_parameters():
            if key.endswith("gamma") or (p.dim() == 1 and "norm" in key):
                p.add_(0.2 * torch.randn_like(p))
    assert _check(name, model) is None


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("PIVOT_TIMM_FAMILY") != "all", reason="set PIVOT_TIMM_FAMILY=all for the whole family")
def test_timm_family_matches():
    total, refused = 0, {}
    for name, model in family():
        total += 1
        try:
            message = _check(name, model)
        except AssertionError as exc:  # a mismatch: counted and shown, the rest still run
            message = f"MISMATCH {str(exc).splitlines()[0]}"
        if message is not None:
            refused[name] = message
    matched = total - len(refused)
    print(f"\n{matched} of {total} timm VisionTransformer models match (timm {timm.__version__})")
    for name, message in sorted(refused.items()):
        print(f"  refused {name}: {message}")
    assert matched >= 0.95 * total, f"only {matched} of {total} match"


def test_state_dict_without_num_heads_is_refused():
    model = _build("vit_tiny_patch16_224")
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"num_heads=.*one of \[.*3.*\]"):
        pivot.ViT.from_timm(state)


def test_refused_model_names_the_feature():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model("vit_base_patch16_rope_reg1_gap_256", pretrained=False, depth=2) \
            if "vit_base_patch16_rope_reg1_gap_256" in timm.list_models() else None
    if model is None:
        pytest.skip("this timm has no rope ViT")
    with pytest.raises(checkpoints.UnsupportedModelError, match="rope|Eva|model class"):
        pivot.ViT.from_timm(model)


# ------------------------------------------------------------------ transformers

def _hf(kind, **extra):
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    torch.manual_seed(0)
    common = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=32,
                  patch_size=8, num_labels=10, **extra)
    if kind == "vit":
        model = transformers.ViTForImageClassification(transformers.ViTConfig(**common))
    elif kind == "deit":
        model = transformers.DeiTForImageClassification(transformers.DeiTConfig(**common))
    else:
        model = transformers.DeiTForImageClassificationWithTeacher(transformers.DeiTConfig(**common))
    with torch.no_grad():
        for key, p in model.named_parameters():
            if p.dim() == 1 and "layernorm" in key:
                p.add_(0.2 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("kind,extra", [("vit", {}), ("deit", {}), ("deit_teacher", {}),
                                        ("vit", {"hidden_act": "gelu_pytorch_tanh", "qkv_bias": False})])
def test_transformers_matches(kind, extra, tmp_path):
    model = _hf(kind, **extra)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(pixel_values=x).logits.numpy()
    for source in (model, str(tmp_path)):
        if isinstance(source, str):
            model.save_pretrained(source, safe_serialization=True)
        vit = pivot.ViT.from_transformers(source)
        got = vit(x.numpy(), threads=2)
        assert np.abs(got - want).max() <= TOL * float(np.abs(want).max())
        assert vit.config.num_heads == 4


def test_transformers_directory_is_checked(tmp_path):  # no transformers needed
    with pytest.raises(ValueError, match="save_pretrained"):
        pivot.ViT.from_transformers(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "swin"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(Exception):
        pivot.ViT.from_transformers(str(tmp_path))
