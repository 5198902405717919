"""The ``pivot`` command: ``pivot sim``, ``pivot cka``, ``pivot search``, ``pivot quantize``,
``pivot demo``.

Each subcommand prints a readable table, or JSON with ``--json``. Nothing is downloaded: models
are the shipped zoo, built offline (a random-weight ViT) or a weights file; images come from the
Fashion-MNIST sample shipped with pivot, are random, or are the user's own (``--data PATH``: a
folder of image files, a .npy/.npz array or an IDX file, read by ``pivot.datasets.load_images``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pathlib
import sys
import time

import numpy as np

from ..config import path_effort

__all__ = ["main", "build_parser"]

class CLIError(Exception):
    """A user error worth one line on stderr and exit status 2, not a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (``pivot sim: error: ...``), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Largest counts the options take: far above any use, small enough that no size derived from
# them overflows (images x features, threads for the C engine).
_MAX_COUNT = 10 ** 7
_MAX_THREADS = 1024


def _int_option(low: int, high: int):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def _float_option(low: float, high: float, low_open: bool = True):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"must be a finite number in {'(' if low_open else '['}{low:g}, "
                                             f"{high:g}], got {text!r}")
        return value
    parse.__name__ = "number"
    return parse


_COUNT = _int_option(1, _MAX_COUNT)
_THREADS = _int_option(1, _MAX_THREADS)


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
    # Numbers right-aligned, text left-aligned.
    text = [isinstance(rows[0].get(c), str) for c in columns]
    out += ["  ".join(v.ljust(w) if t else v.rjust(w) for v, w, t in zip(row, widths, text)).rstrip() for row in cells]
    return "\n".join(line.rstrip() for line in out)


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


def _trail_rows(trail) -> list:
    """Search candidates as table rows, fractions in %."""
    return [dict(low=c.low, high=c.high, threshold=c.threshold, f_low_pct=100 * c.f_low, accuracy_pct=100 * c.accuracy,
                 delay_ms=c.delay_ms, edp_j_ms=c.edp, accepted=c.accepted, note=c.note) for c in trail]


def _path_bits(path) -> str:
    return "".join(str(int(v)) for v in np.asarray(path).ravel())


# ----------------------------------------------------------------------------- shared options

def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="zoo", metavar="zoo|NAME|random|FILE",
                   help="'zoo' (default) or a zoo model's NAME (pivot.zoo.list()): the Fashion-MNIST efforts "
                        "shipped in pivot.zoo (trained, one fine-tuned model per effort; 'zoo' falls back to "
                        "'random' if this install has no zoo); 'random': the "
                        "offline demo model of pivot.apps.demo, a small random-weight ViT encoder with a linear head "
                        "fitted per effort on the shipped sample; or a weights file (.safetensors, .npz, .pth) "
                        "read with pivot.ViT.from_timm (an int8 file that pivot.quantize(...).save wrote loads as the "
                        "int8 model)")
    p.add_argument("--num-heads", type=_int_option(1, 2 ** 31 - 1), default=None,
                   help="heads of a weights file's model, if not inferable")
    p.add_argument("--seed", type=_int_option(0, 2 ** 63 - 1), default=0,
                   help="seed of the random weights and random images (default 0)")
    p.add_argument("--data", default="auto", metavar="auto|sample|random|PATH",
                   help="images: 'sample', the Fashion-MNIST sample shipped with pivot (with its labels); 'random', "
                        "Gaussian noise of the model's input shape; 'auto' (default): the sample when the model takes "
                        "1x28x28 images, else random; or PATH, your own images: a folder of image files (PNG, JPEG...; "
                        "class subfolders give the labels), a .npy/.npz array or an IDX file, resized and normalized "
                        "as the model's config says. Without labels, accuracy is agreement with the all-attention model")
    p.add_argument("--labels", metavar="PATH",
                   help="class indices of the --data PATH images: a .npy, a .txt (one integer per image) or an IDX file")
    p.add_argument("--threads", type=_THREADS, default=None, help="threads for the model (default: all cores)")


@dataclasses.dataclass
class Setup:
    """Phase 1 done: the base model, CKA, the path of each effort (``best``: ScoredPath with its
    Path-Score) and the rule that chose it (``path_rule``), the efforts and the data splits."""
    model: object
    cka: np.ndarray
    best: dict
    efforts: dict
    calibration: tuple
    test: tuple
    label_kind: str
    description: str
    path_rule: str = "Path-Score (Algorithm 1)"


def _zoo_name(name):
    """The zoo model ``name`` means ('zoo': the default one), or None when it names none."""
    from .. import zoo
    shipped = zoo.list()
    if name == "zoo":
        return zoo.ZOO_MODEL if zoo.ZOO_MODEL in shipped else None
    return name if name in shipped else None


def _file_model(args):
    import pivot
    from .. import zoo
    path = pathlib.Path(args.model)
    if not path.exists():
        raise CLIError(f"--model: {args.model!r} is no zoo model (shipped: {', '.join(zoo.list()) or 'none'}), "
                       f"not 'random' and no such file")
    return pivot.ViT.from_timm(str(path), num_heads=args.num_heads)


