"""Choosing which attention modules to skip: the paper's Path-Score and measured alternatives.

``select_paths(model, images, ...)`` returns one path per effort (number of active attentions)
chosen by one of these rules, each run on the C engine on the calibration images only:

- ``"path_score"`` (the paper's Phase 1, Algorithm 1): the CKA matrix CKA(MLP_i, A_j) of the full
  model on the images (``pivot.model_cka``), then the exact best Path-Score path of each effort
  (``pivot.best_paths``). Score: the Path-Score, higher is better.
- ``"output_kl"``: the path whose logits stay closest to the full model's: mean KL divergence
  KL(full || path) of the softmax outputs over the images, in nats. Lower is better.
- ``"accuracy"``: the path with the highest top-1 accuracy on labelled images (fraction).
- ``"cross_entropy"``: the path with the lowest mean cross-entropy on labelled images (nats), a
  smooth version of ``"accuracy"`` that does not tie on small calibration sets.

The output-based rules cannot score all C(D, e) paths past small D (C(24, 12) = 2.7 million), so
they search by **beam search over removals**: start from the all-active path; at each step remove
one more attention from every path in the beam, score every distinct child, and keep the
``budget`` best (the beam width; ``budget=1`` is greedy removal). The best path of the beam at
effort e is that effort's choice. The cost is at most ``budget * (D + ... + (e_min + 1))`` model
runs on the images; with ``budget >= C(D, e)`` at every level the beam holds every path and the
search is exhaustive. Ties are broken as ``pivot.rank_paths`` does: the lexicographically greater
0/1 mask (earlier active encoders) first. Results are deterministic.

``score_paths(model, images, paths, ...)`` gives any rule's score of given paths (what the
path-selection experiment correlates with fine-tuned accuracy).

Which rule to trust is measured in docs/path-selection.md (``python -m pivot.apps.recipes.path_selection``).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Iterable

import numpy as np

from .cka import ScoredPath, _check_effort, best_paths, model_cka, path_score
from .inference import check_labels
from .model import prepare_images

__all__ = ["METHODS", "SelectedPath", "select_paths", "score_paths"]

# method -> (needs labels, higher score is better, unit of the score)
METHODS = {
    "path_score": (False, True, "Path-Score"),
    "output_kl": (False, False, "nats"),
    "accuracy": (True, True, "fraction correct"),
    "cross_entropy": (True, False, "nats"),
}
DEFAULT_BUDGET = 4


@dataclasses.dataclass(frozen=True)
class SelectedPath(ScoredPath):
    """A ``ScoredPath`` chosen by ``select_paths``: ``score`` is the method's score of the path
    (see ``METHODS`` for its direction and unit) and ``method`` names the rule."""
    method: str = "path_score"


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return method


def _check_model(model):
    from .model import ViT
    if not isinstance(model, ViT):
        raise TypeError(f"model must be a pivot.ViT, got {type(model).__name__}")
    return model.config.depth


def _check_labels(labels, n: int, num_classes: int, method: str):
    if labels is None:
        raise ValueError(f"method {method!r} needs labels (one class index per image)")
    return check_labels(labels, n, num_classes)


def _check_budget(budget) -> int:
    if budget is None:
        return DEFAULT_BUDGET
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 1:
        raise ValueError(f"budget (the beam width) must be a positive integer or None, got {budget!r}")
    return int(budget)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class _Scorer:
    """One output-based method's loss (lower is better) and score of a path, from the C engine."""

    def __init__(self, model, images, labels, method: str, threads):
        self.model, self.images, self.method, self.threads = model, images, method, threads
        depth = model.config.depth
        self.labels = labels
        full = model(images, path=np.ones(depth, np.uint8), threads=threads)
        self.full_logp = _log_softmax(full)
        self.full_p = np.exp(self.full_logp)

    def score(self, path) -> float:
        logits = self.model(self.images, path=np.asarray(path, np.uint8), threads=self.threads)
        if self.method == "accuracy":
            return float(np.mean(logits.argmax(1) == self.labels))
        logp = _log_softmax(logits)
        if self.method == "cross_entropy":
            return float(-np.mean(logp[np.arange(len(logp)), self.labels]))
        return float(np.mean(np.sum(self.full_p * (self.full_logp - logp), axis=1)))  # KL(full || path)

    def loss(self, score: float) -> float:
        return -score if METHODS[self.method][1] else score


def _prepare(model, images, labels, method):
    depth = _check_model(model)
    method = _check_method(method)
    images = prepare_images(model.config, images)  # once: every path's forward then takes the same floats
    if METHODS[method][0]:
        labels = _check_labels(labels, len(images), model.config.num_classes, method)
    if method == "path_score" and len(images) < 2:
        raise ValueError(f"method 'path_score' needs at least 2 images for CKA, got {len(images)}")
    return depth, method, images, labels


