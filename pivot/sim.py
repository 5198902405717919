"""PIVOT-Sim: delay, memory traffic and energy of ViT inference on a systolic-array FPGA.

The paper's simulator (Moitra et al., DAC'24, section 3.4, Fig. 5) was never released; this is an
analytical re-implementation in C (csrc/sim.c) with a plain-Python specification
(pivot/reference/sim.py) that the tests hold it equal to. A whole DeiT-S is one C call (a few
microseconds), so sweeps over thousands of hardware variants take seconds.

Machine (Fig. 5)
----------------
Every matrix product runs on the programmable logic (PL): a ``rows x cols`` systolic array fed
by an input SRAM (IPMEM), a weight SRAM (WTMEM) and an output SRAM (OPMEM), which a global buffer
(GB) stages to and from DRAM. The processing system (PS, the ARM cores) runs the elementwise
operations: softmax, GELU, LayerNorm and (for a multi-effort pair) the entropy. Layers run one
after another; PS and PL do not overlap.

A GEMM ``out (M, N) = A (M, K) @ B (K, N)`` follows SCALE-Sim's GEMM mode: A is the "ifmap" (in
IPMEM), B the "filter" (in WTMEM: the weights, or K^T and V for the two attention products).
A ViT at batch B runs, per encoder with its attention active: norm1 (PS), qkv (B*T, 3C, C),
QK^T (T, T, C/H) and SMxV (T, C/H, T) once per head and image, softmax (PS, H*B tensors of
T x T), proj (B*T, C, C); always: norm2 (PS), fc1 (B*T, hidden, C), GELU (PS), fc2 (B*T, C,
hidden). Before the encoders the patch embedding (B*patches, C, in_chans*patch^2); after them
the final norm of the class (and distillation) tokens and the head (B, classes, C), plus
head_dist for distilled models. A skipped encoder (path 0) runs only norm2 and its MLP.

Compute cycles (equal to SCALE-Sim 3.0.0)
-----------------------------------------
SCALE-Sim maps the GEMM onto the array as (S_r, S_c, T) = (K, M, N) for input stationary (the
ZCU102 design), (K, N, M) for weight stationary and (M, N, K) for output stationary: S_r lies
along the array rows, S_c along its columns, T streams in time. There are ceil(S_r/rows) *
ceil(S_c/cols) folds; a fold costs 2*rows + cols + T - 2 cycles for IS and WS (load the
stationary tile, stream, drain the skew) and rows + cols + T - 2 for OS; SCALE-Sim's "Total
Cycles" is folds * fold - 1 (it reports the last cycle's index). ``gemm_cycles`` returns exactly
this; the tests run scalesim on small shapes and hold recorded numbers for DeiT-S-sized layers.
Array-side SRAM accesses are SCALE-Sim's too: the stationary operand is read once, the streamed
one once per fold along the other array dimension, outputs written once per reduction fold
(partial sums) for IS and WS. (SCALE-Sim also adds rows + cols per fold to the OS output writes,
a slip in systolic_compute_os.py that pivot does not copy.)

Memory (analytical, in the spirit of SCALE-Sim's double-buffered scratchpads)
------------------------------------------------------------------------------
Each SRAM serves the array from its active part (``sram_active_fraction``, 0.5 as in SCALE-Sim)
while the rest prefetches. The GB's active part adds to the input SRAMs' capacity.

* DRAM reads: an operand is fetched once when the data it re-streams fits in its on-chip
  capacity, else once per pass (IS: the weights once per column fold when K*N does not fit; WS
  and OS: A once per column fold when M*K does not fit; OS: B per row fold when a K x cols slice
  does not fit). SCALE-Sim's estimate-bandwidth ("CALC") read buffers give the same counts.
* DRAM writes: the outputs, once, when one pass of partial sums (IS: cols x N, WS: M x cols) fits
  in OPMEM's active part; otherwise every fold's partial sums go out and all but the first come
  back as DRAM reads. SCALE-Sim instead drains every fold's partial sums and never reads them.
* Stalls: DRAM is one shared interface of ``dram_bandwidth_gbps``. Double buffering hides the
  transfers behind the compute, except the first fold's operands (fill) and the last fold's
  outputs (drain), each at most an SRAM's active part:
  ``stall = exposed + max(0, transfer - exposed - compute)`` cycles per GEMM.
  SCALE-Sim's "USER" mode instead gives each of its three operands its own port and simulates
  the request trace; its read buffers also re-fetch lines when the demand order differs from its
  prefetch order, so its DRAM reads and stalls are larger for small SRAMs (see docs/simulator.md).
* The PS reads each elementwise op's input from DRAM and writes its output back.

Processing system
-----------------
Each PS op costs ``<op>_cycles_per_element`` PS cycles per element at ``ps_clock_mhz``; these are
effective cycles of the four Cortex-A53 cores together. Entropy is from the paper (0.03 ms per
image for 1000 classes at 1.2 GHz: 36 cycles per element); GELU (0.125) and LayerNorm (0.25) are
assumed for int8 NEON code on four cores (a 256-entry lookup table for GELU; two passes for
LayerNorm); softmax is fitted (below).

Energy and power
----------------
Each of the four components of Fig. 6b draws a static power all the time plus energy per event:
PE array per MAC, SRAM per word access (array-side accesses, plus one GB and one IP/WT/OPMEM
access per word moved to or from DRAM), periphery (interconnect and memory controllers) per DRAM
byte, PS per second of computing (``ps_active_power_w``). Energy = sum; power = energy / delay;
EDP = energy x delay in J x ms; FPS/W = images / energy.

The paper lists one power, 7.92 W, for every model (Tables 2 and 3: energy = 7.92 W x delay),
yet splits energy by activity (Fig. 6b). pivot keeps activity-based energy and reconciles the two
by fitting the PS's active power and the energy per MAC so that the board draws 7.92 W both while
the PS computes and while the PL computes. The DeiT-S baseline then averages exactly 7.92 W, and
other models stay close to it whatever their PS/PL split (DeiT-S with 6 of 12 attentions: 8.0 W;
LVViT-S-shaped: 7.9 W; with no attention at all: 8.4 W, as MLP products keep the array busier).

Calibration of ZCU102 (Table 1)
-------------------------------
Assumed: the Table 1 array, clock, dataflow and SRAM sizes; 1-byte words (8-bit models); DRAM
19.2 GB/s (the ZCU102's 64-bit DDR4-2400); PS 1.2 GHz; the PS costs above; SRAM 5 pJ per word
access; periphery 40 pJ per DRAM byte; static powers PE array 0.8 W, SRAM 0.3 W, periphery
1.5 W, PS 1.2 W (Fig. 6b's absolute values are not in the paper's text). Fitted on DeiT-S at
batch 1 (``pivot.reference.sim.fit_zcu102``):

* ``softmax_cycles_per_element`` = 14.68 so that DeiT-S takes 59.66 ms (Table 2);
* ``ps_active_power_w`` = 4.101 W so that the board draws 7.92 W while the PS computes;
* ``mac_energy_pj`` = 18.88 pJ so that it draws 7.92 W while the PL computes.

DeiT-S then gives 59.66 ms, 0.4725 J, 7.92 W, EDP 28.19 J x ms, 2.12 FPS/W (Table 2: 59.66 ms,
0.47 J, 28.19, 2.14). Delay by module: attention MACs 18.3%, softmax 57.3%, MLP 23.2%, other 1.3%
(Fig. 6a: 18%, 60%, 22%; the MLP products alone take 22.5% on this array, so softmax can reach
at most 59.4%). Energy: PE array 28.5%, SRAM 4.6%, periphery 21.4%, PS 45.5%.

Without refitting, an LVViT-S-shaped model (``ViTConfig(depth=16, mlp_ratio=3.0)``: embed 384,
6 heads, 197 tokens, no conv stem) gives 75.01 ms, 0.591 J, 7.88 W, EDP 44.3 J x ms against
Table 3's 79.55 ms, 0.63 J, 50.8 (delay -5.7%); its delay splits into attention MACs 19.4%,
softmax 60.8%, MLP 18.7% (Fig. 6a: 19%, 63%, 18%). docs/simulator.md has the PVDS/PVLS-style pairs.

LV-ViT
------
A config with LV-ViT's conv stem or aux head (``ViTConfig.preset("lvvit_s")``) adds rows: each
stem convolution as an im2col GEMM (M = output pixels, N = output channels, K = in_channels *
kernel^2, as SCALE-Sim maps convolutions) with BatchNorm folded into it, followed by its ReLU on
the PS at ``gelu_cycles_per_element``; the patch projection reads the stem's map (patch_dim =
stem_channels * (patch/2)^2); after the head, the LayerNorm of the patch tokens (PS), the aux
head GEMM over them and its max over tokens (PS, as the ReLU). ``skip_lam``
costs nothing (folded into proj and fc2). LVViT-S then takes 90.25 ms, 0.680 J, 7.53 W without
refitting (Table 3: 79.55 ms, 0.63 J): the stem's convolutions stream only 64 output channels per
fold on the input-stationary array and use 22-28% of it (13.25 ms); at full utilization the stem
and projection would give 80.01 ms. docs/simulator.md discusses the difference.
"""
from __future__ import annotations

