"""Reliability: property-based tests (hypothesis) of the weight-file and IDX readers against
truncated files, lying header lengths, out-of-range and overlapping offsets, huge shapes, bad
JSON and wrong dtypes: every input either loads or raises WeightsFileError / DatasetError."""
import gzip
import io
import json
import os
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pivot
from pivot.datasets import DatasetError, read_idx
from pivot.io import WeightsFileError, load_state_dict, save_safetensors

# A short run by default (the full suite stays quick on 2 busy cores); PIVOT_HYPOTHESIS_EXAMPLES=1000
# for a long one.
SETTINGS = settings(max_examples=int(os.environ.get("PIVOT_HYPOTHESIS_EXAMPLES", 40)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# tmpfs when there is one: save_safetensors fsyncs, which is slow on a busy disk.
_DIR = tempfile.mkdtemp(prefix="pivot-rel-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)


def _write(data: bytes, suffix: str) -> str:
    path = os.path.join(_DIR, f"f{os.getpid()}{suffix}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def load_bytes(data: bytes, suffix=".safetensors"):
    """load_state_dict of these bytes as a file; only WeightsFileError may escape."""
    return load_state_dict(_write(data, suffix))


def loads_or_refuses(data: bytes, suffix=".safetensors"):
    try:
        return load_bytes(data, suffix)
    except WeightsFileError:
        return None


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda s: s != "__metadata__")
float_arrays = st.one_of(
    hnp.arrays(st.sampled_from([np.float32, np.float16]), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
               elements=st.floats(-1e4, 1e4, width=16)),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
               elements=st.floats(-1e30, 1e30)),
)
state_dicts = st.dictionaries(names, float_arrays, max_size=5)


def _safetensors_bytes(tensors, metadata=None) -> bytes:
    path = os.path.join(_DIR, f"w{os.getpid()}.safetensors")
    save_safetensors(path, tensors, metadata)
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------------------ safetensors

@SETTINGS
@given(state_dicts, st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
def test_safetensors_roundtrip(tensors, metadata):
    loaded, meta = load_bytes(_safetensors_bytes(tensors, metadata))
    assert meta == metadata
    assert sorted(loaded) == sorted(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == np.float32 and loaded[name].flags.c_contiguous
        np.testing.assert_array_equal(loaded[name], array.astype(np.float32))


@SETTINGS
@given(state_dicts.filter(bool), st.data())
def test_safetensors_truncated_or_extended(tensors, data):
    blob = _safetensors_bytes(tensors)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(WeightsFileError):
        load_bytes(blob[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=16))
    with pytest.raises(WeightsFileError):
        load_bytes(blob + extra)  # trailing bytes belong to no tensor


@SETTINGS
@given(state_dicts, st.integers(-2 ** 20, 2 ** 64 - 1))
def test_safetensors_lying_header_length(tensors, new_length):
    blob = _safetensors_bytes(tensors)
    true_length = int.from_bytes(blob[:8], "little")
    assume(new_length != true_length)
    patched = (new_length % 2 ** 64).to_bytes(8, "little") + blob[8:]
    result = loads_or_refuses(patched)
    if result is not None:  # only possible when the header still parses to a consistent file
        assert new_length % 2 ** 64 < len(blob)


@SETTINGS
@given(state_dicts.filter(bool), st.data())
def test_safetensors_mutated_bytes(tensors, data):
    blob = bytearray(_safetensors_bytes(tensors))
    for _ in range(data.draw(st.integers(1, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    loads_or_refuses(bytes(blob))


dtype_names = st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "F4", "C64",
                               "f32", "", "F32 ", None, 32, ["F32"]])
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=4),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                           max_leaves=6)
dims = st.one_of(st.integers(0, 6), st.integers(-3, 2 ** 66), st.sampled_from([2 ** 31, 2 ** 32 + 1, 2 ** 63, 2 ** 64]))
entries = st.fixed_dictionaries({
    "dtype": dtype_names,
    "shape": st.one_of(st.lists(dims, max_size=4), st.lists(st.just(2), min_size=60, max_size=70), json_values),
    "data_offsets": st.one_of(st.lists(st.integers(-4, 64), min_size=2, max_size=2),
                              st.lists(st.integers(0, 2 ** 65), min_size=0, max_size=3), json_values),
}, optional={"extra": json_values})


@SETTINGS
@given(st.dictionaries(st.text(max_size=6), st.one_of(entries, json_values), max_size=4),
       st.binary(max_size=80), st.booleans())
def test_safetensors_arbitrary_headers(header, buffer, with_metadata):
    if with_metadata:
        header["__metadata__"] = {"a": "b"}
    text = json.dumps(header).encode()
    result = loads_or_refuses(len(text).to_bytes(8, "little") + text + buffer)
    if result is not None:
        tensors, _ = result
        assert sum(t.nbytes for t in tensors.values()) <= 2 * len(buffer)  # f16/bf16 widen to f32: x2 at most


@SETTINGS
@given(st.binary(max_size=200))
def test_safetensors_arbitrary_bytes(blob):
    loads_or_refuses(blob)


@SETTINGS
@given(st.text(max_size=60))
def test_safetensors_bad_json_text(text):
    raw = text.encode("utf-8", "surrogatepass")
    loads_or_refuses(len(raw).to_bytes(8, "little") + raw)


def test_safetensors_specific_attacks():
    def header(entries):
        text = json.dumps(entries).encode()
        return len(text).to_bytes(8, "little") + text

    cases = {
        "out of range": header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}) + bytes(8),
        "overlapping": header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}) + bytes(12),
        "huge shape": header({"a": {"dtype": "F32", "shape": [2 ** 40, 2 ** 40], "data_offsets": [0, 4]}}) + bytes(4),
        "shape product wraps 2**64": header({"a": {"dtype": "F32", "shape": [2 ** 32, 2 ** 30], "data_offsets": [0, 0]}}),
        "zero dim with huge others": header({"a": {"dtype": "F32", "shape": [0, 2 ** 62, 2 ** 62], "data_offsets": [0, 0]}}),
        "bf16 odd size": header({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 5]}}) + bytes(5),
        "bf16 short": header({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 4]}}) + bytes(4),
        "negative offset": header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}) + bytes(4),
        "float offsets": header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0.0, 4.0]}}) + bytes(4),
        "bool dims": header({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}) + bytes(4),
        "int dtype": header({"a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}) + bytes(4),
        "hole": header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}) + bytes(8),
        "header length 2**64-1": (2 ** 64 - 1).to_bytes(8, "little") + b"{}",
        "header length past end": (1000).to_bytes(8, "little") + b"{}",
        "deep nesting": header({}) [:8] + b"[" * 100000,
        "NaN constant": (5).to_bytes(8, "little") + b'{"a":NaN}'[:5],
        "duplicate names": b"",
        "not utf-8": (4).to_bytes(8, "little") + b"{\xff\xfe}",
        "metadata not strings": header({"__metadata__": {"a": 1}}),
        "float64 beyond float32": header({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})
        + np.array([1e300]).tobytes(),
    }
    text = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    cases["duplicate names"] = len(text).to_bytes(8, "little") + text + bytes(4)
    for name, blob in cases.items():
        with pytest.raises(WeightsFileError):
            load_bytes(blob)
            pytest.fail(f"{name}: loaded")


