"""Attention reuse (path value 2) and ReLU linear attention on the C engine, against the NumPy reference."""
import numpy as np
import pytest

import pivot
from pivot import _core
from pivot.config import LINEAR_ATTENTION_EPS
from pivot.reference import modes as ref

from engine_util import DISTILLED, ODD, random_images, random_weights

SIX = pivot.ViTConfig(img_size=32, patch_size=8, in_chans=3, num_classes=10, embed_dim=48, depth=6, num_heads=3)
REUSE_PATHS = [[1, 2, 2, 1, 0, 2], [0, 1, 2, 0, 2, 2], [1, 0, 0, 0, 0, 2], [1, 1, 1, 1, 1, 1]]


def close(got, want, tol=2e-4):
    want = np.asarray(want)
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(np.asarray(got, np.float64) - want).max() <= tol * scale


def branch_weights(rng, C):
    return [(rng.standard_normal(s) * 0.3).astype(np.float32) for s in ((3 * C, C), (3 * C,), (C, C), (C,))]


@pytest.mark.parametrize("B,T,C,NH", [(2, 17, 48, 3), (1, 5, 35, 5), (3, 1, 8, 1)])
def test_reuse_attention_kernel_matches_reference(rng, B, T, C, NH):
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    w = branch_weights(rng, C)
    probs = ref.attention_probs(x, w[0], w[1], NH).astype(np.float32)
    got = _core.reuse_attention_forward(x, probs, *w, NH)
    close(got, ref.reuse_attention(x, probs, *w, NH), 1e-5)
    # reusing an encoder's own probabilities is that encoder's softmax attention
    close(got, _core.attention_forward(x, *w, NH), 1e-5)


@pytest.mark.parametrize("B,T,C,NH", [(2, 17, 48, 3), (1, 5, 35, 5), (3, 1, 8, 1)])
def test_linear_attention_kernel_matches_reference(rng, B, T, C, NH):
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    w = branch_weights(rng, C)
    got = _core.linear_attention_forward(x, *w, NH, LINEAR_ATTENTION_EPS)
    close(got, ref.linear_attention(x, *w, NH), 1e-5)


def test_linear_attention_all_zero_keys_gives_proj_bias(rng):
    """phi(K) = 0 everywhere: the epsilon keeps the division finite and the heads output 0."""
    C, NH = 12, 2
    x = rng.standard_normal((1, 4, C)).astype(np.float32)
    qkv_w, qkv_b, proj_w, proj_b = branch_weights(rng, C)
    qkv_w[C:2 * C] = 0
    qkv_b[C:2 * C] = -1.0  # K = -1 -> ReLU 0
    got = _core.linear_attention_forward(x, qkv_w, qkv_b, proj_w, proj_b, NH, LINEAR_ATTENTION_EPS)
    assert np.all(np.isfinite(got))
    close(got, np.broadcast_to(proj_b, got.shape), 1e-6)


def test_linear_attention_kernel_bad_shapes(rng):
    x = rng.standard_normal((1, 4, 12)).astype(np.float32)
    w = branch_weights(rng, 12)
    with pytest.raises(ValueError, match="num_heads"):
        _core.linear_attention_forward(x, *w, 5, 1e-6)
    with pytest.raises(ValueError, match="probs"):
        _core.reuse_attention_forward(x, np.zeros((1, 2, 4, 3), np.float32), *w, 2)


@pytest.mark.parametrize("path", REUSE_PATHS)
@pytest.mark.parametrize("threads", [1, 2])
def test_reuse_model_matches_reference(path, threads):
    weights = random_weights(SIX, seed=3)
    model = pivot.ViT(SIX, weights)
    images = random_images(SIX, 3)
    logits, attn, mlp = model.forward_branches(images, path=path, threads=threads)
    want_logits, want_attn, want_mlp = ref.forward_branches(SIX, weights, images, path)
    close(logits, want_logits)
    for i, mode in enumerate(path):
        assert (attn[i] is None) == (mode == 0) == (want_attn[i] is None)
        if mode:
            close(attn[i], want_attn[i])
        close(mlp[i], want_mlp[i])
    np.testing.assert_array_equal(model(images, path=path, threads=threads), logits)


def test_reuse_changes_the_output_and_differs_from_skip():
    model = pivot.ViT(SIX, random_weights(SIX, seed=3))
    images = random_images(SIX, 2)
    full, reuse, skip = (model(images, path=p) for p in ([1] * 6, [1, 2, 2, 1, 0, 2], [1, 0, 0, 1, 0, 0]))
    assert np.abs(full - reuse).max() > 1e-3 and np.abs(reuse - skip).max() > 1e-3


