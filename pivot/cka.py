"""Linear CKA between activation sets (paper section 3.2): the estimators, ``cka_matrix``, ``model_cka``
and ``MinibatchCKA``.

CKA (centered kernel alignment, Kornblith et al. 2019) compares two sets of activations of the
same N samples through their N x N Gram matrices over samples, K = X X^T and L = Y Y^T::

    CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) * HSIC(L, L))

with two HSIC estimators (``debiased``):

- ``False``, biased (Kornblith et al. 2019): ``HSIC(K, L) = tr(K H L H) / (N - 1)^2`` with
  ``H = I - 11^T / N``. Needs N >= 2; the result lies in [0, 1].
- ``True``, unbiased (Song et al. 2012; Nguyen et al. 2021): with K~, L~ the Grams with a zero
  diagonal, ``HSIC = [tr(K~ L~) + 1^T K~ 1 * 1^T L~ 1 / ((N-1)(N-2)) - 2/(N-2) 1^T K~ L~ 1] / (N (N-3))``.
  Needs N >= 4; the result lies in [-1, 1] and is less biased upwards for small N.

How it is computed: each Gram matrix is built by the C core from float32 OpenBLAS products
over chunks of 2048 features, summed in float64; the features are first shifted by a mean
(of the first 64 samples; any shift leaves both estimators unchanged, and one near the mean
avoids cancellation in float32). Centering and all HSIC values are float64. Inputs are
converted to float32 (the activations' own type). Results are deterministic: the same inputs
give the same bits.

Features per sample (``features``): ``"flatten"`` (default, as the paper) uses the whole
(T, C) token map of a sample as one vector of T*C values (any (N, ...) array is flattened per
sample); ``"cls"`` uses the class token (token 0) of a (N, T, C) array; ``"mean"`` the mean over
its T tokens.

Activations of any finite magnitude work: features whose largest magnitude is far from 1 (say
1e-25, whose squares underflow float32, or 1e25, whose squares overflow it) are first scaled by a
power of two (exact), and the Gram matrix scaled back in float64. Edge cases: a NaN or infinity
raises ValueError. When one activation set is the same for every sample (zero variance, in
float32), CKA is 0/0: the result is NaN and a RuntimeWarning says so (as numpy.corrcoef does). Rounding
excursions outside the estimator's range ([0, 1] biased, [-1, 1] unbiased) are clipped.

The Path-Score that ranks paths from a CKA matrix is in ``pivot.path_scoring`` (its names are
re-exported here for existing imports). docs/cka.md shows the whole workflow.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Sequence

import numpy as np

from . import _validate
from ._native import _core
from .model import default_threads

from .path_scoring import (MAX_ENUMERATED_PATHS, MAX_RANKED_PATHS, ScoredPath,  # noqa: F401  (re-exported)
                         _check_effort, best_paths, path_score, rank_paths)

__all__ = ["cka", "cka_matrix", "model_cka", "MinibatchCKA", "ScoredPath", "path_score",
           "rank_paths", "best_paths"]

FEATURE_MODES = ("flatten", "cls", "mean")


# ----------------------------------------------------------------------------------- helpers

def _gram_threads(threads) -> int:
    """The threads of a call's Gram products (None: ``pivot.model.default_threads()``). The C core
    runs each Gram's feature chunks side by side, each a single-threaded OpenBLAS product, and adds
    them in chunk order, so the result is the same bits for any thread count and any calls beside it."""
    threads = _validate.threads(threads)
    return default_threads() if threads is None else int(threads)


def _min_samples(debiased: bool) -> int:
    return 4 if debiased else 2


def _check_debiased(debiased):
    if not isinstance(debiased, (bool, np.bool_)):
        raise TypeError(f"debiased must be True or False, got {debiased!r}")
    return bool(debiased)


def _check_features_mode(features):
    if features not in FEATURE_MODES:
        raise ValueError(f"features must be one of {', '.join(map(repr, FEATURE_MODES))}, got {features!r}")


def _check_sample_count(n: int, debiased: bool, what: str):
    need = _min_samples(debiased)
    if n < need:
        kind = "debiased (unbiased HSIC)" if debiased else "biased"
        raise ValueError(f"{kind} CKA needs at least {need} samples, but {what} has {n}")


def _features(x, features: str, name: str) -> np.ndarray:
    """The (N, P) float32 C-contiguous feature matrix of activations x under `features`."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (N, ...) with the samples first, got shape {arr.shape}")
    if features == "flatten":
        feats = arr.reshape(arr.shape[0], -1)
    else:
        if arr.ndim != 3:
            raise ValueError(f"features={features!r} needs {name} of shape (N, T, C), got shape {arr.shape}")
        if arr.shape[1] == 0:
            raise ValueError(f"{name} has no tokens (shape {arr.shape})")
        feats = arr[:, 0, :] if features == "cls" else arr.mean(axis=1, dtype=np.float64)
    if feats.shape[1] == 0:
        raise ValueError(f"{name} has no features per sample (shape {arr.shape})")
    return np.require(feats, np.float32, ["C_CONTIGUOUS", "ALIGNED"])  # the C kernel reads aligned rows


