"""Which path-selection rule predicts fine-tuned accuracy? The paper's Fig. 4a, measured::

    python -m pivot.apps.recipes.path_selection --out runs/paths --efforts 6,4,8 --seeds 0,1 --random-paths 10 \\
        --device cuda --workers 8 --results pivot/data/path_selection.json --plot docs/path-selection.png

On the zoo's full model (``pivot.zoo``, effort 12 weights, float16 stored, run in float32), for each
effort: the path chosen by each rule of ``pivot.select_paths`` (on calibration images drawn from
the training set) and ``--random-paths`` random paths are each fine-tuned with the same budget
and seed (the Fashion-MNIST recipe's fine-tune: ``pivot.train.fine_tune``, PIVOT loss, AdamW,
``--steps`` steps at peak lr ``--lr``, flips, fp32; on ``--device``, ``--workers`` at a time) and
tested with the C engine on all 10,000 test images. Every rule also scores every fine-tuned path,
so the report gives, per rule, the Spearman correlation between its score and the fine-tuned
accuracy.

Stages, each resumable (a killed run continues where it stopped): ``select`` (selection.json,
one entry per rule, with the time it took), ``score`` (scores.json), ``finetune`` (one JSON per
fine-tune under finetunes/; seed ``--seeds[0]`` for every path first, in ``--efforts`` order,
then the other seeds for the rules' paths, then, with ``--extra-seed-paths all``, for the
random ones), ``report`` (``--results`` JSON, a Markdown table on stdout and ``--plot``).
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import numpy as np

from .resume import ResumeError, check_arguments, read_json

ZOO_MODEL = "fmnist_vit12_p4"
STEPS, LR = 800, 3e-4
METHOD_ORDER = ("path_score", "output_kl", "accuracy", "cross_entropy")
# Arguments that decide the results: a resumed run must pass the same ones (args.json in --out).
RESULT_ARGS = ("efforts", "seeds", "methods", "random_paths", "steps", "lr", "calibration", "budget",
               "extra_seed_paths")


def path_text(path) -> str:
    return "".join(str(int(v)) for v in path)


def path_mask(text: str) -> list[int]:
    return [int(c) for c in text]


def calibration(train, count: int, seed: int = 0):
    """`count` training images (and labels) drawn once with `seed`: every rule sees the same ones."""
    idx = np.sort(np.random.default_rng(seed).choice(len(train[0]), count, replace=False))
    return train[0][idx], train[1][idx]


def finetune_file(out: pathlib.Path, effort: int, path, seed: int) -> pathlib.Path:
    return out / "finetunes" / f"e{effort:02d}_{path_text(path)}_s{seed}.json"


def _write_json(file: pathlib.Path, record) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(file)


def finetune_one(out, base, train, test, effort, path, seed, steps=STEPS, lr=LR, threads=1, progress=True,
                 device=None) -> dict:
    """Fine-tunes `base` (a pivot.ViT, also the teacher) on `path` with the recipe's fine-tune and
    tests it with the C engine on the test set. One JSON per (effort, path, seed), written at the
    end: a killed run redoes only the fine-tune it was in."""
    from pivot.train import fine_tune
    file = finetune_file(out, effort, path, seed)
    if file.exists() or file.is_symlink():
        return check_finetune_record(file, read_json(file, "fine-tune record"), effort, path, seed, steps, lr)
    started = time.time()
    tuned = fine_tune(base.with_path(np.asarray(path, np.uint8)), *train, steps=steps, lr=lr, batch_size=128,
                      seed=seed, progress=progress, shift=0, precision="fp32", device=device)
    seconds = time.time() - started
    logits = tuned(test[0], threads=threads)
    record = {"effort": effort, "path": path_text(path), "seed": seed, "steps": steps, "lr": lr,
              "device": _device_name(device), "seconds": round(seconds, 1),
              "test_accuracy": float(np.mean(logits.argmax(1) == test[1]))}
    _write_json(file, record)
    return record


def check_finetune_record(file, record: dict, effort, path, seed, steps, lr) -> dict:
    """A fine-tune record read back: refused (ResumeError naming the file and field) unless it is of
    this effort, path, seed, steps and lr, with an accuracy in [0, 1]."""
    want = {"effort": effort, "path": path_text(path), "seed": seed, "steps": steps, "lr": lr}
    for key, value in want.items():
        if record.get(key) != value:
            raise ResumeError(f"{file}: {key} is {record.get(key)!r}, this run's is {value!r}; "
                              "delete it to redo that fine-tune, or use another --out")
    acc = record.get("test_accuracy")
    if type(acc) not in (int, float) or not 0.0 <= acc <= 1.0:
        raise ResumeError(f"{file}: test_accuracy must be a number in [0, 1], got {acc!r}")
    return record


def _device_name(device) -> str:
    import torch
    if device is None or torch.device(device).type == "cpu":
        return "cpu"
    return torch.cuda.get_device_name(torch.device(device))


_WORKER = {}


def _worker_init(threads: int) -> None:
    """Each worker process loads the zoo model and the data once."""
    import torch

    import pivot
    torch.set_num_threads(threads)
    _WORKER["base"] = pivot.zoo.load(ZOO_MODEL, efforts=[12])[12]
    _WORKER["train"] = pivot.datasets.fashion_mnist("train")
    _WORKER["test"] = pivot.datasets.fashion_mnist("test")


def _worker_job(out, effort, path, seed, steps, lr, threads, device) -> dict:
    w = _WORKER
    return finetune_one(out, w["base"], w["train"], w["test"], effort, path, seed, steps, lr, threads,
                        progress=False, device=device)


def stage_finetune(out, base, train, test, todo, args) -> None:
    """Runs the (effort, path, seed) fine-tunes in ``todo``: in this process, or in ``--workers``
    processes (spawned, so each may hold a CUDA context), printing each record as it lands."""
    if args.workers <= 1:
        for e, path, seed in todo:
            print(json.dumps(finetune_one(out, base, train, test, e, path_mask(path), seed, args.steps, args.lr,
                                          args.threads, device=args.device)), flush=True)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init, initargs=(args.threads,)) as pool:
        futures = [pool.submit(_worker_job, out, e, path_mask(path), seed, args.steps, args.lr, args.threads,
                               args.device) for e, path, seed in todo]
        for future in tqdm(as_completed(futures), total=len(futures), desc="fine-tunes", unit="run"):
            print(json.dumps(future.result()), flush=True)


def stage_select(out, base, calib, args) -> dict:
    """{method: {"seconds", "budget", "paths": {effort: {"path", "score"}}}}, one rule at a time."""
    import pivot
    file = out / "selection.json"
    sel = read_json(file, "selection") if file.exists() or file.is_symlink() else {}
    for method, entry in sel.items():
        paths = entry.get("paths") if isinstance(entry, dict) else None
        if not isinstance(paths, dict) or any(
                not isinstance(paths.get(str(e)), dict) or not _is_path_text(paths[str(e)].get("path"), e)
                for e in args.efforts):
            raise ResumeError(f"{file}: {method!r} must hold a path of each effort {args.efforts}; "
                              "delete the file to redo the selection")
    for method in args.methods:
        if method in sel:
            continue
        started = time.time()
        chosen = pivot.select_paths(base, *calib, efforts=args.efforts, method=method, budget=args.budget,
                                    threads=args.threads)
        sel[method] = {"seconds": round(time.time() - started, 1), "budget": args.budget,
                       "paths": {str(e): {"path": path_text(sp.path), "score": sp.score} for e, sp in chosen.items()}}
        _write_json(file, sel)
    return sel


def _is_path_text(text, effort: int, depth: int = 12) -> bool:
    return isinstance(text, str) and len(text) == depth and set(text) <= {"0", "1"} and text.count("1") == effort


def random_paths(effort: int, depth: int, count: int, exclude: set[str], seed: int = 0) -> list[str]:
    """`count` distinct random paths of `effort`, none in `exclude`; the same for a seed. A ValueError
    when fewer than `count` such paths exist."""
    available = math.comb(depth, effort) - sum(1 for t in exclude if _is_path_text(t, effort, depth))
    if count > available:
        raise ValueError(f"--random-paths {count}: effort {effort} of {depth} encoders has only {available} "
                         f"paths besides the rules' ones")
    rng = np.random.default_rng(seed + 1000 + effort)
    found = []
    while len(found) < count:
        mask = np.zeros(depth, dtype=int)
        mask[rng.choice(depth, effort, replace=False)] = 1
        text = path_text(mask)
        if text not in exclude and text not in found:
            found.append(text)
    return found


def candidates(sel: dict, args, depth: int) -> dict:
    """{effort: [(path, [rules choosing it] or ["random"])]}: the rules' paths first, then random ones."""
    out = {}
    for e in args.efforts:
        rows = {}
        for method in args.methods:
            rows.setdefault(sel[method]["paths"][str(e)]["path"], []).append(method)
        for text in random_paths(e, depth, args.random_paths, set(rows)):
            rows[text] = ["random"]
        out[e] = list(rows.items())
    return out


