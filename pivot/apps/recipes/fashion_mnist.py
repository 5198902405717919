"""The whole PIVOT recipe on Fashion-MNIST, from one command and a seed::

    python -m pivot.apps.recipes.fashion_mnist --out runs/fmnist --seed 0 [--ship]

Stages (each writes its result under ``--out`` and is skipped when that result exists, so an
interrupted run resumes): ``base`` trains the 12-encoder ViT from scratch (``--base zoo``: takes
the zoo's shipped one); ``cka`` computes the CKA matrix on 256 training images with the C engine
and picks each effort's path on them with ``--path-method`` (``pivot.select_paths``; default
``output_kl``, the paper's Path-Score with ``path_score``); ``efforts`` fine-tunes each effort
(3..11) on its path with the PIVOT loss (teacher: the base model); ``random_paths`` fine-tunes random paths of one effort with the same
budget (the paper's Fig. 4a question); ``--ship`` writes the F16 safetensors and the model card
into ``pivot/zoo`` (with :func:`pivot.zoo.ship`).

``--ray ADDRESS`` (``pip install "pivot[ray]"``) fine-tunes the efforts as Ray tasks on that
cluster ("auto": the one this machine belongs to), one effort per task with ``--threads`` CPUs
(1 when not given); each task gets the base weights and the data through Ray's object store and
sends the weights back, so nothing depends on where it ran: with the same ``--threads`` the
weights are byte-identical to a local run. ``--device cuda`` trains on a GPU instead.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import numpy as np

from .resume import ResumeError, check_arguments, read_json

ZOO_NAME = "fmnist_vit12_p4"
CONFIG = dict(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=64, depth=12, num_heads=4,
              mlp_ratio=4.0, input_mean=(0.2860,), input_std=(0.3530,))  # pivot.datasets.MEAN / STD
EFFORTS = tuple(range(3, 12))
PROCESS_ARGS = ("stages", "efforts", "ship", "ray")  # what one process runs, not part of the recipe
# Recipe arguments that do not change what a stage computes: a run may resume with other values.
RESUMABLE_ARGS = ("out", "root", "threads", "device")


def build_config():
    from pivot import ViTConfig
    return ViTConfig(**CONFIG)


def _log(out: pathlib.Path, record: dict) -> None:
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def _save(module, file: pathlib.Path) -> None:
    _save_state(module.state_dict(), file)


def _save_state(state: dict, file: pathlib.Path) -> None:
    import torch
    tmp = file.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(file)


def _load(file: pathlib.Path, path=None):
    """A stage's checkpoint, read back on resume: a regular file holding this recipe's weights, or a
    ResumeError naming it (a truncated or foreign file is never half-loaded)."""
    import torch
    from pivot.io import open_regular_file
    from pivot.torch import VisionTransformer
    module = VisionTransformer(build_config(), path=path)
    try:
        with open_regular_file(file, error=ResumeError) as f:
            state = torch.load(f, weights_only=True)
        module.load_state_dict(state)
    except ResumeError:
        raise
    except Exception as exc:  # torch raises many kinds on a corrupt or foreign file
        raise ResumeError(f"{file}: not a checkpoint of this recipe ({type(exc).__name__}: {str(exc)[:200]}); "
                          "delete it to redo that stage") from None
    return module.eval()


def stage_base(out, train, test, args):
    from pivot.torch import VisionTransformer
    from pivot.train import PivotLoss, evaluate, fit, init_weights
    file = out / "base.pt"
    if file.exists():
        return _load(file)
    if getattr(args, "base", "train") == "zoo":
        return _base_from_zoo(out, file, test)
    module = VisionTransformer(build_config())
    init_weights(module, seed=args.seed)
    steps_per_epoch = len(train[0]) // args.batch_size
    log = fit(module, *train, loss=PivotLoss(distill_weight=0.0, entropy_weight=0.0), steps=args.base_epochs * steps_per_epoch,
              batch_size=args.batch_size, lr=args.base_lr, warmup_steps=steps_per_epoch, seed=args.seed,
              shift=args.shift, precision=args.precision, desc="base", device=getattr(args, "device", None))
    module.cpu()
    _save(module, file)
    _log(out, {"stage": "base", "epochs": args.base_epochs, "seconds": round(log["seconds"], 1),
               "test_accuracy": evaluate(module, *test)})
    return module


def _base_from_zoo(out, file, test):
    """``--base zoo``: the shipped full model (its F16 weights, exact in float32) instead of training
    one, so that new paths or budgets can be fine-tuned without the 30 base epochs."""
    import pivot
    from pivot.torch import from_vit
    from pivot.train import evaluate
    module = from_vit(pivot.zoo.load(ZOO_NAME, efforts=[12])[12]).eval()
    _save(module, file)
    _log(out, {"stage": "base", "epochs": 0, "source": f"pivot.zoo {ZOO_NAME} effort 12", "seconds": 0.0,
               "test_accuracy": evaluate(module, *test)})
    return module


def stage_cka(out, base, train, args):
    """The CKA matrix on 256 training images and each effort's path, chosen by ``--path-method``
    (``pivot.select_paths``: output_kl by default, the paper's Path-Score with path_score) on the
    same images."""
    import pivot
    from pivot.torch import to_vit
    file = out / "cka.json"
    method = getattr(args, "path_method", "path_score")
    if file.exists() or file.is_symlink():
        record = read_json(file, "CKA stage's record")
        if record.get("path_method", "path_score") != method:
            raise ResumeError(f"{file} holds paths chosen by {record.get('path_method', 'path_score')!r}, "
                              f"not --path-method {method!r}: use another --out")
        return check_cka_record(file, record, len(train[0]))
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(train[0]), 256, replace=False))
    full = to_vit(base)
    cka = pivot.model_cka(full, train[0][idx], batch_size=64)
    if method == "path_score":
        chosen = pivot.best_paths(cka, efforts=list(EFFORTS))
    else:
        chosen = pivot.select_paths(full, train[0][idx], train[1][idx], efforts=list(EFFORTS), method=method,
                                    budget=args.path_budget)
    record = {"images": idx.tolist(), "cka": np.where(np.isnan(cka), None, cka).tolist(), "path_method": method,
              "paths": {str(e): {"path": [int(v) for v in sp.path], "score": float(sp.score)}
                        for e, sp in chosen.items()}}
    file.write_text(json.dumps(record))
    return record


def check_cka_record(file, record: dict, samples: int) -> dict:
    """``record`` (cka.json read back) when it holds what stage_cka writes: 256 distinct image indices
    below ``samples``, a (D, D) CKA matrix, and for each effort a 0/1 path of D entries with that many
    ones; a ResumeError naming the file and the field otherwise."""
    depth = build_config().depth

    def bad(field, why):
        return ResumeError(f"{file}: {field} {why}; delete the file to redo the CKA stage")

    idx = record.get("images")
    if (not isinstance(idx, list) or len(idx) != 256 or len(set(map(repr, idx))) != 256
            or not all(type(i) is int and 0 <= i < samples for i in idx)):
        raise bad("images", f"must be 256 distinct indices in [0, {samples})")
    cka = record.get("cka")
    if (not isinstance(cka, list) or len(cka) != depth
            or not all(isinstance(r, list) and len(r) == depth and
                       all(v is None or (type(v) in (int, float) and math.isfinite(v)) for v in r) for r in cka)):
        raise bad("cka", f"must be a {depth} x {depth} matrix of numbers (null where undefined)")
    paths = record.get("paths")
    if not isinstance(paths, dict):
        raise bad("paths", "must map each effort to its path")
    for e in EFFORTS:
        entry = paths.get(str(e))
        path = entry.get("path") if isinstance(entry, dict) else None
        if (not isinstance(path, list) or len(path) != depth or any(v not in (0, 1) or type(v) is not int for v in path)
                or sum(path) != e):
            raise bad(f"paths[{e!r}]", f"must be a 0/1 path of {depth} encoders with {e} active")
    return record


def per_effort(spec, convert=int, option: str = "--effort-steps") -> dict:
    """``"800"`` or ``"800,6-10:3000,11:1200"``: a default value for every effort, then overrides
    for single efforts or inclusive ranges. Returns {effort: convert(value)} for EFFORTS; values
    must be > 0 (step counts, learning rates)."""
    items = [item.strip() for item in str(spec).split(",")]
    try:
        default = convert(items[0])
        values = {e: default for e in EFFORTS}
        for item in items[1:]:
            efforts, value = item.split(":")
            for e in _effort_range(efforts):
                if e not in values:
                    raise ValueError(f"effort {e} is not one of {EFFORTS[0]}..{EFFORTS[-1]}")
                values[e] = convert(value)
    except ValueError as exc:
        raise ValueError(f"{option} {spec!r}: expected VALUE[,E:VALUE|,E1-E2:VALUE ...] ({exc})") from None
    if not min(values.values()) > 0:
        raise ValueError(f"{option} {spec!r}: values must be > 0")
    return values


def effort_lrs(spec) -> dict:
    """``--effort-lr``'s {effort: peak learning rate}."""
    return per_effort(spec, float, "--effort-lr")


def _effort_range(text: str) -> range:
    """``"6"`` or ``"6-8"`` (inclusive); ValueError when not integers."""
    lo, _, hi = text.strip().partition("-")
    return range(int(lo), int(hi or lo) + 1)


def _fit_args(args, seed, steps, lr) -> dict:
    return dict(steps=steps, batch_size=args.batch_size, lr=lr, warmup_steps=steps // 20, seed=seed,
                shift=args.shift, precision=args.precision, device=getattr(args, "device", None))


def _finetune_weights(config: dict, base_state: dict, path, train, test, fit_args: dict, threads=None):
    """(state_dict, seconds, test accuracy) of the base model fine-tuned on ``path`` with the PIVOT
    loss (teacher: the base model). Depends only on its arguments (and ``threads``), so a Ray
    worker computes the same bytes as this process."""
    import torch
    from pivot import ViTConfig
    from pivot.torch import VisionTransformer
    from pivot.train import PivotLoss, evaluate, fit
    if threads:
        torch.set_num_threads(threads)
    teacher = VisionTransformer(ViTConfig(**config))
    teacher.load_state_dict(base_state)
    student = VisionTransformer(ViTConfig(**config), path=path)
    student.load_state_dict(base_state)
    log = fit(student.eval(), *train, path=path, teacher=teacher.eval(), loss=PivotLoss(), **fit_args)
    accuracy = evaluate(student, *test)
    return {k: v.cpu() for k, v in student.state_dict().items()}, log["seconds"], accuracy


def _finetune(out, name, base, path, train, test, args, seed, steps, lr):
    file = out / f"{name}.pt"
    if file.exists():
        return _load(file, path=path)
    state, seconds, accuracy = _finetune_weights(CONFIG, base.state_dict(), path, train, test,
                                                 _fit_args(args, seed, steps, lr), args.threads)
    _save_state(state, file)
    _log_finetune(out, name, path, steps, lr, seconds, accuracy)
    return _load(file, path=path)


def _log_finetune(out, name, path, steps, lr, seconds, accuracy):
    _log(out, {"stage": name, "path": "".join(map(str, path)), "steps": steps, "lr": lr,
               "seconds": round(seconds, 1), "test_accuracy": accuracy})


def stage_efforts(out, base, cka, train, test, args):
    steps = per_effort(args.effort_steps)
    lrs = effort_lrs(args.effort_lr)
    efforts = EFFORTS if args.efforts is None else parse_efforts(args.efforts)
    if getattr(args, "ray", None):
        return _stage_efforts_on_ray(out, base, cka, train, test, args, efforts, steps, lrs)
    return {e: _finetune(out, f"effort{e}", base, cka["paths"][str(e)]["path"], train, test, args, args.seed + e,
                         steps[e], lrs[e])
            for e in efforts}


def _stage_efforts_on_ray(out, base, cka, train, test, args, efforts, steps, lrs):
    """``stage_efforts`` with one Ray task per effort still to train (``--threads`` CPUs each)."""
    try:
        import ray
    except ImportError:
        raise SystemExit('--ray needs Ray: pip install "pivot[ray]"') from None
    if not ray.is_initialized():
        ray.init(address=args.ray)
    threads = args.threads or 1
    task = ray.remote(num_cpus=threads)(_finetune_weights)
    base_ref, train_ref, test_ref = ray.put(base.state_dict()), ray.put(train), ray.put(test)
    pending = {}
    for e in efforts:
        path = cka["paths"][str(e)]["path"]
        if not (out / f"effort{e}.pt").exists():
            pending[e] = task.remote(CONFIG, base_ref, path, train_ref, test_ref,
                                     _fit_args(args, args.seed + e, steps[e], lrs[e]), threads)
    for e, ref in pending.items():  # saved and logged in effort order, wherever each ran
        state, seconds, accuracy = ray.get(ref)
        _save_state(state, out / f"effort{e}.pt")
        _log_finetune(out, f"effort{e}", cka["paths"][str(e)]["path"], steps[e], lrs[e], seconds, accuracy)
    return {e: _load(out / f"effort{e}.pt", path=cka["paths"][str(e)]["path"]) for e in efforts}


def parse_efforts(spec: str) -> tuple[int, ...]:
    """``"6,8-10"`` -> (6, 8, 9, 10); each must be one of EFFORTS."""
    efforts = []
    for item in str(spec).split(","):
        try:
            efforts += list(_effort_range(item))
        except ValueError:
            raise ValueError(f"--efforts {spec!r}: expected E[,E1-E2 ...]") from None
    bad = [e for e in efforts if e not in EFFORTS]
    if bad or not efforts:
        raise ValueError(f"--efforts {spec!r}: efforts must be in {EFFORTS[0]}..{EFFORTS[-1]}, got {bad or 'none'}")
    return tuple(sorted(set(efforts)))


def stage_random_paths(out, base, cka, train, test, args):
    """Fig. 4a: the best path and ``--random-paths`` random paths of one effort, all on the same
    budget (``--random-path-steps``). The best path is fine-tuned again under the name
    ``best{e}`` when the effort itself got a different budget."""
    e = args.random_effort
    depth = build_config().depth
    rng = np.random.default_rng(args.seed + 1000)
    best = cka["paths"][str(e)]["path"]
    steps, lr = args.random_path_steps, args.random_path_lr
    if (per_effort(args.effort_steps)[e], effort_lrs(args.effort_lr)[e]) != (steps, lr):
        _finetune(out, f"best{e}", base, best, train, test, args, args.seed + e, steps, lr)
    rows = []
    for k in range(args.random_paths):
        while True:
            path = np.zeros(depth, dtype=int)
            path[rng.choice(depth, e, replace=False)] = 1
            if path.tolist() != best:
                break
        name = f"random{e}_{k}"
        _finetune(out, name, base, path.tolist(), train, test, args, args.seed + 2000 + k, steps, lr)
        rows.append(name)
    return rows


def _read_log(run: pathlib.Path) -> dict:
    records = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        records[rec["stage"]] = rec  # the last record of a stage wins (a resumed run appends)
    return records


def ship(run: pathlib.Path, name: str = ZOO_NAME, machine: str = "2 CPU cores (torch 2.13 CPU)") -> pathlib.Path:
    """Ship the finished run in ``run`` as zoo model ``name`` with :func:`pivot.zoo.ship`: the base
    model and each effort on its path, and a card built from the run's log, args and CKA matrix."""
    import dataclasses

    import pivot
    from pivot.torch import to_vit
    from pivot.zoo import cka_from_json

    log = _read_log(run)
    cka = json.loads((run / "cka.json").read_text())
    args = json.loads((run / "args.json").read_text())
    depth = build_config().depth
    sources = {depth: (run / "base.pt", [1] * depth)}
    for e in EFFORTS:
        sources[e] = (run / f"effort{e}.pt", cka["paths"][str(e)]["path"])
    models = {e: to_vit(_load(file, path=path)) for e, (file, path) in sorted(sources.items())}
    matrix = cka_from_json(cka["cka"])
    def path_score_of(text):
        return pivot.path_score(matrix, [int(c) for c in text])

    random_rows = [{"path": rec["path"], "score": path_score_of(rec["path"]), "test_accuracy": rec["test_accuracy"]}
                   for stage, rec in sorted(log.items()) if stage.startswith("random")]
    e_rand = args.get("random_effort", 6)
    best_rec = log.get(f"best{e_rand}") or log.get(f"effort{e_rand}")  # best{e}: the Fig. 4a budget, when it differs
    seconds = sum(rec.get("seconds", 0) for rec in log.values())
    card = {
        "data": "Fashion-MNIST (Xiao et al. 2017): 60,000 training images, 10,000 test images, 28x28 grey, "
                "Debian package dataset-fashion-mnist",
        "command": _command(args),
        "args": args,
        "config": dataclasses.asdict(build_config()),
        "training_seconds": round(seconds, 1),
        "machine": machine,
        "test_accuracy": None,  # measured by pivot.zoo.ship on the shipped F16 weights
        "torch_test_accuracy_fp32": {str(e): log[f"effort{e}" if e != depth else "base"]["test_accuracy"]
                                     for e in sorted(sources)},
        "paths": {str(e): "".join(map(str, sources[e][1])) for e in sorted(sources)},
        "fine_tuning_steps": {str(e): log[f"effort{e}"]["steps"] for e in EFFORTS},
        "fine_tuning_lr": {str(e): log[f"effort{e}"].get("lr", effort_lrs(args["effort_lr"])[e]) for e in EFFORTS},
        "path_scores": {k: v["score"] for k, v in cka["paths"].items()},
        "cka": cka["cka"],
        "cka_images": "256 training images, indices in the run's cka.json",
        "random_paths": {"effort": e_rand,
                         "chosen_by": cka.get("path_method", "path_score"),
                         "best": {"path": best_rec["path"] if best_rec else None,
                                  "score": path_score_of(best_rec["path"]) if best_rec else None,
                                  "method_score": cka["paths"][str(e_rand)]["score"],
                                  "test_accuracy": best_rec["test_accuracy"] if best_rec else None},
                         "random": random_rows},
    }
    test = pivot.datasets.fashion_mnist("test", root=args.get("root"))
    return pivot.zoo.ship(name, models, card, test, log_text=(run / "log.jsonl").read_text())


def _command(args: dict) -> str:
    """The one command that reproduces the run: the recipe's arguments that differ from the defaults."""
    defaults = vars(_parser().parse_args(["--out", "RUN"]))
    changed = "".join(f" --{k.replace('_', '-')} {v}" for k, v in args.items()
                      if k not in ("out", "seed") + PROCESS_ARGS and v != defaults.get(k))
    return f"python -m pivot.apps.recipes.fashion_mnist --out RUN --seed {args['seed']}{changed} --ship"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for checkpoints, the CKA matrix and log.jsonl")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=None, help="Fashion-MNIST IDX folder (default: Debian's package)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--base", choices=("train", "zoo"), default="train",
                   help="train the full model (default) or start from the zoo's shipped one")
    p.add_argument("--base-epochs", type=int, default=30)
    p.add_argument("--base-lr", type=float, default=2e-3)
    p.add_argument("--effort-steps", default="800",
                   help="fine-tuning steps per effort: STEPS for all, then optional overrides E:STEPS or "
                        "E1-E2:STEPS, comma-separated (e.g. 800,6-10:3000)")
    p.add_argument("--efforts", default=None,
                   help="fine-tune only these efforts (e.g. 6,8-10; default all), to split a run over processes")
    p.add_argument("--effort-lr", default="3e-4",
                   help="peak fine-tuning learning rate per effort, in --effort-steps' form (e.g. 3e-4,6-8:1e-3)")
    p.add_argument("--path-method", default="output_kl",
                   choices=("path_score", "output_kl", "accuracy", "cross_entropy"),
                   help="how each effort's path is chosen (pivot.select_paths; default output_kl, whose paths "
                        "fine-tuned 2-3.6 points above the paper's Path-Score ones: docs/path-selection.md)")
    p.add_argument("--path-budget", type=int, default=4, help="beam width of the output-based --path-method rules")
    p.add_argument("--random-effort", type=int, default=6)
    p.add_argument("--random-paths", type=int, default=3)
    p.add_argument("--random-path-steps", type=int, default=800,
                   help="the one fine-tuning budget of the Fig. 4a comparison (best path and random paths)")
    p.add_argument("--random-path-lr", type=float, default=3e-4, help="the Fig. 4a comparison's learning rate")
    p.add_argument("--shift", type=int, default=0,
                   help="random shift augmentation in pixels (0: flips only; shifts move content across the "
                        "4-pixel patch grid, which slowed learning in our probes)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="training forward precision (bf16: autocast, 1.35-1.5x faster with AMX/AVX512-BF16)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default=None,
                   help='train on this torch device (e.g. "cuda"; default: the CPU); the CKA stays on the C engine')
    p.add_argument("--stages", default="base,cka,efforts,random_paths", help="comma-separated stages to run")
    p.add_argument("--ship", action="store_true", help="write pivot/zoo files from the finished run")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help='fine-tune the efforts as Ray tasks on this cluster ("auto": the local one), '
                        "--threads CPUs each; same weights as a local run with the same --threads")
    return p


