"""The paper-style table of a zoo model: baseline vs the PIVOT pair ``pivot.search`` picks at
target delays, on the Fashion-MNIST test set::

    python -m pivot.apps.recipes.report --zoo fmnist_vit12_p4 --targets 0.7,0.55 [--json FILE]

For each target (a fraction of the full model's simulated delay) the search runs on 256
*training* images (the calibration batch, as the paper); the chosen cascade then classifies all
10,000 test images. Reported per row: test accuracy, F_L on the test set, simulated delay, energy
and EDP on ``pivot.sim.ZCU102`` with that F_L (and their ratio to the baseline), and the measured
CPU throughput of the cascade against the full model on this machine (same threads, best of
``--repeats`` runs).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def report(name: str, targets=(0.7, 0.55), lec: float = 0.8, seed: int = 0, threads=None, repeats: int = 2,
           progress: bool = True) -> dict:
    """Rows of the table as dicts (baseline first); see the module doc."""
    import pivot
    from pivot import sim, zoo

    efforts = zoo.load(name)
    depth = max(efforts)
    full = efforts[depth]
    train_x, train_y = pivot.datasets.fashion_mnist("train")
    test_x, test_y = pivot.datasets.fashion_mnist("test")
    idx = np.sort(np.random.default_rng(seed).choice(len(train_x), 256, replace=False))
    calib = (train_x[idx], train_y[idx])

    base_report = sim.simulate(full)
    full(test_x[:64], threads=threads)  # warm-up
    t_full, logits = _best_time(lambda: full(test_x, threads=threads), repeats)
    base_acc = float(np.mean(logits.argmax(1) == test_y))
    rows = [dict(design=f"baseline (effort {depth})", target_ms=None, low=depth, high=None, threshold=None,
                 accuracy=base_acc, f_low=1.0, delay_ms=base_report.delay_ms, energy_j=base_report.energy_j,
                 edp=base_report.edp, edp_ratio=1.0, delay_ratio=1.0, energy_ratio=1.0,
                 cpu_images_per_s=len(test_x) / t_full, cpu_speedup=1.0)]
    for fraction in targets:
        target = fraction * base_report.delay_ms
        result = pivot.search(efforts, *calib, target_delay_ms=target, lec=lec, progress=progress, threads=threads)
        cascade = result.multi_effort(efforts)
        t_cascade, run = _best_time(lambda: cascade.predict(test_x, test_y, threads=threads), repeats)
        pair = sim.simulate_pair(efforts[result.low], efforts[result.high], 1.0 - run.f_low)
        rows.append(dict(design=f"PIVOT {result.low}/{result.high} (target {fraction:g} x)", target_ms=target,
                         low=result.low, high=result.high, threshold=result.threshold, accuracy=float(run.accuracy),
                         f_low=float(run.f_low), delay_ms=pair.delay_ms, energy_j=pair.energy_j, edp=pair.edp,
                         edp_ratio=base_report.edp / pair.edp, delay_ratio=base_report.delay_ms / pair.delay_ms,
                         energy_ratio=base_report.energy_j / pair.energy_j,
                         cpu_images_per_s=len(test_x) / t_cascade, cpu_speedup=t_full / t_cascade))
    return {"zoo": name, "threads": threads or pivot.model.default_threads(), "test_images": int(len(test_x)),
            "calibration": "256 training images", "lec": lec, "rows": rows}


def markdown(table: dict) -> str:
    lines = ["| design | accuracy | F_L | delay (ms) | energy (mJ) | EDP (J x ms) | EDP lower by | "
             "CPU images/s | CPU speed-up |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        lines.append(f"| {r['design']} | {100 * r['accuracy']:.2f}% | {100 * r['f_low']:.1f}% | {r['delay_ms']:.3f} | "
                     f"{1e3 * r['energy_j']:.3f} | {r['edp']:.3e} | {r['edp_ratio']:.2f}x | "
                     f"{r['cpu_images_per_s']:.0f} | {r['cpu_speedup']:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pivot.apps.recipes.report", description=__doc__.split("\n")[0])
    p.add_argument("--zoo", default="fmnist_vit12_p4", help="zoo model name")
    p.add_argument("--targets", default="0.7,0.55", help="target delays as fractions of the full model's")
    p.add_argument("--lec", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", help="also write the table as JSON here")
    args = p.parse_args(argv)
    table = report(args.zoo, [float(v) for v in args.targets.split(",")], lec=args.lec, threads=args.threads)
    print(markdown(table))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
