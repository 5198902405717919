"""Design-space sweeps: one model over many ``HardwareConfig`` variants (``sweep``), and one model at
several operand widths (``bit_width_report``)."""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from .. import _validate
from ..config import ViTConfig
from .hardware import ZCU102, HardwareConfig, check_hardware
from .simulation import _resolve, simulate


SWEEP_RESULTS = ("delay_ms", "energy_j", "edp", "fps_per_w", "power_w", "utilization_pct")
"""The result columns of ``sweep``: delay (ms), energy (J), EDP (J x ms), images per joule, average
power (W) and PL utilization (MACs / (PEs x (compute + stall cycles)), %)."""

MAX_SWEEP_DESIGNS = 1_000_000
"""The most designs one ``sweep`` takes (about 10 minutes of DeiT-S simulations on one core)."""

_HW_FIELDS = tuple(f.name for f in dataclasses.fields(HardwareConfig))


def _axis_values(name, v) -> list:
    """The values of one grid axis, refused before it is read beyond MAX_SWEEP_DESIGNS."""
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        return [v]
    if hasattr(v, "__len__") and len(v) > MAX_SWEEP_DESIGNS:
        raise ValueError(f"grid[{name!r}] has {len(v)} values; a sweep holds at most {MAX_SWEEP_DESIGNS} designs")
    values = list(itertools.islice(v, MAX_SWEEP_DESIGNS + 1))
    if len(values) > MAX_SWEEP_DESIGNS:
        raise ValueError(f"grid[{name!r}] has more than {MAX_SWEEP_DESIGNS} values; a sweep holds at most "
                         f"{MAX_SWEEP_DESIGNS} designs")
    if not values:
        raise ValueError(f"grid[{name!r}] is empty")
    return values


def _sweep_designs(grid) -> tuple:
    """(column names, list of change dicts) of a grid mapping or a sequence of designs. The number of
    designs is counted from the axes' lengths and refused beyond MAX_SWEEP_DESIGNS before any is built."""
    if isinstance(grid, dict) or (hasattr(grid, "keys") and hasattr(grid, "__getitem__")):
        names = [str(k) for k in grid.keys()]
        values = [_axis_values(name, grid[name]) for name in names]
        count = math.prod(len(v) for v in values)
        if count > MAX_SWEEP_DESIGNS:
            raise ValueError(f"grid spans {count} designs ({' x '.join(str(len(v)) for v in values)}); a sweep "
                             f"holds at most {MAX_SWEEP_DESIGNS}: split the grid into several sweeps")
        changes = [dict(zip(names, combo)) for combo in itertools.product(*values)]
    elif hasattr(grid, "__iter__") and not isinstance(grid, (str, bytes)):
        changes = []
        for i, item in enumerate(grid):
            if i >= MAX_SWEEP_DESIGNS:
                raise ValueError(f"grid holds more than {MAX_SWEEP_DESIGNS} designs: split it into several sweeps")
            if isinstance(item, HardwareConfig):
                changes.append(dataclasses.asdict(item))
            elif isinstance(item, dict):
                changes.append(dict(item))
            else:
                raise TypeError(f"grid[{i}] must be a HardwareConfig or a dict of its fields, got {type(item).__name__}")
        names = list(dict.fromkeys(k for c in changes for k in c))
    else:
        raise TypeError(f"grid must be a mapping field -> values or a sequence of designs, got {type(grid).__name__}")
    unknown = [n for n in names if n not in _HW_FIELDS]
    if unknown:
        raise ValueError(f"grid names unknown HardwareConfig fields {unknown}; fields: {', '.join(_HW_FIELDS)}")
    if not changes:
        raise ValueError("grid holds no designs")
    return names, changes


def _sweep_rows(config, path, base, changes, batch) -> np.ndarray:
    """The SWEEP_RESULTS of each design ``base.replace(**change)``: (len(changes), 6) float64."""
    out = np.empty((len(changes), len(SWEEP_RESULTS)))
    for i, change in enumerate(changes):
        try:
            hw = dataclasses.replace(base, **change)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"design {change}: {exc}") from None
        r = simulate(config, path, hw, batch)
        busy = hw.array_rows * hw.array_cols * (r.compute_cycles + r.stall_cycles)
        out[i] = (r.delay_ms, r.energy_j, r.edp, r.fps_per_w, r.power_w, 100.0 * r.macs / busy if busy else 0.0)
    return out


