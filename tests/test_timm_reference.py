"""pivot's logits against timm's real VisionTransformer on recorded cases.

tests/reference/timm_reference.npz was made by tests/reference/make_timm_reference.py (the
command is stored in the file and at the top of the script) with timm's own modules; the weights
are regenerated here from their seeds by tests/reference/random_weights.py.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import pivot
from pivot.checkpoints import infer_config
from pivot.io import load_state_dict, save_safetensors
from pivot.reference import engine as reference_engine

REFERENCE_DIR = Path(__file__).parent / "reference"
TOLERANCE = 1e-4  # max abs logit difference allowed against timm (fp32 both sides)


def _load_random_weights():
    spec = importlib.util.spec_from_file_location("pivot_tests_random_weights", REFERENCE_DIR / "random_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


random_weights = _load_random_weights()
REFERENCE = dict(np.load(REFERENCE_DIR / "timm_reference.npz", allow_pickle=False))
CASES = json.loads(str(REFERENCE["cases"]))


def _case(name):
    """(config dict, weights, images, paths, logits) of a recorded case, weights regenerated."""
    config = json.loads(str(REFERENCE[f"{name}/config"]))
    shapes = {key: tuple(shape) for key, shape in json.loads(str(REFERENCE[f"{name}/shapes"]))}
    weights = random_weights.make_weights(shapes, int(REFERENCE[f"{name}/weight_seed"]))
    images = random_weights.make_images(int(REFERENCE[f"{name}/batch"]), config["in_chans"], config["img_size"],
                                        int(REFERENCE[f"{name}/image_seed"]))
    assert random_weights.digest(weights) == str(REFERENCE[f"{name}/weights_digest"]), \
        "regenerated weights differ from the ones timm saw (did NumPy's random streams change?)"
    assert random_weights.digest({"images": images}) == str(REFERENCE[f"{name}/images_digest"]), \
        "regenerated images differ from the ones timm saw"
    return config, weights, images, REFERENCE[f"{name}/paths"], REFERENCE[f"{name}/logits"]


def test_reference_file_is_small_and_records_its_origin():
    assert (REFERENCE_DIR / "timm_reference.npz").stat().st_size < 1_000_000
    assert "make_timm_reference.py" in str(REFERENCE["command"])
    assert str(REFERENCE["timm_version"]) and str(REFERENCE["torch_version"])
    assert len(CASES) >= 3
    for name in CASES:
        paths = REFERENCE[f"{name}/paths"]
        assert paths[0].all(), "first recorded path is the full path"
        assert (paths.min(axis=1) == 0).sum() >= 2, "at least two skip paths"


@pytest.mark.parametrize("name", CASES)
def test_timm_key_names_and_shapes_match_config(name):
    config, weights, *_ = _case(name)
    expected = pivot.ViTConfig(**config)
    assert {k: v.shape for k, v in weights.items()} == dict(expected.weight_shapes())
    assert infer_config(weights, num_heads=config["num_heads"]) == expected


# -- the engine's float64 NumPy reference: checks the recorded file itself (weights, images,
#    what a skip means), independently of the C engine.

def _is_small(name):
    config = pivot.ViTConfig(**json.loads(str(REFERENCE[f"{name}/config"])))
    return config.num_tokens * config.embed_dim * config.depth < 200_000


# The float64 reference takes seconds per DeiT pass, so it checks the small cases only; on DeiT
# the engine test below stands as a second implementation agreeing with timm.
@pytest.mark.parametrize("name", [name for name in CASES if _is_small(name)])
def test_recorded_timm_logits_match_a_numpy_float64_vit(name):
    config, weights, images, paths, logits = _case(name)
    for path, expected in zip(paths, logits):
        got = reference_engine.forward(pivot.ViTConfig(**config), weights, images, path)
        assert np.abs(got - expected).max() <= TOLERANCE, f"path {path.tolist()}"


# -- pivot's engine against timm

@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("source", ["dict", "safetensors"])
def test_pivot_logits_match_timm(name, source, tmp_path):
    config, weights, images, paths, logits = _case(name)
    if source == "safetensors":
        file = tmp_path / "weights.safetensors"
        save_safetensors(file, weights)
        assert all(np.array_equal(load_state_dict(file)[0][k], weights[k]) for k in weights)
        weights = file
    model = pivot.ViT.from_timm(weights, num_heads=config["num_heads"])
    assert model.config == pivot.ViTConfig(**config)
    for path, expected in zip(paths, logits):
        got = model(images, path=path)
        assert got.dtype == np.float32 and got.shape == expected.shape
        diff = np.abs(got.astype(np.float64) - expected).max()
        assert diff <= TOLERANCE, f"{name} path {path.tolist()}: max abs logit difference {diff:.2e}"
