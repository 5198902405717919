"""Reliability: bad inputs to the model give a clear Python exception or a documented result,
never a crash (the bad-input matrix)."""
import dataclasses
import time
import types

import numpy as np
import pytest

import pivot
from pivot import _core
from rel_util import CONFIGS, TIMM, images


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def model(request):
    return pivot.ViT.random(CONFIGS[request.param], seed=1)


@pytest.fixture(scope="module")
def timm_model():
    return pivot.ViT.random(TIMM, seed=1)


# ------------------------------------------------------------------------ images: refused

@pytest.mark.parametrize("dtype", [object, complex, bool, "U3", "S3", "M8[s]", [("a", "f4"), ("b", "f4")]])
def test_wrong_dtype_is_a_type_error(model, dtype):
    x = np.zeros((1, 3, 8, 8), dtype=dtype)
    with pytest.raises(TypeError, match="images have dtype"):
        model(x)


@pytest.mark.parametrize("shape", [(3, 8, 8), (8, 8), (1, 1, 3, 8, 8), (), (1,)])
def test_wrong_rank_is_a_value_error(model, shape):
    with pytest.raises(ValueError, match="4-D"):
        model(np.zeros(shape, np.float32))


def test_wrong_channel_count(model):
    with pytest.raises(ValueError, match="channels"):
        model(np.zeros((1, 1, 8, 8), np.float32))


@pytest.mark.parametrize("size", [(4, 8), (8, 4), (16, 16), (0, 0)])
def test_wrong_image_size(model, size):
    with pytest.raises(ValueError, match="expects 8x8"):
        model(np.zeros((1, 3) + size, np.float32))


def test_empty_batch(model):
    with pytest.raises(ValueError, match="empty batch"):
        model(np.zeros((0, 3, 8, 8), np.float32))


def test_not_an_array(model):
    with pytest.raises((TypeError, ValueError)):
        model("images")
    with pytest.raises((TypeError, ValueError)):
        model([[1, 2], [3]])  # ragged


# ------------------------------------------------------------------------ images: accepted, same result

def _layouts(x):
    yield "fortran", np.asfortranarray(x)
    wide = np.zeros(x.shape[:3] + (2 * x.shape[3],), np.float32)
    wide[..., ::2] = x
    yield "strided", wide[..., ::2]
    readonly = x.copy()
    readonly.flags.writeable = False
    yield "read-only", readonly
    buf = np.zeros(x.nbytes + 1, np.uint8)
    misaligned = buf[1:].view(np.float32).reshape(x.shape)
    misaligned[...] = x
    assert not misaligned.flags.aligned
    yield "misaligned", misaligned
    yield "big-endian", x.astype(">f4")
    yield "float64", x.astype(np.float64)
    yield "broadcast", np.broadcast_to(x[:1], x.shape)  # zero stride along the batch


def test_layouts_give_bitwise_the_contiguous_result(model):
    x = images(model.config)
    for name, arr in _layouts(x):
        expected = model(np.ascontiguousarray(arr, dtype=np.float32), threads=1)
        np.testing.assert_array_equal(model(arr, threads=1), expected, err_msg=name)
    np.testing.assert_array_equal(model(np.asfortranarray(x), threads=1), model(x, threads=1))


def test_integer_images_other_than_uint8_are_refused(model):
    x = np.arange(2 * 3 * 64, dtype=np.int16).reshape(2, 3, 8, 8) - 100
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32):
        with pytest.raises(TypeError, match=f"dtype {np.dtype(dtype).name}.*uint8 pixels"):
            model(x.astype(dtype), threads=1)
    # uint8 is pixels: normalized with the model's input normalization first
    pixels = np.arange(2 * 3 * 64, dtype=np.uint8).reshape(2, 3, 8, 8)
    mean, std = (np.asarray(v, np.float32).reshape(1, 3, 1, 1) for v in model.config.input_normalization)
    np.testing.assert_array_equal(model(pixels, threads=1),
                                  model((pixels.astype(np.float32) / np.float32(255) - mean) / std, threads=1))


def test_caller_images_are_not_modified(model):
    x = images(model.config)
    before = x.copy()
    model(x)
    model.forward_branches(x)
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------------ NaN and Inf: documented result

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixel_is_refused_and_poisons_only_its_own_image_below(model, bad):
    """Documented: a NaN or +-Inf pixel is refused; below that check, the engine keeps a non-finite
    value to its own image (that image's logits NaN, the other images unaffected)."""
    x = images(model.config, batch=3)
    clean = model(x, threads=1)
    x[1, 0, 2, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        model(x, threads=1)
    out = _core.vit_forward(x, model._params[:model._engine_floats], model.config, model.path, 1, stem=model._stem)
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[[0, 2]], clean[[0, 2]], rtol=1e-5, atol=1e-6)


def test_huge_finite_pixels_do_not_crash(model):
    x = np.full((1, 3, 8, 8), 3e38, np.float32)
    out = model(x)
    assert out.shape == (1, 3)  # values may overflow to inf/NaN; never a crash


# ------------------------------------------------------------------------ paths

