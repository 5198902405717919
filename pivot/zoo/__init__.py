"""Models trained by pivot and shipped inside the package (no download, ever).

Each zoo model is a folder ``pivot/zoo/<name>/`` with one float16 safetensors file per effort
(``effort03.safetensors`` ... ``effort12.safetensors``; each holds the config and its path as
metadata) and a model card (``card.md`` for people, ``card.json`` for programs: data, command,
seed, time taken, accuracy per effort, the CKA matrix and the chosen paths).

    import pivot
    pivot.zoo.list()                       # ['fmnist_vit12_p4']
    efforts = pivot.zoo.load("fmnist_vit12_p4")
    efforts[12]                            # the full model (every attention active)
    efforts[6].path                        # the path its card's rule chose (card["args"]["path_method"])
    pivot.search(efforts, images, target_delay_ms=...)

``ship(name, models, card, test)`` (called by ``python -m pivot.apps.recipes.fashion_mnist --ship``)
writes trained efforts and their card into the package.
"""
from __future__ import annotations

import json
import pathlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["list", "load", "card", "cka", "cka_from_json", "ship", "ZooError", "ZOO_DIR", "ZOO_MODEL"]

ZOO_MODEL = "fmnist_vit12_p4"
"""The Fashion-MNIST model the demo, the notebooks and the README use."""

ZOO_DIR = pathlib.Path(__file__).resolve().parent
_EFFORT_FILE = re.compile(r"^effort(\d{2})\.safetensors$")
_list = list  # the builtin, shadowed by this module's list()


class ZooError(LookupError):
    """An unknown zoo model, or a zoo folder that is incomplete or inconsistent."""


def list() -> "list[str]":  # noqa: A001  (pivot.zoo.list(), as the docs name it)
    """Names of the zoo models shipped with this install, sorted."""
    return sorted(p.name for p in ZOO_DIR.iterdir()
                  if p.is_dir() and (p / "card.json").is_file() and any(p.glob("effort*.safetensors")))


def _folder(name) -> pathlib.Path:
    if not isinstance(name, str):
        raise TypeError(f"zoo model name must be a str, got {type(name).__name__}")
    names = list()
    if name not in names:
        raise ZooError(f"no zoo model named {name!r}; shipped: {names or 'none'}")
    return ZOO_DIR / name


def card(name: str) -> dict:
    """The model card of ``name`` as a dict (see ``card.md`` in its folder for the prose)."""
    return json.loads((_folder(name) / "card.json").read_text(encoding="utf-8"))


def cka_from_json(rows) -> "np.ndarray":
    """A CKA matrix stored as JSON rows (null for NaN) as a float64 array."""
    import numpy as np
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)


def cka(name: str) -> "np.ndarray":
    """The CKA matrix (D, D) of ``name``'s card: CKA(MLP_i, A_j) of the full model on 256 training images."""
    return cka_from_json(card(name)["cka"])


def _wanted_efforts(efforts) -> list:
    """``efforts`` as sorted distinct ints; anything but an iterable of integers (3.7, "6", True) is refused."""
    from .. import _validate
    if isinstance(efforts, (str, bytes)) or not hasattr(efforts, "__iter__"):
        raise TypeError(f"efforts must be an iterable of integers (numbers of active attentions), got {efforts!r}")
    values = [*efforts]  # (this module defines its own list)
    bad = [e for e in values if not _validate.is_int(e)]
    if bad:
        raise TypeError(f"efforts must be integers (numbers of active attentions), got {bad[0]!r} in {values!r}")
    return sorted({int(e) for e in values})


def load(name: str, efforts=None) -> dict:
    """{effort: pivot.ViT} for zoo model ``name``; effort = number of active attentions, the full
    model under its depth. Each model's ``path`` is the path it was fine-tuned on. ``efforts``
    (optional iterable of ints) loads only those."""
    from ..config import path_effort
    from ..model import ViT

    folder = _folder(name)
    files = {}
    for f in folder.iterdir():
        m = _EFFORT_FILE.match(f.name)
        if m:
            files[int(m.group(1))] = f
    wanted = sorted(files) if efforts is None else _wanted_efforts(efforts)
    missing = [e for e in wanted if e not in files]
    if missing:
        raise ZooError(f"zoo model {name!r} has no effort(s) {missing}; it has {sorted(files)}")
    # The input normalization the models were trained with (the weight files predate its field).
    config = card(name).get("config", {})
    normalization = {k: tuple(config[k]) for k in ("input_mean", "input_std") if k in config}
    models = {}
    for e in wanted:
        model = ViT.from_timm(files[e], **normalization)
        active = path_effort(model.path)
        if active != e:
            raise ZooError(f"{files[e]}: file name says effort {e} but its path has {active} active encoders")
        models[e] = model
    return models