import configparser
import csv
import dataclasses
import io
import itertools
import math
import numbers
import os
from functools import cached_property

import numpy as np

from . import _core, _validate
from .config import ATTENTIONS, ViTConfig, as_int, as_real, normalize_path

__all__ = [
    "DATAFLOWS", "MODULES", "ENERGY_COMPONENTS", "HardwareConfig", "ZCU102", "gemm_cycles",
    "LayerReport", "SimReport", "PairPart", "PairReport", "GemmLayer", "simulate", "simulate_pair",
    "simulate_gemms", "read_scalesim_config", "read_topology_csv", "to_scalesim", "sweep", "SWEEP_RESULTS",
]

DATAFLOWS = ("is", "ws", "os")
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
# Columns of a C row (csrc/pivot_sim.h PIVOT_SIM_ROW_*).
(_R_OP, _R_BLOCK, _R_MODULE, _R_IS_PS, _R_M, _R_N, _R_K, _R_COUNT, _R_MACS, _R_COMPUTE, _R_STALL, _R_PS,
 _R_UTIL, _R_SRAM_R, _R_SRAM_W, _R_DRAM_R, _R_DRAM_W, _R_DELAY, _R_E_PE, _R_E_SRAM, _R_E_PERIPH, _R_E_PS,
 _R_ENERGY) = range(23)
