"""The timm VisionTransformer fields beyond DeiT's (prefix tokens, no_embed_class, pooling,
fc_norm, norm_pre, layer scale, qk_norm, activations, biases off, headless) on the C engine at
every SIMD level, against the NumPy reference and the PyTorch twin (timm itself: test_timm_family.py)."""
from __future__ import annotations

import numpy as np
import pytest

import pivot
from pivot._native import _core
from pivot.reference import engine as ref

BASE = pivot.ViTConfig(depth=3, embed_dim=64, num_heads=4, img_size=32, patch_size=8, num_classes=10)
VARIANTS = {
    "registers": dict(reg_tokens=3),
    "no_class_token_avg": dict(class_token=False, global_pool="avg"),
    "no_embed_class": dict(no_embed_class=True, reg_tokens=2),
    "layer_scale": dict(layer_scale=True),
    "max_fc_norm": dict(global_pool="max", fc_norm=True),
    "avgmax": dict(global_pool="avgmax"),
    "map": dict(global_pool="map"),
    "map_registers": dict(global_pool="map", class_token=False, reg_tokens=4),
    "clip": dict(norm_pre=True, act="quick_gelu", patch_bias=False),
    "gelu_tanh_no_qkv_bias": dict(act="gelu_tanh", qkv_bias=False),
    "qk_norm": dict(qk_norm=True),
    "headless": dict(num_classes=0),
    "dinov2_like": dict(num_classes=0, global_pool="avg", fc_norm=True, class_token=False, reg_tokens=4,
                        layer_scale=True, qk_norm=True, no_embed_class=True),
    "radio_like_no_final_norm": dict(final_norm=False, reg_tokens=3, no_embed_class=True, layer_scale=True),
    "floored_grid": dict(img_size=38),
    "map_include_prefix": dict(global_pool="map", pool_include_prefix=True, class_token=False, reg_tokens=1),
    "avg_include_prefix": dict(global_pool="avg", pool_include_prefix=True, fc_norm=True, reg_tokens=2),
    "scale_norms": dict(scale_attn_norm=True, scale_mlp_norm=True, layer_scale=True),
    "rmsnorm": dict(norm_layer="rmsnorm", reg_tokens=1, global_pool="avg", fc_norm=True, layer_scale=True),
    "rmsnorm_every_norm": dict(norm_layer="rmsnorm", norm_pre=True, qk_norm=True, scale_attn_norm=True,
                               scale_mlp_norm=True, global_pool="map"),
    "aimv2_like": dict(norm_layer="rmsnorm", mlp_layer="swiglu", act="silu", proj_bias=False, qkv_bias=False,
                       patch_norm=True, class_token=False, global_pool="avg", mlp_ratio=2.75),
    "swiglu_bias_norm": dict(mlp_layer="swiglu", act="silu", scale_mlp_norm=True, layer_scale=True),
    "silu_patch_norm": dict(act="silu", patch_norm=True, proj_bias=False),
    "rmsnorm_odd_widths": dict(norm_layer="rmsnorm", embed_dim=72, mlp_ratio=2.5, qk_norm=True, scale_mlp_norm=True),
}


def _model(config):
    """Random weights with LayerNorms and layer scales away from 1 / 0, so a missing one shows."""
    state = pivot.ViT.random(config, seed=1).state_dict()
    rng = np.random.default_rng(2)
    for key, value in state.items():
        if key.endswith("gamma") or ("norm" in key and key.endswith("weight")):
            state[key] = (1 + 0.3 * rng.standard_normal(value.shape)).astype(np.float32)
        elif "norm" in key and key.endswith("bias"):
            state[key] = (0.1 * rng.standard_normal(value.shape)).astype(np.float32)
    return pivot.ViT(config, state), state


@pytest.fixture
def images():
    return np.random.default_rng(0).standard_normal((2, 3, 40, 40)).astype(np.float32)


