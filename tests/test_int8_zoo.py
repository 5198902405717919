"""The shipped Fashion-MNIST zoo in int8: every effort within 0.5 points of its fp32 accuracy on
the test set. Skips while ``pivot.zoo`` / the model / the data are absent."""
import numpy as np
import pytest

import pivot
from pivot.apps import quant_report

ZOO_NAME = "fmnist_vit12_p4"


@pytest.fixture(scope="module")
def efforts():
    try:
        from pivot import zoo
    except ImportError:
        pytest.skip("pivot.zoo is not available")
    try:
        return zoo.load(ZOO_NAME)
    except (LookupError, ValueError, OSError) as exc:  # zoo.ZooError is a LookupError
        pytest.skip(f"zoo model {ZOO_NAME} is not available: {exc}")


@pytest.fixture(scope="module")
def data():
    try:
        test = pivot.datasets.fashion_mnist("test")
        train_x, _ = pivot.datasets.fashion_mnist("train")
    except (FileNotFoundError, pivot.datasets.DatasetError) as exc:
        pytest.skip(f"Fashion-MNIST is not installed: {exc}")
    pick = np.sort(np.random.default_rng(0).choice(train_x.shape[0], size=256, replace=False))
    return train_x[pick], test


def test_zoo_int8_accuracy_within_half_a_point(efforts, data):
    calib, (images, labels) = data
    rows = quant_report.compare(efforts, calib, images, labels)
    print("\n" + quant_report.format_table(rows))
    for row in rows:
        assert row.delta_points >= -0.5, row