# Columns of the C totals (PIVOT_SIM_TOT_*).
(_T_DELAY, _T_ENERGY, _T_E_PE, _T_E_SRAM, _T_E_PERIPH, _T_E_PS, _T_COMPUTE, _T_STALL, _T_PS, _T_MACS,
 _T_SRAM_R, _T_SRAM_W, _T_DRAM_R, _T_DRAM_W, _T_MODULE) = range(15)
if (_core.SIM_ROW_FIELDS, _core.SIM_TOT_FIELDS) != (23, 18):
    raise ImportError("pivot/sim.py and csrc/pivot_sim.h disagree on the report columns: rebuild pivot")


# ---------------------------------------------------------------------------------------------- hardware

# Bounds far beyond any accelerator (and within which every delay and energy stays finite).
_MAX_PES_PER_SIDE = 1 << 16
_MAX_BYTES = 1 << 48
_MAX_CLOCK_MHZ = 1e6   # 1 THz
_MAX_REAL = 1e9        # cycles per element, pJ, W, GB/s
_MIN_RATE = 1e-6       # clocks (MHz), DRAM bandwidth (GB/s), SRAM fraction: any less overflows a delay


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class HardwareConfig:
    """The accelerator: PL systolic array and memories, PS costs, and energy constants.

    The defaults are the ZCU102 of Table 1, calibrated as the module docstring describes
    (``pivot.sim.ZCU102``). Replace any field with ``dataclasses.replace(ZCU102, array_cols=64)``
    or ``ZCU102.replace(...)``; validation runs on every new instance.
    """
    name: str = "ZCU102"
    # -- PL: systolic array
    array_rows: int = 64                    # PE rows (the reduction dimension K for IS and WS)
    array_cols: int = 36                    # PE columns
    dataflow: str = "is"                    # "is" input, "ws" weight, "os" output stationary
    clock_mhz: float = 125.0                # PL clock
    # -- PL: memories
    word_bytes: int = 1                     # bytes per operand word (8-bit models)
    global_buffer_bytes: int = 16 * 1024    # GB, 16 KB (0: none, as in SCALE-Sim)
    ipmem_bytes: int = 64 * 1024 // 8       # input SRAM, 64 Kb
    wtmem_bytes: int = 64 * 1024 // 8       # weight SRAM, 64 Kb
    opmem_bytes: int = 64 * 1024 // 8       # output SRAM, 64 Kb
    sram_active_fraction: float = 0.5       # part of each SRAM serving the array (double buffering)
    dram_bandwidth_gbps: float = 19.2       # shared DRAM interface, GB/s (1e9 B/s); math.inf: no stalls
    # -- PS: ARM cores, effective cycles per element of all cores together
    ps_clock_mhz: float = 1200.0
    softmax_cycles_per_element: float = 14.68   # fitted: DeiT-S takes 59.66 ms
    gelu_cycles_per_element: float = 0.125
    layernorm_cycles_per_element: float = 0.25
    entropy_cycles_per_element: float = 36.0    # the paper's 0.03 ms per image, 1000 classes
    # -- energy: per event, and static power of each component
    mac_energy_pj: float = 18.88                # fitted: 7.92 W while the PL computes
    sram_access_energy_pj: float = 5.0          # per word access
    dram_energy_pj_per_byte: float = 40.0       # interconnect and memory controllers
    ps_active_power_w: float = 4.101            # fitted: 7.92 W while the PS computes
    pe_array_static_w: float = 0.8
    sram_static_w: float = 0.3
    periphery_static_w: float = 1.5
    ps_static_w: float = 1.2
    # operand bit width (8 = the calibrated design; see bit_width_report)
    operand_bits: int = 8                   # bits per operand: storage word_bytes * bits / 8, MAC energy
                                            # x (bits/8)^2, SRAM energy per access x bits/8

    def __post_init__(self):
        # Every field becomes a Python int or float on entry (NumPy integers would wrap around in
        # derived sizes), within bounds that keep every delay and energy finite.
        def put(field, value):
            object.__setattr__(self, field, value)

        if not isinstance(self.name, str):
            raise TypeError(f"HardwareConfig.name must be a string, got {type(self.name).__name__}")
        for field in ("array_rows", "array_cols"):
            put(field, as_int("HardwareConfig", field, getattr(self, field), high=_MAX_PES_PER_SIDE))
        put("word_bytes", as_int("HardwareConfig", "word_bytes", self.word_bytes, high=64))
        for field in ("ipmem_bytes", "wtmem_bytes", "opmem_bytes"):
            put(field, as_int("HardwareConfig", field, getattr(self, field), high=_MAX_BYTES))
        put("global_buffer_bytes", as_int("HardwareConfig", "global_buffer_bytes", self.global_buffer_bytes,
                                          low=0, high=_MAX_BYTES))
        put("operand_bits", as_int("HardwareConfig", "operand_bits", self.operand_bits, high=64))
        if not isinstance(self.dataflow, str) or self.dataflow not in DATAFLOWS:
            raise ValueError(f"HardwareConfig.dataflow must be one of {DATAFLOWS} (input, weight, output "
                             f"stationary), got {self.dataflow!r}")
        for field in ("clock_mhz", "ps_clock_mhz"):
            put(field, as_real("HardwareConfig", field, getattr(self, field), _MIN_RATE, _MAX_CLOCK_MHZ,
                               what=f"a positive finite number in [{_MIN_RATE:g}, {_MAX_CLOCK_MHZ:g}]"))
        put("dram_bandwidth_gbps", as_real("HardwareConfig", "dram_bandwidth_gbps", self.dram_bandwidth_gbps,
                                           _MIN_RATE, _MAX_REAL, allow_inf=True,
                                           what=f"positive (math.inf: unlimited), in [{_MIN_RATE:g}, {_MAX_REAL:g}]"))
        put("sram_active_fraction", as_real("HardwareConfig", "sram_active_fraction", self.sram_active_fraction,
                                            _MIN_RATE, 1, what=f"in (0, 1] (at least {_MIN_RATE:g})"))
        for field in ("softmax_cycles_per_element", "gelu_cycles_per_element", "layernorm_cycles_per_element",
                      "entropy_cycles_per_element", "mac_energy_pj", "sram_access_energy_pj",
                      "dram_energy_pj_per_byte", "ps_active_power_w", "pe_array_static_w", "sram_static_w",
                      "periphery_static_w", "ps_static_w"):
            put(field, as_real("HardwareConfig", field, getattr(self, field), 0, _MAX_REAL))

    def replace(self, **changes) -> "HardwareConfig":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def peak_gmacs(self) -> float:
        """Peak PL throughput in GMAC/s: rows x cols x clock."""
        return self.array_rows * self.array_cols * self.clock_mhz * 1e-3

    @cached_property
    def _packed(self) -> tuple:
        """The fields in SI units, in the order of csrc/pivot_sim.h's pivot_sim_hw."""
        bits = self.operand_bits / 8.0  # the C simulator sees the scaled word size and energies
        return (int(self.array_rows), int(self.array_cols), DATAFLOWS.index(self.dataflow),
                float(self.clock_mhz) * 1e6, float(self.word_bytes) * bits, float(self.global_buffer_bytes),
                float(self.ipmem_bytes), float(self.wtmem_bytes), float(self.opmem_bytes),
                float(self.sram_active_fraction), float(self.dram_bandwidth_gbps) * 1e9,
                float(self.ps_clock_mhz) * 1e6, float(self.softmax_cycles_per_element),
                float(self.gelu_cycles_per_element), float(self.layernorm_cycles_per_element),
                float(self.entropy_cycles_per_element), float(self.mac_energy_pj) * bits * bits * 1e-12,
                float(self.sram_access_energy_pj) * bits * 1e-12, float(self.dram_energy_pj_per_byte) * 1e-12,
                float(self.ps_active_power_w), float(self.pe_array_static_w), float(self.sram_static_w),
                float(self.periphery_static_w), float(self.ps_static_w))


