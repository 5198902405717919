"""Fashion-MNIST, read from its IDX files, plus a small sample shipped inside the package.

The full data set comes from Debian's ``dataset-fashion-mnist`` package (``apt-get install
dataset-fashion-mnist`` puts the gzipped IDX files in /usr/share/datasets/fashion-mnist) or
from any folder holding the four IDX files, gzipped or not. Nothing is downloaded.

Fashion-MNIST: Xiao, Rasul and Vollgraf (2017), Zalando Research, MIT licence.
"""
from __future__ import annotations

import gzip
import math
import os
import pathlib
import zlib

import numpy as np

from .io import open_regular_file

__all__ = ["fashion_mnist", "fashion_mnist_sample", "normalize", "DatasetError", "CLASSES",
           "DEFAULT_ROOT", "MEAN", "STD"]

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
# Pixel statistics of the Fashion-MNIST training set (pixels scaled to [0, 1]); the zoo models
# are trained on images normalized with these.
MEAN = 0.2860
STD = 0.3530
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
_SAMPLE = pathlib.Path(__file__).with_name("data") / "fashion_mnist_test_sample.npz"


class DatasetError(ValueError):
    """A data file is missing, truncated or not what it claims to be."""


def normalize(pixels: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) or (N, 1, 28, 28) -> float32 (N, 1, 28, 28), as the zoo models expect."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels[:, None]
    if pixels.ndim != 4 or pixels.shape[1] != 1:
        raise ValueError(f"expected images of shape (N, 28, 28) or (N, 1, 28, 28), got {pixels.shape}")
    return ((pixels.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)


# IDX files are read through one stream (gzipped or not): the header first, then exactly the
# bytes it declares, so a lying header or a gzip bomb is refused before anything large is
# allocated. No IDX file pivot reads comes near this cap (Fashion-MNIST train images: 47 MB).
MAX_IDX_BYTES = 1 << 31


def _open_stream(path: pathlib.Path):
    """A binary stream of the file's content: decompressed on the fly when it is gzipped. Anything
    but a regular file (a FIFO, a device, a directory) is refused before a byte is read."""
    f = open_regular_file(path, DatasetError)
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    f.seek(0)
    return f, f


def _read_exactly(stream, count: int, path, what: str) -> bytes:
    try:
        data = stream.read(count)
    except (OSError, EOFError, zlib.error) as exc:  # bad gzip magic/CRC/length, truncated, corrupt deflate
        raise DatasetError(f"{path}: corrupt or truncated gzip data while reading {what} ({exc})") from None
    return data


def read_idx(path, expected_ndim: int) -> np.ndarray:
    """Reads an unsigned-byte IDX file (gzipped or not), checking its magic number and size.

    Raises :class:`DatasetError` for a bad magic number, a wrong number of dimensions, a size
    above ``MAX_IDX_BYTES``, truncated or padded data and corrupt gzip streams; the declared
    size is checked before the data is read (a gzip bomb is never decompressed)."""
    path = pathlib.Path(path)
    stream, raw = _open_stream(path)
    try:
        magic = _read_exactly(stream, 4, path, "the magic number")
        if len(magic) < 4:
            raise DatasetError(f"{path}: too short to be an IDX file ({len(magic)} bytes)")
        zero, dtype_code, ndim = int.from_bytes(magic[:2], "big"), magic[2], magic[3]
        if zero != 0 or dtype_code != 0x08:
            raise DatasetError(f"{path}: bad IDX magic number {magic.hex()} (expected 0000 08 0{expected_ndim}: unsigned bytes)")
        if ndim != expected_ndim:
            raise DatasetError(f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim}")
        dims = _read_exactly(stream, 4 * ndim, path, "the header")
        if len(dims) < 4 * ndim:
            raise DatasetError(f"{path}: truncated IDX header")
        shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
        count = math.prod(shape)  # Python ints: no overflow
        if count > MAX_IDX_BYTES:
            raise DatasetError(f"{path}: IDX header declares shape {shape} ({count} bytes), more than the "
                               f"{MAX_IDX_BYTES}-byte limit")
        # One byte more than declared: a padded file is refused without reading the rest.
        data = _read_exactly(stream, count + 1, path, "the data")
        if len(data) != count:
            held = f"{len(data)}" if len(data) <= count else "more than that"
            raise DatasetError(f"{path}: IDX header declares shape {shape} ({count} bytes) but the file holds "
                               f"{held} bytes of data (truncated or padded)")
    finally:
        stream.close()
        raw.close()
    return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()


def _find(root: pathlib.Path, stem: str) -> pathlib.Path:
    for name in (stem, stem + ".gz"):
        if os.path.lexists(root / name):  # read_idx refuses it if it is not a regular file
            return root / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {root}. Install Debian's package "
        f"(`apt-get install dataset-fashion-mnist`, which puts it in {DEFAULT_ROOT}) or pass "
        f"root= a folder holding the IDX files; `pivot.datasets.fashion_mnist_sample()` needs no files.")


def fashion_mnist(split: str = "train", root=None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images and labels.

    Returns ``(images, labels)``: float32 (N, 1, 28, 28) normalized with ``MEAN``/``STD``
    (see :func:`normalize`) and int64 (N,). ``split`` is "train" (60,000) or "test" (10,000).
    ``root`` defaults to $PIVOT_FASHION_MNIST or /usr/share/datasets/fashion-mnist.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = pathlib.Path(root or os.environ.get("PIVOT_FASHION_MNIST") or DEFAULT_ROOT)
    image_stem, label_stem, count = _FILES[split]
    images = read_idx(_find(root, image_stem), 3)
    labels = read_idx(_find(root, label_stem), 1)
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{split} images have shape {images.shape[1:]}, expected (28, 28)")
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{split}: {images.shape[0]} images but {labels.shape[0]} labels")
    if images.shape[0] != count:
        raise DatasetError(f"{split}: expected {count} images, found {images.shape[0]}")
    if labels.max(initial=0) >= len(CLASSES):
        raise DatasetError(f"{split}: label {int(labels.max())} out of range 0..{len(CLASSES) - 1}")
    return normalize(images), labels.astype(np.int64)


def fashion_mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """A stratified sample of 1,000 test images (100 per class) shipped with pivot.

    Same format as :func:`fashion_mnist`; needs no data files, so demos, notebooks and tests run offline.
    """
    with np.load(_SAMPLE, allow_pickle=False) as f:
        return normalize(f["images"]), f["labels"].astype(np.int64)
