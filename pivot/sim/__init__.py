"""PIVOT-Sim: delay, memory traffic and energy of ViT inference on a systolic-array FPGA.

The package by concept: ``hardware`` (HardwareConfig, ZCU102, gemm_cycles), ``report`` (LayerReport,
SimReport, PairReport), ``simulation`` (simulate, simulate_pair, simulate_gemms), ``scalesim``
(SCALE-Sim's files) and ``sweeps`` (sweep, bit_width_report); every public name is here too.

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

from .hardware import DATAFLOWS, ZCU102, HardwareConfig, check_hardware, gemm_cycles
from .report import ENERGY_COMPONENTS, MODULES, LayerReport, PairPart, PairReport, SimReport
from .scalesim import read_scalesim_config, read_topology_csv, to_scalesim
from .simulation import GemmLayer, simulate, simulate_gemms, simulate_pair
from .sweeps import MAX_SWEEP_DESIGNS, SWEEP_RESULTS, bit_width_report, format_bit_width_report, sweep

__all__ = [
    "DATAFLOWS", "MODULES", "ENERGY_COMPONENTS", "HardwareConfig", "ZCU102", "gemm_cycles", "check_hardware",
    "LayerReport", "SimReport", "PairPart", "PairReport", "GemmLayer", "simulate", "simulate_pair",
    "simulate_gemms", "read_scalesim_config", "read_topology_csv", "to_scalesim", "sweep", "SWEEP_RESULTS",
    "MAX_SWEEP_DESIGNS", "bit_width_report", "format_bit_width_report",
]
