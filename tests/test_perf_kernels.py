"""The packed-weight GEMM with fused epilogues (csrc/gemm.c) against its NumPy reference, on the
AMX and AVX-512 paths and on the portable fallbacks, and the engine with and without packed weights."""
import math

import numpy as np
import pytest

import pivot
from pivot import _core
from pivot.reference import engine as ref

START_LEVEL = _core.simd_level()     # the level in effect (PIVOT_SIMD may cap it), restored after this module
MAX_LEVEL = _core.set_simd_level(3)  # the level the CPU allows (restored after each test)
AVX512, AMX = MAX_LEVEL >= 2, MAX_LEVEL >= 3
STORE, GELU, RESIDUAL = 0, 1, 2
LEVELS = {"amx": 3, "avx512": 2, "avx2": 1, "portable": 0}


@pytest.fixture(autouse=True, scope="module")
def _restore_start_level():
    """Later test modules run at the level they were started with, not at the CPU's maximum."""
    yield
    _core.set_simd_level(START_LEVEL)


def _at_level(name):
    want = LEVELS[name]
    if want > MAX_LEVEL:
        pytest.skip(f"CPU without {name}")
    _core.set_simd_level(want)
    return want


@pytest.fixture(params=["amx", "avx512", "avx2", "portable"])
def level(request):
    """Runs a Linear test on the AMX kernel, the AVX-512 kernels, AVX2 and the portable code (each
    skipped where the CPU lacks it)."""
    yield _at_level(request.param)
    _core.set_simd_level(MAX_LEVEL)


def _assert_linear_close(got, want, inp, weight, level, err_msg=""):
    """AMX (bf16x3) is held to 2e-5 of sum |a||w| per output (csrc/gemm.c: ~2^-16 per product);
    the fp32 paths to 2e-5 relative and absolute."""
    if level == 3:
        bound = 2e-5 * (np.abs(inp).astype(np.float64) @ np.abs(weight).T.astype(np.float64)) + 1e-6
        assert (np.abs(got - want) <= bound).all(), f"{err_msg}: max error {np.abs(got - want).max()}"
    else:
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=err_msg)


def _linear(inp, weight, bias, epilogue, residual=None, capture=False, scale=1.0, packed=None, use_weight=True):
    return _core.linear_forward(inp, weight if use_weight else None, bias, epilogue, residual, capture, scale,
                                packed, weight.shape[0])


def _reference(inp, weight, bias, epilogue, residual=None, scale=1.0):
    acc = ref.linear(inp, weight, bias)
    if epilogue == GELU:
        return ref.gelu(acc), None
    if epilogue == RESIDUAL:
        return residual.astype(np.float64) + acc * scale, acc
    return acc, None


def _pack_at(name, w):
    """gemm_pack(w) with the kernel level `name` in effect (the layout depends on it)."""
    _at_level(name)
    try:
        return _core.gemm_pack(w)
    finally:
        _core.set_simd_level(MAX_LEVEL)


def test_pack_layout_is_column_panels_zero_padded(rng):
    w = rng.standard_normal((37, 5), dtype=np.float32)
    packed = _pack_at("avx512", w)
    assert packed.shape == (64 * 32,)                    # columns to 64, in-features to 32
    panels = packed.reshape(2, 32, 32)                   # (panel, in, column)
    np.testing.assert_array_equal(panels[0][:5], w[:32].T)
    np.testing.assert_array_equal(panels[1][:5, :5], w[32:].T)
    assert not panels[1][:5, 5:].any() and not panels[:, 5:].any()


