"""pivot.linear_cka (pivot.cka.cka) / pivot.cka_matrix and the CKA C kernels against the NumPy reference of the formulas."""
import warnings

import numpy as np
import pytest

import pivot
from pivot import _core
from pivot.reference import cka as ref

MODES = ["flatten", "cls", "mean"]


def activations(rng, n=12, t=5, c=7, offset=0.0):
    """float32 activations (exactly representable, so the reference sees the same numbers)."""
    return (rng.normal(size=(n, t, c)) + offset).astype(np.float32)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_cka_matches_reference(rng, debiased, mode):
    for _ in range(3):
        x = activations(rng, offset=rng.normal())
        y = (np.tanh(x @ rng.normal(size=(7, 7))) + 0.3 * rng.normal(size=x.shape)).astype(np.float32)
        got = pivot.linear_cka(x, y, debiased=debiased, features=mode)
        want = ref.cka(x, y, debiased, mode)
        assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_cka_matrix_matches_reference(rng, debiased, mode):
    mlp = [activations(rng, offset=k) for k in range(4)]
    attn = [activations(rng), None, (mlp[1] * 2 + activations(rng)).astype(np.float32), activations(rng)]
    got = pivot.cka_matrix(mlp, attn, debiased=debiased, features=mode)
    want = ref.cka_matrix(mlp, attn, debiased, mode)
    assert got.shape == (4, 4) and got.dtype == np.float64
    assert np.isnan(got[:, 1]).all()
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_cka_matrix_rectangular_and_none_rows(rng):
    mlp = [activations(rng), None]
    attn = [activations(rng), activations(rng), activations(rng)]
    got = pivot.cka_matrix(mlp, attn)
    assert got.shape == (2, 3)
    assert np.isnan(got[1]).all() and np.isfinite(got[0]).all()
    np.testing.assert_allclose(got[0], [ref.cka(mlp[0], a) for a in attn], atol=1e-6)


@pytest.mark.parametrize("debiased", [False, True])
def test_many_features_and_a_large_common_offset(rng, debiased):
    # P = 5000 spans three 2048-feature chunks; a large shared offset would cancel badly in
    # float32 without the mean shift.
    x = (rng.normal(size=(24, 5000)) + 300.0 * rng.normal(size=5000)).astype(np.float32)
    y = (x[:, :3000] * 0.5 + rng.normal(size=(24, 3000)) - 200.0).astype(np.float32)
    got = pivot.linear_cka(x, y, debiased=debiased)
    # The reference runs on float64 features centered first (CKA does not change): on the raw
    # ones, Song's closed form cancels catastrophically even in float64 (off by 7e-4 here).
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    assert got == pytest.approx(ref.cka(xd - xd.mean(0), yd - yd.mean(0), debiased), abs=1e-6)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_orthogonal_and_scaling_invariance(rng, debiased, mode):
    x = activations(rng, n=16, offset=1.0)
    q, _ = np.linalg.qr(rng.normal(size=(7, 7)))
    rotated = (x.astype(np.float64) @ q).astype(np.float32)  # orthogonal on every token
    assert pivot.linear_cka(x, rotated, debiased, mode) == pytest.approx(1.0, abs=1e-6)
    for c in (1e-3, 7.5, -2.0):
        assert pivot.linear_cka(x, (c * x).astype(np.float32), debiased, mode) == pytest.approx(1.0, abs=1e-6)
    assert pivot.linear_cka(x, x, debiased, mode) == pytest.approx(1.0, abs=1e-12)


def test_flatten_orthogonal_invariance_on_the_whole_feature_vector(rng):
    x = rng.normal(size=(10, 40)).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    assert pivot.linear_cka(x, (x @ q).astype(np.float32)) == pytest.approx(1.0, abs=1e-6)
    assert pivot.linear_cka(x, (x @ q).astype(np.float32), debiased=True) == pytest.approx(1.0, abs=1e-6)


def test_biased_cka_in_unit_interval_and_debiased_in_minus_one_one(rng):
    for seed in range(30):
        r = np.random.default_rng(seed)
        n = int(r.integers(4, 30))
        x = r.normal(size=(n, int(r.integers(1, 20))))
        y = r.normal(size=(n, int(r.integers(1, 20))))
        biased = pivot.linear_cka(x, y)
        assert 0.0 <= biased <= 1.0
        unbiased = pivot.linear_cka(x, y, debiased=True)
        assert -1.0 <= unbiased <= 1.0
        assert unbiased == pytest.approx(ref.cka(x.astype(np.float32), y.astype(np.float32), True), abs=1e-6)
    # independent features: the debiased estimate goes below zero somewhere, the biased one never does
    values = [pivot.linear_cka(np.random.default_rng(s).normal(size=(8, 3)), np.random.default_rng(s + 99).normal(size=(8, 3)),
                        debiased=True) for s in range(20)]
    assert min(values) < 0.0


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_symmetry_and_determinism(rng, debiased, mode):
    x, y = activations(rng), activations(rng, offset=2.0)
    a = pivot.linear_cka(x, y, debiased, mode)
    assert a == pivot.linear_cka(y, x, debiased, mode)
    assert a == pivot.linear_cka(x, y, debiased, mode)  # same bits every time
    m1 = pivot.cka_matrix([x, y], [y, x], debiased, mode)
    m2 = pivot.cka_matrix([x, y], [y, x], debiased, mode)
    assert np.array_equal(m1, m2)
    np.testing.assert_allclose(m1, m1.T, atol=1e-15)


