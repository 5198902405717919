"""What PIVOT-Sim reports: one ``LayerReport`` per row, the ``SimReport`` of one inference and the
``PairReport`` of a low/high effort pair. The C simulator returns its rows and totals as named
columns (csrc/bind/sim.c); this module turns them into these records."""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from functools import cached_property

from .. import _validate
from ..config import ViTConfig
from .hardware import HardwareConfig

MODULES = ("attention_mac", "softmax", "mlp", "other")
ENERGY_COMPONENTS = ("pe_array", "sram", "periphery", "ps")

# Row kinds, as numbered in csrc/pivot_sim.h; each ViT row's name is built from its kind and block.
_OPS = ("gemm", "patch_embed", "norm1", "qkv", "qk", "softmax", "sv", "proj", "norm2", "fc1", "gelu",
        "fc2", "norm", "head", "head_dist", "entropy", "stem_conv", "relu", "norm_patches", "aux_head", "aux_max",
        "v", "relu_qk", "kv", "q_kv", "linear_div")
_LVVIT_NAMES = {"stem_conv": "patch_embed.conv{}", "relu": "patch_embed.relu{}", "norm_patches": "norm.patches",
                "aux_head": "aux_head", "aux_max": "aux_head.max"}
_BLOCK_NAMES = {"norm1": "norm1", "qkv": "attn.qkv", "qk": "attn.qk", "softmax": "attn.softmax",
                "sv": "attn.sv", "proj": "attn.proj", "norm2": "norm2", "fc1": "mlp.fc1", "gelu": "mlp.gelu",
                "fc2": "mlp.fc2", "v": "attn.v", "relu_qk": "attn.relu_qk", "kv": "attn.kv", "q_kv": "attn.q_kv",
                "linear_div": "attn.linear_div"}


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """One row of a report: ``count`` back-to-back GEMMs on the PL, or one elementwise op on the PS.

    Field names carry their units. GEMM rows: ``M, N, K`` of ``(M, K) @ (K, N)``; PS rows: the
    op's ``M x N`` tensor (K = 0). Cycles, accesses, MACs and energy cover all ``count`` repeats;
    ``utilization_pct`` is MACs / (PEs x (compute + stall cycles)), SCALE-Sim's "Overall Util".
    """
    name: str
    module: str               # "attention_mac", "softmax", "mlp" or "other"
    kind: str                 # "gemm" (PL) or "ps"
    M: int
    N: int
    K: int
    count: int
    macs: int
    compute_cycles: int       # PL cycles
    stall_cycles: int         # PL cycles waiting for DRAM
    ps_cycles: float          # PS cycles
    utilization_pct: float
    sram_reads_words: int     # array-side IPMEM + WTMEM reads
    sram_writes_words: int    # array-side OPMEM writes
    dram_reads_words: int
    dram_writes_words: int
    delay_ms: float
    energy_j: float
    energy_pe_array_j: float
    energy_sram_j: float
    energy_periphery_j: float
    energy_ps_j: float


_LAYER_FIELDS = tuple(f.name for f in dataclasses.fields(LayerReport))


def _row_names(columns: dict, names=None) -> list:
    if names is not None:
        return list(names)
    out = []
    for op, block in zip(columns["op"].astype(int).tolist(), columns["block"].astype(int).tolist()):
        kind = _OPS[op]
        if kind in _LVVIT_NAMES:  # the stem rows' block column holds the stem layer (1, 2, 3)
            out.append(_LVVIT_NAMES[kind].format(block))
        else:
            out.append(f"blocks.{block}.{_BLOCK_NAMES[kind]}" if block >= 0 else kind)
    return out


# LayerReport fields read from the C columns of the same name, as ints or as floats.
_INT_COLUMNS = ("M", "N", "K", "count", "macs", "compute_cycles", "stall_cycles", "sram_reads_words",
                "sram_writes_words", "dram_reads_words", "dram_writes_words")
_FLOAT_COLUMNS = ("ps_cycles", "utilization_pct", "energy_j", "energy_pe_array_j", "energy_sram_j",
                  "energy_periphery_j", "energy_ps_j")


def _layers_from_columns(columns: dict, names) -> tuple:
    lists = {k: v.tolist() for k, v in columns.items()}
    layers = []
    for i, name in enumerate(_row_names(columns, names)):
        fields = {k: int(lists[k][i]) for k in _INT_COLUMNS}
        fields.update({k: lists[k][i] for k in _FLOAT_COLUMNS})
        layers.append(LayerReport(name=name, module=MODULES[int(lists["module"][i])],
                                  kind="ps" if lists["is_ps"][i] else "gemm", delay_ms=lists["delay_s"][i] * 1e3,
                                  **fields))
    return tuple(layers)


