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

from . import _core  # noqa: E402

__all__ = ["_core"]
