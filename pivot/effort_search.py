"""PIVOT Phase 2: choose the low/high effort pair and threshold for a delay target (section 3.3),
and the whole accuracy-EDP front over all pairs and thresholds.

``efforts`` maps an effort (the number of active attentions) to a model running with that
effort's path, e.g. ``{e: vit.with_path(p.path) for e, p in pivot.best_paths(cka).items()}``.
Every model runs ONCE on the images; all pairs and thresholds reuse those logits. Delay and
energy come from the simulator (``pivot.sim.simulate_pair``), with the pair's F_H.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import Mapping, Optional

import numpy as np

from . import _validate, sim
from .config import path_effort
from .inference import (MultiEffort, check_labels, check_lec, entropy, low_count_needed,
                        model_path, num_classes, run_model)

__all__ = ["search", "pareto", "SearchResult", "SearchCandidate", "SearchTargetError", "ParetoResult",
           "ParetoPoint"]


# ----------------------------------------------------------------------------- simulator access

def _simulate_pair(low, high, f_high: float, hw):
    """The simulator's PairReport of a low/high pair with a fraction f_high re-run on the high effort."""
    return sim.simulate_pair(low, high, f_high, hw=hw)


def _simulate(model, hw):
    """The simulator's SimReport of one model with its own path."""
    return sim.simulate(model, hw=hw)


# ----------------------------------------------------------------------------- checks

def _check_efforts(efforts) -> dict:
    """Efforts as {int effort: model}, ascending; same classes; each path has `effort` active attentions."""
    if not isinstance(efforts, Mapping):
        raise TypeError(f"efforts must be a mapping effort -> model, got {type(efforts).__name__}")
    if len(efforts) < 2:
        raise ValueError(f"need at least 2 efforts to form a low/high pair, got {len(efforts)}")
    checked = {}
    for effort, model in efforts.items():
        if isinstance(effort, bool) or not isinstance(effort, (int, np.integer)) or effort < 0:
            raise TypeError(f"efforts keys must be non-negative integers (active attentions), got {effort!r}")
        path = model_path(model)
        if path is not None and path_effort(path) != effort:
            raise ValueError(f"efforts[{effort}] has path {''.join(map(str, path))} with {path_effort(path)} computed "
                             f"attentions; the key must be its effort (the number of 1s: computed attentions; "
                             f"a reusing encoder, 2, computes none)")
        checked[int(effort)] = model
    classes = {e: num_classes(m) for e, m in checked.items()}
    if len(set(classes.values())) > 1:
        detail = ", ".join(f"effort {e}: {k}" for e, k in sorted(classes.items()))
        raise ValueError(f"the efforts' models disagree in their number of classes ({detail})")
    return dict(sorted(checked.items()))


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _check_thresholds(thresholds) -> Optional[np.ndarray]:
    """A user threshold grid as sorted unique float64 values in [0, 1] (None: the default grid)."""
    if thresholds is None:
        return None
    arr = np.asarray(thresholds, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("thresholds is empty")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"thresholds must be finite values in [0, 1] (normalized entropy), got range "
                         f"[{arr.min()}, {arr.max()}]")
    return np.unique(arr)


def _path_text(path) -> str:
    return "" if path is None else "".join(map(str, path))


# ----------------------------------------------------------------------------- shared evaluation

