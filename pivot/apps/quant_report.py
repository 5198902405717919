"""fp32 vs int8 accuracy of each effort of a model family (``pivot.quantize``).

    python -m pivot.apps.quant_report --zoo fmnist_vit12_p4          # the shipped Fashion-MNIST zoo
    python -m pivot.apps.quant_report --model model.safetensors      # one fp32 model file
    options: --calibration 256 --method minmax|percentile --per-token --symmetric --limit N --threads T

Calibration images are drawn (seed 0) from the Fashion-MNIST training set, accuracy is measured on
the test set (``pivot.datasets.fashion_mnist``; ``--sample`` uses the 1,000-image sample shipped
with pivot instead). Prints a Markdown table: per effort, fp32 and int8 top-1 accuracy, their
difference in points, top-1 agreement of the two models and the largest logit difference relative
to the largest fp32 logit.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from .. import datasets, quant
from ..config import path_effort
from ..inference import run_model

__all__ = ["EffortRow", "compare", "format_table", "main"]


@dataclasses.dataclass(frozen=True)
class EffortRow:
    effort: int
    fp32_accuracy: float   # percent
    int8_accuracy: float   # percent
    agreement: float       # percent of inputs with the same top-1 class
    max_rel_logit_diff: float

    @property
    def delta_points(self) -> float:
        """int8 minus fp32 accuracy, in percentage points."""
        return self.int8_accuracy - self.fp32_accuracy


def compare(efforts: dict, calibration_images, images, labels, threads=None, batch_size=500,
            **quantize_kwargs) -> list:
    """One ``EffortRow`` per effort of ``{effort: pivot.ViT}``: each model is quantized with
    ``pivot.quantize(model, calibration_images, **quantize_kwargs)`` and both run on ``images``."""
    rows = []
    labels = np.asarray(labels)
    for effort in sorted(efforts):
        model = efforts[effort]
        qmodel = quant.quantize(model, calibration_images, **quantize_kwargs)
        f = run_model(model, images, threads, batch_size)
        q = run_model(qmodel, images, threads, batch_size)
        rows.append(EffortRow(int(effort), 100.0 * float((f.argmax(1) == labels).mean()),
                              100.0 * float((q.argmax(1) == labels).mean()),
                              100.0 * float((f.argmax(1) == q.argmax(1)).mean()),
                              float(np.abs(f - q).max() / max(float(np.abs(f).max()), 1e-30))))
    return rows


def format_table(rows) -> str:
    lines = ["| effort | fp32 acc (%) | int8 acc (%) | delta (points) | top-1 agreement (%) | max rel logit diff |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.effort} | {r.fp32_accuracy:.2f} | {r.int8_accuracy:.2f} | {r.delta_points:+.2f} | "
                     f"{r.agreement:.2f} | {r.max_rel_logit_diff:.4f} |")
    worst = min(rows, key=lambda r: r.delta_points)
    lines.append(f"\nworst effort: {worst.effort} ({worst.delta_points:+.2f} points); "
                 f"every effort within 0.5 points: {all(r.delta_points >= -0.5 for r in rows)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pivot.apps.quant_report", description=__doc__.split("\n\n")[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--zoo", help="a pivot.zoo name, e.g. fmnist_vit12_p4")
    src.add_argument("--model", help="an fp32 model file (pivot.ViT.from_timm)")
    parser.add_argument("--calibration", type=int, default=256, help="calibration images (default 256)")
    parser.add_argument("--method", choices=("minmax", "percentile"), default="minmax")
    parser.add_argument("--percentile", type=float, default=99.99)
    parser.add_argument("--per-token", action="store_true", help="per-token dynamic ranges for the linear inputs")
    parser.add_argument("--symmetric", action="store_true", help="symmetric int8 activations (zero point 128)")
    parser.add_argument("--sample", action="store_true", help="the shipped 1,000-image test sample")
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    if args.zoo:
        try:
            from .. import zoo
        except ImportError:
            print("pivot.zoo is not available in this build", file=sys.stderr)
            return 2
        try:
            efforts = zoo.load(args.zoo)
        except LookupError as exc:  # zoo.ZooError: no such model (yet)
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        from ..model import ViT
        model = ViT.from_timm(args.model)
        if model.precision != "fp32":
            print(f"error: --model {args.model} is a {model.precision} model; the report quantizes an fp32 model "
                  "and compares the two", file=sys.stderr)
            return 2
        efforts = {path_effort(model.path): model}
    if args.sample:
        images, labels = datasets.fashion_mnist_sample()
    else:
        images, labels = datasets.fashion_mnist("test")
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    train_x, _ = datasets.fashion_mnist("train")
    if not 1 <= args.calibration <= train_x.shape[0]:
        print(f"error: --calibration must be in [1, {train_x.shape[0]}] (the training images), got {args.calibration}",
              file=sys.stderr)
        return 2
    pick = np.random.default_rng(0).choice(train_x.shape[0], size=args.calibration, replace=False)
    calib = train_x[np.sort(pick)]
    rows = compare(efforts, calib, images, labels, threads=args.threads, method=args.method,
                   percentile=args.percentile, per_token=args.per_token,
                   activations="symmetric" if args.symmetric else "asymmetric")
    print(f"int8 vs fp32: {len(efforts)} efforts, {images.shape[0]} test images, {args.calibration} calibration "
          f"images ({args.method}{', per token' if args.per_token else ''}), kernel {quant.kernel_in_use()}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