@pytest.mark.parametrize("path", [[1, 3, 1], [1, -1, 1], [1, 0.5, 1], [1, np.nan, 1], [1, np.inf, 1], [1, 255, 1],
                                  [1, 256, 1], [1, 1e30, 1]])
def test_path_values_other_than_0_1_2(timm_model, path):
    with pytest.raises(ValueError, match="path values"):
        timm_model(images(TIMM), path=path)


@pytest.mark.parametrize("path", [[1, 1], [1, 1, 1, 1], [[1, 1, 1]], 1, "111", []])
def test_path_of_wrong_shape(timm_model, path):
    with pytest.raises((ValueError, TypeError)):
        timm_model(images(TIMM), path=path)


def test_path_of_wrong_type():
    with pytest.raises(ValueError):
        pivot.normalize_path(["1", "0", "1"], 3)
    with pytest.raises(ValueError):
        pivot.normalize_path(np.array([1, 0, 1], dtype=object), 3)
    with pytest.raises(ValueError):
        pivot.normalize_path(np.array([1 + 0j, 0, 1]), 3)


def test_reuse_needs_an_earlier_active_encoder(timm_model):
    with pytest.raises(ValueError, match="earlier"):
        timm_model(images(TIMM), path=[2, 1, 1])
    with pytest.raises(ValueError, match="earlier"):
        timm_model(images(TIMM), path=[0, 2, 1])
    timm_model(images(TIMM), path=[1, 2, 0])  # accepted


def test_reuse_refused_on_lvvit():
    model = pivot.ViT.random(CONFIGS["lvvit"])
    with pytest.raises(ValueError, match="reuse"):
        model(images(model.config), path=[1, 2])


def test_bool_and_float_paths_accepted(timm_model):
    x = images(TIMM)
    expected = timm_model(x, path=[1, 0, 1], threads=1)
    np.testing.assert_array_equal(timm_model(x, path=np.array([True, False, True]), threads=1), expected)
    np.testing.assert_array_equal(timm_model(x, path=np.array([1.0, 0.0, 1.0]), threads=1), expected)


@pytest.mark.parametrize("threads", [0, -1, 1025, 1.5, True, "2"])
def test_bad_thread_counts(timm_model, threads):
    with pytest.raises((TypeError, ValueError)):
        timm_model(images(TIMM), threads=threads)


# ------------------------------------------------------------------------ the binding called directly

def test_binding_refuses_bad_path_values_directly(timm_model):
    x = images(TIMM)
    with pytest.raises(ValueError, match="path values"):
        _core.vit_forward(x, timm_model._params, timm_model.config, np.array([1, 7, 1], np.uint8), 1)
    with pytest.raises(ValueError, match="path"):
        _core.vit_forward(x, timm_model._params, timm_model.config, np.array([1, 7, 1], np.uint8), 1,
                          capture_probs=True)
    with pytest.raises(TypeError, match="dtype"):
        _core.vit_forward(x, timm_model._params, timm_model.config, np.array([1, 0, 1], np.int64), 1)


def test_binding_refuses_wrong_arrays(timm_model):
    x, params, cfg, path = images(TIMM), timm_model._params, timm_model.config, np.ones(3, np.uint8)
    bad_calls = [
        (x.astype(np.float64), params, cfg, path),            # dtype
        (np.asfortranarray(x), params, cfg, path),            # contiguity
        (x, params[:-1], cfg, path),                          # parameter count
        (x, params, cfg, np.ones(4, np.uint8)),               # path length
        (x[:, :1], params, cfg, path),                        # channels
        (x, params, (8, 4, 3), path),                         # not a config
        (x, params, _raw_config(cfg, img_size=-8), path),     # negative size
        (x, params, _raw_config(cfg, stem="conv"), path),     # unknown stem
        (x, "params", cfg, path),                             # not an array
    ]
    for args in bad_calls:
        with pytest.raises((TypeError, ValueError)):
            _core.vit_forward(*args, 1)


def test_binding_misaligned_array_is_refused_not_read(timm_model):
    buf = np.zeros(images(TIMM).nbytes + 1, np.uint8)
    x = buf[1:].view(np.float32).reshape(images(TIMM).shape)
    with pytest.raises(ValueError, match="aligned"):
        _core.vit_forward(x, timm_model._params, timm_model.config, np.ones(3, np.uint8), 1)


# ------------------------------------------------------------------------ sizes whose products overflow

@pytest.mark.parametrize("changes", [dict(depth=10 ** 9), dict(depth=4097), dict(embed_dim=2 ** 31, num_heads=1),
                                     dict(img_size=2 ** 20, patch_size=1), dict(num_classes=2 ** 40),
                                     dict(embed_dim=2 ** 20, num_heads=1, mlp_ratio=2.0 ** 12),
                                     dict(img_size=2 ** 14, patch_size=1)])
def test_huge_configs_are_refused_quickly(changes):
    start = time.perf_counter()
    with pytest.raises(ValueError):
        pivot.ViTConfig(**changes)
    assert time.perf_counter() - start < 1.0


