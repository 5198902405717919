"""Plots of the simulator: the delay breakdown by module (Fig. 6a).

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state); each function returns it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..config import path_effort

__all__ = ["delay_breakdown"]

_MODULES = (("attention_mac", "attention MACs", "tab:blue"), ("softmax", "softmax", "tab:red"),
            ("mlp", "MLP", "tab:green"), ("other", "other (norms, patch embedding, head)", "tab:gray"))


def _default_label(report, i):
    path = getattr(report, "path", None)
    if path is not None:
        return f"effort {path_effort(path)}/{len(path)}"
    if hasattr(report, "f_high"):
        lo, hi = report.low_report.path, report.high_report.path
        return f"efforts {path_effort(lo)}/{path_effort(hi)}\nF_H={report.f_high:.2f}"
    return f"#{i + 1}"


def delay_breakdown(reports, labels=None, percent: bool = False) -> Figure:
    """Stacked bars of delay by module (attention MACs, softmax, MLP, other), as in Fig. 6a.

    ``reports``: a ``pivot.sim.SimReport`` or ``PairReport`` (per-input delay of the pair), or a
    sequence or ``{label: report}`` mapping of them. ``labels`` names the bars of a sequence
    (default: the effort). ``percent``: bars show each module's share of the delay (%) instead of
    milliseconds; the total delay is written above each bar either way.
    """
    if isinstance(reports, Mapping):
        labels, items = [str(k) for k in reports], list(reports.values())
    elif isinstance(reports, Sequence) and not isinstance(reports, str):
        items = list(reports)
        labels = [str(v) for v in labels] if labels is not None else [_default_label(r, i) for i, r in enumerate(items)]
    else:
        items = [reports]
        labels = [str(labels)] if isinstance(labels, str) else (
            list(labels) if labels is not None else [_default_label(reports, 0)])
    if not items:
        raise ValueError("no reports to plot")
    if len(labels) != len(items):
        raise ValueError(f"got {len(items)} reports but {len(labels)} labels")
    if any(not isinstance(getattr(r, "breakdown", None), Mapping) for r in items):
        raise TypeError("delay_breakdown needs pivot.sim.SimReport or PairReport objects")
    ms = np.array([[float(r.breakdown[key]) for key, _, _ in _MODULES] for r in items])   # (bars, modules)
    totals = ms.sum(axis=1)
    values = 100.0 * ms / totals[:, None] if percent else ms
    # Room for the legend beside the axes and for each bar's label.
    fig = Figure(figsize=(max(6.5, 1.8 * len(items) + 4.5), 4.5), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(items))
    bottom = np.zeros(len(items))
    for j, (_, name, color) in enumerate(_MODULES):
        ax.bar(x, values[:, j], bottom=bottom, label=name, color=color)
        bottom += values[:, j]
    for xi, top, total in zip(x, bottom, totals):
        ax.annotate(f"{total:.2f} ms", (xi, top), ha="center", va="bottom", fontsize="small",
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x, labels)
    ax.set(ylabel="share of delay (%)" if percent else "delay (ms)", xlabel="model",
           title="Delay breakdown by module")
    ax.set_ylim(0, bottom.max() * 1.12)
    # Outside the axes: inside, it would cover the tallest bar's top.
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize="small")
    return fig
