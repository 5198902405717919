"""The int8 model's fp32 patch embedding on pivot's packed GEMM (``_core.vit_pack_stem``): packed once
per model and level, shared by its copies, used by the engine from the AVX2 level, and the forward
equal to the NumPy twin bit for bit at every SIMD level this CPU has."""
import pickle

import numpy as np
import pytest

import pivot
from pivot import _core, quant
from pivot.reference import quant as ref

START_LEVEL = _core.simd_level()
MAX_LEVEL = _core.set_simd_level(3)
_core.set_simd_level(START_LEVEL)

CONFIGS = {
    # C = 36 (a partial 32-column panel), K2 = 48, distilled
    "odd": pivot.ViTConfig(img_size=12, patch_size=4, in_chans=3, num_classes=7, embed_dim=36, depth=2,
                           num_heads=6, mlp_ratio=2.5, distilled=True),
    # 324 patches: two chunks of the engine's 256-patch embedding, the second partial
    "chunks": pivot.ViTConfig(img_size=72, patch_size=4, in_chans=1, num_classes=5, embed_dim=40, depth=1,
                              num_heads=4, mlp_ratio=2.0),
}


def _images(cfg, n, seed=1):
    return np.random.default_rng(seed).standard_normal((n, cfg.in_chans, cfg.img_size, cfg.img_size)).astype(np.float32)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def models(request):
    cfg = CONFIGS[request.param]
    m = pivot.ViT.random(cfg, seed=0)
    w = {k: (v * 8 if v.ndim == 2 else v) for k, v in m.state_dict().items()}
    m = pivot.ViT(cfg, w)
    return m, quant.quantize(m, _images(cfg, 4, seed=2))


def test_forward_equals_reference_at_every_level(models, vector_simd_level):
    _, qm = models
    x = _images(qm.config, 3)
    want = ref.forward_branches(qm, x)[0]
    for kernel in ("auto", "portable"):
        model = qm.with_precision("int8", kernel=kernel)
        np.testing.assert_array_equal(model(x, threads=1), want, err_msg=kernel)
        np.testing.assert_array_equal(model(x, threads=2), want, err_msg=kernel)


def test_stem_packed_once_and_shared(models, vector_simd_level):
    m, qm = models
    packed = qm._packed()
    if vector_simd_level == 0:  # OpenBLAS on the unpacked weight
        assert packed is None
        return
    c = qm.config
    weight = np.ascontiguousarray(qm.state_dict()["patch_embed.proj.weight"].reshape(c.embed_dim, -1))
    np.testing.assert_array_equal(packed, _core.gemm_pack(weight))
    # the first part of the fp32 layout: the same patch weights, packed alike
    np.testing.assert_array_equal(packed, _core.vit_pack(m._params[:m._engine_floats], c)[:packed.size])
    assert qm._packed() is packed
    assert qm.with_path(np.zeros(c.depth, np.uint8))._packed() is packed
    assert qm.with_precision("int8", kernel="portable")._packed() is packed


def test_level_change_packs_again(models):
    _, qm = models
    if MAX_LEVEL < 2:
        pytest.skip("CPU without two packed levels")
    try:
        _core.set_simd_level(1)
        p1 = qm._packed()
        _core.set_simd_level(2)
        p2 = qm._packed()
        assert p2 is not p1 and qm._packed() is p2
        x = _images(qm.config, 2)
        np.testing.assert_array_equal(qm(x), ref.forward_branches(qm, x)[0])
    finally:
        _core.set_simd_level(START_LEVEL)


def test_pickled_model_packs_again(models):
    _, qm = models
    x = _images(qm.config, 2)
    want = qm(x)
    other = pickle.loads(pickle.dumps(qm))
    np.testing.assert_array_equal(other(x), want)
    if START_LEVEL >= 1:
        assert other._packed() is not qm._packed()
        np.testing.assert_array_equal(other._packed(), qm._packed())


def test_engine_reads_the_packed_stem(models):
    """A zero packed stem zeroes the patch product from the AVX2 level (the engine runs it), and is
    ignored at the portable level."""
    _, qm = models
    x = _images(qm.config, 2)
    args = (x, qm._params, qm.config, qm.path, 1)
    try:
        for lv in range(MAX_LEVEL + 1):
            _core.set_simd_level(lv)
            zero = np.zeros(_core.vit_pack_stem(qm._params, qm.config).size, np.float32)
            got = _core.vit_forward(*args, packed=zero, int8=qm.quantization)
            plain = _core.vit_forward(*args, packed=None, int8=qm.quantization)
            assert np.array_equal(got, plain) == (lv == 0), f"level {lv}"
    finally:
        _core.set_simd_level(START_LEVEL)


def test_bad_packed_stem_refused(models):
    m, qm = models
    x = _images(qm.config, 1)
    with pytest.raises(ValueError, match="packed"):
        _core.vit_forward(x, qm._params, qm.config, qm.path, 1, packed=np.zeros(5, np.float32), int8=qm.quantization)
    if START_LEVEL >= 1:  # the full fp32 layout is not the int8 model's
        with pytest.raises(ValueError, match="packed"):
            _core.vit_forward(x, qm._params, qm.config, qm.path, 1, packed=m._packed(), int8=qm.quantization)
    with pytest.raises(ValueError, match="params"):
        _core.vit_pack_stem(qm._params[:10], qm.config)
