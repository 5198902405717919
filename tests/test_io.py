"""pivot.io: safetensors reader/writer, npz/pth/dict loading, config inference, hostile files."""
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pivot
from pivot import ViTConfig, WeightsFileError
from pivot.checkpoints import infer_config
from pivot.io import load_state_dict, save_safetensors

CUSTOM = ViTConfig(img_size=32, patch_size=4, in_chans=1, num_classes=10, embed_dim=96, depth=6,
                   num_heads=3, mlp_ratio=2.0)


def zero_state_dict(config):
    """Shape-only weights (free: broadcast zeros) for config inference."""
    return {k: np.broadcast_to(np.float32(0), s) for k, s in config.weight_shapes().items()}


def random_state_dict(config, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in config.weight_shapes().items()}


def write_raw(path, header, data=b"", header_len=None):
    """A safetensors-like file from a header (object or raw bytes), data, and a length field."""
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(header_bytes) if header_len is None else header_len
    path.write_bytes(length.to_bytes(8, "little") + header_bytes + data)
    return path


def open_fds():
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------------------------------------
# round trip and format details

def test_round_trip_is_bit_exact_with_metadata(tmp_path):
    weights = random_state_dict(CUSTOM)
    metadata = {"pivot.config": json.dumps({"depth": 6}), "pivot.path": "110101", "note": "ünïcode"}
    save_safetensors(tmp_path / "m.safetensors", weights, metadata=metadata)
    loaded, got_metadata = load_state_dict(tmp_path / "m.safetensors")
    assert got_metadata == metadata
    assert list(loaded) == sorted(weights)
    for name, array in weights.items():
        assert loaded[name].dtype == np.float32 and loaded[name].flags.c_contiguous
        assert loaded[name].flags.writeable and loaded[name].shape == array.shape
        assert loaded[name].tobytes() == array.tobytes()


def test_loaded_arrays_own_their_memory_and_no_handle_stays_open(tmp_path):
    save_safetensors(tmp_path / "m.safetensors", {"a": np.ones((3, 4), np.float32)})
    before = open_fds()
    loaded, _ = load_state_dict(str(tmp_path / "m.safetensors"))
    assert open_fds() == before
    array = loaded["a"]
    assert not isinstance(array.base, (bytes, memoryview))
    assert array.base is None or array.base.base is None or isinstance(array.base.base, np.ndarray)
    array[0, 0] = 5.0  # writable, independent of the file
    write_raw(tmp_path / "bad.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4)
    with pytest.raises(WeightsFileError):
        load_state_dict(tmp_path / "bad.safetensors")
    assert open_fds() == before


def test_header_is_padded_to_8_bytes_and_tensors_are_in_sorted_order(tmp_path):
    weights = {"zeta": np.ones(3, np.float32), "alpha": np.ones((2, 2), np.float32), "mid": np.ones(1, np.float16)}
    path = tmp_path / "m.safetensors"
    save_safetensors(path, weights, metadata={"k": "v"})
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert header_len % 8 == 0
    header = json.loads(raw[8:8 + header_len])
    assert header.pop("__metadata__") == {"k": "v"}
    assert header["mid"]["dtype"] == "F16" and header["alpha"]["dtype"] == "F32"
    names = [name for name, _ in sorted(header.items(), key=lambda item: item[1]["data_offsets"])]
    assert names == ["alpha", "mid", "zeta"]
    assert len(raw) == 8 + header_len + 16 + 2 + 12


def test_float64_is_saved_as_f32_and_float16_kept(tmp_path):
    path = tmp_path / "m.safetensors"
    save_safetensors(path, {"d": np.array([1 / 3], np.float64), "h": np.array([0.1], np.float16)})
    loaded, _ = load_state_dict(path)
    assert loaded["d"][0] == np.float32(1 / 3)
    assert loaded["h"][0] == np.float32(np.float16(0.1))


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_safetensors(path, {"a": np.zeros(2, np.float32)})
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask

    def failing_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_safetensors(path, {"b": np.ones(5, np.float32)})
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]
    assert list(load_state_dict(path)[0]) == ["a"]  # the old file is untouched


