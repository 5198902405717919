"""Path-selection rules: each rule's score of a path against the path's fine-tuned accuracy."""
from __future__ import annotations

_AXIS = {"path_score": "Path-Score (sum of CKA, unitless)", "output_kl": "KL(full || path) on calibration images (nats)",
         "accuracy": "top-1 accuracy on calibration images (%)",
         "cross_entropy": "cross-entropy on calibration images (nats)"}


def path_selection(result: dict, *, include_reference: bool = True):
    """One panel per rule: x = the rule's score of a path, y = that path's test accuracy (%) after
    fine-tuning (first seed; other seeds as small grey dots), one colour per effort, the rule's
    own choice ringed; the zoo card's rows (``include_reference``, another run) as crosses.

    Args:
        result: the JSON written by ``python -m pivot.apps.recipes.path_selection --results FILE``.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    methods = list(result["methods"])
    if not methods:
        raise ValueError("result has no methods")
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.8), squeeze=False)
    efforts = sorted({r["effort"] for r in result["rows"]})
    colours = {e: plt.cm.viridis(i / max(1, len(efforts) - 1)) for i, e in enumerate(efforts)}
    for ax, m in zip(axes[0], methods):
        scale = 100.0 if m == "accuracy" else 1.0
        for r in result["rows"]:
            accs = list(r["test_accuracy"].values())
            if m not in r["scores"] or not accs:
                continue
            x = r["scores"][m] * scale
            ax.scatter([x], [100 * accs[0]], color=colours[r["effort"]], s=36, zorder=3,
                       label=f"effort {r['effort']}")
            if accs[1:]:
                ax.scatter([x] * len(accs[1:]), [100 * a for a in accs[1:]], color="0.5", s=10, zorder=2)
            if m in r["chosen_by"]:
                ax.scatter([x], [100 * accs[0]], facecolors="none", edgecolors="red", s=140, zorder=4)
        if include_reference:
            for r in result.get("reference", []):
                if m in r.get("scores", {}):
                    ax.scatter([r["scores"][m] * scale], [100 * r["test_accuracy"]], marker="x", color="black",
                               zorder=3, label=result.get("reference_label", "zoo card rows"))
        ax.set_xlabel(_AXIS.get(m, m))
        ax.set_ylabel("test accuracy after fine-tuning (%)")
        better = "higher" if result["methods"][m]["higher_is_better"] else "lower"
        ax.set_title(f"{m} ({better} is better)")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        if unique:
            ax.legend(unique.values(), unique.keys(), fontsize=7)
    fig.suptitle("Path-selection rules: score vs fine-tuned accuracy (red ring: the rule's choice)")
    fig.tight_layout()
    return fig