ZCU102 = HardwareConfig()
"""The Xilinx ZCU102 design of Table 1 (64 x 36 PEs, 125 MHz, input stationary, GB 16 KB,
IPMEM/WTMEM/OPMEM 64 Kb each), calibrated on the paper's DeiT-S baseline."""


def _check_dataflow(dataflow) -> int:
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {DATAFLOWS} (input, weight, output stationary), got {dataflow!r}")
    return DATAFLOWS.index(dataflow)


def gemm_cycles(M: int, N: int, K: int, rows: int, cols: int, dataflow: str) -> int:
    """Compute cycles of ``(M, K) @ (K, N)`` on a ``rows x cols`` systolic array, without stalls.

    Equal to SCALE-Sim's "Total Cycles" for the GEMM topology row ``M, N, K``: with (S_r, S_c, T)
    = (K, M, N) for ``"is"``, (K, N, M) for ``"ws"`` and (M, N, K) for ``"os"``, it is
    ``ceil(S_r/rows) * ceil(S_c/cols) * (2*rows + cols + T - 2) - 1`` for IS and WS and
    ``ceil(S_r/rows) * ceil(S_c/cols) * (rows + cols + T - 2) - 1`` for OS.
    """
    args = [_validate.positive_int(v, n) for v, n in ((M, "M"), (N, "N"), (K, "K"), (rows, "rows"), (cols, "cols"))]
    return _core.sim_gemm_cycles(*args, _check_dataflow(dataflow))


# ---------------------------------------------------------------------------------------------- reports

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


def _row_names(rows: np.ndarray, names=None) -> list:
    if names is not None:
        return list(names)
    out = []
    for op, block in zip(rows[:, _R_OP].astype(int), rows[:, _R_BLOCK].astype(int)):
        kind = _OPS[op]
        if kind in _LVVIT_NAMES:  # the stem rows' block column holds the stem layer (1, 2, 3)
            out.append(_LVVIT_NAMES[kind].format(block))
        else:
            out.append(f"blocks.{block}.{_BLOCK_NAMES[kind]}" if block >= 0 else kind)
    return out


