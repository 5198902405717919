"""int8 GEMM kernels (AMX, VNNI, AVX-VNNI, AVX2, portable) and quantizers: bit for bit against pivot.reference.quant."""
import numpy as np
import pytest

from pivot import _core, quant
from pivot.reference import quant as ref

# in auto's order of preference, lowest first
KERNELS = [name for name in ("portable", "avx2", "avxvnni", "vnni", "amx")
           if _core.int8_kernel_supported(quant.KERNELS[name])]
SHAPES = [(1, 1, 1), (1, 16, 4), (3, 5, 3), (8, 32, 64), (9, 33, 65), (17, 47, 7), (37, 50, 70), (130, 200, 384),
          (20, 16, 1536), (197, 64, 197)]


def _gemm(a, zp, w, kernel, threads=1):
    return _core.int8_gemm(a, zp.astype(np.int32), _core.int8_pack(w), w.shape[0], quant.KERNELS[kernel], threads)


def test_portable_always_supported():
    assert "portable" in KERNELS
    assert quant.kernel_in_use("portable") == "portable"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("wmax", [127, 63], ids=["8bit", "7bit"])
def test_gemm_random_bit_exact(kernel, M, N, K, wmax, rng):
    # 7-bit weights, as pivot.quantize makes them: AVX2's vpmaddubsw tile instead of the 16-bit one
    a = rng.integers(0, 256, (M, K), dtype=np.uint8)
    w = rng.integers(-wmax, wmax + 1, (N, K), dtype=np.int8)
    zp = rng.integers(0, 256, M)
    np.testing.assert_array_equal(_gemm(a, zp, w, kernel), ref.int8_gemm(a, zp, w))


@pytest.mark.parametrize("kernel", KERNELS)
def test_gemm_extremes_bit_exact(kernel):
    # largest magnitudes: a = 255 with zp 0, a = 0 with zp 255, w = +-127 (and -128 in the packed kernels)
    K = 3072
    for a_val, zp_val in ((255, 0), (0, 255), (255, 255), (0, 0)):
        for w_val in (127, -127, -128):
            a = np.full((11, K), a_val, np.uint8)
            w = np.full((19, K), w_val, np.int8)
            zp = np.full(11, zp_val)
            np.testing.assert_array_equal(_gemm(a, zp, w, kernel), ref.int8_gemm(a, zp, w))


@pytest.mark.parametrize("kernel", KERNELS)
def test_gemm_7bit_extremes_bit_exact(kernel):
    # the largest int16 pair sums of the vpmaddubsw tile: 2 * 255 * +-63, and one weight of 64 (16-bit tile)
    K = 1540
    for a_val, zp_val in ((255, 0), (0, 255), (255, 255)):
        for w_val in (63, -63, 64, -64):
            a = np.full((13, K), a_val, np.uint8)
            w = np.full((35, K), w_val, np.int8)
            w[1:, :] = np.sign(w_val) * 63
            zp = np.full(13, zp_val)
            np.testing.assert_array_equal(_gemm(a, zp, w, kernel), ref.int8_gemm(a, zp, w))


def test_simd_level_caps_the_kernel(monkeypatch):
    monkeypatch.delenv("PIVOT_INT8_KERNEL", raising=False)
    start = _core.simd_level()
    try:
        level1 = "avxvnni" if "avxvnni" in KERNELS else "avx2"
        for level, best in ((0, "portable"), (1, level1), (2, "vnni"), (3, "amx")):
            if _core.set_simd_level(level) == level and best in KERNELS:
                assert quant.kernel_in_use() == best
    finally:
        _core.set_simd_level(start)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gemm_threads_agree(kernel, rng):
    a = rng.integers(0, 256, (101, 96), dtype=np.uint8)
    w = rng.integers(-127, 128, (70, 96), dtype=np.int8)
    zp = rng.integers(0, 256, 101)
    np.testing.assert_array_equal(_gemm(a, zp, w, kernel, 1), _gemm(a, zp, w, kernel, 3))


