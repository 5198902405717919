"""pivot.plot.cka_heatmap and the CKA explorer."""
import sys

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


def _explorer_setup():
    rng = np.random.default_rng(3)
    cka = np.triu(rng.uniform(0.1, 0.9, (6, 6)), 1) + np.eye(6)
    return cka


def test_cka_explorer_widgets_drive_the_choice():
    pytest.importorskip("ipywidgets")
    cka = _explorer_setup()
    ex = pivot.plot.cka_explorer(cka, top_k=3)
    c = ex._controls
    assert ex.widget is not None and ex.effort == 3  # the middle of efforts 1..5
    c["effort"].value = 2                              # the slider
    best = pivot.rank_paths(cka, 2, top_k=3)
    assert ex.effort == 2 and ex.path == best[0].path and [sp.path for sp in ex.ranked] == [sp.path for sp in best]
    c["paths"].value = 2                               # the third listed path
    assert ex.path == best[2].path and f"Path-Score {best[2].score:.3f}" in c["info"].value
    c["cells"][(0, 4)].click()                         # a click on a cell reads it out
    assert ex.cell == (0, 4) and f"CKA(MLP_0, A_4) = {cka[0, 4]:.4f}" in c["info"].value
    assert c["cells"][(1, 2)].tooltip == f"(i=1, j=2): CKA(MLP_1, A_2) = {cka[1, 2]:.4f}"
    # The chosen path's cells are outlined, and they are exactly what its Path-Score sums.
    outlined = {cell for cell, button in c["cells"].items() if button.layout.border.startswith("3px solid red")}
    assert outlined == set(pivot.plot.path_cells(ex.path))
    assert sum(cka[i, j] for i, j in outlined) == pytest.approx(pivot.path_score(cka, ex.path))


def test_cka_explorer_efforts_accuracy_and_static_fallback(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # as if ipywidgets were not installed
    config = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=16, depth=4, num_heads=2)
    base = pivot.ViT.random(config, seed=0)
    images = np.random.default_rng(0).standard_normal((12, 1, 8, 8)).astype(np.float32)
    labels = np.argmax(base(images), axis=1)
    efforts = {2: base.with_path([1, 0, 1, 0]), 4: base}
    ex = pivot.plot.cka_explorer(base, efforts, images=images, labels=labels)
    assert capsys.readouterr().out.startswith("ipywidgets is not installed: showing the static figures")
    assert ex.widget is None and ex.choices == [2, 4] and ex.effort == 4
    ex.select_effort(2)
    assert ex.path == (1, 0, 1, 0) and ex.ranked[0].path == (1, 0, 1, 0)  # the effort model's own path first
    accuracy = float(np.mean(np.argmax(efforts[2](images), 1) == labels))
    assert f"accuracy of efforts[2] (path 1010) on 12 images: {100 * accuracy:.2f}%" in ex.text
    fig = ex.draw()
    assert isinstance(fig, matplotlib.figure.Figure) and "Path-Score" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="effort must be one of"):
        ex.select_effort(3)
    with pytest.raises(ValueError, match="outside"):
        ex.select_cell(4, 0)
    with pytest.raises(ValueError, match="images="):
        pivot.plot.cka_explorer(base)
