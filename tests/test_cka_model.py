"""model_cka (exact, block by block, and minibatch) and MinibatchCKA on a stub model."""
import numpy as np
import pytest

import pivot
from pivot.cka import _even_batches, _plan_passes
from pivot.reference import cka as ref


class StubModel:
    """forward_branches as pivot.ViT's: (logits, attn_outputs, mlp_outputs), each sample's
    outputs a deterministic function of that sample alone."""

    def __init__(self, depth=4, tokens=5, channels=6, in_features=10, seed=0):
        rng = np.random.default_rng(seed)
        self.depth, self.tokens, self.channels = depth, tokens, channels
        shape = (in_features, tokens * channels)
        self.w_attn = [rng.normal(size=shape) for _ in range(depth)]
        self.w_mlp = [rng.normal(size=shape) + 0.5 * self.w_attn[i] for i in range(depth)]
        self.path = np.ones(depth, dtype=np.uint8)
        self.calls = []

    def forward_branches(self, images, path=None, threads=None):
        path = self.path if path is None else pivot.normalize_path(path, self.depth)
        x = np.asarray(images, dtype=np.float64)
        self.calls.append(len(x))
        shape = (len(x), self.tokens, self.channels)
        attn = [None if not path[i] else np.tanh(x @ w + i).reshape(shape).astype(np.float32)
                for i, w in enumerate(self.w_attn)]
        mlp = [np.tanh(x @ w - i).reshape(shape).astype(np.float32) for i, w in enumerate(self.w_mlp)]
        logits = np.zeros((len(x), 3), dtype=np.float32)
        return logits, attn, mlp


def images(n, seed=1, in_features=10):
    return np.random.default_rng(seed).normal(size=(n, in_features)).astype(np.float32)


def one_shot(model, imgs, path=None, debiased=False, features="flatten"):
    _, attn, mlp = model.forward_branches(imgs, path=path)
    return pivot.cka_matrix(mlp, attn, debiased=debiased, features=features)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("features", ["flatten", "cls", "mean"])
def test_model_cka_equals_cka_matrix_of_concatenated_outputs(debiased, features):
    model, imgs = StubModel(), images(23)
    got = model_result = pivot.model_cka(model, imgs, batch_size=5, debiased=debiased, features=features,
                                         progress=False)
    assert model.calls == [4, 5, 4, 5, 5]  # even batches, one pass (everything fits)
    want = one_shot(model, imgs, debiased=debiased, features=features)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    np.testing.assert_allclose(model_result, ref.cka_matrix(*reversed(model.forward_branches(imgs)[1:]),
                                                            debiased, features), atol=1e-6)


@pytest.mark.parametrize("debiased", [False, True])
def test_model_cka_with_a_memory_limit_reruns_the_model_and_stays_exact(debiased):
    model, imgs = StubModel(), images(30)
    bytes_per_sample = 8 * 5 * 6 * 4  # 4 MLP + 4 attention maps of 5 x 6 float32
    got = pivot.model_cka(model, imgs, batch_size=4, debiased=debiased, progress=False,
                          memory_limit=9 * bytes_per_sample)  # two batches of 4 (or 5) fit
    plan = _plan_passes([b - a for a, b in _even_batches(30, 4)], bytes_per_sample, 9 * bytes_per_sample)
    assert len(plan) > 2
    assert len(model.calls) == sum(8 - start for start, _ in plan)
    np.testing.assert_allclose(got, one_shot(model, imgs, debiased=debiased), atol=1e-6, rtol=0)
    # at the extreme, one batch kept at a time
    model.calls.clear()
    tight = pivot.model_cka(model, imgs, batch_size=4, debiased=debiased, progress=False, memory_limit=0)
    assert len(model.calls) == 8 * 9 // 2
    np.testing.assert_allclose(tight, got, atol=1e-9, rtol=0)


def test_model_cka_many_features_spanning_gram_chunks():
    model, imgs = StubModel(depth=2, tokens=30, channels=100), images(12)  # 3000 features > one 2048 chunk
    got = pivot.model_cka(model, imgs, batch_size=5, progress=False, memory_limit=0)
    np.testing.assert_allclose(got, one_shot(model, imgs), atol=1e-6, rtol=0)


def test_plan_passes():
    assert _plan_passes([4, 4, 4], 10, 1000) == [(0, 3)]
    assert _plan_passes([4, 4, 4], 10, 80) == [(0, 2), (2, 3)]
    assert _plan_passes([4, 4, 4], 10, 0) == [(0, 1), (1, 2), (2, 3)]
    assert _even_batches(10, 4) == [(0, 3), (3, 6), (6, 10)]
    assert _even_batches(3, 64) == [(0, 3)]