_DATA_WORDS = ("auto", "sample", "random")


def _user_data(args, config):
    """The --data PATH images (and labels) for a model of ``config``, read once per command and
    shuffled (seed --seed): class subfolders are read class after class, and the calibration
    and held-out images must mix the classes."""
    import pivot
    cached = getattr(args, "_user_data", None)
    if cached is not None:
        return cached
    try:
        data = pivot.datasets.load_images(args.data, config, labels=args.labels)
    except ValueError as exc:  # DatasetError
        raise CLIError(f"--data: {exc}") from None
    if data.labels is not None and data.labels.size and data.labels.max() >= config.num_classes:
        raise CLIError(f"--labels: label {int(data.labels.max())} is out of range for a model of "
                       f"{config.num_classes} classes (0..{config.num_classes - 1})")
    order = np.random.default_rng(args.seed).permutation(data.images.shape[0])
    data = dataclasses.replace(data, images=data.images[order],
                               labels=None if data.labels is None else data.labels[order],
                               files=tuple(data.files[k] for k in order) if data.files else data.files)
    args._user_data = data
    return data


def _check_data_option(args) -> None:
    """--data is a keyword or an existing path; --labels goes with a path."""
    if args.data not in _DATA_WORDS and not os.path.exists(args.data):
        raise CLIError(f"--data: {args.data!r} is none of {', '.join(_DATA_WORDS)} and no such file or folder")
    if args.labels is not None and args.data in _DATA_WORDS:
        raise CLIError(f"--labels goes with --data PATH (your own images), not --data {args.data}")


def _user_split(args, config, count: int, offset: int, label_model=None):
    """(images, labels, what the labels are) of --data PATH from ``offset``: up to ``count`` images,
    labels from the data, else the predictions of ``label_model`` (all attentions)."""
    data = _user_data(args, config)
    total = data.images.shape[0]
    if offset >= total:
        raise CLIError(f"--data: {args.data} holds {total} images; {offset} are used for calibration, none are "
                       f"left to classify (add images or lower --images)")
    images = data.images[offset:offset + count]
    if data.labels is not None:
        return images, data.labels[offset:offset + count], f"labels of {args.data}"
    full = np.ones(label_model.config.depth, dtype=np.uint8)
    labels = np.argmax(label_model(images, path=full, threads=args.threads), axis=1).astype(np.int64)
    return images, labels, "agreement with the all-attention model (no labels given)"


def _file_images(args, model, count: int, offset: int = 0):
    """(images, labels, what the labels are) for a weights-file model."""
    import pivot
    cfg = model.config
    if args.data not in _DATA_WORDS:
        return _user_split(args, cfg, count, offset, label_model=model)
    sample_shape = (cfg.in_chans, cfg.img_size) == (1, 28)
    if args.data == "sample" or (args.data == "auto" and sample_shape):
        if not sample_shape:
            raise CLIError(f"--data sample holds 1x28x28 images but the model takes {cfg.in_chans}x{cfg.img_size}x"
                           f"{cfg.img_size}; use --data random or --data PATH (your own images)")
        images, labels = pivot.datasets.fashion_mnist_sample()
        if offset + count > images.shape[0]:
            raise CLIError(f"the shipped sample has {images.shape[0]} images; asked for {offset + count}")
        if cfg.num_classes >= 10:
            return images[offset:offset + count], labels[offset:offset + count], "Fashion-MNIST labels"
        images = images[offset:offset + count]
    else:
        rng = np.random.default_rng(args.seed + 1 + offset)
        images = rng.standard_normal((count, cfg.in_chans, cfg.img_size, cfg.img_size)).astype(np.float32)
    full = np.ones(cfg.depth, dtype=np.uint8)
    labels = np.argmax(model(images, path=full, threads=args.threads), axis=1).astype(np.int64)
    return images, labels, "agreement with the all-attention model"


