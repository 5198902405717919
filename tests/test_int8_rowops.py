"""The int8 row quantizers (csrc/qgemm.c: portable, AVX2 and AVX-512 versions picked by the SIMD
level) bit for bit against pivot.reference.quant at every level this CPU has."""
import numpy as np
import pytest

from pivot import _core
from pivot.reference import quant as ref


def _edges(rng, shape):
    """Random values with NaN, infinities, ties of rint, huge values and every tail length."""
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    flat = x.reshape(-1)
    edges = np.array([np.nan, np.inf, -np.inf, 0.5, 1.5, -0.5, -2.5, 1e30, -1e30, 126.5, -127.5, 255.5], np.float32)
    flat[:min(flat.size, edges.size)] = edges[:flat.size]
    return x


@pytest.mark.parametrize("C", [1, 7, 8, 15, 16, 17, 31, 33, 197, 384])
def test_quantize_u8_every_level(vector_simd_level, C, rng):
    x = _edges(rng, (5, C))
    for inv, zp in ((1.0, 0), (1.0, 255), (np.float32(1 / 0.05), 128), (np.float32(0.37), 17)):
        got = _core.quantize_u8(x, np.array([inv], np.float32), np.array([zp], np.int32))
        np.testing.assert_array_equal(got, ref.quantize_u8(x, np.float32(inv), zp), err_msg=f"inv {inv} zp {zp}")


@pytest.mark.parametrize("C", [1, 7, 8, 15, 16, 17, 64, 197])
def test_quantize_s8_every_level(vector_simd_level, C, rng):
    x = _edges(rng, (5, C))
    for inv in (1.0, np.float32(1 / 0.05), np.float32(0.37)):
        got = _core.quantize_s8(x, float(inv))
        np.testing.assert_array_equal(got, ref.quantize_s8(x, np.float32(inv)), err_msg=f"inv {inv}")
        assert got.min() >= -127


def test_quantize_u8_rows_every_level(vector_simd_level, rng):
    x = _edges(rng, (9, 45))
    codes, scale, zp = _core.quantize_u8_rows(x)
    r_codes, r_scale, r_zp = ref.quantize_u8_rows(x)
    np.testing.assert_array_equal(codes, r_codes)
    np.testing.assert_array_equal(scale, r_scale)
    np.testing.assert_array_equal(zp, r_zp)


def test_quantize_s8_refuses_bad_input():
    with pytest.raises(ValueError):
        _core.quantize_s8(np.zeros((2, 3), np.float32), float("inf"))
    with pytest.raises(TypeError):
        _core.quantize_s8(np.zeros((2, 3), np.float64), 1.0)


@pytest.mark.parametrize("N, K", [(1, 1), (3, 5), (16, 4), (17, 7), (64, 197), (64, 200), (197, 64), (33, 130)])
def test_pack_in_place_transposed_equals_pack(N, K, rng):
    """The packing of attention's V^T (columns contiguous, 4 x 16 byte transposes) and of K (rows
    contiguous, 4-byte groups) give the same panels, column sums and largest |w|."""
    w = rng.integers(-128, 128, (N, K)).astype(np.int8)
    w.reshape(-1)[:2] = [-128, 127][:w.size]
    packed = _core.int8_pack(w)
    np.testing.assert_array_equal(_core.int8_pack(np.ascontiguousarray(w.T), True), packed)
    Np, Kp = -(-N // 16) * 16, -(-K // 4) * 4
    tail = packed[Np * Kp:].view(np.int32)
    np.testing.assert_array_equal(tail[:N], w.astype(np.int32).sum(axis=1))
    assert (tail[N:Np] == 0).all() and tail[Np] == np.abs(w.astype(np.int32)).max()
    a = rng.integers(0, 256, (5, K)).astype(np.uint8)
    zp = rng.integers(0, 256, 5).astype(np.int32)
    got = _core.int8_gemm(a, zp, _core.int8_pack(np.ascontiguousarray(w.T), True), N, 0, 1)
    np.testing.assert_array_equal(got, ref.int8_gemm(a, zp, w))