def test_float64_beyond_float32_range_is_refused_in_dicts_and_npz():
    with pytest.raises(WeightsFileError, match="float32 range"):
        load_state_dict({"w": np.array([1.0, -1e39])})
    buf = io.BytesIO()
    np.savez(buf, w=np.array([1e300]))
    with pytest.raises(WeightsFileError, match="float32 range"):
        load_bytes(buf.getvalue(), ".npz")
    # infinities and NaN that are already there are data, not an overflow
    loaded, _ = load_state_dict({"w": np.array([np.inf, np.nan, 1.0])})
    assert np.isinf(loaded["w"][0]) and np.isnan(loaded["w"][1])


# ------------------------------------------------------------------------ npz

def _npz_bytes(arrays, compressed=False):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


ident = st.from_regex(r"[a-z][a-z0-9_.]{0,8}", fullmatch=True)


@SETTINGS
@given(st.dictionaries(ident, float_arrays, max_size=4), st.booleans())
def test_npz_roundtrip(arrays, compressed):
    loaded, meta = load_bytes(_npz_bytes(arrays, compressed), ".npz")
    assert meta == {} and sorted(loaded) == sorted(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array.astype(np.float32))


@SETTINGS
@given(st.dictionaries(ident, hnp.arrays(st.sampled_from([np.int32, np.int64, np.uint8, np.bool_, np.complex64]),
                                         hnp.array_shapes(max_dims=2, max_side=3)), min_size=1, max_size=3))
def test_npz_wrong_dtypes_refused(arrays):
    with pytest.raises(WeightsFileError, match="dtype"):
        load_bytes(_npz_bytes(arrays), ".npz")


@SETTINGS
@given(st.dictionaries(ident, float_arrays, min_size=1, max_size=3), st.booleans(), st.data())
def test_npz_truncated_or_mutated(arrays, compressed, data):
    blob = bytearray(_npz_bytes(arrays, compressed))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 6))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    loads_or_refuses(bytes(blob), ".npz")


@SETTINGS
@given(st.binary(max_size=300))
def test_npz_member_arbitrary_bytes(npy):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("w.npy", npy)
    loads_or_refuses(buf.getvalue(), ".npz")