def _setup(args, efforts_text=None, test=0, progress=False) -> Setup:
    """Phase 1 for the CLI: CKA on the calibration images, best paths, one model per effort."""
    import pivot
    name = _zoo_name(args.model)
    if name is not None:
        return _zoo_setup(args, name, efforts_text, test)
    if args.model == "zoo":
        args.model = "random"
    if args.model == "random":
        from .demo import DEMO_CONFIG, demo_setup
        wanted = _parse_efforts(efforts_text, DEMO_CONFIG.depth)
        if args.images + test > 900:
            raise CLIError(f"the demo model fits its heads on the 1000-image shipped sample: --images + --batch "
                           f"must be at most 900, got {args.images} + {test}")
        s = demo_setup(efforts=wanted, seed=args.seed, calibration=args.images, test=test,
                       cka_images=min(args.cka_images, args.images), threads=args.threads)
        calibration, held, kind = s.calibration, s.test, "Fashion-MNIST labels"
        if args.data not in _DATA_WORDS:
            calibration, held, kind = _user_calibration_and_test(args, DEMO_CONFIG, test, s.efforts[max(s.efforts)])
        return Setup(s.model, s.cka, s.best, s.efforts, calibration, held, kind,
                     f"pivot.apps.demo model (random {DEMO_CONFIG.depth}-encoder ViT, dim {DEMO_CONFIG.embed_dim}, "
                     f"heads fitted per effort on {s.train[0].shape[0]} sample images)")
    model = _file_model(args)
    wanted = _parse_efforts(efforts_text, model.config.depth)
    images, labels, kind = _file_images(args, model, args.images)
    test_images = _file_images(args, model, test, offset=images.shape[0])[:2] if test else (images[:0], labels[:0])
    cka = pivot.model_cka(model, images[:args.cka_images], batch_size=args.batch_size, progress=progress,
                          threads=args.threads)
    best = pivot.best_paths(cka, efforts=wanted or range(1, model.config.depth + 1))
    efforts = {int(e): model.with_path(sp.path) for e, sp in best.items()}
    return Setup(model, cka, best, efforts, (images, labels), test_images, kind,
                 f"{args.model} (efforts: this one model with attentions skipped on its best paths, not fine-tuned)")


def _user_calibration_and_test(args, config, test: int, label_model):
    """--data PATH split into calibration images (the first --images) and ``test`` held-out ones."""
    images, labels, kind = _user_split(args, config, args.images, 0, label_model)
    if not test:
        return (images, labels), (images[:0], labels[:0]), kind
    return (images, labels), _user_split(args, config, test, images.shape[0], label_model)[:2], kind


def _zoo_setup(args, name, efforts_text, test) -> Setup:
    """Phase 1 done at training time: the zoo's fine-tuned efforts, its CKA matrix (256 training
    images) and paths; calibration and test images from the shipped Fashion-MNIST sample."""
    import pivot
    from .. import zoo
    card = zoo.card(name)
    depth = int(card["config"]["depth"])
    wanted = _parse_efforts(efforts_text, depth)
    available = sorted(int(e) for e in card["paths"])
    if wanted is not None:
        missing = [e for e in wanted if e not in available]
        if missing:
            raise CLIError(f"the zoo model {name} has efforts {available}; not {missing}")
    efforts = zoo.load(name, efforts=wanted or available)
    cka = zoo.cka_from_json(card["cka"])
    # The efforts were fine-tuned on the paths of the card's rule: show those, each with its Path-Score.
    rule = card["args"].get("path_method", "path_score")
    best = {e: pivot.ScoredPath(effort=e, path=tuple(int(v) for v in model.path),
                                score=pivot.path_score(cka, model.path)) for e, model in efforts.items()}
    if args.data in _DATA_WORDS:
        images, labels = pivot.datasets.fashion_mnist_sample()
        if args.images + test > images.shape[0]:
            raise CLIError(f"the shipped sample has {images.shape[0]} images: --images + --batch must be at most "
                           f"{images.shape[0]}, got {args.images} + {test}")
        calib = (images[:args.images], labels[:args.images])
        held = (images[args.images:args.images + test], labels[args.images:args.images + test])
        kind = "Fashion-MNIST labels"
    else:
        calib, held, kind = _user_calibration_and_test(args, efforts[max(efforts)].config, test, efforts[max(efforts)])
    return Setup(efforts[max(efforts)], cka, best, efforts, calib, held, kind,
                 f"pivot.zoo {name} ({depth}-encoder ViT, dim {card['config']['embed_dim']}, "
                 f"{100 * card['test_accuracy'][str(depth)]:.2f}% on the 10,000 test images)",
                 path_rule=f"{rule} (the zoo card's rule; the efforts were fine-tuned on these paths)")


def _hardware(args):
    """pivot.sim.ZCU102 with the --array/--dataflow/--clock-mhz changes."""
    from .. import sim
    changes = {}
    if getattr(args, "array", None):
        try:
            changes["array_rows"], changes["array_cols"] = (int(v) for v in args.array.lower().split("x"))
        except ValueError:
            raise CLIError(f"--array must look like 64x36 (rows x columns), got {args.array!r}") from None
    if getattr(args, "dataflow", None):
        changes["dataflow"] = args.dataflow
    if getattr(args, "clock_mhz", None) is not None:
        changes["clock_mhz"] = args.clock_mhz
    try:
        return sim.ZCU102.replace(**changes)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"hardware: {exc}") from None


def _hw_text(hw) -> str:
    return (f"{hw.name}: {hw.array_rows}x{hw.array_cols} PEs, {hw.dataflow.upper()} dataflow, "
            f"{hw.clock_mhz:g} MHz")


def _add_hw_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--array", metavar="ROWSxCOLS", help="systolic array size (default ZCU102: 64x36)")
    p.add_argument("--dataflow", choices=("is", "ws", "os"), help="dataflow: input, weight or output stationary "
                                                                  "(default ZCU102: is)")
    p.add_argument("--clock-mhz", type=_float_option(0, 1e6), help="clock frequency in MHz (default ZCU102: 125)")


