"""pivot.distributed.cascade_predict on a Ray cluster against the single-process cascade.

    python benchmarks/run.py --only distributed          # the 10,000-image test set (~10 min on 2 cores)
    python benchmarks/run.py --quick --only distributed  # 1,000 images (~3 min)

The zoo's cascade (efforts 6 and 12 of fmnist_vit12_p4, threshold for F_L = 0.8 on the first 1,000
images) on Fashion-MNIST's test set (Debian's dataset-fashion-mnist). The peer is
``MultiEffort.predict`` in this process on 1 thread; pivot runs ``cascade_evaluate`` on a Ray
cluster started on this machine (``ray.cluster_utils.Cluster``: a head with 1 CPU for Ray Data's
own tasks, and 1 or 2 worker nodes of 1 CPU each holding the actor pools). Times are wall clock,
end to end (actor start-up, both stages, results back on the driver), best of ``REPEAT``;
the local run is timed before and after the cluster runs, its best kept.

- ``distributed_1n_vs_local``: local seconds / 1-node seconds (what Ray costs on one core)
- ``distributed_2n_vs_1n``: 1-node seconds / 2-node seconds (scaling; 2 at best)

Both sides must give the same predictions, or the benchmark fails. docs/scale-out.md turns the
figures into a cost model.
"""
import os
import pathlib
import time

import numpy as np

from common import Result

import pivot

NODE = dict(node_ip_address="127.0.0.1", object_store_memory=200 * 2 ** 20)
BATCH = 256
REPEAT = 1


def _data(quick):
    images, labels = pivot.datasets.fashion_mnist("test")
    n = 1000 if quick else images.shape[0]
    efforts = pivot.zoo.load(pivot.zoo.ZOO_MODEL)
    cascade = pivot.MultiEffort.for_lec(efforts[6], efforts[12], images[:1000], 0.8, threads=1)
    return cascade, images[:n], labels[:n]


def _local(cascade, images, labels):
    start = time.perf_counter()
    result = cascade.predict(images, labels, threads=1, batch_size=BATCH)
    return time.perf_counter() - start, result


def _on_cluster(cascade, images, labels, workers):
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    from ray.cluster_utils import Cluster

    import pivot.distributed as pd

    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False, **NODE))
    for _ in range(workers):
        cluster.add_node(num_cpus=1, resources={"worker": 1}, **NODE)
    try:
        ray.init(address=cluster.address, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(pathlib.Path(pivot.__file__).parents[1])}})
        cluster.wait_for_nodes()
        ray.data.DataContext.get_current().enable_progress_bars = False
        dataset = pd.from_numpy(images, labels).materialize()
        best, evaluation = float("inf"), None
        for _ in range(REPEAT):
            evaluation = pd.cascade_evaluate(cascade, dataset, actors=workers, batch_size=BATCH,
                                             ray_remote_args={"resources": {"worker": 1}})
            best = min(best, evaluation.seconds)
        return best, evaluation
    finally:
        ray.shutdown()
        cluster.shutdown()


def bench_distributed_cascade(quick):
    cascade, images, labels = _data(quick)
    local_s, ref = _local(cascade, images, labels)
    one_s, one = _on_cluster(cascade, images, labels, 1)
    two_s, two = _on_cluster(cascade, images, labels, 2)
    local_s = min(local_s, _local(cascade, images, labels)[0])
    for ev in (one, two):
        if (ev.accuracy, ev.n_high) != (ref.accuracy, ref.n_high):
            raise AssertionError(f"the cluster's cascade disagrees: {ev.summary()} vs {ref.summary()}")
    n = images.shape[0]
    detail = (f"{n} Fashion-MNIST test images, efforts 6/12, F_L={ref.f_low:.3f}, batch {BATCH}; "
              f"local {n / local_s:.1f}, 1 node {n / one_s:.1f}, 2 nodes {n / two_s:.1f} images/s")
    return [Result("distributed_1n_vs_local", local_s / one_s, one_s, local_s, "s", detail),
            Result("distributed_2n_vs_1n", one_s / two_s, two_s, one_s, "s", detail)]


BENCHMARKS = [bench_distributed_cascade]


def cost_model_inputs(n_fmnist=2000, n_deit=8):
    """Per-image compute (ms, 1 thread, batch = all images given) of the two efforts of the zoo's
    cascade and of a DeiT-S 224 pair (6 of 12 attentions / all 12; random weights: the time does not
    depend on them): the c_L and c_H of docs/scale-out.md's cost model."""
    images, _ = pivot.datasets.fashion_mnist("test")
    efforts = pivot.zoo.load(pivot.zoo.ZOO_MODEL)
    deit = pivot.ViT.random(pivot.ViTConfig.preset("deit_small_patch16_224"), seed=0)
    x224 = np.random.default_rng(0).standard_normal((n_deit, 3, 224, 224)).astype(np.float32)
    out = {}
    for name, model, x in (("fmnist_low", efforts[6], images[:n_fmnist]), ("fmnist_high", efforts[12], images[:n_fmnist]),
                           ("deit_s_low", deit.with_path([1, 0] * 6), x224), ("deit_s_high", deit, x224)):
        model(x[:2], threads=1)
        start = time.perf_counter()
        for first in range(0, x.shape[0], BATCH):
            model(x[first:first + BATCH], threads=1)
        out[name] = 1e3 * (time.perf_counter() - start) / x.shape[0]
    return out


if __name__ == "__main__":  # python benchmarks/bench_distributed.py: the cost model's c_L and c_H
    for key, ms in cost_model_inputs().items():
        print(f"{key:12s} {ms:9.3f} ms/image")