def test_kernels_agree_with_each_other(rng):
    a = rng.integers(0, 256, (45, 130), dtype=np.uint8)
    w = rng.integers(-127, 128, (77, 130), dtype=np.int8)
    zp = rng.integers(0, 256, 45)
    outs = [_gemm(a, zp, w, k) for k in KERNELS]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


@pytest.mark.parametrize("M", [1, 15, 16, 17, 31, 32, 33, 97, 197])
@pytest.mark.parametrize("N", [16, 32, 48, 70])
def test_gemm_amx_blocks_bit_exact(M, N, rng):
    """The AMX path's 32-row blocks, partial 16-row halves (copied, zero padded) and odd panel
    counts, on K = 64 and 384 (AMX) and 100 (padded K 100: the VNNI tile inside the AMX kernel)."""
    if "amx" not in KERNELS:
        pytest.skip("CPU without AMX")
    for K in (64, 100, 384):
        a = rng.integers(0, 256, (M, K), dtype=np.uint8)
        w = rng.integers(-128, 128, (N, K), dtype=np.int8)
        zp = rng.integers(0, 256, M)
        np.testing.assert_array_equal(_gemm(a, zp, w, "amx"), ref.int8_gemm(a, zp, w))


def test_gemm_empty_rows():
    w = np.ones((4, 8), np.int8)
    out = _core.int8_gemm(np.zeros((0, 8), np.uint8), np.zeros(0, np.int32), _core.int8_pack(w), 4, 0, 1)
    assert out.shape == (0, 4)


def test_gemm_bad_inputs():
    w = np.ones((4, 8), np.int8)
    packed = _core.int8_pack(w)
    a = np.zeros((2, 8), np.uint8)
    zp = np.zeros(2, np.int32)
    with pytest.raises(TypeError, match="a must have dtype"):
        _core.int8_gemm(a.astype(np.int8), zp, packed, 4, 0, 1)
    with pytest.raises(ValueError, match="zero_point"):
        _core.int8_gemm(a, np.array([0, 256], np.int32), packed, 4, 0, 1)
    with pytest.raises(ValueError, match="packed"):
        _core.int8_gemm(a, zp, packed[:-1], 4, 0, 1)
    with pytest.raises(ValueError, match="kernel"):
        _core.int8_gemm(a, zp, packed, 4, 7, 1)
    with pytest.raises(ValueError, match="threads"):
        _core.int8_gemm(a, zp, packed, 4, 0, 0)
    with pytest.raises(ValueError):
        _core.int8_pack(np.zeros((0, 4), np.int8))
    with pytest.raises(TypeError):
        _core.int8_pack(np.zeros((2, 4), np.float32))


def test_env_var_caps_the_kernel(monkeypatch):
    monkeypatch.setenv("PIVOT_INT8_KERNEL", "portable")
    assert quant.kernel_in_use() == "portable"
    if "avx2" in KERNELS:
        monkeypatch.setenv("PIVOT_INT8_KERNEL", "avx2")
        assert quant.kernel_in_use() == "avx2"
    if "avxvnni" in KERNELS:
        monkeypatch.setenv("PIVOT_INT8_KERNEL", "avxvnni")
        assert quant.kernel_in_use() == "avxvnni"
    if "vnni" in KERNELS:
        monkeypatch.setenv("PIVOT_INT8_KERNEL", "vnni")
        assert quant.kernel_in_use() == "vnni"
    monkeypatch.setenv("PIVOT_INT8_KERNEL", "amx")
    assert quant.kernel_in_use() == KERNELS[-1]
    monkeypatch.setenv("PIVOT_INT8_KERNEL", "fastest")
    with pytest.raises(ValueError, match="PIVOT_INT8_KERNEL"):
        quant.kernel_in_use()
    monkeypatch.delenv("PIVOT_INT8_KERNEL")
    assert quant.kernel_in_use() == KERNELS[-1]
    with pytest.raises(ValueError, match="kernel must be one of"):
        quant.kernel_in_use("avx512")


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (3, 17, 5), (5, 31, 6), (7, 48, 7), (9, 50, 130), (12, 64, 383)])
def test_gemm_8bit_edges_bit_exact(M, N, K, rng):
    """Every kernel against portable and the reference on full 8-bit weights with -128 and 127
    mixed in, zero points 0 and 255, K not a multiple of 4 and row / column tails."""
    a = rng.integers(0, 256, (M, K), dtype=np.uint8)
    a[0, :] = 255
    w = rng.integers(-128, 128, (N, K), dtype=np.int8)
    w[0, :], w[-1, ::2] = -128, 127
    zp = np.where(np.arange(M) % 2 == 0, 0, 255)
    want = ref.int8_gemm(a, zp, w)
    np.testing.assert_array_equal(_gemm(a, zp, w, "portable"), want)
    for kernel in KERNELS:
        np.testing.assert_array_equal(_gemm(a, zp, w, kernel), want, err_msg=kernel)