# ----------------------------------------------------------------------------- pivot sim

def cmd_sim(args) -> int:
    import pivot
    from .. import sim, zoo
    stored_path = None  # a weights file's own path (its pivot.path metadata), as the Python API uses it
    if args.weights:
        model = pivot.ViT.from_timm(args.weights, num_heads=args.num_heads)
        target, stored_path = model.config, model.path
    elif args.preset in zoo.list():  # a zoo model: its full-effort shape
        target = pivot.ViTConfig(**zoo.card(args.preset)["config"])
    else:
        try:
            target = pivot.ViTConfig.preset(args.preset)
        except ValueError:
            raise CLIError(f"--preset: unknown model {args.preset!r}; timm presets: {', '.join(pivot.ViTConfig.presets())}; "
                           f"zoo models: {', '.join(zoo.list()) or 'none'}") from None
    path = stored_path
    if args.path:
        if set(args.path) - {"0", "1", "2"}:
            raise CLIError(f"--path must be a string of 0/1/2 (one per encoder; 2 reuses the nearest earlier "
                           f"active encoder's attention), got {args.path!r}")
        path = [int(c) for c in args.path]
    path = pivot.normalize_path(path, target.depth, allow_reuse=True)
    hw = _hardware(args)
    report = sim.simulate(target, path=path, hw=hw)
    summary = dict(model=args.weights or args.preset, path=_path_bits(path), active_attentions=path_effort(path),
                   delay_ms=report.delay_ms, energy_j=report.energy_j, power_w=report.power_w, edp=report.edp,
                   fps_per_w=report.fps_per_w)
    if args.json:
        _print_json(dict(summary, hardware=hw, breakdown=report.breakdown, layers=report.to_dicts()))
        return 0
    print(f"PIVOT-Sim: {summary['model']}, path {summary['path']} ({summary['active_attentions']}/{target.depth} "
          f"attentions) on {_hw_text(hw)}")
    print(format_table([dict(delay_ms=report.delay_ms, energy_j=report.energy_j, power_w=report.power_w,
                             edp_j_ms=report.edp, fps_per_w=report.fps_per_w)]))
    breakdown = report.breakdown
    if isinstance(breakdown, dict) and breakdown:
        print("\ndelay breakdown:")
        print(format_table([dict(module=k, delay_ms=v, share_pct=100 * v / report.delay_ms)
                            for k, v in breakdown.items()]))
    return 0


# ----------------------------------------------------------------------------- pivot cka

def cmd_cka(args) -> int:
    import pivot
    name = _zoo_name(args.model)
    if name is None and args.model == "zoo":
        args.model = "random"
    if name is not None or args.model == "random":
        if name is not None:  # the full-effort model of the zoo, on the shipped sample
            from .. import zoo
            model = zoo.load(name, efforts=[int(zoo.card(name)["config"]["depth"])]).popitem()[1]
        else:
            from .demo import DEMO_CONFIG
            model = pivot.ViT.random(DEMO_CONFIG, seed=args.seed)
        if args.data not in _DATA_WORDS:
            images = _user_data(args, model.config).images[:args.images]
        else:
            images = pivot.datasets.fashion_mnist_sample()[0]
            if args.images > images.shape[0]:
                raise CLIError(f"the shipped sample has {images.shape[0]} images; --images {args.images} is too many")
            images = images[:args.images]
    else:
        model = _file_model(args)
        images = _file_images(args, model, args.images)[0]
    cka = pivot.model_cka(model, images, batch_size=args.batch_size, progress=not args.json, threads=args.threads)
    best = pivot.best_paths(cka)
    rows = [dict(effort=e, path=_path_bits(sp.path), score=float(sp.score)) for e, sp in sorted(best.items())]
    if args.json:
        _print_json(dict(images=int(images.shape[0]), cka=np.asarray(cka).tolist(), best_paths=rows))
        return 0
    depth = model.config.depth
    print(f"CKA(MLP_i, A_j) on {images.shape[0]} images ({depth} encoders; row i = MLP output of encoder i, "
          f"column j = attention output of encoder j, numbered from 0):")
    print(format_table([{"i": i, **{f"A{j}": float(cka[i, j]) for j in range(depth)}} for i in range(depth)]))
    print("\nbest path per effort (Path-Score, Algorithm 1):")
    print(format_table(rows))
    if name is not None:
        from .. import zoo
        rule = zoo.card(name)["args"].get("path_method", "path_score")
        print(f"\n(the zoo's efforts were fine-tuned on the paths of its card's rule, {rule}: pivot.zoo.card({name!r})"
              f"['paths'])")
    return 0


# ----------------------------------------------------------------------------- pivot search

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
    from .. import sim
    if args.target_ms is not None:
        return args.target_ms
    top = efforts[max(efforts)]
    return args.target_fraction * sim.simulate(top, hw=hw).delay_ms


