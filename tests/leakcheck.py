"""Leak check: process RSS over many calls of each public function.

``python tests/leakcheck.py`` calls every public function (and the error paths of the C
binding) ``--calls`` times (default 10,000) on small inputs and prints, per function, how much
the resident set size grew after a warm-up: in all, and in the second half of the calls (caches
and allocator pools that fill once grow only in the first half; a leak grows in both). The
verdict (``KiB/10k``) is the second half's growth scaled to 10,000 calls. A leak of even one
small array per call shows as over a thousand KiB per 10,000 calls; noise stays within tens.

    python tests/leakcheck.py                   # all functions, 10,000 calls each
    python tests/leakcheck.py --calls 2000 --only vit_call,cka --json leaks.json

tests/test_rel_leaks.py runs the same cases with a small call count.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time

import numpy as np

import pivot
import pivot.checkpoints
from pivot import _core

__all__ = ["cases", "rss_kib", "measure", "main"]


def rss_kib() -> int:
    """Current resident set size of this process in KiB (Linux /proc; else peak RSS)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _huge_config(config):
    """A config-like object whose token count overflows, past ViTConfig's own checks."""
    import dataclasses
    import types
    return types.SimpleNamespace(**dict(dataclasses.asdict(config), mlp_hidden=config.mlp_hidden, img_size=2 ** 40,
                                        patch_size=1))


def _expect(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type:
        return
    raise AssertionError(f"{fn} did not raise {exc_type.__name__}")


def cases(workdir: str) -> dict:
    """name -> zero-argument callable doing one call (small inputs; files under workdir)."""
    config = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=3, num_classes=10, embed_dim=8, depth=4, num_heads=2,
                             mlp_ratio=2.0)
    lvvit_config = config.replace(stem="lvvit_conv", stem_channels=4, skip_lam=2.0, aux_head=True, qkv_bias=False)
    model = pivot.ViT.random(config, seed=0)
    lvvit = pivot.ViT.random(lvvit_config, seed=0)
    linear = pivot.ViT(config.replace(attention="relu_linear"), model.state_dict())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    feats = [rng.standard_normal((8, 5, 8)).astype(np.float32) for _ in range(4)]
    cka = np.clip(rng.random((4, 4)), 0, 1)
    logits = rng.standard_normal((16, 10)).astype(np.float32)
    st_file = os.path.join(workdir, "m.safetensors")
    npz_file = os.path.join(workdir, "m.npz")
    model.save(st_file)
    np.savez(npz_file, **model.state_dict())
    bad_file = os.path.join(workdir, "bad.safetensors")
    with open(bad_file, "wb") as f:
        f.write((100).to_bytes(8, "little") + b"{" * 100)
    idx_file = os.path.join(workdir, "labels.idx")
    with open(idx_file, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(100))
    state = model.state_dict()
    minibatch = pivot.MinibatchCKA()
    bad_path = np.array([1, 7, 1, 1], np.uint8)
    hw_cfg = config

    def minibatch_update():
        minibatch.update(feats[:2], feats[2:])

    return {
        "vit_call": lambda: model(x, threads=1),
        "vit_call_2threads": lambda: model(x, threads=2),
        "vit_path": lambda: model(x, path=[1, 0, 1, 0], threads=1),
        "vit_reuse": lambda: model(x, path=[1, 2, 0, 2], threads=1),
        "vit_linear": lambda: linear(x, threads=1),
        "vit_forward_branches": lambda: model.forward_branches(x, threads=1),
        "lvvit_call": lambda: lvvit(x, threads=1),
        "lvvit_forward_branches": lambda: lvvit.forward_branches(x, threads=1),
        "attention_maps": lambda: pivot.attention_maps(model, x, threads=1),
        "vit_bad_input_error": lambda: _expect(ValueError, model, x[:, :1]),
        "binding_bad_path_error": lambda: _expect(ValueError, _core.vit_forward, x, model._params, model.config,
                                                  bad_path, 1, True),
        "binding_overflow_error": lambda: _expect((OverflowError, ValueError), _core.model_num_params,
                                                  _huge_config(model.config)),
        "with_path": lambda: model.with_path([0, 1, 1, 0]),
        "state_dict": lambda: model.state_dict(),
        "vit_from_dict": lambda: pivot.ViT(config, state),
        "from_timm_safetensors": lambda: pivot.ViT.from_timm(st_file),
        "load_state_dict_npz": lambda: pivot.io.load_state_dict(npz_file),
        "load_bad_file_error": lambda: _expect(pivot.WeightsFileError, pivot.io.load_state_dict, bad_file),
        "infer_config": lambda: pivot.checkpoints.infer_config(state, num_heads=config.num_heads),
        "read_idx": lambda: pivot.datasets.read_idx(idx_file, 1),
        "flops": lambda: pivot.flops(model),
        "cka": lambda: pivot.linear_cka(feats[0], feats[1]),
        "cka_matrix": lambda: pivot.cka_matrix(feats[:2], feats[2:]),
        "minibatch_cka_update": minibatch_update,
        "path_score": lambda: pivot.path_score(cka, [1, 0, 1, 1]),
        "rank_paths": lambda: pivot.rank_paths(cka, 2),
        "best_paths": lambda: pivot.best_paths(cka),
        "entropy": lambda: pivot.entropy(logits),
        "sim_simulate": lambda: pivot.sim.simulate(hw_cfg, path=[1, 0, 1, 1]),
        "sim_simulate_reuse": lambda: pivot.sim.simulate(hw_cfg, path=[1, 2, 0, 1]),
        "sim_simulate_lvvit": lambda: pivot.sim.simulate(lvvit_config),
        "normalize_path": lambda: pivot.normalize_path([1, 0, 2, 1], 4, allow_reuse=True),
    }


