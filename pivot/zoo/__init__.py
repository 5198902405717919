"""Models trained by pivot and shipped inside the package (no download, ever).

Each zoo model is a folder ``pivot/zoo/<name>/`` with one float16 safetensors file per effort
(``effort03.safetensors`` ... ``effort12.safetensors``; each holds the config and its path as
metadata) and a model card (``card.md`` for people, ``card.json`` for programs: data, command,
seed, time taken, accuracy per effort, the CKA matrix and the chosen paths).

    import pivot
    pivot.zoo.list()                       # ['fmnist_vit12_p4']
    efforts = pivot.zoo.load("fmnist_vit12_p4")
    efforts[12]                            # the full model (every attention active)
    efforts[6].path                        # its best path by Path-Score
    pivot.search(efforts, images, target_delay_ms=...)

``ship(run_dir, name)`` (used by ``python -m pivot.recipes.fashion_mnist --ship``) writes a
finished training run into the package.
"""
from __future__ import annotations

import json
import pathlib
import re

__all__ = ["list", "load", "card", "cka", "cka_from_json", "ZooError", "ZOO_DIR", "ZOO_MODEL"]

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
    wanted = sorted(files) if efforts is None else sorted({int(e) for e in efforts})
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


def ship(run_dir, name: str, card_extra: dict | None = None) -> pathlib.Path:
    """Write the efforts of a finished ``pivot.recipes.fashion_mnist`` run (``run_dir``) as F16
    safetensors plus ``card.json``/``card.md`` into ``pivot/zoo/<name>/``; returns the folder."""
    from ..recipes import fashion_mnist as recipe

    return recipe.ship(pathlib.Path(run_dir), ZOO_DIR / name, card_extra or {})
