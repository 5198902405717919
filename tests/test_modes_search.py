"""Attention-map similarity (CKA) and the choice of reuse encoders under a delay target."""
import itertools

import numpy as np
import pytest

import pivot
from pivot import sim

from engine_util import random_images, random_weights

SIX = pivot.ViTConfig(img_size=32, patch_size=8, in_chans=3, num_classes=10, embed_dim=48, depth=6, num_heads=3)


def brute_force(similarity, base):
    """Best score per number of reuses, over every path the rules allow."""
    D = len(base)
    best = {}
    for choice in itertools.product((1, 2), repeat=D):
        path = [0 if b == 0 else c for b, c in zip(base, choice)]
        score, last, ok = 0.0, -1, True
        for j, m in enumerate(path):
            if m == 1:
                last = j
            elif m == 2:
                if last < 0:
                    ok = False
                    break
                score += similarity[last, j]
        if ok:
            k = path.count(2)
            best[k] = max(best.get(k, -np.inf), score)
    return best


@pytest.mark.parametrize("base", [None, [1, 0, 1, 1, 0, 1]])
def test_reuse_paths_dp_matches_brute_force(rng, base):
    s = rng.random((6, 6))
    choices = pivot.reuse_paths(s, base_path=base)
    want = brute_force(s, [1] * 6 if base is None else base)
    assert sorted(choices) == sorted(want)
    for k, c in choices.items():
        assert c.num_reuse == k == list(c.path).count(2)
        assert c.score == pytest.approx(want[k], abs=1e-12)
        pivot.normalize_path(c.path, 6, allow_reuse=True)  # valid
        if base is not None:
            assert all((p == 0) == (b == 0) for p, b in zip(c.path, base))


def test_attention_cka_matrix_properties():
    model = pivot.ViT(SIX, random_weights(SIX, seed=6))
    images = random_images(SIX, 6)
    m = pivot.attention_cka_matrix(model, images, batch_size=4)
    assert m.shape == (6, 6)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-9)
    np.testing.assert_allclose(m, m.T)
    assert np.all((m >= 0) & (m <= 1))
    # same as pivot.cka on the flattened maps (biased linear CKA)
    maps = pivot.attention_maps(model, images)
    assert m[1, 4] == pytest.approx(pivot.linear_cka(maps[1].reshape(6, -1), maps[4].reshape(6, -1)), abs=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        pivot.attention_cka_matrix(model, images[:1])


def test_search_reuse_meets_the_target_with_fewest_reuses(rng):
    cfg = pivot.ViTConfig.preset("deit_small_patch16_224")
    s = rng.random((12, 12))
    full = sim.simulate(cfg).delay_ms
    one_reuse = sim.simulate(cfg, [1] * 11 + [2]).delay_ms
    two_reuse = sim.simulate(cfg, [1] * 10 + [2, 2]).delay_ms
    target = (one_reuse + two_reuse) / 2
    choice = pivot.search_reuse(cfg, s, target_delay_ms=target)
    assert choice.num_reuse == 2 and choice.delay_ms <= target
    assert choice.path == pivot.reuse_paths(s)[2].path
    assert pivot.search_reuse(cfg, s, full + 1).num_reuse == 0
    with pytest.raises(ValueError, match="no reuse path meets"):
        pivot.search_reuse(cfg, s, 1.0)
    with pytest.raises(ValueError, match="12 encoders"):
        pivot.search_reuse(cfg, s[:6, :6], full)
