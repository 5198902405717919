"""pytest configuration of the benchmarks (``pytest benchmarks/``, with pytest-benchmark).

The default test command (``python3 -m pytest -q``) does not collect this folder (pyproject's
``testpaths = ["tests"]``)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # common.py, bench_*.py

pytest.importorskip("pytest_benchmark", reason="pytest benchmarks/ needs pytest-benchmark (pip install .[bench])")
