"""The notebooks run top to bottom on a model built offline, and their checks pass."""
import os
import pathlib

import pytest


nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow  # a Jupyter kernel per notebook, each running the zoo end to end

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_notebook(name, monkeypatch):
    # The kernel must import the pivot under test (this checkout), wherever pivot is installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    return text, images


def test_edp_vs_lec_notebook(monkeypatch):
    text, images = run_notebook("edp_vs_lec.ipynb", monkeypatch)
    assert "EDP_VS_LEC_OK" in text and "design points" in text
    assert images >= 3


def test_cka_explorer_notebook(monkeypatch):
    text, images = run_notebook("cka_explorer.ipynb", monkeypatch)
    assert "CKA_EXPLORER_OK paths=924" in text
    assert images >= 2
