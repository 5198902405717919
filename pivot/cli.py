"""The ``pivot`` command: ``pivot sim``, ``pivot cka``, ``pivot search``, ``pivot demo``.

Each subcommand prints a readable table, or JSON with ``--json``. Nothing is downloaded: models
are built offline (a random-weight ViT, or a weights file), images come from the Fashion-MNIST
sample shipped with pivot or are random.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import time

import numpy as np

__all__ = ["main", "build_parser"]

# The model `--model random` builds: a small ViT for 28 x 28 grey images (Fashion-MNIST shape),
# small enough that `pivot demo` runs in seconds.
DEMO_CONFIG = dict(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=64, depth=6, num_heads=4,
                   mlp_ratio=4.0)


class CLIError(Exception):
    """A user error worth one line on stderr and exit status 2, not a traceback."""


# ----------------------------------------------------------------------------- output helpers

def _fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    if isinstance(value, (tuple, list)):
        return "".join(map(str, value))
    return "-" if value is None else str(value)


def format_table(rows, columns=None) -> str:
    """A plain-text table of dicts (columns: their keys by default)."""
    rows = list(rows)
    if not rows:
        return "(none)"
    columns = columns or list(rows[0])
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return str(obj)


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=_json_default, allow_nan=True))


def _path_bits(path) -> str:
    return "".join(str(int(v)) for v in np.asarray(path).ravel())


# ----------------------------------------------------------------------------- shared options

def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="random", metavar="random|FILE",
                   help="'random': a small random-weight ViT for 28x28 grey images (default); or a weights file "
                        "(.safetensors, .npz, .pth) read with pivot.ViT.from_timm")
    p.add_argument("--num-heads", type=int, default=None, help="heads of a weights file's model, if not inferable")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and random images (default 0)")
    p.add_argument("--data", choices=("auto", "sample", "random"), default="auto",
                   help="images: the Fashion-MNIST sample shipped with pivot, or Gaussian noise of the model's "
                        "input shape (auto: the sample when the model takes 1x28x28 images)")
    p.add_argument("--threads", type=int, default=None, help="threads for the model (default: all cores)")


def _build_model(args):
    import pivot
    if args.model == "random":
        return pivot.ViT.random(pivot.ViTConfig(**DEMO_CONFIG), seed=args.seed)
    path = pathlib.Path(args.model)
    if not path.exists():
        raise CLIError(f"--model: no such file {args.model!r} (use 'random' or a weights file)")
    return pivot.ViT.from_timm(str(path), num_heads=args.num_heads)


def _images(args, model, count: int, offset: int = 0):
    """(images, dataset labels or None) for the model: the shipped sample, or random images."""
    import pivot
    cfg = model.config
    use_sample = args.data == "sample" or (
        args.data == "auto" and (cfg.in_chans, cfg.img_size) == (1, 28))
    if use_sample:
        if (cfg.in_chans, cfg.img_size) != (1, 28):
            raise CLIError(f"--data sample holds 1x28x28 images but the model takes {cfg.in_chans}x{cfg.img_size}x"
                           f"{cfg.img_size}; use --data random")
        images, labels = pivot.datasets.fashion_mnist_sample()
        if offset + count > images.shape[0]:
            raise CLIError(f"the shipped sample has {images.shape[0]} images; asked for {offset + count}")
        labels = labels[offset:offset + count]
        if labels.size and labels.max() >= cfg.num_classes:
            labels = None
        return images[offset:offset + count], labels
    rng = np.random.default_rng(args.seed + 1 + offset)
    images = rng.standard_normal((count, cfg.in_chans, cfg.img_size, cfg.img_size)).astype(np.float32)
    return images, None


def _labels(args, model, images, data_labels):
    """Labels for accuracy: the data's when the model is trained, else the all-attention model's
    predictions (a random-weight model has no meaningful accuracy; agreement with it is measured)."""
    if data_labels is not None and args.model != "random":
        return data_labels, "dataset labels"
    logits = model(images, path=np.ones(model.config.depth, dtype=np.uint8), threads=args.threads)
    return np.argmax(logits, axis=1).astype(np.int64), "agreement with the all-attention model"


def _hardware(args):
    """pivot.sim.ZCU102 with the --array/--dataflow/--clock-mhz changes."""
    from . import sim
    hw = sim.ZCU102
    changes = {}
    fields = {f.name for f in dataclasses.fields(hw)}
    if getattr(args, "array", None):
        try:
            rows, cols = (int(v) for v in args.array.lower().split("x"))
        except ValueError:
            raise CLIError(f"--array must look like 64x36 (rows x columns), got {args.array!r}") from None
        changes.update(_pick(fields, ("array_rows", "rows"), rows), **_pick(fields, ("array_cols", "cols"), cols))
    if getattr(args, "dataflow", None):
        changes.update(_pick(fields, ("dataflow",), args.dataflow))
    if getattr(args, "clock_mhz", None) is not None:
        changes.update(_pick(fields, ("clock_mhz", "clock_hz"), args.clock_mhz))
    try:
        return dataclasses.replace(hw, **changes) if changes else hw
    except (ValueError, TypeError) as exc:
        raise CLIError(f"hardware: {exc}") from None


def _pick(fields, names, value) -> dict:
    for name in names:
        if name in fields:
            return {name: value * 1e6 if name == "clock_hz" else value}
    raise CLIError(f"the simulator's HardwareConfig has none of the fields {names}")


def _add_hw_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--array", metavar="ROWSxCOLS", help="systolic array size (default ZCU102: 64x36)")
    p.add_argument("--dataflow", choices=("is", "ws", "os"), help="dataflow: input, weight or output stationary "
                                                                  "(default ZCU102: is)")
    p.add_argument("--clock-mhz", type=float, help="clock frequency in MHz (default ZCU102: 125)")


# ----------------------------------------------------------------------------- pivot sim

def cmd_sim(args) -> int:
    import pivot
    from . import sim
    if args.weights:
        target = pivot.ViT.from_timm(args.weights, num_heads=args.num_heads).config
    else:
        target = pivot.ViTConfig.preset(args.preset)
    path = None
    if args.path:
        if set(args.path) - {"0", "1"}:
            raise CLIError(f"--path must be a string of 0/1 (one per encoder), got {args.path!r}")
        path = [int(c) for c in args.path]
    path = pivot.normalize_path(path, target.depth)
    hw = _hardware(args)
    report = sim.simulate(target, path=path, hw=hw)
    summary = dict(model=args.weights or args.preset, path=_path_bits(path), active_attentions=int(path.sum()),
                   delay_ms=report.delay_ms, energy_j=report.energy_j, power_w=report.power_w, edp=report.edp,
                   fps_per_w=report.fps_per_w)
    if args.json:
        _print_json(dict(summary, hardware=hw, breakdown=report.breakdown, layers=report.to_dicts()))
        return 0
    print(f"PIVOT-Sim: {summary['model']}, path {summary['path']} ({summary['active_attentions']}/{target.depth} "
          f"attentions), {hw}")
    print(format_table([dict(delay_ms=report.delay_ms, energy_j=report.energy_j, power_w=report.power_w,
                             edp_j_ms=report.edp, fps_per_w=report.fps_per_w)]))
    breakdown = report.breakdown
    if isinstance(breakdown, dict) and breakdown:
        print("\ndelay breakdown:")
        print(format_table([dict(part=k, value=v) for k, v in breakdown.items()]))
    return 0


# ----------------------------------------------------------------------------- pivot cka

def cmd_cka(args) -> int:
    import pivot
    model = _build_model(args)
    images, _ = _images(args, model, args.images)
    cka = pivot.model_cka(model, images, batch_size=args.batch_size)
    best = pivot.best_paths(cka)
    rows = [dict(effort=e, path=_path_bits(sp.path), score=float(sp.score)) for e, sp in sorted(best.items())]
    if args.json:
        _print_json(dict(images=int(images.shape[0]), cka=np.asarray(cka).tolist(), best_paths=rows))
        return 0
    depth = model.config.depth
    print(f"CKA(MLP_i, A_j) on {images.shape[0]} images ({depth} encoders; rows i = MLP output, columns j = attention):")
    print(format_table([{"i": i, **{f"A{j}": float(cka[i, j]) for j in range(depth)}} for i in range(depth)]))
    print("\nbest path per effort (Path-Score, Algorithm 1):")
    print(format_table(rows))
    return 0


# ----------------------------------------------------------------------------- pivot search

def _efforts_from_cka(model, images, args, efforts=None):
    """{effort: model.with_path(best path)} from the model's CKA matrix, and the best paths."""
    import pivot
    cka = pivot.model_cka(model, images[:args.cka_images], batch_size=args.batch_size)
    best = pivot.best_paths(cka, efforts=efforts)
    return {int(e): model.with_path(sp.path) for e, sp in best.items()}, best, cka


