"""pivot on a Ray cluster: the two-effort cascade over large image sets, the pair search and
hardware sweeps, for when one machine is not enough. Needs ``pip install "pivot[ray]"`` (Ray Data
2.60); importing pivot does not import Ray, and every function here gives the same results as its
single-process twin (``MultiEffort.predict``, ``pivot.pareto``, ``pivot.search``, ``pivot.sim.sweep``).

    import ray, pivot, pivot.distributed as pd
    ray.init()                                          # or ray.init(address="HEAD:6379")
    efforts = pivot.zoo.load("fmnist_vit12_p4")
    images, labels = pivot.datasets.fashion_mnist("test")
    cascade = pivot.MultiEffort(efforts[6], efforts[12], threshold=0.33)
    print(pd.cascade_evaluate(cascade, pd.from_numpy(images, labels), actors=2).summary())

Models travel to the workers by pickle (config, path, precision and weights; no C state), once
per actor. Each worker's pivot uses the CPUs Ray gives it (``OMP_NUM_THREADS``), so workers do
not oversubscribe their cores. Keep actor pools smaller than the cluster's CPUs when the input
dataset is read from files: Ray Data's read tasks need a CPU too.

How the cascade runs (two passes over the dataset, both streaming):

1. Stage 1: every row through the low effort in a pool of ``actors`` actors (the model built
   once per actor). Its small results (id, prediction, entropy, logits; no images) come back.
2. Stage 2: the dataset again, keeping only the rows whose entropy is above the threshold (or
   NaN), regrouped into full batches of ``batch_size`` for the high effort's pool.

Rows are matched by the ``id`` column (``from_numpy`` adds it). A task or actor lost with its
node is retried by Ray; since results are keyed by id, no row is lost or counted twice.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from typing import Optional

import numpy as np

from . import effort_search as _search
from . import _validate
from .inference import MultiEffort, check_labels, entropy, model_path, num_classes, run_model
from .model import check_pixels

__all__ = ["from_numpy", "cascade_predict", "cascade_evaluate", "CascadeEvaluation", "effort_logits", "pareto",
           "search", "RayExecutor"]

_RESULT_COLUMNS = ("prediction", "entropy", "used_high", "effort", "logits")


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError('pivot.distributed needs Ray: pip install "pivot[ray]" (ray[data]==2.60.*)') from None
    if not ray.is_initialized():
        ray.init()
    return ray


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_cpus(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise ValueError(f"num_cpus must be a positive number, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- datasets

def from_numpy(images, labels=None, rows_per_block: int = 1024):
    """A Ray Dataset of ``images`` (N, C, H, W) with columns ``id`` (0..N-1), ``image`` and, when
    given, ``label``: what ``cascade_predict`` and ``cascade_evaluate`` take. The images keep
    their kind: uint8 pixels stay uint8 (each model normalizes them as ``pivot.ViT`` does), floats
    (already normalized) become float32; other dtypes and non-finite values are refused
    (``pivot.model.check_pixels``)."""
    ray = _ray()
    import pyarrow as pa
    from ray.data.extensions import ArrowTensorArray

    images = check_pixels(_validate.images(images))
    dtype = np.uint8 if images.dtype == np.uint8 else np.float32
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D (N, channels, height, width), got shape {images.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be (N,) integer classes for the {images.shape[0]} images, got "
                             f"{labels.dtype}{list(labels.shape)}")
    rows_per_block = _positive_int(rows_per_block, "rows_per_block")
    tables = []
    for start in range(0, images.shape[0], rows_per_block):
        stop = min(start + rows_per_block, images.shape[0])
        columns = {"id": pa.array(np.arange(start, stop, dtype=np.int64)),
                   "image": ArrowTensorArray.from_numpy(np.ascontiguousarray(images[start:stop], dtype))}
        if labels is not None:
            columns["label"] = pa.array(labels[start:stop].astype(np.int64))
        tables.append(pa.table(columns))
    return ray.data.from_arrow(tables)


# ----------------------------------------------------------------------------- actors

def _effort_of(model, high: bool) -> int:
    path = model_path(model)
    return sum(1 for v in path if v) if path is not None else int(high)


class _Stage:
    """One actor of a stage's pool: the model is fetched once, then batches stream through it."""

    def __init__(self, cascade_ref, high, threads, image_column, id_column):
        import ray
        cascade = ray.get(cascade_ref)
        self.model = cascade.high if high else cascade.low
        self.threshold = cascade.threshold
        self.high, self.threads = high, threads
        self.effort = _effort_of(self.model, high)
        self.image_column, self.id_column = image_column, id_column

    def __call__(self, batch: dict) -> dict:
        images = batch[self.image_column]
        if isinstance(images, np.ndarray) and images.dtype == object:  # a column of arrays of several shapes
            shapes = sorted({tuple(np.shape(im)) for im in images})
            raise ValueError(f"the images of column {self.image_column!r} have different shapes {shapes[:4]}; "
                             "every image must have the model's shape")
        images = np.asarray(images)
        out = {k: v for k, v in batch.items() if k != self.image_column}
        if images.shape[0] == 0:
            return out
        logits = run_model(self.model, images, self.threads)
        out["prediction"] = np.argmax(logits, axis=1).astype(np.int64)
        n = images.shape[0]
        if self.high:
            out["used_high"] = np.ones(n, dtype=bool)
        else:
            ent = entropy(logits)
            out["entropy"] = ent
            out["used_high"] = ~(ent.astype(np.float64) <= self.threshold)  # NaN entropy -> high effort
        out["effort"] = np.full(n, self.effort, dtype=np.int64)
        out["logits"] = logits
        return out


