import numpy as np
import pytest

import pivot
from pivot.reference.search import softmax_entropy as reference


@pytest.mark.parametrize("shape", [(1, 2), (7, 10), (64, 1000), (3, 2)])
def test_entropy_matches_reference(rng, shape):
    logits = (rng.normal(size=shape) * rng.uniform(0.1, 20.0, size=(shape[0], 1))).astype(np.float32)
    probs, ent = pivot._core.softmax_entropy(logits, True)
    ref_probs, ref_ent = reference(logits)
    np.testing.assert_allclose(ent, ref_ent, atol=2e-6)
    np.testing.assert_allclose(probs, ref_probs, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(pivot.entropy(logits), ent)


def test_entropy_edge_values():
    k = 10
    assert pivot.entropy(np.zeros((1, k)))[0] == pytest.approx(1.0, abs=1e-7)     # uniform -> 1
    one_hot = np.full((1, k), -50.0)
    one_hot[0, 3] = 50.0
    assert pivot.entropy(one_hot)[0] < 1e-6                                       # certain -> ~0
    assert pivot.entropy(np.array([[0.0, 0.0]]))[0] == pytest.approx(1.0)       # K = 2
    p = 0.9                                                                        # K = 2, known value
    expected = -(p * np.log(p) + (1 - p) * np.log(1 - p)) / np.log(2)
    assert pivot.entropy(np.log([[p, 1 - p]]))[0] == pytest.approx(expected, rel=1e-6)


def test_entropy_large_logits_stable(rng):
    logits = rng.normal(size=(5, 20)).astype(np.float32)
    shifted = logits + np.float32(1e4)       # softmax is shift-invariant
    np.testing.assert_allclose(pivot.entropy(shifted), pivot.entropy(logits), atol=2e-3)
    huge = np.array([[3e38, -3e38, 0.0], [3e38, 3e38, 3e38]], dtype=np.float32)
    ent = pivot.entropy(huge)
    assert ent[0] == 0.0 and ent[1] == pytest.approx(1.0)
    assert np.all(np.isfinite(pivot.entropy(rng.normal(size=(4, 8)) * 1e30)))


def test_entropy_in_unit_interval(rng):
    logits = rng.normal(size=(500, 7)).astype(np.float32) * rng.uniform(0, 100, size=(500, 1)).astype(np.float32)
    ent = pivot.entropy(logits)
    assert ent.dtype == np.float32 and ent.shape == (500,)
    assert np.all((ent >= 0) & (ent <= 1))


def test_entropy_nonfinite_rows():
    logits = np.array([[np.nan, 1.0, 2.0],
                       [np.inf, 0.0, 0.0],
                       [np.inf, np.inf, 0.0],
                       [-np.inf, 0.0, 0.0],
                       [-np.inf, -np.inf, -np.inf]], dtype=np.float32)
    probs, ent = pivot._core.softmax_entropy(logits, True)
    assert np.isnan(ent[0]) and np.all(np.isnan(probs[0]))
    assert ent[1] == 0.0 and probs[1].tolist() == [1.0, 0.0, 0.0]
    assert ent[2] == pytest.approx(np.log(2) / np.log(3)) and probs[2].tolist() == [0.5, 0.5, 0.0]
    assert ent[3] == pytest.approx(np.log(2) / np.log(3)) and probs[3].tolist() == [0.0, 0.5, 0.5]
    assert np.isnan(ent[4])


def test_entropy_shapes_and_dtypes():
    assert pivot.entropy([0.0, 0.0, 0.0]).shape == ()
    assert pivot.entropy(np.zeros((0, 4))).shape == (0,)
    assert pivot.entropy(np.zeros((3, 4), dtype=np.int64)).tolist() == pytest.approx([1.0] * 3)
    assert pivot.entropy(np.asfortranarray(np.zeros((3, 4)))).shape == (3,)


@pytest.mark.parametrize("bad, exc, match", [
    (np.zeros((3, 1)), ValueError, "at least 2 classes"),
    (np.zeros((2, 3, 4)), ValueError, "shape"),
    (np.array([["a", "b"]]), TypeError, "dtype"),
    (np.zeros((2, 2), dtype=complex), TypeError, "dtype"),
])
def test_entropy_rejects(bad, exc, match):
    with pytest.raises(exc, match=match):
        pivot.entropy(bad)


def test_core_binding_validates():
    with pytest.raises(TypeError, match="float32"):
        pivot._core.softmax_entropy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="contiguous"):
        pivot._core.softmax_entropy(np.zeros((3, 4), dtype=np.float32)[:, ::2])
    with pytest.raises(ValueError, match="at least 2 classes"):
        pivot._core.softmax_entropy(np.zeros((3, 1), dtype=np.float32))
    with pytest.raises(TypeError, match="numpy array"):
        pivot._core.softmax_entropy([[0.0, 1.0]])