def main(argv=None):
    p = _parser()
    args = p.parse_args(argv)
    try:
        per_effort(args.effort_steps)
        effort_lrs(args.effort_lr)
        if args.efforts is not None:
            parse_efforts(args.efforts)
    except ValueError as exc:
        p.error(str(exc))
    if args.random_effort not in EFFORTS:
        p.error(f"--random-effort must be one of the efforts {EFFORTS[0]}..{EFFORTS[-1]}, got {args.random_effort}")
    others = math.comb(build_config().depth, args.random_effort) - 1  # every path of that effort but the best
    if not 0 <= args.random_paths <= others:
        p.error(f"--random-paths must be in [0, {others}] (effort {args.random_effort} has {others} paths "
                f"besides the best one), got {args.random_paths}")

    import torch
    import pivot
    from pivot.train import training_device
    try:
        training_device(args.device)
    except ValueError as exc:
        p.error(f"--device: {exc}")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        # processes that split a run share args.json, so it holds the recipe only; a resumed run
        # must have the same recipe (results of other arguments are never reused)
        check_arguments(out, {k: v for k, v in vars(args).items() if k not in PROCESS_ARGS},
                        ignore=RESUMABLE_ARGS)
        train = pivot.datasets.fashion_mnist("train", root=args.root)
        test = pivot.datasets.fashion_mnist("test", root=args.root)
        stages = args.stages.split(",")
        started = time.time()
        base = stage_base(out, train, test, args)
        if "cka" in stages or "efforts" in stages or "random_paths" in stages:
            cka = stage_cka(out, base, train, args)
        if "efforts" in stages:
            stage_efforts(out, base, cka, train, test, args)
        if "random_paths" in stages:
            stage_random_paths(out, base, cka, train, test, args)
    except ResumeError as exc:
        p.error(str(exc))
    _log(out, {"stage": "done", "stages": stages, "seconds_this_run": round(time.time() - started, 1)})
    if args.ship:
        print("shipped to", ship(out))


if __name__ == "__main__":
    main()
