"""Records what the ``scalesim`` package (SCALE-Sim v3.0.0) reports for GEMMs too slow to run in
the tests: every DeiT-S product on the Table 1 array in all three dataflows, plus memory cases
with small SRAMs (estimate-bandwidth "CALC" mode) and with a user bandwidth ("USER" mode).

    python3 tests/reference/make_scalesim_reference.py     # about 5 minutes on one core

Writes tests/reference/scalesim_gemm.json, read by tests/test_sim_scalesim.py.
"""
import json
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # scalesim_util.py

import scalesim  # noqa: E402,F401  (fail early when the peer is missing)
from importlib.metadata import version  # noqa: E402

from scalesim_util import run_gemms  # noqa: E402

OUT = pathlib.Path(__file__).with_name("scalesim_gemm.json")

# DeiT-S at batch 1 (T = 197 tokens, C = 384, 6 heads of 64, MLP 1536), and LVViT-S's fc2 (MLP 1152).
DEIT_S = [("patch_embed", 196, 384, 768), ("qkv", 197, 1152, 384), ("qk", 197, 197, 64),
          ("sv", 197, 64, 197), ("proj", 197, 384, 384), ("fc1", 197, 1536, 384),
          ("fc2", 197, 384, 1536), ("head", 1, 1000, 384), ("lvvit_fc2", 197, 384, 1152)]


def cases():
    for dataflow in ("is", "ws", "os"):
        for name, M, N, K in DEIT_S:
            yield dict(group=f"deit_s_{dataflow}", name=name, M=M, N=N, K=K, rows=64, cols=36, dataflow=dataflow,
                       sram_kb=[8, 8, 8], bandwidth=None)
    rng = random.Random(3)
    for dataflow in ("is", "ws", "os"):
        for i in range(10):
            M, N, K = (rng.randint(8, 90) for _ in range(3))
            rows, cols, kb = rng.choice([4, 8, 16]), rng.choice([4, 8, 16]), rng.choice([1, 2, 4, 8])
            yield dict(group="memory_calc", name=f"{dataflow}{i}", M=M, N=N, K=K, rows=rows, cols=cols,
                       dataflow=dataflow, sram_kb=[kb, kb, kb], bandwidth=None)
    for dataflow in ("is", "ws", "os"):
        for kb in (1, 16):
            for bandwidth in (1, 4, 16, 64):
                yield dict(group="memory_user", name=f"{dataflow}_{kb}kb_bw{bandwidth}", M=64, N=64, K=64, rows=8,
                           cols=8, dataflow=dataflow, sram_kb=[kb, kb, kb], bandwidth=bandwidth)


def main():
    records = []
    start = time.perf_counter()
    for case in cases():
        t0 = time.perf_counter()
        result = run_gemms([(case["name"], case["M"], case["N"], case["K"])], case["rows"], case["cols"],
                           case["dataflow"], *case["sram_kb"], bandwidth=case["bandwidth"])[0]
        case["scalesim_seconds"] = round(time.perf_counter() - t0, 3)
        case["result"] = result
        records.append(case)
        print(f"{case['group']:14s} {case['name']:14s} {result['total_cycles']:>9d} cycles "
              f"{case['scalesim_seconds']:7.2f} s", flush=True)
    OUT.write_text(json.dumps({"scalesim_version": version("scalesim"),
                               "command": "python3 tests/reference/make_scalesim_reference.py",
                               "cases": records}, indent=1) + "\n")
    print(f"wrote {len(records)} cases to {OUT} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