def _parse_efforts(text, depth):
    if text is None:
        return None
    try:
        efforts = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise CLIError(f"--efforts must be comma-separated integers, got {text!r}") from None
    bad = [e for e in efforts if not 0 <= e <= depth]
    if bad:
        raise CLIError(f"--efforts must be in [0, {depth}] (the model has {depth} encoders), got {bad}")
    if len(efforts) < 2:
        raise CLIError("--efforts needs at least 2 efforts")
    return efforts


def _target(args, efforts, hw) -> float:
    """--target-ms, or --target-fraction of the largest effort's simulated delay."""
    from . import sim
    if args.target_ms is not None:
        return args.target_ms
    top = efforts[max(efforts)]
    return args.target_fraction * sim.simulate(top, hw=hw).delay_ms


def _search_options(p):
    p.add_argument("--efforts", help="comma-separated efforts (active attentions) to consider, e.g. 2,3,4,5,6 "
                                     "(default: every effort from 1 to the depth)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target-ms", type=float, help="target delay in ms on the simulated accelerator")
    g.add_argument("--target-fraction", type=float, default=0.6,
                   help="target as a fraction of the largest effort's delay (default 0.6)")
    p.add_argument("--lec", type=float, default=0.8, help="low-effort constraint: fraction of inputs the low "
                                                          "effort must classify (default 0.8)")
    p.add_argument("--tolerance", type=float, default=0.05, help="accepted relative distance to the target "
                                                                 "delay (default 0.05)")
    p.add_argument("--images", type=int, default=256, help="calibration images (default 256, as the paper)")
    p.add_argument("--cka-images", type=int, default=64, help="images for the CKA matrix (default 64)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of CKA runs (default 64)")