@pytest.mark.parametrize("call, error, fragment", [
    (lambda p: save_safetensors(p.with_suffix(".npz"), {"a": np.zeros(1, np.float32)}), ValueError, "writes .safetensors"),
    (lambda p: save_safetensors(p, {"a": np.arange(3)}), ValueError, "only float arrays"),
    (lambda p: save_safetensors(p, {"a": np.zeros(1, np.float32)}, metadata={"k": 1}), TypeError, "str -> str"),
    (lambda p: save_safetensors(p, {"__metadata__": np.zeros(1, np.float32)}), ValueError, "__metadata__"),
    (lambda p: save_safetensors(p, {3: np.zeros(1, np.float32)}), ValueError, "non-empty strings"),
    (lambda p: save_safetensors(p, [np.zeros(1)]), TypeError, "mapping"),
])
def test_save_refuses_bad_arguments(tmp_path, call, error, fragment):
    with pytest.raises(error, match=fragment):
        call(tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# interop with the safetensors package

def test_safetensors_package_reads_our_files(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors import numpy as safetensors_numpy
    weights = random_state_dict(CUSTOM)
    weights["half"] = np.linspace(-2, 2, 7).astype(np.float16)
    save_safetensors(tmp_path / "m.safetensors", weights, metadata={"a": "b"})
    theirs = safetensors_numpy.load_file(str(tmp_path / "m.safetensors"))
    assert theirs.keys() == weights.keys()
    for name, array in weights.items():
        assert theirs[name].dtype == array.dtype and np.array_equal(theirs[name], array)
    from safetensors import safe_open
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"a": "b"}


def test_we_read_safetensors_package_files(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors import numpy as safetensors_numpy
    weights = random_state_dict(CUSTOM)
    weights["half"] = np.linspace(-2, 2, 7).astype(np.float16)
    weights["empty"] = np.zeros((0, 3), np.float32)
    weights["scalar"] = np.array(2.5, np.float32)
    safetensors_numpy.save_file(weights, str(tmp_path / "m.safetensors"), metadata={"x": "y"})
    loaded, metadata = load_state_dict(tmp_path / "m.safetensors")
    assert metadata == {"x": "y"}
    for name, array in weights.items():
        assert loaded[name].dtype == np.float32 and loaded[name].shape == array.shape
        assert np.array_equal(loaded[name], array.astype(np.float32))


def test_we_read_bf16_written_by_safetensors_torch(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors import torch as safetensors_torch
    tensor = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    safetensors_torch.save_file({"b": tensor, "h": tensor.half()}, str(tmp_path / "m.safetensors"))
    loaded, _ = load_state_dict(tmp_path / "m.safetensors")
    assert np.array_equal(loaded["b"], tensor.float().numpy())
    assert np.array_equal(loaded["h"], tensor.half().float().numpy())


# ---------------------------------------------------------------------------------------------
# F16 / BF16 decoding is exact for every bit pattern

def test_f16_decoding_is_exact_for_all_bit_patterns(tmp_path):
    bits = np.arange(65536, dtype=np.uint16)
    header = {"h": {"dtype": "F16", "shape": [65536], "data_offsets": [0, 131072]}}
    loaded, _ = load_state_dict(write_raw(tmp_path / "h.safetensors", header, bits.astype("<u2").tobytes()))
    expected = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(loaded["h"]), nan)
    assert np.array_equal(loaded["h"][~nan].view(np.uint32), expected[~nan].view(np.uint32))  # signed zeros too


def test_bf16_decoding_is_exact_for_all_bit_patterns(tmp_path):
    bits = np.arange(65536, dtype=np.uint16)
    header = {"b": {"dtype": "BF16", "shape": [256, 256], "data_offsets": [0, 131072]}}
    loaded, _ = load_state_dict(write_raw(tmp_path / "b.safetensors", header, bits.astype("<u2").tobytes()))
    assert loaded["b"].shape == (256, 256)
    assert np.array_equal(loaded["b"].ravel().view(np.uint32), bits.astype(np.uint32) << 16)
    torch = pytest.importorskip("torch")
    reference = torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    finite = np.isfinite(reference)
    assert np.array_equal(loaded["b"].ravel()[finite], reference[finite])
    assert np.array_equal(np.isnan(loaded["b"].ravel()), np.isnan(reference))


def test_f64_is_converted_to_float32(tmp_path):
    values = np.array([1 / 3, -2.5, 1e-3])
    header = {"d": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]}}
    loaded, _ = load_state_dict(write_raw(tmp_path / "d.safetensors", header, values.astype("<f8").tobytes()))
    assert np.array_equal(loaded["d"], values.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# malformed safetensors files: each refused with WeightsFileError naming the problem

def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


MALFORMED = {
    # name: (header (object or bytes), data, header_len or None, message fragment)
    "header_not_utf8": (b"{\xff\xfe}", b"", None, "not valid UTF-8"),
    "bad_json": (b'{"a": {"dtype": "F32",', b"", None, "not valid JSON"),
    "json_list": (b"[1, 2]", b"", None, "not a JSON object"),
    "leading_space": (b' {}', b"", None, "not a JSON object"),
    "nan_constant": (b'{"a": NaN}', b"", None, "non-JSON constant NaN"),
    "deep_nesting": (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"", None, "not valid JSON"),
    "huge_int": (b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 8]}}', b"", None, "not valid JSON"),
    "entry_not_object": ({"a": [1, 2]}, b"", None, "entry must be an object"),
    "missing_dtype": ({"a": {"shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, None, "missing field(s) dtype"),
    "missing_shape": ({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, b"\0" * 8, None, "missing field(s) shape"),
    "missing_offsets": ({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, None, "missing field(s) data_offsets"),
    "unknown_field": ({"a": dict(entry(), extra=1)}, b"\0" * 8, None, "unknown field(s) extra"),
    "unknown_dtype": ({"a": entry(dtype="F33")}, b"\0" * 8, None, "unknown dtype 'F33'"),
    "dtype_not_string": ({"a": entry(dtype=32)}, b"\0" * 8, None, "unknown dtype 32"),
    "unsupported_dtype_i32": ({"a": entry(dtype="I32")}, b"\0" * 8, None, "tensor 'a': dtype I32 is not supported"),
    "unsupported_dtype_bool": ({"a": entry(dtype="BOOL", offsets=(0, 2))}, b"\0" * 2, None, "dtype BOOL is not supported"),
    "shape_not_list": ({"a": dict(entry(), shape=2)}, b"\0" * 8, None, "shape must be a list"),
    "shape_negative": ({"a": entry(shape=(-2,))}, b"\0" * 8, None, "shape must be a list of non-negative"),
    "shape_float": ({"a": dict(entry(), shape=[2.0])}, b"\0" * 8, None, "shape must be a list"),
    "shape_bool": ({"a": dict(entry(), shape=[True, 2])}, b"\0" * 8, None, "shape must be a list"),
    "shape_too_many_dims": ({"a": entry(shape=[1] * 65, offsets=(0, 4))}, b"\0" * 4, None, "too large"),
    "shape_overflows_int64": ({"a": entry(shape=(0, 2 ** 62))}, b"", None, "too large"),
    "offsets_not_list": ({"a": dict(entry(), data_offsets=8)}, b"\0" * 8, None, "data_offsets must be [begin, end]"),
    "offsets_three": ({"a": entry(offsets=(0, 4, 8))}, b"\0" * 8, None, "data_offsets must be [begin, end]"),
    "offsets_reversed": ({"a": entry(offsets=(8, 0))}, b"\0" * 8, None, "0 <= begin <= end"),
    "offsets_negative": ({"a": entry(offsets=(-8, 0))}, b"\0" * 8, None, "0 <= begin <= end"),
    "offsets_float": ({"a": dict(entry(), data_offsets=[0.0, 8.0])}, b"\0" * 8, None, "data_offsets must be"),
    "offsets_out_of_range": ({"a": entry()}, b"\0" * 4, None, "out of range"),
    "size_mismatch": ({"a": entry(shape=(3,))}, b"\0" * 8, None, "needs 12"),
    "huge_declared_shape": ({"a": entry(shape=(2 ** 20, 2 ** 20, 2 ** 10))}, b"\0" * 8, None, "needs 4503599627370496"),
    "overlapping": ({"a": entry(), "b": entry(offsets=(4, 12))}, b"\0" * 12, None, "overlapping"),
    "same_offsets": ({"a": entry(), "b": entry()}, b"\0" * 8, None, "overlapping"),
    "hole": ({"a": entry(offsets=(4, 12))}, b"\0" * 12, None, "belong to no tensor"),
    "trailing_bytes": ({"a": entry()}, b"\0" * 12, None, "4 trailing bytes"),
    "duplicate_names": (b'{"a": ' + json.dumps(entry()).encode() + b', "a": ' + json.dumps(entry()).encode() + b"}",
                        b"\0" * 8, None, "duplicate name 'a'"),
    "metadata_not_object": ({"__metadata__": ["x"]}, b"", None, "__metadata__ must be an object"),
    "metadata_not_string": ({"__metadata__": {"k": 1}}, b"", None, "value for 'k' is int, not a string"),
    "header_len_past_file": ({"a": entry()}, b"\0" * 8, 10_000, "larger than the file"),
    "header_len_absurd": ({}, b"", 200_000_000, "not a safetensors file"),
    "header_len_max_u64": ({}, b"", 2 ** 64 - 1, "not a safetensors file"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_safetensors_is_refused(tmp_path, case):
    header, data, header_len, fragment = MALFORMED[case]
    path = write_raw(tmp_path / "bad.safetensors", header, data, header_len)
    with pytest.raises(WeightsFileError) as info:
        load_state_dict(path)
    assert fragment in str(info.value)
    assert "bad.safetensors" in str(info.value)


@pytest.mark.parametrize("size", [0, 1, 7])
def test_file_shorter_than_8_bytes_is_refused(tmp_path, size):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01" * size)
    with pytest.raises(WeightsFileError, match="shorter than the 8-byte"):
        load_state_dict(path)


def test_empty_and_zero_size_tensors_are_valid(tmp_path):
    header = {"e": entry(shape=(0, 5), offsets=(0, 0)), "a": entry(), "z": entry(shape=(3, 0), offsets=(8, 8))}
    loaded, metadata = load_state_dict(write_raw(tmp_path / "ok.safetensors", header, np.ones(2, "<f4").tobytes()))
    assert loaded["e"].shape == (0, 5) and loaded["z"].shape == (3, 0)
    assert np.array_equal(loaded["a"], [1, 1]) and metadata == {}
    loaded, _ = load_state_dict(write_raw(tmp_path / "none.safetensors", {}))
    assert loaded == {}


# ---------------------------------------------------------------------------------------------
# source kinds, paths and extensions

def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        load_state_dict(tmp_path / "nowhere.safetensors")


@pytest.mark.parametrize("name", ["weights.bin", "weights", "weights.json"])
def test_unknown_extension_is_a_clear_value_error(tmp_path, name):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown weight file extension"):
        load_state_dict(tmp_path / name)


def test_source_of_wrong_type_is_refused():
    with pytest.raises(TypeError, match="file path or a dict"):
        load_state_dict(42)


def test_extension_is_case_insensitive(tmp_path):
    save_safetensors(tmp_path / "M.SafeTensors", {"a": np.ones(1, np.float32)})
    assert list(load_state_dict(tmp_path / "M.SafeTensors")[0]) == ["a"]


def test_dict_of_numpy_arrays_is_converted_and_copied():
    source = {"a": np.arange(6, dtype=np.float64).reshape(2, 3).T, "b": np.ones(3, np.float16),
              "c": np.ones(2, ">f4")}
    loaded, metadata = load_state_dict(source)
    assert metadata == {}
    for name in source:
        assert loaded[name].dtype == np.float32 and loaded[name].flags.c_contiguous
        assert np.array_equal(loaded[name], source[name])
    same = np.ones(3, np.float32)
    loaded = load_state_dict({"s": same})[0]["s"]
    same[0] = 7.0
    assert loaded[0] == 1.0  # the result does not share memory with the input


@pytest.mark.parametrize("value, fragment", [
    (np.arange(3), "tensor 'w' has dtype int64"),
    (np.array([1 + 2j]), "tensor 'w' has dtype complex128"),
    (np.array(["x"]), "tensor 'w' has dtype <U1"),
    (np.array([None], dtype=object), "tensor 'w' has dtype object"),
    ([1.0, 2.0], "tensor 'w' is a list, not an array"),
])
def test_dict_with_bad_values_is_refused(value, fragment):
    with pytest.raises(WeightsFileError, match=fragment.replace("(", r"\(")):
        load_state_dict({"w": value})


def test_dict_wrappers_and_module_prefix():
    inner = {"module.a": np.ones(2, np.float32), "b": np.zeros(1, np.float32)}
    for wrapper in ("model", "state_dict", "model_ema", "state_dict_ema"):
        loaded, _ = load_state_dict({wrapper: inner, "epoch": 3})
        assert sorted(loaded) == ["a", "b"]
    with pytest.raises(WeightsFileError, match="both 'module.a' and 'a' present"):
        load_state_dict({"module.a": np.ones(1), "a": np.ones(1)})
    with pytest.raises(WeightsFileError, match="not a string"):
        load_state_dict({1: np.ones(1)})


def test_non_ema_weights_are_preferred_over_ema():
    loaded, _ = load_state_dict({"state_dict_ema": {"w": np.zeros(1)}, "state_dict": {"w": np.ones(1)}})
    assert loaded["w"][0] == 1.0


def test_loading_without_torch_never_imports_torch(tmp_path):
    save_safetensors(tmp_path / "m.safetensors", {"a": np.ones(2, np.float32)})
    np.savez(tmp_path / "m.npz", a=np.ones(2, np.float32))
    code = (
        "import sys, numpy as np, pivot, pivot.io as io\n"
        f"io.load_state_dict({str(tmp_path / 'm.safetensors')!r})\n"
        f"io.load_state_dict({str(tmp_path / 'm.npz')!r})\n"
        "io.load_state_dict({'a': np.ones(2)})\n"
        "import pivot.checkpoints as ck\n"
        "ck.infer_config({k: np.zeros(s, np.float32) for k, s in pivot.ViTConfig(img_size=32, depth=1).weight_shapes().items()}, num_heads=6)\n"
        "assert 'torch' not in sys.modules, 'pivot.io imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_weights_file_error_is_exported_and_a_value_error():
    assert pivot.WeightsFileError is WeightsFileError
    assert issubclass(WeightsFileError, ValueError)
    assert "WeightsFileError" in pivot.__all__


# ---------------------------------------------------------------------------------------------
# npz

@pytest.mark.parametrize("savez", [np.savez, np.savez_compressed])
def test_npz_round_trip(tmp_path, savez):
    weights = random_state_dict(CUSTOM)
    weights["pos_embed"] = weights["pos_embed"].astype(np.float64)
    weights["cls_token"] = weights["cls_token"].astype(np.float16)
    savez(tmp_path / "m.npz", **weights)
    loaded, metadata = load_state_dict(tmp_path / "m.npz")
    assert metadata == {} and loaded.keys() == weights.keys()
    for name, array in weights.items():
        assert loaded[name].dtype == np.float32 and loaded[name].flags.c_contiguous
        assert np.array_equal(loaded[name], array.astype(np.float32))


def test_npz_fortran_order_array_loads_c_contiguous(tmp_path):
    array = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    np.savez(tmp_path / "m.npz", a=array)
    loaded = load_state_dict(tmp_path / "m.npz")[0]["a"]
    assert loaded.flags.c_contiguous and np.array_equal(loaded, array)


def test_npz_with_integer_array_names_it(tmp_path):
    np.savez(tmp_path / "m.npz", good=np.ones(2, np.float32), steps=np.arange(3))
    with pytest.raises(WeightsFileError, match="'steps' has dtype int64"):
        load_state_dict(tmp_path / "m.npz")


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "m.npz", obj=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(WeightsFileError, match="'obj' has dtype object"):
        load_state_dict(tmp_path / "m.npz")


def test_npy_file_named_npz_is_refused(tmp_path):
    np.save(open(tmp_path / "m.npz", "wb"), np.ones(3, np.float32))
    with pytest.raises(WeightsFileError, match="not an npz archive"):
        load_state_dict(tmp_path / "m.npz")


def test_truncated_npz_is_refused(tmp_path):
    np.savez(tmp_path / "m.npz", a=np.ones(100, np.float32))
    raw = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(WeightsFileError, match="cannot read npz archive"):
        load_state_dict(tmp_path / "t.npz")


def test_npz_member_that_is_not_an_array_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.npz", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(WeightsFileError, match="'readme.txt' is not an .npy array"):
        load_state_dict(tmp_path / "m.npz")


def test_npz_member_declaring_a_huge_shape_is_refused_before_allocation(tmp_path):
    import io as stdio
    member = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 12,)})
    member.write(b"\0" * 16)
    with zipfile.ZipFile(tmp_path / "m.npz", "w") as archive:
        archive.writestr("w.npy", member.getvalue())
    with pytest.raises(WeightsFileError, match="'w' declares shape"):
        load_state_dict(tmp_path / "m.npz")


def test_empty_npz_loads_as_empty(tmp_path):
    np.savez(tmp_path / "m.npz")
    assert load_state_dict(tmp_path / "m.npz") == ({}, {})


# ---------------------------------------------------------------------------------------------
# pth (torch checkpoints) and torch tensors

@pytest.mark.parametrize("wrapper", [None, "model", "state_dict", "model_ema", "state_dict_ema"])
def test_pth_with_each_wrapper(tmp_path, wrapper):
    torch = pytest.importorskip("torch")
    weights = random_state_dict(CUSTOM)
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    checkpoint = state if wrapper is None else {wrapper: state, "epoch": 7}
    torch.save(checkpoint, tmp_path / "m.pth")
    loaded, metadata = load_state_dict(tmp_path / "m.pth")
    assert metadata == {} and loaded.keys() == weights.keys()
    assert all(np.array_equal(loaded[k], weights[k]) for k in weights)


def test_pth_data_parallel_prefix_is_stripped(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"state_dict": {"module.cls_token": torch.ones(1, 1, 4), "module.head.bias": torch.zeros(2)}},
               tmp_path / "m.pt")
    assert sorted(load_state_dict(tmp_path / "m.pt")[0]) == ["cls_token", "head.bias"]


def test_pth_half_precision_tensors_widen_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    torch.save({"b": base.bfloat16(), "h": base.half()}, tmp_path / "m.pth")
    loaded, _ = load_state_dict(tmp_path / "m.pth")
    assert np.array_equal(loaded["b"], base.bfloat16().float().numpy())
    assert np.array_equal(loaded["h"], base.half().float().numpy())


def test_pth_with_integer_tensor_names_it(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2), "steps": torch.arange(3)}, tmp_path / "m.pth")
    with pytest.raises(WeightsFileError, match="'steps' has dtype torch.int64"):
        load_state_dict(tmp_path / "m.pth")


class _NotAllowed:
    pass


def test_pth_with_arbitrary_pickled_objects_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2), "obj": _NotAllowed()}, tmp_path / "m.pth")
    with pytest.raises(WeightsFileError, match="cannot read torch checkpoint"):
        load_state_dict(tmp_path / "m.pth")


