"""PIVOT's Path-Score (paper section 3.2, Algorithm 1): how redundant the skipped attentions of a
path are, from a CKA matrix (``pivot.cka.cka_matrix`` / ``model_cka``); ``rank_paths`` enumerates the
paths of one effort best first, ``best_paths`` finds the best path of every effort exactly.
Paths are 0/1 masks, 1 = the encoder's attention is active. docs/cka.md shows the workflow."""
from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from typing import Iterable

import numpy as np

from ._native import _core
from .config import normalize_path

__all__ = ["ScoredPath", "path_score", "rank_paths", "best_paths"]

# rank_paths returns at most this many paths (C(24, 12) = 2.7 million fits) and, with top_k,
# enumerates at most MAX_ENUMERATED_PATHS; best_paths has no such limit.
MAX_RANKED_PATHS = 1 << 22
MAX_ENUMERATED_PATHS = 1 << 30


@dataclasses.dataclass(frozen=True)
class ScoredPath:
    """A path with its Path-Score.

    effort: number of active attention modules; path: 0/1 mask of length D, 1 = the encoder's
    attention is active (the form ``pivot.normalize_path`` and ``model.with_path`` take);
    score: its Path-Score (``path_score``).
    """
    effort: int
    path: tuple[int, ...]
    score: float


def _check_cka_for_paths(cka) -> np.ndarray:
    arr = np.asarray(cka)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"cka must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(f"cka must be a square (D, D) matrix with D >= 1, got shape {arr.shape}")
    arr = np.require(arr, np.float64, ["C_CONTIGUOUS", "ALIGNED"])  # the C kernel reads aligned rows
    if np.isfinite(arr).all():
        return arr
    upper = np.triu(np.ones(arr.shape, dtype=bool), k=1)
    bad = np.argwhere(upper & ~np.isfinite(arr))
    if len(bad):
        i, j = bad[0]
        raise ValueError(f"cka[{i}, {j}] is {arr[i, j]}: the entries above the diagonal (i < j), which "
                         "the Path-Score reads, must be finite; compute the CKA matrix with all attentions active")
    return arr


def _check_effort(effort, depth: int) -> int:
    if isinstance(effort, bool) or not isinstance(effort, numbers.Integral) or not 0 <= effort <= depth:
        raise ValueError(f"effort must be an integer in [0, {depth}] (active attentions), got {effort!r}")
    return int(effort)


def path_score(cka, path) -> float:
    """Path-Score S of a path (the paper's Algorithm 1).

    For each active encoder i (in order), add cka[i, j] for the skipped encoders j = i+1, i+2, ...
    that follow it, stopping at the next active encoder::

        S = sum over active i of  sum over j in (i, next active encoder) of  CKA(MLP_i, A_j)

    A high S means the skipped attentions are similar to the MLP output they would receive, so
    they are redundant. Skipped encoders before the first active encoder are preceded by no
    active encoder and add nothing (Algorithm 1 only starts runs at active encoders); so does
    the all-skipped path (effort 0), and the all-active path scores 0.

    Args:
        cka: (D, D) matrix from ``cka_matrix`` / ``model_cka``; only entries above the diagonal
            are read, and they must be finite.
        path: 0/1 mask of length D (1 = active), anything ``pivot.normalize_path`` accepts;
            None = all active.

    Example (the paper's, 1-based: encoders 3, 4, 9, 10 skipped of 12): the score is
    CKA[MLP_2, A_3] + CKA[MLP_2, A_4] + CKA[MLP_8, A_9] + CKA[MLP_8, A_10], i.e. with 0-based
    indices ``cka[1, 2] + cka[1, 3] + cka[7, 8] + cka[7, 9]``.
    """
    arr = _check_cka_for_paths(cka)
    return _core.path_score(arr, normalize_path(path, arr.shape[0]))


def _scored_paths(effort: int, scores: np.ndarray, paths: np.ndarray) -> list[ScoredPath]:
    return list(map(ScoredPath, itertools.repeat(effort), map(tuple, paths.tolist()), scores.tolist()))


def rank_paths(cka, effort: int, top_k: int | None = None) -> list[ScoredPath]:
    """All C(D, effort) paths with exactly `effort` active attentions, best Path-Score first.

    Ties in score are broken deterministically towards the lexicographically greater 0/1 mask,
    i.e. the path whose active encoders come earlier. Enumeration runs in C; it needs D <= 64,
    at most 2^22 paths returned and, with top_k, at most 2^30 enumerated. For the single best
    path of large D use ``best_paths`` (exact dynamic programming).

    Args:
        cka: (D, D) CKA matrix (see ``path_score``).
        effort: number of active attentions, 0..D.
        top_k: return only the best top_k paths (None: all).

    Returns:
        list of ``ScoredPath``, best first.
    """
    arr = _check_cka_for_paths(cka)
    depth = arr.shape[0]
    effort = _check_effort(effort, depth)
    if depth > 64:
        raise ValueError(f"rank_paths enumerates paths of at most 64 encoders, got D = {depth}; use best_paths")
    total = math.comb(depth, effort)
    if top_k is None:
        if total > MAX_RANKED_PATHS:
            raise ValueError(f"C({depth}, {effort}) = {total} paths is too many to return; pass top_k, "
                             "or use best_paths for the best path of each effort")
        k = total
    else:
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        if total > MAX_ENUMERATED_PATHS:
            raise ValueError(f"C({depth}, {effort}) = {total} paths is too many to enumerate; "
                             "use best_paths for the best path of each effort")
        k = min(int(top_k), total)
    scores, paths = _core.rank_paths(arr, effort, k)
    return _scored_paths(effort, scores, paths)


def best_paths(cka, efforts: Iterable[int] | None = None) -> dict[int, ScoredPath]:
    """The path with the highest Path-Score for each effort, exactly, by dynamic programming.

    With ``best[i][e]`` the best score of encoders i..D-1 given that i is active and e of them
    are, ``best[i][e] = max over the next active k of run(i, k) + best[k][e - 1]``, where
    ``run(i, k) = cka[i, i+1] + ... + cka[i, k-1]`` is what i earns from the skipped encoders
    up to k (a prefix sum of row i); the best path of effort e starts at the best first active
    encoder (the skipped ones before it add nothing). O(D^3) time in C, so D = 24, 32, 48
    (where the C(D, D/2) paths cannot be enumerated) take well under a millisecond. Ties are
    broken as in ``rank_paths`` (earlier active encoders first), and each score is recomputed
    in Algorithm 1's order, so it equals ``path_score`` of the path bit for bit.

    Args:
        cka: (D, D) CKA matrix (see ``path_score``).
        efforts: the efforts wanted (each 0..D); None: every effort 0..D (effort 0 is the
            all-skipped path, effort D the all-active one, both scoring 0).

    Returns:
        dict effort -> ``ScoredPath``, in increasing effort.
    """
    arr = _check_cka_for_paths(cka)
    depth = arr.shape[0]
    if efforts is None:
        wanted = list(range(depth + 1))
    else:
        if isinstance(efforts, numbers.Integral):
            raise TypeError("efforts must be an iterable of integers (e.g. [6, 9]) or None")
        wanted = sorted({_check_effort(e, depth) for e in efforts})
    scores, paths = _core.best_paths(arr)
    score_list, path_list = scores.tolist(), paths.tolist()
    return {e: ScoredPath(e, tuple(path_list[e]), score_list[e]) for e in wanted}
