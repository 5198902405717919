"""The shipped Fashion-MNIST zoo in int8: every effort within 0.5 points of its fp32 accuracy on
the test set. The zoo ships with pivot, so a zoo that does not load fails; the test set is Debian's
dataset-fashion-mnist (CI installs it), so only its absence skips."""
import os

import numpy as np
import pytest

import pivot
from pivot.apps import quant_report

pytestmark = [pytest.mark.slow,  # every effort on the 10,000 test images: minutes
              pytest.mark.skipif(not os.path.isdir(pivot.datasets.DEFAULT_ROOT),
                                 reason="dataset-fashion-mnist not installed")]


@pytest.fixture(scope="module")
def efforts():
    return pivot.zoo.load(pivot.zoo.ZOO_MODEL)


@pytest.fixture(scope="module")
def data():
    test = pivot.datasets.fashion_mnist("test")
    train_x, _ = pivot.datasets.fashion_mnist("train")
    pick = np.sort(np.random.default_rng(0).choice(train_x.shape[0], size=256, replace=False))
    return train_x[pick], test


def test_zoo_int8_accuracy_within_half_a_point(efforts, data):
    calib, (images, labels) = data
    rows = quant_report.compare(efforts, calib, images, labels)
    print("\n" + quant_report.format_table(rows))
    for row in rows:
        assert row.delta_points >= -0.5, row