def test_accepts_float64_int_and_2d_inputs(rng):
    x = rng.normal(size=(9, 6))
    y = rng.integers(-5, 5, size=(9, 3))
    assert pivot.linear_cka(x, y) == pytest.approx(ref.cka(x.astype(np.float32), y), abs=1e-6)


def test_debiased_needs_four_samples(rng):
    x = rng.normal(size=(3, 5))
    with pytest.raises(ValueError, match="at least 4 samples"):
        pivot.linear_cka(x, x, debiased=True)
    with pytest.raises(ValueError, match="at least 4 samples"):
        pivot.cka_matrix([x], [x], debiased=True)
    assert np.isfinite(pivot.linear_cka(rng.normal(size=(4, 5)), rng.normal(size=(4, 2)), debiased=True))


def test_biased_needs_two_samples(rng):
    with pytest.raises(ValueError, match="at least 2 samples"):
        pivot.linear_cka(rng.normal(size=(1, 5)), rng.normal(size=(1, 5)))
    assert 0.0 <= pivot.linear_cka(rng.normal(size=(2, 5)), rng.normal(size=(2, 5))) <= 1.0


def test_zero_variance_gives_nan_with_a_warning(rng):
    x = np.ones((6, 4, 3), dtype=np.float32)
    y = activations(rng, n=6, t=4, c=3)
    with pytest.warns(RuntimeWarning, match="zero variance"):
        assert np.isnan(pivot.linear_cka(x, y))
    with pytest.warns(RuntimeWarning, match="zero variance"):
        m = pivot.cka_matrix([x, y], [y])
    assert np.isnan(m[0, 0]) and m[1, 0] == pytest.approx(1.0)
    # identical cls tokens but different other tokens: only "cls" is undefined
    z = y.copy()
    z[:, 0, :] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(pivot.linear_cka(z, y))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_non_finite_values_raise(rng, bad):
    x = rng.normal(size=(6, 8))
    y = x.copy()
    y[3, 5] = bad
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        pivot.linear_cka(x, y)
    with pytest.raises(ValueError, match=r"attn_outputs\[0\] contains NaN"):
        pivot.cka_matrix([x], [y])


def test_bad_inputs(rng):
    x = rng.normal(size=(6, 4, 3))
    with pytest.raises(ValueError, match="same samples"):
        pivot.linear_cka(x, x[:5])
    with pytest.raises(ValueError, match="same samples"):
        pivot.cka_matrix([x], [x[:5]])
    with pytest.raises(ValueError, match="features must be one of"):
        pivot.linear_cka(x, x, features="tokens")
    with pytest.raises(ValueError, match=r"needs x of shape \(N, T, C\)"):
        pivot.linear_cka(x[:, 0], x[:, 0], features="cls")
    with pytest.raises(ValueError, match="samples first"):
        pivot.linear_cka(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="no features"):
        pivot.linear_cka(np.ones((5, 0)), np.ones((5, 2)))
    with pytest.raises(TypeError, match="real numbers"):
        pivot.linear_cka(x.astype(complex), x)
    with pytest.raises(TypeError, match="debiased must be True or False"):
        pivot.linear_cka(x, x, debiased="yes")
    with pytest.raises(TypeError, match="list of per-encoder arrays"):
        pivot.cka_matrix(x, x)
    with pytest.raises(ValueError, match="empty"):
        pivot.cka_matrix([], [x])
    with pytest.raises(ValueError, match="at least one MLP output and one attention output"):
        pivot.cka_matrix([None], [x])
    with pytest.raises(ValueError, match="threads"):
        pivot.linear_cka(x, x, threads=0)
    with pytest.raises(TypeError, match="threads"):
        pivot.linear_cka(x, x, threads=1.5)


def test_threads_argument_restores_the_pool(rng):
    x = rng.normal(size=(8, 30))
    before = _core.blas_get_num_threads()
    assert pivot.linear_cka(x, x[:, ::-1], threads=1) == pivot.linear_cka(x, x[:, ::-1])
    assert _core.blas_get_num_threads() == before


