"""pivot.ViT: whole model against the NumPy float64 reference, paths, branch outputs, edge cases."""
import dataclasses
import threading

import numpy as np
import pytest

import pivot
from pivot import _core
from pivot.reference import engine as ref

from engine_util import DISTILLED, ODD, SMALL, random_images, random_weights

CONFIGS = {"small": SMALL, "odd": ODD, "distilled": DISTILLED}
PATHS = {"full": None, "skip_middle": "1001", "skip_first": "0111", "alternate": "0101"}


def as_path(text, depth):
    if text is None:
        return None
    return [int(c) for c in (text * depth)[:depth]]


@pytest.fixture(scope="module")
def models():
    return {name: (pivot.ViT(cfg, random_weights(cfg)), random_weights(cfg)) for name, cfg in CONFIGS.items()}


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("path_name", PATHS)
def test_logits_match_reference(models, name, path_name):
    model, weights = models[name]
    cfg = model.config
    path = as_path(PATHS[path_name], cfg.depth)
    images = random_images(cfg, 3)
    logits = model(images, path=path)
    assert logits.shape == (3, cfg.num_classes) and logits.dtype == np.float32
    assert np.abs(logits - ref.forward(cfg, weights, images, path)).max() <= 1e-4


@pytest.mark.parametrize("name", ["small", "distilled"])
def test_branches_match_reference(models, name):
    model, weights = models[name]
    cfg = model.config
    path = as_path("1001", cfg.depth)
    images = random_images(cfg, 2)
    logits, attn, mlp = model.forward_branches(images, path=path)
    r_logits, r_attn, r_mlp = ref.forward_branches(cfg, weights, images, path)
    assert len(attn) == len(mlp) == cfg.depth
    np.testing.assert_array_equal(logits, model(images, path=path))
    assert np.abs(logits - r_logits).max() <= 1e-4
    # branch outputs reach |x| ~ 8 here: held to 1e-4 of the tensor's scale max(1, max |x|) (AMX's
    # bf16x3 Linears, csrc/gemm.c, err by ~1e-5 of sum |a||w|; the logits stay within 1e-4)
    def close(got, want):
        return np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())

    for i in range(cfg.depth):
        assert mlp[i].shape == (2, cfg.num_tokens, cfg.embed_dim) and mlp[i].dtype == np.float32
        assert close(mlp[i], r_mlp[i])
        if path[i]:
            assert attn[i].shape == (2, cfg.num_tokens, cfg.embed_dim)
            assert close(attn[i], r_attn[i])
        else:
            assert attn[i] is None and r_attn[i] is None


def test_model_path_is_default_and_with_path_shares_weights(models):
    model, weights = models["small"]
    images = random_images(model.config, 2)
    path = [1, 0, 0, 1]
    skipper = model.with_path(path)
    assert skipper.path.tolist() == path and model.path.tolist() == [1, 1, 1, 1]
    assert skipper._params is model._params
    np.testing.assert_array_equal(skipper(images), model(images, path=path))
    np.testing.assert_array_equal(skipper(images, path=[1, 1, 1, 1]), model(images))
    _, attn, _ = skipper.forward_branches(images)
    assert [a is None for a in attn] == [False, True, True, False]
    with pytest.raises(ValueError):
        skipper.path[0] = 0


def test_all_encoders_skipped(models):
    model, weights = models["distilled"]
    cfg = model.config
    images = random_images(cfg, 2)
    path = [0] * cfg.depth
    logits, attn, mlp = model.forward_branches(images, path=path)
    assert attn == [None] * cfg.depth
    assert np.abs(logits - ref.forward(cfg, weights, images, path)).max() <= 1e-4


def test_batch_one_equals_row_of_batch(models):
    model, _ = models["small"]
    images = random_images(model.config, 4)
    full = model(images)
    for i in (0, 3):
        np.testing.assert_allclose(model(images[i:i + 1]), full[i:i + 1], rtol=1e-5, atol=1e-6)


LINEAR = dataclasses.replace(SMALL, attention="relu_linear")


# linear attention has neither an int8 encoder nor reuse
POOLED_CASES = [(name, path_name, precision) for name in ("small", "odd", "distilled", "linear")
                for path_name in ("all", "last_skipped", "last_reuses", "mixed") for precision in ("fp32", "int8")
                if name != "linear" or (precision == "fp32" and path_name in ("all", "last_skipped"))]