def test_garbage_and_non_dict_pth_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    (tmp_path / "g.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsFileError, match="cannot read torch checkpoint"):
        load_state_dict(tmp_path / "g.pth")
    torch.save([torch.ones(2)], tmp_path / "l.pth")
    with pytest.raises(WeightsFileError, match="holds a list, not a state dict"):
        load_state_dict(tmp_path / "l.pth")


def test_pth_without_torch_is_a_clear_import_error(tmp_path, monkeypatch):
    (tmp_path / "m.pth").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match="needs torch"):
        load_state_dict(tmp_path / "m.pth")


def test_dict_of_torch_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    source = {"f": base, "t": base.t(), "h": base.half(), "b": base.bfloat16(), "d": base.double()}
    loaded, _ = load_state_dict(source)
    for name, tensor in source.items():
        assert loaded[name].dtype == np.float32 and loaded[name].flags.c_contiguous
        assert np.array_equal(loaded[name], tensor.float().numpy())
    base[0, 0] = 100.0
    assert loaded["f"][0, 0] != 100.0
    with pytest.raises(WeightsFileError, match="'i' has dtype torch.int32"):
        load_state_dict({"i": torch.ones(2, dtype=torch.int32)})
    save_safetensors(tmp_path / "t.safetensors", source)
    back, _ = load_state_dict(tmp_path / "t.safetensors")
    assert np.array_equal(back["h"], loaded["h"]) and np.array_equal(back["b"], loaded["b"])


