"""The C engine against PyTorch eager and ONNX Runtime on DeiT-S (random weights), the engine's
share of the sgemm rate, and attention-skip speedups.

    python benchmarks/run.py --only engine [--quick]

All three contenders run in this process with the same thread count (pivot's ``threads=``,
``torch.set_num_threads``, ORT's ``intra_op_num_threads``), fp32 in and out, timed round-robin
(load from other processes hits every contender alike) and reported as the best round. pivot runs
at its default kernel level: on CPUs with AMX its Linears use bf16x3 tiles (csrc/gemm.c, ~1e-5
relative to fp32 sgemm); ``engine_amx_vs_avx512`` times the same model on the fp32 AVX-512
kernels too (``PIVOT_SIMD=2`` makes that the default). Peers:

- PyTorch: ``pivot.torch``'s plain module (timm's computation: nn.Linear,
  F.scaled_dot_product_attention, exact GELU) under ``torch.inference_mode()``;
- ONNX Runtime: the same module exported with ``torch.onnx.export(..., dynamo=False)`` (opset 17,
  dynamic batch) to a temporary file, CPU execution provider, all graph optimizations.

With one thread every contender computes on the calling thread, so that thread's CPU time is
timed (robust on a shared machine); with more threads, wall-clock time.
"""
import functools
import os
import tempfile
import time

import numpy as np

import pivot
from common import Result
from pivot import _core
from pivot.model import default_threads

PRESET = "deit_small_patch16_224"
SETTLE_SECONDS = 0.2  # multi-thread rounds: pause before each timed call (see interleaved_best)


@functools.lru_cache(maxsize=2)
def _model(preset=PRESET):
    return pivot.ViT.random(pivot.ViTConfig.preset(preset), seed=0)


def _images(config, batch):
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, 3, config.img_size, config.img_size)).astype(np.float32)


def interleaved_best(fns, repeat, warmup=1, clock=time.perf_counter, settle=0.0):
    """Best seconds per call of each function, timed round-robin so that load from other processes
    on a shared machine hits every contender alike. ``settle`` seconds of sleep before each timed
    call let the previous contender's idle pool threads stop spinning (PyTorch's OpenMP and ONNX
    Runtime's pools spin for a while after a call and would take a core from the next one)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            if settle:
                time.sleep(settle)
            t0 = clock()
            fn()
            best[i] = min(best[i], clock() - t0)
    return best


class Peers:
    """The PyTorch module and ONNX Runtime sessions (one per thread count) of one pivot.ViT."""

    def __init__(self, model):
        import torch

        import pivot.torch as pt
        self.torch = torch
        self.module = pt.from_vit(model).eval()
        self.config = model.config
        self._onnx_path = None

    def torch_fn(self, images, threads):
        torch = self.torch
        x = torch.from_numpy(images)

        def run():  # the caller sets torch's thread count
            with torch.inference_mode():
                self.module(x)
        return run

    def onnx_fn(self, images, threads):
        if self._onnx_path is None:
            self._export()
        return ort_fn(self._onnx_path, images, threads)

    def _export(self):
        import warnings
        torch = self.torch
        path = temp_path(".onnx")
        x = torch.from_numpy(_images(self.config, 1))
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(self.module, (x,), path, dynamo=False, input_names=["images"], output_names=["logits"],
                              dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
        self._onnx_path = path


def temp_path(suffix):
    """A fresh temporary file's path, removed at exit (exported and quantized ONNX models)."""
    import atexit
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="pivot_bench_")
    os.close(fd)
    atexit.register(lambda: os.path.exists(path) and os.remove(path))
    return path