def _rows_to_csv(dicts, path) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(_LAYER_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(dicts)
    text = buf.getvalue()
    if path is not None:
        with open(_validate.file_path(path), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return text


@dataclasses.dataclass(frozen=True)
class SimReport:
    """What one inference (of ``batch`` images) costs on ``hw``.

    ``delay_ms`` (ms), ``energy_j`` (J), ``power_w`` (W, energy / delay), ``edp`` (J x ms),
    ``fps_per_w`` (images per joule), ``breakdown`` (delay in ms by module: attention_mac,
    softmax, mlp, other; Fig. 6a), ``energy_breakdown`` (J by component: pe_array, sram,
    periphery, ps; Fig. 6b), cycle and access totals, and ``layers`` (one ``LayerReport`` per
    row, in execution order). ``to_dicts()`` / ``to_csv()`` export the layers.
    """
    hw: HardwareConfig
    config: ViTConfig | None          # None for simulate_gemms
    path: tuple | None                # the encoders' attention on/off, None for simulate_gemms
    batch: int
    delay_ms: float
    energy_j: float
    power_w: float
    edp: float
    fps_per_w: float
    compute_cycles: int
    stall_cycles: int
    ps_cycles: float
    macs: int
    sram_accesses_words: int
    dram_accesses_words: int
    breakdown: dict
    energy_breakdown: dict
    _rows: dict = dataclasses.field(repr=False, compare=False)   # C column name -> (n,) float64
    _names: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def _from_c(cls, hw, config, path, batch, result, names=None) -> "SimReport":
        """The report of a ``_core.sim_forward`` / ``sim_gemms`` result: named row columns and totals."""
        t = result["totals"]
        delay_s, energy = t["delay_s"], t["energy_j"]
        delay_ms = delay_s * 1e3
        return cls(hw=hw, config=config, path=path, batch=batch, delay_ms=delay_ms, energy_j=energy,
                   power_w=energy / delay_s if delay_s > 0 else 0.0, edp=energy * delay_ms,
                   fps_per_w=batch / energy if energy > 0 else math.inf,
                   compute_cycles=int(t["compute_cycles"]), stall_cycles=int(t["stall_cycles"]),
                   ps_cycles=t["ps_cycles"], macs=int(t["macs"]),
                   sram_accesses_words=int(t["sram_reads_words"] + t["sram_writes_words"]),
                   dram_accesses_words=int(t["dram_reads_words"] + t["dram_writes_words"]),
                   breakdown={m: t[f"delay_{m}_s"] * 1e3 for m in MODULES},
                   energy_breakdown={c: t[f"energy_{c}_j"] for c in ENERGY_COMPONENTS},
                   _rows=result["rows"], _names=names)

    @property
    def fps(self) -> float:
        """Images per second."""
        return self.batch / (self.delay_ms * 1e-3)

    @cached_property
    def layers(self) -> tuple:
        """One LayerReport per row, in execution order."""
        return _layers_from_columns(self._rows, self._names)

    def to_dicts(self) -> list:
        """The layers as dicts whose keys carry units (``delay_ms``, ``energy_j``, ``..._words``)."""
        return [dataclasses.asdict(layer) for layer in self.layers]

    def to_csv(self, path=None) -> str:
        """The layers as CSV (header names carry units); written to ``path`` when given. Returns the text."""
        return _rows_to_csv(self.to_dicts(), path)


@dataclasses.dataclass(frozen=True)
class PairPart:
    """A part of a multi-effort pair (Fig. 8b): delay and energy per input, and its share of the
    pair's EDP (its energy times the pair's delay, so the parts add up to the pair's EDP)."""
    delay_ms: float
    energy_j: float
    edp: float


@dataclasses.dataclass(frozen=True)
class PairReport:
    """A low/high effort pair where a fraction ``f_high`` of the inputs is re-run on the high effort.

    Per input: ``delay_ms`` = D_L + F_H * D_H, ``energy_j`` = E_L + F_H * E_H, ``power_w``,
    ``edp`` (J x ms), ``fps_per_w``; parts (Fig. 8b) ``low`` = F_L * D_L, ``high`` = F_H * D_H,
    ``recompute`` = F_H * D_L (the low-effort work spent on inputs that go on to the high effort),
    so that low + high + recompute = delay. ``low_report`` / ``high_report`` are the two
    SimReports (the low effort's includes the entropy on the PS).
    """
    low_report: SimReport
    high_report: SimReport
    f_high: float
    delay_ms: float
    energy_j: float
    power_w: float
    edp: float
    fps_per_w: float
    low: PairPart
    high: PairPart
    recompute: PairPart
    breakdown: dict
    energy_breakdown: dict

    @property
    def f_low(self) -> float:
        return 1.0 - self.f_high