def _layers_from_rows(rows: np.ndarray, names) -> tuple:
    layers = []
    for name, r in zip(_row_names(rows, names), rows.tolist()):
        layers.append(LayerReport(
            name=name, module=MODULES[int(r[_R_MODULE])], kind="ps" if r[_R_IS_PS] else "gemm",
            M=int(r[_R_M]), N=int(r[_R_N]), K=int(r[_R_K]), count=int(r[_R_COUNT]), macs=int(r[_R_MACS]),
            compute_cycles=int(r[_R_COMPUTE]), stall_cycles=int(r[_R_STALL]), ps_cycles=r[_R_PS],
            utilization_pct=r[_R_UTIL], sram_reads_words=int(r[_R_SRAM_R]), sram_writes_words=int(r[_R_SRAM_W]),
            dram_reads_words=int(r[_R_DRAM_R]), dram_writes_words=int(r[_R_DRAM_W]), delay_ms=r[_R_DELAY] * 1e3,
            energy_j=r[_R_ENERGY], energy_pe_array_j=r[_R_E_PE], energy_sram_j=r[_R_E_SRAM],
            energy_periphery_j=r[_R_E_PERIPH], energy_ps_j=r[_R_E_PS]))
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
    _rows: np.ndarray = dataclasses.field(repr=False, compare=False)
    _names: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def _from_c(cls, hw, config, path, batch, rows, totals, names=None) -> "SimReport":
        t = totals.tolist()
        delay_s, energy = t[_T_DELAY], t[_T_ENERGY]
        delay_ms = delay_s * 1e3
        return cls(hw=hw, config=config, path=path, batch=batch, delay_ms=delay_ms, energy_j=energy,
                   power_w=energy / delay_s if delay_s > 0 else 0.0, edp=energy * delay_ms,
                   fps_per_w=batch / energy if energy > 0 else math.inf,
                   compute_cycles=int(t[_T_COMPUTE]), stall_cycles=int(t[_T_STALL]), ps_cycles=t[_T_PS],
                   macs=int(t[_T_MACS]), sram_accesses_words=int(t[_T_SRAM_R] + t[_T_SRAM_W]),
                   dram_accesses_words=int(t[_T_DRAM_R] + t[_T_DRAM_W]),
                   breakdown={m: t[_T_MODULE + i] * 1e3 for i, m in enumerate(MODULES)},
                   energy_breakdown=dict(zip(ENERGY_COMPONENTS, t[_T_E_PE:_T_E_PS + 1])),
                   _rows=rows, _names=names)

    @property
    def fps(self) -> float:
        """Images per second."""
        return self.batch / (self.delay_ms * 1e-3)

    @cached_property
    def layers(self) -> tuple:
        """One LayerReport per row, in execution order."""
        return _layers_from_rows(self._rows, self._names)

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


# ---------------------------------------------------------------------------------------------- simulate

def _resolve(model_or_config, path, what="model_or_config"):
    """(ViTConfig, path) of a ViTConfig or of a model object (``.config``, optional ``.path``)."""
    if isinstance(model_or_config, ViTConfig):
        config = model_or_config
    elif hasattr(model_or_config, "config"):
        config = model_or_config.config
        if path is None:
            path = getattr(model_or_config, "path", None)
    else:
        raise TypeError(f"{what} must be a pivot.ViTConfig or a model with a .config, "
                        f"got {type(model_or_config).__name__}")
    if not isinstance(config, ViTConfig):
        raise TypeError(f"{what}.config must be a pivot.ViTConfig, got {type(config).__name__}")
    return config, normalize_path(path, config.depth, allow_reuse=True)  # 2 = attention reuse


def simulate(model_or_config, path=None, hw: HardwareConfig = ZCU102, batch: int = 1,
             entropy: bool = False) -> SimReport:
    """Simulate one inference of ``batch`` images on ``hw``.

    ``model_or_config``: a ``pivot.ViTConfig`` or a model with ``.config`` (and ``.path``, used
    when ``path`` is None). ``path``: which encoders run their attention (1) or skip it (0), as
    ``pivot.normalize_path`` reads it; None = all (or the model's). A 2 reuses the nearest earlier
    active encoder's attention probabilities (rows: norm1, V (B*T, C, C), SMxV, proj; no QK^T, no
    softmax); a ``relu_linear`` config runs ReLU linear attention (see ``pivot.modes``). ``entropy``: add the entropy
    of the logits on the PS (what a low effort computes to decide which inputs go on).
    """
    config, path_arr = _resolve(model_or_config, path)
    hw = _validate.hardware(hw)
    batch = _validate.positive_int(batch, "batch")
    rows, totals = _c_rows(hw, config, path_arr, batch, bool(entropy))
    return SimReport._from_c(hw, config, tuple(path_arr.tolist()), batch, rows, totals)