def test_level_1_kernels_and_caps(monkeypatch):
    """At SIMD level 1 (AVX2) auto runs AVX-VNNI where the CPU has it, and
    PIVOT_INT8_KERNEL=avx2 still picks the vpmaddubsw kernel; a higher cap falls to the level's best."""
    monkeypatch.delenv("PIVOT_INT8_KERNEL", raising=False)
    start = _core.simd_level()
    try:
        if _core.set_simd_level(1) != 1 or "avx2" not in KERNELS:
            pytest.skip("CPU without AVX2")
        best = "avxvnni" if "avxvnni" in KERNELS else "avx2"
        assert quant.kernel_in_use() == best
        for cap, want in (("amx", best), ("vnni", best), ("avxvnni", best), ("avx2", "avx2"), ("portable", "portable")):
            monkeypatch.setenv("PIVOT_INT8_KERNEL", cap)
            assert quant.kernel_in_use() == want, cap
    finally:
        _core.set_simd_level(start)


def _float_edges(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32) * 3
    flat = x.reshape(-1)
    flat[:8] = [np.nan, np.inf, -np.inf, 0.5, 1.5, -0.5, -2.5, 1e30]
    return x


def test_quantize_u8_bit_exact(rng):
    x = _float_edges(rng, (13, 37))
    inv = np.float32(1 / 0.05)
    for zp in (0, 17, 128, 255):
        out = _core.quantize_u8(x, np.array([inv], np.float32), np.array([zp], np.int32))
        np.testing.assert_array_equal(out, ref.quantize_u8(x, inv, zp))
    inv_rows = rng.uniform(0.5, 40, 13).astype(np.float32)
    zp_rows = rng.integers(0, 256, 13).astype(np.int32)
    out = _core.quantize_u8(x, inv_rows, zp_rows)
    np.testing.assert_array_equal(out, ref.quantize_u8(x, inv_rows[:, None], zp_rows[:, None]))
    # ties round half to even, as np.rint
    ties = np.array([[0.5, 1.5, 2.5, -0.5, -1.5]], np.float32)
    np.testing.assert_array_equal(_core.quantize_u8(ties, np.ones(1, np.float32), np.array([10], np.int32)),
                                  [[10, 12, 12, 10, 8]])


def test_quantize_u8_rows_bit_exact(rng):
    x = _float_edges(rng, (21, 50))
    x[3] = 0.0                        # an all-zero row: scale 1, zero point 0
    x[4] = np.abs(x[4]) + 1           # positive-only row: zero point 0
    x[5] = -np.abs(x[5]) - 1          # negative-only row: zero point 255
    codes, scale, zp = _core.quantize_u8_rows(x)
    r_codes, r_scale, r_zp = ref.quantize_u8_rows(x)
    np.testing.assert_array_equal(scale, r_scale)
    np.testing.assert_array_equal(zp, r_zp)
    np.testing.assert_array_equal(codes, r_codes)
    assert scale[3] == 1 and zp[3] == 0 and zp[4] == 0 and zp[5] == 255


def test_quantize_bad_inputs():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="1 or N"):
        _core.quantize_u8(x, np.ones(3, np.float32), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="zero points"):
        _core.quantize_u8(x, np.ones(1, np.float32), np.array([300], np.int32))
    with pytest.raises(TypeError):
        _core.quantize_u8(x.astype(np.float64), np.ones(1, np.float32), np.zeros(1, np.int32))
