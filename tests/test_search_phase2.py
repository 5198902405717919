"""pivot.search and pivot.pareto against brute-force loops, with stand-in models and simulator."""
import csv
import dataclasses
import io
import itertools
import json

import numpy as np
import pytest

import pivot
import pivot.effort_search as effort_search
from _search_fakes import FakeModel, SimCalls, effort_path, make_efforts, unit_delay


@pytest.fixture
def sim_calls(monkeypatch):
    calls = SimCalls()
    monkeypatch.setattr(effort_search, "_simulate_pair", lambda low, high, f, hw: calls.simulate_pair(low, high, f, hw))
    monkeypatch.setattr(effort_search, "_simulate", lambda model, hw: calls.simulate(model, hw))
    return calls


def brute_force_trail(models, labels, lec):
    """The paper's Phase 2 as a literal loop: pairs from the most active attentions down (low
    descending, then high descending); per pair raise the threshold through the sorted unique
    low-effort entropies until F_L >= LEC. Returns (low, high, th, accuracy, f_low, delay) per pair."""
    efforts = sorted(models, reverse=True)
    ent = {e: pivot.entropy(models[e].table).astype(np.float64) for e in efforts}
    trail = []
    for low in efforts:
        for high in efforts:
            if high <= low:
                continue
            for th in sorted(set(ent[low].tolist())):
                go_high = ~(ent[low] <= th)
                f_low = float(np.mean(~go_high))
                if f_low >= lec - 1e-12:
                    break
            else:
                continue
            preds = np.where(go_high, models[high].table.argmax(1), models[low].table.argmax(1))
            accuracy = float(np.mean(preds == labels))
            delay = unit_delay(models[low]) + (1 - f_low) * unit_delay(models[high])
            trail.append((low, high, th, accuracy, f_low, delay))
    return trail


def brute_force_search(models, labels, target, lec, tolerance):
    """The first candidate of the brute-force trail within tolerance of the target."""
    for cand in brute_force_trail(models, labels, lec):
        if abs(cand[-1] - target) <= tolerance * target:
            return cand
    return None


CASES = [  # (n, k, efforts, depth, lec, seed, which pair's delay is the target)
    (40, 5, [2, 4, 6], 6, 0.8, 0, 1),
    (64, 10, [3, 5, 7, 9, 12], 12, 0.7, 1, 4),
    (64, 10, [3, 5, 7, 9, 12], 12, 0.9, 2, 9),
    (33, 3, [1, 2, 3, 4], 4, 0.5, 3, 2),
    (50, 10, [4, 8, 12], 12, 1.0, 4, 0),
    (80, 7, [0, 3, 6], 6, 0.75, 5, 2),
    (80, 7, [0, 3, 6], 6, 0.75, 6, 1),
]


@pytest.mark.parametrize("n, k, efforts, depth, lec, seed, aim", CASES)
def test_search_matches_brute_force(sim_calls, n, k, efforts, depth, lec, seed, aim):
    models, labels = make_efforts(n, k, efforts, depth, seed=seed)
    target = brute_force_trail(models, labels, lec)[aim][-1] * 1.01
    expected = brute_force_search(models, labels, target, lec, 0.05)
    res = pivot.search(models, np.arange(n), labels, target, lec=lec, progress=False)
    low, high, th, accuracy, f_low, delay = expected
    assert (res.low, res.high) == (low, high)
    assert res.threshold == pytest.approx(th)
    assert res.accuracy == pytest.approx(accuracy) and res.f_low == pytest.approx(f_low)
    assert res.delay_ms == pytest.approx(delay)
    assert res.low_path == tuple(effort_path(low, depth)) and res.high_path == tuple(effort_path(high, depth))
    assert res.c_low + res.c_high == round(accuracy * n)
    # The trail: every pair tried in order, the last one accepted; each simulated once.
    order = [(lo, hi) for lo in sorted(efforts, reverse=True) for hi in sorted(efforts, reverse=True) if hi > lo]
    assert [(c.low, c.high) for c in res.trail] == order[:len(res.trail)]
    assert res.trail[-1].accepted and not any(c.accepted for c in res.trail[:-1])
    assert len(sim_calls.pairs) == len(res.trail)
    # The chosen cascade reproduces the search's numbers on the same inputs.
    again = res.multi_effort(models).predict(np.arange(n), labels)
    assert again.accuracy == pytest.approx(res.accuracy) and again.f_low == pytest.approx(res.f_low)


