"""Each C kernel of the engine against the NumPy float64 reference (pivot/reference/engine.py)."""
import numpy as np
import pytest

import pivot
from pivot import _core
from pivot.reference import engine as ref

from engine_util import block_flat, block_weights, random_weights, SMALL


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def rel_err(got, want):
    want = np.asarray(want, np.float64)
    return np.abs(got - want).max() / max(1.0, np.abs(want).max())


# ---------------------------------------------------------------- layernorm
@pytest.mark.parametrize("N,C", [(1, 1), (1, 7), (3, 5), (17, 48), (197, 384), (4, 1001)])
def test_layernorm_matches_reference(rng, N, C):
    x, w, b = f32(rng.standard_normal((N, C))), f32(rng.standard_normal(C)), f32(rng.standard_normal(C))
    got = _core.layernorm_forward(x, w, b, 1e-6)
    assert got.shape == (N, C) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref.layernorm(x, w, b, 1e-6), rtol=1e-5, atol=1e-5)


def test_layernorm_large_magnitude_and_offset(rng):
    # a large common offset cancels in a two-pass mean/variance; a one-pass sum of squares would not
    x = f32(1e4 + rng.standard_normal((8, 384)) * 3.0)
    w, b = np.ones(384, np.float32), np.zeros(384, np.float32)
    got = _core.layernorm_forward(x, w, b, 1e-6)
    np.testing.assert_allclose(got, ref.layernorm(x, w, b, 1e-6), atol=2e-3)
    big = f32(rng.standard_normal((4, 64)) * 1e6)
    np.testing.assert_allclose(_core.layernorm_forward(big, w[:64], b[:64], 1e-6),
                               ref.layernorm(big, w[:64], b[:64], 1e-6), rtol=1e-4, atol=1e-4)


def test_layernorm_constant_row_uses_eps():
    x = np.full((2, 16), 3.0, np.float32)
    w, b = np.ones(16, np.float32), np.full(16, 0.5, np.float32)
    np.testing.assert_allclose(_core.layernorm_forward(x, w, b, 1e-5), 0.5, atol=1e-6)


def test_layernorm_rejects_bad_shapes(rng):
    x = f32(rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="weight"):
        _core.layernorm_forward(x, np.ones(4, np.float32), np.zeros(5, np.float32), 1e-6)
    with pytest.raises(TypeError, match="float32"):
        _core.layernorm_forward(x.astype(np.float64), np.ones(5, np.float32), np.zeros(5, np.float32), 1e-6)


# ---------------------------------------------------------------- gelu
def test_gelu_matches_reference(rng):
    x = f32(np.concatenate([rng.standard_normal(1000) * 3, np.linspace(-12, 12, 241), [0.0, -0.0, 1e-30, 50, -50]]))
    got = _core.gelu_forward(x)
    np.testing.assert_allclose(got, ref.gelu(x), rtol=2e-6, atol=2e-7)


def test_gelu_any_shape_and_nan():
    x = f32(np.arange(-6, 6).reshape(2, 3, 2) / 2)
    assert _core.gelu_forward(x).shape == (2, 3, 2)
    out = _core.gelu_forward(f32([np.nan, 60.0, -60.0]))
    assert np.isnan(out[0]) and out[1] == 60.0 and out[2] == 0.0
    assert _core.gelu_forward(np.zeros(0, np.float32)).shape == (0,)


# ---------------------------------------------------------------- softmax
@pytest.mark.parametrize("N,C", [(1, 1), (1, 2), (5, 7), (197, 197), (3, 1000)])
def test_softmax_matches_reference(rng, N, C):
    x = f32(rng.standard_normal((N, C)) * 5)
    got = _core.softmax_forward(x)
    np.testing.assert_allclose(got, ref.softmax(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


def test_softmax_large_magnitudes_do_not_overflow(rng):
    x = f32(rng.standard_normal((4, 33)) * 1e4 + 1e30)
    x[:, 0] = 3e38
    got = _core.softmax_forward(x)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref.softmax(x), atol=1e-6)


def test_softmax_nan_propagates_to_its_row():
    x = np.zeros((2, 4), np.float32)
    x[0, 2] = np.nan
    got = _core.softmax_forward(x)
    assert np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1], 0.25)


