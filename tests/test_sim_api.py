"""pivot.sim's API: hardware configs, pairs, exports, SCALE-Sim files, validation, the plot."""
import csv
import dataclasses
import io
import math
import types

import numpy as np
import pytest

import pivot
from pivot import sim

DEIT_S = pivot.ViTConfig.preset("deit_small_patch16_224")


# ------------------------------------------------------------------------------------ hardware

def test_zcu102_is_table_1():
    hw = sim.ZCU102
    assert (hw.array_rows, hw.array_cols, hw.clock_mhz, hw.dataflow) == (64, 36, 125.0, "is")
    assert hw.global_buffer_bytes == 16 * 1024
    assert hw.ipmem_bytes == hw.wtmem_bytes == hw.opmem_bytes == 64 * 1024 // 8       # 64 Kb
    assert dataclasses.is_dataclass(hw)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hw.array_rows = 32


def test_replace_any_field_changes_the_result():
    base = sim.simulate(DEIT_S)
    wider = dataclasses.replace(sim.ZCU102, array_cols=72)
    assert wider.array_cols == 72 and sim.ZCU102.array_cols == 36
    assert sim.simulate(DEIT_S, hw=wider).compute_cycles < base.compute_cycles
    faster = sim.ZCU102.replace(clock_mhz=250.0)
    assert sim.simulate(DEIT_S, hw=faster).breakdown["attention_mac"] < base.breakdown["attention_mac"]
    cheap_softmax = sim.ZCU102.replace(softmax_cycles_per_element=1.0)
    assert sim.simulate(DEIT_S, hw=cheap_softmax).breakdown["softmax"] < base.breakdown["softmax"] / 10
    assert sim.ZCU102.peak_gmacs == pytest.approx(64 * 36 * 0.125)


@pytest.mark.parametrize("changes, match", [
    (dict(array_rows=0), "array_rows must be a positive integer"),
    (dict(array_cols=-3), "array_cols must be a positive integer"),
    (dict(array_rows=8.0), "array_rows must be a positive integer"),
    (dict(dataflow="rs"), "dataflow must be one of"),
    (dict(clock_mhz=0.0), "clock_mhz must be a positive finite number"),
    (dict(ipmem_bytes=0), "ipmem_bytes must be a positive integer"),
    (dict(global_buffer_bytes=-1), "global_buffer_bytes must be an integer >= 0"),
    (dict(dram_bandwidth_gbps=0.0), "dram_bandwidth_gbps must be positive"),
    (dict(dram_bandwidth_gbps=float("nan")), "dram_bandwidth_gbps must be positive"),
    (dict(sram_active_fraction=0.0), "sram_active_fraction must be in"),
    (dict(mac_energy_pj=-1.0), "mac_energy_pj must be a finite number >= 0"),
    (dict(softmax_cycles_per_element=math.inf), "softmax_cycles_per_element must be a finite number >= 0"),
])
def test_bad_hardware_is_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        sim.ZCU102.replace(**changes)


@pytest.mark.parametrize("args, match", [
    ((0, 4, 4, 8, 8, "is"), "M must be a positive integer"),
    ((4, -1, 4, 8, 8, "is"), "N must be a positive integer"),
    ((4, 4, 4, 0, 8, "is"), "rows must be a positive integer"),
    ((4, 4, 4, 8, 2.5, "is"), "cols must be a positive integer"),
    ((4, 4, 4, 8, 8, "rs"), "dataflow must be one of"),
    ((4, 4, 4, 8, 8, None), "dataflow must be one of"),
    ((4, 4, 4, 8, 8, "IS"), "dataflow must be one of"),
])
def test_gemm_cycles_validation(args, match):
    with pytest.raises(ValueError, match=match):
        sim.gemm_cycles(*args)


def test_gemm_cycles_overflow_is_an_error():
    with pytest.raises(OverflowError):
        sim.gemm_cycles(2 ** 40, 2 ** 40, 2 ** 40, 1, 1, "is")


# ------------------------------------------------------------------------------------ simulate

class FakeModel:
    """Duck-typed model: anything with .config and .path (pivot.ViT is one)."""

    def __init__(self, config, path):
        self.config, self.path = config, np.asarray(path, dtype=np.uint8)