# ---------------------------------------------------------------------------------------------
# infer_config

@pytest.mark.parametrize("name", ViTConfig.presets())
def test_infer_config_on_presets(name):
    config = ViTConfig.preset(name)
    assert infer_config(zero_state_dict(config), num_heads=config.num_heads) == config


@pytest.mark.parametrize("config", [
    CUSTOM,
    CUSTOM.replace(distilled=True, in_chans=3, img_size=48, patch_size=8),
    ViTConfig(img_size=30, patch_size=6, in_chans=2, num_classes=1, embed_dim=24, depth=1, num_heads=2, mlp_ratio=1.5),
    ViTConfig(img_size=64, patch_size=32, embed_dim=384, depth=2, num_heads=6, mlp_ratio=1000 / 384),
], ids=["custom", "custom_distilled", "odd", "ratio_1000_over_384"])
def test_infer_config_on_custom_configs(config):
    assert infer_config(zero_state_dict(config), num_heads=config.num_heads) == config


def test_infer_config_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    state = {k: torch.zeros(s) for k, s in CUSTOM.weight_shapes().items()}
    assert infer_config(state, num_heads=3) == CUSTOM


@given(embed_dim=st.integers(1, 2048), hidden=st.integers(1, 8192))
@settings(max_examples=300, deadline=None)
def test_inferred_mlp_ratio_reproduces_the_hidden_size(embed_dim, hidden):
    config = ViTConfig(img_size=8, patch_size=8, embed_dim=embed_dim, depth=1, num_heads=1)
    shapes = dict(config.weight_shapes())
    shapes["blocks.0.mlp.fc1.weight"] = (hidden, embed_dim)
    state = {k: np.broadcast_to(np.float32(0), s) for k, s in shapes.items()}
    assert infer_config(state, num_heads=1).mlp_hidden == hidden


