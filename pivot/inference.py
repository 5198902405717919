"""Input-aware inference with two efforts (PIVOT, section 3.1).

Every input is classified by the low-effort model first; only the inputs whose prediction
entropy (equation 3) is above a threshold are classified again by the high-effort model.

Models are duck-typed as in the rest of pivot: ``model(images, threads=None)`` returns logits
(B, num_classes), ``model.config.num_classes`` gives K, and ``model.path`` (optional) the
attention path. ``pivot.ViT`` is such a model.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from . import _validate
from ._native import _core

__all__ = ["entropy", "MultiEffort", "MultiEffortResult"]


def entropy(logits) -> np.ndarray:
    """Normalized prediction entropy of logits, equation 3 of the PIVOT paper.

    ``E(x) = -(1 / log K) * sum_k p_k log p_k`` with ``p = softmax(logits)``: 1 for a uniform
    prediction, 0 for a certain one. ``logits`` is (B, K) (returns (B,) float32) or (K,)
    (returns a 0-d array); K >= 2. The softmax and the entropy are computed together in C, in
    double precision from float32 logits (float64 input is rounded to float32 first), stable for
    any finite logits. A row containing NaN (or with every logit -inf) gives NaN; +inf logits
    share the probability mass equally.
    """
    arr = np.asarray(logits)
    if arr.dtype == object or arr.dtype.kind not in "fiub":
        raise TypeError(f"logits must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"logits must be (B, K) or (K,), got shape {arr.shape}")
    row = arr.ndim == 1
    arr2 = np.require(arr.reshape(1, -1) if row else arr, np.float32, ["C_CONTIGUOUS", "ALIGNED"])  # the C kernel reads aligned rows
    if arr2.shape[1] < 2:
        raise ValueError(f"logits must have at least 2 classes (entropy is normalized by log K), got K={arr2.shape[1]}")
    out = _core.softmax_entropy(arr2)
    return out.reshape(()) if row else out


def num_classes(model) -> int:
    """K of a model: ``model.config.num_classes`` (a ``pivot.ViT`` or a stand-in with a config)."""
    try:
        return int(model.config.num_classes)
    except AttributeError:
        raise TypeError(f"model {model!r} has no config.num_classes; pass a pivot.ViT or an object with one") from None


def model_path(model) -> Optional[tuple]:
    """A model's attention path as a tuple of 0/1 ints, or None when it has no ``path``."""
    path = getattr(model, "path", None)
    if path is None:
        return None
    return tuple(int(v) for v in np.asarray(path).ravel())