def _keep_rows(batch: dict, ids_ref, id_column) -> dict:
    """The rows of ``batch`` whose id is in the uncertain set: stage 2's input."""
    import ray
    ids = ray.get(ids_ref) if isinstance(ids_ref, ray.ObjectRef) else ids_ref
    keep = np.isin(np.asarray(batch[id_column]), ids)
    return {k: np.asarray(v)[keep] for k, v in batch.items()}


def _collect(dataset) -> dict:
    """Every column of ``dataset`` as one NumPy array, on the driver."""
    parts: dict = {}
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for key, value in batch.items():
            parts.setdefault(key, []).append(np.asarray(value))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _check_dataset(dataset, image_column, id_column):
    ray = _ray()
    if isinstance(dataset, np.ndarray):
        return from_numpy(dataset)
    if not isinstance(dataset, ray.data.Dataset):
        raise TypeError(f"dataset must be a ray.data.Dataset (see pivot.distributed.from_numpy) or an image array, "
                        f"got {type(dataset).__name__}")
    schema = dataset.schema()
    if schema is None:
        raise ValueError("the dataset is empty (no rows, no columns): nothing to classify")
    names = schema.names
    for column, what in ((image_column, "image_column"), (id_column, "id_column")):
        if column not in names:
            raise ValueError(f"the dataset has no column {column!r} ({what}); its columns: {names}. "
                             f"pivot.distributed.from_numpy(images, labels) builds one with 'id' and 'image'")
    taken = [c for c in _RESULT_COLUMNS if c in names]
    if taken:
        raise ValueError(f"the dataset already has column(s) {taken}, where cascade_predict writes its results; "
                         "rename them first (e.g. dataset.rename_columns({...}))")
    kind = type(schema.types[names.index(image_column)]).__name__
    if "VariableShaped" in kind:
        raise ValueError(f"the images of column {image_column!r} have different shapes ({kind}); every image must "
                         "have the model's shape")
    return dataset


