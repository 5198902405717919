"""model_cka on the real engine (pivot.ViT) and the Phase-1 flow: CKA matrix -> best path -> model."""
import numpy as np
import pytest

import pivot

CONFIG = pivot.ViTConfig(img_size=32, patch_size=8, embed_dim=32, depth=4, num_heads=2, num_classes=10)


@pytest.fixture(scope="module")
def vit_and_images():
    rng = np.random.default_rng(3)
    return pivot.ViT.random(CONFIG, seed=1), rng.normal(size=(14, 3, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("features", ["flatten", "cls", "mean"])
def test_model_cka_on_vit_equals_cka_matrix_of_one_big_batch(vit_and_images, debiased, features):
    vit, images = vit_and_images
    got = pivot.model_cka(vit, images, batch_size=4, debiased=debiased, features=features, progress=False,
                          memory_limit=0)  # one batch kept at a time: several passes
    _, attn, mlp = vit.forward_branches(images)
    assert len(mlp) == len(attn) == CONFIG.depth and mlp[0].shape == (14, CONFIG.num_tokens, CONFIG.embed_dim)
    want = pivot.cka_matrix(mlp, attn, debiased=debiased, features=features)
    assert got.shape == (4, 4) and np.isfinite(got).all()
    # the engine's batches of 4 and of 14 round differently in the last float32 bits
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_model_cka_on_vit_with_a_path_and_the_phase1_flow(vit_and_images):
    vit, images = vit_and_images
    skipped = pivot.model_cka(vit, images, batch_size=7, path=[1, 0, 1, 1], progress=False)
    assert np.isnan(skipped[:, 1]).all() and np.isfinite(np.delete(skipped, 1, axis=1)).all()

    cka = pivot.model_cka(vit, images, batch_size=7, progress=False)
    best = pivot.best_paths(cka)
    assert [sp.effort for sp in best.values()] == list(range(5))
    for effort, sp in best.items():
        assert sp == pivot.rank_paths(cka, effort, top_k=1)[0]
        _, attn, _ = vit.with_path(sp.path).forward_branches(images[:2])
        assert [a is not None for a in attn] == [bool(b) for b in sp.path]