class _EffortOutputs:
    """Each effort's low-effort entropy and per-input correctness, from ONE run of each model."""

    def __init__(self, efforts: dict, images, labels, threads, batch_size, progress: bool):
        from tqdm import tqdm
        self.n = images.shape[0]
        self.entropy: dict[int, np.ndarray] = {}
        self.correct: dict[int, np.ndarray] = {}
        # Largest effort first: the slowest model starts the bar, so its rate estimate is honest.
        for effort in tqdm(sorted(efforts, reverse=True), desc="running efforts", unit="effort", disable=not progress):
            logits = run_model(efforts[effort], images, threads, batch_size)
            self.entropy[effort] = entropy(logits).astype(np.float64)
            self.correct[effort] = np.argmax(logits, axis=1) == labels

    def accuracy(self, effort: int) -> float:
        return float(self.correct[effort].mean())

    def pair_curve(self, low: int, high: int, grid: Optional[np.ndarray]):
        """For each threshold of the grid (ascending): (thresholds, n_low, c_low, c_high).

        Default grid: the sorted unique (non-NaN) low-effort entropies, so each step lets the next
        group of equal-entropy inputs stay on the low effort. An input stays low iff E <= Th; NaN
        entropies always go high. Equivalent to applying the rule at every threshold, in O(N log N).
        """
        ent = self.entropy[low]
        if grid is None:
            grid = np.unique(ent[~np.isnan(ent)])
        order = np.argsort(ent, kind="stable")  # NaN last: never <= a threshold
        n_low = np.searchsorted(ent[order], grid, side="right")
        low_hits = np.concatenate([[0], np.cumsum(self.correct[low][order])])
        high_hits = np.concatenate([[0], np.cumsum(self.correct[high][order])])
        c_low = low_hits[n_low]
        c_high = high_hits[-1] - high_hits[n_low]
        return grid, n_low, c_low, c_high


def _ordered_pairs(efforts) -> list[tuple[int, int]]:
    """All (low, high) pairs with low < high, from the most active attentions down: by low effort
    descending, then high effort descending. With F_L >= LEC most inputs stop at the low effort,
    so the low effort sets most of the delay: this order walks the delay down nearly
    monotonically, and for one low effort tries the more accurate (larger) high effort first."""
    keys = sorted(efforts, reverse=True)
    return [(low, high) for low in keys for high in keys if high > low]


def _number(report, name: str) -> float:
    return float(getattr(report, name))


# ----------------------------------------------------------------------------- search

@dataclasses.dataclass(frozen=True)
class SearchCandidate:
    """One pair tried by ``pivot.search``, at the first threshold where F_L >= LEC.

    ``threshold`` is NaN (and the costs NaN) when no threshold of the grid reaches the LEC.
    """
    low: int
    high: int
    threshold: float
    f_low: float
    accuracy: float
    c_low: int
    c_high: int
    delay_ms: float
    energy_j: float
    edp: float
    accepted: bool
    note: str

    @property
    def f_high(self) -> float:
        return 1.0 - self.f_low if not math.isnan(self.f_low) else float("nan")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class SearchTargetError(ValueError):
    """No effort pair meets the delay target; ``.trail`` holds every candidate tried."""

    def __init__(self, message: str, trail):
        super().__init__(message)
        self.trail = tuple(trail)