def test_model_cka_skipped_attention_columns_are_nan():
    model, imgs = StubModel(), images(12)
    got = pivot.model_cka(model, imgs, batch_size=5, path=[1, 0, 1, 0], progress=False)
    assert np.isnan(got[:, [1, 3]]).all() and np.isfinite(got[:, [0, 2]]).all()
    np.testing.assert_allclose(got, one_shot(model, imgs, path=[1, 0, 1, 0]), atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("debiased", [False, True])
def test_minibatch_mode_equals_reference_of_the_same_estimator(debiased):
    model, imgs = StubModel(), images(26)
    got = pivot.model_cka(model, imgs, batch_size=7, debiased=debiased, minibatch=True, progress=False)
    assert model.calls == [6, 7, 6, 7]
    _, attn, mlp = model.forward_branches(imgs)
    batches = [np.arange(a, b) for a, b in _even_batches(26, 7)]
    want = ref.minibatch_cka_matrix(mlp, attn, batches, debiased)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    # a different estimator from the CKA of all samples at once...
    assert np.abs(got - one_shot(model, imgs, debiased=debiased)).max() > 1e-3
    # ...equal to it when a single batch holds all samples
    single = pivot.model_cka(model, imgs, batch_size=26, debiased=debiased, minibatch=True, progress=False)
    np.testing.assert_allclose(single, one_shot(model, imgs, debiased=debiased), atol=1e-12, rtol=0)


def test_minibatch_accumulator(rng):
    mlp = [rng.normal(size=(20, 3, 4)).astype(np.float32) for _ in range(3)]
    attn = [None, (mlp[0] + rng.normal(size=(20, 3, 4))).astype(np.float32), rng.normal(size=(20, 3, 4)).astype(np.float32)]
    acc = pivot.MinibatchCKA(debiased=True, features="mean")
    batches = [np.arange(0, 6), np.arange(6, 13), np.arange(13, 20)]
    for idx in batches:
        acc.update([m[idx] for m in mlp], [None if a is None else a[idx] for a in attn])
    assert acc.n_batches == 3 and acc.n_samples == 20
    got = acc.result()
    assert np.isnan(got[:, 0]).all()
    np.testing.assert_allclose(got, ref.minibatch_cka_matrix(mlp, attn, batches, True, "mean"), atol=1e-6,
                               equal_nan=True)
    whole = pivot.MinibatchCKA(debiased=True, features="mean")
    whole.update(mlp, attn)
    np.testing.assert_array_equal(whole.result(), pivot.cka_matrix(mlp, attn, debiased=True, features="mean"))


def test_minibatch_accumulator_errors(rng):
    acc = pivot.MinibatchCKA(debiased=True)
    with pytest.raises(ValueError, match="needs at least one update"):
        acc.result()
    x = rng.normal(size=(3, 4))
    with pytest.raises(ValueError, match="at least 4 samples"):
        acc.update([x], [x])
    acc.update([rng.normal(size=(5, 4))], [rng.normal(size=(5, 4))])
    with pytest.raises(ValueError, match="changed between batches"):
        acc.update([rng.normal(size=(5, 4))], [None])
    with pytest.raises(ValueError, match="only None"):
        acc.update([None], [None])


def test_model_cka_progress_bar_and_errors(capsys):
    model, imgs = StubModel(), images(12)
    pivot.model_cka(model, imgs, batch_size=4, progress=True)
    assert "CKA" in capsys.readouterr().err
    with pytest.raises(TypeError, match="forward_branches"):
        pivot.model_cka(object(), imgs)
    with pytest.raises(ValueError, match="at least 4 samples"):
        pivot.model_cka(model, imgs[:3], debiased=True, progress=False)
    with pytest.raises(ValueError, match="smallest batch"):
        pivot.model_cka(model, imgs[:10], batch_size=3, debiased=True, minibatch=True, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        pivot.model_cka(model, imgs, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="memory_limit"):
        pivot.model_cka(model, imgs, memory_limit=-1, progress=False)
    bad = StubModel()
    bad.forward_branches = lambda x, path=None: (None, [None], [np.full((len(x), 2), np.nan)])
    with pytest.raises(ValueError, match="at least one MLP output and one attention"):
        pivot.model_cka(bad, imgs, progress=False)
    bad.forward_branches = lambda x, path=None: (None, [np.ones((len(x), 2))], [np.full((len(x), 2), np.nan)])
    with pytest.raises(ValueError, match="NaN or infinity"):
        pivot.model_cka(bad, imgs, progress=False)
    bad.forward_branches = lambda x, path=None: (None, [np.ones((3, 2))], [np.ones((3, 2))])
    with pytest.raises(ValueError, match="samples in a batch of"):
        pivot.model_cka(bad, imgs, batch_size=4, progress=False)
