"""int8 vs fp32 accuracy and logit agreement of a small trained Fashion-MNIST ViT
(tests/reference/fmnist_tiny_vit.safetensors, made by tests/reference/make_int8_model.py) on the
1,000-image sample shipped with pivot: calibration on 200 of its images, evaluation on the other 800."""
import os
import pathlib

import numpy as np
import pytest

import pivot

MODEL = pathlib.Path(__file__).parent / "reference" / "fmnist_tiny_vit.safetensors"


@pytest.fixture(scope="module")
def setup():
    model = pivot.ViT.from_timm(MODEL)
    images, labels = pivot.datasets.fashion_mnist_sample()
    calib = np.arange(images.shape[0]) % 5 == 0
    return model, images[calib], images[~calib], labels[~calib]


def _accuracy(model, images, labels):
    return 100.0 * float((model(images).argmax(1) == labels).mean())


@pytest.mark.parametrize("kwargs, max_loss", [({}, 0.5), ({"per_token": True}, 0.5),
                                              ({"method": "percentile", "percentile": 99.99}, 1.0)])
def test_int8_accuracy_close_to_fp32(setup, kwargs, max_loss):
    model, calib, images, labels = setup
    qmodel = pivot.quantize(model, calib, **kwargs)
    fp32, int8 = _accuracy(model, images, labels), _accuracy(qmodel, images, labels)
    assert fp32 > 60.0, "the fixture model should be trained (chance is 10%)"
    assert int8 >= fp32 - max_loss, (fp32, int8)
    f, q = model(images), qmodel(images)
    assert (f.argmax(1) == q.argmax(1)).mean() >= 0.97
    assert np.abs(f - q).max() < 0.1 * np.abs(f).max()


def test_int8_reduced_paths_keep_accuracy(setup):
    model, calib, images, labels = setup
    path = [1, 0, 1, 1]
    qmodel = pivot.quantize(model.with_path(path), calib)
    fp32 = _accuracy(model.with_path(path), images, labels)
    assert _accuracy(qmodel, images, labels) >= fp32 - 1.0


@pytest.mark.skipif(not os.path.isdir(pivot.datasets.DEFAULT_ROOT), reason="dataset-fashion-mnist not installed")
def test_quant_report_cli(capsys):
    from pivot.apps import quant_report
    assert quant_report.main(["--model", str(MODEL), "--sample", "--limit", "200", "--calibration", "64"]) == 0
    out = capsys.readouterr().out
    assert "| 4 |" in out and "int8 acc" in out
    assert quant_report.main(["--zoo", "no_such_zoo_model"]) == 2
