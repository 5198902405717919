import numpy as np
import pytest

import pivot
import pivot.effort_search as effort_search
from _search_fakes import fake_simulate, fake_simulate_pair, make_efforts

import matplotlib


@pytest.fixture
def results(monkeypatch):
    monkeypatch.setattr(effort_search, "_simulate_pair", lambda low, high, f, hw: fake_simulate_pair(low, high, f))
    monkeypatch.setattr(effort_search, "_simulate", lambda model, hw: fake_simulate(model))
    models, labels = make_efforts(60, 10, [2, 4, 6], depth=6, seed=0)
    front = pivot.pareto(models, np.arange(60), labels, progress=False)
    found = pivot.search(models, np.arange(60), labels, 28.0, progress=False)
    return front, found


def _texts(ax):
    return ax.get_xlabel(), ax.get_ylabel()


def test_edp_vs_lec(results):
    front, _ = results
    fig = pivot.plot.edp_vs_lec(front)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax_edp, *panels = [ax for ax in fig.axes if ax.get_visible()]
    pairs = front.pairs()
    assert "J x ms" in ax_edp.get_ylabel() and "%" in ax_edp.get_xlabel()
    # Every EDP line is labelled at its end; one accuracy panel per pair, the pair's own line last (on top).
    assert {t.get_text() for t in ax_edp.texts} == {f"{lo}/{hi}" for lo, hi in pairs}
    assert "effort 6 alone" in [t.get_text() for t in ax_edp.get_legend().get_texts()]
    assert len(panels) == len(pairs) and "%" in panels[0].get_ylabel()
    line = next(line for line in ax_edp.get_lines() if line.get_label() == "efforts 2/6")
    chosen = front.at_lec(0.8)[(2, 6)]
    assert line.get_ydata()[2] == pytest.approx(chosen.edp)
    for pair, ax in zip(pairs, panels):
        assert ax.get_title() == f"efforts {pair[0]}/{pair[1]}"
        accuracy = [100 * front.at_lec(lec)[pair].accuracy for lec in (0.6, 0.7, 0.8, 0.9, 1.0)]
        np.testing.assert_allclose(ax.get_lines()[-1].get_ydata(), accuracy)
    fig = pivot.plot.edp_vs_lec(front, lecs=[0.5, 1.0], pairs=[(2, 4)])
    assert len([ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("efforts")]) == 1
    with pytest.raises(ValueError, match="not in the result"):
        pivot.plot.edp_vs_lec(front, pairs=[(1, 9)])


def test_edp_split_adds_up(results):
    _, found = results
    fig = pivot.plot.edp_split(found)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "EDP (J x ms)"
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == pytest.approx(found.edp)
    reports = {f"LEC {lec}": fake_simulate_pair(*_pair_models(), 1 - lec) for lec in (0.6, 0.8, 1.0)}
    fig = pivot.plot.edp_split(reports)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(reports)
    assert len(fig.axes[0].patches) == 9
    with pytest.raises(ValueError, match="2 reports but 1 labels"):
        pivot.plot.edp_split([found, found], labels=["a"])
    with pytest.raises(TypeError, match="PairReports"):
        pivot.plot.edp_split([object()])


def _pair_models():
    models, _ = make_efforts(4, 3, [1, 2], depth=2)
    return models[1], models[2]


def test_accuracy_edp_front(results, tmp_path):
    front, found = results
    fig = pivot.plot.accuracy_edp_front(front, highlight=found)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "EDP (J x ms)" and ax.get_ylabel() == "accuracy (%)"
    front_line = next(ln for ln in ax.get_lines() if ln.get_label() == "accuracy-EDP front")
    assert len(front_line.get_xdata()) == len(front.front)
    fig.savefig(tmp_path / "front.png")
    assert (tmp_path / "front.png").stat().st_size > 1000


def test_plot_import_is_lazy():
    import subprocess
    import sys
    code = "import sys, pivot; assert 'matplotlib' not in sys.modules; pivot.plot.edp_split; assert 'matplotlib' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
