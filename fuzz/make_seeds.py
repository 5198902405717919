"""Write the seed corpus of fuzz/fuzz_loaders.py to fuzz/corpus (small valid and nearly valid files).

Each seed is the format byte (see fuzz_loaders.py: 0 safetensors, 1 npz, 2 IDX 1-D, 3 IDX 3-D,
4 safetensors with the length written by the harness, 5 one npy member zipped by the harness,
6 an int8 model file) then the body."""
import gzip
import io
import json
import os
import pathlib
import tempfile

import numpy as np

import pivot

OUT = pathlib.Path(__file__).with_name("corpus")


def tiny_model(**changes):
    config = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=1, num_classes=2, embed_dim=4, depth=1,
                             num_heads=1, mlp_ratio=2.0).replace(**changes)
    return pivot.ViT.random(config, seed=0)


def safetensors_bytes(model, metadata=True):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.safetensors")
        if metadata or model.precision == "int8":  # an int8 model has one file format
            model.save(path)
        else:
            pivot.io.save_safetensors(path, model.state_dict())
        return pathlib.Path(path).read_bytes()


def raw_safetensors(header: dict, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def npz_bytes(arrays, compressed=False):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def idx_bytes(array: np.ndarray) -> bytes:
    head = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return head + array.astype(np.uint8).tobytes()


def seeds():
    model = tiny_model()
    state = model.state_dict()
    yield "st_model", 0, safetensors_bytes(model)
    yield "st_nometa", 0, safetensors_bytes(model, metadata=False)
    yield "st_distilled", 0, safetensors_bytes(tiny_model(distilled=True))
    yield "st_reuse_path", 0, safetensors_bytes(tiny_model(depth=2).with_path([1, 2]))
    yield "st_dtypes", 0, raw_safetensors({
        "a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
        "b": {"dtype": "F16", "shape": [1, 2], "data_offsets": [4, 8]},
        "c": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]},
        "n.num_batches_tracked": {"dtype": "I64", "shape": [], "data_offsets": [16, 24]},
        "__metadata__": {"k": "v"}}, bytes(range(24)))
    yield "st_empty", 0, raw_safetensors({})
    yield "st_zero_shape", 0, raw_safetensors({"z": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}})
    calibration = np.random.default_rng(0).normal(size=(4, 1, 8, 8)).astype(np.float32)
    yield "q8_model", 6, safetensors_bytes(pivot.quantize(tiny_model(depth=2).with_path([1, 0]), calibration))
    yield "npz_model", 1, npz_bytes(state)
    yield "npz_small", 1, npz_bytes({"w": np.arange(6, dtype=np.float16).reshape(2, 3), "b": np.ones(2)})
    yield "npz_deflate", 1, npz_bytes({"w": np.zeros((4, 4), np.float32)}, compressed=True)
    for name, body in (("st_model", safetensors_bytes(model)), ("st_dtypes", None)):
        if body is not None:
            header_len = int.from_bytes(body[:8], "little")
            yield f"auto_{name}", 4, header_len.to_bytes(2, "little") + body[8:]
    npy = io.BytesIO()
    np.save(npy, np.arange(6, dtype=np.float32).reshape(2, 3))
    yield "npy_stored", 5, b"\x00" + npy.getvalue()
    yield "npy_deflated", 5, b"\x01" + npy.getvalue()
    npy = io.BytesIO()
    np.save(npy, np.zeros((2, 2), dtype=">f8"), allow_pickle=False)
    yield "npy_f8_be", 5, b"\x00" + npy.getvalue()
    labels = np.arange(10, dtype=np.uint8)
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    yield "idx1", 2, idx_bytes(labels)
    yield "idx1_gz", 2, gzip.compress(idx_bytes(labels), mtime=0)
    yield "idx3", 3, idx_bytes(images)
    yield "idx3_gz", 3, gzip.compress(idx_bytes(images), mtime=0)


def main():
    OUT.mkdir(exist_ok=True)
    for name, kind, body in seeds():
        (OUT / name).write_bytes(bytes([kind]) + body)
        print(f"{name}: {len(body) + 1} bytes")


if __name__ == "__main__":
    main()