def ship(name: str, models: dict, card: dict, test, log_text: str | None = None) -> pathlib.Path:
    """Write trained efforts into the package as zoo model ``name`` (``pivot/zoo/<name>/``); returns the folder.

    ``models`` is {effort: pivot.ViT} (each with the path it was fine-tuned on), written as float16
    safetensors with the config and path as metadata, replacing the folder's previous efforts.
    ``card`` holds the card's fields (data, command, args, config, paths, ...); ``test`` is
    (images, labels), on which each shipped F16 file's accuracy is measured with the C engine into
    the card's ``test_accuracy``. ``log_text`` (the training run's log.jsonl) is kept as
    ``training_log.jsonl``, the card's numbers stage by stage.
    """
    import dataclasses

    import numpy as np

    from ..io import save_safetensors
    from ..model import ViT

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"zoo model name must be letters, digits and underscores, got {name!r}")
    test_x, test_y = test
    folder = ZOO_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("effort*.safetensors"):
        old.unlink()
    accuracy = {}
    for e, model in sorted(models.items()):
        weights16 = {k: v.astype(np.float16) for k, v in model.state_dict().items()}
        out = folder / f"effort{e:02d}.safetensors"
        save_safetensors(out, weights16, {"pivot.config": json.dumps(dataclasses.asdict(model.config)),
                                          "pivot.path": "".join(str(int(v)) for v in model.path)})
        shipped = ViT.from_timm(out)
        accuracy[e] = float(np.mean(shipped(test_x).argmax(1) == test_y))
    card = {"name": name, **card, "test_accuracy": {str(e): accuracy[e] for e in sorted(accuracy)}}
    if log_text is not None:
        (folder / "training_log.jsonl").write_text(log_text)
    (folder / "card.json").write_text(json.dumps(card, indent=1))
    (folder / "card.md").write_text(_card_markdown(card))
    return folder


def _score_name(args: dict) -> str:
    method = args.get("path_method", "path_score")
    return "Path-Score" if method == "path_score" else f"{method} score"


def _card_markdown(card: dict) -> str:
    cfg = card["config"]
    lines = [f"# {card['name']}", "",
             f"A DeiT-style ViT trained from scratch by pivot: {cfg['depth']} encoders, embed {cfg['embed_dim']}, "
             f"{cfg['num_heads']} heads, MLP ratio {cfg['mlp_ratio']}, patch {cfg['patch_size']} on "
             f"{cfg['img_size']}x{cfg['img_size']}x{cfg['in_chans']} images "
             f"({(cfg['img_size'] // cfg['patch_size']) ** 2 + 1} tokens), {cfg['num_classes']} classes. "
             "Weights stored as float16 safetensors, one file per effort.", "",
             f"- Data: {card['data']}",
             f"- Command: `{card['command']}`",
             f"- Seed: {card['args']['seed']}; training time {card['training_seconds'] / 60:.1f} min on {card['machine']}",
             "- Recipe: base model AdamW (lr {base_lr}, wd 0.05, batch {batch_size}, {base_epochs} epochs, warm-up 1 epoch, "
             "cosine), label smoothing 0.1, {augmentation}; each effort fine-tuned "
             "from the base weights (steps in the table) on {path_rule} with the PIVOT loss "
             "(CE + feature distillation from the base + 0.1 x entropy of correct inputs), peak lr in the table; "
             "forward passes in {precision}.".format(
                 **{**card["args"], "precision": "bf16 autocast" if card["args"].get("precision") == "bf16" else "fp32",
                    "path_rule": ("its best Path-Score path" if card["args"].get("path_method", "path_score") == "path_score"
                                  else f"the path chosen by pivot.select_paths(method={card['args']['path_method']!r})"),
                    "augmentation": (f"random shifts of {card['args'].get('shift', 2)} pixels and horizontal flips"
                                     if card["args"].get("shift", 2) else "random horizontal flips")}),
             "", f"| effort | path | {_score_name(card['args'])} | fine-tuning steps | peak lr | test accuracy (C engine, F16 weights) |",
             "|---|---|---|---|---|---|"]
    for e, acc in card["test_accuracy"].items():
        score = card["path_scores"].get(e)
        steps = card.get("fine_tuning_steps", {}).get(e, "(base)")
        lr = card.get("fine_tuning_lr", {}).get(e, card["args"]["base_lr"])
        lines.append(f"| {e} | `{card['paths'][e]}` | {'' if score is None else f'{score:.3f}'} | {steps} | {lr:g} "
                     f"| {100 * acc:.2f}% |")
    rp = card["random_paths"]
    budget = card["args"].get("random_path_steps", card["args"].get("effort_steps"))
    rule = rp.get("chosen_by", "path_score")
    lines += ["", f"## The chosen path against random paths (effort {rp['effort']}, {budget} fine-tuning steps each)", "",
              "| path | chosen by | Path-Score | test accuracy |", "|---|---|---|---|"]
    if rp["best"]["path"]:
        lines.append(f"| `{rp['best']['path']}` | {rule} | {rp['best']['score']:.3f} "
                     f"| {100 * rp['best']['test_accuracy']:.2f}% |")
    for r in rp["random"]:
        lines.append(f"| `{r['path']}` | random | {r['score']:.3f} | {100 * r['test_accuracy']:.2f}% |")
    lines += ["", "The CKA matrix (CKA(MLP_i, A_j), i < j) is in card.json under `cka`.", ""]
    return "\n".join(lines)