def _c_rows(hw, config, path_arr, batch, entropy):
    """(rows, totals) of one inference from csrc/sim.c's layer list (pivot_sim_forward): the ViT's
    shape, the LV-ViT stem and aux head when the config has them, the path and the attention kind."""
    if ((path_arr == 2).any() or config.attention != "softmax") and config.has_lvvit_features:
        raise ValueError("attention reuse and linear attention are simulated for timm ViTs only (no LV-ViT features)")
    # Prefix tokens (class, distillation, registers) count through num_tokens; layer scale and
    # avg / max pooling are elementwise. Not modelled yet, so refused rather than left out:
    if config.num_classes == 0 or config.global_pool == "map":
        raise ValueError("the simulator models a classifier head on pooled tokens: headless models "
                         "(num_classes=0) and the attention-pooling head (global_pool='map') are not simulated")
    vit = (batch, config.depth, config.embed_dim, config.num_heads, config.mlp_hidden, config.num_tokens,
           config.num_patches, config.proj_in_chans * config.proj_kernel ** 2, config.num_classes,
           config.num_prefix_tokens, int(config.distilled))
    if config.stem == "lvvit_conv" or config.aux_head:
        from .lvvit import stem_gemm_shapes
        stem = np.array(stem_gemm_shapes(config), dtype=np.int64).reshape(-1, 3)
        return _core.sim_lvvit(hw._packed, vit, stem, bool(config.aux_head), path_arr, entropy)
    return _core.sim_vit_modes(hw._packed, vit, path_arr, ATTENTIONS.index(config.attention), entropy)


def simulate_pair(low, high, f_high: float, hw: HardwareConfig = ZCU102, low_path=None, high_path=None,
                  batch: int = 1) -> PairReport:
    """Delay and energy per input of a (low, high) effort pair with a fraction ``f_high`` escalated.

    ``low`` / ``high``: ViTConfigs or models (their ``.path`` is used when ``low_path`` /
    ``high_path`` is None). Every input runs the low effort (and its entropy on the PS); the
    fraction ``f_high`` of them then runs the high effort: D = D_L + F_H * D_H (section 3.4).
    """
    if not _is_real(f_high) or not math.isfinite(f_high) or not 0.0 <= f_high <= 1.0:
        raise ValueError(f"f_high must be a number in [0, 1], got {f_high!r}")
    f_high = float(f_high)
    low_cfg, lp = _resolve(low, low_path, "low")
    high_cfg, hp = _resolve(high, high_path, "high")
    lo = simulate(low_cfg, lp, hw, batch, entropy=True)
    hi = simulate(high_cfg, hp, hw, batch)
    f_low = 1.0 - f_high
    delay = lo.delay_ms + f_high * hi.delay_ms
    energy = lo.energy_j + f_high * hi.energy_j

    def part(d, e):
        return PairPart(delay_ms=d, energy_j=e, edp=e * delay)

    return PairReport(
        low_report=lo, high_report=hi, f_high=f_high, delay_ms=delay, energy_j=energy,
        power_w=energy / (delay * 1e-3), edp=energy * delay, fps_per_w=batch / energy,
        low=part(f_low * lo.delay_ms, f_low * lo.energy_j),
        high=part(f_high * hi.delay_ms, f_high * hi.energy_j),
        recompute=part(f_high * lo.delay_ms, f_high * lo.energy_j),
        breakdown={m: lo.breakdown[m] + f_high * hi.breakdown[m] for m in MODULES},
        energy_breakdown={c: lo.energy_breakdown[c] + f_high * hi.energy_breakdown[c] for c in ENERGY_COMPONENTS})


# ---------------------------------------------------------------------------------------------- SCALE-Sim files

@dataclasses.dataclass(frozen=True)
class GemmLayer:
    """One GEMM of a topology: ``(M, K) @ (K, N)``, run ``count`` times."""
    name: str
    M: int
    N: int
    K: int
    count: int = 1

    def __post_init__(self):
        for field in ("M", "N", "K", "count"):
            value = getattr(self, field)
            if not _is_int(value) or value < 1:
                raise ValueError(f"GemmLayer {self.name!r}: {field} must be a positive integer, got {value!r}")


def simulate_gemms(layers, hw: HardwareConfig = ZCU102) -> SimReport:
    """Simulate a list of GEMMs (``GemmLayer`` or ``(name, M, N, K[, count])`` tuples) one after
    another on the PL of ``hw``; e.g. ``simulate_gemms(read_topology_csv("gemm.csv"), hw)``."""
    hw = _validate.hardware(hw)
    items = _gemm_items(layers)
    shapes = np.array([(g.M, g.N, g.K, g.count) for g in items], dtype=np.int64).reshape(len(items), 4)
    rows, totals = _core.sim_gemms(hw._packed, shapes)
    return SimReport._from_c(hw, None, None, 1, rows, totals, names=tuple(g.name for g in items))


def _config_error(path, message):
    return ValueError(f"{path}: {message}")


