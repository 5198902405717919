"""pivot: input-aware attention skipping for Vision Transformer inference (PIVOT, DAC'24).

Importing pivot never imports torch; the PyTorch side lives in ``pivot.torch``.
"""
from ._native import _core  # noqa: F401  (loads the C core and its OpenBLAS)

__version__ = "0.1.0"

__all__ = ["__version__"]

# --- engine
from .config import ViTConfig, normalize_path  # noqa: E402
from .model import ViT, flops  # noqa: E402

__all__ += ["ViTConfig", "normalize_path", "ViT", "flops"]
# --- end engine

# --- io
from .io import WeightsFileError  # noqa: E402

__all__ += ["WeightsFileError"]
# --- end io

# --- simulator
from . import sim  # noqa: E402

__all__ += ["sim"]
# --- end simulator

# --- cka
from .cka import (MinibatchCKA, ScoredPath, best_paths, cka, cka_matrix, model_cka,  # noqa: E402
                  path_score, rank_paths)

__all__ += ["cka", "cka_matrix", "model_cka", "MinibatchCKA", "ScoredPath", "path_score", "rank_paths",
            "best_paths"]
# --- end cka

from .path_select import SelectedPath, score_paths, select_paths  # noqa: E402

__all__ += ["select_paths", "score_paths", "SelectedPath"]

# --- data
from . import datasets  # noqa: E402

__all__ += ["datasets"]
# --- end data

# --- search
from .inference import entropy, MultiEffort, MultiEffortResult  # noqa: E402
from .effort_search import (search, pareto, SearchResult, SearchCandidate, SearchTargetError,  # noqa: E402
                            ParetoResult, ParetoPoint)
from . import demo  # noqa: E402  (offline stand-in efforts for the demo, notebooks and README)

__all__ += ["entropy", "MultiEffort", "MultiEffortResult", "search", "pareto", "SearchResult", "SearchCandidate",
            "SearchTargetError", "ParetoResult", "ParetoPoint", "demo"]
# --- end search

# --- modes
from . import modes  # noqa: E402
from .modes import attention_maps, attention_cka_matrix, reuse_paths, search_reuse, ReuseChoice  # noqa: E402

__all__ += ["modes", "attention_maps", "attention_cka_matrix", "reuse_paths", "search_reuse", "ReuseChoice"]
# --- end modes

# --- zoo
from . import zoo  # noqa: E402  (the shipped trained models; no torch needed)

__all__ += ["zoo"]
# --- end zoo

# --- int8
from . import quant  # noqa: E402
from .quant import QuantizedViT, quantize  # noqa: E402

__all__ += ["quant", "quantize", "QuantizedViT"]
# --- end int8


def __getattr__(name):
    # Heavy or optional submodules load on first use: `pivot.plot` (matplotlib), `pivot.torch` (torch).
    if name in ("plot", "torch"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'pivot' has no attribute {name!r}")
