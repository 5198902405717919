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
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    methods = list(result["methods"])
    if not methods:
        raise ValueError("result has no methods")
    fig = Figure(figsize=(4.2 * len(methods), 4.4), layout="constrained")
    axes = fig.subplots(1, len(methods), squeeze=False, sharey=True)
    efforts = sorted({r["effort"] for r in result["rows"]})
    colours = {e: matplotlib.colormaps["viridis"](i / max(1, len(efforts) - 1)) for i, e in enumerate(efforts)}
    reference_label = result.get("reference_label", "zoo card rows")
    drawn = set()
    for ax, m in zip(axes[0], methods):
        scale = 100.0 if m == "accuracy" else 1.0
        for r in result["rows"]:
            accs = list(r["test_accuracy"].values())
            if m not in r["scores"] or not accs:
                continue
            x = r["scores"][m] * scale
            ax.scatter([x], [100 * accs[0]], color=colours[r["effort"]], s=36, zorder=3)
            if accs[1:]:
                ax.scatter([x] * len(accs[1:]), [100 * a for a in accs[1:]], color="0.5", s=10, zorder=2)
                drawn.add("seeds")
            if m in r["chosen_by"]:
                ax.scatter([x], [100 * accs[0]], facecolors="none", edgecolors="red", s=140, zorder=4)
                drawn.add("chosen")
        if include_reference:
            for r in result.get("reference", []):
                if m in r.get("scores", {}):
                    ax.scatter([r["scores"][m] * scale], [100 * r["test_accuracy"]], marker="x", color="black",
                               zorder=3)
                    drawn.add("reference")
        ax.set_xlabel(_AXIS.get(m, m))
        better = "higher" if result["methods"][m]["higher_is_better"] else "lower"
        ax.set_title(f"{m} ({better} is better)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy after fine-tuning (%)")
    # One legend for every panel, below them, so that no legend covers a point.
    handles = [Line2D([], [], linestyle="", marker="o", color=colours[e], label=f"effort {e}") for e in efforts]
    if "seeds" in drawn:
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=4, color="0.5", label="other seeds"))
    if "chosen" in drawn:
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=11, markerfacecolor="none",
                              markeredgecolor="red", label="the rule's choice"))
    if "reference" in drawn:
        handles.append(Line2D([], [], linestyle="", marker="x", color="black", label=reference_label))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    fig.suptitle("Path-selection rules: each rule's score of a path vs the path's accuracy after fine-tuning")
    return fig
