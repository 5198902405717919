"""CKA matrix heatmap (the paper's Fig. 3a)."""
from __future__ import annotations

import numpy as np


def cka_heatmap(cka, ax=None, *, title: str | None = "CKA between MLP outputs and attention outputs",
                upper_only: bool = False, annotate: bool | None = None, cmap: str = "viridis",
                vmin: float | None = None, vmax: float | None = None):
    """Heatmap of a CKA matrix: row i = MLP output of encoder i, column j = attention output A_j.

    Encoders are numbered from 0, as paths index them and the CLI prints them. NaN cells (e.g. the attention of a skipped
    encoder) are left blank.

    Args:
        cka: (D_mlp, D_attn) matrix from ``pivot.cka_matrix`` / ``pivot.model_cka``.
        ax: matplotlib Axes to draw on (None: a new figure).
        title: axes title (None: no title).
        upper_only: blank the cells with j <= i, which the Path-Score never reads.
        annotate: write each value in its cell (None: only when the matrix is at most 16 x 16).
        cmap: matplotlib colour map.
        vmin, vmax: colour range (None: [0, 1], widened to the data where it lies outside,
            e.g. negative debiased values).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib
    from matplotlib.figure import Figure

    values = np.array(cka, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"cka must be a non-empty 2-D matrix, got shape {values.shape}")
    rows, cols = values.shape
    if upper_only:
        values[np.tril(np.ones((rows, cols), dtype=bool))] = np.nan
    finite = values[np.isfinite(values)]
    if vmin is None:
        vmin = min(0.0, float(finite.min())) if finite.size else 0.0
    if vmax is None:
        vmax = max(1.0, float(finite.max())) if finite.size else 1.0

    if ax is None:
        fig = Figure(figsize=(1.2 + 0.45 * cols, 0.8 + 0.45 * rows))
        ax = fig.subplots()
    else:
        fig = ax.figure
    colours = matplotlib.colormaps[cmap].with_extremes(bad=(0.0, 0.0, 0.0, 0.0))  # NaN cells stay blank
    image = ax.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=vmin, vmax=vmax,
                      origin="upper", interpolation="nearest", aspect="equal")
    ax.set_xticks(range(cols), [str(j) for j in range(cols)])
    ax.set_yticks(range(rows), [str(i) for i in range(rows)])
    ax.set_xlabel("attention output A_j of encoder j")
    ax.set_ylabel("MLP output of encoder i")
    if title:
        ax.set_title(title)
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label("linear CKA")
    if annotate is None:
        annotate = rows <= 16 and cols <= 16
    if annotate:
        middle = (vmin + vmax) / 2
        for i in range(rows):
            for j in range(cols):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if values[i, j] > middle else "white")
    return fig
