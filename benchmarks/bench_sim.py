"""pivot.sim against the scalesim package (SCALE-Sim v3) at identical compute cycles.

    python benchmarks/run.py --only sim            # one DeiT-S layer and the whole DeiT-S (~1-2 min)
    python benchmarks/run.py --quick --only sim    # one small DeiT-S layer (~2 s)

The layer is DeiT-S's attention projection (197 x 384 x 384; in quick mode one head's QK^T,
197 x 197 x 64) on Table 1's 64 x 36 input-stationary array with 8 KB SRAMs. The whole model is DeiT-S's 194 GEMMs: scalesim runs each of
its 8 distinct shapes once, and its time for the model is the sum over the GEMMs of the time of
their shape (running all 194 would take about 10 minutes and give the same cycles); pivot
simulates the whole model (PS ops and energy included) in one call. Both sides must report the
same compute cycles, or the benchmark fails.
"""
import pathlib
import sys
import time

from common import Result, best_time

import pivot
from pivot import sim

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from scalesim_util import run_gemms  # noqa: E402  (the scalesim runner the tests use)

DEIT_S = pivot.ViTConfig.preset("deit_small_patch16_224")
HW = sim.ZCU102.replace(global_buffer_bytes=0)          # what SCALE-Sim models: no global buffer
ROWS, COLS, DATAFLOW, SRAM_KB = HW.array_rows, HW.array_cols, HW.dataflow, HW.ipmem_bytes // 1024
LAYER = ("proj", 197, 384, 384)
QUICK_LAYER = ("qk", 197, 197, 64)
# DeiT-S's distinct GEMM shapes and how many times each runs (6 heads, 12 encoders).
MODEL = [(("patch_embed", 196, 384, 768), 1), (("qkv", 197, 1152, 384), 12), (("qk", 197, 197, 64), 72),
         (("sv", 197, 64, 197), 72), (LAYER, 12), (("fc1", 197, 1536, 384), 12),
         (("fc2", 197, 384, 1536), 12), (("head", 1, 1000, 384), 1)]


def _scalesim_run(layer):
    """(seconds, total cycles) of one scalesim run of one GEMM."""
    start = time.perf_counter()
    result = run_gemms([layer], ROWS, COLS, DATAFLOW, SRAM_KB, SRAM_KB, SRAM_KB)[0]
    return time.perf_counter() - start, result["total_cycles"]


def bench_sim_vs_scalesim(quick):
    results = []
    layer = QUICK_LAYER if quick else LAYER
    shapes = [layer] if quick else [shape for shape, _ in MODEL]
    measured = {shape: _scalesim_run(shape) for shape in shapes}

    peer_s, peer_cycles = measured[layer]
    report = sim.simulate_gemms([layer], HW)
    ours = report.layers[0].compute_cycles
    if ours != peer_cycles:
        raise AssertionError(f"compute cycles differ for {layer}: pivot {ours}, scalesim {peer_cycles}")
    pivot_s = best_time(lambda: sim.simulate_gemms([layer], HW), repeat=5, number=200)
    name, M, N, K = layer
    results.append(Result("sim_vs_scalesim", peer_s / pivot_s, pivot_s * 1e3, peer_s * 1e3, "ms",
                          f"DeiT-S {name} GEMM {M}x{N}x{K}, 64x36 IS, {ours} cycles on both"))
    if quick:
        return results

    model = sim.simulate(DEIT_S, hw=HW)
    peer_cycles = sum(measured[shape][1] * n for shape, n in MODEL)
    if model.compute_cycles != peer_cycles:
        raise AssertionError(f"DeiT-S compute cycles differ: pivot {model.compute_cycles}, scalesim {peer_cycles}")
    peer_s = sum(measured[shape][0] * n for shape, n in MODEL)
    pivot_s = best_time(lambda: sim.simulate(DEIT_S, hw=HW), repeat=5, number=200)
    results.append(Result("sim_vs_scalesim_model", peer_s / pivot_s, pivot_s * 1e3, peer_s * 1e3, "ms",
                          f"whole DeiT-S (194 GEMMs, scalesim time summed per shape), {peer_cycles} cycles on both"))
    return results


BENCHMARKS = [bench_sim_vs_scalesim]
