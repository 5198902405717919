"""Fashion-MNIST, read from its IDX files, a small sample shipped inside the package, and a
user's own images (:func:`load_images`: a folder of image files, a NumPy array, an IDX file).

The full data set comes from Debian's ``dataset-fashion-mnist`` package (``apt-get install
dataset-fashion-mnist`` puts the gzipped IDX files in /usr/share/datasets/fashion-mnist) or
from any folder holding the four IDX files, gzipped or not. Nothing is downloaded.

Fashion-MNIST: Xiao, Rasul and Vollgraf (2017), Zalando Research, MIT licence.
"""
from __future__ import annotations

import dataclasses
import gzip
import math
import os
import pathlib
import zlib

import numpy as np

from .io import open_regular_file

__all__ = ["fashion_mnist", "fashion_mnist_sample", "normalize", "load_images", "load_labels", "ImageSet",
           "path_selection_results",
           "DatasetError", "CLASSES", "DEFAULT_ROOT", "MEAN", "STD", "IMAGE_SUFFIXES"]

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
_PATH_SELECTION = pathlib.Path(__file__).with_name("data") / "path_selection.json"


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


def path_selection_results() -> dict:
    """The path-selection experiment's results shipped with pivot (docs/path-selection.md): each
    rule's score of every fine-tuned path against the path's test accuracy, the Spearman
    correlations, the zoo card's reference rows. Written by ``python -m
    pivot.apps.recipes.path_selection --results``; ``pivot.plot.path_selection`` draws it."""
    import json
    return json.loads(_PATH_SELECTION.read_text())


# ----------------------------------------------------------------------------- a user's own images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
"""File name endings :func:`load_images` reads as images in a folder (case-insensitive)."""


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """What :func:`load_images` read: ``images`` float32 (N, in_chans, img_size, img_size),
    normalized as the model's config says; ``labels`` int64 (N,) or None; ``classes`` the
    subfolder names when the labels came from a folder's class subfolders, else None;
    ``files`` the image files in the order of ``images`` (empty for an array or IDX file)."""
    images: np.ndarray
    labels: np.ndarray | None
    classes: tuple | None
    files: tuple