@pytest.mark.parametrize("name, path_name, precision", POOLED_CASES)
def test_last_encoder_on_pooled_tokens_gives_the_same_bits(vector_simd_level, name, path_name, precision):
    """Class pooling reads only the pooled tokens of the last encoder, so from AVX2 up a forward
    computes that encoder's queries, attention output and MLP for those rows alone; a forward that
    captures the branches computes every row. The logits are the same bits, at any thread count."""
    cfg = {"small": SMALL, "odd": ODD, "distilled": DISTILLED, "linear": LINEAR}[name]
    depth = cfg.depth
    path = {"all": None, "last_skipped": [1] * (depth - 1) + [0], "last_reuses": [1] * (depth - 1) + [2],
            "mixed": [1, 0] + [2] * (depth - 2)}[path_name]
    model = pivot.ViT(cfg, random_weights(cfg))
    x = random_images(cfg, 5)
    if precision == "int8":
        model = pivot.quantize(model, x)
    for threads in (1, 2, 3):
        np.testing.assert_array_equal(model(x, path=path, threads=threads),
                                      model.forward_branches(x, path=path, threads=threads)[0],
                                      err_msg=f"threads={threads}")


@pytest.mark.parametrize("name", ["small", "odd", "distilled"])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_small_batches_same_bits_at_every_thread_count(vector_simd_level, name, precision):
    """From AVX2 up every split among threads is of per-row arithmetic (token rows, attention query
    chunks, and at batch sizes below the thread count the patches of the stem), so the logits are
    the same bits at any thread count; the portable level's OpenBLAS products round by their size."""
    cfg = {"small": SMALL, "odd": ODD, "distilled": DISTILLED}[name]
    model = pivot.ViT(cfg, random_weights(cfg))
    x = random_images(cfg, 2)
    if precision == "int8":
        model = pivot.quantize(model, x)
    for batch in (1, 2):
        one = model(x[:batch], threads=1)
        for threads in (2, 3, 5):
            got = model(x[:batch], threads=threads)
            if vector_simd_level:
                np.testing.assert_array_equal(got, one, err_msg=f"batch {batch}, {threads} threads")
            else:
                np.testing.assert_allclose(got, one, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_large_batch_in_chunks_equals_images_alone(precision):
    """A large batch runs in chunks of images (their activations fit the last-level cache): 1600
    SMALL images are a few chunks. Features are per-row arithmetic, the same bits whatever the
    batch (fp32; int8 needs a head); logits differ from one image's call in rounding only."""
    images = random_images(SMALL, 1600)
    headed = pivot.ViT(SMALL, random_weights(SMALL))
    if precision == "int8":
        headed = pivot.quantize(headed, images[:8])
    else:
        bare = dataclasses.replace(SMALL, num_classes=0)
        headless = pivot.ViT(bare, random_weights(bare))
        features = headless(images, threads=2)
    logits = headed(images, threads=2)
    for i in (0, 1, 770, 771, 772, 1541, 1542, 1599):
        np.testing.assert_allclose(logits[i], headed(images[i:i + 1], threads=2)[0], rtol=1e-5, atol=1e-6,
                                   err_msg=f"image {i}")
        if precision == "fp32":
            np.testing.assert_array_equal(features[i], headless(images[i:i + 1], threads=2)[0], err_msg=f"image {i}")


@pytest.mark.parametrize("path", [None, [0, 1, 0, 1]])
def test_threads_agree(models, path):
    model, _ = models["small"]
    images = random_images(model.config, 5)
    one = model(images, path=path, threads=1)
    np.testing.assert_allclose(model(images, path=path, threads=2), one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(images, path=path, threads=7), one, rtol=1e-5, atol=1e-6)


def test_concurrent_calls_from_python_threads_are_identical(models):
    model, _ = models["small"]
    images = random_images(model.config, 6)
    want = model(images, threads=2)
    results, errors = [None] * 6, []

    def work(i):
        try:
            results[i] = model(images, threads=2)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, want)


def test_float64_and_noncontiguous_and_integer_input(models):
    model, _ = models["small"]
    images = random_images(model.config, 2)
    want = model(images)
    np.testing.assert_array_equal(model(images.astype(np.float64)), want)
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    view = nhwc.transpose(0, 3, 1, 2)
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(model(view), want)
    np.testing.assert_array_equal(model(images.tolist()), want)
    ints = np.arange(2 * 3 * 32 * 32).reshape(2, 3, 32, 32) % 7
    with pytest.raises(TypeError, match="dtype int64"):  # not pixels (uint8) nor normalized floats
        model(ints)


