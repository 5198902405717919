"""Argument checks shared by the public functions: thread counts, positive integers, image
batches and file paths. Each returns the value in the form its callers use
and raises a TypeError or ValueError that names the argument and what was given."""
from __future__ import annotations

import numbers
import os

import numpy as np

from ._native import _core

MAX_THREADS = _core.MAX_THREADS
"""The most threads a call may ask for: the C base's one cap (csrc/threads.h PIVOT_MAX_THREADS)."""


def is_int(value) -> bool:
    """True for Python and NumPy integers, False for bool (a flag is not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """True for Python and NumPy real numbers, False for bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def threads(value) -> int | None:
    """``threads=``: None (the caller's default) or an int in [1, MAX_THREADS]."""
    if value is None:
        return None
    if not is_int(value):
        raise TypeError(f"threads must be a positive int or None, got {value!r}")
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"threads must be in [1, {MAX_THREADS}], got {value}")
    return int(value)


def positive_int(value, name: str) -> int:
    """A count such as ``batch_size``: an int >= 1 (bool refused)."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def images(value, min_count: int = 1) -> np.ndarray:
    """A batch of inputs with the samples along axis 0, at least ``min_count`` of them (the model
    checks the rest of the shape; see :func:`model_images`)."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        raise ValueError("images must be an array of inputs (B, ...), got a scalar")
    if arr.shape[0] == 0:
        raise ValueError("images is empty: need at least one input")
    if arr.shape[0] < min_count:
        raise ValueError(f"images must hold at least {min_count} inputs, got {arr.shape[0]}")
    return arr


def model_images(value, config) -> np.ndarray:
    """NCHW images for a model of ``config`` (a ``pivot.ViTConfig``), as the C engine reads them:
    float32, C-contiguous and aligned (a copy only where the input is not already so)."""
    arr = np.asarray(value)
    if arr.dtype == bool or arr.dtype.kind not in "fiu":
        raise TypeError(f"images must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 4:
        raise ValueError(f"images must be 4-D (batch, channels, height, width), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("images is an empty batch (shape[0] == 0)")
    if arr.shape[1] != config.in_chans:
        raise ValueError(f"images have {arr.shape[1]} channels, the model expects {config.in_chans} "
                         f"(layout is NCHW: batch, channels, height, width)")
    if arr.shape[2:] != (config.img_size, config.img_size):
        raise ValueError(f"images are {arr.shape[2]}x{arr.shape[3]}, the model expects "
                         f"{config.img_size}x{config.img_size}")
    # a misaligned view (e.g. from a byte buffer) is copied rather than refused
    return np.require(arr, np.float32, ["C_CONTIGUOUS", "ALIGNED"])


def file_path(value, what: str = "path") -> str:
    """A file path (str, bytes or os.PathLike) as a str."""
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a file path (str or os.PathLike), got {type(value).__name__}")
    return os.fsdecode(os.fspath(value))


def existing_file(value, what: str = "file") -> str:
    """:func:`file_path` of a path that exists; FileNotFoundError naming ``what`` otherwise. Whether
    it is a regular file is for the opener to check on the opened descriptor (``pivot.io``)."""
    path = file_path(value, what)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path
