"""pivot: input-aware attention skipping for Vision Transformer inference (PIVOT, DAC'24).

Importing pivot never imports torch; the PyTorch side lives in ``pivot.torch``. The applications
built on the library (the ``pivot`` command, the demo, the recipes and reports) live in
``pivot.apps``, which importing pivot does not load.
"""
from ._native import _core  # noqa: F401  (loads the C core and its OpenBLAS)

__version__ = "0.1.0"

from .config import ViTConfig, normalize_path  # noqa: E402
from .model import ViT, flops  # noqa: E402
from .io import WeightsFileError  # noqa: E402
from . import sim  # noqa: E402
from . import cka  # noqa: E402  (the module; the function is pivot.cka.cka, alias pivot.linear_cka)
from .cka import (MinibatchCKA, ScoredPath, best_paths, cka_matrix, model_cka, path_score,  # noqa: E402
                  rank_paths)
from .cka import cka as linear_cka  # noqa: E402
from .path_select import SelectedPath, score_paths, select_paths  # noqa: E402
from . import datasets  # noqa: E402
from .inference import entropy, MultiEffort, MultiEffortResult  # noqa: E402
from .effort_search import (search, pareto, SearchResult, SearchCandidate, SearchTargetError,  # noqa: E402
                            ParetoResult, ParetoPoint)
from . import modes  # noqa: E402
from .modes import attention_maps, attention_cka_matrix, reuse_paths, search_reuse, ReuseChoice  # noqa: E402
from . import zoo  # noqa: E402  (the shipped trained models; no torch needed)
from . import quant  # noqa: E402
from .quant import quantize  # noqa: E402  (registers the "int8" precision of pivot.ViT)

__all__ = ["__version__", "ViTConfig", "normalize_path", "ViT", "flops", "WeightsFileError", "sim",
           "cka", "linear_cka", "cka_matrix", "model_cka", "MinibatchCKA", "ScoredPath", "path_score",
           "rank_paths", "best_paths", "select_paths", "score_paths", "SelectedPath", "datasets", "entropy", "MultiEffort", "MultiEffortResult", "search",
           "pareto", "SearchResult", "SearchCandidate", "SearchTargetError", "ParetoResult", "ParetoPoint",
           "modes", "attention_maps", "attention_cka_matrix", "reuse_paths", "search_reuse", "ReuseChoice",
           "zoo", "quant", "quantize"]


def __getattr__(name):
    # Heavy or optional submodules load on first use: `pivot.plot` (matplotlib), `pivot.torch` (torch).
    if name in ("plot", "torch"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'pivot' has no attribute {name!r}")