# ---------------------------------------------------------------------- the C kernels directly

def test_gram_kernel_blocks_and_shift(rng):
    xa = rng.normal(size=(7, 4100)).astype(np.float32)
    xb = rng.normal(size=(5, 4100)).astype(np.float32)
    shift = rng.normal(size=4100).astype(np.float32)
    a64, b64, s64 = xa.astype(np.float64), xb.astype(np.float64), shift.astype(np.float64)
    np.testing.assert_allclose(_core.cka_gram(xa, None, None, 1), a64 @ a64.T, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(_core.cka_gram(xa, xb, shift, 2), (a64 - s64) @ (b64 - s64).T, rtol=1e-5, atol=1e-3)
    g = _core.cka_gram(xa, None, shift, 1)
    assert np.array_equal(g, g.T)
    # the symmetric block and the general block give the same Gram
    np.testing.assert_allclose(g, _core.cka_gram(xa, xa, shift, 2), rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("debiased", [False, True])
def test_center_and_hsic_kernels_match_the_formulas(rng, debiased):
    n = 9
    xs = [rng.normal(size=(n, 4)) + rng.normal() for _ in range(3)]
    grams = [ref.gram_linear(x) for x in xs]
    centered = np.stack([g.copy() for g in grams])
    for g in centered:
        _core.cka_center_gram(g, debiased)
    hsic = _core.cka_hsic(centered, centered[:2], debiased)
    want = np.array([[ref.hsic(k, l, debiased) for l in grams[:2]] for k in grams])
    np.testing.assert_allclose(hsic, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_core.cka_hsic_self(centered, debiased),
                               [ref.hsic(k, k, debiased) for k in grams], rtol=1e-10)
    if not debiased:
        h = np.eye(n) - 1.0 / n
        np.testing.assert_allclose(centered[0], h @ grams[0] @ h, atol=1e-12)


def test_kernel_bindings_validate():
    x = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="dtype"):
        _core.cka_gram(x.astype(np.float64), None, None, 1)
    with pytest.raises(ValueError, match="features per sample"):
        _core.cka_gram(x, np.ones((4, 2), dtype=np.float32), None, 1)
    with pytest.raises(ValueError, match="shift"):
        _core.cka_gram(x, None, np.ones(2, dtype=np.float32), 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.cka_gram(np.ones((3, 4), dtype=np.float32).T, None, None, 1)
    with pytest.raises(ValueError, match="at least 4"):
        _core.cka_center_gram(np.ones((3, 3)), True)
    with pytest.raises(ValueError, match="square"):
        _core.cka_center_gram(np.ones((3, 4)), False)
    with pytest.raises(ValueError, match="writable"):
        g = np.ones((3, 3))
        g.flags.writeable = False
        _core.cka_center_gram(g, False)
    with pytest.raises(ValueError, match="samples"):
        _core.cka_hsic(np.ones((1, 5, 5)), np.ones((1, 6, 6)), False)


def test_gram_is_bit_identical_for_any_thread_count():
    """Feature chunks, each a single-threaded product, added in chunk order: the same bits on 1, 2,
    3 or 8 threads (OpenBLAS's own threading changed the sums with the pool size on an AMD EPYC
    Zen 5). 7000 features: 4 chunks, the last one partial."""
    rng = np.random.default_rng(3)
    xa = rng.standard_normal((150, 7000)).astype(np.float32)
    xb = rng.standard_normal((70, 7000)).astype(np.float32)
    shift = xa.mean(axis=0).astype(np.float32)
    for xb_, shift_ in ((None, shift), (xb, shift), (None, None)):
        grams = [_core.cka_gram(xa, xb_, shift_, t) for t in (1, 2, 3, 8)]
        for g in grams[1:]:
            np.testing.assert_array_equal(g, grams[0])
    g = _core.cka_gram(xa, None, shift, 2)
    np.testing.assert_array_equal(g, g.T)


def test_linear_cka_from_eight_threads_is_bit_identical_to_one_call():
    # Concurrent calls share OpenBLAS and its thread-count guard (threads= changes the pool while
    # other calls run); every result must equal the single call's bits.
    import threading
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal((96, 3000)).astype(np.float32) for _ in range(8)]
    ys = [(rng.standard_normal((96, 2500)) * 3 + 1).astype(np.float32) for _ in range(8)]
    want = [pivot.cka.cka(x, y) for x, y in zip(xs, ys)]
    got = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def run(i):
        start.wait()
        for rep in range(3):
            got[i].append(pivot.cka.cka(xs[i], ys[i], threads=(None, 1, 2)[(i + rep) % 3]))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert [g == [w] * 3 for g, w in zip(got, want)] == [True] * 8
