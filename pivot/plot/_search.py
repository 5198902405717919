"""Plots of the search area: EDP vs LEC (Fig. 8a), the EDP split (Fig. 8b), the accuracy-EDP front.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state); each function returns it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["edp_vs_lec", "edp_split", "accuracy_edp_front"]

EDP_LABEL = "EDP (J x ms)"


_MAX_DEFAULT_PAIRS = 10


def _colours(n):
    """n distinct colours: tab10 up to 10, else evenly spaced on viridis."""
    import matplotlib
    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(i / (n - 1)) for i in range(n)]


def edp_vs_lec(front, lecs=(0.6, 0.7, 0.8, 0.9, 1.0), pairs=None) -> Figure:
    """EDP and accuracy against the low-effort constraint, one line per effort pair (Fig. 8a).

    ``front`` is a ``pivot.ParetoResult`` (from ``pivot.pareto``): for each LEC every pair is taken
    at the first threshold where F_L >= LEC, as ``pivot.search`` does. ``pairs``: the (low, high)
    pairs to draw (default all, or when there are more than 10 the pairs whose high effort is
    the largest). The largest effort alone is drawn dashed for reference.

    The first axes hold the EDP of every pair, each line labelled at its end; the pairs' accuracy
    lines often coincide (at a low LEC several pairs send the same inputs to the same high
    effort), so accuracy gets one small panel per pair (shared axes), the pair in colour over the
    others in grey. ``fig.axes[0]`` is the EDP axes, ``fig.axes[1:]`` the accuracy panels in
    the order of ``pairs``.
    """
    lecs = [float(v) for v in lecs]
    if not lecs:
        raise ValueError("lecs is empty")
    per_lec = [front.at_lec(lec) for lec in lecs]
    if pairs is None:
        pairs = front.pairs()
        if len(pairs) > _MAX_DEFAULT_PAIRS:  # e.g. 45 pairs of 10 efforts: keep one line per low effort
            top_high = max(p[1] for p in pairs)
            pairs = [p for p in pairs if p[1] == top_high]
    else:
        pairs = [tuple(p) for p in pairs]
    unknown = [p for p in pairs if p not in front.pairs()]
    if unknown:
        raise ValueError(f"pairs {unknown} are not in the result; it has {front.pairs()}")
    x = [100 * lec for lec in lecs]
    xlabel = "LEC: inputs classified by the low effort (%)"
    colours = _colours(len(pairs))  # distinct however many pairs (the default cycle repeats after 10)
    edps = {pair: [chosen[pair].edp if pair in chosen else math.nan for chosen in per_lec] for pair in pairs}
    accs = {pair: [100 * chosen[pair].accuracy if pair in chosen else math.nan for chosen in per_lec]
            for pair in pairs}
    singles = [p for p in front.points if p.high is None]
    top = max(singles, key=lambda p: p.low) if singles else None

    ncols = min(3, max(1, len(pairs)))
    nrows = max(1, math.ceil(len(pairs) / ncols))
    fig = Figure(figsize=(6 + 2.6 * ncols, max(4.2, 2.0 * nrows + 0.8)), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[6, 2.6 * ncols])
    ax_edp = left.subplots()
    for pair, colour in zip(pairs, colours):
        label = f"efforts {pair[0]}/{pair[1]}"
        ax_edp.plot(x, edps[pair], marker="o", label=label, color=colour)
        last = next((k for k in range(len(x) - 1, -1, -1) if not math.isnan(edps[pair][k])), None)
        if last is not None:  # the label at the line's end: no legend lookup needed
            ax_edp.annotate(f"{pair[0]}/{pair[1]}", (x[last], edps[pair][last]), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize="small", color=colour)
    if top is not None:
        reference = ax_edp.axhline(top.edp, color="0.4", linestyle="--", label=f"effort {top.low} alone")
        ax_edp.legend(handles=[reference], fontsize="small", loc="upper right")
    ax_edp.margins(x=0.12)
    ax_edp.set(xlabel=xlabel, ylabel=EDP_LABEL, title="EDP vs LEC (line label: low/high effort)")

    panels = right.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    for k, ax in enumerate(panels.flat):
        if k >= len(pairs):
            ax.set_visible(False)
            continue
        pair = pairs[k]
        for other in pairs:
            if other != pair:
                ax.plot(x, accs[other], color="0.85", linewidth=1)
        if top is not None:
            ax.axhline(100 * top.accuracy, color="0.4", linestyle="--", linewidth=1)
        ax.plot(x, accs[pair], marker="o", markersize=3, color=colours[k], linewidth=2)
        ax.set_title(f"efforts {pair[0]}/{pair[1]}", fontsize="small", color=colours[k])
        ax.tick_params(labelsize="small")
        ax.grid(alpha=0.3)
    for ax in panels[-1]:
        ax.set_xlabel("LEC (%)", fontsize="small")
    for ax in panels[:, 0]:
        ax.set_ylabel("accuracy (%)", fontsize="small")
    right.suptitle("Accuracy vs LEC, one panel per pair (grey: the other pairs"
                   + (f"; dashed: effort {top.low} alone)" if top is not None else ")"), fontsize="medium")
    return fig


def _split(report):
    """(low, high, recompute) EDP of a PairReport: each part's energy times the pair's delay, so
    the three add up to the pair's EDP."""
    delay = float(report.delay_ms)
    parts = []
    for name in ("low", "high", "recompute"):
        part = getattr(report, name)
        energy = getattr(part, "energy_j", None)
        if energy is not None:
            parts.append(float(energy) * delay)
        else:  # a part with a delay only: its share of the delay
            parts.append(float(part.delay_ms) / delay * float(report.edp))
    return parts


