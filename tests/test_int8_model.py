"""pivot.quantize / QuantizedViT: the C forward equals the NumPy integer reference bit for bit
(every kernel, paths 0/1/2, per-tensor and per-token), API parity with pivot.ViT, save/load."""
import json
import os
import struct

import numpy as np
import pytest

import pivot
from pivot import _core, quant
from pivot.reference import quant as ref

KERNELS = [k for k in ("portable", "avx2", "vnni", "amx") if _core.int8_kernel_supported(quant.KERNELS[k])]

CONFIGS = {
    # hd = 16; T = 50
    "fmnist": pivot.ViTConfig(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=64, depth=3,
                              num_heads=4, mlp_ratio=4.0),
    # hd = 6 (not a multiple of 4), C and H not multiples of 16, distilled, T = 11
    "odd": pivot.ViTConfig(img_size=12, patch_size=4, in_chans=3, num_classes=7, embed_dim=36, depth=3,
                           num_heads=6, mlp_ratio=2.5, distilled=True),
}


def _model(name, seed=0):
    m = pivot.ViT.random(CONFIGS[name], seed=seed)
    # larger weights than timm's init, so that logits and attention are far from uniform
    w = {k: (v * 8 if v.ndim == 2 else v) for k, v in m.state_dict().items()}
    return pivot.ViT(CONFIGS[name], w)


def _images(cfg, n, seed=1):
    return np.random.default_rng(seed).standard_normal((n, cfg.in_chans, cfg.img_size, cfg.img_size)).astype(np.float32)


@pytest.fixture(scope="module")
def fmnist():
    m = _model("fmnist")
    return m, quant.quantize(m, _images(m.config, 24))


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("path", [None, [1, 0, 1], [1, 2, 2], [0, 1, 2]])
def test_forward_equals_reference(name, per_token, path):
    m = _model(name)
    cfg = m.config
    qm = quant.quantize(m, _images(cfg, 8, seed=2), per_token=per_token)
    x = _images(cfg, 3)
    want, want_attn, want_mlp = ref.forward_branches(qm, x, path=path)
    for kernel in KERNELS:
        got, attn, mlp = qm.with_kernel(kernel).forward_branches(x, path=path, threads=2)
        np.testing.assert_array_equal(got, want, err_msg=kernel)
        for a, b in zip(attn, want_attn):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
        for a, b in zip(mlp, want_mlp):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(qm.with_kernel(kernel)(x, path=path, threads=1), want)


def test_options_symmetric_and_percentile(fmnist):
    m, _ = fmnist
    x = _images(m.config, 4)
    for kwargs in ({"activations": "symmetric"}, {"method": "percentile", "percentile": 99.9}):
        qm = quant.quantize(m, _images(m.config, 8), **kwargs)
        np.testing.assert_array_equal(qm(x), ref.forward_branches(qm, x)[0])
        assert qm.info[next(iter(kwargs))] == next(iter(kwargs.values()))
    sym = quant.quantize(m, _images(m.config, 8), activations="symmetric")
    act = sym.state_dict()["blocks.0.act_quant"]
    assert act[1] == 128 and act[3] == 128


def test_close_to_fp32(fmnist):
    m, qm = fmnist
    x = _images(m.config, 32, seed=5)
    f, q = m(x), qm(x)
    # a random (untrained) model with enlarged weights: a loose bound; tests/test_int8_accuracy.py
    # holds a trained model to accuracy
    assert np.abs(f - q).max() < 0.1 * np.abs(f).max()
    assert (f.argmax(1) == q.argmax(1)).mean() >= 0.85