def stage_score(out, base, calib, cands, args, extra_paths=()) -> dict:
    """{method: {path: score}} for every candidate (and extra) path, one rule at a time."""
    import pivot
    file = out / "scores.json"
    scores = read_json(file, "scores") if file.exists() or file.is_symlink() else {}
    for method, have in scores.items():
        if not isinstance(have, dict) or not all(isinstance(v, (int, float)) for v in have.values()):
            raise ResumeError(f"{file}: {method!r} must map paths to numbers; delete the file to redo the scores")
    paths = sorted({p for rows in cands.values() for p, _ in rows} | set(extra_paths))
    for method in args.methods:
        have = scores.setdefault(method, {})
        todo = [p for p in paths if p not in have]
        if not todo:
            continue
        values = pivot.score_paths(base, calib[0], [path_mask(p) for p in todo], calib[1], method=method,
                                   threads=args.threads)
        have.update(zip(todo, map(float, values)))
        _write_json(file, scores)
    return scores


def jobs(cands: dict, args) -> list[tuple[int, str, int]]:
    """(effort, path, seed) in run order: every path at the first seed, then the rules' paths at
    the other seeds, then (``--extra-seed-paths all``) the random ones."""
    first, *rest = args.seeds
    order = [(e, p, first) for e in args.efforts for p, _ in cands[e]]
    order += [(e, p, s) for s in rest for e in args.efforts for p, who in cands[e] if who != ["random"]]
    if args.extra_seed_paths == "all":
        order += [(e, p, s) for s in rest for e in args.efforts for p, who in cands[e] if who == ["random"]]
    return order