def test_simulate_uses_a_models_path_unless_given():
    half = [1] * 6 + [0] * 6
    model = FakeModel(DEIT_S, half)
    assert sim.simulate(model).path == tuple(half)
    assert sim.simulate(model).delay_ms == pytest.approx(sim.simulate(DEIT_S, half).delay_ms)
    assert sim.simulate(model, path=None).delay_ms < sim.simulate(DEIT_S).delay_ms
    assert sim.simulate(model, path=[1] * 12).delay_ms == pytest.approx(sim.simulate(DEIT_S).delay_ms)
    no_path = types.SimpleNamespace(config=DEIT_S)                   # a model without .path: all active
    assert sim.simulate(no_path).path == (1,) * 12


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(path=[1] * 11), ValueError, "path has 11 entries but the model has 12 encoders"),
    (dict(path=[1] * 11 + [3]), ValueError, "path values must be 0 or 1"),  # 2 = attention reuse (modes area)
    (dict(batch=0), ValueError, "batch must be a positive integer"),
    (dict(hw="zcu102"), TypeError, "hw must be a pivot.sim.HardwareConfig"),
])
def test_simulate_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        sim.simulate(DEIT_S, **kwargs)


def test_simulate_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="must be a pivot.ViTConfig or a model"):
        sim.simulate("deit_small_patch16_224")
    with pytest.raises(TypeError, match="config must be a pivot.ViTConfig"):
        sim.simulate(types.SimpleNamespace(config=types.SimpleNamespace(num_classes=10)))


def test_report_is_frozen_and_consistent():
    r = sim.simulate(DEIT_S)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.delay_ms = 1.0
    assert sum(layer.delay_ms for layer in r.layers) == pytest.approx(r.delay_ms)
    assert sum(layer.energy_j for layer in r.layers) == pytest.approx(r.energy_j)
    assert r.fps == pytest.approx(1000.0 / r.delay_ms)
    assert r.fps_per_w == pytest.approx(r.fps / r.power_w)
    gemms = [layer for layer in r.layers if layer.kind == "gemm"]
    assert all(0 < layer.utilization_pct <= 100 for layer in gemms)
    assert sum(layer.compute_cycles for layer in gemms) == r.compute_cycles


def test_to_dicts_and_csv_carry_units(tmp_path):
    r = sim.simulate(DEIT_S, [1, 0] * 6)
    dicts = r.to_dicts()
    assert len(dicts) == len(r.layers)
    assert dicts[1]["name"] == "blocks.0.norm1"
    header = r.to_csv().splitlines()[0].split(",")
    for column in ("delay_ms", "energy_j", "compute_cycles", "stall_cycles", "utilization_pct",
                   "sram_reads_words", "dram_writes_words", "energy_pe_array_j"):
        assert column in header
    out = tmp_path / "deit.csv"
    text = r.to_csv(out)
    assert out.read_text() == text
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(r.layers)
    assert sum(float(row["delay_ms"]) for row in parsed) == pytest.approx(r.delay_ms)
    assert int(parsed[0]["M"]) == 196


# ------------------------------------------------------------------------------------ pairs

def test_pair_formula():
    low_path, high_path = [1] * 6 + [0] * 6, [1] * 12
    for f_high in (0.0, 0.2, 0.5, 1.0):
        pair = sim.simulate_pair(DEIT_S, DEIT_S, f_high, low_path=low_path, high_path=high_path)
        d_low = sim.simulate(DEIT_S, low_path, entropy=True)
        d_high = sim.simulate(DEIT_S, high_path)
        assert pair.low_report.delay_ms == pytest.approx(d_low.delay_ms)
        assert pair.delay_ms == pytest.approx(d_low.delay_ms + f_high * d_high.delay_ms)
        assert pair.energy_j == pytest.approx(d_low.energy_j + f_high * d_high.energy_j)
        assert pair.low.delay_ms == pytest.approx((1 - f_high) * d_low.delay_ms)
        assert pair.high.delay_ms == pytest.approx(f_high * d_high.delay_ms)
        assert pair.recompute.delay_ms == pytest.approx(f_high * d_low.delay_ms)
        assert pair.low.delay_ms + pair.high.delay_ms + pair.recompute.delay_ms == pytest.approx(pair.delay_ms)
        assert pair.edp == pytest.approx(pair.energy_j * pair.delay_ms)
        assert pair.low.edp + pair.high.edp + pair.recompute.edp == pytest.approx(pair.edp)
        assert pair.fps_per_w == pytest.approx(1.0 / pair.energy_j)
        assert pair.power_w == pytest.approx(pair.energy_j / pair.delay_ms * 1e3)
        assert sum(pair.breakdown.values()) == pytest.approx(pair.delay_ms)
        assert pair.f_low == pytest.approx(1 - f_high)


