"""pivot.distributed on a real multi-node Ray cluster on this machine: the cascade, the pair
search and a sweep equal their single-process twins, and a node killed in the middle of
cascade_predict loses no row and duplicates none. (About 1.5 minutes on 2 cores.)"""
import concurrent.futures
import os
import pathlib
import sys
import threading
import time

import numpy as np
import pytest

import pivot

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
pytestmark = pytest.mark.slow  # a multi-node Ray cluster started and stopped on this machine
ray = pytest.importorskip("ray")

from ray import cloudpickle  # noqa: E402  (Ray's own copy, the one it pickles with)
from ray.cluster_utils import Cluster  # noqa: E402

import pivot.distributed as pd  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
NODE = dict(node_ip_address="127.0.0.1", object_store_memory=80 * 2 ** 20)
CONFIG = pivot.ViTConfig(img_size=16, patch_size=4, in_chans=1, num_classes=5, embed_dim=32, depth=4, num_heads=2)


@pytest.fixture(scope="module")
def cluster():
    # A head (1 CPU, for Ray Data's own tasks) and one worker node (1 CPU); pools of 1 actor.
    c = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False, **NODE))
    c.add_node(num_cpus=1, **NODE)
    ray.init(address=c.address, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(pathlib.Path(pivot.__file__).parents[1])}})
    c.wait_for_nodes()
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield c
    ray.shutdown()
    c.shutdown()


def _cascade_and_data(n=600, seed=0):
    model = pivot.ViT.random(CONFIG, seed=seed)
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, 1, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 5, n)
    low = model.with_path([1, 0, 0, 0])
    threshold = float(np.median(pivot.entropy(low(images, threads=1))))  # half the rows go on
    return pivot.MultiEffort(low, model, threshold), images, labels


def _check_equal(out, ref):
    assert np.array_equal(out["id"], np.arange(ref.n_images))  # every row once, sorted by id
    np.testing.assert_array_equal(out["used_high"], ref.used_high)
    np.testing.assert_array_equal(out["prediction"], ref.predictions)
    np.testing.assert_allclose(out["entropy"], ref.entropies, rtol=1e-5, atol=1e-6)
    # another batching of the same rows: equal to float32 rounding
    np.testing.assert_allclose(out["logits"], ref.logits, rtol=1e-5, atol=1e-5)
    assert set(out["effort"][~ref.used_high]) == {1} and set(out["effort"][ref.used_high]) == {4}


def test_cascade_predict_equals_multi_effort_predict(cluster):
    cascade, images, labels = _cascade_and_data()
    ref = cascade.predict(images, labels, threads=1)
    assert 0.3 < ref.f_low < 0.7
    out = pd._collect(pd.cascade_predict(cascade, pd.from_numpy(images, labels), batch_size=64))
    _check_equal(out, ref)
    np.testing.assert_array_equal(out["label"], labels)
    few = cascade.predict(images[:200], labels[:200], threads=1)
    ev = pd.cascade_evaluate(cascade, pd.from_numpy(images[:200], labels[:200]), batch_size=64)
    assert ev.accuracy == few.accuracy and ev.n_high == few.n_high and ev.f_low == few.f_low
    assert ev.counts == {1: 200 - few.n_high, 4: few.n_high} and ev.images_per_s > 0
    with pytest.raises(ValueError, match="no column 'image'"):
        pd.cascade_predict(cascade, ray.data.from_items([{"id": 0, "x": 1}]))


class _Slow:
    """The low effort, slowed down, that says when it first runs (so the test can kill its node)."""

    def __init__(self, model, marker):
        self.model, self.marker = model, marker
        self.config, self.path = model.config, model.path

    def __call__(self, images, threads=None):
        pathlib.Path(self.marker).touch()
        time.sleep(0.3)
        return self.model(images, threads=threads)


def test_a_node_killed_during_cascade_predict_loses_and_duplicates_no_row(cluster, tmp_path):
    cascade, images, labels = _cascade_and_data(n=800, seed=1)
    ref = cascade.predict(images, labels, threads=1)
    marker = tmp_path / "stage1-started"
    slow = pivot.MultiEffort(_Slow(cascade.low, str(marker)), cascade.high, cascade.threshold)
    # The stage actors may only run on nodes with the "victim" resource: the first such node is killed
    # while stage 1 runs, and a new one joins (as a replacement machine would).
    victim = cluster.add_node(num_cpus=1, resources={"victim": 1}, **NODE)
    cluster.wait_for_nodes()
    result = {}

    def run():
        try:
            result["out"] = pd._collect(pd.cascade_predict(slow, pd.from_numpy(images, labels), batch_size=32,
                                                           ray_remote_args={"resources": {"victim": 0.5}}))
        except Exception as exc:  # reported below
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), "stage 1 never started"
    time.sleep(1.0)  # a few batches done, most to go (25 batches of 0.3 s)
    cluster.remove_node(victim, allow_graceful=False)
    replacement = cluster.add_node(num_cpus=1, resources={"victim": 1}, **NODE)
    worker.join(timeout=90)
    cluster.remove_node(replacement)
    assert not worker.is_alive(), "cascade_predict hung after the node was killed"
    assert "error" not in result, result.get("error")
    _check_equal(result["out"], ref)