def _sized(images, config):
    return np.ascontiguousarray(images[:, :, :config.img_size, :config.img_size])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_level_matches_the_reference(name, images):
    config = BASE.replace(**VARIANTS[name])
    model, state = _model(config)
    images = _sized(images, config)
    start = _core.simd_level()
    try:
        for level in range(start + 1):
            _core.set_simd_level(level)
            for path in ([1, 1, 1], [1, 0, 1], [0, 0, 0]):
                want = ref.forward(config, state, images, path)
                got = model(images, path=path, threads=2)
                assert got.shape == (2, config.num_features)
                assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max()), (level, path)
    finally:
        _core.set_simd_level(start)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_captures_and_reuse(name, images):
    config = BASE.replace(**VARIANTS[name])
    model, state = _model(config)
    images = _sized(images, config)
    logits, attn, mlp = model.forward_branches(images, path=[1, 0, 1])
    want, want_attn, want_mlp = ref.forward_branches(config, state, images, [1, 0, 1])
    assert attn[1] is None
    for got_b, want_b in zip([attn[0], attn[2]] + mlp, [want_attn[0], want_attn[2]] + want_mlp):
        assert np.abs(got_b - want_b).max() <= 1e-4 * max(1.0, np.abs(want_b).max())
    assert np.isfinite(model(images, path=[1, 2, 0])).all()  # reuse runs on every family


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_torch_twin(name, images):
    torch = pytest.importorskip("torch")
    import pivot.torch as pt
    config = BASE.replace(**VARIANTS[name])
    model, _ = _model(config)
    images = _sized(images, config)
    module = pt.from_vit(model)
    for path in ([1, 1, 1], [1, 0, 2]):
        with torch.no_grad():
            want = module(torch.from_numpy(images), path=path).numpy()
        assert np.abs(model(images, path=path) - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    assert np.array_equal(pt.to_vit(module)(images), model(images))


def test_save_load_keeps_the_new_fields(tmp_path, images):
    config = BASE.replace(**VARIANTS["dinov2_like"])
    model, _ = _model(config)
    images = _sized(images, config)
    model.save(tmp_path / "m.safetensors")
    back = pivot.ViT.from_timm(tmp_path / "m.safetensors")
    assert back.config == config
    assert np.array_equal(back(images), model(images))


@pytest.mark.parametrize("fields", [dict(layer_scale=True), dict(scale_attn_norm=True), dict(scale_mlp_norm=True),
                                    dict(final_norm=False), dict(norm_layer="rmsnorm"),
                                    dict(mlp_layer="swiglu", act="silu"), dict(patch_norm=True), dict(proj_bias=False)])
def test_int8_refuses_the_new_fields(fields):
    model, _ = _model(BASE.replace(**fields))
    with pytest.raises(ValueError, match="int8"):
        pivot.quantize(model, np.zeros((2, 3, 32, 32), np.float32))


def test_floored_grid_ignores_the_last_pixels(images):
    config = BASE.replace(img_size=38)  # 4 x 4 patches of 8 px; the last 6 rows and columns unread
    model, _ = _model(config)
    x = _sized(images, config)
    y = x.copy()
    y[:, :, 32:, :] = 7.0
    y[:, :, :, 32:] = -7.0
    assert config.num_patches == 16
    assert np.array_equal(model(x), model(y))


@pytest.mark.parametrize("fields, match", [
    (dict(class_token=False), "needs a prefix token"),
    (dict(global_pool="mean"), "global_pool"),
    (dict(act="relu"), "act"),
    (dict(norm_layer="batchnorm"), "norm_layer"),
    (dict(mlp_layer="glu"), "mlp_layer"),
    (dict(mlp_layer="swiglu", global_pool="map"), "swiglu"),
    (dict(reg_tokens=-1), "reg_tokens"),
    (dict(distilled=True, global_pool="avg"), "distilled"),
    (dict(fc_norm=True, final_norm=False), "final_norm"),
    (dict(stem="lvvit_conv", img_size=36), "multiple"),
])
def test_bad_fields_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        BASE.replace(**fields)
