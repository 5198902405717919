"""SCALE-Sim files and sweeps against hostile input: CSV injection, symbolic links, FIFOs, malformed
rows, huge grids; and the simulator's C binding, which reads its inputs by name."""
import dataclasses
import os
import threading

import numpy as np
import pytest

from pivot import _core, sim
from pivot.config import ViTConfig

DEIT_S = ViTConfig.preset("deit_small_patch16_224")


# ------------------------------------------------------------------ to_scalesim

def test_to_scalesim_quotes_names_and_neutralises_formulas(tmp_path):
    layers = [("a,b", 2, 3, 4), ('say "hi"', 2, 3, 4), ("=HYPERLINK(1)", 2, 3, 4), ("+1", 2, 3, 4),
              ("-x", 2, 3, 4), ("@f", 2, 3, 4), ("line\nbreak", 2, 3, 4), ("plain", 5, 6, 7)]
    files = sim.to_scalesim(sim.ZCU102, layers, out_dir=tmp_path)
    text = open(files["topology"], encoding="utf-8").read()
    assert "plain, 5, 6, 7,\n" in text
    assert '"a,b", 2, 3, 4,' in text
    assert not any(line.startswith(("=", "+", "-", "@")) for line in text.splitlines())
    back = sim.read_topology_csv(files["topology"])
    assert [g.name for g in back] == ["a,b", 'say "hi"', "'=HYPERLINK(1)", "'+1", "'-x", "'@f", "line\nbreak", "plain"]
    assert [(g.M, g.N, g.K) for g in back] == [(2, 3, 4)] * 7 + [(5, 6, 7)]


def test_to_scalesim_refuses_a_symlink_and_leaves_its_target_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "gemm.csv")
    with pytest.raises(ValueError, match="symbolic link"):
        sim.to_scalesim(sim.ZCU102, [("l", 1, 2, 3)], out_dir=out)
    assert victim.read_text() == "keep me"
    assert sorted(os.listdir(out)) == ["gemm.csv"]  # nothing written, no temporary left


def test_to_scalesim_replaces_files_atomically(tmp_path, monkeypatch):
    first = sim.to_scalesim(sim.ZCU102, [("l", 1, 2, 3)], out_dir=tmp_path)
    inode = os.stat(first["topology"]).st_ino
    sim.to_scalesim(sim.ZCU102, [("m", 4, 5, 6)], out_dir=tmp_path)
    assert os.stat(first["topology"]).st_ino != inode  # a new file renamed over the old one
    assert sorted(os.listdir(tmp_path)) == ["gemm.csv", "layout.csv", "scale.cfg"]
    # a failure while writing leaves the previous file whole
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        sim.to_scalesim(sim.ZCU102, [("n", 7, 8, 9)], out_dir=tmp_path)
    assert open(first["topology"]).read() == "Layer name, M, N, K,\nm, 4, 5, 6,\n"
    assert sorted(os.listdir(tmp_path)) == ["gemm.csv", "layout.csv", "scale.cfg"]


# ------------------------------------------------------------------ readers

@pytest.mark.parametrize("reader", [sim.read_topology_csv, sim.read_scalesim_config])
def test_readers_refuse_a_fifo_without_blocking(tmp_path, reader):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = []

    def run():
        try:
            reader(fifo)
        except ValueError as exc:
            done.append(str(exc))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader before failing
        with open(fifo, "w"):
            pass
        pytest.fail(f"{reader.__name__} blocked on a FIFO")
    assert done and "FIFO" in done[0] and str(fifo) in done[0]


@pytest.mark.parametrize("reader", [sim.read_topology_csv, sim.read_scalesim_config])
def test_readers_refuse_devices_and_directories(tmp_path, reader):
    with pytest.raises(ValueError, match="character device"):
        reader("/dev/zero")
    with pytest.raises(ValueError, match="directory"):
        reader(tmp_path)


@pytest.mark.parametrize("text, match", [
    ("Layer name, M, N, K,\nfc, 10, 20, 30,\nfc2, 1, x, 3,\n", "topo.csv: line 3, field N: must be an integer"),
    ("Layer name, M, N, K,\n\nfc, 10, 20, -4,\n", "topo.csv: line 3, field K: must be in"),
    ("Layer name, M, N, K,\nfc, 10, 20,\n", "topo.csv: line 2: expected Layer name, M, N, K; got 3 fields"),
    ('Layer name, M, N, K,\n"multi\nline", 1, 2, 3,\nfc, 1, 2, q,\n', "topo.csv: line 4, field K"),
    ("Layer name, M, N, K,\nfc, 1, 2, 99999999999999999999,\n", "line 2, field K: must be in"),
])
def test_topology_errors_name_file_row_and_field(tmp_path, text, match):
    path = tmp_path / "topo.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        sim.read_topology_csv(path)


def test_topology_refuses_binary(tmp_path):
    path = tmp_path / "topo.csv"
    path.write_bytes(b"Layer name, M, N, K,\nfc, 1, 2, 3,\n\xff\xfe\n")
    with pytest.raises(ValueError, match="topo.csv: line 3: not UTF-8"):
        sim.read_topology_csv(path)


def _cfg(tmp_path, **changes):
    files = sim.to_scalesim(sim.ZCU102, [("l", 1, 2, 3)], out_dir=tmp_path)
    text = open(files["config"]).read()
    for key, value in changes.items():
        lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines()]
        text = "\n".join(lines) + "\n"
    path = tmp_path / "bad.cfg"
    path.write_text(text)
    return path, text


