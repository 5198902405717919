"""Weight files: a strict safetensors reader and writer, ``.npz`` and ``.pth`` loading, and the
pivot metadata stored in them. Which model a state dict describes (key names, config
inference) is :mod:`pivot.checkpoints`' job.

Weight files come from strangers, so every reader validates the whole file before returning
anything, refuses bad input with :class:`WeightsFileError` naming the problem, and never
allocates more than the file can back. Everything comes back as C-contiguous float32 arrays
that own their memory (no file handle or mapping stays open).

Importing this module never imports torch; ``.pth`` files and dicts of torch tensors use torch
only when it is installed (for dicts: only when the caller already imported it).
"""
from __future__ import annotations

import json
import math
import os
import stat
import sys
import zipfile
from collections import Counter
from collections.abc import Mapping

import numpy as np

from . import _validate
from .config import ViTConfig

__all__ = ["WeightsFileError", "load_state_dict", "save_safetensors", "config_from_metadata",
           "path_from_metadata", "open_regular_file"]


class WeightsFileError(ValueError):
    """A weight file (or weight dict) is malformed, truncated or holds unsupported data."""


def open_regular_file(path, error=WeightsFileError):
    """``path`` opened for binary reading, refusing (with ``error``) anything but a regular file.

    The file is opened without blocking (a FIFO with no writer would hang a plain ``open``) and
    checked on the opened descriptor, so what is read is what was checked: a FIFO, a device such
    as /dev/zero (endless) or a directory is refused before a byte is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise error(f"{path}: is {kind}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# ---------------------------------------------------------------------------------------------
# safetensors

# Header lengths above this are refused outright (the safetensors package uses the same limit).
_MAX_HEADER_BYTES = 100_000_000

# Every dtype name the safetensors format defines, with its size in bits; only the float ones
# in _DECODABLE can be loaded, the rest are refused by name.
_SAFETENSORS_DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "U16": 16, "I16": 16, "F16": 16, "BF16": 16,
    "U32": 32, "I32": 32, "F32": 32,
    "U64": 64, "I64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
_DECODABLE = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}
_COUNTER_DTYPES = {"I64", "I32", "U64", "U32"}


def _is_batchnorm_counter(name) -> bool:
    """BatchNorm's ``num_batches_tracked``: an integer training counter, not a weight. Every reader
    drops it (LV-ViT checkpoints hold three, one per stem BatchNorm)."""
    return isinstance(name, str) and (name == "num_batches_tracked" or name.endswith(".num_batches_tracked"))
_TENSOR_FIELDS = ("dtype", "shape", "data_offsets")


def _read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse and validate a whole safetensors file, then decode its tensors to float32."""
    entries, metadata, buffer = _read_safetensors_buffer(path, _DECODABLE)
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        if _is_batchnorm_counter(name):
            continue
        raw = np.frombuffer(buffer, dtype=_DECODABLE[dtype], count=math.prod(shape), offset=begin)
        try:
            tensors[name] = _decode(raw, dtype).reshape(shape)
        except WeightsFileError as e:  # name the file and tensor
            raise WeightsFileError(f"{path}: tensor {name!r}: {e}") from None
    return tensors, metadata


