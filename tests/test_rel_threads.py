"""Reliability: concurrent calls from Python threads, the GIL released during compute, and
bitwise determinism for a fixed thread count."""
import hashlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pivot
from pivot import _core
from rel_util import CONFIGS, TIMM, images

N_THREADS = 4


def _run_in_threads(fn, n=N_THREADS):
    """Runs fn(i) in n threads started together; returns their results in order (re-raising errors)."""
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def target(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("engine_threads", [1, 2])
def test_four_threads_get_the_serial_results(name, engine_threads):
    model = pivot.ViT.random(CONFIGS[name], seed=5)
    paths = [None, [1, 0] + [1] * (model.config.depth - 2), [0] * model.config.depth, None]
    inputs = [images(model.config, batch=1 + i, seed=i) for i in range(N_THREADS)]
    serial = [model(inputs[i], path=paths[i], threads=engine_threads) for i in range(N_THREADS)]
    serial_inter = [model.forward_branches(inputs[i], threads=engine_threads) for i in range(N_THREADS)]

    def work(i):
        out = []
        for _ in range(10):
            out.append(model(inputs[i], path=paths[i], threads=engine_threads))
            out.append(model.forward_branches(inputs[i], threads=engine_threads))
        return out

    for i, outs in enumerate(_run_in_threads(work)):
        for logits, (inter_logits, attn, mlp) in zip(outs[::2], outs[1::2]):
            np.testing.assert_array_equal(logits, serial[i])
            np.testing.assert_array_equal(inter_logits, serial_inter[i][0])
            for a, b in zip(attn + mlp, serial_inter[i][1] + serial_inter[i][2]):
                np.testing.assert_array_equal(a, b)


def test_threads_share_one_model_with_reuse_and_linear_attention():
    model = pivot.ViT.random(TIMM, seed=6)
    linear = pivot.ViT(TIMM.replace(attention="relu_linear"), model.state_dict())
    x = images(TIMM, batch=3)
    serial = (model(x, path=[1, 2, 0], threads=1), linear(x, threads=1))
    outs = _run_in_threads(lambda i: [(model(x, path=[1, 2, 0], threads=1), linear(x, threads=1)) for _ in range(10)])
    for per_thread in outs:
        for reuse_out, linear_out in per_thread:
            np.testing.assert_array_equal(reuse_out, serial[0])
            np.testing.assert_array_equal(linear_out, serial[1])


def test_path_array_changed_by_another_thread_during_calls():
    """The binding works on a private copy of the path: a thread flipping the caller's path array
    while calls run (capture outputs sized from the path) never corrupts memory or results."""
    model = pivot.ViT.random(TIMM, seed=7)
    x = images(TIMM, batch=2)
    path = np.ones(TIMM.depth, np.uint8)
    expected = {}
    for bits in range(2 ** TIMM.depth):
        p = np.array([(bits >> k) & 1 for k in range(TIMM.depth)], np.uint8)
        expected[bytes(p)] = _core.vit_forward(x, model._params, model.config, p, 1, True)
    stop = threading.Event()

    def flipper():
        rng = np.random.default_rng(0)
        while not stop.is_set():
            path[rng.integers(TIMM.depth)] ^= 1

    t = threading.Thread(target=flipper)
    t.start()
    try:
        deadline = time.monotonic() + 1.0
        calls = 0
        while time.monotonic() < deadline:
            logits, attn, mlp, _ = _core.vit_forward(x, model._params, model.config, path, 1, True)
            # whatever path the call saw, its outputs are those of one consistent path
            match = [k for k, v in expected.items() if v[1].shape == attn.shape and np.array_equal(v[0], logits)]
            assert match, "logits of no valid path"
            calls += 1
    finally:
        stop.set()
        t.join()
    assert calls > 0


def test_blas_thread_count_restored_after_concurrent_cka():
    before = _core.blas_get_num_threads()
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((16, 40)).astype(np.float32) for _ in range(2)]
    serial = pivot.linear_cka(feats[0], feats[1], threads=2)
    outs = _run_in_threads(lambda i: [pivot.linear_cka(feats[0], feats[1], threads=1 + i % 3) for _ in range(20)])
    assert _core.blas_get_num_threads() == before
    for per_thread in outs:
        for value in per_thread:
            assert value == pytest.approx(serial, rel=1e-6)


