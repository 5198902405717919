"""pivot.sim.ZCU102 against the PIVOT paper: Table 2's DeiT-S baseline, Fig. 6a/1b breakdowns,
the fit of the calibrated constants, and monotone delay as attentions are skipped."""
import dataclasses
import itertools

import numpy as np
import pytest

import pivot
from pivot import sim
from pivot.reference import sim as ref

DEIT_S = pivot.ViTConfig.preset("deit_small_patch16_224")
LVVIT_S = pivot.ViTConfig(depth=16, mlp_ratio=3.0)          # LVViT-S-shaped: 16 encoders, MLP ratio 3


def test_deit_s_baseline_matches_table_2():
    r = sim.simulate(DEIT_S)
    assert r.delay_ms == pytest.approx(59.66, rel=0.01)
    assert r.energy_j == pytest.approx(0.47, rel=0.02)
    assert r.edp == pytest.approx(28.19, rel=0.02)
    assert r.power_w == pytest.approx(7.92, rel=0.02)
    assert r.fps_per_w == pytest.approx(2.14, rel=0.02)
    assert r.edp == pytest.approx(r.energy_j * r.delay_ms)
    assert r.power_w == pytest.approx(r.energy_j / (r.delay_ms * 1e-3))


def test_deit_s_delay_breakdown_matches_fig_6a_and_1b():
    r = sim.simulate(DEIT_S)
    share = {m: v / r.delay_ms for m, v in r.breakdown.items()}
    assert sum(r.breakdown.values()) == pytest.approx(r.delay_ms)
    assert share["attention_mac"] == pytest.approx(0.18, abs=0.01)      # Fig. 6a: 18%
    assert 0.55 <= share["softmax"] <= 0.62                               # Fig. 6a: about 60%
    assert share["mlp"] == pytest.approx(0.22, abs=0.02)                  # the rest
    # Fig. 1b: QK^T and SMxV are 7.3-7.7% of the delay; the attention module about 77.5%.
    by_op = {}
    for layer in r.layers:
        by_op[layer.name.split(".")[-1]] = by_op.get(layer.name.split(".")[-1], 0.0) + layer.delay_ms
    assert 0.073 <= (by_op["qk"] + by_op["sv"]) / r.delay_ms <= 0.077
    attention = sum(by_op[k] for k in ("qkv", "qk", "softmax", "sv", "proj")) / r.delay_ms
    assert attention == pytest.approx(0.775, abs=0.025)


def test_energy_split_by_activity():
    r = sim.simulate(DEIT_S)
    assert sum(r.energy_breakdown.values()) == pytest.approx(r.energy_j)
    assert all(v > 0 for v in r.energy_breakdown.values())
    # The PS (softmax-heavy) and the PE array carry most of it.
    assert r.energy_breakdown["ps"] == max(r.energy_breakdown.values())


def test_zcu102_constants_are_the_fit():
    hw = {f.name: getattr(sim.ZCU102, f.name) for f in dataclasses.fields(sim.ZCU102)}
    cfg = dict(embed_dim=384, depth=12, num_heads=6, mlp_hidden=1536, num_tokens=197, num_patches=196,
               patch_dim=768, num_classes=1000, num_prefix_tokens=1, distilled=False)
    fit = ref.fit_zcu102(hw, cfg)
    for key, value in fit.items():
        assert getattr(sim.ZCU102, key) == pytest.approx(value, rel=5e-4), key


def test_power_stays_near_7_92_w_for_every_effort():
    # The paper lists 7.92 W for every model; equal PS-phase and PL-phase power keeps ours close.
    for effort in (12, 9, 6, 3):
        r = sim.simulate(DEIT_S, [1] * effort + [0] * (12 - effort))
        assert r.power_w == pytest.approx(7.92, rel=0.06), effort
    assert sim.simulate(LVVIT_S).power_w == pytest.approx(7.92, rel=0.02)


def test_lvvit_s_shaped_without_refit_is_near_table_3():
    r = sim.simulate(LVVIT_S)
    # Table 3: 79.55 ms, 0.63 J; our LVViT-S-shaped model has no conv stem: 75.0 ms (-5.7%).
    assert r.delay_ms == pytest.approx(79.55, rel=0.07)
    assert r.energy_j == pytest.approx(0.63, rel=0.08)
    share = {m: v / r.delay_ms for m, v in r.breakdown.items()}
    assert share["attention_mac"] == pytest.approx(0.19, abs=0.01)      # Fig. 6a: 19%
    assert share["softmax"] == pytest.approx(0.63, abs=0.03)            # Fig. 6a: 63%


def test_delay_falls_monotonically_as_encoders_are_skipped(rng):
    hws = [sim.ZCU102, sim.ZCU102.replace(dataflow="ws", array_rows=32, array_cols=32),
           sim.ZCU102.replace(dataflow="os", dram_bandwidth_gbps=1.0)]
    for hw in hws:
        for _ in range(3):
            order = rng.permutation(DEIT_S.depth)           # skip encoders in a random order
            path = np.ones(DEIT_S.depth, dtype=np.uint8)
            last = sim.simulate(DEIT_S, path, hw)
            for i in order:
                path[i] = 0
                now = sim.simulate(DEIT_S, path, hw)
                assert now.delay_ms < last.delay_ms
                assert now.energy_j < last.energy_j
                assert now.breakdown["mlp"] == pytest.approx(last.breakdown["mlp"])   # MLPs always run
                last = now
            assert last.breakdown["softmax"] == 0 and last.breakdown["attention_mac"] == 0


def test_delay_depends_on_effort_not_on_which_encoders():
    # All encoders have the same shape: any path with the same effort costs the same.
    delays = {round(sim.simulate(DEIT_S, p).delay_ms, 9)
              for p in itertools.islice((np.array(c) for c in itertools.product([0, 1], repeat=12) if sum(c) == 6), 20)}
    assert len(delays) == 1