def cascade_predict(cascade: MultiEffort, dataset, *, actors: int = 1, high_actors: Optional[int] = None,
                    batch_size: int = 256, num_cpus: float = 1, threads=None, image_column: str = "image",
                    id_column: str = "id", ray_remote_args: Optional[dict] = None):
    """``cascade`` (a ``pivot.MultiEffort``) on every row of a Ray Dataset, on the cluster.

    ``dataset``: a ``ray.data.Dataset`` with an image column (each row (C, H, W)) and a unique
    integer id column (``from_numpy`` makes one), or an image array. Stage 1 runs the low effort on
    every row in a pool of ``actors`` actors of ``num_cpus`` CPUs each; stage 2 runs the high
    effort only on the rows above the threshold, regrouped into batches of ``batch_size``, in a
    pool of ``high_actors`` (default ``actors``). ``threads`` per model call (None: the CPUs Ray
    gave the actor). ``ray_remote_args``: more options for the stages' actors (e.g.
    ``{"resources": {...}}`` to place them).

    Returns a Ray Dataset sorted by id, one row per input row with its other columns (labels
    ...) and ``prediction`` (int64), ``entropy`` (float32, low effort), ``used_high`` (bool),
    ``effort`` (the deciding model's active attentions; 0 / 1 for models without a path) and
    ``logits`` (K float32): equal to ``cascade.predict`` on the same images, row for row, when
    the batches are the same; another batching changes logits by float32 rounding, which can move
    a row whose entropy equals the threshold to the other side (docs/scale-out.md).
    """
    ray = _ray()
    if not isinstance(cascade, MultiEffort):
        raise TypeError(f"cascade must be a pivot.MultiEffort, got {type(cascade).__name__}")
    dataset = _check_dataset(dataset, image_column, id_column)
    actors = _positive_int(actors, "actors")
    high_actors = actors if high_actors is None else _positive_int(high_actors, "high_actors")
    batch_size = _positive_int(batch_size, "batch_size")
    num_cpus = _positive_cpus(num_cpus)
    cascade_ref = ray.put(cascade)

    def stage(ds, high, pool):
        return ds.map_batches(_Stage, fn_constructor_args=(cascade_ref, high, threads, image_column, id_column),
                              batch_size=batch_size, batch_format="numpy", num_cpus=num_cpus,
                              compute=ray.data.ActorPoolStrategy(size=pool), **(ray_remote_args or {}))

    first = _collect(stage(dataset, False, actors))
    if not first or first[id_column].size == 0:
        raise ValueError("the dataset is empty: nothing to classify")
    if first[id_column].size != np.unique(first[id_column]).size:
        raise ValueError(f"the dataset's {id_column!r} column has repeated values; ids must be unique")
    order = np.argsort(first[id_column], kind="stable")
    result = {k: v[order] for k, v in first.items()}
    high_ids = result[id_column][result["used_high"]]
    if high_ids.size:
        ids_ref = ray.put(high_ids)
        # A fraction of a CPU: the filter must not wait for a pool's CPU, nor fuse into its actors
        # (fused, it would hand stage 2 the filter's short batches instead of full ones).
        uncertain = dataset.map_batches(_keep_rows, fn_args=(ids_ref, id_column), batch_format="numpy", num_cpus=0.1)
        second = _collect(stage(uncertain, True, high_actors))
        at = np.searchsorted(result[id_column], second[id_column])
        if second[id_column].size != high_ids.size or not np.array_equal(np.sort(second[id_column]), high_ids):
            raise RuntimeError("stage 2 did not return each uncertain row exactly once")  # Ray retries tasks; defensive
        for key in ("prediction", "effort", "logits"):
            result[key][at] = second[key]
    return _to_dataset(ray, result)


def _to_dataset(ray, columns: dict):
    import pyarrow as pa
    from ray.data.extensions import ArrowTensorArray
    arrays = {k: (ArrowTensorArray.from_numpy(v) if v.ndim > 1 else pa.array(v)) for k, v in columns.items()}
    return ray.data.from_arrow(pa.table(arrays))


@dataclasses.dataclass(frozen=True)
class CascadeEvaluation:
    """What ``cascade_evaluate`` measured: accuracy over the labelled rows, F_L, rows per effort
    (``counts``: {effort: rows it decided}), and the wall-clock throughput of ``cascade_predict``."""
    n_images: int
    accuracy: float
    f_low: float
    n_low: int
    n_high: int
    counts: dict
    seconds: float
    images_per_s: float

    def summary(self) -> str:
        return (f"{self.n_images} images: accuracy {100 * self.accuracy:.2f}%, F_L={self.f_low:.3f} "
                f"({self.n_high} on the high effort), {self.images_per_s:.1f} images/s ({self.seconds:.1f} s)")