def test_npz_specific_attacks():
    def npz_with(member: bytes, name="w.npy", declared_size=None):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr(name, member)
        blob = bytearray(buf.getvalue())
        if declared_size is not None:  # patch the central directory's uncompressed size
            cd = blob.rfind(b"PK\x01\x02")
            blob[cd + 24:cd + 28] = declared_size.to_bytes(4, "little")
        return bytes(blob)

    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }"
    huge = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases = {
        "huge declared shape": npz_with(huge + bytes(16)),
        "huge declared shape, lying zip size": npz_with(huge + bytes(16), declared_size=2 ** 32 - 1),
        "pickled object array": npz_with(pickled.getvalue()),
        "not an npy member": npz_with(b"hello", name="w.txt"),
        "not a zip": b"PK\x03\x04" + bytes(40),
        "bad npy magic": npz_with(b"\x93NUMPX" + bytes(20)),
        "structured dtype": _npz_bytes({"w": np.zeros(2, dtype=[("a", "<f4"), ("b", "<f4")])}),
        "subarray dtype": npz_with(b"\x93NUMPY\x01\x00" + (70).to_bytes(2, "little")
                                   + b"{'descr': ('<f4', (1000000000,)), 'fortran_order': False, 'shape': (), }".ljust(70)),
    }
    for name, blob in cases.items():
        with pytest.raises(WeightsFileError):
            load_bytes(blob, ".npz")
            pytest.fail(f"{name}: loaded")


# ------------------------------------------------------------------------ IDX

def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()


def read_idx_bytes(data: bytes, ndim: int):
    return read_idx(_write(data, ".idx"), ndim)


idx_arrays = st.integers(1, 3).flatmap(lambda nd: hnp.arrays(np.uint8, hnp.array_shapes(min_dims=nd, max_dims=nd,
                                                                                          min_side=0, max_side=5)))


@SETTINGS
@given(idx_arrays, st.booleans())
def test_idx_roundtrip(array, gz):
    data = _idx(array)
    if gz:
        data = gzip.compress(data, mtime=0)
    np.testing.assert_array_equal(read_idx_bytes(data, array.ndim), array)


@SETTINGS
@given(idx_arrays, st.booleans(), st.data())
def test_idx_truncated_padded_or_lying(array, gz, data):
    blob = _idx(array)
    how = data.draw(st.sampled_from(["truncate", "pad", "shape"]))
    if how == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    elif how == "pad":
        blob += data.draw(st.binary(min_size=1, max_size=8))
    else:
        axis = data.draw(st.integers(0, array.ndim - 1))
        new = data.draw(st.integers(0, 2 ** 32 - 1).filter(lambda d: d != array.shape[axis]))
        assume(array.size or new * int(np.prod([d for i, d in enumerate(array.shape) if i != axis])) != 0)
        blob = blob[:4 + 4 * axis] + new.to_bytes(4, "big") + blob[8 + 4 * axis:]
    if gz:
        blob = gzip.compress(blob, mtime=0)
    with pytest.raises(DatasetError):
        read_idx_bytes(blob, array.ndim)


@SETTINGS
@given(st.binary(max_size=64), st.sampled_from([1, 3]), st.booleans())
def test_idx_arbitrary_bytes(blob, ndim, gz):
    if gz:
        blob = b"\x1f\x8b" + blob
    try:
        read_idx_bytes(blob, ndim)
    except DatasetError:
        pass


def test_idx_gzip_bomb_refused_without_decompressing():
    """A gzip whose IDX header declares 100 bytes but whose stream inflates to 64 MiB: refused
    after reading 101 bytes, never inflated in full."""
    import time
    bomb = gzip.compress(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(64 << 20), compresslevel=9, mtime=0)
    start = time.process_time()  # CPU time: inflating 64 MiB takes ~50+ ms of it, reading 101 bytes ~0
    with pytest.raises(DatasetError, match="padded"):
        read_idx_bytes(bomb, 1)
    assert time.process_time() - start < 0.02


def test_idx_huge_declared_size_refused_before_reading():
    blob = bytes([0, 0, 8, 3]) + b"".join((60000).to_bytes(4, "big") for _ in range(3)) + bytes(10)
    with pytest.raises(DatasetError, match="limit"):
        read_idx_bytes(blob, 3)
    with pytest.raises(DatasetError, match="limit"):
        read_idx_bytes(gzip.compress(blob), 3)


def test_idx_corrupt_gzip_stream():
    good = gzip.compress(_idx(np.arange(50, dtype=np.uint8)), mtime=0)
    for i in range(10, len(good) - 8, 3):
        corrupt = bytearray(good)
        corrupt[i] ^= 0x55
        try:
            read_idx_bytes(bytes(corrupt), 1)
        except DatasetError:
            pass
