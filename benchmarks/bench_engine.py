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


def interleaved_best(fns, repeat, warmup=1):
    """Best seconds per call of each function, timed round-robin so that load from other processes
    on a shared machine hits every contender alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def _throughput(model, module, torch, images, threads, repeat, warmup):
    """(pivot images/s, torch images/s) at one batch size and thread count."""
    batch = images.shape[0]
    x = torch.from_numpy(images)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        def run_torch():
            with torch.inference_mode():
                module(x)

        t_pivot, t_torch = interleaved_best([lambda: model(images, threads=threads), run_torch], repeat, warmup)
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
             ("engine_b32_vs_torch", 32, threads, (1, 1) if quick else (3, 1))]
    if not quick:
        cases.insert(1, ("engine_b1_1thread_vs_torch", 1, 1, (10, 1)))
    for name, batch, n, (repeat, warmup) in cases:
        ours, theirs = _throughput(model, module, torch, images[:batch], n, repeat, warmup)
        results.append(Result(name, ours / theirs, ours, theirs, "img/s",
                              f"{PRESET} random weights, batch {batch}, {n} thread(s), best of {repeat}"))
    return results


def bench_engine_skip(quick):
    """Speedup from skipping attention (12 -> 9, 6, 3 active encoders) over the FLOP ratio."""
    threads = default_threads()
    batch = 1
    model, images = _model_and_images(batch)
    depth = model.config.depth
    repeat = 4 if quick else 20
    paths = {k: [1] * k + [0] * (depth - k) for k in (12, 9, 6, 3)}
    best = interleaved_best([lambda p=p: model(images, path=p, threads=threads) for p in paths.values()], repeat)
    times = dict(zip(paths, best))
    full_flops = pivot.flops(model.config)
    results = []
    for k in (9, 6, 3):
        speedup = times[12] / times[k]
        ideal = full_flops / pivot.flops(model.config, paths[k])
        name = "skip_speedup_vs_ideal" if k == 6 else f"skip_speedup_vs_ideal_{k}of12"
        results.append(Result(name, speedup / ideal, speedup, ideal, "x",
                              f"{k}/12 active: {times[12] * 1e3:.1f} -> {times[k] * 1e3:.1f} ms (batch {batch}, "
                              f"{threads} threads); peer = FLOP ratio"))
    return results


BENCHMARKS = [bench_engine_throughput, bench_engine_skip]