def _bf16(x):
    """float32 -> bf16 bits, round to nearest even (finite inputs)."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def _bf16_float(h):
    return (h.astype(np.uint32) << 16).view(np.float32)


def test_amx_pack_layout_is_bf16_hi_lo_vnni_tiles(rng):
    w = rng.standard_normal((37, 40), dtype=np.float32)
    packed = _pack_at("amx", w)
    assert packed.shape == (64 * 64,)                    # same size as the fp32 panels
    tiles = packed.view(np.uint16).reshape(2, 2, 4, 16, 16, 2)  # panel, k-block, tile, pair, column, k in pair
    wp = np.zeros((64, 64), np.float32)
    wp[:37, :40] = w
    hi = _bf16(wp)
    lo = _bf16(wp - _bf16_float(hi))
    for p in range(2):
        for kb in range(2):
            for t, (src, half) in enumerate([(hi, 0), (hi, 1), (lo, 0), (lo, 1)]):
                cols = slice(32 * p + 16 * half, 32 * p + 16 * half + 16)
                want = src[cols, 32 * kb:32 * kb + 32].T.reshape(16, 2, 16).transpose(0, 2, 1)
                np.testing.assert_array_equal(tiles[p, kb, t], want)
    split = _bf16_float(hi) + _bf16_float(lo)
    assert np.abs(split - wp).max() <= 2.0 ** -16 * np.abs(wp).max()


# rows 7-9 / 13-15 / 25-27 / 98 / 99: the AVX2 path shares a 1-3 row remainder with the block before
# it (4+3, 4+4, 5+4), the AVX-512 path with its 12-row block (7+6, 7+7, 8+7); columns not multiples
# of 16 and odd row counts reach the masked GELU rows
@pytest.mark.parametrize("N, IC, OC", [(1, 1, 1), (5, 7, 33), (13, 16, 32), (25, 64, 70), (197, 384, 96), (12, 40, 17),
                                       (7, 33, 48), (8, 5, 16), (9, 24, 80), (14, 1, 40), (15, 24, 40), (27, 32, 64),
                                       (98, 96, 72), (99, 40, 20)])
@pytest.mark.parametrize("epilogue", [STORE, GELU, RESIDUAL])
def test_linear_matches_reference_on_every_path(rng, level, N, IC, OC, epilogue):
    inp = rng.standard_normal((N, IC), dtype=np.float32)
    w = (rng.standard_normal((OC, IC)) / math.sqrt(IC)).astype(np.float32)
    b = rng.standard_normal(OC, dtype=np.float32)
    res = rng.standard_normal((N, OC), dtype=np.float32) if epilogue == RESIDUAL else None
    want, want_branch = _reference(inp, w, b, epilogue, res, 0.5)
    packed = _core.gemm_pack(w)
    runs = {"plain (OpenBLAS + epilogue pass)": dict(),
            "packed kernel": dict(packed=packed, use_weight=False)}
    for name, kw in runs.items():
        out = _linear(inp, w, b, epilogue, res, epilogue == RESIDUAL, 0.5, **kw)
        got, branch = out if epilogue == RESIDUAL else (out, None)
        kernel_level = level if kw else 0
        _assert_linear_close(got, want, inp, w, kernel_level, name)
        if branch is not None:
            _assert_linear_close(branch, want_branch, inp, w, kernel_level, name)


def test_linear_without_bias_and_residual_scale_one(rng, level):
    inp = rng.standard_normal((30, 48), dtype=np.float32)
    w = rng.standard_normal((64, 48), dtype=np.float32)
    res = rng.standard_normal((30, 64), dtype=np.float32)
    before = res.copy()
    got = _linear(inp, w, None, RESIDUAL, res, packed=_core.gemm_pack(w), use_weight=False)
    _assert_linear_close(got, res + ref.linear(inp, w), inp, w, level)
    np.testing.assert_array_equal(res, before)  # the binding works on a copy


def _gelu_through_kernel(x):
    """GELU of x by the packed kernel's epilogue: an identity weight makes the product exact (the
    elementwise tests run at levels 0-2, `vector_simd_level`: under AMX's bf16x3 split it is not)."""
    n = x.size
    cols = 32
    rows = -(-n // cols)
    inp = np.zeros(rows * cols, np.float32)
    inp[:n] = x
    eye = np.eye(cols, dtype=np.float32)
    out = _core.linear_forward(inp.reshape(rows, cols), None, None, GELU, None, False, 1.0, _core.gemm_pack(eye), cols)
    return out.ravel()[:n]


def test_gelu_epilogue_accuracy_dense_grid(vector_simd_level):
    """The documented accuracy (csrc/gemm.c) against float64 erf GELU on every float of [-10, 10)
    with step 2^-12: abs error <= 4e-7; relative <= 1.5e-6 for x >= -3, <= 1e-5 below (where
    |gelu| < 4e-3 and float32 rounding of the exp argument dominates); the engine's own GELU
    (gelu_forward) does no better. Deep in the tail (underflow) abs error < 1e-37."""
    x = np.arange(-10.0, 10.0, 2.0 ** -12, dtype=np.float32)
    got = _gelu_through_kernel(x).astype(np.float64)
    want = 0.5 * x.astype(np.float64) * np.array([math.erfc(-v / math.sqrt(2.0)) for v in x.astype(np.float64)])
    err = np.abs(got - want)
    rel = err / np.abs(want).clip(1e-300)
    assert err.max() <= 4e-7
    assert rel[x >= -3].max() <= 1.5e-6
    assert rel[x < -3].max() <= 1e-5
    tail = np.array([-13.0, -20.0, -40.0], np.float32)
    tail_want = 0.5 * tail.astype(np.float64) * np.array([math.erfc(-v / math.sqrt(2.0)) for v in tail.astype(np.float64)])
    assert np.abs(_gelu_through_kernel(tail) - tail_want).max() < 1e-37


def test_gelu_epilogue_special_values(vector_simd_level):
    # one value per row through a 1x1 identity: a NaN or inf must not meet another column
    x = np.array([np.nan, np.inf, 0.0, -0.0, 60.0, -60.0, 1e-30, -np.inf], np.float32)
    got = _core.linear_forward(x.reshape(-1, 1), None, None, GELU, None, False, 1.0,
                               _core.gemm_pack(np.ones((1, 1), np.float32)), 1).ravel()
    assert np.isnan(got[0])
    assert got[1] == np.inf and got[2] == 0.0 and got[3] == 0.0
    assert got[4] == 60.0 and got[5] == 0.0 and abs(got[6] - 5e-31) < 1e-36
    assert np.isnan(got[7]) or got[7] == 0.0  # as the engine's gelu_forward: never a finite nonzero


def test_gelu_epilogue_agrees_with_engine_gelu(rng, vector_simd_level):
    x = (rng.standard_normal(4096) * 4).astype(np.float32)
    np.testing.assert_allclose(_gelu_through_kernel(x), _core.gelu_forward(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("C", [1, 15, 16, 31, 63, 64, 65, 200, 1536])
def test_gelu_rows_equal_the_epilogue_gelu(rng, vector_simd_level, C):
    """The row kernel (the int8 MLP's GELU; four vectors at a time where a row allows) gives the
    bits of the fp32 GEMM's GELU epilogue at every level and row width."""
    x = (rng.standard_normal((3, C)) * 4).astype(np.float32)  # finite: the identity product mixes columns
    x.reshape(-1)[:4] = [-30.0, 30.0, 0.0, -0.0][:x.size]
    np.testing.assert_array_equal(_core.gelu_fast(x), _gelu_through_kernel(x.ravel()).reshape(x.shape))


def test_linear_rejects_bad_arguments(rng):
    inp = rng.standard_normal((4, 8), dtype=np.float32)
    w = rng.standard_normal((16, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="epilogue"):
        _core.linear_forward(inp, w, None, 3, None, False, 1.0, None, 16)
    with pytest.raises(ValueError, match="residual"):
        _core.linear_forward(inp, w, None, RESIDUAL, None, False, 1.0, None, 16)
    with pytest.raises(ValueError, match="capture"):
        _core.linear_forward(inp, w, None, STORE, None, True, 1.0, None, 16)
    with pytest.raises(ValueError, match="weight"):
        _core.linear_forward(inp, w[:, :7].copy(), None, STORE, None, False, 1.0, None, 16)
    with pytest.raises(ValueError, match="packed"):
        _core.linear_forward(inp, None, None, STORE, None, False, 1.0, np.zeros(10, np.float32), 16)
    with pytest.raises(ValueError, match="weight or packed"):
        _core.linear_forward(inp, None, None, STORE, None, False, 1.0, None, 16)
    with pytest.raises(TypeError, match="float32"):
        _core.linear_forward(inp.astype(np.float64), w, None, STORE, None, False, 1.0, None, 16)
    with pytest.raises(ValueError, match="level"):
        _core.set_simd_level(4)


def test_sgemm_nt_matches_numpy(rng):
    a = rng.standard_normal((9, 20), dtype=np.float32)
    b = rng.standard_normal((7, 20), dtype=np.float32)
    np.testing.assert_allclose(_core.sgemm_nt(a, b), a.astype(np.float64) @ b.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("N, C", [(1, 1), (3, 15), (4, 16), (7, 197), (2, 384)])
def test_softmax_fast_matches_reference(rng, vector_simd_level, N, C):
    x = (rng.standard_normal((N, C)) * 5).astype(np.float32)
    np.testing.assert_allclose(_core.softmax_fast(x), ref.softmax(x), rtol=2e-6, atol=1e-8)


def test_softmax_fast_large_values_and_nan(vector_simd_level):
    x = np.array([[1000.0, 999.0, -1000.0] + [0.0] * 14, [1.0, np.nan] + [0.0] * 15], np.float32)
    got = _core.softmax_fast(x)
    np.testing.assert_allclose(got[0], ref.softmax(x[:1])[0], atol=1e-7)
    assert np.isnan(got[1]).all()


def test_softmax_fast_rows_together_equal_rows_alone(rng, vector_simd_level):
    """The vector kernels take rows four at a time; each row's result is bit for bit that of the
    row alone, and a NaN row inside a block of four leaves the other three finite."""
    x = (rng.standard_normal((11, 197)) * 5).astype(np.float32)
    x[0, :3] = [1000.0, 999.0, -1000.0]
    x[2, 7] = np.nan
    x[5, 100] = np.inf
    got = _core.softmax_fast(x)
    for i in range(len(x)):
        np.testing.assert_array_equal(got[i], _core.softmax_fast(x[i:i + 1])[0], err_msg=f"row {i}")
    assert np.isnan(got[2]).all() and np.isnan(got[5]).all()
    finite = [i for i in range(len(x)) if i not in (2, 5)]
    np.testing.assert_allclose(got[finite], ref.softmax(x[finite]), rtol=2e-6, atol=1e-8)


@pytest.mark.parametrize("N, C", [(1, 1), (3, 15), (5, 33), (4, 384)])
def test_layernorm_fast_matches_reference(rng, vector_simd_level, N, C):
    x = rng.standard_normal((N, C), dtype=np.float32)
    w = rng.standard_normal(C, dtype=np.float32)
    b = rng.standard_normal(C, dtype=np.float32)
    np.testing.assert_allclose(_core.layernorm_fast(x, w, b, 1e-6), ref.layernorm(x, w, b, 1e-6), rtol=1e-5, atol=1e-5)


def test_layernorm_fast_offset_rows_and_constant_row(rng, vector_simd_level):
    # two-pass statistics: a large common offset does not cancel the variance away
    x = (rng.standard_normal((3, 384)) + 1000.0).astype(np.float32)
    w, b = np.ones(384, np.float32), np.zeros(384, np.float32)
    np.testing.assert_allclose(_core.layernorm_fast(x, w, b, 1e-6), ref.layernorm(x, w, b, 1e-6), atol=2e-3)
    const = np.full((1, 16), 3.0, np.float32)
    np.testing.assert_allclose(_core.layernorm_fast(const, w[:16], b[:16] + 0.5, 1e-5), 0.5, atol=1e-6)


# ---------------------------------------------------------------- whole model
def _small_model(distilled=False):
    cfg = pivot.ViTConfig(img_size=32, patch_size=8, embed_dim=48, depth=3, num_heads=3, mlp_ratio=100 / 48,
                          num_classes=10, distilled=distilled)
    return pivot.ViT.random(cfg, seed=1)


@pytest.mark.parametrize("distilled", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_model_packed_equals_plain_and_reference(rng, distilled, threads):
    model = _small_model(distilled)
    images = rng.standard_normal((3, 3, 32, 32), dtype=np.float32)
    path = np.array([1, 0, 1], np.uint8)
    want = ref.forward(model.config, model.state_dict(), images, path)
    _core.set_simd_level(0)
    try:
        assert model._packed() is None
        plain = model(images, path=path, threads=threads)
        plain_inter = model.forward_branches(images, path=path, threads=threads)
    finally:
        _core.set_simd_level(MAX_LEVEL)
    fast = model(images, path=path, threads=threads)
    fast_inter = model.forward_branches(images, path=path, threads=threads)
    np.testing.assert_allclose(plain, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fast, want, rtol=1e-4, atol=1e-4)
    for a, b in zip(plain_inter[2] + [x for x in plain_inter[1] if x is not None],
                    fast_inter[2] + [x for x in fast_inter[1] if x is not None]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    if AVX512:
        assert model._packed() is not None
        assert model.with_path([1, 1, 1])._packed() is model._packed()  # shared, packed once


@pytest.mark.parametrize("heads", [3, 6])  # head dim 16 and 8 (probabilities @ V narrower than a tile)
@pytest.mark.parametrize("path", [[1, 0, 1], [1, 2, 1]])
def test_model_every_level_matches_reference(rng, path, heads):
    """Every SIMD level of this CPU (packed Linears; attention's q k^T and probabilities @ V on the
    AVX2 / AVX-512 micro-tiles, with a token count that leaves a partial 16-column block) against the
    NumPy reference (all-active and skip paths) or the portable level (reuse, itself held to the
    reference by tests/test_modes_engine.py)."""
    model = _small_model()
    model = pivot.ViT.random(model.config.replace(num_heads=heads), seed=1)
    images = rng.standard_normal((2, 3, 32, 32), dtype=np.float32)
    assert model.config.num_tokens % 16 != 0
    try:
        if 2 in path:
            _core.set_simd_level(0)
            want = model(images, path=path, threads=1)
        else:
            want = ref.forward(model.config, model.state_dict(), images, np.array(path, np.uint8))
        for lv in range(MAX_LEVEL + 1):
            _core.set_simd_level(lv)
            got = model(images, path=path, threads=2)
            tol = 2e-4 if lv == 3 else 1e-4
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"level {lv}")
    finally:
        _core.set_simd_level(MAX_LEVEL)


def test_vit_forward_rejects_wrong_packed_size(rng):
    model = _small_model()
    images = rng.standard_normal((1, 3, 32, 32), dtype=np.float32)
    with pytest.raises(ValueError, match="packed"):
        _core.vit_forward(images, model._params, model.config, model.path, 1, packed=np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="packed"):
        _core.vit_forward(images, model._params, model.config, model.path, 1, packed=[1.0])


def test_vit_pack_matches_gemm_pack_per_layer():
    model = _small_model()
    packed = _core.vit_pack(model._params, model.config)
    sd = model.state_dict()
    parts = [sd["patch_embed.proj.weight"].reshape(48, -1)]
    for i in range(3):
        parts += [sd[f"blocks.{i}.attn.qkv.weight"], sd[f"blocks.{i}.attn.proj.weight"],
                  sd[f"blocks.{i}.mlp.fc1.weight"], sd[f"blocks.{i}.mlp.fc2.weight"]]
    np.testing.assert_array_equal(packed, np.concatenate([_core.gemm_pack(np.ascontiguousarray(w)) for w in parts]))
