"""pivot.quantize / the int8 precision of pivot.ViT: the C forward equals the NumPy integer
reference bit for bit (every kernel, paths 0/1/2, per-tensor and per-token), one class with the fp32
model, save/load, the C engine's refusals, non-finite values as in fp32."""
import json
import os
import struct

import numpy as np
import pytest

import pivot
from pivot import _core, quant
from pivot.reference import quant as ref

KERNELS = [k for k in ("portable", "avx2", "avxvnni", "vnni", "amx") if _core.int8_kernel_supported(quant.KERNELS[k])]

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
        got, attn, mlp = qm.with_precision("int8", kernel=kernel).forward_branches(x, path=path, threads=2)
        np.testing.assert_array_equal(got, want, err_msg=kernel)
        for a, b in zip(attn, want_attn):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
        for a, b in zip(mlp, want_mlp):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(qm.with_precision("int8", kernel=kernel)(x, path=path, threads=1), want)


def test_options_symmetric_and_percentile(fmnist):
    m, _ = fmnist
    x = _images(m.config, 4)
    for kwargs in ({"activations": "symmetric"}, {"method": "percentile", "percentile": 99.9}):
        qm = quant.quantize(m, _images(m.config, 8), **kwargs)
        np.testing.assert_array_equal(qm(x), ref.forward_branches(qm, x)[0])
        assert qm.quantization.info[next(iter(kwargs))] == next(iter(kwargs.values()))
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


def test_one_class_for_every_precision(fmnist):
    m, qm = fmnist
    assert type(qm) is type(m) is pivot.ViT
    assert (m.precision, qm.precision) == ("fp32", "int8") and m.quantization is None
    assert not hasattr(pivot, "QuantizedViT") and not hasattr(quant, "QuantizedViT")
    assert qm.config == m.config
    np.testing.assert_array_equal(qm.path, m.path)
    assert not qm.path.flags.writeable
    other = qm.with_path([1, 0, 1])
    assert other.quantization is qm.quantization and list(other.path) == [1, 0, 1]
    assert other.precision == "int8"
    x = _images(m.config, 2)
    np.testing.assert_array_equal(other(x), qm(x, path=[1, 0, 1]))
    assert pivot.flops(qm) == pivot.flops(m)
    assert pivot.sim.simulate(other).delay_ms == pivot.sim.simulate(m.with_path([1, 0, 1])).delay_ms
    assert "precision=int8" in repr(qm) and "precision=fp32" in repr(m)
    logits, attn, mlp = qm.forward_branches(x, path=[0, 1, 0])
    assert attn[0] is None and attn[1].shape == (2, m.config.num_tokens, 64) and len(mlp) == 3
    deq = qm.with_precision("fp32")
    assert isinstance(deq, pivot.ViT) and deq.precision == "fp32"
    assert m.with_precision("fp32") is m and qm.with_precision("int8") is qm
    again = m.with_precision("int8", calibration_images=_images(m.config, 24))
    np.testing.assert_array_equal(again(x), qm(x))  # the same switch as pivot.quantize
    with pytest.raises(ValueError, match="precision must be one of"):
        m.with_precision("bf16")
    with pytest.raises(ValueError, match="int8 already"):
        qm.with_precision("int8", calibration_images=x)
    assert np.abs(deq(x) - m(x)).max() < 0.1 * np.abs(m(x)).max()  # 7-bit weights (quant.WEIGHT_LEVELS)


def test_bad_arguments(fmnist):
    m, qm = fmnist
    x = _images(m.config, 2)
    with pytest.raises(ValueError, match="fp32 model"):
        quant.quantize(qm, x)
    with pytest.raises(TypeError):
        quant.quantize(object(), x)
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


def test_nan_inputs_refused_and_calibration_too(fmnist):
    m, qm = fmnist
    x = _images(m.config, 2)
    x[0, 0, :4, :4] = np.nan
    for model in (m, qm):
        with pytest.raises(ValueError, match="NaN or infinite"):
            model(x)
        with pytest.raises(ValueError, match="NaN or infinite"):
            model.forward_branches(x)
    with pytest.raises(ValueError, match="NaN or infinite"):
        quant.quantize(m, x)


def _overflowing(model):
    """``model`` with a patch embedding so large that any pixel of magnitude >= 1 overflows its token."""
    w = model.state_dict()
    w["patch_embed.proj.weight"] = w["patch_embed.proj.weight"] * np.float32(1e38)
    if model.precision == "fp32":
        return pivot.ViT(model.config, w)
    q = model.quantization
    return quant.Int8Weights(model.config, w, per_token=q.per_token, kernel=q.kernel).model()


def test_overflowing_activation_is_nan_as_in_fp32(fmnist):
    # image 0 overflows its patch tokens (not the class token): in fp32 the NaN reaches the class
    # token through attention and the logits; the int8 encoders must not turn it into finite zero
    # codes and answer with plausible logits. Image 1 (zeros) stays finite.
    m, qm = fmnist
    x = np.zeros((2, 1, 28, 28), np.float32)
    x[0, 0, 8:12, 8:12] = -100.0
    want = _overflowing(m)(x)
    assert np.isnan(want[0]).all() and np.isfinite(want[1]).all()
    per_token = quant.quantize(m, _images(m.config, 8), per_token=True)
    for model in (qm, qm.with_precision("int8", kernel="portable"), per_token, qm.with_path([1, 2, 0])):
        bad = _overflowing(model)
        got = bad(x)
        assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
        _, attn, mlp = bad.forward_branches(x)
        assert np.isnan(mlp[-1][0]).all() and np.isfinite(mlp[-1][1]).all()


