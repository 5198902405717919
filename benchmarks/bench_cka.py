"""CKA matrix and Path-Score benchmarks.

- ``cka_vs_numpy``: the 12 x 12 CKA matrix [i, j] = CKA(MLP_i, A_j) of N = 256 samples of
  197 x 384 activations (flattened, as the paper), biased estimator; pivot.cka_matrix against a
  plain float64 NumPy implementation of Kornblith et al.'s formulas written the usual way, one
  ``cka(gram(X_i), gram(Y_j))`` per pair (the MLP Gram hoisted out of the inner loop).
  Asserts that the values agree to 1e-5.
- ``cka_vs_numpy_gram_reuse``: the same against NumPy computing each layer's Gram only once (as
  pivot does), float64: what is left is float32 chunked syrk vs float64 syrk and the C HSIC.
- ``cka_vs_torch_cka``: against torch-cka 0.21 (PyPI ``torch-cka``, hooks on a module that
  replays the activations, one batch of N), which computes the debiased (unbiased-HSIC) CKA, so
  pivot runs with debiased=True there. torch-cka forms uncentered float32 Grams; with the few
  large-magnitude channels of these activations its values drift far from the float64 result
  (without them it agrees to ~1e-8), which the detail column reports.
- ``rank_paths_d12_us``: every path of every effort for D = 12 (4096 ScoredPaths) against the
  Python reference enumeration; ``best_paths_d48_us``: the best path of each effort for D = 48
  by the C dynamic programme against the same DP in plain Python.

Quick mode: N = 32 samples (still 12 x 12 layers of 197 x 384; 4 x 4 against torch-cka).
"""
import math
import time
import warnings

import numpy as np

from common import Result, best_time

import pivot
from pivot import _core
from pivot.reference import cka as ref

TOKENS, CHANNELS = 197, 384


# ------------------------------------------------------------------------ activations

_CACHE = {}


def activations(quick: bool):
    """(mlp, attn): lists of L float32 arrays (N, 197, 384), layers sharing structure so that
    CKA values spread over (0, 1), with a few large-magnitude channels as in real ViTs."""
    if quick in _CACHE:
        return _CACHE[quick]
    n, layers = (32 if quick else 256), 12
    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, TOKENS, CHANNELS), dtype=np.float32)
    offset = np.zeros(CHANNELS, dtype=np.float32)
    offset[[7, 101, 300]] = [20.0, -15.0, 30.0]
    def layer(weight):
        out = rng.standard_normal((n, TOKENS, CHANNELS), dtype=np.float32)
        out += np.float32(weight) * base
        out += offset
        return out
    mlp = [layer(3.0 * (k + 1) / layers) for k in range(layers)]
    attn = [layer(3.0 * (layers - k) / layers) for k in range(layers)]
    _CACHE.clear()
    _CACHE[quick] = (mlp, attn)
    return mlp, attn


# ------------------------------------------------------------------------ plain NumPy peer

def np_gram(x):
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return x @ x.T


def np_center(gram, debiased):
    """Kornblith et al.'s centering: H K H, or the U-centering of the unbiased estimator."""
    gram = gram.copy()
    n = gram.shape[0]
    if debiased:
        np.fill_diagonal(gram, 0.0)
        means = gram.sum(axis=0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0.0)
    else:
        means = gram.mean(axis=0)
        means -= means.mean() / 2
        gram -= means[:, None]
        gram -= means[None, :]
    return gram


def np_cka_from_grams(gram_x, gram_y, debiased=False):
    kx, ly = np_center(gram_x, debiased), np_center(gram_y, debiased)
    return kx.ravel() @ ly.ravel() / (np.linalg.norm(kx) * np.linalg.norm(ly))


def np_cka_matrix_per_pair(mlp, attn, debiased=False):
    out = np.empty((len(mlp), len(attn)))
    for i, x in enumerate(mlp):
        gram_x = np_gram(x)
        for j, y in enumerate(attn):
            out[i, j] = np_cka_from_grams(gram_x, np_gram(y), debiased)
    return out


def np_cka_matrix_gram_reuse(mlp, attn, debiased=False):
    grams_x, grams_y = [np_gram(x) for x in mlp], [np_gram(y) for y in attn]
    return np.array([[np_cka_from_grams(gx, gy, debiased) for gy in grams_y] for gx in grams_x])


def _timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


# ------------------------------------------------------------------------ benchmarks

