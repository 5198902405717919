"""pivot.select_paths / score_paths on a tiny model: each method against brute force over all
C(D, e) paths, determinism, and clear errors on bad input."""
import itertools

import numpy as np
import pytest

import pivot
from engine_util import random_images, random_weights

CONFIG = pivot.ViTConfig(img_size=16, patch_size=8, in_chans=3, num_classes=6, embed_dim=24, depth=5,
                         num_heads=2, mlp_ratio=2.0)
OUTPUT_METHODS = ("output_kl", "accuracy", "cross_entropy")


@pytest.fixture(scope="module")
def data():
    model = pivot.ViT(CONFIG, random_weights(CONFIG, seed=4, scale=0.3))
    images = random_images(CONFIG, 40, seed=5)
    labels = model(images).argmax(1)  # labels the full model mostly gets right, shuffled a little
    labels[::3] = (labels[::3] + 1) % CONFIG.num_classes
    return model, images, labels


def _softmax(z):
    z = z.astype(np.float64) - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _brute_force(model, images, labels, method, effort):
    """Every path of the effort scored in plain NumPy from the engine's logits; best first, ties
    to the lexicographically greater mask."""
    depth = CONFIG.depth
    full = _softmax(model(images, path=np.ones(depth, np.uint8)))
    rows = []
    for active in itertools.combinations(range(depth), effort):
        path = np.zeros(depth, np.uint8)
        path[list(active)] = 1
        p = _softmax(model(images, path=path))
        if method == "output_kl":
            score, better = float(np.mean(np.sum(full * np.log(full / p), axis=1))), -1
        elif method == "accuracy":
            score, better = float(np.mean(p.argmax(1) == labels)), 1
        else:
            score, better = float(np.mean(-np.log(p[np.arange(len(p)), labels]))), -1
        rows.append((better * score, tuple(path.tolist()), score))
    rows.sort(key=lambda r: (-r[0], tuple(-v for v in r[1])))
    return rows


@pytest.mark.parametrize("method", OUTPUT_METHODS)
def test_exhaustive_beam_equals_brute_force(data, method):
    model, images, labels = data
    got = pivot.select_paths(model, images, labels, efforts=range(0, CONFIG.depth + 1), method=method,
                             budget=10, progress=False)  # C(5, e) <= 10: the beam holds every path
    for effort in range(1, CONFIG.depth):
        want = _brute_force(model, images, labels, method, effort)
        assert got[effort].path == want[0][1], (method, effort)
        assert got[effort].score == pytest.approx(want[0][2], rel=1e-6, abs=1e-9)
        assert got[effort].effort == effort and got[effort].method == method
    assert got[CONFIG.depth].path == (1,) * CONFIG.depth


@pytest.mark.parametrize("method", OUTPUT_METHODS)
def test_greedy_follows_the_best_single_removal(data, method):
    model, images, labels = data
    got = pivot.select_paths(model, images, labels, efforts=[CONFIG.depth - 1, CONFIG.depth - 2], method=method,
                             budget=1, progress=False)
    first = _brute_force(model, images, labels, method, CONFIG.depth - 1)[0][1]
    assert got[CONFIG.depth - 1].path == first
    # greedy: the next path removes one more attention from the first one
    second = got[CONFIG.depth - 2].path
    assert sum(second) == CONFIG.depth - 2 and all(s <= f for s, f in zip(second, first))
    # and it is the best such child
    children = [c for c in _brute_force(model, images, labels, method, CONFIG.depth - 2)
                if all(s <= f for s, f in zip(c[1], first))]
    assert second == children[0][1]


def test_path_score_equals_best_paths_of_model_cka(data):
    model, images, _ = data
    got = pivot.select_paths(model, images, efforts=[1, 2, 3], method="path_score", progress=False)
    cka = pivot.model_cka(model, images, batch_size=256, progress=False)
    want = pivot.best_paths(cka, [1, 2, 3])
    for e in (1, 2, 3):
        assert got[e].path == want[e].path and got[e].score == want[e].score
        assert isinstance(got[e], pivot.ScoredPath)
    # and the brute force over Path-Scores agrees
    ranked = pivot.rank_paths(cka, 2)
    assert got[2].path == ranked[0].path