def test_c_refuses_what_the_int8_encoders_do_not_do(fmnist):
    m, qm = fmnist
    x = _images(m.config, 2)
    w = qm.quantization
    import types
    import dataclasses
    # every field the binding reads by name, as plain attributes of another object
    fields = {f.name: getattr(m.config, f.name) for f in dataclasses.fields(m.config)}
    fields["mlp_hidden"] = m.config.mlp_hidden
    ok = types.SimpleNamespace(**fields)
    path = np.ones(3, np.uint8)
    np.testing.assert_array_equal(_core.vit_forward(x, w.stem_head, ok, path, 1, int8=w), qm(x, threads=1))
    with pytest.raises(ValueError, match="skip_lam must be 1"):
        _core.vit_forward(x, w.stem_head, types.SimpleNamespace(**dict(fields, skip_lam=2.0)), path, 1, int8=w)
    with pytest.raises(TypeError, match="no attribute weights"):
        _core.vit_forward(x, w.stem_head, ok, path, 1, int8=(w.weights, w.floats, False, 0))  # no tuple
    bad = types.SimpleNamespace(weights=w.weights, floats=w.floats, per_token=False, kernel_code=9)
    with pytest.raises(ValueError, match="kernel_code"):
        _core.vit_forward(x, w.stem_head, ok, path, 1, int8=bad)
    with pytest.raises(ValueError, match="capture_inputs"):
        _core.vit_forward(x, w.stem_head, ok, path, 1, capture_inputs=True, int8=w)
    assert not hasattr(_core, "qvit_blocks_forward")


def test_calibration_comes_from_the_engine_captures(fmnist):
    # the captured Linear inputs are what the fp32 forward computes: the MLP output rebuilt from
    # the captured fc2 input equals the engine's own capture
    m, _ = fmnist
    x = _images(m.config, 3)
    path = np.array([1, 0, 2], np.uint8)
    cap = m._run(x, path, 1, capture_inputs=True)[0]
    logits, attn, mlp = m.forward_branches(x, path=path, threads=1)
    np.testing.assert_array_equal(cap["logits"], logits)
    w = m.state_dict()
    D, T, C = 3, m.config.num_tokens, 64
    for i in range(D):
        fc2 = cap["fc2_in"][i].reshape(-1, 256) @ w[f"blocks.{i}.mlp.fc2.weight"].T + w[f"blocks.{i}.mlp.fc2.bias"]
        np.testing.assert_allclose(fc2.reshape(3, T, C), mlp[i], rtol=1e-4, atol=1e-4)
        assert np.abs(cap["qkv"][i]).max() > 0 and np.abs(cap["proj_in"][i]).max() > 0  # the skipped encoder too
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(quant))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any("reference" in name for name in imported)


def test_save_load_round_trip(fmnist, tmp_path):
    _, qm = fmnist
    for model in (qm, quant.quantize(_model("odd"), _images(CONFIGS["odd"], 4), per_token=True).with_path([1, 2, 0])):
        f = tmp_path / "q.safetensors"
        model.save(f)
        back = quant.load(f)
        assert back.config == model.config and back.quantization.per_token == model.quantization.per_token
        assert pivot.ViT.from_timm(f).precision == "int8"  # the one loader reads every precision
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
    for value in (1e38, 1e-40, float("nan"), float("inf"), -1.0, 0.0):
        def bad_scale(h, b, value=value):
            begin = h["blocks.1.act_quant"]["data_offsets"][0]
            b = bytearray(b)
            b[begin + 8:begin + 12] = struct.pack("<f", value)  # q_scale
            return h, bytes(b)
        _rewrite(good, bad, bad_scale)
        refused("blocks.1.act_quant" if np.isfinite(value) else "blocks.1.act_quant: non-finite")

        def bad_weight_scale(h, b, value=value):
            begin = h["blocks.2.mlp.fc1.weight_scale"]["data_offsets"][0]
            b = bytearray(b)
            b[begin + 12:begin + 16] = struct.pack("<f", value)
            return h, bytes(b)
        _rewrite(good, bad, bad_weight_scale)
        refused("blocks.2.mlp.fc1.weight_scale")
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


@pytest.mark.parametrize("eight_bit", [False, True])
def test_deit_s_shaped_forward_every_kernel_equals_portable(eight_bit):
    """DeiT-S's widths (C 384, 6 heads of 64, MLP 1536) at two blocks and 17 tokens: each kernel's
    forward equals the portable kernel's and the NumPy reference bit for bit, with pivot.quantize's
    7-bit weight codes and with full 8-bit codes, +-127 included (the AVX2 kernel's 16-bit tile,
    AVX-VNNI's plain vpdpbusd; -128, which models refuse, is tested on the GEMM alone)."""
    cfg = pivot.ViTConfig(img_size=64, patch_size=16, in_chans=3, num_classes=10, embed_dim=384, depth=2,
                          num_heads=6, mlp_ratio=4.0)
    m = pivot.ViT.random(cfg, seed=3)
    qm = quant.quantize(m, _images(cfg, 4, seed=2), per_token=eight_bit)
    if eight_bit:
        w = qm.state_dict()
        for name in [k for k, v in w.items() if v.dtype == np.int8]:
            codes = np.clip(w[name].astype(np.int16) * 2, -127, 127).astype(np.int8)
            codes[0, 0], codes[-1, -1] = -127, 127
            w[name], w[name + "_scale"] = codes, w[name + "_scale"] / np.float32(2)
        qm = quant.Int8Weights(cfg, w, per_token=True, kernel="auto").model()
    x = _images(cfg, 3)
    want = qm.with_precision("int8", kernel="portable")(x, threads=1)
    np.testing.assert_array_equal(want, ref.forward_branches(qm, x)[0])
    for kernel in KERNELS:
        np.testing.assert_array_equal(qm.with_precision("int8", kernel=kernel)(x, threads=1), want, err_msg=kernel)