def read_scalesim_config(path, base: HardwareConfig = ZCU102) -> HardwareConfig:
    """A HardwareConfig from a SCALE-Sim ``.cfg`` file: ``base`` with the file's array, dataflow
    and SRAM sizes.

    ``ArrayHeight``/``ArrayWidth`` -> array_rows/array_cols; ``Dataflow``; ``IfmapSramSzkB``,
    ``FilterSramSzkB``, ``OfmapSramSzkB`` (kB of 1024 bytes) -> ipmem/wtmem/opmem_bytes; no global
    buffer (SCALE-Sim has none); ``run_name`` -> name. In ``InterfaceBandwidth: USER`` mode the
    ``Bandwidth`` (words per cycle) becomes the shared DRAM bandwidth at ``base``'s clock; in
    ``CALC`` mode (SCALE-Sim estimates the bandwidth it needs) DRAM never stalls (math.inf).
    """
    path = _validate.existing_file(path, "SCALE-Sim config")
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise _config_error(path, f"not a SCALE-Sim config ({exc})") from None

    def get(section, key):
        if not parser.has_option(section, key):
            raise _config_error(path, f"missing [{section}] {key}")
        return parser.get(section, key).strip()

    def get_int(section, key):
        text = get(section, key)
        try:
            value = int(text)
        except ValueError:
            raise _config_error(path, f"[{section}] {key} must be an integer, got {text!r}") from None
        if value < 1:
            raise _config_error(path, f"[{section}] {key} must be positive, got {value}")
        return value

    arch = "architecture_presets"
    dataflow = get(arch, "Dataflow").lower()
    if dataflow not in DATAFLOWS:
        raise _config_error(path, f"[{arch}] Dataflow must be one of {DATAFLOWS}, got {dataflow!r}")
    changes = dict(array_rows=get_int(arch, "ArrayHeight"), array_cols=get_int(arch, "ArrayWidth"), dataflow=dataflow,
                   ipmem_bytes=1024 * get_int(arch, "IfmapSramSzkB"), wtmem_bytes=1024 * get_int(arch, "FilterSramSzkB"),
                   opmem_bytes=1024 * get_int(arch, "OfmapSramSzkB"), global_buffer_bytes=0)
    if parser.has_option("general", "run_name"):
        changes["name"] = parser.get("general", "run_name").strip()
    mode = parser.get("run_presets", "InterfaceBandwidth", fallback="CALC").strip().upper()
    if mode == "USER":
        text = get(arch, "Bandwidth").split(",")[0].strip()
        try:
            words_per_cycle = float(text)
        except ValueError:
            raise _config_error(path, f"[{arch}] Bandwidth must be a number, got {text!r}") from None
        if not words_per_cycle > 0:
            raise _config_error(path, f"[{arch}] Bandwidth must be positive, got {text!r}")
        changes["dram_bandwidth_gbps"] = words_per_cycle * base.word_bytes * base.clock_mhz * 1e-3
    elif mode == "CALC":
        changes["dram_bandwidth_gbps"] = math.inf
    else:
        raise _config_error(path, f"[run_presets] InterfaceBandwidth must be USER or CALC, got {mode!r}")
    return dataclasses.replace(base, **changes)


def read_topology_csv(path) -> list:
    """The GEMMs of a SCALE-Sim GEMM topology CSV (header, then ``Layer name, M, N, K,`` rows).

    Extra columns (SCALE-Sim's sparsity ratio) are ignored; trailing commas are optional.
    Convolution topologies (IFMAP Height, ...) are refused: convert them to GEMMs first.
    """
    path = _validate.existing_file(path, "topology file")
    layers = []
    with open(path, encoding="utf-8", newline="") as f:
        rows = [(i + 1, [c.strip() for c in row]) for i, row in enumerate(csv.reader(f))]
    rows = [(n, [c for c in row if c != ""] if row and row[-1] == "" else row) for n, row in rows]
    rows = [(n, row) for n, row in rows if any(row)]
    if not rows:
        raise _config_error(path, "empty topology file")
    header = [h.lower() for h in rows[0][1]]
    if any("ifmap" in h or "filter" in h for h in header):
        raise _config_error(path, "this is a convolution topology; pivot reads GEMM topologies "
                                  "(Layer name, M, N, K)")
    for line, row in rows[1:]:
        if len(row) < 4:
            raise _config_error(path, f"line {line}: expected Layer name, M, N, K; got {row}")
        dims = []
        for key, text in zip("MNK", row[1:4]):
            try:
                value = int(text)
            except ValueError:
                raise _config_error(path, f"line {line}: {key} must be an integer, got {text!r}") from None
            if value < 1:
                raise _config_error(path, f"line {line}: {key} must be positive, got {value}")
            dims.append(value)
        layers.append(GemmLayer(row[0], *dims))
    if not layers:
        raise _config_error(path, "no layers after the header")
    return layers


_SCALESIM_CFG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {ifmap_kb}
FilterSramSzkB: {filter_kb}
OfmapSramSzkB: {ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: {bandwidth}
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {bandwidth}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {bandwidth}
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""


def _gemm_items(layers) -> list:
    items = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, GemmLayer):
            if isinstance(layer, (str, bytes)) or not hasattr(layer, "__len__") or len(layer) not in (4, 5):
                raise TypeError(f"layer {i} must be a GemmLayer or a (name, M, N, K[, count]) tuple, got {layer!r}")
            layer = GemmLayer(str(layer[0]), *layer[1:])
        items.append(layer)
    return items