def test_nan_input_refused_and_propagates_in_the_engine(models):
    model, _ = models["small"]
    images = random_images(model.config, 3)
    images[1, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model(images)
    logits = _core.vit_forward(images, model._params, model.config, model.path, 1, packed=model._packed())
    assert np.isnan(logits[1]).all()
    assert np.isfinite(logits[[0, 2]]).all()
    np.testing.assert_allclose(logits[[0, 2]], model(images[[0, 2]]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,match", [
    ((2, 3, 32), "4-D"),
    ((1, 2, 3, 32, 32), "4-D"),
    ((2, 1, 32, 32), "channels"),
    ((2, 4, 32, 32), "channels"),
    ((2, 3, 32, 31), "32x32"),
    ((2, 3, 64, 64), "32x32"),
    ((0, 3, 32, 32), "empty"),
])
def test_bad_image_shapes_raise(models, shape, match):
    model, _ = models["small"]
    with pytest.raises(ValueError, match=match):
        model(np.zeros(shape, np.float32))


def test_bad_image_dtype_raises(models):
    model, _ = models["small"]
    with pytest.raises(TypeError, match="dtype"):
        model(np.zeros((1, 3, 32, 32), np.complex64))


@pytest.mark.parametrize("path,match", [
    ([1, 1, 1], "3 entries"),
    ([1, 1, 1, 1, 1], "5 entries"),
    ([1, 3, 1, 1], "0 or 1"),  # (2 is attention reuse since the modes area: tests/test_modes_engine.py)
    ([1, -1, 1, 1], "0 or 1"),
    ([[1, 1], [1, 1]], "1-D"),
    ([0.5, 1, 1, 1], "0 or 1"),
])
def test_bad_paths_raise(models, path, match):
    model, _ = models["small"]
    images = random_images(model.config, 1)
    with pytest.raises(ValueError, match=match):
        model(images, path=path)
    with pytest.raises(ValueError, match=match):
        model.with_path(path)


def test_bool_and_numpy_paths_accepted(models):
    model, _ = models["small"]
    images = random_images(model.config, 1)
    want = model(images, path=[1, 0, 1, 0])
    np.testing.assert_array_equal(model(images, path=np.array([True, False, True, False])), want)
    np.testing.assert_array_equal(model(images, path=(1.0, 0.0, 1.0, 0.0)), want)


@pytest.mark.parametrize("threads", [0, -1, 2000, 1.5, True])
def test_bad_threads_raise(models, threads):
    model, _ = models["small"]
    with pytest.raises((ValueError, TypeError), match="threads"):
        model(random_images(model.config, 1), threads=threads)


# ---------------------------------------------------------------- construction and weights
def test_strict_weight_checking_lists_every_problem():
    weights = random_weights(SMALL)
    del weights["blocks.0.norm1.weight"]
    del weights["head.bias"]
    weights["blocks.9.mlp.fc1.weight"] = np.zeros((3, 3), np.float32)
    weights["blocks.1.attn.qkv.weight"] = np.zeros((48, 48), np.float32)
    weights["pos_embed"] = np.zeros((1, 16, 48), np.float32)
    with pytest.raises(ValueError) as info:
        pivot.ViT(SMALL, weights)
    msg = str(info.value)
    for part in ["missing keys (2)", "blocks.0.norm1.weight", "head.bias", "unexpected keys (1)",
                 "blocks.9.mlp.fc1.weight", "blocks.1.attn.qkv.weight: shape (48, 48), expected (144, 48)",
                 "pos_embed: shape (1, 16, 48), expected (1, 17, 48)"]:
        assert part in msg


def test_weights_must_be_numeric_and_config_typed():
    weights = random_weights(SMALL)
    weights["norm.bias"] = np.array(["a"] * 48)
    with pytest.raises(ValueError, match="norm.bias: dtype"):
        pivot.ViT(SMALL, weights)
    with pytest.raises(TypeError, match="ViTConfig"):
        pivot.ViT({"embed_dim": 48}, random_weights(SMALL))
    with pytest.raises(TypeError, match="mapping"):
        pivot.ViT(SMALL, [1, 2, 3])


def test_float16_and_float64_weights_are_converted():
    weights = random_weights(SMALL)
    half = {k: v.astype(np.float16) for k, v in weights.items()}
    model = pivot.ViT(SMALL, half)
    np.testing.assert_array_equal(model.state_dict()["head.weight"], half["head.weight"].astype(np.float32))
    double = pivot.ViT(SMALL, {k: v.astype(np.float64) for k, v in weights.items()})
    images = random_images(SMALL, 1)
    np.testing.assert_array_equal(double(images), pivot.ViT(SMALL, weights)(images))


def test_model_owns_a_private_copy_of_weights():
    weights = random_weights(SMALL)
    model = pivot.ViT(SMALL, weights)
    images = random_images(SMALL, 2)
    before = model(images)
    for w in weights.values():
        w[...] = 0.0
    np.testing.assert_array_equal(model(images), before)
    sd = model.state_dict()
    sd["head.weight"][...] = 1.0
    np.testing.assert_array_equal(model(images), before)
    assert list(sd) == list(SMALL.weight_shapes())
    assert all(v.dtype == np.float32 for v in sd.values())


def test_state_dict_round_trip():
    model = pivot.ViT(DISTILLED, random_weights(DISTILLED))
    again = pivot.ViT(DISTILLED, model.state_dict(), path=[1, 0, 1])
    images = random_images(DISTILLED, 2)
    np.testing.assert_array_equal(again(images, path=[1, 1, 1]), model(images))


def test_random_is_seeded_and_timm_like():
    a, b = pivot.ViT.random(SMALL, seed=3), pivot.ViT.random(SMALL, seed=3)
    np.testing.assert_array_equal(a._params, b._params)
    assert not np.array_equal(a._params, pivot.ViT.random(SMALL, seed=4)._params)
    sd = a.state_dict()
    np.testing.assert_array_equal(sd["blocks.0.norm1.weight"], 1.0)
    np.testing.assert_array_equal(sd["blocks.0.attn.qkv.bias"], 0.0)
    w = sd["blocks.0.mlp.fc1.weight"]
    assert abs(w.std() - 0.02) < 0.003 and np.abs(w).max() <= 0.04 + 1e-7
    logits = a(random_images(SMALL, 2))
    assert np.isfinite(logits).all()


def test_repr_and_config():
    model = pivot.ViT.random(SMALL, path=[1, 0, 1, 1])
    assert model.config is SMALL
    text = repr(model)
    assert "embed_dim=48" in text and "path=1011" in text and "3/4" in text


# ---------------------------------------------------------------- flops
def test_flops_counts_matrix_products_and_falls_with_skips():
    cfg = pivot.ViTConfig.preset("deit_small_patch16_224")
    full = pivot.flops(cfg)
    # DeiT-S is about 4.6 GMACs -> 9.2 GFLOPs
    assert 9.0e9 < full < 9.4e9
    counts = [pivot.flops(cfg, [1] * k + [0] * (12 - k)) for k in (12, 9, 6, 3, 0)]
    assert counts[0] == full and all(a > b for a, b in zip(counts, counts[1:]))
    T, C = cfg.num_tokens, cfg.embed_dim
    per_attention = 2 * (4 * T * C * C + 2 * T * T * C)
    assert counts[0] - counts[1] == 3 * per_attention
    model = pivot.ViT.random(SMALL, path=[0, 0, 1, 1])
    assert pivot.flops(model) == pivot.flops(SMALL, [0, 0, 1, 1]) < pivot.flops(SMALL)
    assert pivot.flops(model, path=[1, 1, 1, 1]) == pivot.flops(SMALL)
    dist = pivot.ViTConfig.preset("deit_small_distilled_patch16_224")
    assert pivot.flops(dist) > full
    with pytest.raises(TypeError):
        pivot.flops("deit")


# ---------------------------------------------------------------- save / load
def test_save_load_round_trip_bit_for_bit(tmp_path):
    model = pivot.ViT(DISTILLED, random_weights(DISTILLED), path=[1, 0, 1])
    file = tmp_path / "model.safetensors"
    model.save(file)
    again = pivot.ViT.from_timm(file)
    assert again.config == model.config
    assert again.path.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(again._params, model._params)
    images = random_images(DISTILLED, 2)
    np.testing.assert_array_equal(again(images), model(images))


def test_threads_default_follows_threadpoolctl_and_blas_setting_is_restored(models):
    import threadpoolctl
    from pivot.model import default_threads

    model, _ = models["small"]
    before = pivot._core.blas_get_num_threads()
    with threadpoolctl.threadpool_limits(1):
        assert default_threads() == 1
    model(random_images(model.config, 2), threads=2)
    assert pivot._core.blas_get_num_threads() == before
