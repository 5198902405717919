"""Attention reuse and ReLU linear attention on the C engine against the PyTorch twin (DeiT-S, random weights).

    python benchmarks/run.py --only modes [--quick]

One thread on both sides, CPU time of the calling thread (robust to other processes on a shared
machine), timed round-robin; PyTorch under ``torch.inference_mode()`` with ``pivot.torch``'s
module running the same path / attention kind. The detail also gives pivot's speedup of each mode
over the all-active model.
"""
import time

import numpy as np

import pivot
from common import Result

PRESET = "deit_small_patch16_224"
REUSE = [1, 2] * 6


def _best(fns, repeat):
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.thread_time()
            fn()
            best[i] = min(best[i], time.thread_time() - t0)
    return best


def bench_modes(quick: bool):
    import torch
    import pivot.torch as pt

    cfg = pivot.ViTConfig.preset(PRESET)
    if quick:
        cfg = cfg.replace(img_size=112)  # 50 tokens: keeps the quick run near 10 s
    model = pivot.ViT.random(cfg, seed=0)
    linear = pivot.ViT(cfg.replace(attention="relu_linear"), model.state_dict())
    images = np.random.default_rng(0).standard_normal((1, 3, cfg.img_size, cfg.img_size)).astype(np.float32)
    x = torch.from_numpy(images)
    module, lmodule = pt.from_vit(model), pt.from_vit(linear)
    old = torch.get_num_threads()
    torch.set_num_threads(1)

    def torch_run(m, path=None):
        def run():
            with torch.inference_mode():
                m(x, path=path)
        return run

    try:
        t_full, t_reuse, t_linear, p_reuse, p_linear = _best(
            [lambda: model(images, threads=1), lambda: model(images, path=REUSE, threads=1),
             lambda: linear(images, threads=1), torch_run(module, REUSE), torch_run(lmodule)],
            3 if quick else 7)
    finally:
        torch.set_num_threads(old)
    detail = f"{cfg.num_tokens} tokens, batch 1, 1 thread; pivot all-active {1e3 * t_full:.1f} ms"
    return [
        Result("modes_reuse_vs_torch", p_reuse / t_reuse, 1e3 * t_reuse, 1e3 * p_reuse, "ms",
               f"path {''.join(map(str, REUSE))}; {detail}; reuse speedup over all-active x{t_full / t_reuse:.2f}"),
        Result("modes_linear_vs_torch", p_linear / t_linear, 1e3 * t_linear, 1e3 * p_linear, "ms",
               f"relu_linear; {detail}; linear speedup over all-active x{t_full / t_linear:.2f}"),
        # the same engine against itself: what reusing or linearizing attention saves (peer: all-active)
        Result("modes_reuse_vs_active", t_full / t_reuse, 1e3 * t_reuse, 1e3 * t_full, "ms",
               f"path {''.join(map(str, REUSE))} against all-active; {detail}"),
        Result("modes_linear_vs_active", t_full / t_linear, 1e3 * t_linear, 1e3 * t_full, "ms",
               f"relu_linear in every encoder against softmax all-active; {detail}"),
    ]


BENCHMARKS = [bench_modes]
