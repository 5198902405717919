"""The accelerator of PIVOT-Sim: ``HardwareConfig`` (PL systolic array and memories, PS costs,
energy constants), the calibrated ``ZCU102`` and the stall-free cycles of one GEMM. The model and
its calibration are described in the package docstring (``pivot.sim``)."""
from __future__ import annotations

import dataclasses

from .. import _core, _validate
from ..config import as_int, as_real

DATAFLOWS = ("is", "ws", "os")

# Bounds far beyond any accelerator (and within which every delay and energy stays finite).
_MAX_PES_PER_SIDE = 1 << 16
_MAX_BYTES = 1 << 48
_MAX_CLOCK_MHZ = 1e6   # 1 THz
_MAX_REAL = 1e9        # cycles per element, pJ, W, GB/s
_MIN_RATE = 1e-6       # clocks (MHz), DRAM bandwidth (GB/s), SRAM fraction: any less overflows a delay


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
    M, N, K, rows, cols = args
    return _core.sim_gemm_cycles(M=M, N=N, K=K, rows=rows, cols=cols, dataflow=_check_dataflow(dataflow))



def check_hardware(hw) -> HardwareConfig:
    """``hw=``: a ``HardwareConfig`` (a TypeError naming what was given otherwise)."""
    if not isinstance(hw, HardwareConfig):
        raise TypeError(f"hw must be a pivot.sim.HardwareConfig (e.g. pivot.sim.ZCU102), got {type(hw).__name__}")
    return hw