def cmd_search(args) -> int:
    import pivot
    model = _build_model(args)
    images, data_labels = _images(args, model, args.images)
    labels, label_kind = _labels(args, model, images, data_labels)
    wanted = _parse_efforts(args.efforts, model.config.depth) or list(range(1, model.config.depth + 1))
    efforts, best, _ = _efforts_from_cka(model, images, args, wanted)
    hw = _hardware(args)
    target = _target(args, efforts, hw)
    try:
        result = pivot.search(efforts, images, labels, target, lec=args.lec, hw=hw, tolerance=args.tolerance,
                              progress=not args.json and not args.quiet, threads=args.threads)
    except pivot.SearchTargetError as exc:
        if args.json:
            _print_json(dict(error=str(exc), trail=[c.to_dict() for c in exc.trail]))
            return 1
        raise CLIError(str(exc)) from None
    if args.csv:
        result.to_csv(args.csv)
    if args.json:
        _print_json(dict(result.to_dict(), labels=label_kind))
        return 0
    print(f"search over efforts {sorted(efforts)} on {result.n_images} images ({label_kind}):")
    print(format_table([c.to_dict() for c in result.trail],
                       ["low", "high", "threshold", "f_low", "accuracy", "delay_ms", "edp", "accepted", "note"]))
    print("\nchosen:\n" + result.summary())
    return 0


# ----------------------------------------------------------------------------- pivot demo