def test_pair_takes_models_and_their_paths():
    low, high = FakeModel(DEIT_S, [1] * 3 + [0] * 9), FakeModel(DEIT_S, [1] * 9 + [0] * 3)
    pair = sim.simulate_pair(low, high, 0.25)
    assert sum(pair.low_report.path) == 3 and sum(pair.high_report.path) == 9
    explicit = sim.simulate_pair(low, high, 0.25, low_path=[1] * 12)
    assert explicit.low_report.delay_ms > pair.low_report.delay_ms


@pytest.mark.parametrize("f_high", [-0.1, 1.5, float("nan"), float("inf"), "0.5", None])
def test_pair_refuses_bad_f_high(f_high):
    with pytest.raises(ValueError, match=r"f_high must be a number in \[0, 1\]"):
        sim.simulate_pair(DEIT_S, DEIT_S, f_high)


def test_pair_refuses_bad_paths():
    with pytest.raises(ValueError, match="path has 3 entries"):
        sim.simulate_pair(DEIT_S, DEIT_S, 0.5, low_path=[1, 1, 1])
    with pytest.raises(ValueError, match="path values must be 0 or 1"):
        sim.simulate_pair(DEIT_S, DEIT_S, 0.5, high_path=[3] * 12)


# ------------------------------------------------------------------------------------ SCALE-Sim files

def test_read_scalesim_config(tmp_path):
    design = sim.ZCU102.replace(name="pivot", array_rows=32, array_cols=16, dataflow="ws", ipmem_bytes=4096,
                                wtmem_bytes=8192, opmem_bytes=2048, dram_bandwidth_gbps=10 * 125e6 / 1e9)
    cfg = sim.to_scalesim(design, [], out_dir=tmp_path)["config"]
    hw = sim.read_scalesim_config(cfg)
    assert (hw.array_rows, hw.array_cols, hw.dataflow) == (32, 16, "ws")
    assert (hw.ipmem_bytes, hw.wtmem_bytes, hw.opmem_bytes, hw.global_buffer_bytes) == (4096, 8192, 2048, 0)
    assert hw.dram_bandwidth_gbps == pytest.approx(10 * 125e6 / 1e9)        # 10 words/cycle at 125 MHz
    assert hw.name == "pivot"
    # The scalesim package reads the same file the same way.
    from scalesim.scale_config import scale_config
    theirs = scale_config()
    theirs.read_conf_file(str(cfg))
    assert (theirs.get_array_dims(), theirs.get_dataflow(), theirs.get_mem_sizes()) == ((32, 16), "ws", (4, 8, 2))
    calc = sim.to_scalesim(design.replace(dram_bandwidth_gbps=math.inf), [], out_dir=tmp_path / "calc")["config"]
    assert sim.read_scalesim_config(calc).dram_bandwidth_gbps == math.inf


def test_read_scalesim_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        sim.read_scalesim_config(tmp_path / "missing.cfg")
    bad = tmp_path / "bad.cfg"
    bad.write_text("[architecture_presets]\nArrayHeight: 8\n")
    with pytest.raises(ValueError, match="missing \\[architecture_presets\\] Dataflow"):
        sim.read_scalesim_config(bad)
    bad.write_text("[architecture_presets]\nArrayHeight: eight\nArrayWidth: 8\nDataflow: is\n"
                   "IfmapSramSzkB: 1\nFilterSramSzkB: 1\nOfmapSramSzkB: 1\n")
    with pytest.raises(ValueError, match="ArrayHeight must be an integer"):
        sim.read_scalesim_config(bad)
    bad.write_text("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nDataflow: xs\n")
    with pytest.raises(ValueError, match="Dataflow must be one of"):
        sim.read_scalesim_config(bad)


