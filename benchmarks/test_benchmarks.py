"""The benchmarks of ``benchmarks/run.py`` as pytest-benchmark tests.

    pytest benchmarks/ [--benchmark-only] [-k engine]

Two kinds of test:

- ``test_engine_forward``: pivot's DeiT-S forward alone, timed by pytest-benchmark (its statistics,
  ``--benchmark-compare`` and ``--benchmark-json`` apply);
- ``test_side_by_side[<module>.<function>]``: every ``BENCHMARKS`` entry of ``bench_*.py`` run once
  in quick mode (the peers included, as ``run.py --quick`` does); each result's ratio, pivot and
  peer figures land in the benchmark's ``extra_info`` (so in ``--benchmark-json``), and the test
  fails only if a ratio is not a positive finite number.
"""
import math

import numpy as np
import pytest

import pivot
from pivot.model import default_threads
from run import discover

SIDE_BY_SIDE = list(discover())


@pytest.fixture(scope="module")
def deit_small():
    return pivot.ViT.random(pivot.ViTConfig.preset("deit_small_patch16_224"), seed=0)


@pytest.mark.parametrize("batch, threads", [(1, 1), (1, None), (32, None)],
                         ids=["b1-1thread", "b1-default-threads", "b32-default-threads"])
def test_engine_forward(benchmark, deit_small, batch, threads):
    images = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    n = threads or default_threads()
    deit_small(images[:1], threads=n)  # packs the weights, warms the workspace
    benchmark.extra_info.update(batch=batch, threads=n, preset="deit_small_patch16_224")
    rounds = 10 if batch == 1 else 3
    logits = benchmark.pedantic(deit_small, args=(images,), kwargs=dict(threads=n), rounds=rounds, warmup_rounds=1)
    assert logits.shape == (batch, 1000)


def _absent_peer(exc: ModuleNotFoundError) -> str:
    """The peer (torch, onnxruntime, ...) whose absence ``exc`` reports; re-raises ``exc`` when the
    missing module is pivot's own or unnamed (a broken pivot is a failure, not a skip). Any other
    ImportError is not caught at all."""
    missing = (exc.name or "").partition(".")[0]
    if not missing or missing == "pivot":
        raise exc
    return missing


def test_only_an_absent_peer_is_a_skip():
    assert _absent_peer(ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")) == "onnxruntime"
    with pytest.raises(ModuleNotFoundError):
        _absent_peer(ModuleNotFoundError("No module named 'pivot._core'", name="pivot._core"))
    with pytest.raises(ModuleNotFoundError):
        _absent_peer(ModuleNotFoundError("unnamed"))


@pytest.mark.parametrize("module, fn", SIDE_BY_SIDE, ids=[f"{m}.{f.__name__}" for m, f in SIDE_BY_SIDE])
def test_side_by_side(benchmark, module, fn):
    try:
        results = benchmark.pedantic(fn, args=(True,), rounds=1, iterations=1)
    except ModuleNotFoundError as exc:
        pytest.skip(f"peer not installed: {_absent_peer(exc)}")
    if not results:  # e.g. engine_amx_vs_avx512 on a CPU without AMX
        pytest.skip("nothing to measure on this CPU")
    for r in results:
        benchmark.extra_info[r.name] = {"ratio": r.ratio, "pivot": r.pivot, "peer": r.peer, "unit": r.unit,
                                        "detail": r.detail}
        assert math.isfinite(r.ratio) and r.ratio > 0, r