def _search_options(p):
    p.add_argument("--efforts", help="comma-separated efforts (active attentions) to consider, e.g. 2,3,4,5,6 "
                                     "(default: every effort from 1 to the depth)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target-ms", type=_float_option(0, 1e12), help="target delay in ms on the simulated accelerator")
    g.add_argument("--target-fraction", type=_float_option(0, 1e6), default=0.7,
                   help="target as a fraction of the largest effort's delay (default 0.7)")
    p.add_argument("--lec", type=_float_option(0, 1), default=0.8, help="low-effort constraint: fraction of inputs the low "
                                                          "effort must classify (default 0.8)")
    p.add_argument("--tolerance", type=_float_option(0, 1e6, low_open=False), default=0.05, help="accepted relative distance to the target "
                                                                 "delay (default 0.05)")
    p.add_argument("--images", type=_COUNT, default=256, help="calibration images (default 256, as the paper)")
    p.add_argument("--cka-images", type=_COUNT, default=64, help="images for the CKA matrix (default 64)")
    p.add_argument("--batch-size", type=_COUNT, default=64, help="batch size of CKA runs (default 64)")


def _output_folder(text) -> pathlib.Path:
    """--out as a writable folder (made if missing), checked before any work is done."""
    out = pathlib.Path(text)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {text!r} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"--out {text!r}: cannot make the folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CLIError(f"--out {text!r}: the folder is not writable")
    return out


def _output_file(text, option: str) -> str:
    """A file option (--csv) checked before any work is done: its folder exists and is writable."""
    path = pathlib.Path(text)
    if path.is_dir():
        raise CLIError(f"{option} {text!r} is a folder, not a file")
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CLIError(f"{option} {text!r}: cannot write there (missing or read-only folder, or a read-only file)")
    return text


def _no_efforts_hint(args) -> str:
    """Why a weights file's search can miss its target, and how to make efforts that reach it."""
    if args.model == "random" or _zoo_name(args.model) is not None:
        return ""
    return (f". {args.model} is one model: its efforts here are that model with attentions skipped, not "
            f"fine-tuned, so skipping costs accuracy and the search has no trained efforts to choose from. "
            f"PIVOT fine-tunes one model per effort: `python -m pivot.apps.recipes.fashion_mnist --out RUN --ship` "
            f"trains and ships a zoo model (then `pivot search --model NAME`), and on your own data "
            f"`pivot.train.fine_tune(model.with_path(path), images, labels)` per effort gives the efforts "
            f"for `pivot.search(efforts, ...)`; or set --target-fraction/--target-ms within the reachable delays")


def cmd_search(args) -> int:
    import pivot
    if args.csv:
        _output_file(args.csv, "--csv")
    setup = _setup(args, args.efforts, progress=not (args.json or args.quiet))
    images, labels = setup.calibration
    hw = _hardware(args)
    target = _target(args, setup.efforts, hw)
    try:
        result = pivot.search(setup.efforts, images, labels, target, lec=args.lec, hw=hw, tolerance=args.tolerance,
                              progress=not (args.json or args.quiet), threads=args.threads)
    except pivot.SearchTargetError as exc:
        message = str(exc) + _no_efforts_hint(args)
        if args.json:
            _print_json(dict(error=message, trail=[c.to_dict() for c in exc.trail]))
            return 1
        raise CLIError(message) from None
    if args.csv:
        result.to_csv(args.csv)
    if args.json:
        _print_json(dict(result.to_dict(), model=setup.description, labels=setup.label_kind))
        return 0
    print(f"{setup.description}\nsearch over efforts {sorted(setup.efforts)} on {result.n_images} images "
          f"({setup.label_kind}):")
    print(format_table(_trail_rows(result.trail)))
    print("\nchosen:\n" + result.summary())
    return 0


# ----------------------------------------------------------------------------- pivot quantize

def _quantize_model(args):
    """(the float model to quantize, its description): a zoo effort, the demo model or a weights file."""
    import pivot
    from .. import zoo
    name = _zoo_name(args.model)
    if name is None and args.model == "zoo":
        args.model = "random"
    if name is not None:
        card = zoo.card(name)
        available = sorted(int(e) for e in card["paths"])
        effort = args.effort if args.effort is not None else max(available)
        if effort not in available:
            raise CLIError(f"--effort: the zoo model {name} has efforts {available}; not {effort}")
        return zoo.load(name, efforts=[effort])[effort], f"pivot.zoo {name}, effort {effort}"
    if args.effort is not None:
        raise CLIError("--effort picks one of a zoo model's efforts; with --model random or a weights file, "
                       "the model's own path is quantized")
    if args.model == "random":
        from .demo import DEMO_CONFIG, demo_setup
        depth = DEMO_CONFIG.depth
        s = demo_setup(efforts=[depth], seed=args.seed, calibration=256, test=256, threads=args.threads)
        return s.efforts[depth], (f"pivot.apps.demo model (random encoder; its head was fitted on the shipped sample's "
                                  f"last {s.train[0].shape[0]} images, which the sample's accuracy check includes)")
    return _file_model(args), args.model


