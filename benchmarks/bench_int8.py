"""int8 engine (pivot.quantize) against pivot's own fp32 engine on DeiT-S (random weights).

    python benchmarks/run.py --only int8 [--quick]

``int8_vs_fp32``: batch 32, same thread count on both sides, timed round-robin (wall clock, best of
the rounds); ratio = fp32 seconds / int8 seconds. The int8 model is calibrated (min-max, per
tensor) on 8 of the images and runs the best GEMM kernel of this CPU (``pivot.quant.kernel_in_use``).
Logit agreement between the two (top-1 agreement, max |difference| relative to max |logit|) is
in the detail; random weights make it a smoke check, see docs/int8.md for trained models.
"""
import numpy as np

import pivot
from bench_engine import _images, _model, interleaved_best
from common import Result
from pivot import quant
from pivot.model import default_threads


def bench_int8_vs_fp32(quick):
    threads = default_threads()
    model = _model()
    images = _images(model.config, 32)
    qmodel = quant.quantize(model, images[:8])
    repeat = 2 if quick else 5
    t_fp32, t_int8 = interleaved_best([lambda: model(images, threads=threads),
                                       lambda: qmodel(images, threads=threads)], repeat)
    f, q = model(images, threads=threads), qmodel(images, threads=threads)
    agree = float((f.argmax(1) == q.argmax(1)).mean())
    rel = float(np.abs(f - q).max() / np.abs(f).max())
    detail = (f"DeiT-S b32, {threads} threads, kernel {quant.kernel_in_use()}: fp32 {t_fp32 * 1e3:.0f} ms, "
              f"int8 {t_int8 * 1e3:.0f} ms; top-1 agreement {agree:.3f}, max|dlogit|/max|logit| {rel:.3f}")
    results = [Result("int8_vs_fp32", t_fp32 / t_int8, 32 / t_int8, 32 / t_fp32, "images/s", detail)]
    if not quick:
        for kernel in ("avxvnni", "avx2", "portable"):
            if not pivot._core.int8_kernel_supported(quant.KERNELS[kernel]):
                continue
            km = qmodel.with_precision("int8", kernel=kernel)
            small = images[:8]
            t_f, t_k = interleaved_best([lambda: model(small, threads=threads), lambda: km(small, threads=threads)], 2)
            results.append(Result(f"int8_{kernel}_vs_fp32_b8", t_f / t_k, 8 / t_k, 8 / t_f, "images/s",
                                  f"DeiT-S b8, {threads} threads, kernel {kernel} forced"))
    return results


BENCHMARKS = [bench_int8_vs_fp32]