def test_num_heads_is_never_guessed():
    # A wrong head count loads silently wrong: without metadata the caller must say it.
    with pytest.raises(ValueError, match=r"pass num_heads= \(for embed_dim 96 one of \[1, 2, 3, 4, 6, 8, 12\]"):
        infer_config(zero_state_dict(CUSTOM))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        infer_config(zero_state_dict(CUSTOM), num_heads=5)


def test_overrides_are_applied_last():
    config = infer_config(zero_state_dict(CUSTOM), num_heads=3, norm_eps=1e-5, num_classes=10)
    assert config == CUSTOM.replace(norm_eps=1e-5)
    with pytest.raises(TypeError, match="unknown ViTConfig override.*bogus.*valid: img_size"):
        infer_config(zero_state_dict(CUSTOM), bogus=1)


@pytest.mark.parametrize("key", ["patch_embed.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight"])  # no head: headless
def test_infer_config_names_a_missing_key(key):
    state = zero_state_dict(CUSTOM)
    del state[key]
    with pytest.raises(ValueError, match=f"key '{key}' is missing"):
        infer_config(state)


def test_infer_config_refuses_non_arrays():
    state = zero_state_dict(CUSTOM)
    state["pos_embed"] = [[0.0]]
    with pytest.raises(TypeError, match="state_dict\\['pos_embed'\\] is a list, not an array"):
        infer_config(state)