def cmd_demo(args) -> int:
    import pivot
    started = time.perf_counter()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if args.json else print
    model = _build_model(args)
    cfg = model.config
    say(f"model: {args.model} ViT, {cfg.depth} encoders, dim {cfg.embed_dim}, {cfg.num_heads} heads, "
        f"{cfg.img_size}x{cfg.img_size}x{cfg.in_chans} inputs, {cfg.num_classes} classes")

    calib, calib_data_labels = _images(args, model, args.images)
    labels, label_kind = _labels(args, model, calib, calib_data_labels)

    # Phase 1: CKA matrix and the best path of each effort.
    efforts, best, cka = _efforts_from_cka(model, calib, args)
    say(f"\nPhase 1: CKA on {min(args.cka_images, calib.shape[0])} images; best path per effort:")
    say(format_table([dict(effort=e, path=_path_bits(sp.path), score=float(sp.score)) for e, sp in sorted(best.items())]))

    # Phase 2: search at the target delay.
    from . import sim
    hw = _hardware(args)
    target = _target(args, efforts, hw)
    try:
        result = pivot.search(efforts, calib, labels, target, lec=args.lec, hw=hw, tolerance=args.tolerance,
                              progress=False, threads=args.threads)
    except pivot.SearchTargetError as exc:
        raise CLIError(f"{exc}. Try --target-fraction or --target-ms") from None
    say(f"\nPhase 2: target {target:.3f} ms +/- {100 * args.tolerance:g}% at LEC {args.lec:g}, "
        f"{len(result.trail)} pair(s) tried:")
    say(format_table([c.to_dict() for c in result.trail], ["low", "high", "threshold", "f_low", "accuracy",
                                                            "delay_ms", "edp", "accepted"]))

    # Classify a fresh batch with the chosen pair and time it against the all-attention model.
    batch, batch_data_labels = _images(args, model, args.batch, offset=args.images)
    batch_labels, _ = _labels(args, model, batch, batch_data_labels)
    cascade = result.multi_effort(efforts)
    full = efforts[max(efforts)]
    cascade.predict(batch[:2], threads=args.threads)  # warm up both paths
    t0 = time.perf_counter()
    run = cascade.predict(batch, batch_labels, threads=args.threads)
    t_cascade = time.perf_counter() - t0
    t0 = time.perf_counter()
    full_logits = full(batch, threads=args.threads)
    t_full = time.perf_counter() - t0
    full_acc = float(np.mean(np.argmax(full_logits, axis=1) == batch_labels))
    baseline = sim.simulate(full, hw=hw)

    # The whole front and the plots.
    front = pivot.pareto(efforts, calib, labels, hw=hw, progress=False, threads=args.threads)
    plots = _demo_plots(out, cka, front, result, efforts, hw)
    result.to_csv(out / "search_trail.csv")
    front.to_csv(out / "pareto.csv")

    summary = dict(
        model=args.model, labels=label_kind, calibration_images=int(calib.shape[0]),
        best_paths={int(e): _path_bits(sp.path) for e, sp in best.items()},
        chosen=dict(low=result.low, high=result.high, low_path=_path_bits(result.low_path),
                    high_path=_path_bits(result.high_path), threshold=result.threshold),
        target_delay_ms=target, lec=args.lec,
        pivot=dict(accuracy=result.accuracy, f_low=result.f_low, delay_ms=result.delay_ms,
                   energy_j=result.energy_j, edp=result.edp, fps_per_w=result.fps_per_w),
        baseline=dict(effort=max(efforts), delay_ms=baseline.delay_ms, energy_j=baseline.energy_j,
                      edp=baseline.edp, fps_per_w=baseline.fps_per_w),
        batch=dict(images=int(batch.shape[0]), f_low=run.f_low, accuracy=run.accuracy, full_accuracy=full_acc,
                   cascade_s=t_cascade, full_s=t_full),
        front_points=len(front.points), front_size=len(front.front),
        files=[str(p) for p in plots + [out / "search_trail.csv", out / "pareto.csv"]],
        seconds=time.perf_counter() - started)
    if args.json:
        _print_json(summary)
        return 0
    print(f"\nclassified a batch of {batch.shape[0]} images: {100 * run.f_low:.1f}% decided by effort {result.low}, "
          f"{run.n_high} re-run on effort {result.high}; accuracy {100 * run.accuracy:.1f}% vs "
          f"{100 * full_acc:.1f}% for effort {max(efforts)} alone ({label_kind}); "
          f"CPU time {1e3 * t_cascade:.1f} ms vs {1e3 * t_full:.1f} ms")
    print("\nsimulated accelerator (PIVOT-Sim):")
    print(format_table([
        dict(design=f"effort {max(efforts)} alone", delay_ms=baseline.delay_ms, energy_j=baseline.energy_j,
             edp_j_ms=baseline.edp, fps_per_w=baseline.fps_per_w, accuracy=front_accuracy(front, max(efforts))),
        dict(design=f"PIVOT {result.low}/{result.high}", delay_ms=result.delay_ms, energy_j=result.energy_j,
             edp_j_ms=result.edp, fps_per_w=result.fps_per_w, accuracy=result.accuracy),
    ]))
    print(f"\nEDP {baseline.edp / result.edp:.2f}x lower, delay {baseline.delay_ms / result.delay_ms:.2f}x lower "
          f"than effort {max(efforts)} alone")
    print(f"wrote {len(summary['files'])} files to {out}/ in {summary['seconds']:.1f} s: "
          + ", ".join(pathlib.Path(f).name for f in summary["files"]))
    return 0