def measure(fn, calls: int, warmup: int | None = None) -> dict:
    """RSS growth (KiB) over `calls` calls of fn after `warmup` calls (default: a tenth of them,
    at least 200), in two halves. Caches and allocator pools fill once and then stay (growth in
    the first half only); a leak grows in both, so the verdict uses the second half, scaled to
    10,000 calls."""
    warmup = max(200, calls // 10) if warmup is None else warmup
    for _ in range(warmup):
        fn()
    half = max(1, calls // 2)
    gc.collect()
    before = rss_kib()
    start = time.perf_counter()
    for _ in range(half):
        fn()
    gc.collect()
    middle = rss_kib()
    for _ in range(calls - half):
        fn()
    seconds = time.perf_counter() - start
    gc.collect()
    after = rss_kib()
    second = after - middle
    return {"calls": calls, "seconds": seconds, "rss_start_kib": before, "growth_kib": after - before,
            "second_half_growth_kib": second,
            "kib_per_10k_calls": second * 10_000 / max(1, calls - half)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/leakcheck.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls per function (default 10000)")
    parser.add_argument("--only", default=None, help="comma-separated case names")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--limit-kib", type=float, default=1024.0,
                        help="exit 1 when any function grows RSS by more than this per 10,000 calls (default 1024)")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        all_cases = cases(workdir)
        names = args.only.split(",") if args.only else list(all_cases)
        unknown = sorted(set(names) - set(all_cases))
        if unknown:
            parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(all_cases)}")
        print(f"{'function':30s} {'calls':>7s} {'s':>7s} {'RSS MiB':>8s} {'growth KiB':>10s} "
              f"{'2nd half':>8s} {'KiB/10k':>8s}")
        for name in names:
            r = measure(all_cases[name], args.calls)
            results[name] = r
            print(f"{name:30s} {r['calls']:7d} {r['seconds']:7.2f} {r['rss_start_kib'] / 1024:8.1f} "
                  f"{r['growth_kib']:10d} {r['second_half_growth_kib']:8d} {r['kib_per_10k_calls']:8.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    worst = max(results.values(), key=lambda r: r["kib_per_10k_calls"])
    return 1 if worst["kib_per_10k_calls"] > args.limit_kib else 0


if __name__ == "__main__":
    sys.exit(main())