def _image_files(folder: pathlib.Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_image_files(files, config) -> np.ndarray:
    """uint8 (N, in_chans, img_size, img_size): each file decoded with Pillow, converted to grey
    (1 channel) or RGB (3 channels) and resized (bilinear) to the model's input size."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DatasetError("reading image files needs Pillow (python3 -m pip install pillow)") from None
    mode = {1: "L", 3: "RGB"}.get(config.in_chans)
    if mode is None:
        raise DatasetError(f"image files give 1 (grey) or 3 (RGB) channels; the model takes {config.in_chans}: "
                           f"pass a .npy array of shape (N, {config.in_chans}, H, W) instead")
    size = (config.img_size, config.img_size)
    out = np.empty((len(files), config.in_chans, *size), dtype=np.uint8)
    for n, path in enumerate(files):
        try:
            with Image.open(path) as image:
                image = image.convert(mode)
                if image.size != size:
                    image = image.resize(size, Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None
        out[n] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return out


def _pixels_to_model(pixels: np.ndarray, config, source) -> np.ndarray:
    """uint8 pixels (N, H, W), (N, C, H, W) or (N, H, W, C) -> uint8 (N, in_chans, img_size, img_size),
    resized where the size differs."""
    c = config.in_chans
    if pixels.ndim == 3:
        if c != 1:
            raise DatasetError(f"{source}: grey images of shape {pixels.shape} but the model takes {c} channels")
        pixels = pixels[:, None]
    elif pixels.ndim == 4 and pixels.shape[1] != c and pixels.shape[3] == c:
        pixels = pixels.transpose(0, 3, 1, 2)  # channels last
    if pixels.ndim != 4 or pixels.shape[1] != c:
        raise DatasetError(f"{source}: images of shape {pixels.shape}; expected (N, {c}, H, W), (N, H, W, {c})"
                           + (" or (N, H, W)" if c == 1 else ""))
    if pixels.shape[2:] != (config.img_size, config.img_size):
        from PIL import Image
        resized = np.empty(pixels.shape[:2] + (config.img_size,) * 2, dtype=np.uint8)
        for n in range(pixels.shape[0]):
            for ch in range(c):
                resized[n, ch] = np.asarray(Image.fromarray(pixels[n, ch]).resize(
                    (config.img_size, config.img_size), Image.Resampling.BILINEAR))
        pixels = resized
    return np.ascontiguousarray(pixels)


def _read_array(path: pathlib.Path):
    """(images, labels or None) of a .npy or .npz file (an .npz's ``images`` array, or its only one,
    and its ``labels`` if any)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable NumPy file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        names = list(loaded.files)
        key = "images" if "images" in names else (names[0] if len(names) == 1 else None)
        if key is None:
            raise DatasetError(f"{path}: an .npz needs an 'images' array (or exactly one array); it holds {names}")
        return loaded[key], (loaded["labels"] if "labels" in names else None)


def load_labels(path, count: int | None = None) -> np.ndarray:
    """Class indices from a ``.npy`` array, a text file (integers separated by spaces, commas or
    new lines) or an IDX label file; int64 (N,). ``count``: the number of images they must match."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such labels file")
    if path.suffix.lower() in (".npy", ".npz"):
        labels = _read_array(path)[0]
    elif path.suffix.lower() in (".txt", ".csv"):
        text = path.read_text(errors="replace").replace(",", " ").split()
        try:
            labels = np.array([int(v) for v in text], dtype=np.int64)
        except ValueError:
            raise DatasetError(f"{path}: labels must be integers (class indices)") from None
    else:
        labels = read_idx(path, 1)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise DatasetError(f"{path}: labels must be a 1-D array of class indices >= 0, got "
                           f"{labels.dtype} of shape {labels.shape}")
    if count is not None and labels.shape[0] != count:
        raise DatasetError(f"{path}: {labels.shape[0]} labels for {count} images")
    return labels.astype(np.int64)


def load_images(path, config, labels=None) -> ImageSet:
    """A user's own images, resized and normalized as a model's ``config`` (``pivot.ViTConfig``)
    says: ``img_size``, ``in_chans`` and ``input_normalization`` (``(pixel / 255 - mean) / std``).

    ``path`` is one of:

    - a folder of image files (PNG, JPEG, ...; read with Pillow, converted to grey or RGB as
      ``in_chans`` says, resized bilinearly), in sorted name order; or a folder of class
      subfolders whose names are the labels: ``0/``, ``1/``... are those class indices, other
      names (``cat/``, ``dog/``...) are numbered 0, 1, ... in sorted order;
    - a ``.npy`` / ``.npz`` array: uint8 pixels (N, H, W), (N, C, H, W) or (N, H, W, C) are
      resized and normalized; float arrays are the model's input already, (N, in_chans, img_size,
      img_size); an ``.npz`` gives its ``images`` array and its ``labels`` if it has them;
    - an IDX file of uint8 images (N, H, W), gzipped or not (Fashion-MNIST's format).

    ``labels``: a labels file for :func:`load_labels` (overrides labels found with the images).

    Returns an :class:`ImageSet`. Raises :class:`DatasetError` (a ``ValueError``) naming the
    problem: no such file or folder, no images in it, an unreadable image, a label count that
    does not match.
    """
    path = pathlib.Path(path)
    found_labels, classes, files = None, None, ()
    if path.is_dir():
        files = _image_files(path)
        if not files:
            subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
            per_class = [(folder.name, _image_files(folder)) for folder in subfolders]
            per_class = [(name, f) for name, f in per_class if f]
            if not per_class:
                raise DatasetError(f"{path}: no images in the folder or its subfolders (looked for "
                                   f"{', '.join(IMAGE_SUFFIXES)})")
            # Subfolders named 0, 1, 2... are those class indices; other names are numbered in sorted order.
            numeric = all(name.isdigit() for name, _ in per_class)
            if numeric:
                per_class.sort(key=lambda item: int(item[0]))
            index = [int(name) if numeric else k for k, (name, _) in enumerate(per_class)]
            classes = tuple(name for name, _ in per_class)
            files = [f for _, group in per_class for f in group]
            found_labels = np.concatenate([np.full(len(group), k, dtype=np.int64)
                                           for k, (_, group) in zip(index, per_class)])
        pixels = _read_image_files(files, config)
        files = tuple(str(f) for f in files)
    elif path.is_file():
        if path.suffix.lower() in (".npy", ".npz"):
            array, found_labels = _read_array(path)
        else:
            array = read_idx(path, 3)
        array = np.asarray(array)
        if array.ndim == 0 or array.shape[0] == 0:
            raise DatasetError(f"{path}: no images (array of shape {array.shape})")
        if array.dtype == np.uint8:
            pixels = _pixels_to_model(array, config, path)
        elif array.dtype.kind == "f":
            want = (config.in_chans, config.img_size, config.img_size)
            if array.ndim != 4 or array.shape[1:] != want:
                raise DatasetError(f"{path}: float images must be the model's normalized input, (N, {want[0]}, "
                                   f"{want[1]}, {want[2]}); got {array.shape} (uint8 pixels are resized and normalized)")
            pixels = None
        else:
            raise DatasetError(f"{path}: images must be uint8 pixels or float32 model inputs, got {array.dtype}")
        if found_labels is not None:
            found_labels = np.asarray(found_labels)
            if found_labels.ndim != 1 or found_labels.dtype.kind not in "iu":
                raise DatasetError(f"{path}: its 'labels' must be a 1-D array of class indices")
            if found_labels.shape[0] != array.shape[0]:
                raise DatasetError(f"{path}: {found_labels.shape[0]} labels for {array.shape[0]} images")
            found_labels = found_labels.astype(np.int64)
    else:
        raise DatasetError(f"{path}: no such file or folder")
    if pixels is not None:
        from .model import prepare_images
        images = np.ascontiguousarray(prepare_images(config, pixels), dtype=np.float32)
    else:
        images = np.ascontiguousarray(array, dtype=np.float32)
    if labels is not None:
        found_labels, classes = load_labels(labels, images.shape[0]), None
    return ImageSet(images=images, labels=found_labels, classes=classes, files=files)
