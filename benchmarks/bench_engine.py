"""The C engine against PyTorch eager on DeiT-S (random weights), and attention-skip speedups.

    python benchmarks/run.py --only engine [--quick]

Both sides run in this process with the same thread count (pivot's ``threads=`` and
``torch.set_num_threads``), fp32, PyTorch under ``torch.inference_mode()`` with the plain module of
``pivot.torch`` (timm's computation: nn.Linear, F.scaled_dot_product_attention, exact GELU).
"""
import time

import numpy as np

import pivot
from common import Result
from pivot.model import default_threads

PRESET = "deit_small_patch16_224"


def _model_and_images(batch):
    config = pivot.ViTConfig.preset(PRESET)
    model = pivot.ViT.random(config, seed=0)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 3, config.img_size, config.img_size)).astype(np.float32)
    return model, images


def interleaved_best(fns, repeat, warmup=1, clock=time.perf_counter):
    """Best seconds per call of each function, timed round-robin so that load from other processes
    on a shared machine hits every contender alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            best[i] = min(best[i], clock() - t0)
    return best


def _throughput(model, module, torch, images, threads, repeat, warmup):
    """(pivot images/s, torch images/s) at one batch size and thread count.

    With one thread both sides compute on the calling thread, so its CPU time is timed (robust to
    other processes on a shared machine); with more threads, wall-clock time."""
    batch = images.shape[0]
    x = torch.from_numpy(images)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        def run_torch():
            with torch.inference_mode():
                module(x)

        clock = time.thread_time if threads == 1 else time.perf_counter
        t_pivot, t_torch = interleaved_best([lambda: model(images, threads=threads), run_torch], repeat, warmup,
                                            clock=clock)
    finally:
        torch.set_num_threads(old)
    return batch / t_pivot, batch / t_torch


def bench_engine_throughput(quick):
    """DeiT-S fp32 images/s, pivot vs PyTorch eager, at batch 1 and 32 (and batch 1 on 1 thread)."""
    import torch

    import pivot.torch as pt

    threads = default_threads()
    model, images = _model_and_images(32)
    module = pt.from_vit(model)
    results = []
    cases = [("engine_b1_vs_torch", 1, threads, (5, 1) if quick else (20, 2)),
             ("engine_b1_1thread_vs_torch", 1, 1, (3, 1) if quick else (10, 1)),
             # quick: one timed call each, warmed up only by the batch-1 runs (first-call page faults
             # of the bigger buffers cost both sides about 1%)
             ("engine_b32_vs_torch", 32, threads, (1, 0) if quick else (3, 1))]
    for name, batch, n, (repeat, warmup) in cases:
        ours, theirs = _throughput(model, module, torch, images[:batch], n, repeat, warmup)
        results.append(Result(name, ours / theirs, ours, theirs, "img/s",
                              f"{PRESET} random weights, batch {batch}, {n} thread(s), best of {repeat}"
                              + (" (calling thread's CPU time)" if n == 1 else " (wall clock)")))
    return results


def bench_engine_skip(quick):
    """Speedup from skipping attention (12 -> 9, 6, 3 active encoders) over the FLOP ratio.

    The ratio uses the calling thread's CPU time at threads=1 (the engine then computes on that
    thread alone): it measures the work saved and stays meaningful on a busy shared machine, where
    wall-clock times of 2-thread runs swing by 2x. Wall-clock speedups at the default thread
    count are reported in the detail.
    """
    threads = default_threads()
    batch = 1
    model, images = _model_and_images(batch)
    depth = model.config.depth
    repeat = 4 if quick else 15
    paths = {k: [1] * k + [0] * (depth - k) for k in (12, 9, 6, 3)}
    cpu = dict(zip(paths, interleaved_best([lambda p=p: model(images, path=p, threads=1) for p in paths.values()],
                                           repeat, clock=time.thread_time)))
    wall = dict(zip(paths, interleaved_best([lambda p=p: model(images, path=p, threads=threads)
                                             for p in paths.values()], 2 if quick else repeat)))
    full_flops = pivot.flops(model.config)
    results = []
    for k in (9, 6, 3):
        speedup = cpu[12] / cpu[k]
        ideal = full_flops / pivot.flops(model.config, paths[k])
        name = "skip_speedup_vs_ideal" if k == 6 else f"skip_speedup_vs_ideal_{k}of12"
        results.append(Result(name, speedup / ideal, speedup, ideal, "x",
                              f"{k}/12 active, batch {batch}: 1-thread CPU {cpu[12] * 1e3:.1f} -> {cpu[k] * 1e3:.1f} ms; "
                              f"{threads}-thread wall {wall[12] * 1e3:.1f} -> {wall[k] * 1e3:.1f} ms "
                              f"({wall[12] / wall[k]:.3f}x); peer = FLOP ratio"))
    return results


BENCHMARKS = [bench_engine_throughput, bench_engine_skip]