def test_each_model_runs_once(sim_calls):
    models, labels = make_efforts(60, 10, [2, 4, 6, 8], depth=8, seed=7)
    with pytest.raises(pivot.SearchTargetError):
        pivot.search(models, np.arange(60), labels, 1000.0, progress=False)   # tries every pair
    assert len(sim_calls.pairs) == 6
    for m in models.values():
        assert m.calls == 1 and m.n_seen == 60
    for m in models.values():
        m.calls, m.seen = 0, []
    pivot.pareto(models, np.arange(60), labels, progress=False)
    for m in models.values():
        assert m.calls == 1 and m.n_seen == 60


def test_impossible_target_message(sim_calls):
    models, labels = make_efforts(30, 4, [2, 4], depth=4, seed=1)
    with pytest.raises(pivot.SearchTargetError, match=r"reachable delays span .* ms \(pair 2/4\)") as info:
        pivot.search(models, np.arange(30), labels, 5.0, progress=False)
    assert isinstance(info.value, ValueError)
    assert len(info.value.trail) == 1 and not info.value.trail[0].accepted


def test_user_threshold_grid(sim_calls):
    models, labels = make_efforts(50, 10, [2, 4, 6], depth=6, seed=3)
    # A grid that never reaches F_L >= 0.8 makes every pair infeasible.
    with pytest.raises(pivot.SearchTargetError, match="no pair reached F_L"):
        pivot.search(models, np.arange(50), labels, 40.0, thresholds=[0.0, 0.01], progress=False)
    assert sim_calls.pairs == []
    grid = np.linspace(0, 1, 101)
    res = pivot.search(models, np.arange(50), labels, 40.0, thresholds=grid, tolerance=0.5, progress=False)
    assert res.threshold in set(grid.tolist())
    ent = pivot.entropy(models[res.low].table)
    assert np.mean(ent <= res.threshold) >= 0.8
    assert np.mean(ent <= res.threshold - 0.01) < 0.8 or res.threshold == 0.0


def test_result_serialization(sim_calls, tmp_path):
    models, labels = make_efforts(40, 5, [2, 4, 6], depth=6, seed=0)
    res = pivot.search(models, np.arange(40), labels, 28.0, progress=False)
    d = res.to_dict()
    json.dumps(d)
    assert d["low"] == res.low and d["low_path"] == "".join(map(str, res.low_path))
    assert len(d["trail"]) == len(res.trail)
    text = res.to_csv(tmp_path / "trail.csv")
    assert (tmp_path / "trail.csv").read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(res.trail) and rows[-1]["accepted"] == "True"
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.threshold = 0.0
    assert "threshold" in res.summary()


def test_search_errors(sim_calls):
    models, labels = make_efforts(20, 4, [1, 2, 3], depth=3)
    ids = np.arange(20)
    with pytest.raises(ValueError, match="at least 2 efforts"):
        pivot.search({1: models[1]}, ids, labels, 10.0)
    with pytest.raises(ValueError, match="disagree in their number of classes"):
        pivot.search({1: models[1], 3: FakeModel(np.zeros((20, 5)), effort_path(3, 3))}, ids, labels, 10.0)
    with pytest.raises(ValueError, match="20 images but 19 labels"):
        pivot.search(models, ids, labels[:19], 10.0)
    with pytest.raises(ValueError, match="empty"):
        pivot.search(models, ids[:0], labels[:0], 10.0)
    for lec in (0.0, 1.2, -1):
        with pytest.raises(ValueError, match=r"lec .* must be in \(0, 1\]"):
            pivot.search(models, ids, labels, 10.0, lec=lec)
    for target in (0.0, -5.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="target_delay_ms"):
            pivot.search(models, ids, labels, target)
    with pytest.raises(ValueError, match="tolerance"):
        pivot.search(models, ids, labels, 10.0, tolerance=-0.1)
    with pytest.raises(ValueError, match="thresholds"):
        pivot.search(models, ids, labels, 10.0, thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match="thresholds is empty"):
        pivot.search(models, ids, labels, 10.0, thresholds=[])
    with pytest.raises(ValueError, match="key must be its effort"):
        pivot.search({1: models[1], 5: models[2]}, ids, labels, 10.0)
    with pytest.raises(TypeError, match="integers"):
        pivot.search({"a": models[1], 2: models[2]}, ids, labels, 10.0)
    with pytest.raises(TypeError, match="mapping"):
        pivot.search([models[1], models[2]], ids, labels, 10.0)
    with pytest.raises(TypeError, match="HardwareConfig"):
        pivot.search(models, ids, labels, 10.0, hw="ZCU102")
    with pytest.raises(TypeError, match="HardwareConfig"):
        pivot.pareto(models, ids, labels, hw=None)
    assert all(m.calls == 0 for m in models.values())   # bad arguments fail before any model runs
    with pytest.raises(ValueError, match="at least 2 efforts"):
        pivot.pareto({1: models[1]}, ids, labels)
    with pytest.raises(ValueError, match="20 images but 3 labels"):
        pivot.pareto(models, ids, labels[:3])


