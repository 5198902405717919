"""Stand-ins for the search tests: a model with fixed logits that counts what it sees, and a
linear delay model in place of the simulator."""
import types

import numpy as np


class FakeModel:
    """``images`` are input ids (N,) or (N, ...) whose first element is the id; returns table[id]."""

    def __init__(self, table, path=None):
        self.table = np.asarray(table, dtype=np.float32)
        self.config = types.SimpleNamespace(num_classes=self.table.shape[1])
        self.path = None if path is None else np.asarray(path, dtype=np.uint8)
        self.calls = 0
        self.seen = []          # ids of every input it was asked to classify, in order

    @property
    def n_seen(self):
        return len(self.seen)

    def __call__(self, images, path=None, threads=None):
        ids = np.asarray(images).reshape(len(images), -1)[:, 0].astype(np.int64)
        self.calls += 1
        self.seen.extend(ids.tolist())
        return self.table[ids].copy()


def effort_path(effort, depth):
    """A path with `effort` active attentions, the first ones."""
    return np.array([1] * effort + [0] * (depth - effort), dtype=np.uint8)


def make_efforts(n, k, efforts, depth, seed=0, scale=3.0):
    """{effort: FakeModel} whose larger efforts are more often right and more confident; plus labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    models = {}
    for e in efforts:
        logits = rng.normal(size=(n, k)) * rng.uniform(0.2, scale, size=(n, 1))
        right = rng.random(n) < 0.3 + 0.6 * e / depth
        logits[right, labels[right]] += rng.uniform(0.5, 4.0, size=right.sum())
        models[e] = FakeModel(logits, effort_path(e, depth))
    return models, labels


def unit_delay(model):
    """Delay of one model in the fake simulator: 10 ms plus 5 ms per active attention."""
    return 10.0 + 5.0 * float(np.sum(model.path))


POWER_W = 7.92


def fake_report(delay_ms):
    energy = POWER_W * delay_ms / 1000.0
    return types.SimpleNamespace(delay_ms=delay_ms, energy_j=energy, edp=energy * delay_ms,
                                 fps_per_w=1000.0 / delay_ms / POWER_W)


def fake_simulate_pair(low, high, f_high, hw=None):
    d_low, d_high = unit_delay(low), unit_delay(high)
    report = fake_report(d_low + f_high * d_high)
    parts = dict(low=(1 - f_high) * d_low, high=f_high * d_high, recompute=f_high * d_low)
    for name, d in parts.items():
        e = POWER_W * d / 1000.0
        setattr(report, name, types.SimpleNamespace(delay_ms=d, energy_j=e, edp=e * report.delay_ms))
    return report


def fake_simulate(model, hw=None):
    return fake_report(unit_delay(model))


class SimCalls:
    """Counts the fake simulator's calls."""

    def __init__(self):
        self.pairs = []
        self.singles = 0

    def simulate_pair(self, low, high, f_high, hw=None):
        self.pairs.append((int(np.sum(low.path)), int(np.sum(high.path)), f_high))
        return fake_simulate_pair(low, high, f_high, hw)

    def simulate(self, model, hw=None):
        self.singles += 1
        return fake_simulate(model, hw)