_RESULT_FIELDS = ("low", "high", "low_path", "high_path", "threshold", "accuracy", "f_low", "f_high", "c_low",
                  "c_high", "n_images", "delay_ms", "energy_j", "edp", "fps_per_w", "target_delay_ms", "lec",
                  "tolerance")


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """The effort pair chosen by ``pivot.search`` and how it was found.

    ``low``/``high`` are efforts (active attentions), ``low_path``/``high_path`` their paths
    (tuples of 0/1, or None for models without one), ``threshold`` the entropy threshold,
    ``accuracy``/``f_low``/``f_high``/``c_low``/``c_high`` measured on the search images,
    ``delay_ms``/``energy_j``/``edp`` (J x ms)/``fps_per_w`` from the simulator, ``trail`` every
    candidate tried in order (the last one accepted), ``report`` the simulator's PairReport.
    """
    low: int
    high: int
    low_path: Optional[tuple]
    high_path: Optional[tuple]
    threshold: float
    accuracy: float
    f_low: float
    f_high: float
    c_low: int
    c_high: int
    n_images: int
    delay_ms: float
    energy_j: float
    edp: float
    fps_per_w: float
    target_delay_ms: float
    lec: float
    tolerance: float
    trail: tuple
    report: object = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict: the fields above (paths as '0'/'1' strings) and the trail as dicts."""
        out = {name: getattr(self, name) for name in _RESULT_FIELDS}
        out["low_path"], out["high_path"] = _path_text(self.low_path), _path_text(self.high_path)
        out["trail"] = [c.to_dict() for c in self.trail]
        return out

    def to_csv(self, path=None) -> str:
        """The trail as CSV (one row per candidate, ``accepted`` marks the chosen one); written to
        ``path`` when given. Returns the CSV text."""
        return _write_csv([c.to_dict() for c in self.trail], list(SearchCandidate.__dataclass_fields__), path)

    def multi_effort(self, efforts) -> MultiEffort:
        """The chosen cascade, ``MultiEffort(efforts[low], efforts[high], threshold)``."""
        return MultiEffort(efforts[self.low], efforts[self.high], self.threshold)

    def summary(self) -> str:
        """A few readable lines: the pair, threshold, accuracy and simulated cost."""
        return (f"efforts {self.low} (path {_path_text(self.low_path) or '-'}) / {self.high} (path "
                f"{_path_text(self.high_path) or '-'}), threshold {self.threshold:.4g}\n"
                f"F_L {100 * self.f_low:.1f}% (LEC {100 * self.lec:.0f}%), accuracy {100 * self.accuracy:.2f}% "
                f"on {self.n_images} inputs\n"
                f"delay {self.delay_ms:.3f} ms (target {self.target_delay_ms:.3f} ms +/- "
                f"{100 * self.tolerance:.0f}%), energy {self.energy_j:.4g} J, EDP {self.edp:.4g} J x ms, "
                f"{self.fps_per_w:.3g} FPS/W; {len(self.trail)} candidate(s) tried")


def search(efforts, images, labels, target_delay_ms, lec=0.8, hw=sim.ZCU102, tolerance=0.05, thresholds=None,
           progress=True, threads=None, batch_size=None) -> SearchResult:
    """PIVOT's Phase 2: the first effort pair, from the most active attentions down, whose delay
    at F_L >= ``lec`` is within ``tolerance`` of ``target_delay_ms``.

    ``efforts``: {effort: model}, at least 2, same classes; each model's path must have
    ``effort`` active attentions. ``images`` (N, ...) and ``labels`` (N,) integer classes: the
    calibration batch (the paper uses 256 training images). For each pair (ordered by low effort
    descending, then high effort descending) the threshold is raised step by step along the grid
    (``thresholds``, or by default the sorted unique low-effort entropies of the images) until
    F_L >= lec; the accuracy (C_L + C_H) / N is computed there and the simulator gives the pair's
    delay D_L + F_H * D_H on ``hw`` (a ``pivot.sim.HardwareConfig``). The pair is accepted when
    |delay - target| <= tolerance * target. Each model runs once; its logits are reused across
    pairs and thresholds. Raises ``SearchTargetError`` (a ValueError, with the reachable delays
    in its message and the candidates in ``.trail``) when no pair meets the target.
    """
    efforts = _check_efforts(efforts)
    images = _validate.images(images)
    labels = check_labels(labels, images.shape[0], num_classes(next(iter(efforts.values()))))
    target = _check_positive(target_delay_ms, "target_delay_ms")
    lec = check_lec(lec)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.integer, np.floating)) \
            or not (0 <= float(tolerance) < 1):
        raise ValueError(f"tolerance must be a fraction of the target in [0, 1), got {tolerance!r}")
    tolerance = float(tolerance)
    grid = _check_thresholds(thresholds)
    hw = sim.check_hardware(hw)

    from tqdm import tqdm
    outputs = _EffortOutputs(efforts, images, labels, threads, batch_size, progress)
    n = outputs.n
    needed = low_count_needed(lec, n)
    trail: list[SearchCandidate] = []
    nan = float("nan")
    for low, high in tqdm(_ordered_pairs(efforts), desc="searching pairs", unit="pair", disable=not progress):
        grid_used, n_low, c_low, c_high = outputs.pair_curve(low, high, grid)
        step = int(np.searchsorted(n_low, needed, side="left"))  # first threshold with F_L >= LEC
        if step == len(grid_used):
            best = int(n_low[-1]) if len(n_low) else 0
            trail.append(SearchCandidate(low, high, nan, best / n, nan, 0, 0, nan, nan, nan, False,
                                         f"no threshold reaches F_L >= {lec:g} (at most {best / n:.3f})"))
            continue
        n_l, c_l, c_h = int(n_low[step]), int(c_low[step]), int(c_high[step])
        f_high = (n - n_l) / n
        report = _simulate_pair(efforts[low], efforts[high], f_high, hw)
        delay = _number(report, "delay_ms")
        accepted = abs(delay - target) <= tolerance * target
        off = (delay - target) / target
        note = (f"within {100 * tolerance:g}% of the target" if accepted else
                f"{100 * abs(off):.1f}% {'above' if off > 0 else 'below'} the target")
        trail.append(SearchCandidate(low, high, float(grid_used[step]), n_l / n, (c_l + c_h) / n, c_l, c_h, delay,
                                     _number(report, "energy_j"), _number(report, "edp"), accepted, note))
        if accepted:
            return SearchResult(
                low=low, high=high, low_path=model_path(efforts[low]), high_path=model_path(efforts[high]),
                threshold=float(grid_used[step]), accuracy=(c_l + c_h) / n, f_low=n_l / n, f_high=f_high,
                c_low=c_l, c_high=c_h, n_images=n, delay_ms=delay, energy_j=_number(report, "energy_j"),
                edp=_number(report, "edp"), fps_per_w=_number(report, "fps_per_w"), target_delay_ms=target,
                lec=lec, tolerance=tolerance, trail=tuple(trail), report=report)
    raise SearchTargetError(_impossible_message(trail, target, tolerance, lec), trail)


def _impossible_message(trail, target, tolerance, lec) -> str:
    lo, hi = target * (1 - tolerance), target * (1 + tolerance)
    head = (f"no effort pair has a delay within {100 * tolerance:g}% of the target {target:.4g} ms "
            f"([{lo:.4g}, {hi:.4g}] ms) at LEC {lec:g}")
    simulated = [c for c in trail if not math.isnan(c.delay_ms)]
    if not simulated:
        return head + f"; no pair reached F_L >= {lec:g} with the given thresholds"
    fastest = min(simulated, key=lambda c: c.delay_ms)
    slowest = max(simulated, key=lambda c: c.delay_ms)
    nearest = min(simulated, key=lambda c: abs(c.delay_ms - target))
    return (head + f"; reachable delays span {fastest.delay_ms:.4g} ms (pair {fastest.low}/{fastest.high}) to "
            f"{slowest.delay_ms:.4g} ms (pair {slowest.low}/{slowest.high}); nearest: {nearest.delay_ms:.4g} ms "
            f"(pair {nearest.low}/{nearest.high}). Pick a target in that range, widen the tolerance, "
            f"change the LEC or add efforts")


# ----------------------------------------------------------------------------- pareto

@dataclasses.dataclass(frozen=True)
class ParetoPoint:
    """One design point: a low/high pair at a threshold, or one effort alone (``high`` None,
    ``threshold`` NaN, ``f_low`` 1)."""
    low: int
    high: Optional[int]
    threshold: float
    f_low: float
    accuracy: float
    delay_ms: float
    energy_j: float
    edp: float

    @property
    def label(self) -> str:
        return f"{self.low}" if self.high is None else f"{self.low}/{self.high}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _front(points) -> tuple:
    """Non-dominated points (higher accuracy, lower EDP), by increasing EDP. Of points with equal
    EDP and accuracy only the first is kept."""
    front, best = [], -math.inf
    for p in sorted(points, key=lambda p: (p.edp, -p.accuracy)):
        if p.accuracy > best:
            front.append(p)
            best = p.accuracy
    return tuple(front)


@dataclasses.dataclass(frozen=True)
class ParetoResult:
    """Every design point of ``pivot.pareto`` and its accuracy-EDP front (``front``: by increasing EDP)."""
    points: tuple
    front: tuple
    n_images: int

    def pairs(self) -> list[tuple[int, int]]:
        """The (low, high) pairs present, in search order (low descending, then high descending)."""
        found = {(p.low, p.high) for p in self.points if p.high is not None}
        return sorted(found, key=lambda lh: (-lh[0], -lh[1]))

    def at_lec(self, lec: float) -> dict:
        """{(low, high): point} at the first threshold where F_L >= lec, as ``pivot.search`` picks it
        (pairs whose thresholds never reach it are left out)."""
        lec = check_lec(lec)
        needed = low_count_needed(lec, self.n_images)
        chosen = {}
        for p in sorted((p for p in self.points if p.high is not None), key=lambda p: p.threshold):
            key = (p.low, p.high)
            if key not in chosen and round(p.f_low * self.n_images) >= needed:
                chosen[key] = p
        return {key: chosen[key] for key in self.pairs() if key in chosen}

    def to_dicts(self) -> list[dict]:
        """One dict per point, with ``on_front`` marking the non-dominated ones."""
        on_front = {id(p) for p in self.front}
        return [dict(p.to_dict(), on_front=id(p) in on_front) for p in self.points]

    def to_csv(self, path=None) -> str:
        """All points as CSV (``on_front`` column), written to ``path`` when given; returns the text."""
        return _write_csv(self.to_dicts(), list(ParetoPoint.__dataclass_fields__) + ["on_front"], path)


def _pair_costs(low, high, f_high: np.ndarray, hw):
    """Delay and energy of a pair at many F_H from two simulator calls: both are linear in F_H
    (delay = D_L + F_H * D_H, and every part's energy scales with its share of the delay)."""
    at0, at1 = _simulate_pair(low, high, 0.0, hw), _simulate_pair(low, high, 1.0, hw)
    d0, d1 = _number(at0, "delay_ms"), _number(at1, "delay_ms")
    e0, e1 = _number(at0, "energy_j"), _number(at1, "energy_j")
    return d0 + f_high * (d1 - d0), e0 + f_high * (e1 - e0)


def pareto(efforts, images, labels, hw=sim.ZCU102, thresholds=None, progress=True, threads=None,
           batch_size=None) -> ParetoResult:
    """The accuracy-EDP front over all low/high pairs and thresholds, plus each effort alone.

    Same inputs as ``pivot.search`` (each model runs once). For each pair, one point per threshold
    of the grid (default: the sorted unique low-effort entropies, i.e. every distinct split;
    thresholds giving the same split are kept once, the smallest). A point's accuracy is
    (C_L + C_H) / N on the images; its delay and energy come from the simulator on ``hw``
    and EDP = energy x delay (J x ms). ``front`` holds the points no other
    point beats in both accuracy (higher) and EDP (lower).
    """
    efforts = _check_efforts(efforts)
    images = _validate.images(images)
    labels = check_labels(labels, images.shape[0], num_classes(next(iter(efforts.values()))))
    grid = _check_thresholds(thresholds)
    hw = sim.check_hardware(hw)

    from tqdm import tqdm
    outputs = _EffortOutputs(efforts, images, labels, threads, batch_size, progress)
    n = outputs.n
    points: list[ParetoPoint] = []
    for effort, model in efforts.items():
        report = _simulate(model, hw)
        delay, energy = _number(report, "delay_ms"), _number(report, "energy_j")
        points.append(ParetoPoint(effort, None, float("nan"), 1.0, outputs.accuracy(effort), delay, energy,
                                  delay * energy))
    for low, high in tqdm(_ordered_pairs(efforts), desc="pareto pairs", unit="pair", disable=not progress):
        grid_used, n_low, c_low, c_high = outputs.pair_curve(low, high, grid)
        if len(grid_used) == 0:
            continue
        first = np.concatenate([[True], n_low[1:] != n_low[:-1]])  # one point per distinct split
        grid_used, n_low, c_low, c_high = grid_used[first], n_low[first], c_low[first], c_high[first]
        delays, energies = _pair_costs(efforts[low], efforts[high], (n - n_low) / n, hw)
        for th, nl, cl, ch, d, e in zip(grid_used, n_low, c_low, c_high, delays, energies):
            points.append(ParetoPoint(low, high, float(th), int(nl) / n, int(cl + ch) / n, float(d), float(e),
                                      float(d * e)))
    return ParetoResult(points=tuple(points), front=_front(points), n_images=n)


def _write_csv(rows: list[dict], columns: list[str], path) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text = buffer.getvalue()
    if path is not None:
        with open(path, "w", newline="") as f:
            f.write(text)
    return text