def test_infer_config_without_blocks():
    state = {k: v for k, v in zero_state_dict(CUSTOM).items() if not k.startswith("blocks.")}
    with pytest.raises(ValueError, match="no 'blocks.N.' keys"):
        infer_config(state)


def test_infer_config_with_a_gap_in_block_indices():
    state = {k: v for k, v in zero_state_dict(CUSTOM).items() if not k.startswith("blocks.3.")}
    with pytest.raises(ValueError, match=r"missing blocks \[3\]"):
        infer_config(state)


def test_infer_config_refuses_non_square_patches():
    state = zero_state_dict(CUSTOM)
    state["patch_embed.proj.weight"] = np.zeros((96, 1, 4, 2), np.float32)
    with pytest.raises(ValueError, match="square patches"):
        infer_config(state)


def test_infer_config_refuses_non_square_token_grid():
    state = zero_state_dict(CUSTOM)
    state["pos_embed"] = np.zeros((1, 1 + 62, 96), np.float32)
    with pytest.raises(ValueError, match="63 tokens.*not a square grid"):
        infer_config(state, num_heads=3)
    state["pos_embed"] = np.zeros((1, 64, 96), np.float32)  # patches only: DeiT III style
    assert infer_config(state, num_heads=3).no_embed_class


@pytest.mark.parametrize("key, shape, fragment", [
    ("cls_token", (1, 2, 96), "cls_token has shape"),
    ("pos_embed", (65, 96), "pos_embed has shape"),
    ("head.weight", (10, 95), "head.weight has shape"),
    ("patch_embed.proj.weight", (96, 16), "must be 4-D"),
    ("blocks.0.mlp.fc1.weight", (192,), "blocks.0.mlp.fc1.weight has shape"),
])
def test_infer_config_refuses_inconsistent_shapes(key, shape, fragment):
    state = zero_state_dict(CUSTOM)
    state[key] = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=fragment):
        infer_config(state)


