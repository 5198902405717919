"""The skip / reuse / linear comparison pipeline on the shipped Fashion-MNIST sample (head-only fit)."""

import pivot
from pivot.apps.demo import DEMO_CONFIG, fit_head
from pivot.apps.modes_table import compare_modes


def test_compare_modes_rows_meet_the_target():
    images, labels = pivot.datasets.fashion_mnist_sample()
    model = pivot.ViT.random(DEMO_CONFIG, seed=0)
    target = 0.8 * pivot.sim.simulate(model).delay_ms
    rows = compare_modes(model, (images[:300], labels[:300]), (images[300:500], labels[300:500]),
                         target_delay_ms=target, fine_tune=lambda m, x, y: fit_head(m, x, y, steps=50),
                         calib_size=32)
    assert [r.variant for r in rows] == ["baseline", "skip", "reuse", "linear"]
    assert rows[0].path == (1,) * DEMO_CONFIG.depth
    assert 2 in rows[2].path and rows[3].attention == "relu_linear"
    for r in rows[1:]:
        assert r.delay_ms <= target and r.edp < rows[0].edp
        assert 0.0 <= r.accuracy <= 1.0
    assert rows[0].accuracy > 0.3  # a fitted head on random features beats chance (10%)