def _beam_search(scorer: _Scorer, depth: int, efforts: list[int], width: int, progress: bool) -> dict:
    from tqdm.auto import tqdm

    lowest = min(efforts)
    full = (1,) * depth
    chosen = {}
    if depth in efforts:
        chosen[depth] = (full, scorer.score(full))
    beam = [full]
    total = sum(min(width, math.comb(depth, e + 1)) * (e + 1) for e in range(lowest, depth))
    with tqdm(total=total, desc=f"select_paths {scorer.method}", unit="path", disable=not progress) as bar:
        for effort in range(depth - 1, lowest - 1, -1):
            children = sorted({p[:i] + (0,) + p[i + 1:] for p in beam for i in range(depth) if p[i]}, reverse=True)
            scored = []
            for child in children:
                scored.append((scorer.loss(scorer.score(child)), child))
                bar.update()
            # sorted() is stable and children are in descending mask order: equal losses keep it
            scored.sort(key=lambda item: item[0])
            beam = [p for _, p in scored[:width]]
            if effort in efforts:
                loss, path = scored[0]
                chosen[effort] = (path, scorer.loss(loss))
        bar.total = bar.n
        bar.refresh()
    return chosen


def _wanted_efforts(efforts, depth: int) -> list[int]:
    if efforts is None:
        return list(range(depth + 1))
    if isinstance(efforts, numbers.Integral):
        raise TypeError("efforts must be an iterable of integers (e.g. [4, 6, 8]) or None")
    wanted = sorted({_check_effort(e, depth) for e in efforts})
    if not wanted:
        raise ValueError("efforts is empty")
    return wanted


def select_paths(model, images, labels=None, efforts: Iterable[int] | None = None, method: str = "path_score",
                 budget: int | None = None, threads=None, progress: bool = True) -> dict[int, SelectedPath]:
    """The path of each effort chosen by ``method`` on calibration images.

    Args:
        model: a ``pivot.ViT`` (its own ``path`` is ignored: paths are chosen from the full model).
        images: calibration images (N, in_chans, img_size, img_size), e.g. a few hundred training
            images; never the test set.
        labels: (N,) class indices, needed by ``"accuracy"`` and ``"cross_entropy"``.
        efforts: the efforts wanted (numbers of active attentions, each 0..D); None: all.
        method: ``"path_score"`` (the paper's), ``"output_kl"``, ``"accuracy"`` or
            ``"cross_entropy"``; see the module docstring and docs/path-selection.md for which
            predicts fine-tuned accuracy.
        budget: beam width of the output-based methods (None: 4; 1 is greedy removal); unused by
            ``"path_score"``, which is exact.
        threads: threads of each C engine call (None: every core).
        progress: show a tqdm progress bar.

    Returns:
        dict effort -> ``SelectedPath`` (effort, path, score, method), in increasing effort.

    Raises:
        ValueError: an effort out of range, images of the wrong shape, labels missing or of the
            wrong shape for a labelled method, an unknown method, a bad budget.
    """
    depth, method, images, labels = _prepare(model, images, labels, method)
    wanted = _wanted_efforts(efforts, depth)
    width = _check_budget(budget)
    if method == "path_score":
        cka = model_cka(model, images, batch_size=256, path=np.ones(depth, np.uint8), progress=progress,
                        threads=threads)
        return {e: SelectedPath(e, sp.path, sp.score, method) for e, sp in best_paths(cka, wanted).items()}
    chosen = _beam_search(_Scorer(model, images, labels, method, threads), depth, wanted, width, progress)
    return {e: SelectedPath(e, tuple(int(v) for v in chosen[e][0]), chosen[e][1], method) for e in wanted}


def score_paths(model, images, paths, labels=None, method: str = "output_kl", threads=None,
                progress: bool = True) -> np.ndarray:
    """``method``'s score (see ``METHODS``) of each of ``paths`` (0/1 masks of length D) on the images.

    For ``"path_score"`` the CKA matrix of the full model on the images is computed once and each
    path gets its Path-Score; the other methods run the model on each path. Returns float64 (len(paths),).
    """
    from tqdm.auto import tqdm

    from .config import normalize_path

    depth, method, images, labels = _prepare(model, images, labels, method)
    masks = [tuple(int(v) for v in normalize_path(p, depth)) for p in paths]
    if method == "path_score":
        cka = model_cka(model, images, batch_size=256, path=np.ones(depth, np.uint8), progress=progress,
                        threads=threads)
        return np.array([path_score(cka, p) for p in masks], dtype=np.float64)
    scorer = _Scorer(model, images, labels, method, threads)
    return np.array([scorer.score(p) for p in tqdm(masks, desc=f"score_paths {method}", unit="path",
                                                    disable=not progress)], dtype=np.float64)
