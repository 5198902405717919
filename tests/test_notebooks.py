"""The notebooks run top to bottom on the shipped zoo from a working directory outside the
repository, show each figure once, and their checks pass; the CKA explorer is driven from code."""
import os
import pathlib

import pytest


nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow  # a Jupyter kernel per notebook, each running the zoo end to end

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_notebook(name, monkeypatch, cwd):
    # The kernel must import the pivot under test (this checkout), wherever pivot is installed;
    # it starts in ``cwd``, not in notebooks/, so no cell may read a file by a relative path.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    widgets = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    return text, images, widgets


def test_edp_vs_lec_notebook(monkeypatch, tmp_path):
    text, images, _ = run_notebook("edp_vs_lec.ipynb", monkeypatch, tmp_path)
    assert "EDP_VS_LEC_OK" in text and "design points" in text and "paths chosen by output_kl" in text
    assert images == 3  # EDP vs LEC, the accuracy-EDP front, the EDP split: each once


def test_cka_explorer_notebook(monkeypatch, tmp_path):
    text, images, widgets = run_notebook("cka_explorer.ipynb", monkeypatch, tmp_path)
    assert "CKA_EXPLORER_OK paths=924" in text
    # Two heatmaps, chosen vs random paths, the path-selection rules: each once (plus the
    # explorer's static heatmap where ipywidgets is absent).
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        assert images == 5 and "ipywidgets is not installed: showing the static figures" in text
    else:
        assert images == 4 and widgets == 1
    # The explorer, driven from code: effort 4's listed paths (its fine-tuned path first), the
    # chosen path's Path-Score, that effort's accuracy, the picked cell's pair and value.
    import pivot
    cka = pivot.zoo.cka(pivot.zoo.ZOO_MODEL)
    own = pivot.zoo.card(pivot.zoo.ZOO_MODEL)["paths"]["4"]
    best = pivot.rank_paths(cka, 4, top_k=1)[0]
    bits = "".join(map(str, best.path))
    assert f"0. {own}" in text and f"1. {bits}  Path-Score {best.score:.3f}" in text
    assert f"effort 4: path {bits} (ranked by Path-Score), Path-Score {best.score:.3f}" in text
    assert f"accuracy of efforts[4] (path {own}) on 256 images:" in text
    assert f"cell (i=1, j=2): CKA(MLP_1, A_2) = {cka[1, 2]:.4f}" in text