def check_labels(labels, n_images: int, n_classes: int) -> np.ndarray:
    """Labels as an int64 (N,) array of class indices matching the images."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.shape[0] != n_images:
        raise ValueError(f"got {n_images} images but {arr.shape[0]} labels; they must match")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}) (the models' classes), got values in "
                         f"[{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def run_model(model, images: np.ndarray, threads=None, batch_size=None) -> np.ndarray:
    """Logits (N, K) float32 of ``model`` on ``images``, in chunks of ``batch_size`` (None: one call)."""
    n = images.shape[0]
    k = num_classes(model)
    if batch_size is None:
        batch_size = n
    else:
        batch_size = _validate.positive_int(batch_size, "batch_size")
    out = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, batch_size):
        chunk = images[start:start + batch_size]
        logits = np.asarray(model(chunk, threads=threads))
        if logits.shape != (chunk.shape[0], k):
            raise ValueError(f"model returned logits of shape {logits.shape}, expected {(chunk.shape[0], k)}")
        out[start:start + chunk.shape[0]] = logits
    return out


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    arr.flags.writeable = False
    return arr


@dataclasses.dataclass(frozen=True)
class MultiEffortResult:
    """What ``MultiEffort.predict`` returns (arrays are read-only).

    ``used_high[i]`` tells whether input i was decided by the high-effort model (its low-effort
    entropy was above the threshold, or NaN). ``logits`` are the deciding model's logits and
    ``entropies`` the low-effort entropies of every input. ``f_low``/``f_high`` are the fractions
    decided by each effort. With labels, ``c_low``/``c_high`` count the inputs classified
    correctly by the low/high effort (among those it decided) and ``accuracy = (c_low + c_high) / N``;
    without labels they are None.
    """
    predictions: np.ndarray      # (N,) int64
    used_high: np.ndarray        # (N,) bool
    logits: np.ndarray           # (N, K) float32
    entropies: np.ndarray        # (N,) float32, low effort
    threshold: float
    f_low: float
    f_high: float
    c_low: Optional[int] = None
    c_high: Optional[int] = None
    accuracy: Optional[float] = None

    @property
    def n_images(self) -> int:
        return int(self.predictions.shape[0])

    @property
    def n_high(self) -> int:
        """Number of inputs re-run on the high-effort model."""
        return int(self.used_high.sum())

    def summary(self) -> str:
        """One line: F_L, how many inputs went high, and the accuracy when labels were given."""
        text = (f"{self.n_images} inputs, threshold {self.threshold:.4g}: F_L={self.f_low:.3f}, "
                f"{self.n_high} re-run on the high effort")
        if self.accuracy is not None:
            text += f", accuracy {100 * self.accuracy:.2f}% (C_L={self.c_low}, C_H={self.c_high})"
        return text


class MultiEffort:
    """Two-effort inference: ``MultiEffort(low, high, threshold)``.

    ``low`` and ``high`` are models with the same classes (normally one ViT with two attention
    paths, e.g. ``vit.with_path(p_low)``, ``vit.with_path(p_high)``). ``threshold`` in [0, 1]:
    an input whose low-effort entropy is <= threshold keeps the low-effort prediction; the others
    (and NaN entropies) are re-run on the high-effort model. Threshold 1 keeps every input low.
    """
    __slots__ = ("_low", "_high", "_threshold")

    def __init__(self, low, high, threshold: float):
        k_low, k_high = num_classes(low), num_classes(high)
        if k_low != k_high:
            raise ValueError(f"the low-effort model has {k_low} classes but the high-effort model has {k_high}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
            raise TypeError(f"threshold must be a number in [0, 1], got {threshold!r}")
        threshold = float(threshold)
        if not (0.0 <= threshold <= 1.0):
            raise ValueError(f"threshold must be in [0, 1] (normalized entropy), got {threshold!r}")
        self._low, self._high, self._threshold = low, high, threshold

    def __reduce__(self):
        # Pickled by its parts (each model pickles itself), for pivot.distributed's workers.
        return MultiEffort, (self._low, self._high, self._threshold)

    @property
    def low(self):
        return self._low

    @property
    def high(self):
        return self._high

    @property
    def threshold(self) -> float:
        return self._threshold

    def __repr__(self):
        return f"MultiEffort(low={self._low!r}, high={self._high!r}, threshold={self._threshold!r})"

    @classmethod
    def for_lec(cls, low, high, images, lec: float, threads=None, batch_size=None) -> "MultiEffort":
        """A MultiEffort whose threshold keeps a fraction ``lec`` of ``images`` on the low effort.

        The threshold is the smallest low-effort entropy of ``images`` at which F_L >= lec (the
        rule of PIVOT's Phase 2), so the same images give F_L >= lec with the returned object.
        """
        lec = check_lec(lec)
        images = _validate.images(images)
        ent = entropy(run_model(low, images, threads, batch_size)).astype(np.float64)
        finite = np.sort(ent[~np.isnan(ent)])
        needed = low_count_needed(lec, ent.shape[0])
        if needed > finite.shape[0]:
            raise ValueError(f"only {finite.shape[0]} of {ent.shape[0]} inputs have a defined (non-NaN) "
                             f"entropy: F_L={lec} cannot be reached")
        return cls(low, high, float(finite[needed - 1]))

    def predict(self, images, labels=None, threads=None, batch_size=None) -> MultiEffortResult:
        """Classify ``images`` (B, ...): low effort on all, high effort only on the uncertain ones.

        The inputs with entropy above the threshold are gathered and run through the high-effort
        model in one call (or chunks of ``batch_size``), so the high-effort cost is paid only for
        them. ``labels`` (B,) integer classes, optional, give C_L, C_H and the accuracy.
        ``threads`` is passed to the models.
        """
        images = _validate.images(images)
        n = images.shape[0]
        k = num_classes(self._low)
        if labels is not None:
            labels = check_labels(labels, n, k)
        logits = run_model(self._low, images, threads, batch_size)
        ent = entropy(logits)
        used_high = ~(ent.astype(np.float64) <= self._threshold)  # NaN entropy -> high effort
        high_rows = np.flatnonzero(used_high)
        if high_rows.size:
            logits[high_rows] = run_model(self._high, images[high_rows], threads, batch_size)
        predictions = np.argmax(logits, axis=1).astype(np.int64)
        n_high = int(high_rows.size)
        c_low = c_high = accuracy = None
        if labels is not None:
            correct = predictions == labels
            c_high = int(correct[used_high].sum())
            c_low = int(correct.sum()) - c_high
            accuracy = (c_low + c_high) / n
        return MultiEffortResult(
            predictions=_frozen(predictions), used_high=_frozen(used_high), logits=_frozen(logits),
            entropies=_frozen(ent), threshold=self._threshold, f_low=(n - n_high) / n, f_high=n_high / n,
            c_low=c_low, c_high=c_high, accuracy=accuracy)


def low_count_needed(lec: float, n: int) -> int:
    """Smallest number of low-effort inputs out of n with F_L >= lec (robust to float rounding of lec * n)."""
    return max(1, math.ceil(lec * n - 1e-9))


def check_lec(lec) -> float:
    """The low-effort constraint as a float in (0, 1]."""
    if isinstance(lec, bool) or not isinstance(lec, (int, float, np.integer, np.floating)):
        raise TypeError(f"lec must be a number in (0, 1], got {lec!r}")
    lec = float(lec)
    if not (0.0 < lec <= 1.0):
        raise ValueError(f"lec (the fraction of inputs the low effort must classify) must be in (0, 1], got {lec!r}")
    return lec