def _raw_config(config, **fields):
    """An object with a ViTConfig's attributes that skips its Python checks (the binding's own
    checks are under test)."""
    values = dataclasses.asdict(config)
    values.update(mlp_hidden=config.mlp_hidden)
    values.update(fields)
    return types.SimpleNamespace(**values)


SMALL = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=3, num_classes=10, embed_dim=8, depth=2, num_heads=2,
                        mlp_ratio=2.0)


@pytest.mark.parametrize("fields", [
    dict(img_size=2 ** 40, patch_size=1),                     # img_size^2 tokens
    dict(embed_dim=2 ** 62),                                  # embed_dim
    dict(depth=2 ** 62),                                      # depth
    dict(num_classes=2 ** 62),                                # classes
    dict(in_chans=2 ** 62),                                   # channels
])
def test_binding_size_overflow_is_a_clear_error(fields):
    cfg = _raw_config(SMALL, **fields)
    with pytest.raises((OverflowError, ValueError)):
        _core.model_num_params(cfg)
    x = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises((OverflowError, ValueError)):
        _core.vit_forward(x, np.zeros(10, np.float32), cfg, np.ones(2, np.uint8), 1)


def test_cka_and_sim_size_checks():
    with pytest.raises(ValueError):
        _core.rank_paths(np.zeros((64, 64)), 32, 2 ** 60)  # k > what fits: refused, never under-allocated
    with pytest.raises(ValueError):
        _core.rank_paths(np.zeros((65, 65)), 1, 1)
    with pytest.raises(ValueError):
        pivot.rank_paths(np.zeros((4, 4)), effort=9, top_k=1)


# ------------------------------------------------------------------------ arrays changed by the caller after loading

def test_weights_changed_after_loading_do_not_reach_the_model():
    weights = pivot.ViT.random(TIMM, seed=3).state_dict()
    model = pivot.ViT(TIMM, weights)
    x = images(TIMM)
    before = model(x, threads=1)
    for value in weights.values():
        value[...] = np.nan
    np.testing.assert_array_equal(model(x, threads=1), before)


def test_state_dict_is_a_copy_and_params_are_read_only(model):
    x = images(model.config)
    before = model(x, threads=1)
    for value in model.state_dict().values():
        value[...] = 7.0
    np.testing.assert_array_equal(model(x, threads=1), before)
    with pytest.raises(ValueError):
        model._params[0] = 1.0
    with pytest.raises(ValueError):
        model.path[0] = 0


def test_path_changed_after_with_path_does_not_reach_the_model(timm_model):
    path = np.array([1, 0, 1], np.uint8)
    model = timm_model.with_path(path)
    x = images(TIMM)
    before = model(x, threads=1)
    path[:] = [7, 7, 7]  # the caller's array stays theirs: writable, and not the model's
    assert path.flags.writeable
    np.testing.assert_array_equal(model(x, threads=1), before)
    np.testing.assert_array_equal(model.path, [1, 0, 1])


def test_loaded_file_changed_after_loading(tmp_path):
    model = pivot.ViT.random(TIMM, seed=4)
    file = tmp_path / "m.safetensors"
    model.save(file)
    loaded = pivot.ViT.from_timm(file)
    x = images(TIMM)
    before = loaded(x, threads=1)
    file.write_bytes(b"\0" * 100)  # truncate / overwrite the file: nothing of it is mapped
    np.testing.assert_array_equal(loaded(x, threads=1), before)


def test_weights_with_non_finite_values_load_and_give_nan():
    """Documented: NaN weights are data (loadable); they make the logits NaN, never crash."""
    weights = pivot.ViT.random(TIMM).state_dict()
    weights["head.weight"][0, 0] = np.nan
    out = pivot.ViT(TIMM, weights)(images(TIMM))
    assert np.isnan(out[:, 0]).all()


def test_binding_leaves_the_callers_argument_tuple_alone(timm_model):
    """f(*t) hands t itself to a METH_VARARGS function: the private path copy must go into a new
    tuple, never into the caller's."""
    path = np.ones(3, np.uint8)
    args = (images(TIMM), timm_model._params, timm_model.config, path, 1, True)
    _core.vit_forward(*args)
    _core.vit_forward(*args[:5], capture_probs=True)
    assert args[3] is path


@pytest.mark.parametrize("depth", [10 ** 9, 2 ** 63])
def test_file_metadata_with_a_huge_depth_is_refused_quickly(tmp_path, depth):
    """A stranger's file whose pivot.config says depth 10^9 used to hang listing its weights."""
    import dataclasses
    import json
    model = pivot.ViT.random(TIMM)
    config = dict(dataclasses.asdict(TIMM), depth=depth)
    pivot.io.save_safetensors(tmp_path / "m.safetensors", model.state_dict(),
                              {"pivot.config": json.dumps(config), "pivot.path": "111"})
    start = time.perf_counter()
    with pytest.raises(pivot.WeightsFileError, match="depth"):
        pivot.ViT.from_timm(tmp_path / "m.safetensors")
    assert time.perf_counter() - start < 5.0