def brute_force_points(models, labels):
    """Every (pair, threshold) outcome and each effort alone, by direct evaluation."""
    n = len(labels)
    points = []
    for e, m in models.items():
        d = unit_delay(m)
        points.append((e, None, float(np.mean(m.table.argmax(1) == labels)), d * 7.92 * d / 1000))
    for low, high in itertools.combinations(sorted(models), 2):
        ent = pivot.entropy(models[low].table).astype(np.float64)
        for th in sorted(set(ent.tolist())):
            go_high = ~(ent <= th)
            preds = np.where(go_high, models[high].table.argmax(1), models[low].table.argmax(1))
            d = unit_delay(models[low]) + go_high.mean() * unit_delay(models[high])
            points.append((low, high, float(np.mean(preds == labels)), d * 7.92 * d / 1000))
    return points


def test_pareto_points_and_front(sim_calls, tmp_path):
    models, labels = make_efforts(48, 6, [2, 4, 6, 8], depth=8, seed=11)
    res = pivot.pareto(models, np.arange(48), labels, progress=False)
    expected = brute_force_points(models, labels)
    got = sorted((p.low, p.high or -1, round(p.accuracy, 9), round(p.edp, 6)) for p in res.points)
    want = sorted((lo, hi or -1, round(a, 9), round(edp, 6)) for lo, hi, a, edp in expected)
    assert got == want
    # Two simulator calls per pair (F_H = 0 and 1), one per effort alone.
    assert len(sim_calls.pairs) == 2 * 6 and sim_calls.singles == 4
    # The front: non-dominated, and every other point is dominated by a front point.
    front = set(map(id, res.front))
    for p in res.front:
        assert not any(q.accuracy >= p.accuracy and q.edp <= p.edp and (q.accuracy > p.accuracy or q.edp < p.edp)
                       for q in res.points)
    for p in res.points:
        if id(p) not in front:
            assert any(q.accuracy >= p.accuracy and q.edp <= p.edp for q in res.front)
    edps = [p.edp for p in res.front]
    assert edps == sorted(edps) and [p.accuracy for p in res.front] == sorted(p.accuracy for p in res.front)
    rows = res.to_dicts()
    assert len(rows) == len(res.points) and sum(r["on_front"] for r in rows) == len(res.front)
    text = res.to_csv(tmp_path / "front.csv")
    assert len(list(csv.DictReader(io.StringIO(text)))) == len(res.points)


def test_pareto_at_lec_matches_search(sim_calls):
    models, labels = make_efforts(40, 5, [2, 4, 6], depth=6, seed=0)
    res = pivot.search(models, np.arange(40), labels, 28.0, progress=False)
    front = pivot.pareto(models, np.arange(40), labels, progress=False)
    chosen = front.at_lec(0.8)[(res.low, res.high)]
    assert chosen.threshold == pytest.approx(res.threshold)
    assert chosen.accuracy == pytest.approx(res.accuracy)
    assert chosen.delay_ms == pytest.approx(res.delay_ms)
    assert chosen.edp == pytest.approx(res.edp)
    assert list(front.at_lec(0.8)) == front.pairs()