@functools.lru_cache(maxsize=16)
def ort_session(path, threads):
    """One ONNX Runtime session per model file and thread count: intra-op threads, sequential, all
    graph optimizations."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def ort_fn(path, images, threads):
    session = ort_session(path, threads)
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: images})


@functools.lru_cache(maxsize=1)
def _peers():
    return Peers(_model())


def _time_three(model, peers, images, threads, repeat, warmup):
    """Best seconds per call of (pivot, torch, onnxruntime) on the same images and thread count."""
    torch = peers.torch
    old = torch.get_num_threads()
    clock = time.thread_time if threads == 1 else time.perf_counter
    torch.set_num_threads(threads)
    try:
        fns = [lambda: model(images, threads=threads), peers.torch_fn(images, threads), peers.onnx_fn(images, threads)]
        return interleaved_best(fns, repeat, warmup, clock=clock, settle=0.0 if threads == 1 else SETTLE_SECONDS)
    finally:
        torch.set_num_threads(old)


def _clock_text(threads):
    return "calling thread's CPU time" if threads == 1 else "wall clock"


def bench_engine_throughput(quick):
    """DeiT-S fp32 images/s, pivot vs PyTorch eager and ONNX Runtime, batch 1 and 32, 1 and N threads."""
    threads = default_threads()
    model = _model()
    peers = _peers()
    cases = [(1, 1, (5, 1) if quick else (20, 2))]
    if threads > 1:
        cases.append((1, threads, (5, 1) if quick else (20, 2)))
    # quick: one timed call each after one warm-up
    cases.append((32, threads, (1, 1) if quick else (3, 1)))
    if not quick and threads > 1:
        cases.append((32, 1, (2, 1)))
    results = []
    for batch, n, (repeat, warmup) in cases:
        images = _images(model.config, batch)
        t_pivot, t_torch, t_ort = _time_three(model, peers, images, n, repeat, warmup)
        suffix = "_1thread" if (n == 1 and threads > 1) else ""
        detail = (f"{PRESET} random weights, batch {batch}, {n} thread(s), best of {repeat} ({_clock_text(n)}); "
                  f"pivot {t_pivot * 1e3:.1f} ms, torch {t_torch * 1e3:.1f} ms, onnxruntime {t_ort * 1e3:.1f} ms")
        ours = batch / t_pivot
        if batch == 1:
            results.append(Result(f"engine_b{batch}{suffix}_vs_torch", t_torch / t_pivot, ours, batch / t_torch,
                                  "img/s", detail))
        elif batch == 32 and n == threads:
            results.append(Result(f"engine_b{batch}_vs_torch", t_torch / t_pivot, ours, batch / t_torch, "img/s",
                                  detail))
        results.append(Result(f"engine_b{batch}{suffix}_vs_onnxruntime", t_ort / t_pivot, ours, batch / t_ort,
                              "img/s", detail))
    return results


def bench_engine_amx(quick):
    """pivot's AMX bf16x3 Linears against its fp32 AVX-512 ones (batch 1, 1 thread, CPU time), with
    PyTorch in the same rounds for scale; skipped where the CPU has no AMX."""
    top = _core.simd_level()
    if top < 3:
        return []
    peers = _peers()
    images = _images(_model().config, 1)
    repeat = 4 if quick else 15
    # one model per level: the packed layout differs, and a model repacks when the level changes
    models = {level: pivot.ViT.random(_model().config, seed=0) for level in (2, 3)}

    def at_level(level):
        def run():
            _core.set_simd_level(level)
            try:
                models[level](images, threads=1)
            finally:
                _core.set_simd_level(top)
        return run
    torch = peers.torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t_amx, t_avx, t_torch = interleaved_best([at_level(3), at_level(2), peers.torch_fn(images, 1)], repeat,
                                                 warmup=1, clock=time.thread_time)
    finally:
        torch.set_num_threads(old)
    return [Result("engine_amx_vs_avx512", t_avx / t_amx, 1 / t_amx, 1 / t_avx, "img/s",
                   f"{PRESET} batch 1, 1 thread, best of {repeat} (CPU time): AMX bf16x3 {t_amx * 1e3:.1f} ms, "
                   f"AVX-512 fp32 {t_avx * 1e3:.1f} ms ({t_torch / t_avx:.2f}x torch), torch {t_torch * 1e3:.1f} ms")]


def bench_engine_roofline(quick):
    """Whole-model FLOP rate (batch 1, 1 thread) over OpenBLAS sgemm's rate on DeiT-S's biggest GEMM
    shape (the MLP's fc1: 197 x 1536 x 384), both measured here, on the calling thread's CPU time."""
    model = _model()
    cfg = model.config
    T, C, H = cfg.num_tokens, cfg.embed_dim, cfg.mlp_hidden
    rng = np.random.default_rng(0)
    a = rng.standard_normal((T, C), dtype=np.float32)
    w = rng.standard_normal((H, C), dtype=np.float32)
    images = _images(cfg, 1)
    repeat = 5 if quick else 20
    t_model, t_gemm = interleaved_best([lambda: model(images, threads=1), lambda: _core.sgemm_nt(a, w)],
                                       repeat, warmup=2, clock=time.thread_time)
    model_rate = pivot.flops(model) / t_model / 1e9
    gemm_rate = 2 * T * C * H / t_gemm / 1e9
    return [Result("engine_roofline_share", model_rate / gemm_rate, model_rate, gemm_rate, "GFLOP/s",
                   f"{PRESET} batch 1, 1 thread: {t_model * 1e3:.1f} ms for {pivot.flops(model) / 1e9:.2f} GFLOP; "
                   f"peer = OpenBLAS sgemm ({T}x{C}) @ ({C}x{H}), {t_gemm * 1e3:.3f} ms; "
                   f"GEMM kernels: {KERNELS[_core.simd_level()]}")]


KERNELS = {0: "OpenBLAS, portable row kernels", 1: "OpenBLAS, AVX2 row kernels", 2: "AVX-512 packed fp32",
           3: "AMX packed bf16x3"}


def bench_engine_skip(quick):
    """Speedup from skipping attention (12 -> 9, 6, 3 active encoders) over the FLOP ratio, at fp32
    and at int8 (``pivot.quantize`` on 8 of the images; keys ``skip_speedup_vs_ideal_int8*``).

    The ratio uses the calling thread's CPU time at threads=1 (the engine then computes on that
    thread alone): it measures the work saved and stays meaningful on a busy shared machine, where
    wall-clock times of 2-thread runs swing by 2x. Wall-clock speedups at the default thread
    count are reported in the detail.
    """
    threads = default_threads()
    batch = 1
    model = _model()
    images = _images(model.config, batch)
    depth = model.config.depth
    repeat = 4 if quick else 15
    paths = {k: [1] * k + [0] * (depth - k) for k in (12, 9, 6, 3)}
    full_flops = pivot.flops(model.config)
    qmodel = pivot.quantize(model, _images(model.config, 8))
    results = []
    for prec, m in (("", model), ("_int8", qmodel)):
        cpu = dict(zip(paths, interleaved_best([lambda p=p: m(images, path=p, threads=1) for p in paths.values()],
                                               repeat, clock=time.thread_time)))
        wall = dict(zip(paths, interleaved_best([lambda p=p: m(images, path=p, threads=threads)
                                                 for p in paths.values()], 2 if quick else repeat)))
        for k in (9, 6, 3):
            speedup = cpu[12] / cpu[k]
            ideal = full_flops / pivot.flops(model.config, paths[k])
            name = f"skip_speedup_vs_ideal{prec}" + ("" if k == 6 else f"_{k}of12")
            results.append(Result(name, speedup / ideal, speedup, ideal, "x",
                                  f"{m.precision}, {k}/12 active, batch {batch}: 1-thread CPU {cpu[12] * 1e3:.1f} -> "
                                  f"{cpu[k] * 1e3:.1f} ms; {threads}-thread wall {wall[12] * 1e3:.1f} -> "
                                  f"{wall[k] * 1e3:.1f} ms ({wall[12] / wall[k]:.3f}x); peer = FLOP ratio"))
    return results


BENCHMARKS = [bench_engine_throughput, bench_engine_amx, bench_engine_roofline, bench_engine_skip]
