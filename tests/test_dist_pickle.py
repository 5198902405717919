"""Models travel to workers by pickle: config, path, precision and weights, no C state; a round
trip gives identical logits. Threads follow a worker's allotment (OMP_NUM_THREADS)."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import pivot
from pivot.model import default_threads


def _tiny(seed=0, **changes):
    cfg = pivot.ViTConfig(img_size=16, patch_size=4, in_chans=3, num_classes=7, embed_dim=32, depth=4,
                          num_heads=2, **changes)
    return pivot.ViT.random(cfg, seed=seed, path=[1, 0, 1, 1])


def test_vit_round_trip_gives_identical_logits(rng):
    model = _tiny()
    images = rng.standard_normal((5, 3, 16, 16)).astype(np.float32)
    model(images)  # builds whatever the engine caches; the copy must not carry it
    copy = pickle.loads(pickle.dumps(model))
    assert type(copy) is pivot.ViT and copy.config == model.config
    np.testing.assert_array_equal(copy.path, model.path)
    assert not copy.path.flags.writeable
    np.testing.assert_array_equal(copy(images, threads=1), model(images, threads=1))
    np.testing.assert_array_equal(copy(images, path=[1, 1, 1, 1], threads=1), model(images, path=[1, 1, 1, 1], threads=1))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[key], value)


def test_lvvit_round_trip_gives_identical_logits(rng):
    cfg = pivot.ViTConfig(img_size=32, patch_size=8, in_chans=3, num_classes=5, embed_dim=32, depth=2, num_heads=2,
                          stem="lvvit_conv", stem_channels=8, skip_lam=2.0, aux_head=True, qkv_bias=False)
    model = pivot.ViT.random(cfg, seed=1, path=[0, 1])
    images = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    copy = pickle.loads(pickle.dumps(model, protocol=5))
    np.testing.assert_array_equal(copy(images, threads=1), model(images, threads=1))


def test_quantized_round_trip_gives_identical_logits(rng):
    model = _tiny()
    images = rng.standard_normal((8, 3, 16, 16)).astype(np.float32)
    q = pivot.quantize(model, images, per_token=True)
    copy = pickle.loads(pickle.dumps(q))
    assert type(copy) is pivot.ViT and copy.precision == "int8"
    a, b = copy.quantization, q.quantization
    assert a.per_token and a.kernel == b.kernel and a.info == b.info
    np.testing.assert_array_equal(copy.path, q.path)
    np.testing.assert_array_equal(copy(images, threads=1), q(images, threads=1))


def test_multi_effort_round_trip_gives_identical_predictions(rng):
    model = _tiny()
    cascade = pivot.MultiEffort(model.with_path([1, 0, 0, 0]), model.with_path([1, 1, 1, 1]), 0.4)
    images = rng.standard_normal((16, 3, 16, 16)).astype(np.float32)
    copy = pickle.loads(pickle.dumps(cascade))
    assert copy.threshold == 0.4
    a, b = cascade.predict(images, threads=1), copy.predict(images, threads=1)
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.used_high, b.used_high)


def _threads_in_child(env_changes):
    env = dict(os.environ, **env_changes)
    code = "from pivot.model import default_threads; print(default_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_default_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1,1")  # OpenMP's nested form: the first level counts
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "nonsense")
    assert default_threads() >= 1
    # set before the process starts, as Ray and Dask do for a worker
    assert _threads_in_child({"OMP_NUM_THREADS": "1"}) == 1


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores to narrow the affinity mask")
def test_default_threads_follow_the_affinity_mask(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from pivot.model import default_threads; print(default_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == 1


def test_importing_pivot_and_pivot_distributed_does_not_import_ray():
    code = "import sys, pivot, pivot.distributed; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
