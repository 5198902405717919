"""Encoder modes beyond skipping: attention reuse (TReX) and softmax-free linear attention (Trio-ViT).

Paths over {0, 1, 2}
--------------------
``pivot.ViT``, ``pivot.flops``, ``pivot.sim.simulate`` and ``pivot.torch`` accept paths whose
entries are 0 (skip the attention), 1 (run it) or 2 (reuse): a reusing encoder takes the softmax
probabilities (per head, T x T) of the nearest earlier ACTIVE encoder and applies them to its own
V (from its own norm1 and the V third of its qkv) and its own proj; it computes no q k^T and no
softmax. A 2 needs a 1 somewhere before it (``pivot.normalize_path(path, depth,
allow_reuse=True)`` checks this). The engine keeps the probabilities of an active encoder in its
workspace only when a later encoder reuses them ((B, NH, T, T) floats).

Linear attention
----------------
``ViTConfig(attention="relu_linear")`` runs every encoder's attention as ReLU linear attention,
per head ``out = phi(Q) (phi(K)^T V) / (phi(Q) (phi(K)^T 1) + eps)`` with ``phi = ReLU`` and
``eps = pivot.config.LINEAR_ATTENTION_EPS`` (1e-6; a query whose ReLU'd products are all zero
gets output 0 instead of NaN). It uses the same weights as softmax attention (a model must be
fine-tuned to work well with it), so it is a config field rather than a path value; paths over
{0, 1} still choose which encoders skip attention. Its cost is linear in the tokens: phi(K)^T V
is (hd x T) x (T x hd), phi(Q) (...) is (T x hd) x (hd x hd). The simulator maps both products on
the array with one extra column that carries the normalizer (phi(K)^T [V | 1] and
phi(Q) [KV | ksum]); the ReLU of Q and K and the final division run on the PS as one
elementwise pass each (priced like the GELU lookup); no softmax runs.

Choosing reuse encoders
-----------------------
``attention_cka_matrix(model, images)`` gives the linear CKA between the attention maps of every
pair of encoders (all active), the similarity TReX motivates reuse with. ``reuse_paths(sim)``
finds, for every number k of reusing encoders, the path that maximizes the summed similarity of
each reusing encoder j to the encoder it reuses from (the nearest earlier active one), by exact
dynamic programming over (encoder, reuses so far, last active encoder). ``search_reuse`` picks the
smallest k whose simulated delay meets a target (every reuse saves the same delay, the encoders
having one shape, so fewer reuses is never slower; the smallest k keeps the most attention).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import _validate
from .config import normalize_path
from .model import ViT, prepare_images

__all__ = ["attention_maps", "attention_cka_matrix", "ReuseChoice", "reuse_paths", "search_reuse"]


def attention_maps(model, images, path=None, threads=None) -> list:
    """Per encoder, the softmax probabilities it applied, (B, num_heads, T, T) float32: an active
    encoder's own, a reusing encoder's reused ones (the same array as its source's); None for a
    skipped encoder. ``model``: a ``pivot.ViT`` with softmax attention, at any precision (int8: the
    uint8 probabilities its attention applied, dequantized). ``images`` as ``pivot.ViT`` takes them."""
    if not isinstance(model, ViT) or model.config.attention != "softmax":
        raise ValueError("attention maps exist only for a pivot.ViT with softmax attention, got "
                         + (type(model).__name__ if not isinstance(model, ViT) else f"attention={model.config.attention!r}"))
    (_, _, _, probs), path = model._run(images, path, threads, True, True)
    out, it, last = [], iter(probs), None
    for mode in path.tolist():
        if mode == 1:
            last = next(it)
        out.append(last if mode else None)
    return out


def _linear_cka_from_grams(grams: list) -> np.ndarray:
    D = len(grams)
    n = grams[0].shape[0]
    H = np.eye(n) - 1.0 / n
    centered = [H @ g @ H for g in grams]
    norms = np.array([np.sqrt(np.sum(c * c)) for c in centered])
    out = np.full((D, D), np.nan)
    for i in range(D):
        for j in range(i, D):
            denom = norms[i] * norms[j]
            out[i, j] = out[j, i] = np.sum(centered[i] * centered[j]) / denom if denom > 0 else np.nan
    return np.clip(out, 0.0, 1.0)


def attention_cka_matrix(model, images, batch_size: int = 32, threads=None) -> np.ndarray:
    """(D, D) symmetric linear CKA (biased estimator) between the attention maps of every pair of
    encoders, all encoders active. Each sample's feature is its whole (num_heads, T, T) map
    flattened. NaN where a map is constant over the samples. Needs at least 2 images; memory
    holds every map: N * D * num_heads * T^2 * 4 bytes (float32)."""
    if not isinstance(model, ViT):
        raise ValueError(f"attention_cka_matrix takes a pivot.ViT, got {type(model).__name__}")
    images = prepare_images(model.config, images)
    if images.shape[0] < 2:
        raise ValueError(f"attention_cka_matrix needs at least 2 images, got {images.shape[0]}")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    D = model.config.depth
    feats = [[] for _ in range(D)]
    try:
        from tqdm import tqdm
        starts = tqdm(range(0, len(images), batch_size), desc="attention maps", leave=False,
                      disable=len(images) <= batch_size)
    except ImportError:  # pragma: no cover
        starts = range(0, len(images), batch_size)
    for s in starts:
        maps = attention_maps(model, images[s:s + batch_size], path=np.ones(D, np.uint8), threads=threads)
        for i, m in enumerate(maps):
            feats[i].append(m.reshape(m.shape[0], -1))
    grams = []
    for f in feats:
        x = np.concatenate(f).astype(np.float64)
        x -= x.mean(axis=0)
        grams.append(x @ x.T)
    return _linear_cka_from_grams(grams)


@dataclasses.dataclass(frozen=True)
class ReuseChoice:
    """A path over {0, 1, 2} with ``num_reuse`` reusing encoders and its ``score``: the summed
    similarity of each reusing encoder to its source. ``delay_ms`` / ``edp`` (J x ms) when simulated."""
    num_reuse: int
    path: tuple
    score: float
    delay_ms: float | None = None
    edp: float | None = None


def _check_similarity(similarity, depth=None) -> np.ndarray:
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] < 1:
        raise ValueError(f"similarity must be a square (D, D) matrix, got shape {s.shape}")
    if depth is not None and s.shape[0] != depth:
        raise ValueError(f"similarity is {s.shape[0]}x{s.shape[0]} but the model has {depth} encoders")
    return s


def reuse_paths(similarity, base_path=None) -> dict:
    """For every feasible number k of reusing encoders, the best path: ``{k: ReuseChoice}``.

    Encoders that ``base_path`` (0/1, default all active) skips stay skipped; its active encoders
    either stay active or reuse (2) the nearest earlier active one. The score of a path is the sum
    over reusing encoders j of ``similarity[source(j), j]`` (``similarity[i, j]`` for i < j is
    read; NaN counts as 0); exact dynamic programming, O(D^3) states.
    """
    s = np.nan_to_num(_check_similarity(similarity), nan=0.0)
    D = s.shape[0]
    base = normalize_path(base_path, D)
    NEG = -np.inf
    # best[(r, last)] = (score, path list) after the encoders seen so far; last = -1: none active yet
    best = {(0, -1): (0.0, [])}
    for j in range(D):
        nxt = {}

        def offer(key, score, path):
            if key not in nxt or score > nxt[key][0] + 1e-15:
                nxt[key] = (score, path)

        for (r, last), (score, path) in best.items():
            if base[j] == 0:
                offer((r, last), score, path + [0])
                continue
            offer((r, j), score, path + [1])
            if last >= 0:
                offer((r + 1, last), score + s[last, j], path + [2])
        best = nxt
    out = {}
    for (r, _), (score, path) in best.items():
        if score > out.get(r, (NEG,))[0] if r in out else True:
            out[r] = (score, path)
    return {r: ReuseChoice(num_reuse=r, path=tuple(p), score=float(sc)) for r, (sc, p) in sorted(out.items())}


def search_reuse(model_or_config, similarity, target_delay_ms: float, hw=None, base_path=None,
                 batch: int = 1) -> ReuseChoice:
    """The reuse path with the fewest reusing encoders (best similarity among those) whose simulated
    delay on ``hw`` (default ``pivot.sim.ZCU102``) is at most ``target_delay_ms``. Raises
    ValueError when even the most reuse misses the target (the message gives the fastest delay)."""
    from . import sim

    hw = sim.ZCU102 if hw is None else hw
    config = getattr(model_or_config, "config", model_or_config)
    if config.attention != "softmax":
        raise ValueError("attention reuse needs softmax attention")
    if not (isinstance(target_delay_ms, (int, float, np.integer, np.floating)) and target_delay_ms > 0):
        raise ValueError(f"target_delay_ms must be a positive number, got {target_delay_ms!r}")
    choices = reuse_paths(_check_similarity(similarity, config.depth), base_path)
    fastest = None
    for k, choice in choices.items():
        report = sim.simulate(config, choice.path, hw=hw, batch=batch)
        choice = dataclasses.replace(choice, delay_ms=report.delay_ms, edp=report.edp)
        if report.delay_ms <= target_delay_ms:
            return choice
        fastest = choice
    raise ValueError(f"no reuse path meets {target_delay_ms} ms: the most reuse ({fastest.num_reuse} encoders, "
                     f"path {''.join(map(str, fastest.path))}) takes {fastest.delay_ms:.3f} ms")