@pytest.mark.parametrize("method", list(pivot.path_select.METHODS))
def test_score_paths_matches_select_and_is_deterministic(data, method):
    model, images, labels = data
    chosen = pivot.select_paths(model, images, labels, efforts=[2, 3], method=method, progress=False)
    paths = [chosen[2].path, chosen[3].path, (1, 0, 1, 0, 1)]
    a = pivot.score_paths(model, images, paths, labels, method=method, progress=False)
    b = pivot.score_paths(model, images, paths, labels, method=method, progress=False)
    one_thread = pivot.score_paths(model, images, paths, labels, method=method, threads=1, progress=False)
    assert a.shape == (3,)
    np.testing.assert_array_equal(a, b)  # the same call gives the same bits
    np.testing.assert_allclose(a, one_thread, rtol=1e-6)  # other thread counts round a little differently
    assert a[0] == pytest.approx(chosen[2].score, rel=1e-9) and a[1] == pytest.approx(chosen[3].score, rel=1e-9)
    again = pivot.select_paths(model, images, labels, efforts=[2, 3], method=method, progress=False)
    assert again == chosen


def test_kl_of_the_full_path_is_zero_and_effort_defaults_to_all(data):
    model, images, _ = data
    got = pivot.select_paths(model, images, method="output_kl", budget=1, progress=False)
    assert sorted(got) == list(range(CONFIG.depth + 1))
    assert got[CONFIG.depth].score == 0.0
    assert got[0].path == (0,) * CONFIG.depth
    kls = [got[e].score for e in range(CONFIG.depth, -1, -1)]
    assert all(k >= 0 for k in kls)


@pytest.mark.parametrize("bad, match", [
    (dict(efforts=[6]), r"effort must be an integer in \[0, 5\]"),
    (dict(efforts=[-1]), r"effort must be an integer in \[0, 5\]"),
    (dict(efforts=[]), "efforts is empty"),
    (dict(method="oracle"), "method must be one of"),
    (dict(method="accuracy", labels=None), "method 'accuracy' needs labels"),
    (dict(method="cross_entropy", labels=None), "needs labels"),
    (dict(method="accuracy", labels=np.zeros(3, np.int64)), "got 40 images but 3 labels"),
    (dict(method="accuracy", labels=np.full(40, 6)), r"labels must be in \[0, 6\)"),
    (dict(method="output_kl", budget=0), "budget"),
])
def test_bad_input_is_refused_clearly(data, bad, match):
    model, images, labels = data
    kwargs = dict(labels=labels, efforts=[2], method="output_kl", progress=False)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=match):
        pivot.select_paths(model, images, **kwargs)


@pytest.mark.parametrize("method", list(pivot.path_select.METHODS))
def test_images_of_the_wrong_shape_are_refused(data, method):
    model, images, labels = data
    with pytest.raises(ValueError, match="images"):
        pivot.select_paths(model, images[:, :2], labels, efforts=[2], method=method, progress=False)
    with pytest.raises(ValueError, match="images are 8x8"):
        pivot.select_paths(model, images[:, :, :8, :8], labels, efforts=[2], method=method, progress=False)


def test_model_and_efforts_types(data):
    _, images, labels = data
    with pytest.raises(TypeError, match="pivot.ViT"):
        pivot.select_paths(object(), images, labels, efforts=[2], progress=False)
    with pytest.raises(TypeError, match="iterable"):
        pivot.select_paths(data[0], images, labels, efforts=2, progress=False)
    with pytest.raises(TypeError, match="labels must be integer"):
        pivot.select_paths(data[0], images, labels.astype(np.float32), efforts=[2], method="accuracy", progress=False)
