"""Input-aware inference: MultiEffort.predict (low effort on all inputs, high effort on the
uncertain ones) against running the all-attention model on every input.

Random-weight models give near-uniform entropies, so the threshold is chosen to reach a given
F_L (MultiEffort.for_lec) on the same images, and reported.
"""
import numpy as np

from common import Result, best_time

import pivot

LEC = 0.8
LOW_PATH = [1] * 6 + [0] * 6     # 6 of 12 attentions, the deeper ones skipped (as the paper finds)


def cascade_vs_baseline(quick: bool):
    """Wall-clock time of the cascade vs the all-attention model on the same batch."""
    preset = "deit_tiny_patch16_224" if quick else "deit_small_patch16_224"
    batch = 16 if quick else 64
    config = pivot.ViTConfig.preset(preset)
    full = pivot.ViT.random(config, seed=0)
    low = full.with_path(LOW_PATH)
    images = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    cascade = pivot.MultiEffort.for_lec(low, full, images, LEC)
    result = cascade.predict(images)
    repeat = 2 if quick else 5
    t_cascade = best_time(lambda: cascade.predict(images), repeat=repeat)
    t_full = best_time(lambda: full(images), repeat=repeat)
    t_low = best_time(lambda: low(images), repeat=repeat)
    ideal = t_full / (t_low + result.f_high * t_full)
    detail = (f"{preset} random weights, batch {batch}, low path {''.join(map(str, LOW_PATH))}, "
              f"threshold {cascade.threshold:.6f} -> F_L {result.f_low:.2f}; low effort alone "
              f"{1e3 * t_low:.1f} ms; ideal ratio {ideal:.2f}")
    return [Result("search_cascade_vs_full", t_full / t_cascade, 1e3 * t_cascade, 1e3 * t_full, "ms", detail)]


BENCHMARKS = [cascade_vs_baseline]
