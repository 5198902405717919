"""LV-ViT-S on pivot's engine against the PyTorch re-implementation of pivot.torch (random weights).

    python benchmarks/run.py --only lvvit [--quick]

Both sides run in this process with the same thread count, fp32, PyTorch under
``torch.inference_mode()``; the module is TokenLabeling's model definition (PatchEmbed4_2 conv
stem with BatchNorm, skip_lam blocks, aux head). The stem alone compares pivot's im2col + sgemm
(BatchNorm folded) with PyTorch's three Conv2d + BatchNorm2d + ReLU.
"""
import time

import numpy as np

import pivot
from bench_engine import interleaved_best
from common import Result
from pivot import _core
from pivot.model import default_threads


def bench_lvvit_s(quick):
    """LV-ViT-S batch 1 images/s, pivot vs PyTorch, on all threads and on one; and the stem alone."""
    import torch

    import pivot.torch as pt

    model = pivot.ViT.random(pivot.ViTConfig.preset("lvvit_s"), seed=0)
    module = pt.from_vit(model)
    images = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    x = torch.from_numpy(images)
    stem = module.patch_embed

    def torch_stem():
        h = stem.relu(stem.bn1(stem.conv1(x)))
        h = stem.relu(stem.bn2(stem.conv2(h)))
        return stem.relu(stem.bn3(stem.conv3(h)))

    results = []
    old = torch.get_num_threads()
    try:
        for name, threads, repeat in (("lvvit_s_b1_vs_torch", default_threads(), 2 if quick else 10),
                                      ("lvvit_s_b1_1thread_vs_torch", 1, 1 if quick else 8)):
            torch.set_num_threads(threads)
            clock = time.thread_time if threads == 1 else time.perf_counter   # as bench_engine
            with torch.inference_mode():
                ours, theirs = interleaved_best([lambda: model(images, threads=threads), lambda: module(x)], repeat,
                                                clock=clock)
            results.append(Result(name, theirs / ours, 1 / ours, 1 / theirs, "img/s",
                                  f"lvvit_s random weights, batch 1, {threads} thread(s), best of {repeat}"))
        torch.set_num_threads(1)
        with torch.inference_mode():
            ours, theirs = interleaved_best([lambda: _core.stem_forward(images, model._stem, model.config, 1),
                                             torch_stem], 2 if quick else 10, clock=time.thread_time)
        results.append(Result("lvvit_s_stem_1thread_vs_torch", theirs / ours, ours * 1e3, theirs * 1e3, "ms",
                              "conv stem (3 x conv + BN + ReLU) at 224, batch 1, 1 thread; pivot folds BN"))
    finally:
        torch.set_num_threads(old)
    return results


BENCHMARKS = [bench_lvvit_s]