def test_read_topology_csv(tmp_path):
    topo = sim.to_scalesim(sim.ZCU102, [("qkv", 197, 1152, 384), ("head", 1, 1000, 384)], out_dir=tmp_path)["topology"]
    layers = sim.read_topology_csv(topo)
    assert layers == [sim.GemmLayer("qkv", 197, 1152, 384), sim.GemmLayer("head", 1, 1000, 384)]
    plain = tmp_path / "plain.csv"       # no trailing commas, a sparsity column, blank lines
    plain.write_text("Layer name, M, N, K, Sparsity\n\nfc1, 197, 1536, 384, 1:1\nfc2,197,384,1536\n")
    assert [(g.name, g.M, g.N, g.K) for g in sim.read_topology_csv(plain)] == [("fc1", 197, 1536, 384),
                                                                            ("fc2", 197, 384, 1536)]
    report = sim.simulate_gemms(sim.read_topology_csv(plain))
    assert [layer.compute_cycles for layer in report.layers] == [
        sim.gemm_cycles(197, 1536, 384, 64, 36, "is"), sim.gemm_cycles(197, 384, 1536, 64, 36, "is")]
    assert report.config is None and report.path is None


@pytest.mark.parametrize("text, match", [
    ("", "empty topology file"),
    ("Layer name, M, N, K,\n", "no layers after the header"),
    ("Layer name, M, N, K,\nfc, 10, 20,\n", "line 2: expected Layer name, M, N, K"),
    ("Layer name, M, N, K,\nfc, 10, twenty, 5,\n", "line 2, field N: must be an integer"),
    ("Layer name, M, N, K,\nfc, 10, 0, 5,\n", "line 2, field N: must be in"),
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
     "conv1, 224, 224, 7, 7, 3, 64, 2,\n", "convolution topology"),
])
def test_read_topology_csv_errors(tmp_path, text, match):
    path = tmp_path / "topo.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        sim.read_topology_csv(path)


def test_simulate_gemms_validation():
    with pytest.raises(ValueError, match="M must be a positive integer"):
        sim.simulate_gemms([("l", 0, 4, 4)])
    with pytest.raises(TypeError, match="must be a GemmLayer or a"):
        sim.simulate_gemms([("l", 4, 4)])
    with pytest.raises(ValueError, match="count must be a positive integer"):
        sim.GemmLayer("l", 4, 4, 4, count=0)
    empty = sim.simulate_gemms([])
    assert empty.delay_ms == 0 and empty.layers == ()


# ------------------------------------------------------------------------------------ plot

def test_delay_breakdown_plot():
    from matplotlib.figure import Figure

    reports = {"DeiT-S": sim.simulate(DEIT_S), "effort 6": sim.simulate(DEIT_S, [1] * 6 + [0] * 6),
               "pair 6/12": sim.simulate_pair(DEIT_S, DEIT_S, 0.2, low_path=[1] * 6 + [0] * 6)}
    fig = pivot.plot.delay_breakdown(reports)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "delay (ms)"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(reports)
    bars = [p for p in ax.patches]
    assert len(bars) == 4 * 3                              # four modules, three bars
    tops = [sum(b.get_height() for b in bars[i::3]) for i in range(3)]
    assert tops == pytest.approx([r.delay_ms for r in reports.values()])
    single = pivot.plot.delay_breakdown(sim.simulate(DEIT_S), percent=True)
    assert single.axes[0].get_ylabel() == "share of delay (%)"
    assert [t.get_text() for t in single.axes[0].get_xticklabels()] == ["effort 12/12"]
    with pytest.raises(ValueError, match="no reports"):
        pivot.plot.delay_breakdown([])
    with pytest.raises(ValueError, match="labels"):
        pivot.plot.delay_breakdown([sim.simulate(DEIT_S)], labels=["a", "b"])
    with pytest.raises(TypeError, match="SimReport or PairReport"):
        pivot.plot.delay_breakdown([1.0])


def test_simulator_takes_the_timm_fields_it_models_and_refuses_the_others():
    base = pivot.ViTConfig(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2)
    # prefix tokens count through the token count; avg pooling without a class token simulates
    regs = pivot.sim.simulate(base.replace(reg_tokens=4))
    assert regs.delay_ms > pivot.sim.simulate(base).delay_ms
    assert pivot.sim.simulate(base.replace(class_token=False, global_pool="avg")).delay_ms > 0
    for fields, what in ((dict(mlp_layer="swiglu", act="silu"), "swiglu"), (dict(num_classes=0), "headless"),
                         (dict(global_pool="map"), "map")):
        with pytest.raises(ValueError, match=what):
            pivot.sim.simulate(base.replace(**fields))
