"""Plots of the simulator: the delay breakdown by module (Fig. 6a) and a design sweep's delay-energy front.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state); each function returns it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..config import path_effort

__all__ = ["delay_breakdown", "design_space", "delay_energy_front"]

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


def delay_energy_front(delay_ms, energy_j) -> np.ndarray:
    """Indices of the designs no other design beats in both delay and energy (lower is better),
    sorted by delay."""
    delay, energy = np.asarray(delay_ms, dtype=np.float64), np.asarray(energy_j, dtype=np.float64)
    order = np.lexsort((energy, delay))
    keep, best = [], np.inf
    for i in order:
        if energy[i] < best:
            keep.append(i)
            best = energy[i]
    return np.array(keep, dtype=np.int64)


def design_space(table, color_by=None, log: bool = True) -> Figure:
    """Every design of a ``pivot.sim.sweep`` table as a point of delay (ms) vs energy (J) per
    inference, with the delay-energy front (designs no other beats in both) drawn as a line.

    ``color_by``: a column of the table (e.g. ``"dataflow"``, ``"array_rows"``) colouring the
    points; None colours by EDP. ``log``: logarithmic axes (sweeps span orders of magnitude).
    """
    if not hasattr(table, "keys") or "delay_ms" not in table or "energy_j" not in table:
        raise TypeError("design_space needs a pivot.sim.sweep table (a dict with delay_ms and energy_j columns)")
    delay, energy = np.asarray(table["delay_ms"], float), np.asarray(table["energy_j"], float)
    if delay.size == 0:
        raise ValueError("the table has no designs")
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    if color_by is None:
        points = ax.scatter(delay, energy, c=np.asarray(table.get("edp", delay * energy), float), s=6,
                            cmap="viridis", norm="log" if log else None, alpha=0.6, linewidths=0)
        fig.colorbar(points, ax=ax, label="EDP (J x ms)")
    else:
        if color_by not in table:
            raise ValueError(f"color_by {color_by!r} is not a column of the table; columns: {', '.join(table)}")
        groups = np.asarray(table[color_by])
        for value in np.unique(groups):
            mask = groups == value
            ax.scatter(delay[mask], energy[mask], s=6, alpha=0.6, linewidths=0, label=f"{color_by}={value}")
    front = delay_energy_front(delay, energy)
    ax.plot(delay[front], energy[front], color="black", lw=1.2, marker="o", ms=3,
            label=f"delay-energy front ({front.size} designs)")
    ax.legend(fontsize="small", markerscale=2, loc="upper left")
    if log:
        from matplotlib.ticker import FuncFormatter
        ax.set_xscale("log")
        ax.set_yscale("log")

        def minor(v, _):  # label 2x, 3x and 5x a power of ten: plain numbers, not crowded
            return f"{v:g}" if v > 0 and round(v / 10 ** np.floor(np.log10(v))) in (2, 3, 5) else ""

        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(FuncFormatter(minor))
    ax.set(xlabel="delay per inference (ms)", ylabel="energy per inference (J)",
           title=f"Design space: {delay.size} designs")
    return fig