# ------------------------------------------------------------------------ the GIL is released

def test_gil_released_during_compute():
    """A pure-Python thread keeps running while another thread is inside one long C call: its
    timestamps fall inside the call's interval. With the GIL held for the call it could not run."""
    config = pivot.ViTConfig(img_size=64, patch_size=4, embed_dim=192, depth=6, num_heads=3, num_classes=10)
    model = pivot.ViT.random(config, seed=0)
    x = images(config, batch=16)  # ~120 ms on AMX's kernels (batch 4 fell under the 50 ms floor)
    model(x[:1], threads=1)  # warm up
    stamps, call = [], {}
    started = threading.Event()
    stop = threading.Event()

    def ticker():
        started.set()
        while not stop.is_set():
            stamps.append(time.perf_counter())
            for _ in range(200):  # pure-Python work: needs the GIL
                pass

    def caller():
        call["start"] = time.perf_counter()
        model(x, threads=1)
        call["end"] = time.perf_counter()

    t = threading.Thread(target=ticker)
    t.start()
    started.wait()
    c = threading.Thread(target=caller)
    c.start()
    c.join()
    stop.set()
    t.join()
    duration = call["end"] - call["start"]
    inside = [s for s in stamps if call["start"] < s < call["end"]]
    # A held GIL lets the ticker run only at the call's edges (one switch interval, 5 ms, on each
    # side) and leaves one gap as long as the call; a released one lets it tick all through the
    # call: ticks in most tenths of the call's interval.
    assert duration > 0.05, f"call too short to show overlap ({duration * 1e3:.1f} ms)"
    gaps = np.diff([call["start"]] + inside + [call["end"]])
    assert gaps.max() < 0.5 * duration, f"the ticker stalled {gaps.max() * 1e3:.0f} ms of a {duration * 1e3:.0f} ms call"
    tenths = {int(10 * (s - call["start"]) / duration) for s in inside}
    assert len(tenths) >= 6, f"ticks in only {len(tenths)} tenths of the call"


# ------------------------------------------------------------------------ determinism

def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


_SCRIPT = """
import sys, hashlib, numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
import pivot
from rel_util import CONFIGS, images
threads = int(sys.argv[1])
h = hashlib.sha256()
for name in sorted(CONFIGS):
    model = pivot.ViT.random(CONFIGS[name], seed=11)
    x = images(CONFIGS[name], batch=5, seed=3)
    h.update(model(x, threads=threads).tobytes())
    logits, attn, mlp = model.forward_branches(x, threads=threads)
    for a in [logits] + [a for a in attn if a is not None] + mlp:
        h.update(a.tobytes())
print(h.hexdigest())
"""


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bitwise_deterministic_within_a_process(threads):
    for name, config in CONFIGS.items():
        model = pivot.ViT.random(config, seed=11)
        x = images(config, batch=5, seed=3)
        first = _digest([model(x, threads=threads)])
        for _ in range(5):
            assert _digest([model(x, threads=threads)]) == first, name


def test_bitwise_deterministic_across_processes():
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = _SCRIPT.format(root=root, tests=os.path.join(root, "tests"))
    for threads in (1, 2):
        digests = {subprocess.run([sys.executable, "-c", script, str(threads)], capture_output=True, text=True,
                                  check=True).stdout.strip() for _ in range(2)}
        assert len(digests) == 1, f"threads={threads}: {digests}"


def test_one_thread_cap_refused_beyond_never_clamped():
    from pivot import _core, _validate
    assert _validate.MAX_THREADS == _core.MAX_THREADS
    assert _validate.threads(_core.MAX_THREADS) == _core.MAX_THREADS
    with pytest.raises(ValueError, match=f"threads must be in \\[1, {_core.MAX_THREADS}\\]"):
        _validate.threads(_core.MAX_THREADS + 1)
    with pytest.raises(ValueError, match=f"threads must be in \\[1, {_core.MAX_THREADS}\\]"):
        _core.blas_guard_enter(_core.MAX_THREADS + 1)