# ---------------------------------------------------------------- attention and mlp
@pytest.mark.parametrize("B,T,C,NH", [(1, 1, 4, 1), (2, 5, 12, 3), (1, 17, 35, 5), (3, 50, 64, 4)])
def test_attention_matches_reference(rng, B, T, C, NH):
    x = f32(rng.standard_normal((B, T, C)))
    qw, qb = f32(rng.standard_normal((3 * C, C)) * 0.3), f32(rng.standard_normal(3 * C))
    pw, pb = f32(rng.standard_normal((C, C)) * 0.3), f32(rng.standard_normal(C))
    got = _core.attention_forward(x, qw, qb, pw, pb, NH)
    want = ref.attention(x, qw, qb, pw, pb, NH)
    assert rel_err(got, want) < 1e-5


def test_attention_single_token_returns_projected_value(rng):
    # with T=1 the softmax is 1, so the output is proj(v)
    C = 8
    x = f32(rng.standard_normal((2, 1, C)))
    qw, qb = f32(rng.standard_normal((3 * C, C))), f32(rng.standard_normal(3 * C))
    pw, pb = f32(rng.standard_normal((C, C))), f32(rng.standard_normal(C))
    v = x[:, 0].astype(np.float64) @ qw[2 * C:].T + qb[2 * C:]
    np.testing.assert_allclose(_core.attention_forward(x, qw, qb, pw, pb, 2)[:, 0], v @ pw.T + pb, rtol=1e-5, atol=1e-5)


def test_attention_rejects_heads_not_dividing_dim(rng):
    x = f32(rng.standard_normal((1, 3, 6)))
    with pytest.raises(ValueError, match="num_heads"):
        _core.attention_forward(x, f32(np.zeros((18, 6))), f32(np.zeros(18)), f32(np.zeros((6, 6))), f32(np.zeros(6)), 4)


@pytest.mark.parametrize("N,C,H", [(1, 1, 1), (7, 5, 13), (197, 48, 192)])
def test_mlp_matches_reference(rng, N, C, H):
    x = f32(rng.standard_normal((N, C)))
    w1, b1 = f32(rng.standard_normal((H, C)) * 0.5), f32(rng.standard_normal(H))
    w2, b2 = f32(rng.standard_normal((C, H)) * 0.5), f32(rng.standard_normal(C))
    assert rel_err(_core.mlp_forward(x, w1, b1, w2, b2), ref.mlp(x, w1, b1, w2, b2)) < 1e-5


# ---------------------------------------------------------------- block
@pytest.mark.parametrize("active", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("B", [1, 3])
def test_block_matches_reference(rng, active, threads, B):
    cfg = SMALL
    weights = random_weights(cfg)
    x = f32(rng.standard_normal((B, cfg.num_tokens, cfg.embed_dim)))
    got = _core.block_forward(x, block_flat(weights, 1), cfg.num_heads, cfg.mlp_hidden, cfg.norm_eps, active, threads)
    want, attn, _ = ref.block(x, block_weights(weights, 1), cfg.num_heads, cfg.norm_eps, active)
    assert (attn is None) == (not active)
    assert rel_err(got, want) < 1e-5


def test_block_many_rows_cross_tiles(rng):
    # 3 x 197 rows span several 256-row tiles and both threads' ranges
    C, H, NH = 16, 40, 2
    cfg = pivot.ViTConfig(img_size=224, patch_size=16, embed_dim=C, depth=1, num_heads=NH, mlp_ratio=H / C)
    weights = random_weights(cfg)
    x = f32(rng.standard_normal((3, cfg.num_tokens, C)))
    want = ref.block(x, block_weights(weights, 0), NH, 1e-6, True)[0]
    for threads in (1, 2, 3):
        got = _core.block_forward(x, block_flat(weights, 0), NH, H, 1e-6, True, threads)
        assert rel_err(got, want) < 1e-5


def test_block_skipped_ignores_attention_weights(rng):
    cfg = SMALL
    weights = random_weights(cfg)
    flat = block_flat(weights, 0)
    C = cfg.embed_dim
    garbage = flat.copy()
    garbage[: 2 * C + 3 * C * C + 3 * C + C * C + C] = np.nan  # norm1, qkv, proj
    x = f32(rng.standard_normal((2, cfg.num_tokens, C)))
    skipped = _core.block_forward(x, garbage, cfg.num_heads, cfg.mlp_hidden, 1e-6, False, 2)
    assert np.isfinite(skipped).all()
    np.testing.assert_array_equal(skipped, _core.block_forward(x, flat, cfg.num_heads, cfg.mlp_hidden, 1e-6, False, 2))