def _mean_shift(feats: np.ndarray) -> np.ndarray:
    """What the Gram kernel subtracts from every sample: the mean of the first 64 samples. Any
    shift leaves CKA unchanged; one near the mean keeps float32 products free of cancellation,
    and 64 samples put it well within the features' spread at a quarter of the cost for N = 256."""
    return feats[:64].mean(axis=0, dtype=np.float64).astype(np.float32)


def _check_finite_diagonal(gram: np.ndarray, name: str):
    # A NaN or infinity in a sample's features makes that sample's diagonal Gram entry
    # non-finite, so the diagonal is enough to detect it.
    if not np.isfinite(np.diagonal(gram)).all():
        raise ValueError(f"{name} contains NaN or infinity")


# Features whose largest magnitude lies within 2**+-_SCALE_FREE are used as they are: their float32
# squares neither underflow nor overflow, summed over any feature count pivot sees.
_SCALE_FREE = 20


def _scale_exponent(feats: np.ndarray) -> int:
    """e such that feats * 2**-e has its largest magnitude in [0.5, 1), or 0 when feats needs no
    scaling (its magnitude is moderate, zero, or not finite: the diagonal check then speaks)."""
    peak = max(float(feats.max()), -float(feats.min()))
    if not math.isfinite(peak) or peak == 0.0:
        return 0
    e = math.frexp(peak)[1]
    return 0 if -_SCALE_FREE <= e <= _SCALE_FREE else e


def _scaled(feats: np.ndarray, e: int) -> np.ndarray:
    """feats * 2**-e, exact in float32 (a power of two only moves the exponent)."""
    return feats if e == 0 else np.ldexp(feats, np.int32(-e)).astype(np.float32, copy=False)


def _gram(fa: np.ndarray, fb, shift: np.ndarray, e: int, threads: int) -> np.ndarray:
    """The float64 Gram (fa - shift)(fb - shift)^T of features that ``_scaled`` scaled by 2**-e,
    in the features' own units: the C kernel sees magnitudes near 1, the result is scaled back."""
    gram = _core.cka_gram(fa, fb, shift, threads)
    if e:
        gram *= 2.0 ** (2 * e)  # float64: exact, and far from its range limits for any float32 input
    return gram


def _centered_gram(feats: np.ndarray, debiased: bool, name: str, threads: int) -> np.ndarray:
    e = _scale_exponent(feats)
    feats = _scaled(feats, e)
    gram = _gram(feats, None, _mean_shift(feats), e, threads)
    _check_finite_diagonal(gram, name)
    _core.cka_center_gram(gram, debiased)
    return gram