@pytest.mark.parametrize("cfg", [SIX, ODD, DISTILLED], ids=["six", "odd", "distilled"])
@pytest.mark.parametrize("threads", [1, 2])
def test_linear_attention_model_matches_reference(cfg, threads):
    cfg = cfg.replace(attention="relu_linear")
    weights = random_weights(cfg, seed=4)
    model = pivot.ViT(cfg, weights)
    images = random_images(cfg, 2)
    for path in (None, [1, 0] * (cfg.depth // 2) + [1] * (cfg.depth % 2)):
        logits, attn, mlp = model.forward_branches(images, path=path, threads=threads)
        want_logits, want_attn, _ = ref.forward_branches(cfg, weights, images, path)
        close(logits, want_logits)
        for a, b in zip(attn, want_attn):
            assert (a is None) == (b is None)
            if a is not None:
                close(a, b)


def test_linear_attention_differs_from_softmax():
    weights = random_weights(SIX, seed=4)
    images = random_images(SIX, 2)
    soft = pivot.ViT(SIX, weights)(images)
    lin = pivot.ViT(SIX.replace(attention="relu_linear"), weights)(images)
    assert np.abs(soft - lin).max() > 1e-3


def test_attention_maps_and_reuse_share_probabilities():
    weights = random_weights(SIX, seed=5)
    model = pivot.ViT(SIX, weights)
    images = random_images(SIX, 2)
    path = [1, 2, 2, 1, 0, 2]
    maps = pivot.attention_maps(model, images, path=path)
    *_, want = ref.forward_branches(SIX, weights, images, path, with_probs=True)
    for got, exp in zip(maps, want):
        assert (got is None) == (exp is None)
        if got is not None:
            assert got.shape == (2, SIX.num_heads, SIX.num_tokens, SIX.num_tokens)
            # AMX's bf16x3 GEMMs keep ~2^-16 per product (csrc/gemm.c): 1.0e-5 was measured there
            close(got, exp, 5e-5 if _core.simd_level() >= 3 else 1e-5)
            np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    assert maps[1] is maps[0] and maps[5] is maps[3]


def test_invalid_paths_are_rejected():
    model = pivot.ViT(SIX, random_weights(SIX))
    images = random_images(SIX, 1)
    with pytest.raises(ValueError, match="no earlier encoder is active"):
        model(images, path=[2, 1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="no earlier encoder is active"):
        model(images, path=[0, 0, 2, 1, 1, 1])
    with pytest.raises(ValueError, match=r"or 2: reuse attention\), got \[3\]"):
        model(images, path=[1, 3, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        model(images, path=[1, -1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="softmax attention"):
        pivot.ViT(SIX.replace(attention="relu_linear"), random_weights(SIX))(images, path=[1, 2, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="softmax attention"):
        pivot.attention_maps(pivot.ViT(SIX.replace(attention="relu_linear"), random_weights(SIX)), images)
    # the C entry point checks too
    with pytest.raises(ValueError, match="every 2 after a 1"):
        _core.vit_forward(images, model._params, model.config, np.array([2, 1, 1, 1, 1, 1], np.uint8), 1)
    with pytest.raises(ValueError, match="ViTConfig.attention"):
        SIX.replace(attention="linear")


def test_normalize_path_reuse_opt_in():
    assert pivot.normalize_path([1, 2, 0], 3, allow_reuse=True).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="allow_reuse"):
        pivot.normalize_path([1, 2, 0], 3)
    with pytest.raises(ValueError, match="entry 1 reuses"):
        pivot.normalize_path([0, 2, 1], 3, allow_reuse=True)


def test_flops_ordering():
    cfg = pivot.ViTConfig.preset("deit_small_patch16_224")
    one = [1] * 12
    skip, reuse, active = (pivot.flops(cfg, one[:5] + [m] + one[6:]) for m in (0, 2, 1))
    assert skip < reuse < active
    T, C = cfg.num_tokens, cfg.embed_dim
    assert active - reuse == 2 * (2 * T * C * C + T * T * C)     # q and k projections, q k^T
    assert reuse - skip == 2 * (2 * T * C * C + T * T * C)       # v, probs x v, proj
    linear = pivot.flops(cfg.replace(attention="relu_linear"))
    assert linear < pivot.flops(cfg)
    assert pivot.flops(cfg) - linear == 12 * 2 * (2 * T * T * C - 2 * T * C * (cfg.head_dim + 1))


def test_save_and_load_keep_reuse_path_and_attention(tmp_path):
    cfg = SIX.replace(attention="relu_linear")
    model = pivot.ViT(cfg, random_weights(cfg), path=[1, 0, 1, 1, 0, 1])
    model.save(tmp_path / "m.safetensors")
    back = pivot.ViT.from_timm(tmp_path / "m.safetensors")
    assert back.config.attention == "relu_linear" and back.path.tolist() == [1, 0, 1, 1, 0, 1]
    reuse = pivot.ViT(SIX, random_weights(SIX), path=[1, 2, 2, 1, 0, 2])
    reuse.save(tmp_path / "r.safetensors")
    assert pivot.ViT.from_timm(tmp_path / "r.safetensors").path.tolist() == [1, 2, 2, 1, 0, 2]