def read_safetensors_as_stored(path, dtypes: Mapping[str, str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file with each tensor in its stored dtype, for
    formats other than float weights (``pivot.quant``'s int8 files). ``dtypes`` maps each accepted
    safetensors dtype name to its little-endian NumPy dtype (e.g. ``{"I8": "i1", "F32": "<f4"}``);
    any other dtype, and any malformed file, raises :class:`WeightsFileError` with the same checks
    as :func:`load_state_dict`. The arrays are read-only views of one buffer read from the file."""
    path = _validate.existing_file(path, "weight file")
    entries, metadata, buffer = _read_safetensors_buffer(path, dtypes)
    tensors = {name: np.frombuffer(buffer, dtype=dtypes[dtype], count=math.prod(shape), offset=begin).reshape(shape)
               for name, (dtype, shape, begin, _) in entries.items() if dtype in dtypes}
    return tensors, metadata


def _read_safetensors_buffer(path: str, dtypes: Mapping[str, str]):
    """Header entries, metadata and data buffer of a safetensors file whose tensors are all of
    ``dtypes`` (BatchNorm counters aside), every offset checked before the data is read."""
    with open_regular_file(path) as f:
        file_size = os.fstat(f.fileno()).st_size
        if file_size < 8:
            raise WeightsFileError(f"{path}: file is {file_size} bytes, shorter than the 8-byte safetensors header length")
        header_len = int.from_bytes(f.read(8), "little")
        if header_len > _MAX_HEADER_BYTES or header_len > file_size - 8:
            # Usually another kind of file renamed: its first 8 bytes make no sensible length.
            raise WeightsFileError(f"{path}: not a safetensors file (it must start with an 8-byte header length; "
                                   f"here that reads {header_len}, "
                                   + (f"more than the {_MAX_HEADER_BYTES}-byte limit)" if header_len > _MAX_HEADER_BYTES
                                      else f"larger than the file ({file_size - 8} bytes after the length field))"))
        header_bytes = f.read(header_len)
        if len(header_bytes) != header_len:
            raise WeightsFileError(f"{path}: file shrank while reading the header")
        entries, metadata = _parse_safetensors_header(path, header_bytes, dtypes)
        buffer_len = file_size - 8 - header_len
        _check_offsets(path, entries, buffer_len)
        # Only now that every offset is known to lie inside the file: one read of the data.
        buffer = f.read(buffer_len)
        if len(buffer) != buffer_len:
            raise WeightsFileError(f"{path}: file shrank while reading the tensor data")
    return entries, metadata, buffer


def _parse_safetensors_header(path: str, header_bytes: bytes, dtypes: Mapping[str, str]):
    """Validated header entries ``name -> (dtype, shape, begin, end)`` and the metadata dict."""
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WeightsFileError(f"{path}: header is not valid UTF-8 ({e})") from None
    if not text.startswith("{"):
        raise WeightsFileError(f"{path}: header is not a JSON object (it must start with '{{')")

    def no_duplicates(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise WeightsFileError(f"{path}: duplicate name {key!r} in the header")
            seen[key] = value
        return seen

    def no_constants(name):
        raise WeightsFileError(f"{path}: header holds the non-JSON constant {name}")

    try:
        header = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except WeightsFileError:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, over-long ints, deep nesting
        raise WeightsFileError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise WeightsFileError(f"{path}: header is not a JSON object")

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise WeightsFileError(f"{path}: __metadata__ must be an object of strings, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise WeightsFileError(f"{path}: __metadata__ value for {key!r} is {type(value).__name__}, not a string")

    entries = {}
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict):
            raise WeightsFileError(f"{where}: entry must be an object, got {type(info).__name__}")
        missing = [field for field in _TENSOR_FIELDS if field not in info]
        if missing:
            raise WeightsFileError(f"{where}: missing field(s) {', '.join(missing)}")
        extra = sorted(set(info) - set(_TENSOR_FIELDS))
        if extra:
            raise WeightsFileError(f"{where}: unknown field(s) {', '.join(extra)}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _SAFETENSORS_DTYPE_BITS:
            raise WeightsFileError(f"{where}: unknown dtype {dtype!r}")
        if dtype not in dtypes and not (_is_batchnorm_counter(name) and dtype in _COUNTER_DTYPES):
            *rest, last = dtypes
            accepted = f"{', '.join(rest)} and {last}" if rest else last
            raise WeightsFileError(f"{where}: dtype {dtype} is not supported (only {accepted} load)")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise WeightsFileError(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]):
            raise WeightsFileError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, got {offsets!r}")
        itemsize = _SAFETENSORS_DTYPE_BITS[dtype] // 8
        # NumPy refuses more than 64 dims, and sizes whose nonzero dims overflow even when empty.
        if len(shape) > 64 or math.prod(max(d, 1) for d in shape) * itemsize >= 2 ** 63:
            raise WeightsFileError(f"{where}: shape {shape!r} is too large")
        begin, end = offsets
        # Python ints: the product cannot overflow, and nothing is allocated from it.
        nbytes = math.prod(shape) * itemsize
        if nbytes != end - begin:
            raise WeightsFileError(f"{where}: data_offsets span {end - begin} bytes but shape {tuple(shape)} of {dtype} needs {nbytes}")
        entries[name] = (dtype, tuple(shape), begin, end)
    return entries, dict(metadata)


def _check_offsets(path: str, entries: dict, buffer_len: int) -> None:
    """Tensors must lie inside the data buffer, must not overlap, and (as the format requires)
    must cover it without holes."""
    cursor, previous = 0, None
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: (item[1][2], item[1][3])):
        if end > buffer_len:
            raise WeightsFileError(f"{path}: tensor {name!r} data_offsets [{begin}, {end}] out of range (data buffer is {buffer_len} bytes; file truncated?)")
        if begin < cursor:
            raise WeightsFileError(f"{path}: tensors {previous!r} and {name!r} are overlapping")
        if begin > cursor:
            raise WeightsFileError(f"{path}: bytes [{cursor}, {begin}) of the data buffer belong to no tensor (hole before {name!r})")
        if end > begin:
            cursor, previous = end, name
    if cursor != buffer_len:
        raise WeightsFileError(f"{path}: {buffer_len - cursor} trailing bytes of the data buffer belong to no tensor")


def _decode(raw: np.ndarray, dtype: str) -> np.ndarray:
    """A new C-contiguous float32 array from little-endian F32/F16/BF16/F64 data."""
    if dtype == "BF16":
        # bfloat16 is the high half of a float32: widening is exact.
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return _narrow_to_float32("", raw)


def _narrow_to_float32(name: str, array: np.ndarray) -> np.ndarray:
    """A new C-contiguous float32 copy; a float64 value beyond float32's range is refused (it would
    silently become inf) rather than warned about."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(array, dtype=np.float32, order="C", copy=True)
    if array.dtype.itemsize > 4 and out.size and not np.isfinite(out).all():
        overflowed = np.isinf(out) & np.isfinite(array)
        if overflowed.any():
            where = f"tensor {name!r}" if name else "a float64 tensor"
            raise WeightsFileError(f"{where} holds {np.asarray(array)[overflowed].flat[0]!r}, beyond the float32 range "
                                   f"(+-3.4e38) that pivot computes in")
    return out


def save_safetensors(path, tensors: Mapping, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` (name -> float array) to a ``.safetensors`` file.

    float16 arrays are stored as F16, every other float array as F32. Names are written in sorted
    order and the header is padded with spaces to a multiple of 8 bytes, as the safetensors
    package does; ``metadata`` (str -> str) goes to ``__metadata__``. The file is written to a
    temporary name next to ``path`` and renamed into place, so a crash never leaves a half file.
    """
    path = _validate.file_path(path)
    if not path.lower().endswith(".safetensors"):
        raise ValueError(f"save_safetensors writes .safetensors files; got the path {path!r}")
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a mapping of name -> array, got {type(tensors).__name__}")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("metadata must be a mapping of str -> str")

    arrays = {}
    for name in tensors:
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError(f"tensor names must be non-empty strings other than '__metadata__', got {name!r}")
        arrays[name] = _to_float32_or_16(name, tensors[name])
    write_safetensors_as_given(path, arrays, metadata)


# The dtypes write_safetensors_as_given stores, by NumPy dtype (little-endian as the format says).
_STORED_CODES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("i1"): "I8", np.dtype("u1"): "U8"}


def write_safetensors_as_given(path, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> None:
    """Write ``arrays`` (name -> little-endian float32, float16, int8 or uint8 array) unconverted,
    names sorted, the header padded to a multiple of 8 bytes, to a temporary file next to
    ``path`` that is then renamed into place (a crash never leaves a half file). The writer of
    :func:`save_safetensors` and of ``pivot.quant``'s int8 files."""
    path = _validate.file_path(path)
    header: dict = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name in sorted(arrays):
        array = arrays[name]
        if array.dtype not in _STORED_CODES:
            raise ValueError(f"tensor {name!r} has dtype {array.dtype}; stored dtypes are float32, float16, int8, uint8")
        header[name] = {"dtype": _STORED_CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)

    def write(f):
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for name in sorted(arrays):
            f.write(memoryview(np.ascontiguousarray(arrays[name]).reshape(-1).view(np.uint8)))

    write_atomically(path, write)


def write_atomically(path: str, write) -> None:
    """Calls ``write(f)`` on a new binary temporary file next to ``path``, syncs it and renames it
    over ``path``: a reader sees the old file or the new one, never half of one (a crash leaves
    no half file), and a link at ``path`` is replaced, never followed. The one atomic writer of
    pivot's weight files and SCALE-Sim files."""
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    # os.open with mode 0o666 so the final file gets the umask's usual permissions.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _to_float32_or_16(name: str, value) -> np.ndarray:
    """Little-endian C-contiguous float16 (kept) or float32 (everything else) for writing."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.dtype == torch.float16:
            return np.ascontiguousarray(value.detach().cpu().numpy(), dtype="<f2")
        value = _torch_to_float32(name, value)
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise ValueError(f"tensor {name!r} has dtype {array.dtype}; only float arrays can be saved")
    return np.ascontiguousarray(array, dtype="<f2" if array.dtype == np.float16 else "<f4")


# ---------------------------------------------------------------------------------------------
# npz and pth

_NPZ_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with open_regular_file(path) as f:
        if f.read(4) not in _NPZ_MAGICS:
            raise WeightsFileError(f"{path}: not an npz archive (no zip signature)")
        f.seek(0)
        return _read_npz_archive(path, f)


def _read_npz_archive(path: str, f) -> dict[str, np.ndarray]:
    try:
        with np.load(f, allow_pickle=False) as npz:
            names = list(npz.files)
            duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
            if duplicates:
                raise WeightsFileError(f"{path}: duplicate member(s) {', '.join(map(repr, duplicates))}")
            arrays = {}
            for name in names:
                if _is_batchnorm_counter(name):
                    continue
                _check_npz_member(path, npz.zip, name)
                array = npz[name]
                arrays[name] = _numpy_to_float32(name, array)
            return arrays
    except WeightsFileError:
        raise
    except Exception as e:  # bad zip, bad CRC, bad npy header, pickled objects, ...
        raise WeightsFileError(f"{path}: cannot read npz archive ({type(e).__name__}: {e})") from None


def _check_npz_member(path: str, archive: zipfile.ZipFile, name: str) -> None:
    """Refuse a member before numpy allocates it: it must be an ``.npy`` array of a float dtype
    whose declared size fits in the member's (declared uncompressed) size."""
    member = name + ".npy"
    if member not in archive.namelist():
        raise WeightsFileError(f"{path}: member {name!r} is not an .npy array")
    info = archive.getinfo(member)
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        header_len = f.tell()
    if dtype.kind != "f" or dtype.fields is not None:
        raise WeightsFileError(f"{path}: array {name!r} has dtype {dtype}; only float16/float32/float64 arrays load")
    needed = math.prod(shape) * dtype.itemsize
    if needed > info.file_size - header_len:
        raise WeightsFileError(f"{path}: array {name!r} declares shape {shape} ({needed} bytes) but its member holds only {info.file_size - header_len} bytes")


_WRAPPER_KEYS = ("state_dict", "model", "model_ema", "state_dict_ema")


def _read_pth(path: str) -> Mapping:
    with open_regular_file(path) as f:  # refused before torch is even imported
        try:
            import torch
        except ImportError:
            raise ImportError(f"reading {path!r} needs torch (pip install 'pivot[torch]'); or convert it to .safetensors") from None
        try:
            return torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle errors, zip errors, disallowed globals, ...
            raise WeightsFileError(f"{path}: cannot read torch checkpoint ({type(e).__name__}: {e})") from None


def _unwrap_checkpoint(obj, where: str) -> Mapping:
    """The state dict inside a training checkpoint (``{'model': ...}``, ``{'state_dict': ...}``,
    ``{'model_ema': ...}``), with a DataParallel ``module.`` prefix stripped."""
    if not isinstance(obj, Mapping):
        raise WeightsFileError(f"{where}: holds a {type(obj).__name__}, not a state dict")
    for _ in range(4):  # wrappers may nest, but never deeply
        wrapper = next((k for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    state, original = {}, {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise WeightsFileError(f"{where}: state-dict key {key!r} is not a string")
        name = key[len("module."):] if key.startswith("module.") else key
        if name in state:
            first, second = sorted((original[name], key), key=len, reverse=True)
            raise WeightsFileError(f"{where}: both {first!r} and {second!r} present")
        state[name], original[name] = value, key
    return state


# ---------------------------------------------------------------------------------------------
# conversion

def _numpy_to_float32(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind != "f" or array.dtype.fields is not None:
        raise WeightsFileError(f"tensor {name!r} has dtype {array.dtype}; only float16/bfloat16/float32/float64 weights load")
    return _narrow_to_float32(name, array)


def _torch_to_float32(name: str, tensor) -> np.ndarray:
    import torch  # already imported by whoever made the tensor
    if tensor.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise WeightsFileError(f"tensor {name!r} has dtype {tensor.dtype}; only float16/bfloat16/float32/float64 weights load")
    # float16 and bfloat16 widen to float32 exactly.
    if tensor.dtype == torch.float64:  # refuse values beyond float32's range
        return _narrow_to_float32(name, tensor.detach().cpu().numpy())
    return np.array(tensor.detach().cpu().to(torch.float32).numpy(), dtype=np.float32, order="C", copy=True)


def _to_float32(name: str, value) -> np.ndarray:
    torch = sys.modules.get("torch")  # never import torch here: a tensor implies it is loaded
    if torch is not None and isinstance(value, torch.Tensor):
        return _torch_to_float32(name, value)
    if isinstance(value, np.ndarray):
        return _numpy_to_float32(name, value)
    raise WeightsFileError(f"tensor {name!r} is a {type(value).__name__}, not an array")


def load_state_dict(source) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Load weights as ``(state_dict, metadata)``: timm key -> C-contiguous float32 array, and the
    file's string metadata (safetensors ``__metadata__``; empty for other sources).

    ``source`` is a path to a ``.safetensors``, ``.npz`` or ``.pth``/``.pt``/``.pth.tar`` file
    (the last two need torch; ``.pth.tar`` is how the LV-ViT checkpoints are named), or a mapping
    of name -> NumPy array or torch tensor. Training-checkpoint wrappers (``model``,
    ``state_dict``, ``model_ema``, ``state_dict_ema``) are unwrapped and a leading ``module.`` is
    stripped. BatchNorm ``num_batches_tracked`` counters (integers, not weights) are dropped.
    float32, float16, bfloat16 and float64 tensors load (converted to float32); anything else, and
    any malformed file, raises :class:`WeightsFileError` naming the problem. The result owns its
    memory: later changes to ``source`` do not reach it.
    """
    if isinstance(source, Mapping):
        state = _unwrap_checkpoint(source, "weights dict")
        return {name: _to_float32(name, value) for name, value in state.items() if not _is_batchnorm_counter(name)}, {}
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a file path or a dict of arrays, got {type(source).__name__}")
    path = _validate.file_path(source)
    suffix = os.path.splitext(path)[1].lower()
    if path.lower().endswith(".pth.tar"):
        suffix = ".pth"  # torch.save files named as TokenLabeling (timm's training scripts) name them
    if suffix not in (".safetensors", ".npz", ".pth", ".pt"):
        raise ValueError(f"{path!r}: unknown weight file extension {suffix or '(none)'!r}; expected .safetensors, .npz, .pth, .pth.tar or .pt")
    _validate.existing_file(path, "weight file")
    if suffix == ".safetensors":
        return _read_safetensors(path)
    if suffix == ".npz":
        return _read_npz(path), {}
    state = _unwrap_checkpoint(_read_pth(path), path)
    return {name: _to_float32(name, value) for name, value in state.items() if not _is_batchnorm_counter(name)}, {}


# ---------------------------------------------------------------------------------------------
# pivot metadata

# A ViTConfig dumps to about 400 bytes of JSON; anything far longer is not one.
_MAX_CONFIG_JSON = 1 << 16


def config_from_metadata(text, where: str) -> ViTConfig:
    """The :class:`~pivot.ViTConfig` stored as ``pivot.config`` metadata (JSON of its fields);
    anything else (over-long, deeply nested, non-finite, wrong fields) is a WeightsFileError."""
    if not isinstance(text, str) or len(text) > _MAX_CONFIG_JSON:
        size = f"{len(text)} characters" if isinstance(text, str) else type(text).__name__
        raise WeightsFileError(f"{where}: bad 'pivot.config' metadata ({size}; expected a JSON object of "
                               f"ViTConfig fields, at most {_MAX_CONFIG_JSON} characters)")

    try:  # Infinity and NaN parse, so that ViTConfig names the field that holds one
        fields = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, over-long ints, deep nesting
        raise WeightsFileError(f"{where}: bad 'pivot.config' metadata: not valid JSON ({type(exc).__name__}: "
                               f"{str(exc)[:200]})") from None
    if not isinstance(fields, dict):
        raise WeightsFileError(f"{where}: bad 'pivot.config' metadata: a JSON {type(fields).__name__}, "
                               f"not an object of ViTConfig fields")
    try:
        return ViTConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise WeightsFileError(f"{where}: bad 'pivot.config' metadata: {exc}") from None


def path_from_metadata(text, depth: int, where: str) -> list[int]:
    """The path stored as ``pivot.path`` metadata: ``depth`` digits 0, 1 or 2."""
    if not isinstance(text, str) or len(text) != depth or set(text) - {"0", "1", "2"}:
        shown = repr(text[:40]) if isinstance(text, str) else type(text).__name__
        raise WeightsFileError(f"{where}: bad 'pivot.path' metadata {shown} (expected {depth} digits 0/1/2, "
                               f"one per encoder)")
    return [int(ch) for ch in text]