def cmd_quantize(args) -> int:
    import pivot
    out = _output_file(args.out, "--out")
    model, description = _quantize_model(args)
    cfg = model.config
    sample_shape = (cfg.in_chans, cfg.img_size) == (1, 28)
    if args.data not in _DATA_WORDS:
        data = _user_data(args, cfg)
        images, labels, source = data.images, data.labels, args.data
    elif args.data == "sample" or (args.data == "auto" and sample_shape):
        if not sample_shape:
            raise CLIError(f"--data sample holds 1x28x28 images but the model takes {cfg.in_chans}x{cfg.img_size}x"
                           f"{cfg.img_size}; use --data PATH (your own images) or --data random")
        images, labels = pivot.datasets.fashion_mnist_sample()
        labels, source = (labels if cfg.num_classes >= 10 else None), "the shipped Fashion-MNIST sample"
    else:
        rng = np.random.default_rng(args.seed + 1)
        count = args.images + 256
        images = rng.standard_normal((count, cfg.in_chans, cfg.img_size, cfg.img_size)).astype(np.float32)
        labels, source = None, "Gaussian noise"
    n_calib = min(args.images, images.shape[0])
    calibration = images[:n_calib]
    # Accuracy on the images after the calibration ones; when none are left, on the calibration images.
    held_out = images.shape[0] > n_calib
    check = slice(n_calib, None) if held_out else slice(0, n_calib)
    check_images = images[check]
    check_labels = None if labels is None else labels[check]

    quantized = pivot.quantize(model, calibration)
    quantized.save(out)
    fp32 = np.argmax(model(check_images, threads=args.threads), axis=1)
    int8 = np.argmax(quantized(check_images, threads=args.threads), axis=1)
    summary = dict(model=description, out=str(out), bytes=os.path.getsize(out), calibration_images=int(n_calib),
                   data=str(source), checked_images=int(check_images.shape[0]),
                   checked_on="held-out images" if held_out else "the calibration images",
                   agreement=float(np.mean(fp32 == int8)))
    if check_labels is not None:
        summary.update(fp32_accuracy=float(np.mean(fp32 == check_labels)),
                       int8_accuracy=float(np.mean(int8 == check_labels)))
    if args.json:
        _print_json(summary)
        return 0
    print(f"model: {description}")
    print(f"calibrated int8 scales on {n_calib} images of {source}; wrote {out} ({summary['bytes'] / 1e6:.2f} MB)")
    where = (f"{check_images.shape[0]} held-out images" if held_out
             else f"the {n_calib} calibration images (no others given)")
    if check_labels is not None:
        print(f"accuracy on {where}: fp32 {100 * summary['fp32_accuracy']:.2f}%, int8 "
              f"{100 * summary['int8_accuracy']:.2f}% ({100 * (summary['int8_accuracy'] - summary['fp32_accuracy']):+.2f}"
              f" points); int8 and fp32 agree on {100 * summary['agreement']:.2f}%")
    else:
        print(f"no labels: int8 and fp32 agree on {100 * summary['agreement']:.2f}% of {where} (top-1)")
    return 0


# ----------------------------------------------------------------------------- pivot demo

