"""Runs every pivot benchmark side by side with its peer, in one process, and prints a table.

    python benchmarks/run.py [--quick] [--json FILE] [--only SUBSTRING]

Each ``benchmarks/bench_*.py`` module lists its benchmarks in ``BENCHMARKS``: functions taking
``quick`` (bool) and returning a list of ``Result``. A result's ``ratio`` is > 1 when pivot is
better than the peer (faster, or less memory). ``--json`` writes ``{name: ratio}``.
"""
import argparse
import importlib
import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Result  # noqa: E402


def discover():
    for path in sorted(HERE.glob("bench_*.py")):
        module = importlib.import_module(path.stem)
        for fn in getattr(module, "BENCHMARKS", []):
            yield path.stem, fn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (under a minute)")
    parser.add_argument("--json", metavar="FILE", help="write {name: ratio} to FILE")
    parser.add_argument("--only", metavar="SUBSTRING", help="run only benchmarks whose function name contains this")
    args = parser.parse_args(argv)

    results: list[Result] = []
    start = time.perf_counter()
    for module, fn in discover():
        if args.only and args.only not in fn.__name__:
            continue
        try:
            results.extend(fn(args.quick))
        except ImportError as exc:  # a missing optional peer skips that benchmark, loudly
            print(f"skipped {module}.{fn.__name__}: {exc}", file=sys.stderr)

    header = f"{'benchmark':34s} {'pivot':>14s} {'peer':>14s} {'ratio':>8s}  detail"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.name:34s} {r.pivot_text():>14s} {r.peer_text():>14s} {r.ratio:8.3f}  {r.detail}")
    print(f"\n{len(results)} results in {time.perf_counter() - start:.1f} s (ratio > 1: pivot better)")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({r.name: r.ratio for r in results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