def cascade_evaluate(cascade: MultiEffort, dataset, *, label_column: str = "label", **kwargs) -> CascadeEvaluation:
    """Run ``cascade_predict`` (same keyword arguments) on a labelled dataset and measure it:
    accuracy, F_L, how many rows each effort decided, and images/s (wall clock, both stages)."""
    start = time.perf_counter()
    out = _collect(cascade_predict(cascade, dataset, **kwargs))
    seconds = time.perf_counter() - start
    if label_column not in out:
        raise ValueError(f"the dataset has no label column {label_column!r}; columns: {sorted(out)}")
    n = int(out["prediction"].size)
    labels = check_labels(out[label_column], n, num_classes(cascade.low))
    n_high = int(out["used_high"].sum())
    efforts, counts = np.unique(out["effort"], return_counts=True)
    return CascadeEvaluation(n_images=n, accuracy=float((out["prediction"] == labels).mean()), f_low=(n - n_high) / n,
                             n_low=n - n_high, n_high=n_high, counts={int(e): int(c) for e, c in zip(efforts, counts)},
                             seconds=seconds, images_per_s=n / seconds)


# ----------------------------------------------------------------------------- search and pareto

def _logits_task(model, images, start, stop, threads):
    return run_model(model, images[start:stop], threads)


def effort_logits(efforts: dict, images, *, chunk: int = 1024, num_cpus: float = 1, threads=None) -> dict:
    """Each effort's logits (N, K) float32 on ``images``, computed on the cluster: the models and the
    images are put in the object store once, then one Ray task per (effort, chunk of ``chunk``
    images), all in flight together. Equal to running each model here."""
    ray = _ray()
    efforts = _search._check_efforts(efforts)
    images = _validate.images(images)
    chunk = _positive_int(chunk, "chunk")
    task = ray.remote(num_cpus=_positive_cpus(num_cpus))(_logits_task)
    images_ref = ray.put(images)
    refs = {}
    for effort, model in efforts.items():
        model_ref = ray.put(model)
        refs[effort] = [task.remote(model_ref, images_ref, a, min(a + chunk, images.shape[0]), threads)
                        for a in range(0, images.shape[0], chunk)]
    return {effort: np.concatenate(ray.get(parts)) for effort, parts in refs.items()}


class _Precomputed:
    """A stand-in model whose "images" are row indices into logits computed elsewhere."""

    def __init__(self, model, logits):
        self.config, self.path, self._logits = model.config, getattr(model, "path", None), logits

    def __call__(self, rows, threads=None):
        return self._logits[np.asarray(rows)[:, 0]]


def _on_logits(efforts, images, labels, kwargs):
    for key in ("threads", "batch_size"):
        kwargs.pop(key, None)
    ray_options = {k: kwargs.pop(k) for k in ("chunk", "num_cpus") if k in kwargs}
    images = _validate.images(images)
    logits = effort_logits(efforts, images, **ray_options)
    stand_ins = {e: _Precomputed(m, logits[e]) for e, m in _search._check_efforts(efforts).items()}
    return stand_ins, np.arange(images.shape[0]).reshape(-1, 1), labels


def pareto(efforts, images, labels, **kwargs):
    """``pivot.pareto`` with each effort's logits computed on the cluster (``effort_logits``;
    ``chunk`` and ``num_cpus`` are its options, the rest are ``pivot.pareto``'s): the same result."""
    stand_ins, rows, labels = _on_logits(efforts, images, labels, kwargs)
    return _search.pareto(stand_ins, rows, labels, **kwargs)


def search(efforts, images, labels, target_delay_ms, **kwargs):
    """``pivot.search`` with each effort's logits computed on the cluster (see ``pareto``)."""
    stand_ins, rows, labels = _on_logits(efforts, images, labels, kwargs)
    return _search.search(stand_ins, rows, labels, target_delay_ms, **kwargs)


# ----------------------------------------------------------------------------- executor

class RayExecutor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` running each call as a Ray task of ``num_cpus`` CPUs, e.g.
    ``pivot.sim.sweep(config, grid, executor=RayExecutor())``."""

    def __init__(self, num_cpus: float = 1):
        self._ray = _ray()
        self._num_cpus = _positive_cpus(num_cpus)
        self._max_workers = max(1, int(self._ray.cluster_resources().get("CPU", 1) // self._num_cpus))
        self._remote = {}

    def submit(self, fn, /, *args, **kwargs):
        if fn not in self._remote:
            self._remote[fn] = self._ray.remote(num_cpus=self._num_cpus)(fn)
        return self._remote[fn].remote(*args, **kwargs).future()
