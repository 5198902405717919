"""pivot.sim.sweep (hardware design-space sweeps), pivot.plot.design_space and pivot.sim.to_scalesim."""
import concurrent.futures
import dataclasses
import math

import numpy as np
import pytest

import pivot
from pivot import sim

DEIT_S = pivot.ViTConfig.preset("deit_small_patch16_224")
GRID = {"array_rows": [16, 64], "array_cols": [36, 64], "dataflow": ["is", "os"], "clock_mhz": [125.0, 250.0],
        "ipmem_bytes": [8192, 65536], "dram_bandwidth_gbps": [9.6, math.inf], "operand_bits": [8, 16]}


def test_sweep_rows_equal_simulate_one_design_at_a_time():
    path = [1, 0] * 6
    table = sim.sweep(DEIT_S, GRID, path=path)
    n = int(np.prod([len(v) for v in GRID.values()]))
    assert all(len(column) == n for column in table.values())
    assert list(table) == list(GRID) + list(sim.SWEEP_RESULTS)
    for i in (0, 17, n - 1):
        hw = sim.ZCU102.replace(**{k: table[k][i].item() for k in GRID})
        r = sim.simulate(DEIT_S, path, hw)
        assert table["delay_ms"][i] == r.delay_ms and table["energy_j"][i] == r.energy_j
        assert table["edp"][i] == pytest.approx(r.energy_j * r.delay_ms, rel=1e-12)
        assert table["fps_per_w"][i] == r.fps_per_w
        util = 100 * r.macs / (hw.array_rows * hw.array_cols * (r.compute_cycles + r.stall_cycles))
        assert table["utilization_pct"][i] == pytest.approx(util, rel=1e-12)
        assert 0 < table["utilization_pct"][i] <= 100
    # grid order: the last field varies fastest
    assert table["operand_bits"][:2].tolist() == [8, 16] and table["array_rows"][0] == 16


def test_sweep_on_an_executor_equals_in_process():
    designs = [sim.ZCU102.replace(array_rows=r, array_cols=c) for r in (8, 32, 64) for c in (8, 36)]
    here = sim.sweep(DEIT_S, designs)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        there = sim.sweep(DEIT_S, designs, executor=pool, chunks=4)
    assert list(here) == list(there)
    for key in here:
        np.testing.assert_array_equal(here[key], there[key])
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        spread = sim.sweep(DEIT_S, {"array_rows": [8, 64], "dataflow": ["is", "ws", "os"]}, executor=pool)
    np.testing.assert_array_equal(spread["delay_ms"],
                                  sim.sweep(DEIT_S, {"array_rows": [8, 64], "dataflow": ["is", "ws", "os"]})["delay_ms"])


def test_sweep_refuses_bad_grids():
    with pytest.raises(ValueError, match="unknown HardwareConfig fields \\['rows'\\]"):
        sim.sweep(DEIT_S, {"rows": [8]})
    with pytest.raises(ValueError, match="grid\\['array_rows'\\] is empty"):
        sim.sweep(DEIT_S, {"array_rows": []})
    with pytest.raises(ValueError, match="design .*dataflow"):
        sim.sweep(DEIT_S, {"dataflow": ["is", "xx"]})
    with pytest.raises(TypeError, match="grid must be"):
        sim.sweep(DEIT_S, 5)
    with pytest.raises(TypeError, match="executor must be"):
        sim.sweep(DEIT_S, {"array_rows": [8]}, executor=object())


def test_design_space_plot_draws_the_front():
    table = sim.sweep(DEIT_S, {"array_rows": [8, 16, 64], "array_cols": [8, 36], "clock_mhz": [100, 300]})
    front = pivot.plot.delay_energy_front(table["delay_ms"], table["energy_j"])
    d, e = table["delay_ms"], table["energy_j"]
    for i in range(len(d)):  # a design is on the front iff no other beats it in both
        beaten = np.any((d <= d[i]) & (e <= e[i]) & ((d < d[i]) | (e < e[i])))
        assert (i in front) == (not beaten)
    fig = pivot.plot.design_space(table)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "delay per inference (ms)" and ax.get_ylabel() == "energy per inference (J)"
    assert pivot.plot.design_space(table, color_by="array_rows").axes[0].get_legend() is not None
    with pytest.raises(ValueError, match="color_by"):
        pivot.plot.design_space(table, color_by="nope")


def test_to_scalesim_writes_the_models_gemms(tmp_path):
    design = sim.ZCU102.replace(array_rows=32, dataflow="ws")
    files = sim.to_scalesim(design, DEIT_S, path=[1, 0] * 6, out_dir=tmp_path / "out")
    back = sim.read_scalesim_config(files["config"], base=design)
    assert (back.array_rows, back.array_cols, back.dataflow) == (32, 36, "ws")
    assert (back.ipmem_bytes, back.wtmem_bytes, back.opmem_bytes) == (8192, 8192, 8192)
    # 19.2 GB/s at 125 MHz, 1-byte words = 153.6 words per cycle, written as 154
    assert back.dram_bandwidth_gbps == pytest.approx(154 * 125e6 / 1e9)
    layers = sim.read_topology_csv(files["topology"])
    report = sim.simulate(DEIT_S, [1, 0] * 6, design)
    gemms = [layer for layer in report.layers if layer.kind == "gemm"]
    assert len(layers) == sum(layer.count for layer in gemms)          # 6 heads x 6 active encoders of QK^T ...
    assert sum(1 for g in layers if g.name.startswith("blocks.0.attn.qk.")) == 6
    # the written GEMMs take exactly the simulator's compute cycles
    assert sim.simulate_gemms(layers, design).compute_cycles == report.compute_cycles
    with pytest.raises(ValueError, match="path applies to a model"):
        sim.to_scalesim(design, [("a", 1, 2, 3)], path=[1], out_dir=tmp_path)


def test_to_scalesim_files_run_in_scalesim(tmp_path):
    pytest.importorskip("scalesim")
    from scalesim_util import run_gemms
    design = dataclasses.replace(sim.ZCU102, array_rows=8, array_cols=8, global_buffer_bytes=0,
                                 dram_bandwidth_gbps=math.inf)
    small = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=8, depth=1, num_heads=2)
    layers = sim.read_topology_csv(sim.to_scalesim(design, small, out_dir=tmp_path)["topology"])
    theirs = run_gemms([(g.name, g.M, g.N, g.K) for g in layers], 8, 8, "is", 8, 8, 8)
    assert sum(t["total_cycles"] for t in theirs) == sim.simulate(small, hw=design).compute_cycles