def test_search_and_pareto_on_the_cluster_equal_single_process(cluster):
    model = pivot.ViT.random(CONFIG, seed=2)
    efforts = {e: model.with_path(p) for e, p in {1: [1, 0, 0, 0], 2: [1, 1, 0, 0], 4: [1, 1, 1, 1]}.items()}
    rng = np.random.default_rng(2)
    images = rng.standard_normal((300, 1, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 5, 300)
    # chunks of 100 images on 1-CPU workers, batches of 100 on 1 thread here: the same products, the same bits
    logits = pd.effort_logits(efforts, images, chunk=100)
    for e, m in efforts.items():
        np.testing.assert_array_equal(logits[e], pivot.inference.run_model(m, images, 1, 100))
    here = pivot.pareto(efforts, images, labels, progress=False, batch_size=100, threads=1)
    there = pd.pareto(efforts, images, labels, progress=False, chunk=100)
    assert there.to_csv() == here.to_csv() and len(there.front) == len(here.front)
    target = pivot.sim.simulate(efforts[4]).delay_ms * 0.7
    a = pivot.search(efforts, images, labels, target, lec=0.5, tolerance=0.3, progress=False, batch_size=100,
                     threads=1)
    b = pd.search(efforts, images, labels, target, lec=0.5, tolerance=0.3, progress=False, chunk=100)
    assert (a.low, a.high, a.threshold, a.accuracy, a.delay_ms) == (b.low, b.high, b.threshold, b.accuracy, b.delay_ms)
    assert a.to_csv() == b.to_csv()


def test_sweep_on_ray_executor_equals_in_process(cluster):
    config = pivot.ViTConfig.preset("deit_small_patch16_224")
    grid = {"array_rows": [16, 32, 64], "array_cols": [16, 36], "dataflow": ["is", "ws", "os"]}
    here = pivot.sim.sweep(config, grid)
    executor = pd.RayExecutor()
    assert isinstance(executor, concurrent.futures.Executor)
    there = pivot.sim.sweep(config, grid, executor=executor, chunks=3)
    for key in here:
        np.testing.assert_array_equal(there[key], here[key])


def test_recipe_efforts_on_ray_give_byte_identical_weights(cluster, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from pivot.apps.recipes import fashion_mnist as recipe
    from pivot.torch import VisionTransformer
    from pivot.train import init_weights
    monkeypatch.setattr(recipe, "CONFIG", dict(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=16,
                                               depth=4, num_heads=2, mlp_ratio=2.0))
    base = VisionTransformer(recipe.build_config())
    init_weights(base, seed=0)
    rng = np.random.default_rng(0)
    train = (rng.standard_normal((64, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 64))
    test = (rng.standard_normal((32, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 32))
    cka = {"paths": {"3": {"path": [1, 0, 1, 1]}, "4": {"path": [1, 1, 1, 1]}}}
    threads = torch.get_num_threads()
    weights = {}
    try:
        for where in ("local", "ray"):
            out = tmp_path / where
            out.mkdir()
            argv = ["--out", str(out), "--effort-steps", "4", "--batch-size", "16", "--efforts", "3,4", "--threads", "1"]
            args = recipe._parser().parse_args(argv + (["--ray", cluster.address] if where == "ray" else []))
            recipe.stage_efforts(out, base, cka, train, test, args)
            weights[where] = {e: torch.load(out / f"effort{e}.pt", weights_only=True) for e in (3, 4)}
            assert [line.count('"stage": "effort') for line in (out / "log.jsonl").read_text().splitlines()] == [1, 1]
    finally:
        torch.set_num_threads(threads)
    for e in (3, 4):
        local, remote = weights["local"][e], weights["ray"][e]
        assert list(local) == list(remote)
        for key in local:
            assert local[key].numpy().tobytes() == remote[key].numpy().tobytes(), (e, key)
        assert not torch.equal(local["blocks.0.attn.qkv.weight"], base.state_dict()["blocks.0.attn.qkv.weight"])
