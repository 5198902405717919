"""pivot.ViT against the plain PyTorch twin in pivot.torch (skipped without torch)."""
import numpy as np
import pytest

import pivot

from engine_util import DISTILLED, ODD, SMALL, random_images, random_weights

torch = pytest.importorskip("torch")
import pivot.torch as pt  # noqa: E402  (torch is installed: a failure here is pivot's, not a skip)


@pytest.mark.parametrize("cfg", [SMALL, ODD, DISTILLED], ids=["small", "odd", "distilled"])
@pytest.mark.parametrize("path", [None, "skip_two", "all_skipped"])
def test_logits_match_torch_module(cfg, path):
    if path == "skip_two":
        path = [0, 1] + [1, 0] * (cfg.depth // 2) if cfg.depth > 2 else [0, 1]
        path = path[:cfg.depth]
    elif path == "all_skipped":
        path = [0] * cfg.depth
    model = pivot.ViT(cfg, random_weights(cfg))
    module = pt.from_vit(model)
    images = random_images(cfg, 3)
    with torch.inference_mode():
        want = module(torch.from_numpy(images), path=path).numpy()
    assert np.abs(model(images, path=path) - want).max() <= 1e-4


def test_round_trip_through_torch_keeps_weights_and_path():
    model = pivot.ViT(SMALL, random_weights(SMALL), path=[1, 0, 1, 0])
    module = pt.from_vit(model)
    assert set(module.state_dict()) == set(SMALL.weight_shapes())
    back = pt.to_vit(module)
    assert back.path.tolist() == [1, 0, 1, 0]
    np.testing.assert_array_equal(back._params, model._params)
    assert pt.to_vit(module, path=[1, 1, 1, 1]).path.tolist() == [1, 1, 1, 1]


def test_module_uses_its_path_and_refuses_bad_paths():
    model = pivot.ViT(SMALL, random_weights(SMALL))
    module = pt.from_vit(model.with_path([0, 0, 1, 1]))
    images = random_images(SMALL, 2)
    with torch.inference_mode():
        got = module(torch.from_numpy(images)).numpy()
        np.testing.assert_allclose(got, model(images, path=[0, 0, 1, 1]), atol=1e-4)
        with pytest.raises(ValueError, match="entries"):
            module(torch.from_numpy(images), path=[1, 1])