def cmd_demo(args) -> int:
    import pivot
    from .. import sim
    started = time.perf_counter()
    out = _output_folder(args.out)
    say = (lambda *a: None) if args.json else print

    # Phase 1: the models, the CKA matrix and the best path of each effort.
    setup = _setup(args, args.efforts, test=args.batch)
    efforts, best, cka = setup.efforts, setup.best, setup.cka
    calib, labels = setup.calibration
    cfg = setup.model.config
    top = max(efforts)
    say(f"model: {setup.description}; {cfg.img_size}x{cfg.img_size}x{cfg.in_chans} inputs, {cfg.num_classes} classes")
    cka_text = ("CKA on 256 training images and fine-tuning done at training time (model card)"
                if setup.description.startswith("pivot.zoo") else f"CKA on {min(args.cka_images, calib.shape[0])} images")
    say(f"\nPhase 1: {cka_text}; the path of each effort, chosen by {setup.path_rule}; path_score: its Path-Score "
        f"on the CKA matrix; accuracy on the {calib.shape[0]} calibration images ({setup.label_kind}):")
    say(format_table([dict(effort=e, path=_path_bits(sp.path), path_score=float(sp.score),
                           accuracy_pct=100 * float(np.mean(np.argmax(efforts[e](calib, threads=args.threads), 1) == labels)))
                      for e, sp in sorted(best.items())]))

    # Phase 2: search at the target delay.
    hw = _hardware(args)
    target = _target(args, efforts, hw)
    try:
        result = pivot.search(efforts, calib, labels, target, lec=args.lec, hw=hw, tolerance=args.tolerance,
                              progress=False, threads=args.threads)
    except pivot.SearchTargetError as exc:
        raise CLIError(f"{exc}. Try --target-fraction or --target-ms") from None
    say(f"\nPhase 2: target {target:.4g} ms +/- {100 * args.tolerance:g}% at LEC {args.lec:g}, "
        f"{len(result.trail)} pair(s) tried:")
    say(format_table(_trail_rows(result.trail)))

    # Classify a held-out batch with the chosen pair; time it against the largest effort alone.
    batch, batch_labels = setup.test
    cascade = result.multi_effort(efforts)
    full = efforts[top]
    cascade.predict(batch[:2], threads=args.threads)  # warm up both models
    t0 = time.perf_counter()
    run = cascade.predict(batch, batch_labels, threads=args.threads)
    t_cascade = time.perf_counter() - t0
    t0 = time.perf_counter()
    full_logits = full(batch, threads=args.threads)
    t_full = time.perf_counter() - t0
    full_acc = float(np.mean(np.argmax(full_logits, axis=1) == batch_labels))
    baseline = sim.simulate(full, hw=hw)

    # The whole front, the plots and the CSVs.
    front = pivot.pareto(efforts, calib, labels, hw=hw, progress=False, threads=args.threads)
    files = _demo_plots(out, cka, front, result, efforts, hw)
    result.to_csv(out / "search_trail.csv")
    front.to_csv(out / "pareto.csv")
    files += [out / "search_trail.csv", out / "pareto.csv"]

    # The headline is measured on the held-out batch; the calibration figures (the images the
    # threshold was tuned on, so optimistic) are reported and labelled as such.
    held_report = sim.simulate_pair(efforts[result.low], efforts[result.high], 1.0 - run.f_low, hw=hw)
    summary = dict(
        model=setup.description, labels=setup.label_kind, calibration_images=int(calib.shape[0]),
        best_paths={int(e): _path_bits(sp.path) for e, sp in best.items()}, path_rule=setup.path_rule,
        chosen=dict(low=result.low, high=result.high, low_path=_path_bits(result.low_path),
                    high_path=_path_bits(result.high_path), threshold=result.threshold),
        target_delay_ms=target, lec=args.lec,
        held_out=dict(images=int(batch.shape[0]), accuracy=run.accuracy, f_low=run.f_low,
                      delay_ms=held_report.delay_ms, energy_j=held_report.energy_j, edp=held_report.edp,
                      fps_per_w=held_report.fps_per_w, full_accuracy=full_acc),
        pivot=dict(accuracy=result.accuracy, f_low=result.f_low, delay_ms=result.delay_ms,
                   energy_j=result.energy_j, edp=result.edp, fps_per_w=result.fps_per_w),
        baseline=dict(effort=top, accuracy=front_accuracy(front, top), delay_ms=baseline.delay_ms,
                      energy_j=baseline.energy_j, edp=baseline.edp, fps_per_w=baseline.fps_per_w),
        batch=dict(images=int(batch.shape[0]), f_low=run.f_low, accuracy=run.accuracy, full_accuracy=full_acc,
                   cascade_s=t_cascade, full_s=t_full),
        front_points=len(front.points), front_size=len(front.front),
        files=[str(f) for f in files], seconds=time.perf_counter() - started)
    if args.json:
        _print_json(summary)
        return 0
    n_held = batch.shape[0]
    print(f"\nclassified a held-out batch of {n_held} images: {100 * run.f_low:.1f}% decided by effort "
          f"{result.low}, {run.n_high} re-run on effort {result.high}; accuracy {100 * run.accuracy:.1f}% "
          f"(effort {top} alone: {100 * full_acc:.1f}%); CPU time {1e3 * t_cascade:.1f} ms "
          f"(effort {top} alone: {1e3 * t_full:.1f} ms)")
    print(f"\nsimulated accelerator ({_hw_text(hw)}):")
    print(format_table([
        dict(design=f"effort {top} alone", images=f"held-out ({n_held})", accuracy_pct=100 * full_acc,
             delay_ms=baseline.delay_ms, energy_j=baseline.energy_j, edp_j_ms=baseline.edp, fps_per_w=baseline.fps_per_w),
        dict(design=f"PIVOT {result.low}/{result.high}", images=f"held-out ({n_held})", accuracy_pct=100 * run.accuracy,
             delay_ms=held_report.delay_ms, energy_j=held_report.energy_j, edp_j_ms=held_report.edp,
             fps_per_w=held_report.fps_per_w),
        dict(design=f"effort {top} alone", images=f"calibration ({calib.shape[0]}; tuned on)",
             accuracy_pct=100 * summary["baseline"]["accuracy"], delay_ms=baseline.delay_ms,
             energy_j=baseline.energy_j, edp_j_ms=baseline.edp, fps_per_w=baseline.fps_per_w),
        dict(design=f"PIVOT {result.low}/{result.high}", images=f"calibration ({calib.shape[0]}; tuned on)",
             accuracy_pct=100 * result.accuracy, delay_ms=result.delay_ms, energy_j=result.energy_j,
             edp_j_ms=result.edp, fps_per_w=result.fps_per_w),
    ]))
    print(f"\nPIVOT {result.low}/{result.high} on the {n_held} held-out images: EDP {baseline.edp / held_report.edp:.2f}x "
          f"lower, delay {baseline.delay_ms / held_report.delay_ms:.2f}x lower than effort {top} alone, accuracy "
          f"{100 * (run.accuracy - full_acc):+.1f} points (on the calibration images the threshold was tuned on: "
          f"EDP {baseline.edp / result.edp:.2f}x lower, accuracy "
          f"{100 * (result.accuracy - summary['baseline']['accuracy']):+.1f} points)")
    print(f"wrote {len(files)} files to {out}/ in {summary['seconds']:.1f} s: "
          + ", ".join(f.name for f in files))
    return 0