@pytest.mark.parametrize("key, value, match", [
    ("ArrayHeight", "lots", "line {line}, \\[architecture_presets\\] ArrayHeight must be an integer"),
    ("ArrayWidth", "0", "line {line}, \\[architecture_presets\\] ArrayWidth must be positive"),
    ("Dataflow", "xs", "line {line}, \\[architecture_presets\\] Dataflow must be one of"),
    ("Bandwidth", "inf", "line {line}, \\[architecture_presets\\] Bandwidth must be positive and finite"),
    ("ArrayHeight", "9999999", "bad.cfg: not a valid design .*array_rows"),
])
def test_config_errors_name_file_line_and_field(tmp_path, key, value, match):
    path, text = _cfg(tmp_path, **{key: value})
    line = next(n for n, l in enumerate(text.splitlines(), 1) if l.startswith(f"{key}:"))
    with pytest.raises(ValueError, match=f"bad.cfg: {match.format(line=line)}" if "{line}" in match else match):
        sim.read_scalesim_config(path)


# ------------------------------------------------------------------ sweeps

def test_sweep_refuses_a_huge_grid_before_building_it():
    grid = {"array_rows": range(1, 10 ** 6), "array_cols": range(1, 10 ** 6), "clock_mhz": [100, 200]}
    with pytest.raises(ValueError, match="spans .* designs"):
        sim.sweep(DEIT_S, grid)  # returns at once: the product is counted, not built
    with pytest.raises(ValueError, match="more than"):
        sim.sweep(DEIT_S, {"array_rows": (n for n in range(1, 10 ** 12))})
    with pytest.raises(ValueError, match="more than"):
        sim.sweep(DEIT_S, ({"array_rows": 16} for _ in range(10 ** 12)))


# ------------------------------------------------------------------ the binding reads by name

def test_binding_reads_hardware_and_config_by_name_not_position():
    fields = [f.name for f in dataclasses.fields(sim.HardwareConfig)]
    hw = sim.ZCU102.replace(array_cols=40, dataflow="ws", operand_bits=16)
    # HardwareConfig's fields in reverse order
    Shuffled = dataclasses.make_dataclass("Shuffled", [(n, object) for n in reversed(fields)], frozen=True)
    shuffled = Shuffled(**{n: getattr(hw, n) for n in reversed(fields)})
    path = np.ones(DEIT_S.depth, np.uint8)
    want = _core.sim_forward(hw=hw, config=DEIT_S, batch=2, path=path, stem=None, entropy=True)
    got = _core.sim_forward(hw=shuffled, config=DEIT_S, batch=2, path=path, stem=None, entropy=True)
    assert got["totals"] == want["totals"]
    assert all(np.array_equal(got["rows"][k], want["rows"][k]) for k in want["rows"])
    # swapping two same-typed fields changes the answer (the names are read, not the order)
    swapped = _core.sim_forward(hw=hw.replace(array_rows=hw.array_cols, array_cols=hw.array_rows), config=DEIT_S,
                                batch=2, path=path, stem=None, entropy=True)
    assert swapped["totals"]["compute_cycles"] != want["totals"]["compute_cycles"]


def test_binding_takes_keywords_only_and_names_what_is_missing():
    path = np.ones(DEIT_S.depth, np.uint8)
    with pytest.raises(TypeError):
        _core.sim_forward(sim.ZCU102, DEIT_S, 1, path, None, False)
    with pytest.raises(TypeError):
        _core.sim_gemm_cycles(1, 2, 3, 4, 5, 0)
    bare = type("Bare", (), {"array_rows": 64})()
    with pytest.raises(TypeError, match="no attribute array_cols"):
        _core.sim_forward(hw=bare, config=DEIT_S, batch=1, path=path, stem=None, entropy=False)
    with pytest.raises(TypeError, match="config must be a pivot.ViTConfig.*no attribute depth"):
        _core.sim_forward(hw=sim.ZCU102, config=object(), batch=1, path=path, stem=None, entropy=False)
    with pytest.raises(TypeError, match="hw.array_rows must be an int"):
        _core.sim_forward(hw=type("F", (), {"array_rows": 64.0})(), config=DEIT_S, batch=1, path=path, stem=None,
                          entropy=False)


def test_binding_refuses_a_stem_the_config_does_not_have():
    lvvit = ViTConfig.preset("lvvit_s")
    with pytest.raises(ValueError, match="convolution stem"):
        _core.sim_forward(hw=sim.ZCU102, config=lvvit, batch=1, path=np.ones(lvvit.depth, np.uint8), stem=None,
                          entropy=False)
    with pytest.raises(ValueError, match="stem= is for a config with a convolution stem"):
        _core.sim_forward(hw=sim.ZCU102, config=DEIT_S, batch=1, path=np.ones(DEIT_S.depth, np.uint8),
                          stem=np.ones((1, 3), np.int64), entropy=False)


def test_results_are_named_columns():
    r = _core.sim_gemms(hw=sim.ZCU102, shapes=np.array([[197, 1152, 384, 1]], np.int64))
    fields = {f.name for f in dataclasses.fields(sim.LayerReport)} - {"name", "module", "kind", "delay_ms"}
    assert fields <= set(r["rows"]) and {"op", "block", "module", "is_ps", "delay_s"} <= set(r["rows"])
    assert r["rows"]["compute_cycles"][0] == sim.gemm_cycles(197, 1152, 384, 64, 36, "is")
    assert set(r["totals"]) >= {"delay_s", "energy_j", "macs"} | {f"delay_{m}_s" for m in sim.MODULES}
    assert r["totals"]["macs"] == 197 * 1152 * 384
