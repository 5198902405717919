"""pivot.plot.cka_heatmap."""
import numpy as np
import pytest

import matplotlib
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import pivot  # noqa: E402


def test_cka_heatmap_labels_colour_bar_and_blank_nan_cells(rng):
    cka = rng.random((12, 12))
    cka[:, 4] = np.nan  # attention 5 skipped
    fig = pivot.plot.cka_heatmap(cka)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "attention output A_j of encoder j"
    assert ax.get_ylabel() == "MLP output of encoder i"
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in range(12)]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(k) for k in range(12)]
    assert fig.axes[1].get_ylabel() == "linear CKA"
    data = ax.images[0].get_array()
    assert data.mask[:, 4].all() and not data.mask[:, 3].any()
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 12 * 11 and f"{cka[0, 0]:.2f}" in texts
    plt.close(fig)


def test_cka_heatmap_on_given_axes_upper_only_and_negative_values(rng):
    fig, ax = plt.subplots()
    cka = rng.random((5, 5)) - 0.3
    out = pivot.plot.cka_heatmap(cka, ax=ax, upper_only=True, annotate=False, title=None)
    assert out is fig
    data = ax.images[0].get_array()
    assert data.mask[np.tril_indices(5)].all() and not data.mask[np.triu_indices(5, 1)].any()
    assert ax.images[0].get_clim()[0] < 0
    assert not ax.texts
    plt.close(fig)
    with pytest.raises(ValueError, match="2-D"):
        pivot.plot.cka_heatmap(np.ones(3))