# ---------------------------------------------------------------------------------------------
# property-based: hostile bytes never raise anything but WeightsFileError, and never hang

def _valid_file_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "v.safetensors")
        save_safetensors(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "h": np.ones(4, np.float16),
                                "z": np.zeros((0, 2), np.float32)}, metadata={"pivot.path": "101"})
        raw = open(path, "rb").read()
    bf16 = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert bf16["w"]["dtype"] == "F32"
    return raw


VALID = _valid_file_bytes()
VALID_HEADER_END = 8 + int.from_bytes(VALID[:8], "little")
# PIVOT_FUZZ_EXAMPLES raises the example count for a longer local run.
FUZZ = settings(max_examples=int(os.environ.get("PIVOT_FUZZ_EXAMPLES", 150)), deadline=2000,
                suppress_health_check=[HealthCheck.too_slow])


def _load_bytes(raw: bytes, suffix=".safetensors"):
    """Load ``raw`` from a file: success or WeightsFileError are the only allowed outcomes."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "f" + suffix)
        with open(path, "wb") as f:
            f.write(raw)
        try:
            tensors, metadata = load_state_dict(path)
        except WeightsFileError:
            return None
    assert all(t.dtype == np.float32 and t.flags.c_contiguous for t in tensors.values())
    assert all(isinstance(v, str) for v in metadata.values())
    return tensors


def test_every_truncation_of_a_valid_file_is_refused():
    assert _load_bytes(VALID) is not None
    for length in range(len(VALID)):
        with pytest.raises(WeightsFileError):
            with tempfile.TemporaryDirectory() as directory:
                path = os.path.join(directory, "t.safetensors")
                open(path, "wb").write(VALID[:length])
                load_state_dict(path)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_random_byte_mutations(mutations):
    raw = bytearray(VALID)
    for position, value in mutations:
        raw[position] = value
    _load_bytes(bytes(raw))


@FUZZ
@given(st.lists(st.tuples(st.integers(8, VALID_HEADER_END - 1), st.integers(32, 126)), min_size=1, max_size=4))
def test_random_header_text_mutations(mutations):
    raw = bytearray(VALID)
    for position, value in mutations:
        raw[position] = value
    _load_bytes(bytes(raw))


@FUZZ
@given(position=st.integers(0, len(VALID)), inserted=st.binary(max_size=16), deleted=st.integers(0, 16),
       header_len=st.one_of(st.none(), st.integers(0, 2 ** 64 - 1)))
def test_random_insertions_deletions_and_lying_lengths(position, inserted, deleted, header_len):
    raw = VALID[:position] + inserted + VALID[position + deleted:]
    if header_len is not None:
        raw = header_len.to_bytes(8, "little") + raw[8:]
    _load_bytes(raw)


_json_scalars = st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats() | st.text(max_size=6)
_json_values = st.recursive(_json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                            max_leaves=10)
_dims = st.one_of(st.integers(0, 4), st.integers(-3, 2 ** 66), st.just(2 ** 63 - 1))
_entries = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "BF16", "F64", "I32", "U8", "BOOL", "F4", "f32", ""]) | _json_values,
    "shape": st.lists(_dims, max_size=4) | _json_values,
    "data_offsets": st.lists(st.integers(0, 40) | st.integers(-(2 ** 65), 2 ** 65), min_size=2, max_size=2) | _json_values,
})


@FUZZ
@given(header=st.dictionaries(st.sampled_from(["a", "b", "c", "__metadata__"]) | st.text(max_size=4), _entries | _json_values,
                              max_size=4),
       data=st.binary(max_size=48))
def test_random_headers(header, data):
    _load_bytes(len(json.dumps(header).encode()).to_bytes(8, "little") + json.dumps(header).encode() + data)


def _valid_npz_bytes(compressed: bool) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "v.npz")
        (np.savez_compressed if compressed else np.savez)(path, w=np.arange(6, dtype=np.float32).reshape(2, 3),
                                                          h=np.ones(4, np.float16))
        return open(path, "rb").read()


VALID_NPZ = {False: _valid_npz_bytes(False), True: _valid_npz_bytes(True)}


@FUZZ
@given(compressed=st.booleans(), data=st.data())
def test_random_npz_mutations(compressed, data):
    raw = bytearray(VALID_NPZ[compressed])
    mutations = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), min_size=1, max_size=6))
    for position, value in mutations:
        raw[position] = value
    cut = data.draw(st.integers(0, len(raw)))
    _load_bytes(bytes(raw[:cut]), suffix=".npz")


@pytest.mark.parametrize("meta", [{"pivot.config": "garbage"}, {"pivot.config": "[1]"},
                                  {"pivot.config": '{"embed_dim": -1}'}, {"pivot.path": "10x"}])
def test_from_timm_refuses_bad_pivot_metadata(tmp_path, meta):
    import pivot
    from pivot.io import save_safetensors

    config = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=8, depth=2, num_heads=2)
    model = pivot.ViT.random(config, seed=0)
    good = {"pivot.config": __import__("json").dumps(__import__("dataclasses").asdict(config)), "pivot.path": "11"}
    path = tmp_path / "m.safetensors"
    save_safetensors(path, model.state_dict(), {**good, **meta})
    with pytest.raises(pivot.WeightsFileError, match="pivot\\.(config|path)"):
        pivot.ViT.from_timm(path)
