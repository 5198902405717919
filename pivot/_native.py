"""Loads pivot's C core after making its OpenBLAS visible.

The extension links ``libscipy_openblas.so`` from the ``scipy-openblas32`` wheel. Loading that
library first (by absolute path) lets the dynamic loader resolve the extension's dependency by
soname, wherever the wheel is installed; threadpoolctl then sees it as an OpenBLAS pool of its own.
"""
import ctypes
import os

try:
    import scipy_openblas32 as _sob
except ImportError:  # built with PIVOT_BLAS=system
    _sob = None

if _sob is not None:
    ctypes.CDLL(os.path.join(_sob.get_lib_dir(), _sob.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)

try:
    from . import _core  # noqa: E402
except ImportError as exc:
    # Typically: `import pivot` in the root of a clone after `pip install .`; the source tree's
    # pivot/ comes first on sys.path, shadows the installed package, and has no compiled core.
    _here = os.path.dirname(os.path.abspath(__file__))
    raise ImportError(
        f"pivot's compiled core (pivot._core) is missing from {_here} ({exc}). If this is the source "
        f"tree of a clone (run from its root, it shadows an installed pivot), either build it in place "
        f"with `pip install -e .` (or `python setup.py build_ext --inplace`), or run Python from "
        f"another directory so that the installed pivot is imported.", name="pivot._core") from exc

__all__ = ["_core"]