def _cka_from_hsic(hsic_xy: np.ndarray, hsic_x: np.ndarray, hsic_y: np.ndarray, debiased: bool) -> np.ndarray:
    """CKA from HSIC values; NaN (with a RuntimeWarning) where a self-HSIC is zero."""
    denom = np.sqrt(np.outer(hsic_x, hsic_y))  # self-HSICs are sums of squares, never negative
    undefined = ~(denom > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hsic_xy / denom
    np.clip(out, -1.0 if debiased else 0.0, 1.0, out=out)
    if undefined.any():
        out[undefined] = np.nan
        warnings.warn(f"{int(undefined.sum())} CKA value(s) are undefined (NaN): an activation set has "
                      "zero variance across samples", RuntimeWarning, stacklevel=3)
    return out


def _even_batches(n: int, batch_size) -> list[tuple[int, int]]:
    """ceil(n / batch_size) contiguous batches whose sizes differ by at most one."""
    count = -(-n // _validate.positive_int(batch_size, "batch_size"))
    edges = [n * k // count for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


# ----------------------------------------------------------------------------------- CKA

def cka(x, y, debiased: bool = False, features: str = "flatten", *, threads=None) -> float:
    """Linear CKA between two activation sets of the same N samples.

    Args:
        x, y: arrays (N, ...) with the samples first, e.g. (N, T, C) token maps; the feature
            sizes of x and y may differ.
        debiased: False for the biased HSIC estimator (N >= 2, result in [0, 1]), True for the
            unbiased one (N >= 4, result in [-1, 1]); see the module docstring.
        features: "flatten" (each sample's whole array), "cls" (token 0 of (N, T, C)) or
            "mean" (mean over the T tokens of (N, T, C)).
        threads: threads for this call's Gram products (None: ``pivot.model.default_threads()``); the
            result is bit-identical for any count.

    Returns:
        CKA as a Python float; symmetric in x and y, invariant to orthogonal transforms and
        scaling of either set. NaN (with a RuntimeWarning) when x or y is the same for every sample.

    Raises:
        ValueError: N differs between x and y, too few samples, non-finite values, bad shapes.
    """
    debiased = _check_debiased(debiased)
    _check_features_mode(features)
    fx, fy = _features(x, features, "x"), _features(y, features, "y")
    if fx.shape[0] != fy.shape[0]:
        raise ValueError(f"x and y must hold the same samples, got N = {fx.shape[0]} and N = {fy.shape[0]}")
    _check_sample_count(fx.shape[0], debiased, "x")
    threads = _gram_threads(threads)
    gx = _centered_gram(fx, debiased, "x", threads)[None]
    gy = _centered_gram(fy, debiased, "y", threads)[None]
    out = _cka_from_hsic(_core.cka_hsic(gx, gy, debiased), _core.cka_hsic_self(gx, debiased),
                         _core.cka_hsic_self(gy, debiased), debiased)
    return float(out[0, 0])


def _layer_list(outputs, name: str) -> list:
    if isinstance(outputs, np.ndarray) or not isinstance(outputs, Sequence):
        raise TypeError(f"{name} must be a list of per-encoder arrays (None for a skipped attention), "
                        f"got {type(outputs).__name__}")
    if len(outputs) == 0:
        raise ValueError(f"{name} is empty")
    return list(outputs)


def cka_matrix(mlp_outputs, attn_outputs, debiased: bool = False, features: str = "flatten", *,
               threads=None) -> np.ndarray:
    """The CKA matrix of the paper's Fig. 3a: entry [i, j] = CKA(MLP_i, A_j).

    Args:
        mlp_outputs: list of D arrays (N, T, C): the MLP-branch output of each encoder (as
            returned by ``model.forward_branches``).
        attn_outputs: list of D arrays (N, T, C), None for an encoder whose attention is skipped.
        debiased, features, threads: as in ``cka``.

    Returns:
        (len(mlp_outputs), len(attn_outputs)) float64 array; NaN in column j where A_j is None
        (and in row i where MLP_i is None). All pairs are computed, although the Path-Score
        (Algorithm 1) only reads the entries above the diagonal (i < j). Each Gram matrix is
        computed once, so the cost is one Gram per layer plus a cheap HSIC per pair.
    """
    debiased = _check_debiased(debiased)
    _check_features_mode(features)
    layout = _LayerLayout(mlp_outputs, attn_outputs)
    mlp_outputs, attn_outputs = list(mlp_outputs), list(attn_outputs)
    names = [f"mlp_outputs[{i}]" for i in range(len(mlp_outputs))] + \
            [f"attn_outputs[{j}]" for j in range(len(attn_outputs))]
    present = [(_features(a, features, name), name) for a, name in zip(mlp_outputs + attn_outputs, names)
               if a is not None]
    n = present[0][0].shape[0]
    for f, name in present:
        if f.shape[0] != n:
            raise ValueError(f"all activations must hold the same samples: {name} has N = {f.shape[0]}, "
                             f"the first array has N = {n}")
    _check_sample_count(n, debiased, "the activations")
    threads = _gram_threads(threads)
    grams = np.stack([_centered_gram(f, debiased, name, threads) for f, name in present])
    return layout.cka_matrix(grams, debiased)


class _LayerLayout:
    """Which encoders of a model's outputs are present, fixed by the first batch."""

    def __init__(self, mlp_outputs, attn_outputs):
        mlp_outputs = _layer_list(mlp_outputs, "mlp_outputs")
        attn_outputs = _layer_list(attn_outputs, "attn_outputs")
        self.n_mlp, self.n_attn = len(mlp_outputs), len(attn_outputs)
        self.mlp_present = tuple(a is not None for a in mlp_outputs)
        self.attn_present = tuple(a is not None for a in attn_outputs)
        if not (any(self.mlp_present) and any(self.attn_present)):
            raise ValueError("need at least one MLP output and one attention output that are not None")

    def features(self, mlp_outputs, attn_outputs, features: str, batch_n: int) -> list[np.ndarray]:
        """Feature matrices of the present layers, MLP first; checks the layout and batch size."""
        mlp_outputs = _layer_list(mlp_outputs, "mlp_outputs")
        attn_outputs = _layer_list(attn_outputs, "attn_outputs")
        if (tuple(a is not None for a in mlp_outputs) != self.mlp_present
                or tuple(a is not None for a in attn_outputs) != self.attn_present):
            raise ValueError("the encoders returning None changed between batches (the path must stay the same)")
        feats = []
        for kind, outputs in (("mlp_outputs", mlp_outputs), ("attn_outputs", attn_outputs)):
            for i, a in enumerate(outputs):
                if a is None:
                    continue
                f = _features(a, features, f"{kind}[{i}]")
                if f.shape[0] != batch_n:
                    raise ValueError(f"{kind}[{i}] has {f.shape[0]} samples in a batch of {batch_n}")
                feats.append(f)
        return feats

    def cka_matrix(self, grams: np.ndarray, debiased: bool) -> np.ndarray:
        """The (D_mlp, D_attn) matrix, NaN where an output is absent, from the centered Grams
        (layers, n, n) of the present layers, MLP first."""
        n_mlp = sum(self.mlp_present)
        gx, gy = grams[:n_mlp], grams[n_mlp:]
        return self.place(_cka_from_hsic(_core.cka_hsic(gx, gy, debiased), _core.cka_hsic_self(gx, debiased),
                                         _core.cka_hsic_self(gy, debiased), debiased))

    def place(self, values: np.ndarray) -> np.ndarray:
        """values (present MLP, present attention) into a NaN-filled (D_mlp, D_attn) matrix."""
        out = np.full((self.n_mlp, self.n_attn), np.nan)
        out[np.ix_(np.flatnonzero(self.mlp_present), np.flatnonzero(self.attn_present))] = values
        return out


class MinibatchCKA:
    """Minibatch CKA (Nguyen et al. 2021): HSIC values averaged over minibatches of samples.

    For streams too large to hold: each ``update`` takes one minibatch of activations, builds
    its small Gram matrices and adds the minibatch's HSIC of every (MLP_i, A_j) pair and of every
    layer with itself; ``result`` returns::

        CKA[i, j] = mean_b HSIC_b(MLP_i, A_j) / sqrt(mean_b HSIC_b(MLP_i, MLP_i) * mean_b HSIC_b(A_j, A_j))

    Memory is O(layers^2 + one minibatch); N is unbounded. This is a different estimator from
    the CKA of all N samples at once (``cka_matrix``): it equals it when there is a single
    minibatch, and with ``debiased=True`` (which Nguyen et al. recommend here: each minibatch's
    HSIC is then unbiased, so their mean is too) it estimates the same population quantity.
    Every minibatch has the same weight, whatever its size; each needs >= 4 samples (debiased)
    or >= 2 (biased).

    Example::

        acc = pivot.MinibatchCKA(debiased=True)
        for batch in batches:
            _, attn, mlp = model.forward_branches(batch)
            acc.update(mlp, attn)
        matrix = acc.result()
    """

    def __init__(self, debiased: bool = False, features: str = "flatten", *, threads=None):
        self.debiased = _check_debiased(debiased)
        _check_features_mode(features)
        self.features = features
        self.threads = threads
        self.n_batches = 0
        self.n_samples = 0
        self._layout = None
        self._hsic_xy = self._hsic_x = self._hsic_y = None

    def update(self, mlp_outputs, attn_outputs) -> None:
        """Adds one minibatch: lists of per-encoder arrays (b, ...) as in ``cka_matrix``."""
        mlp_outputs = _layer_list(mlp_outputs, "mlp_outputs")
        attn_outputs = _layer_list(attn_outputs, "attn_outputs")
        layout = self._layout or _LayerLayout(mlp_outputs, attn_outputs)
        first = next((a for a in mlp_outputs + attn_outputs if a is not None), None)
        if first is None or np.ndim(first) < 1:
            raise ValueError("a minibatch needs arrays (b, ...) of activations, not only None")
        batch_n = int(np.shape(first)[0])
        _check_sample_count(batch_n, self.debiased, "a minibatch")
        feats = layout.features(mlp_outputs, attn_outputs, self.features, batch_n)
        threads = _gram_threads(self.threads)
        grams = [_centered_gram(f, self.debiased, "a minibatch's activations", threads) for f in feats]
        n_x = sum(layout.mlp_present)
        gx, gy = np.stack(grams[:n_x]), np.stack(grams[n_x:])
        hsic_xy = _core.cka_hsic(gx, gy, self.debiased)  # HSICs, not yet CKA: they are averaged first
        hsic_x = _core.cka_hsic_self(gx, self.debiased)
        hsic_y = _core.cka_hsic_self(gy, self.debiased)
        if self._layout is None:
            self._layout = layout
            self._hsic_xy, self._hsic_x, self._hsic_y = hsic_xy, hsic_x, hsic_y
        else:
            self._hsic_xy += hsic_xy
            self._hsic_x += hsic_x
            self._hsic_y += hsic_y
        self.n_batches += 1
        self.n_samples += batch_n

    def result(self) -> np.ndarray:
        """The (D_mlp, D_attn) minibatch CKA matrix so far (NaN where an output is None)."""
        if self._layout is None:
            raise ValueError("MinibatchCKA.result() needs at least one update()")
        return self._layout.place(_cka_from_hsic(self._hsic_xy / self.n_batches, self._hsic_x / self.n_batches,
                                                 self._hsic_y / self.n_batches, self.debiased))


def _plan_passes(batch_sizes: list[int], bytes_per_sample: int, memory_limit: int) -> list[tuple[int, int]]:
    """Passes of model_cka: (first batch, end of the batches kept) with kept bytes <= memory_limit
    (always at least one batch). Pass k runs the model on batches first..end-1 (kept) and on every
    later batch (streamed past the kept ones)."""
    passes, start = [], 0
    while start < len(batch_sizes):
        end, kept = start, 0
        while end < len(batch_sizes) and (end == start or kept + batch_sizes[end] * bytes_per_sample <= memory_limit):
            kept += batch_sizes[end] * bytes_per_sample
            end += 1
        passes.append((start, end))
        start = end
    return passes


def model_cka(model, images, batch_size: int = 64, path=None, debiased: bool = False,
              features: str = "flatten", progress: bool = True, *, minibatch: bool = False,
              memory_limit: int = 2 << 30, threads=None) -> np.ndarray:
    """The CKA matrix [i, j] = CKA(MLP_i, A_j) of a model on a set of images, run in batches.

    Calls ``model.forward_branches(batch, path=path)`` (which returns ``(logits,
    attn_outputs, mlp_outputs)``) on batches of at most ``batch_size`` images (sizes made as even
    as possible), with a tqdm progress bar, and returns the same (D, D) matrix as ``cka_matrix``
    would on all outputs concatenated, without holding all activations of a large N at once.

    How (``minibatch=False``, the default: exact). The N x N Gram matrix of each layer is
    assembled block by block: block (a, b) of the Gram is (X_a - m)(X_b - m)^T for sample
    batches a and b, with m a shift from the first batch (any shift gives the same CKA).
    Features of batches are kept only up to ``memory_limit`` bytes: in one pass the model runs
    on every batch, keeping the first batches that fit and computing their blocks with each
    later batch as it streams past; if not all fit, another pass starts at the first batch not
    kept (rerunning the model on it and the ones after it; the model must be deterministic).
    When everything fits, which the default 2 GiB does for N = 256 flattened DeiT-S
    activations (24 maps of 197 x 384 float32 per image: 1.9 GB), that is a single pass; a
    lower ``memory_limit`` trades memory for reruns (B batches, k kept per pass: about
    B^2 / (2k) model calls). Memory: the Grams, (layers x N x N) float64, plus the kept
    features; the result equals ``cka_matrix`` on the concatenated outputs up to float rounding
    (about 1e-7). Why keep or rerun at all: a Gram can be summed over chunks of features (the C
    kernel does so) but not over batches of samples, since block (a, b) needs the features of
    both batches, and for flattened maps (T*C features > N samples) nothing smaller than the
    features determines those inner products.

    ``minibatch=True``: Nguyen et al.'s minibatch CKA instead (see ``MinibatchCKA``): the HSIC
    values of each batch are averaged. One pass, memory O(one batch) whatever N, but a
    different estimator (equal to the exact value only when there is a single batch); each
    batch needs >= 4 samples (debiased) or >= 2 (biased).

    Args:
        model: an object with ``forward_branches(images, path=...)``, e.g. ``pivot.ViT``.
        images: array (N, ...) of N >= 2 (biased) or N >= 4 (debiased) inputs for the model.
        batch_size: most images per model call.
        path: passed to the model (None: the model's own path); skipped attentions give NaN columns.
        debiased, features: as in ``cka``.
        progress: show a tqdm progress bar of model calls.
        minibatch: see above.
        memory_limit: bytes of float32 features kept between model calls in the exact mode.
        threads: threads of the Gram products (as in ``cka``), also passed to the model when not None.

    Returns:
        (D_mlp, D_attn) float64 array.
    """
    debiased = _check_debiased(debiased)
    _check_features_mode(features)
    if not hasattr(model, "forward_branches"):
        raise TypeError(f"model must have a forward_branches method, got {type(model).__name__}")
    if np.ndim(images) < 1:
        raise ValueError("images must be an array (N, ...) with the samples first")
    n = len(images)
    _check_sample_count(n, debiased, "images")
    bounds = _even_batches(n, batch_size)
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, numbers.Integral) or memory_limit < 0:
        raise ValueError(f"memory_limit must be a non-negative number of bytes, got {memory_limit!r}")
    kwargs = {"path": path} if threads is None else {"path": path, "threads": threads}

    def run(batch):
        start, stop = bounds[batch]
        result = model.forward_branches(images[start:stop], **kwargs)
        if not (isinstance(result, tuple) and len(result) == 3):
            raise TypeError("model.forward_branches must return (logits, attn_outputs, mlp_outputs)")
        return result[2], result[1], stop - start

    from tqdm.auto import tqdm

    if minibatch:
        _check_sample_count(min(b - a for a, b in bounds), debiased, "the smallest batch")
        acc = MinibatchCKA(debiased, features, threads=threads)
        for batch in tqdm(range(len(bounds)), desc="minibatch CKA", unit="batch", disable=not progress):
            mlp, attn, _ = run(batch)
            acc.update(mlp, attn)
        return acc.result()

    gram_threads = _gram_threads(threads)
    with tqdm(total=len(bounds), desc="CKA", unit="batch", disable=not progress) as bar:
        # The first batch fixes the layers present, the shifts and the plan of passes.
        mlp, attn, batch_n = run(0)
        bar.update()
        layout = _LayerLayout(mlp, attn)
        first_feats = layout.features(mlp, attn, features, batch_n)
        del mlp, attn
        # One scale per layer, from the first batch, so that every block of a layer's Gram agrees.
        scales = [_scale_exponent(f) for f in first_feats]
        first_feats = [_scaled(f, e) for f, e in zip(first_feats, scales)]
        shifts = [_mean_shift(f) for f in first_feats]
        grams = np.zeros((len(first_feats), n, n))
        bytes_per_sample = sum(f.shape[1] for f in first_feats) * 4
        passes = _plan_passes([b - a for a, b in bounds], bytes_per_sample, memory_limit)
        bar.total = sum(len(bounds) - start for start, _ in passes)
        bar.refresh()

        for pass_start, kept_end in passes:
            kept = {}  # batch index -> features of its present layers
            for batch in range(pass_start, len(bounds)):
                if batch == 0:
                    feats, first_feats = first_feats, None
                else:
                    mlp, attn, batch_n = run(batch)
                    bar.update()
                    feats = [_scaled(f, e) for f, e in zip(layout.features(mlp, attn, features, batch_n), scales)]
                    del mlp, attn
                b0, b1 = bounds[batch]
                if pass_start == 0:  # each batch's own block, on its first visit
                    for layer, f in enumerate(feats):
                        block = _gram(f, None, shifts[layer], scales[layer], gram_threads)
                        _check_finite_diagonal(block, "the model's activations")
                        grams[layer, b0:b1, b0:b1] = block
                for a, kept_feats in kept.items():  # blocks with the kept batches before this one
                    a0, a1 = bounds[a]
                    for layer, (fa, fb) in enumerate(zip(kept_feats, feats)):
                        block = _gram(fa, fb, shifts[layer], scales[layer], gram_threads)
                        grams[layer, a0:a1, b0:b1] = block
                        grams[layer, b0:b1, a0:a1] = block.T
                if batch < kept_end:
                    kept[batch] = feats
        for gram in grams:
            _core.cka_center_gram(gram, debiased)
        return layout.cka_matrix(grams, debiased)