def edp_split(reports, labels=None, xlabel="design") -> Figure:
    """EDP split into low effort, high effort and recomputation, as stacked bars (Fig. 8b).

    ``reports``: a simulator PairReport (``pivot.sim.simulate_pair``), a ``pivot.SearchResult``
    (its ``.report``), or a sequence or {label: report} mapping of them, e.g. one per LEC.
    ``labels`` names the bars of a sequence, ``xlabel`` their axis. Each part is its energy times the pair's delay, so the
    bar's height is the pair's EDP; recomputation is the low-effort work spent on the inputs
    re-run on the high effort (F_H x D_L).
    """
    if isinstance(reports, Mapping):
        labels, items = [str(k) for k in reports], list(reports.values())
    elif isinstance(reports, Sequence) and not isinstance(reports, str):
        items = list(reports)
        labels = [str(v) for v in labels] if labels is not None else [f"#{i + 1}" for i in range(len(items))]
    else:
        items = [reports]
        labels = [str(labels)] if isinstance(labels, str) else (list(labels) if labels is not None else [""])
    if not items:
        raise ValueError("no reports to plot")
    if len(labels) != len(items):
        raise ValueError(f"got {len(items)} reports but {len(labels)} labels")
    items = [getattr(r, "report", None) or r for r in items]
    if any(r is None or not hasattr(r, "recompute") for r in items):
        raise TypeError("edp_split needs PairReports (pivot.sim.simulate_pair) or SearchResults holding one")
    split = np.array([_split(r) for r in items])           # (bars, 3)
    fig = Figure(figsize=(max(4, 1.2 * len(items) + 2), 4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(items))
    bottom = np.zeros(len(items))
    for j, (name, color) in enumerate(zip(("low effort", "high effort", "recomputation"),
                                          ("tab:blue", "tab:orange", "tab:red"))):
        ax.bar(x, split[:, j], bottom=bottom, label=name, color=color)
        bottom += split[:, j]
    ax.set_xticks(x, labels)
    ax.set(xlabel=xlabel, ylabel=EDP_LABEL, title="EDP split: low, high and recomputation")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize="small")
    return fig


def accuracy_edp_front(front, highlight=None) -> Figure:
    """Accuracy against EDP of every design point of ``pivot.pareto``, with its front.

    Pairs at each threshold are grey dots, each effort alone a labelled square, the
    non-dominated front a line. ``highlight``: a ``pivot.SearchResult`` to mark (a star).
    """
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    pairs = [p for p in front.points if p.high is not None]
    singles = [p for p in front.points if p.high is None]
    if pairs:
        ax.scatter([p.edp for p in pairs], [100 * p.accuracy for p in pairs], s=8, color="0.7",
                   label="pair at a threshold")
    if singles:
        ax.scatter([p.edp for p in singles], [100 * p.accuracy for p in singles], marker="s", s=40,
                   color="tab:green", label="one effort alone", zorder=3)
    ax.plot([p.edp for p in front.front], [100 * p.accuracy for p in front.front], marker="o", markersize=3,
            color="tab:blue", label="accuracy-EDP front", zorder=2)
    if highlight is not None:
        ax.scatter([highlight.edp], [100 * highlight.accuracy], marker="*", s=200, color="tab:red", zorder=4,
                   label=f"search: {highlight.low}/{highlight.high}")
    ax.set(xlabel=EDP_LABEL, ylabel="accuracy (%)", title="Accuracy-EDP front")
    ax.legend(fontsize="small", loc="lower right")
    _label_efforts(fig, ax, singles, highlight)
    return fig


# Where an effort's label may go, in points from its square: right-above first, then around it.
_LABEL_OFFSETS = ((5, 4), (5, -11), (-11, 4), (-11, -11), (0, 9), (0, -16), (10, -4), (-16, -4),
                  (12, 12), (-18, 12), (12, -20), (-18, -20))


def _label_efforts(fig, ax, singles, highlight) -> None:
    """Write each effort's number next to its square where it overlaps no other label, no square,
    the search's star and the legend (greedy over _LABEL_OFFSETS; the least overlap if all do)."""
    if not singles:
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # final layout: the data-to-pixel transform is fixed from here
    renderer = fig.canvas.get_renderer()
    to_pixels = ax.transData.transform
    points = fig.dpi / 72

    def around(xy, half):
        x, y = to_pixels(xy)
        return Bbox.from_extents(x - half, y - half, x + half, y + half)

    taken = [around((p.edp, 100 * p.accuracy), 4 * points) for p in singles]
    if highlight is not None:
        taken.append(around((highlight.edp, 100 * highlight.accuracy), 9 * points))
    legend = ax.get_legend()
    if legend is not None:
        taken.append(legend.get_window_extent(renderer))

    def overlap(box):
        return sum(max(0.0, min(box.x1, o.x1) - max(box.x0, o.x0)) * max(0.0, min(box.y1, o.y1) - max(box.y0, o.y0))
                   for o in taken)

    for p in sorted(singles, key=lambda p: (p.edp, p.accuracy)):
        xy = (p.edp, 100 * p.accuracy)
        best = None
        for offset in _LABEL_OFFSETS:
            text = ax.annotate(str(p.low), xy, textcoords="offset points", xytext=offset, fontsize="small")
            box = text.get_window_extent(renderer)
            cost = overlap(box)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        taken.append(best[2])
