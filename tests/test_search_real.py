"""pivot.search and pivot.pareto on the real engine and simulator."""
import numpy as np
import pytest

import pivot
import pivot.sim

CONFIG = pivot.ViTConfig(img_size=16, patch_size=4, in_chans=1, num_classes=5, embed_dim=32, depth=4, num_heads=2)


@pytest.fixture(scope="module")
def setup():
    model = pivot.ViT.random(CONFIG, seed=1)
    paths = {1: [1, 0, 0, 0], 2: [1, 1, 0, 0], 3: [1, 1, 0, 1], 4: [1, 1, 1, 1]}
    efforts = {e: model.with_path(p) for e, p in paths.items()}
    rng = np.random.default_rng(0)
    images = rng.standard_normal((48, 1, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 5, 48)
    return efforts, images, labels


def brute_force(efforts, images, labels, target, lec, tolerance):
    """Phase 2 literally: every pair in order, thresholds raised one entropy at a time, real simulator."""
    logits = {e: m(images) for e, m in efforts.items()}
    for low in sorted(efforts, reverse=True):
        for high in sorted(efforts, reverse=True):
            if high <= low:
                continue
            ent = pivot.entropy(logits[low]).astype(np.float64)
            for th in sorted(set(ent.tolist())):
                go_high = ~(ent <= th)
                if np.mean(~go_high) >= lec - 1e-12:
                    break
            preds = np.where(go_high, logits[high].argmax(1), logits[low].argmax(1))
            report = pivot.sim.simulate_pair(efforts[low], efforts[high], float(go_high.mean()))
            if abs(report.delay_ms - target) <= tolerance * target:
                return low, high, th, float(np.mean(preds == labels)), report
    return None


# Relative delays of efforts 1..4 here: 0.47, 0.65, 0.82, 1; these targets hit pairs (3,4), (2,4),
# (1,4), (1,3) at LEC 0.8 and (1,4) at LEC 0.7.
@pytest.mark.parametrize("fraction, lec, pair", [(1.0, 0.8, (3, 4)), (0.82, 0.8, (2, 4)), (0.66, 0.8, (1, 4)),
                                                 (0.6, 0.8, (1, 3)), (0.75, 0.7, (1, 4))])
def test_search_real_matches_brute_force(setup, fraction, lec, pair):
    efforts, images, labels = setup
    target = fraction * pivot.sim.simulate(efforts[4]).delay_ms
    expected = brute_force(efforts, images, labels, target, lec, 0.05)
    assert expected[:2] == pair
    low, high, th, accuracy, report = expected
    res = pivot.search(efforts, images, labels, target, lec=lec, progress=False)
    assert (res.low, res.high) == (low, high) and res.threshold == pytest.approx(th)
    assert res.accuracy == pytest.approx(accuracy)
    assert res.delay_ms == pytest.approx(report.delay_ms) and res.edp == pytest.approx(report.edp)
    assert res.energy_j == pytest.approx(report.energy_j) and res.fps_per_w == pytest.approx(report.fps_per_w)
    assert res.report.f_high == pytest.approx(res.f_high)


def test_search_real_impossible_target(setup):
    efforts, images, labels = setup
    target = 0.3 * pivot.sim.simulate(efforts[4]).delay_ms
    assert brute_force(efforts, images, labels, target, 0.8, 0.05) is None
    with pytest.raises(pivot.SearchTargetError, match="reachable delays span") as info:
        pivot.search(efforts, images, labels, target, progress=False)
    assert len(info.value.trail) == 6


def test_search_real_hardware_changes_delay(setup):
    efforts, images, labels = setup
    slow = pivot.sim.ZCU102.replace(clock_mhz=62.5)
    target = 0.8 * pivot.sim.simulate(efforts[4], hw=slow).delay_ms
    res = pivot.search(efforts, images, labels, target, hw=slow, tolerance=0.2, progress=False)
    assert res.delay_ms == pytest.approx(pivot.sim.simulate_pair(efforts[res.low], efforts[res.high], res.f_high,
                                                                 hw=slow).delay_ms)


def test_pareto_costs_equal_simulator(setup):
    """pareto interpolates a pair's delay and energy in F_H from two simulator calls; that is exact."""
    efforts, images, labels = setup
    front = pivot.pareto(efforts, images, labels, progress=False)
    pair_points = [p for p in front.points if p.high is not None]
    for p in pair_points[::7]:
        report = pivot.sim.simulate_pair(efforts[p.low], efforts[p.high], 1.0 - p.f_low)
        assert p.delay_ms == pytest.approx(report.delay_ms, rel=1e-12)
        assert p.energy_j == pytest.approx(report.energy_j, rel=1e-12)
        assert p.edp == pytest.approx(report.edp, rel=1e-12)
    for p in front.points:
        if p.high is None:
            assert p.edp == pytest.approx(pivot.sim.simulate(efforts[p.low]).edp, rel=1e-12)
    assert len(pair_points) == 6 * 48   # random logits: every entropy distinct, one point per split