def test_api_parity(fmnist):
    m, qm = fmnist
    assert qm.config == m.config
    np.testing.assert_array_equal(qm.path, m.path)
    assert not qm.path.flags.writeable
    other = qm.with_path([1, 0, 1])
    assert other._wbuf is qm._wbuf and list(other.path) == [1, 0, 1]
    x = _images(m.config, 2)
    np.testing.assert_array_equal(other(x), qm(x, path=[1, 0, 1]))
    assert pivot.flops(qm) == pivot.flops(m)
    assert pivot.sim.simulate(other).delay_ms == pivot.sim.simulate(m.with_path([1, 0, 1])).delay_ms
    assert "QuantizedViT(int8" in repr(qm)
    logits, attn, mlp = qm.forward_branches(x, path=[0, 1, 0])
    assert attn[0] is None and attn[1].shape == (2, m.config.num_tokens, 64) and len(mlp) == 3
    deq = qm.dequantized()
    assert isinstance(deq, pivot.ViT)
    assert np.abs(deq(x) - m(x)).max() < 0.1 * np.abs(m(x)).max()  # 7-bit weights (quant.WEIGHT_LEVELS)


def test_bad_arguments(fmnist):
    m, qm = fmnist
    x = _images(m.config, 2)
    with pytest.raises(TypeError):
        quant.quantize(qm, x)
    with pytest.raises(ValueError, match="method"):
        quant.quantize(m, x, method="mse")
    with pytest.raises(ValueError, match="percentile"):
        quant.quantize(m, x, percentile=30)
    with pytest.raises(ValueError, match="activations"):
        quant.quantize(m, x, activations="int4")
    with pytest.raises(ValueError, match="kernel"):
        quant.quantize(m, x, kernel="tpu")
    with pytest.raises(ValueError, match="channels"):
        qm(np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(ValueError):
        qm(x, path=[1, 1])
    with pytest.raises(ValueError):
        qm(x, path=[2, 1, 1])
    with pytest.raises(ValueError, match="threads"):
        qm(x, threads=0)
    linear = pivot.ViT.random(m.config.replace(attention="relu_linear"))
    with pytest.raises(ValueError, match="softmax"):
        quant.quantize(linear, x)


def test_nan_inputs_do_not_crash(fmnist):
    m, qm = fmnist
    x = _images(m.config, 2)
    x[0, 0, :4, :4] = np.nan
    out = qm(x)
    assert out.shape == (2, 10)


def test_save_load_round_trip(fmnist, tmp_path):
    _, qm = fmnist
    for model in (qm, quant.quantize(_model("odd"), _images(CONFIGS["odd"], 4), per_token=True).with_path([1, 2, 0])):
        f = tmp_path / "q.safetensors"
        model.save(f)
        back = quant.load(f)
        assert back.config == model.config and back.per_token == model.per_token
        np.testing.assert_array_equal(back.path, model.path)
        for k, v in model.state_dict().items():
            got = back.state_dict()[k]
            assert got.dtype == v.dtype
            np.testing.assert_array_equal(got, v)
        x = _images(model.config, 3)
        np.testing.assert_array_equal(back(x), model(x))



def test_save_goes_through_io_atomically(fmnist, tmp_path, monkeypatch):
    _, qm = fmnist
    f = tmp_path / "q.safetensors"
    qm.save(f)
    before = f.read_bytes()
    tensors, meta = pivot.io.read_safetensors_as_stored(f, {"I8": "i1", "F32": "<f4"})
    assert meta["format"] == "pivot-int8-v1" and tensors["blocks.0.attn.qkv.weight"].dtype == np.int8
    with pytest.raises(pivot.WeightsFileError, match="dtype I8 is not supported"):
        pivot.io.load_state_dict(f)  # the float loader refuses an int8 file by name

    def no_rename(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        qm.with_path([0] * qm.config.depth).save(f)
    assert f.read_bytes() == before  # the old file is intact and no temporary file is left
    assert [p.name for p in tmp_path.iterdir()] == ["q.safetensors"]


def _rewrite(src, dst, edit):
    data = open(src, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    header, body = edit(header, body)
    raw = json.dumps(header).encode()
    open(dst, "wb").write(struct.pack("<Q", len(raw)) + raw + body)


def test_malformed_files_refused(fmnist, tmp_path):
    _, qm = fmnist
    good = tmp_path / "good.safetensors"
    qm.save(good)
    data = open(good, "rb").read()
    bad = tmp_path / "bad.safetensors"

    def refused(match):
        with pytest.raises(pivot.WeightsFileError, match=match):
            quant.load(bad)

    bad.write_bytes(data[:5])
    refused("shorter than the 8-byte")
    bad.write_bytes(data[:-100])
    refused("data_offsets")
    bad.write_bytes(struct.pack("<Q", 10**9) + data[8:])
    refused("header length")
    bad.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    refused("not valid JSON")

    def drop(key):
        def edit(h, b):
            del h[key]
            return h, b
        return edit

    _rewrite(good, bad, drop("blocks.0.attn.qkv.weight_scale"))  # its bytes stay: a hole in the data
    refused("belong to no tensor")
    tensors, meta = pivot.io.read_safetensors_as_stored(good, {"I8": "i1", "F32": "<f4"})
    pivot.io.write_safetensors_as_given(bad, {k: v for k, v in tensors.items()
                                              if k != "blocks.0.attn.qkv.weight_scale"}, meta)
    refused("missing blocks.0.attn.qkv.weight_scale")

    def set_meta(field, value):
        def edit(h, b):
            h["__metadata__"][field] = value
            return h, b
        return edit

    _rewrite(good, bad, set_meta("format", "something-else"))
    refused("format")
    _rewrite(good, bad, set_meta("pivot.config", "{not json"))
    refused("bad 'pivot.config' metadata")
    _rewrite(good, bad, set_meta("pivot.path", "1x1"))
    refused("pivot.path")

    def retype(h, b):
        h["blocks.1.mlp.fc1.weight"]["dtype"] = "F16"
        return h, b
    _rewrite(good, bad, retype)
    refused("dtype F16 is not supported")

    def as_float(h, b):  # int8 weights stored as float32 of the same byte count: wrong dtype/shape
        e = h["blocks.1.mlp.fc1.weight"]
        e["dtype"], e["shape"] = "F32", [e["shape"][0] // 4, e["shape"][1]]
        return h, b
    _rewrite(good, bad, as_float)
    refused("blocks.1.mlp.fc1.weight")

    def bad_zero_point(h, b):
        begin = h["blocks.2.act_quant"]["data_offsets"][0]
        b = bytearray(b)
        b[begin + 4:begin + 8] = struct.pack("<f", 300.0)  # qkv_in_zp
        return h, bytes(b)
    _rewrite(good, bad, bad_zero_point)
    refused("zero points")
    bad.write_bytes(data[:len(data) // 2])  # truncated in the tensor data
    refused("out of range")
    with pytest.raises(FileNotFoundError, match="weight file not found"):
        quant.load(tmp_path / "missing.safetensors")


def test_multi_effort_and_search(fmnist):
    m, _ = fmnist
    x = _images(m.config, 48, seed=7)
    labels = m(x).argmax(1)
    calib = _images(m.config, 16, seed=8)
    efforts = {e: quant.quantize(m.with_path(p), calib) for e, p in ((1, [1, 0, 0]), (3, [1, 1, 1]))}
    me = pivot.MultiEffort(efforts[1], efforts[3], threshold=0.5)
    res = me.predict(x, labels)
    assert res.logits.shape == (48, 10)
    high = res.used_high
    for rows, model in ((high, efforts[3]), (~high, efforts[1])):
        if rows.any():
            np.testing.assert_array_equal(res.logits[rows], model(x[rows]))
    delay = pivot.sim.simulate(efforts[3]).delay_ms
    result = pivot.search(efforts, x, labels, target_delay_ms=delay, tolerance=0.9, progress=False)
    assert result.low in efforts and result.high in efforts
