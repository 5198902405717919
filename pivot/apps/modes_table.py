"""Skip vs attention reuse vs linear attention at one target delay: accuracy and simulated EDP.

The comparison on the Fashion-MNIST model: starting from one trained model,
each variant is chosen for the same target delay on the simulated accelerator, fine-tuned with
the same recipe and budget, and evaluated:

* ``baseline``: every attention active (softmax).
* ``skip`` (PIVOT): the path with the most active attentions whose delay meets the target, among
  the best path of each effort by Path-Score (``pivot.best_paths`` of ``pivot.model_cka``).
* ``reuse`` (TReX): ``pivot.search_reuse`` on the attention-map CKA (``pivot.attention_cka_matrix``):
  the fewest reusing encoders that meet the target.
* ``linear`` (Trio-ViT style): ReLU linear attention in every encoder; if that alone misses the
  target, also the skip path (as for ``skip``, from the linear model's CKA) that meets it.

``fine_tune(model, images, labels) -> pivot.ViT`` is the recipe; pass the same one for every
variant. Without one, ``pivot.train.fine_tune`` is used (the zoo's recipe: PIVOT loss, 400
steps, teacher the full softmax model) when torch is installed, else ``pivot.apps.demo.fit_head`` (head-only softmax regression: cheap and offline, but it cannot
adapt the encoders to reuse or linear attention, so its accuracies understate both).

Command line (writes modes_table.csv and modes_table.png to --out)::

    python -m pivot.apps.modes_table --zoo fmnist_vit12_p4 --target-fraction 0.7 --out results
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import os

import numpy as np

__all__ = ["ModeRow", "compare_modes", "plot_modes", "main"]


@dataclasses.dataclass(frozen=True)
class ModeRow:
    """One variant of the table: its path, attention kind, simulated cost and accuracy."""
    variant: str
    attention: str
    path: tuple
    delay_ms: float
    energy_j: float
    edp: float            # J x ms
    accuracy: float       # fraction of the test images, after fine-tuning


def _default_fine_tune():
    try:
        from ..train import fine_tune
        return fine_tune
    except ImportError:  # no torch: head-only softmax regression
        from .demo import fit_head
        return fit_head


def _skip_path(model, calib, target_ms, hw):
    from .. import best_paths, model_cka, sim
    cka = model_cka(model, calib, path=np.ones(model.config.depth, np.uint8), progress=False)
    for effort, scored in sorted(best_paths(cka).items(), reverse=True):
        if sim.simulate(model.config, scored.path, hw=hw).delay_ms <= target_ms:
            return scored.path
    return (0,) * model.config.depth


def compare_modes(model, train, test, target_delay_ms=None, target_fraction=0.7, fine_tune=None, hw=None,
                  calib_size=64) -> list:
    """Rows (``ModeRow``) for baseline, skip, reuse and linear on ``model`` (a softmax
    ``pivot.ViT``). ``train`` / ``test``: (images, labels) pairs; the first ``calib_size`` training
    images choose the paths. ``target_delay_ms`` defaults to ``target_fraction`` x the baseline's
    simulated delay on ``hw`` (default ``pivot.sim.ZCU102``)."""
    from .. import attention_cka_matrix, search_reuse, sim
    from ..model import ViT

    hw = sim.ZCU102 if hw is None else hw
    fine_tune = _default_fine_tune() if fine_tune is None else fine_tune
    if model.config.attention != "softmax":
        raise ValueError("compare_modes starts from a softmax model")
    (x_train, y_train), (x_test, y_test) = train, test
    calib = x_train[:calib_size]
    D = model.config.depth
    base = model.with_path(np.ones(D, np.uint8))
    if target_delay_ms is None:
        target_delay_ms = target_fraction * sim.simulate(base).delay_ms

    variants = [("baseline", base)]
    variants.append(("skip", base.with_path(_skip_path(base, calib, target_delay_ms, hw))))
    reuse = search_reuse(base.config, attention_cka_matrix(base, calib), target_delay_ms, hw=hw)
    variants.append(("reuse", base.with_path(reuse.path)))
    linear = ViT(base.config.replace(attention="relu_linear"), base.state_dict())
    if sim.simulate(linear, hw=hw).delay_ms > target_delay_ms:
        linear = linear.with_path(_skip_path(linear, calib, target_delay_ms, hw))
    variants.append(("linear", linear))

    rows = []
    for name, variant in variants:
        tuned = fine_tune(variant, x_train, y_train)
        tuned = tuned.with_path(variant.path)
        accuracy = float(np.mean(np.argmax(tuned(x_test), axis=1) == np.asarray(y_test)))
        report = sim.simulate(tuned, hw=hw)
        rows.append(ModeRow(name, tuned.config.attention, tuple(int(v) for v in variant.path), report.delay_ms,
                            report.energy_j, report.edp, accuracy))
    return rows


def plot_modes(rows, target_delay_ms=None):
    """Accuracy (%) against simulated EDP (J x ms), one labelled point per variant. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in rows:
        ax.scatter(r.edp, 100 * r.accuracy)
        ax.annotate(f"{r.variant} ({r.delay_ms:.2f} ms)", (r.edp, 100 * r.accuracy), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set_xlabel("simulated EDP (J x ms)")
    ax.set_ylabel("test accuracy (%)")
    title = "skip vs reuse vs linear attention"
    ax.set_title(title + (f", target {target_delay_ms:.2f} ms" if target_delay_ms else ""))
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    """CLI: the table (CSV) and plot (PNG) for a trained Fashion-MNIST model."""
    parser = argparse.ArgumentParser(prog="python -m pivot.apps.modes_table", description=__doc__.split("\n")[0])
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("--weights", help="trained model (.safetensors / .npz / .pth)")
    g.add_argument("--zoo", help="a pivot.zoo model name: its full-effort model (e.g. fmnist_vit12_p4)")
    parser.add_argument("--target-fraction", type=float, default=0.7, help="target delay / baseline delay")
    parser.add_argument("--train-size", type=int, default=10000, help="fine-tuning images (from the training split)")
    parser.add_argument("--out", default=".", help="folder for modes_table.csv and modes_table.png")
    parser.add_argument("--head-only", action="store_true", help="fine-tune with pivot.apps.demo.fit_head (offline, fast)")
    args = parser.parse_args(argv)
    from .. import datasets
    from .demo import fit_head
    from ..model import ViT

    if args.zoo:
        from .. import zoo
        efforts = zoo.load(args.zoo)
        model = efforts[max(efforts)]
    else:
        model = ViT.from_timm(args.weights)
    x_train, y_train = datasets.fashion_mnist("train")  # already normalized as the zoo models expect
    x_test, y_test = datasets.fashion_mnist("test")
    train = (x_train[:args.train_size], y_train[:args.train_size])
    rows = compare_modes(model, train, (x_test, y_test), target_fraction=args.target_fraction,
                         fine_tune=fit_head if args.head_only else None)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "modes_table.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "attention", "path", "delay_ms", "energy_j", "edp_j_ms", "accuracy"])
        for r in rows:
            writer.writerow([r.variant, r.attention, "".join(map(str, r.path)), f"{r.delay_ms:.4f}",
                             f"{r.energy_j:.6f}", f"{r.edp:.6f}", f"{r.accuracy:.4f}"])
            print(f"{r.variant:9s} {r.attention:12s} {''.join(map(str, r.path))}  {r.delay_ms:8.3f} ms  "
                  f"EDP {r.edp:.5f} J*ms  acc {100 * r.accuracy:.2f}%")
    plot_modes(rows).savefig(os.path.join(args.out, "modes_table.png"), dpi=150)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
