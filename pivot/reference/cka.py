"""Plain NumPy/Python float64 references of the cka area's C kernels (pivot/cka.py, pivot/path_scoring.py, csrc/cka.c).

Written straight from the formulas, for clarity rather than speed: Gram matrices K = X X^T,
the biased HSIC tr(K H L H) / (N-1)^2 with an explicit centering matrix H, the unbiased HSIC in
Song et al.'s (2012) closed form, Algorithm 1 as printed in the paper, and brute-force path
enumeration.
"""
from __future__ import annotations

import itertools

import numpy as np


def features(x, mode: str = "flatten") -> np.ndarray:
    """(N, P) float64 features of activations x: "flatten", "cls" (token 0) or "mean" (over tokens)."""
    x = np.asarray(x, dtype=np.float64)
    if mode == "flatten":
        return x.reshape(x.shape[0], -1)
    if mode == "cls":
        return x[:, 0, :]
    if mode == "mean":
        return x.mean(axis=1)
    raise ValueError(mode)


def gram_linear(x: np.ndarray) -> np.ndarray:
    """K = X X^T over samples."""
    return x @ x.T


def hsic_biased(K: np.ndarray, L: np.ndarray) -> float:
    """tr(K H L H) / (N - 1)^2, H = I - 11^T / N (Gretton et al. 2005; Kornblith et al. 2019)."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(K @ H @ L @ H)) / (n - 1) ** 2


def hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012) eq. 5 with zero-diagonal Grams K~, L~:
    [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n (n-3))."""
    n = K.shape[0]
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    value = (np.trace(Kt @ Lt)
             + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
             - 2.0 / (n - 2) * (one @ Kt @ Lt @ one))
    return float(value) / (n * (n - 3))


def hsic(K, L, debiased: bool) -> float:
    return hsic_unbiased(K, L) if debiased else hsic_biased(K, L)


def cka(x, y, debiased: bool = False, mode: str = "flatten") -> float:
    """HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with linear kernels."""
    K, L = gram_linear(features(x, mode)), gram_linear(features(y, mode))
    return hsic(K, L, debiased) / np.sqrt(hsic(K, K, debiased) * hsic(L, L, debiased))


def cka_matrix(mlp_outputs, attn_outputs, debiased: bool = False, mode: str = "flatten") -> np.ndarray:
    """[i, j] = CKA(MLP_i, A_j), NaN where an output is None."""
    out = np.full((len(mlp_outputs), len(attn_outputs)), np.nan)
    for i, x in enumerate(mlp_outputs):
        for j, y in enumerate(attn_outputs):
            if x is not None and y is not None:
                out[i, j] = cka(x, y, debiased, mode)
    return out


def minibatch_cka_matrix(mlp_outputs, attn_outputs, batches, debiased: bool = False,
                         mode: str = "flatten") -> np.ndarray:
    """Nguyen et al. (2021) minibatch CKA: mean over batches of HSIC(K_b, L_b), normalised by the
    means of the self-HSICs. `batches` lists the sample indices of each minibatch."""
    Dm, Da = len(mlp_outputs), len(attn_outputs)
    xy, xx, yy = np.zeros((Dm, Da)), np.zeros(Dm), np.zeros(Da)
    for idx in batches:
        Ks = [None if x is None else gram_linear(features(x, mode)[idx]) for x in mlp_outputs]
        Ls = [None if y is None else gram_linear(features(y, mode)[idx]) for y in attn_outputs]
        for i, K in enumerate(Ks):
            xx[i] += np.nan if K is None else hsic(K, K, debiased)
            for j, L in enumerate(Ls):
                xy[i, j] += np.nan if K is None or L is None else hsic(K, L, debiased)
        for j, L in enumerate(Ls):
            yy[j] += np.nan if L is None else hsic(L, L, debiased)
    return xy / np.sqrt(np.outer(xx, yy))


def path_score(cka, path) -> float:
    """Algorithm 1 as printed: for i in Config (active), for j in (i+1, D): add CKA(i, j) while
    A_j is inactive, break at the next active one."""
    D = len(path)
    S = 0.0
    for i in range(D):
        if not path[i]:
            continue
        for j in range(i + 1, D):
            if not path[j]:
                S = S + float(cka[i][j])
            else:
                break
    return S


def rank_paths(cka, effort: int) -> list[tuple[float, tuple[int, ...]]]:
    """Every (score, path) with `effort` active encoders, best first; ties: greater mask first."""
    D = len(cka)
    ranked = []
    for active in itertools.combinations(range(D), effort):
        path = tuple(1 if i in active else 0 for i in range(D))
        ranked.append((path_score(cka, path), path))
    ranked.sort(key=lambda sp: (-sp[0], tuple(-b for b in sp[1])))
    return ranked


def all_path_scores(cka) -> tuple[np.ndarray, np.ndarray]:
    """Brute force, vectorised: (masks (2^D, D) uint8, scores (2^D,)) of every path."""
    cka = np.asarray(cka, dtype=np.float64)
    D = cka.shape[0]
    codes = np.arange(1 << D)
    masks = ((codes[:, None] >> (D - 1 - np.arange(D))) & 1).astype(np.uint8)
    scores = np.zeros(1 << D)
    for i in range(D):
        # alive: paths where i is active and every encoder i+1..j is skipped
        alive = masks[:, i].astype(bool)
        for j in range(i + 1, D):
            alive = alive & (masks[:, j] == 0)
            scores += np.where(alive, cka[i, j], 0.0)
    return masks, scores


def best_paths_dp(cka) -> dict[int, tuple[float, tuple[int, ...]]]:
    """The best (score, path) of each effort 0..D by the same dynamic programme as the C code,
    in plain Python: best[i][e] = max over the next active k of run(i, k) + best[k][e-1]."""
    cka = [list(map(float, row)) for row in np.asarray(cka, dtype=np.float64)]
    D = len(cka)
    run = [[0.0] * D for _ in range(D)]  # run[i][k] = sum of cka[i][i+1..k]
    for i in range(D):
        for k in range(i + 1, D):
            run[i][k] = run[i][k - 1] + cka[i][k]
    best = [[None] * (D + 1) for _ in range(D)]
    nxt = [[None] * (D + 1) for _ in range(D)]
    for i in reversed(range(D)):
        best[i][1], nxt[i][1] = run[i][D - 1], D
        for e in range(2, D - i + 1):
            top, arg = -np.inf, None
            for k in range(i + 1, D - e + 2):
                v = run[i][k - 1] + best[k][e - 1]
                if v > top:
                    top, arg = v, k
            best[i][e], nxt[i][e] = top, arg
    result = {0: (0.0, (0,) * D)}
    for e in range(1, D + 1):
        top, first = -np.inf, None
        for i in range(D - e + 1):
            if best[i][e] > top:
                top, first = best[i][e], i
        path = [0] * D
        i = first
        for left in range(e, 0, -1):
            path[i] = 1
            i = nxt[i][left]
        result[e] = (path_score(cka, path), tuple(path))
    return result