def to_scalesim(design: HardwareConfig, model, path=None, out_dir=".", batch: int = 1) -> dict:
    """Write ``design`` and a model's matrix products as SCALE-Sim 3 input files, so that one design
    can be cross-checked in SCALE-Sim (``python -m scalesim.scale -c scale.cfg -t gemm.csv -i gemm``).

    ``model``: a ``pivot.ViTConfig`` or a model (its GEMMs as ``simulate`` runs them with ``path``
    at ``batch``; a product repeated ``count`` times, e.g. QK^T once per head and image, becomes
    ``count`` rows named ``<layer>.<i>``), or a list of ``GemmLayer`` / ``(name, M, N, K[, count])``.
    The elementwise PS operations have no SCALE-Sim counterpart and are left out.

    Writes ``scale.cfg``, ``gemm.csv`` (``Layer name, M, N, K,``) and ``layout.csv`` into
    ``out_dir`` (created if needed) and returns their paths as ``{"config", "topology", "layout"}``.
    The config maps the design as ``read_scalesim_config`` reads it back: array, dataflow, SRAM
    sizes in kB of 1024 bytes (rounded, at least 1), no global buffer (SCALE-Sim has none), and
    the DRAM bandwidth in words per cycle at the PL clock (``USER`` mode, rounded, at least 1), or
    ``CALC`` mode (SCALE-Sim estimates the bandwidth) for ``dram_bandwidth_gbps=math.inf``.
    """
    design = _validate.hardware(design)
    if isinstance(model, ViTConfig) or hasattr(model, "config"):
        report = simulate(model, path=path, hw=design, batch=batch)
        layers = [GemmLayer(layer.name, layer.M, layer.N, layer.K, layer.count)
                  for layer in report.layers if layer.kind == "gemm"]
    else:
        if path is not None:
            raise ValueError("path applies to a model or config, not to a list of GEMMs")
        layers = _gemm_items(model)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)

    def kb(nbytes):
        return max(1, round(nbytes / 1024))

    if math.isinf(design.dram_bandwidth_gbps):
        mode, bandwidth = "CALC", 10   # the value is not used in CALC mode
    else:
        mode = "USER"
        words_per_cycle = design.dram_bandwidth_gbps * 1e9 / (design.word_bytes * design.clock_mhz * 1e6)
        bandwidth = max(1, round(words_per_cycle))
    files = {"config": os.path.join(out_dir, "scale.cfg"), "topology": os.path.join(out_dir, "gemm.csv"),
             "layout": os.path.join(out_dir, "layout.csv")}
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in design.name) or "pivot"
    with open(files["config"], "w", encoding="utf-8") as f:
        f.write(_SCALESIM_CFG.format(name=name, rows=design.array_rows, cols=design.array_cols,
                                     dataflow=design.dataflow, ifmap_kb=kb(design.ipmem_bytes),
                                     filter_kb=kb(design.wtmem_bytes), ofmap_kb=kb(design.opmem_bytes),
                                     bandwidth=bandwidth, mode=mode))
    with open(files["topology"], "w", encoding="utf-8") as f:
        f.write("Layer name, M, N, K,\n")
        for g in layers:
            for i in range(g.count):
                f.write(f"{g.name if g.count == 1 else f'{g.name}.{i}'}, {g.M}, {g.N}, {g.K},\n")
    with open(files["layout"], "w", encoding="utf-8") as f:
        f.write("Layer name,\n")
    return files


# ---------------------------------------------------------------------------------------------- sweeps

SWEEP_RESULTS = ("delay_ms", "energy_j", "edp", "fps_per_w", "power_w", "utilization_pct")
"""The result columns of ``sweep``: delay (ms), energy (J), EDP (J x ms), images per joule, average
power (W) and PL utilization (MACs / (PEs x (compute + stall cycles)), %)."""

_HW_FIELDS = tuple(f.name for f in dataclasses.fields(HardwareConfig))


def _sweep_designs(grid) -> tuple:
    """(column names, list of change dicts) of a grid mapping or a sequence of designs."""
    if isinstance(grid, dict) or (hasattr(grid, "keys") and hasattr(grid, "__getitem__")):
        names = [str(k) for k in grid.keys()]
        values = []
        for name in names:
            v = grid[name]
            v = list(v) if not isinstance(v, (str, bytes)) and hasattr(v, "__iter__") else [v]
            if not v:
                raise ValueError(f"grid[{name!r}] is empty")
            values.append(v)
        changes = [dict(zip(names, combo)) for combo in itertools.product(*values)]
    elif hasattr(grid, "__iter__") and not isinstance(grid, (str, bytes)):
        changes = []
        for i, item in enumerate(grid):
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
    fields). Fields not named keep ``hw``'s values. ``model_or_config`` and ``path`` as in
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
    hw = _validate.hardware(hw)
    batch = _validate.positive_int(batch, "batch")
    names, changes = _sweep_designs(grid)
    if executor is None:
        values = _sweep_rows(config, path_arr, hw, changes, batch)
    else:
        if not hasattr(executor, "submit"):
            raise TypeError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
        if chunks is None:
            workers = getattr(executor, "_max_workers", None)
            chunks = 4 * workers if _is_int(workers) and workers > 0 else 16
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