def front_accuracy(front, effort) -> float:
    return next(p.accuracy for p in front.points if p.high is None and p.low == effort)


def _demo_plots(out, cka, front, result, efforts, hw) -> list:
    import pivot.plot as plot
    from .. import sim
    files = []

    def save(fig, name):
        fig.savefig(out / name, dpi=100)
        files.append(out / name)

    if hasattr(plot, "cka_heatmap"):
        save(plot.cka_heatmap(cka), "cka_heatmap.png")
    save(plot.edp_vs_lec(front), "edp_vs_lec.png")
    reports = {}
    pair = (result.low, result.high)
    for lec in (0.6, 0.7, 0.8, 0.9, 1.0):
        point = front.at_lec(lec)[pair]
        reports[f"LEC {100 * lec:.0f}%"] = sim.simulate_pair(efforts[pair[0]], efforts[pair[1]], 1.0 - point.f_low, hw=hw)
    save(plot.edp_split(reports, xlabel=f"efforts {result.low}/{result.high} at each LEC"), "edp_split.png")
    save(plot.accuracy_edp_front(front, highlight=result), "accuracy_edp_front.png")
    if hasattr(plot, "delay_breakdown"):
        save(plot.delay_breakdown([sim.simulate(efforts[max(efforts)], hw=hw), result.report]), "delay_breakdown.png")
    return files


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = _Parser(prog="pivot", description="PIVOT: input-aware attention skipping for ViTs "
                     "(C engine, CKA path selection, effort search, FPGA simulator).")
    parser.add_argument("--version", action="version", version=f"pivot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{sim,cka,search,quantize,demo}")

    p = sub.add_parser("sim", help="simulate a ViT (preset or weights file) on the systolic-array FPGA model",
                       description="Simulate one ViT with an attention path on PIVOT-Sim (ZCU102 by default).")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", default="deit_small_patch16_224",
                   help="a timm model name (default deit_small_patch16_224) or a zoo model's name (pivot.zoo.list())")
    g.add_argument("--weights", help="a weights file (fp32, or an int8 file of pivot.quantize); its shape and its "
                                     "stored path are simulated")
    p.add_argument("--num-heads", type=_int_option(1, 2 ** 31 - 1), default=None,
                   help="heads of the weights file's model, if not inferable")
    p.add_argument("--path", help="attention path, one 0/1/2 per encoder, e.g. 111111000000 (2: reuse the nearest "
                                  "earlier active encoder's attention; default: the weights file's own path, or all 1)")
    _add_hw_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("cka", help="CKA matrix of a model and the best path per effort",
                       description="CKA(MLP_i, A_j) of a model on images, and the Path-Score best path per effort.")
    _add_model_options(p)
    p.add_argument("--images", type=_COUNT, default=64, help="images for the CKA matrix (default 64)")
    p.add_argument("--batch-size", type=_COUNT, default=64, help="batch size (default 64)")
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

    p = sub.add_parser("quantize", help="int8 post-training quantization of a model on calibration images",
                       description="Quantize a model to int8 (pivot.quantize) with calibration images, write the int8 "
                                   "file, and print the accuracy change on labelled images (or the agreement with "
                                   "the float model when there are no labels).")
    _add_model_options(p)
    p.add_argument("--effort", type=_int_option(0, 2 ** 31 - 1), default=None,
                   help="the zoo model's effort to quantize (default: the largest)")
    p.add_argument("--images", type=_COUNT, default=256,
                   help="calibration images: N of --data (default 256, drawn with --seed); the rest check the accuracy")
    p.add_argument("--out", required=True, help="the int8 model file to write (.safetensors)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("demo", help="the whole pipeline on a small model; writes plots",
                       description="Build a model offline, CKA, best paths, search at a target delay, "
                                   "classify a batch, simulator report; plots (PNG) and CSVs go to --out.")
    _add_model_options(p)
    _search_options(p)
    _add_hw_options(p)
    p.add_argument("--batch", type=_COUNT, default=256, help="held-out images classified at the end (default 256)")
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
    try:
        if hasattr(args, "data"):
            _check_data_option(args)
        return args.func(args)
    except CLIError as exc:
        print(f"pivot {args.command}: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `pivot sim --json | head`: the reader left, nothing to report
        # Point stdout at /dev/null so that the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValueError, OverflowError, OSError, LookupError) as exc:  # bad files and values (ZooError: LookupError)
        message = " ".join(str(exc).split())  # one line, whatever the exception held
        print(f"pivot {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
