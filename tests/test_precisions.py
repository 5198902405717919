"""Every entry that takes images, at every precision, prepares them in the one place
(pivot.model.prepare_images): uint8 pixels and the same images as normalized floats give the same
answer, and int16 / int32 / int64 pixels and non-finite values are refused by every entry."""
import importlib.util

import numpy as np
import pytest

import pivot
from pivot.model import prepare_images

CONFIG = pivot.ViTConfig(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=64, depth=3, num_heads=4,
                         mlp_ratio=4.0)
PRECISIONS = ["fp32", "int8"]


@pytest.fixture(scope="module")
def models():
    base = pivot.ViT.random(CONFIG, seed=3)
    w = {k: (v * 8 if v.ndim == 2 else v) for k, v in base.state_dict().items()}  # far from uniform attention
    fp32 = pivot.ViT(CONFIG, w)
    calib = np.random.default_rng(4).integers(0, 256, (16, 1, 28, 28), dtype=np.uint8)
    return {"fp32": fp32, "int8": pivot.quantize(fp32, calib)}


def _pixels(n=6, seed=5):
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)


def _ray_cascade(model, images):
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'ray[data]==2.60.*')")
    import ray
    import pivot.distributed as pd
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    cascade = pivot.MultiEffort(model.with_path([1, 0, 0]), model, threshold=0.5)
    out = pd._collect(pd.cascade_predict(cascade, pd.from_numpy(images), batch_size=64))
    return [out["logits"], out["prediction"]]


def _multi_effort(model, images):
    res = pivot.MultiEffort(model.with_path([1, 0, 0]), model, threshold=0.5).predict(images)
    return [res.logits, res.used_high]


ENTRIES = {
    "__call__": lambda m, x: [m(x)],
    "forward_branches": lambda m, x: [a for a in m.forward_branches(x, path=[1, 0, 2])[0:1]]
    + [a for a in m.forward_branches(x, path=[1, 0, 2])[1] if a is not None] + m.forward_branches(x)[2],
    "MultiEffort": _multi_effort,
    "score_paths": lambda m, x: [pivot.score_paths(m, x, [[1, 0, 1], [0, 1, 1]], progress=False)],
    "select_paths": lambda m, x: [np.array([tuple(s.path) for _, s in sorted(pivot.select_paths(
        m, x, efforts=[1, 2], method="output_kl", progress=False).items())])],
    "attention_maps": lambda m, x: [a for a in pivot.attention_maps(m, x, path=[1, 2, 0]) if a is not None],
    "attention_cka_matrix": lambda m, x: [pivot.attention_cka_matrix(m, x)],
    "model_cka": lambda m, x: [pivot.model_cka(m, x, progress=False)],
    "cascade (ray)": _ray_cascade,
}


# Ray's start-up takes most of a minute on two cores: the cascade on Ray is in the slow set.
ENTRY_PARAMS = [pytest.param(name, marks=[pytest.mark.slow] if name == "cascade (ray)" else [])
                for name in sorted(ENTRIES)]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("entry", ENTRY_PARAMS)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_uint8_and_normalized_floats_give_the_same_answer(models, precision, entry):
    model = models[precision]
    pixels = _pixels()
    floats = prepare_images(CONFIG, pixels)
    assert floats.dtype == np.float32 and floats.min() < 0  # (pixel / 255 - 0.5) / 0.5
    _same(ENTRIES[entry](model, pixels), ENTRIES[entry](model, floats))
    # float64 of the same values: the same answer too
    _same(ENTRIES[entry](model, pixels), ENTRIES[entry](model, floats.astype(np.float64)))


@pytest.mark.parametrize("entry", ENTRY_PARAMS)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_other_integer_pixels_and_non_finite_values_are_refused(models, precision, entry):
    model = models[precision]
    pixels = _pixels()
    for dtype in (np.int16, np.int32, np.int64):
        with pytest.raises(TypeError, match=f"dtype {np.dtype(dtype).name}.*uint8"):
            ENTRIES[entry](model, pixels.astype(dtype))
    for bad in (np.nan, np.inf):
        floats = prepare_images(CONFIG, pixels)
        floats[1, 0, 3, 5] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            ENTRIES[entry](model, floats)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_one_class_and_its_round_trips(models, precision, tmp_path):
    import pickle
    model = models[precision]
    assert type(model) is pivot.ViT and model.precision == precision
    x = _pixels(3)
    f = tmp_path / "m.safetensors"
    model.save(f)
    for copy in (pivot.ViT.from_timm(f), pickle.loads(pickle.dumps(model)), model.with_path([1, 1, 1])):
        assert copy.precision == precision
        np.testing.assert_array_equal(copy(x), model(x))


def test_quantize_takes_uint8_calibration_images_as_the_model_does(models):
    fp32 = models["fp32"]
    calib = np.random.default_rng(4).integers(0, 256, (16, 1, 28, 28), dtype=np.uint8)
    a = pivot.quantize(fp32, calib).state_dict()
    b = pivot.quantize(fp32, prepare_images(CONFIG, calib)).state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(TypeError, match="dtype int32"):
        pivot.quantize(fp32, calib.astype(np.int32))


def test_distributed_refuses_result_columns_empty_and_mixed_shapes(models):
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'ray[data]==2.60.*')")
    import ray
    import pivot.distributed as pd
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    model = models["fp32"]
    cascade = pivot.MultiEffort(model.with_path([1, 0, 0]), model, threshold=0.5)
    pixels = _pixels(4)
    ds = pd.from_numpy(pixels)
    for column in ("prediction", "entropy", "logits"):
        mine = ds.add_column(column, lambda batch: np.zeros(len(batch["id"])), batch_format="numpy")
        with pytest.raises(ValueError, match=f"already has column.*{column}"):
            pd.cascade_predict(cascade, mine)
    with pytest.raises(ValueError, match="empty"):
        pd.cascade_predict(cascade, ds.filter(lambda row: False))
    rows = [{"id": i, "image": np.zeros((1, 28, 28) if i % 2 else (1, 14, 14), np.float32)} for i in range(4)]
    with pytest.raises(ValueError, match="different shapes"):
        pd.cascade_predict(cascade, ray.data.from_items(rows))
    with pytest.raises(TypeError, match="dtype int64"):
        pd.from_numpy(pixels.astype(np.int64))
    with pytest.raises(ValueError, match="NaN or infinite"):
        pd.from_numpy(np.full((2, 1, 28, 28), np.nan, np.float32))
    assert ds.take_batch(2, batch_format="numpy")["image"].dtype == np.uint8  # pixels stay pixels
