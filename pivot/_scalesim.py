"""Runs the ``scalesim`` package (SCALE-Sim v3, the peer of pivot.sim) on GEMMs, for the tests,
the recorded references and the benchmark. Not part of pivot's API; needs ``pip install scalesim``.

scalesim 3.0.0 calls ``int()`` on 1-element arrays, an error since NumPy 2; while a run lasts,
the buffers' service functions are wrapped to return flat arrays (their values are unchanged).
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile

import numpy as np

_CFG = """[general]
run_name = pivot

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


def write_files(directory, layers, rows, cols, dataflow, ifmap_kb, filter_kb, ofmap_kb, bandwidth=None):
    """Writes scale.cfg, gemm.csv and layout.csv for SCALE-Sim into `directory`; returns their paths.
    ``bandwidth`` None: CALC mode (SCALE-Sim estimates the bandwidth; no stalls); else USER mode
    with that many words per cycle on each of its ports."""
    cfg = os.path.join(directory, "scale.cfg")
    topo = os.path.join(directory, "gemm.csv")
    layout = os.path.join(directory, "layout.csv")
    with open(cfg, "w") as f:
        f.write(_CFG.format(rows=rows, cols=cols, dataflow=dataflow, ifmap_kb=ifmap_kb, filter_kb=filter_kb,
                            ofmap_kb=ofmap_kb, bandwidth=bandwidth or 10, mode="CALC" if bandwidth is None else "USER"))
    with open(topo, "w") as f:
        f.write("Layer name, M, N, K,\n")
        for name, M, N, K in layers:
            f.write(f"{name}, {M}, {N}, {K},\n")
    with open(layout, "w") as f:
        f.write("Layer name,\n")
    return cfg, topo, layout


def run_gemms(layers, rows, cols, dataflow, ifmap_kb=64, filter_kb=64, ofmap_kb=64, bandwidth=None):
    """SCALE-Sim's reports for GEMM ``layers`` [(name, M, N, K), ...] as one dict per layer:
    total_cycles ("Total Cycles": compute plus stalls), stall_cycles, overall_cycles ("Total Cycles (incl. prefetch)"),
    sram_ifmap_reads, sram_filter_reads, sram_ofmap_writes, dram_ifmap_reads, dram_filter_reads,
    dram_ofmap_writes."""
    from scalesim.scale_sim import scalesim

    directory = tempfile.mkdtemp(prefix="pivot_scalesim_")
    try:
        cfg, topo, layout = write_files(directory, layers, rows, cols, dataflow, ifmap_kb, filter_kb, ofmap_kb, bandwidth)
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