def test_thread_counts_interleaved_on_the_persistent_pool():
    """The pool grows and serves calls of any size in any order; a call beyond the pool's size
    (64 threads) runs its own team. Each count gives the same bits whatever ran before it."""
    config = CONFIGS[sorted(CONFIGS)[0]]
    model = pivot.ViT.random(config, seed=2)
    x = images(config, batch=3, seed=4)
    counts = [2, 3, 2, 5, 1, 3, 66, 2, 66, 5]
    first = {}
    for n in counts:
        got = model(x, threads=n)
        if n in first:
            np.testing.assert_array_equal(got, first[n], err_msg=f"threads={n}")
        first[n] = got
    for n in first:  # the split moves the rounding only within the team's kernels' tolerance
        np.testing.assert_allclose(first[n], first[1], rtol=1e-4, atol=1e-4)


def test_forked_child_starts_its_own_pool():
    import os
    config = CONFIGS[sorted(CONFIGS)[0]]
    model = pivot.ViT.random(config, seed=2)
    x = images(config, batch=2, seed=1)
    want = model(x, threads=2)  # the parent's pool now has a worker
    pid = os.fork()
    if pid == 0:  # the child: the parent's worker does not exist here
        code = 1
        try:
            ok = all(np.array_equal(model(x, threads=n), model(x, threads=n)) for n in (2, 3))
            code = 0 if ok and np.array_equal(model(x, threads=2), want) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    np.testing.assert_array_equal(model(x, threads=2), want)


def _child(body):
    """Runs `body` in a fresh interpreter that imports pivot and tests/ from this checkout; returns
    its stdout, stripped (fails with its stderr when it exits non-zero)."""
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = f"import sys; sys.path[:0] = [{root!r}, {os.path.join(root, 'tests')!r}]\n" + body
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_interpreter_exits_with_parked_pool_workers():
    assert _child("import threading, pivot; from rel_util import CONFIGS, images\n"
                  "c = CONFIGS[sorted(CONFIGS)[0]]; m = pivot.ViT.random(c, seed=0); x = images(c, batch=2, seed=0)\n"
                  "m(x, threads=3)\n"
                  "t = threading.Thread(target=lambda: [m(x, threads=2) for _ in range(50)], daemon=True); t.start()\n"
                  "print('done')\n") == "done"


def test_pool_workers_kept_off_the_callers_cpu():
    """The caller computes tid 0's share, so the pool keeps its worker off the caller's CPU (two
    threads on one CPU would halve the team; Linux's wake-up placement does that on a VM after an
    idle pause). Run in a child whose calling thread may use two CPUs: after a call the worker's
    affinity is those two less the CPU the caller is on; a team larger than the caller's CPUs
    gets all of them."""
    import os
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the placement needs two CPUs in this process's affinity")
    assert _child("import os, pivot; from rel_util import CONFIGS, images\n"
                  "two = set(sorted(os.sched_getaffinity(0))[:2]); os.sched_setaffinity(0, two)\n"
                  "c = CONFIGS[sorted(CONFIGS)[0]]; m = pivot.ViT.random(c, seed=0); x = images(c, batch=2, seed=0)\n"
                  "m(x, threads=1)\n"
                  "before = set(os.listdir('/proc/self/task'))\n"
                  "m(x, threads=2)\n"
                  "(worker,) = set(os.listdir('/proc/self/task')) - before\n"
                  "def cpu():\n"
                  "    s = open('/proc/thread-self/stat').read()\n"
                  "    return int(s[s.rindex(')') + 2:].split()[36])\n"
                  "seen = []\n"
                  "for _ in range(5):  # the caller may move between the call and the read; the next call follows it\n"
                  "    m(x, threads=2); here = cpu(); mask = os.sched_getaffinity(int(worker))\n"
                  "    seen.append((here, sorted(mask)))\n"
                  "    if mask == two - {here}: break\n"
                  "else:\n"
                  "    sys.exit(f'worker affinity never excluded the caller: {seen}')\n"
                  "os.sched_setaffinity(0, {here})  # the caller's CPUs are the call's: more threads share them\n"
                  "m(x, threads=2); assert os.sched_getaffinity(int(worker)) == {here}\n"
                  "os.sched_setaffinity(0, two)\n"
                  "m(x, threads=3)\n"
                  "assert all(os.sched_getaffinity(int(t)) == two for t in set(os.listdir('/proc/self/task')) - before)\n"
                  "print('ok')\n") == "ok"
