"""MultiEffort against a NumPy re-implementation of PIVOT's decision rule (section 3.1)."""
import dataclasses

import numpy as np
import pytest

import pivot
from pivot.reference.search import softmax_entropy
from _search_fakes import FakeModel, make_efforts


def decision_rule(low_logits, high_logits, labels, threshold):
    """The paper's rule in plain NumPy: E(x) <= Th keeps the low-effort prediction, else high."""
    _, ent = softmax_entropy(low_logits)
    go_high = ~(ent <= threshold)
    preds = np.where(go_high, high_logits.argmax(1), low_logits.argmax(1))
    correct = preds == labels
    return dict(go_high=go_high, preds=preds, f_low=float(np.mean(~go_high)),
                c_low=int(correct[~go_high].sum()), c_high=int(correct[go_high].sum()),
                accuracy=float(correct.mean()))


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.55, 0.8, 1.0])
def test_cascade_matches_decision_rule(threshold):
    models, labels = make_efforts(300, 10, [4, 8], depth=8, seed=1)
    low, high = models[4], models[8]
    ids = np.arange(300)
    ref = decision_rule(low.table, high.table, labels, threshold)
    # Entropies within 1e-6 of the threshold may fall either side in float32; keep the test exact.
    _, ent = softmax_entropy(low.table)
    assert np.all(np.abs(ent - threshold) > 1e-6)
    res = pivot.MultiEffort(low, high, threshold).predict(ids, labels)
    np.testing.assert_array_equal(res.used_high, ref["go_high"])
    np.testing.assert_array_equal(res.predictions, ref["preds"])
    assert res.f_low == pytest.approx(ref["f_low"]) and res.f_high == pytest.approx(1 - ref["f_low"])
    assert (res.c_low, res.c_high) == (ref["c_low"], ref["c_high"])
    assert res.accuracy == pytest.approx(ref["accuracy"])
    # Only the uncertain inputs reach the high-effort model, in one call.
    assert low.seen == ids.tolist() and low.calls == 1
    assert sorted(high.seen) == np.flatnonzero(ref["go_high"]).tolist()
    assert high.calls == (1 if ref["go_high"].any() else 0)
    np.testing.assert_allclose(res.entropies, softmax_entropy(low.table)[1], atol=2e-6)
    expected_logits = np.where(ref["go_high"][:, None], high.table, low.table)
    np.testing.assert_array_equal(res.logits, expected_logits)


def test_cascade_batches_and_threads():
    models, labels = make_efforts(50, 5, [1, 3], depth=3, seed=2)
    low, high = models[1], models[3]
    whole = pivot.MultiEffort(low, high, 0.7).predict(np.arange(50), labels)
    low.calls = high.calls = 0
    chunked = pivot.MultiEffort(low, high, 0.7).predict(np.arange(50), labels, threads=1, batch_size=8)
    assert low.calls == 7 and high.calls == -(-whole.n_high // 8)
    np.testing.assert_array_equal(whole.predictions, chunked.predictions)
    assert whole.accuracy == chunked.accuracy


def test_result_is_frozen_and_without_labels():
    models, _ = make_efforts(20, 4, [1, 2], depth=2)
    res = pivot.MultiEffort(models[1], models[2], 0.5).predict(np.arange(20))
    assert res.c_low is None and res.c_high is None and res.accuracy is None
    assert res.n_images == 20 and res.n_high == int(res.used_high.sum())
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.f_low = 1.0
    with pytest.raises(ValueError):
        res.predictions[0] = 3
    assert "F_L=" in res.summary()


def test_nan_entropy_goes_high():
    table = np.array([[np.nan, 0.0, 0.0], [9.0, 0.0, 0.0]], dtype=np.float32)
    low, high = FakeModel(table), FakeModel(np.array([[0.0, 5.0, 0.0], [0.0, 5.0, 0.0]]))
    res = pivot.MultiEffort(low, high, 1.0).predict(np.arange(2))
    assert res.used_high.tolist() == [True, False]
    assert res.predictions.tolist() == [1, 0]


def test_for_lec_reaches_lec():
    models, labels = make_efforts(101, 10, [2, 6], depth=6, seed=3)
    for lec in (0.5, 0.8, 1.0):
        me = pivot.MultiEffort.for_lec(models[2], models[6], np.arange(101), lec)
        res = me.predict(np.arange(101), labels)
        assert res.f_low >= lec
        _, ent = softmax_entropy(models[2].table)
        assert np.sum(ent < me.threshold - 1e-6) / 101 < lec   # the smallest such threshold


def test_cascade_errors():
    models, labels = make_efforts(10, 4, [1, 2], depth=2)
    other = FakeModel(np.zeros((10, 5)))
    with pytest.raises(ValueError, match="4 classes but the high-effort model has 5"):
        pivot.MultiEffort(models[1], other, 0.5)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="threshold must be in"):
            pivot.MultiEffort(models[1], models[2], bad)
    with pytest.raises(TypeError, match="threshold"):
        pivot.MultiEffort(models[1], models[2], "0.5")
    me = pivot.MultiEffort(models[1], models[2], 0.5)
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        me.predict(np.arange(10), labels[:9])
    with pytest.raises(ValueError, match="empty"):
        me.predict(np.arange(0))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        me.predict(np.arange(10), labels + 4)
    with pytest.raises(TypeError, match="integer"):
        me.predict(np.arange(10), labels.astype(float))
    with pytest.raises(ValueError, match="batch_size"):
        me.predict(np.arange(10), batch_size=0)
    with pytest.raises(TypeError, match="num_classes"):
        pivot.MultiEffort(object(), models[2], 0.5)
    with pytest.raises(ValueError, match="lec"):
        pivot.MultiEffort.for_lec(models[1], models[2], np.arange(10), 0.0)


class WrongShapeModel(FakeModel):
    def __call__(self, images, path=None, threads=None):
        return super().__call__(images)[:, :2]


def test_model_returning_wrong_shape():
    bad = WrongShapeModel(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="logits of shape"):
        pivot.MultiEffort(bad, bad, 0.5).predict(np.arange(4))


def test_cascade_real_model_matches_decision_rule():
    config = pivot.ViTConfig(img_size=16, patch_size=4, in_chans=1, num_classes=7, embed_dim=32, depth=4,
                             num_heads=2)
    full = pivot.ViT.random(config, seed=3)
    low = full.with_path([1, 1, 0, 0])
    images = np.random.default_rng(0).standard_normal((40, 1, 16, 16)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 7, 40)
    low_logits, high_logits = low(images), full(images)
    cascade = pivot.MultiEffort.for_lec(low, full, images, 0.7)
    res = cascade.predict(images, labels)
    ref = decision_rule(low_logits, high_logits, labels, cascade.threshold)
    np.testing.assert_array_equal(res.used_high, ref["go_high"])
    assert res.f_low == pytest.approx(ref["f_low"]) and res.f_low >= 0.7
    # A row's logits do not depend on which other rows share its batch (up to float rounding).
    np.testing.assert_allclose(res.logits, np.where(ref["go_high"][:, None], high_logits, low_logits), atol=1e-4)
    np.testing.assert_array_equal(res.predictions, res.logits.argmax(1))
    correct = res.predictions == labels
    assert (res.c_low, res.c_high) == (int(correct[~res.used_high].sum()), int(correct[res.used_high].sum()))
    assert res.accuracy == pytest.approx(correct.mean())