def bench_cka_matrix(quick: bool):
    mlp, attn = activations(quick)
    n, layers = len(mlp[0]), len(mlp)
    shape = f"N={n}, {layers}x{layers} layers of {TOKENS}x{CHANNELS}"
    repeat = 2 if quick else 3
    t_pivot = best_time(lambda: pivot.cka_matrix(mlp, attn), repeat=repeat, warmup=1)
    got = pivot.cka_matrix(mlp, attn)
    t_pair, want = _timed(lambda: np_cka_matrix_per_pair(mlp, attn))  # slow: once
    err = float(np.abs(got - want).max())
    assert err <= 1e-5, f"pivot.cka_matrix differs from NumPy by {err:.2e} (> 1e-5)"
    t_reuse, want_reuse = _timed(lambda: np_cka_matrix_gram_reuse(mlp, attn))
    assert np.abs(want_reuse - want).max() <= 1e-12
    got_d = pivot.cka_matrix(mlp, attn, debiased=True)
    err_d = float(np.abs(got_d - np_cka_matrix_gram_reuse(mlp, attn, debiased=True)).max())
    assert err_d <= 1e-5, f"debiased pivot.cka_matrix differs from NumPy by {err_d:.2e} (> 1e-5)"
    return [
        Result("cka_vs_numpy", t_pair / t_pivot, t_pivot * 1e3, t_pair * 1e3, "ms",
               f"{shape}, biased; NumPy float64 one Gram pair per cell; max |diff| {err:.1e} "
               f"(debiased {err_d:.1e})"),
        Result("cka_vs_numpy_gram_reuse", t_reuse / t_pivot, t_pivot * 1e3, t_reuse * 1e3, "ms",
               f"{shape}, biased; NumPy float64 computing each Gram once"),
    ]


def bench_cka_vs_torch_cka(quick: bool):
    import torch
    from torch_cka import CKA as TorchCKA  # ImportError: harness skips this benchmark

    mlp, attn = activations(quick)
    if quick:  # torch-cka recomputes every Gram per pair: 4 x 4 layers keep quick mode short
        mlp, attn = mlp[:4], attn[:4]
    n, layers = len(mlp[0]), len(mlp)

    class Emit(torch.nn.Module):
        def __init__(self, array):
            super().__init__()
            self.array = torch.from_numpy(array)

        def forward(self, index):
            return self.array[index]

    class Replay(torch.nn.Module):
        """Emits stored activations from its layers, where torch-cka's hooks pick them up."""

        def __init__(self, arrays):
            super().__init__()
            self.layers = torch.nn.ModuleList(Emit(a) for a in arrays)

        def forward(self, index):
            for layer in self.layers:
                layer(index)
            return index

    names = [f"layers.{k}" for k in range(layers)]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(n)), batch_size=n)

    def run_torch_cka():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer = TorchCKA(Replay(mlp), Replay(attn), "mlp", "attn", names, names, device="cpu")
            peer.compare(loader)
        return peer.export()["CKA"].double().numpy()

    t_peer, theirs = _timed(run_torch_cka)
    t_pivot = best_time(lambda: pivot.cka_matrix(mlp, attn, debiased=True), repeat=2, warmup=1)
    ours = pivot.cka_matrix(mlp, attn, debiased=True)
    exact = np_cka_matrix_gram_reuse(mlp, attn, debiased=True)
    return [Result("cka_vs_torch_cka", t_peer / t_pivot, t_pivot * 1e3, t_peer * 1e3, "ms",
                   f"N={n}, {layers}x{layers} layers, debiased, torch {torch.__version__} "
                   f"({torch.get_num_threads()} threads); max |diff| from float64 NumPy: pivot "
                   f"{np.abs(ours - exact).max():.1e}, torch-cka {np.abs(theirs - exact).max():.1e}")]


def bench_rank_paths(quick: bool):
    d = 12
    cka = np.random.default_rng(1).random((d, d))
    efforts = range(d + 1)
    t_api = best_time(lambda: [pivot.rank_paths(cka, e) for e in efforts], repeat=5 if quick else 20)
    t_core = best_time(lambda: [_core.rank_paths(cka, e, math.comb(d, e)) for e in efforts], repeat=5 if quick else 20)
    t_ref = best_time(lambda: [ref.rank_paths(cka, e) for e in efforts], repeat=2 if quick else 5)
    ours = [p for e in efforts for p in pivot.rank_paths(cka, e)]
    theirs = [p for e in efforts for p in ref.rank_paths(cka, e)]
    assert [p.path for p in ours] == [p for _, p in theirs]
    return [Result("rank_paths_d12_us", t_ref / t_api, t_api * 1e6, t_ref * 1e6, "us",
                   f"all 4096 paths of efforts 0..12 as ScoredPaths, vs the Python reference; "
                   f"C enumeration + sort alone {t_core * 1e6:.0f} us")]


def bench_best_paths(quick: bool):
    d = 48
    cka = np.random.default_rng(2).random((d, d))
    t_api = best_time(lambda: pivot.best_paths(cka), repeat=10 if quick else 50)
    t_core = best_time(lambda: _core.best_paths(cka), repeat=10 if quick else 50)
    t_ref = best_time(lambda: ref.best_paths_dp(cka), repeat=2 if quick else 5)
    ours, theirs = pivot.best_paths(cka), ref.best_paths_dp(cka)
    assert all(ours[e].path == theirs[e][1] for e in range(d + 1))
    return [Result("best_paths_d48_us", t_ref / t_api, t_api * 1e6, t_ref * 1e6, "us",
                   f"best path of each effort 0..48 by DP, vs the same DP in Python; C DP alone "
                   f"{t_core * 1e6:.0f} us")]


BENCHMARKS = [bench_cka_matrix, bench_cka_vs_torch_cka, bench_rank_paths, bench_best_paths]