def spearman(x, y) -> float:
    """Spearman rank correlation (ties get their mean rank); NaN for fewer than 3 pairs or a constant side."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return float("nan")

    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):  # ties: mean rank
            r[v == value] = r[v == value].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def report(out: pathlib.Path, sel: dict, cands: dict, scores: dict, args, reference: list[dict]) -> dict:
    """The results: every fine-tuned row with each rule's score, per-rule Spearman correlations
    (score oriented so that + means the rule's "better" predicts higher accuracy), timings."""
    from pivot.path_select import METHODS
    runs = {}
    for file in sorted((out / "finetunes").glob("*.json")):
        rec = read_json(file, "fine-tune record")
        runs.setdefault((rec["effort"], rec["path"]), {})[str(rec["seed"])] = rec
    rows = []
    for e in args.efforts:
        for p, who in cands[e]:
            done = runs.get((e, p), {})
            rows.append({"effort": e, "path": p, "chosen_by": who,
                         "scores": {m: scores[m][p] for m in args.methods if p in scores.get(m, {})},
                         "test_accuracy": {s: r["test_accuracy"] for s, r in sorted(done.items())},
                         "seconds": {s: r["seconds"] for s, r in sorted(done.items())}})
    first = str(args.seeds[0])
    correlations = {}
    for m in args.methods:
        sign = 1 if METHODS[m][1] else -1
        per_effort = {}
        for e in args.efforts:
            pts = [(sign * r["scores"][m], r["test_accuracy"][first]) for r in rows
                   if r["effort"] == e and first in r["test_accuracy"] and m in r["scores"]]
            per_effort[str(e)] = {"n": len(pts), "spearman": spearman(*zip(*pts)) if len(pts) >= 3 else None}
        ref = [(sign * r["scores"][m], r["test_accuracy"]) for r in reference if m in r["scores"]]
        # the card's rows share the effort and budget but not the run (its precision, device, seeds): pooled, flagged
        ref_effort = reference[0]["effort"] if reference else None
        pooled = ref + [(sign * r["scores"][m], r["test_accuracy"][first]) for r in rows
                        if r["effort"] == ref_effort and first in r["test_accuracy"] and m in r["scores"]
                        and r["path"] not in {x["path"] for x in reference}]
        correlations[m] = {"per_effort": per_effort,
                           "reference": {"n": len(ref), "spearman": spearman(*zip(*ref)) if len(ref) >= 3 else None},
                           "reference_and_this_run": {"n": len(pooled),
                                                      "spearman": spearman(*zip(*pooled)) if len(pooled) >= 3 else None}}
    seed_pairs = [(r["test_accuracy"][a], r["test_accuracy"][b]) for r in rows
                  for a, b in zip(list(r["test_accuracy"]), list(r["test_accuracy"])[1:])]
    diffs = [abs(a - b) for a, b in seed_pairs]
    result = {
        "command": "python -m pivot.apps.recipes.path_selection " + " ".join(sys.argv[1:]),
        "model": ZOO_MODEL + " effort 12",
        "calibration": {"images": args.calibration, "split": "train", "seed": 0},
        "fine_tune": {"steps": args.steps, "lr": args.lr, "batch_size": 128, "precision": "fp32", "shift": 0,
                      "test_images": 10000},
        "budget": args.budget,
        "methods": {m: {"higher_is_better": METHODS[m][1], "unit": METHODS[m][2], "seconds": sel[m]["seconds"],
                        "paths": sel[m]["paths"]} for m in args.methods},
        "rows": rows,
        "spearman": correlations,
        "seed_noise": {"pairs": len(diffs), "max_abs_difference": max(diffs) if diffs else None,
                       "mean_abs_difference": float(np.mean(diffs)) if diffs else None},
        "reference": reference,
        "reference_label": reference_label(),
    }
    return result


def markdown(result: dict) -> str:
    methods = list(result["methods"])
    lines = ["| effort | path | chosen by | " + " | ".join(methods) + " | test accuracy per seed |",
             "|---|---|---|" + "---|" * len(methods) + "---|"]
    for r in result["rows"]:
        acc = ", ".join(f"s{s}: {100 * a:.2f}%" for s, a in r["test_accuracy"].items()) or "not run yet"
        sc = " | ".join(f"{r['scores'][m]:.4g}" if m in r["scores"] else "" for m in methods)
        lines.append(f"| {r['effort']} | `{r['path']}` | {', '.join(r['chosen_by'])} | {sc} | {acc} |")
    lines += ["", "| rule | time to choose (s) | " + " | ".join(f"Spearman e{e}" for e in
                                                                    result["spearman"][methods[0]]["per_effort"])
              + " | Spearman, card's effort-6 rows | card's + this run's effort-6 rows |",
              "|---|---|" + "---|" * (len(result["spearman"][methods[0]]["per_effort"]) + 2)]
    for m in methods:
        c = result["spearman"][m]

        def fmt(v):
            return "n<3" if v["spearman"] is None else f"{v['spearman']:+.2f} (n={v['n']})"
        lines.append(f"| {m} | {result['methods'][m]['seconds']:.1f} | "
                     + " | ".join(fmt(v) for v in c["per_effort"].values())
                     + f" | {fmt(c['reference'])} | {fmt(c['reference_and_this_run'])} |")
    return "\n".join(lines)


def card_reference() -> list[dict]:
    """The zoo card's comparison of its chosen path and random paths (one effort, the same budget;
    the recipe's own run, precision and seeds)."""
    import pivot
    card = pivot.zoo.card(ZOO_MODEL)
    rp = card["random_paths"]
    e = rp["effort"]
    rows = [{"effort": e, "path": rp["best"]["path"], "chosen_by": card["args"].get("path_method", "path_score"),
             "test_accuracy": rp["best"]["test_accuracy"]}]
    rows += [{"effort": e, "path": r["path"], "chosen_by": "random", "test_accuracy": r["test_accuracy"]}
             for r in rp["random"]]
    return rows


def reference_label() -> str:
    """How the card's rows were made, for the report and the plot's legend."""
    import pivot
    card = pivot.zoo.card(ZOO_MODEL)
    args = card["args"]
    return (f"zoo card, effort {card['random_paths']['effort']} ({args.get('precision', 'fp32')}, "
            f"{args.get('device') or 'cpu'} run, paths by {args.get('path_method', 'path_score')})")


def _parser() -> argparse.ArgumentParser:
    from pivot.path_select import METHODS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for selection.json, scores.json and finetunes/")
    p.add_argument("--threads", type=int, default=1, help="torch and C engine threads (default 1)")
    p.add_argument("--device", default=None,
                   help='fine-tune on this torch device (e.g. "cuda"; default: the CPU); tests stay on the C engine')
    p.add_argument("--workers", type=int, default=1,
                   help="fine-tunes run at once, each in its own process with --threads threads (default 1)")
    p.add_argument("--efforts", default="6,4,8", help="efforts, in run order (default 6,4,8)")
    p.add_argument("--seeds", default="0", help="fine-tuning seeds, e.g. 0,1 (the first for every path)")
    p.add_argument("--methods", default=",".join(METHODS), help="selection rules (default: all)")
    p.add_argument("--random-paths", type=int, default=5)
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--lr", type=float, default=LR)
    p.add_argument("--calibration", type=int, default=256, help="training images the rules see (default 256)")
    p.add_argument("--budget", type=int, default=4,
                   help="beam width of the output-based rules (default 4, pivot.select_paths' own; 1: greedy removal)")
    p.add_argument("--extra-seed-paths", choices=("methods", "all"), default="methods")
    p.add_argument("--max-finetunes", type=int, default=None, help="stop after this many new fine-tunes")
    p.add_argument("--stages", default="select,score,finetune,report")
    p.add_argument("--results", default=None, help="write the results JSON here (e.g. pivot/data/path_selection.json, which pivot.datasets.path_selection_results() reads)")
    p.add_argument("--plot", default=None, help="write the score-vs-accuracy plot here (e.g. docs/path-selection.png)")
    return p


def _ints(text: str, option: str, p) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        p.error(f"{option} {text!r}: expected comma-separated integers")
    if len(set(values)) != len(values):
        p.error(f"{option} {text!r}: repeated value")
    return values


def main(argv=None):
    from pivot.path_select import METHODS
    p = _parser()
    args = p.parse_args(argv)
    args.efforts = _ints(args.efforts, "--efforts", p)
    args.seeds = _ints(args.seeds, "--seeds", p)
    args.methods = [m.strip() for m in args.methods.split(",")]
    bad = [m for m in args.methods if m not in METHODS]
    if bad:
        p.error(f"--methods: unknown {bad}; choose from {', '.join(METHODS)}")
    if not all(1 <= e < 12 for e in args.efforts):
        p.error(f"--efforts {args.efforts}: each must be in 1..11")
    for name in ("threads", "workers", "random_paths", "steps", "calibration", "budget"):
        if getattr(args, name) < (0 if name == "random_paths" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive")
    for e in args.efforts:  # the rules' paths may all differ: that many fewer remain for random ones
        available = math.comb(12, e) - len(args.methods)
        if args.random_paths > available:
            p.error(f"--random-paths {args.random_paths}: effort {e} of 12 encoders has only {available} paths "
                    f"besides the {len(args.methods)} rules' ones")

    import torch

    import pivot
    from pivot.train import training_device
    try:
        training_device(args.device)
    except ValueError as exc:
        p.error(f"--device: {exc}")
    torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    base = pivot.zoo.load(ZOO_MODEL, efforts=[12])[12]
    train = pivot.datasets.fashion_mnist("train")
    if args.calibration > len(train[0]):
        p.error(f"--calibration {args.calibration}: the training set has only {len(train[0])} images")
    try:
        out.mkdir(parents=True, exist_ok=True)
        check_arguments(out, {name: getattr(args, name) for name in RESULT_ARGS})
        calib = calibration(train, args.calibration)
        stages = args.stages.split(",")
        sel = stage_select(out, base, calib, args)
        cands = candidates(sel, args, base.config.depth)
        reference = card_reference()
        scores = stage_score(out, base, calib, cands, args, [r["path"] for r in reference])
        if "finetune" in stages:
            test = pivot.datasets.fashion_mnist("test")
            todo = [job for job in jobs(cands, args) if not finetune_file(out, *job).exists()]
            for job in jobs(cands, args):  # the records already there are this run's
                if finetune_file(out, *job).exists():
                    file = finetune_file(out, *job)
                    check_finetune_record(file, read_json(file, "fine-tune record"), job[0], path_mask(job[1]), job[2],
                                          args.steps, args.lr)
            stage_finetune(out, base, train, test, todo[:args.max_finetunes], args)
        if "report" in stages:
            for r in reference:
                r["scores"] = {m: scores[m][r["path"]] for m in args.methods}
            result = report(out, sel, cands, scores, args, reference)
            print(markdown(result))
            if args.results:
                _write_json(pathlib.Path(args.results), result)
            if args.plot:
                from pivot.plot import path_selection
                path_selection(result).savefig(args.plot, dpi=120, bbox_inches="tight")
    except ResumeError as exc:
        p.error(str(exc))

if __name__ == "__main__":
    main()