def sweep(model_or_config, grid, path=None, executor=None, hw: HardwareConfig = ZCU102, batch: int = 1,
          chunks=None) -> dict:
    """Simulate one model on many accelerator designs: a table with one row per design.

    ``grid``: a mapping of ``HardwareConfig`` field -> values, every combination taken (e.g.
    ``{"array_rows": [16, 32, 64], "array_cols": [16, 36, 64], "dataflow": ["is", "ws", "os"],
    "clock_mhz": [100, 200], "ipmem_bytes": [8192, 65536], "dram_bandwidth_gbps": [9.6, 19.2],
    "operand_bits": [8, 16]}``), or a sequence of designs (``HardwareConfig`` objects or dicts of
    fields), at most ``MAX_SWEEP_DESIGNS`` (counted from the axes' lengths before any design is built).
    Fields not named keep ``hw``'s values. ``model_or_config`` and ``path`` as in
    ``simulate``; ``batch`` images per inference.

    ``executor``: any ``concurrent.futures.Executor`` (a process pool, Dask's
    ``client.get_executor()``, ``pivot.distributed.RayExecutor()``); the designs are split into
    ``chunks`` parts (default: 4 per worker when the executor says how many it has, else 16)
    submitted to it; None runs them here (DeiT-S: about 10,000 designs in a few seconds).

    Returns a dict of NumPy columns, rows in grid order: one column per grid field (the design),
    then ``SWEEP_RESULTS``: ``delay_ms``, ``energy_j``, ``edp`` (J x ms), ``fps_per_w``,
    ``power_w`` and ``utilization_pct``. ``pivot.plot.design_space`` draws it.
    """
    config, path_arr = _resolve(model_or_config, path)
    hw = check_hardware(hw)
    batch = _validate.positive_int(batch, "batch")
    names, changes = _sweep_designs(grid)
    if executor is None:
        values = _sweep_rows(config, path_arr, hw, changes, batch)
    else:
        if not hasattr(executor, "submit"):
            raise TypeError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
        if chunks is None:
            workers = getattr(executor, "_max_workers", None)
            chunks = 4 * workers if _validate.is_int(workers) and workers > 0 else 16
        chunks = min(_validate.positive_int(chunks, "chunks"), len(changes))
        bounds = np.linspace(0, len(changes), chunks + 1).astype(int)
        futures = [executor.submit(_sweep_rows, config, path_arr, hw, changes[a:b], batch)
                   for a, b in zip(bounds[:-1], bounds[1:])]
        values = np.concatenate([f.result() for f in futures])
    table = {}
    for name in names:
        column = [c.get(name, getattr(hw, name)) for c in changes]
        table[name] = np.array(column, dtype=object if name == "name" else None)
    for j, name in enumerate(SWEEP_RESULTS):
        table[name] = values[:, j].copy()
    return table


def bit_width_report(model_or_config=None, bits=(8, 16, 32), hw: HardwareConfig = ZCU102, path=None,
                     batch: int = 1) -> list:
    """Delay, energy and EDP of one model at several operand widths (``HardwareConfig.operand_bits``).

    Scaling model: the array does one MAC per PE per cycle at any width (compute cycles are
    unchanged); an operand word takes ``word_bytes * bits / 8`` bytes, so the SRAMs hold fewer
    words (more DRAM re-fetches) and DRAM moves more bytes (more stalls, more periphery energy);
    energy per MAC scales with ``(bits / 8)^2`` (an array multiplier's area) and energy per SRAM
    access with ``bits / 8``; static powers and the PS are unchanged. At 8 bits this is the
    calibrated ZCU102 (DeiT-S: 59.66 ms, 0.4725 J).

    ``model_or_config``: a model, a ``pivot.ViTConfig``, or None for DeiT-S. Returns one dict
    per width: bits, delay_ms, energy_j, edp, and the energy of each component in joules.
    """
    if model_or_config is None:
        model_or_config = ViTConfig.preset("deit_small_patch16_224")
    rows = []
    for b in bits:
        r = simulate(model_or_config, path=path, hw=hw.replace(operand_bits=b), batch=batch)
        row = {"bits": int(b), "delay_ms": r.delay_ms, "energy_j": r.energy_j, "edp": r.edp}
        row.update({"power_w": r.power_w, "dram_accesses_words": r.dram_accesses_words})
        row.update({f"energy_{k}_j": v for k, v in r.energy_breakdown.items()})
        rows.append(row)
    return rows


def format_bit_width_report(rows) -> str:
    """A Markdown table of ``bit_width_report`` rows, with ratios to the first row."""
    base = rows[0]
    lines = ["| bits | delay (ms) | energy (J) | EDP (J x ms) | delay x | energy x |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['bits']} | {r['delay_ms']:.2f} | {r['energy_j']:.4f} | {r['edp']:.2f} | "
                     f"{r['delay_ms'] / base['delay_ms']:.2f} | {r['energy_j'] / base['energy_j']:.2f} |")
    return "\n".join(lines)