def front_accuracy(front, effort) -> float:
    return next(p.accuracy for p in front.points if p.high is None and p.low == effort)


def _demo_plots(out, cka, front, result, efforts, hw) -> list:
    import pivot
    import pivot.plot as plot
    from . import sim
    files = []

    def save(fig, name):
        fig.savefig(out / name, dpi=100)
        files.append(out / name)

    if hasattr(plot, "cka_heatmap"):
        save(plot.cka_heatmap(cka), "cka_heatmap.png")
    save(plot.edp_vs_lec(front), "edp_vs_lec.png")
    reports = {}
    for lec in (0.6, 0.7, 0.8, 0.9, 1.0):
        me = pivot.MultiEffort(efforts[result.low], efforts[result.high], front.at_lec(lec)[(result.low, result.high)].threshold)
        f_high = 1.0 - front.at_lec(lec)[(result.low, result.high)].f_low
        reports[f"LEC {100 * lec:.0f}%"] = sim.simulate_pair(me.low, me.high, f_high, hw=hw)
    save(plot.edp_split(reports), "edp_split.png")
    save(plot.accuracy_edp_front(front, highlight=result), "accuracy_edp_front.png")
    if hasattr(plot, "delay_breakdown"):
        save(plot.delay_breakdown([sim.simulate(efforts[max(efforts)], hw=hw), result.report]), "delay_breakdown.png")
    return files


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pivot", description="PIVOT: input-aware attention skipping for ViTs "
                                     "(C engine, CKA path selection, effort search, FPGA simulator).")
    sub = parser.add_subparsers(dest="command", metavar="{sim,cka,search,demo}")

    p = sub.add_parser("sim", help="simulate a ViT (preset or weights file) on the systolic-array FPGA model",
                       description="Simulate one ViT with an attention path on PIVOT-Sim (ZCU102 by default).")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", default="deit_small_patch16_224",
                   help="a timm model name (default deit_small_patch16_224)")
    g.add_argument("--weights", help="a weights file; its shape is simulated")
    p.add_argument("--num-heads", type=int, default=None, help="heads of the weights file's model, if not inferable")
    p.add_argument("--path", help="attention path, one 0/1 per encoder, e.g. 111111000000 (default all 1)")
    _add_hw_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("cka", help="CKA matrix of a model and the best path per effort",
                       description="CKA(MLP_i, A_j) of a model on images, and the Path-Score best path per effort.")
    _add_model_options(p)
    p.add_argument("--images", type=int, default=64, help="images for the CKA matrix (default 64)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_cka)

    p = sub.add_parser("search", help="Phase-2 search: the effort pair and threshold for a target delay",
                       description="Build efforts from a model's best paths (CKA), then run pivot.search.")
    _add_model_options(p)
    _search_options(p)
    _add_hw_options(p)
    p.add_argument("--csv", help="write the search trail to this CSV file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("demo", help="the whole pipeline on a small model; writes plots",
                       description="Build a model offline, CKA, best paths, search at a target delay, "
                                   "classify a batch, simulator report; plots (PNG) and CSVs go to --out.")
    _add_model_options(p)
    _search_options(p)
    _add_hw_options(p)
    p.add_argument("--batch", type=int, default=256, help="images of the classified batch (default 256)")
    p.add_argument("--out", default="pivot-demo", help="folder for plots and CSVs (default ./pivot-demo)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``pivot`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    for name in ("images", "cka_images", "batch_size", "batch"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            print(f"pivot {args.command}: --{name.replace('_', '-')} must be at least 1, got {value}", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"pivot {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"pivot {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
