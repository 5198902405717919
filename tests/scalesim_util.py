"""Runs the ``scalesim`` package (SCALE-Sim v3, the peer of pivot.sim) on GEMMs, for the tests,
the recorded references (tests/reference/make_scalesim_reference.py) and the benchmark
(benchmarks/bench_sim.py); needs ``pip install scalesim``. The input files are written by
``pivot.sim.to_scalesim``.

scalesim 3.0.0 calls ``int()`` on 1-element arrays, an error since NumPy 2; while a run lasts,
the buffers' service functions are wrapped to return flat arrays (their values are unchanged).
"""
from __future__ import annotations

import contextlib
import io
import math
import shutil
import tempfile

import numpy as np

from pivot import sim

def _flat(fn):
    def wrapped(*args, **kwargs):
        return np.asarray(fn(*args, **kwargs)).reshape(-1)
    wrapped._pivot_flat = True
    return wrapped


@contextlib.contextmanager
def _numpy2_compat():
    import scalesim.memory.double_buffered_scratchpad_mem as dbsp
    from scalesim.memory.read_buffer import read_buffer

    original = dbsp.double_buffered_scratchpad.service_memory_requests

    def service_memory_requests(self, *args, **kwargs):
        for buf, name in ((self.ifmap_buf, "service_reads"), (self.filter_buf, "service_reads"),
                          (self.ofmap_buf, "service_writes")):
            fn = getattr(buf, name)
            if not getattr(fn, "_pivot_flat", False):
                setattr(buf, name, _flat(fn))
            if isinstance(buf, read_buffer) and not getattr(buf.backing_buffer.service_reads, "_pivot_flat", False):
                buf.backing_buffer.service_reads = _flat(buf.backing_buffer.service_reads)
        return original(self, *args, **kwargs)

    dbsp.double_buffered_scratchpad.service_memory_requests = service_memory_requests
    try:
        yield
    finally:
        dbsp.double_buffered_scratchpad.service_memory_requests = original


def scalesim_hw(rows, cols, dataflow, ifmap_kb=64, filter_kb=64, ofmap_kb=64, bandwidth=None, base=sim.ZCU102):
    """pivot's view of a SCALE-Sim machine: no global buffer, SRAM sizes in kB of 1024 bytes;
    ``bandwidth`` None: CALC mode (no stalls, math.inf), else USER mode with that many words per
    cycle (SCALE-Sim: on each of its ports; pivot: one shared interface) at ``base``'s clock."""
    gbps = math.inf if bandwidth is None else bandwidth * base.word_bytes * base.clock_mhz * 1e-3
    return base.replace(name="pivot", array_rows=rows, array_cols=cols, dataflow=dataflow, global_buffer_bytes=0,
                        ipmem_bytes=1024 * ifmap_kb, wtmem_bytes=1024 * filter_kb, opmem_bytes=1024 * ofmap_kb,
                        dram_bandwidth_gbps=gbps)


def run_gemms(layers, rows, cols, dataflow, ifmap_kb=64, filter_kb=64, ofmap_kb=64, bandwidth=None):
    """SCALE-Sim's reports for GEMM ``layers`` [(name, M, N, K), ...] as one dict per layer:
    total_cycles ("Total Cycles": compute plus stalls), stall_cycles, overall_cycles ("Total Cycles (incl. prefetch)"),
    sram_ifmap_reads, sram_filter_reads, sram_ofmap_writes, dram_ifmap_reads, dram_filter_reads,
    dram_ofmap_writes."""
    from scalesim.scale_sim import scalesim

    directory = tempfile.mkdtemp(prefix="pivot_scalesim_")
    try:
        hw = scalesim_hw(rows, cols, dataflow, ifmap_kb, filter_kb, ofmap_kb, bandwidth)
        files = sim.to_scalesim(hw, layers, out_dir=directory)
        cfg, topo, layout = files["config"], files["topology"], files["layout"]
        with _numpy2_compat(), contextlib.redirect_stdout(io.StringIO()):
            s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                         input_type_gemm=True)
            s.run_scale(top_path=directory)
            out = []
            for layer in s.runner.single_layer_sim_object_list:
                c = layer.get_compute_report_items()
                d = layer.get_detail_report_items()
                out.append(dict(total_cycles=int(c[1]), stall_cycles=int(c[2]), overall_cycles=int(c[0]),
                                sram_ifmap_reads=int(d[2]), sram_filter_reads=int(d[5]), sram_ofmap_writes=int(d[8]),
                                dram_ifmap_reads=int(d[11]), dram_filter_reads=int(d[14]),
                                dram_ofmap_writes=int(d[17])))
        return out
    finally:
        shutil.rmtree(directory, ignore_errors=True)
