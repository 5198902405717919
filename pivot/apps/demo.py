"""Offline stand-ins for trained efforts, used by the CLI's ``--model random`` (``pivot demo``
without the zoo) and by ``python -m pivot.apps.modes_table --head-only``.

PIVOT fine-tunes one model per effort (section 3.2). Without trained weights on disk, pivot builds
small efforts that still behave like classifiers: a random-weight ViT encoder shared by all
efforts, and per effort a linear head fitted by softmax regression on the features that effort's
path produces (a linear probe: seconds on two cores, nothing downloaded). Accuracy then grows
with the number of active attentions and the entropy tells easy inputs from hard ones, as the
search needs. Data: the Fashion-MNIST sample shipped with pivot (``pivot.datasets``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["DEMO_CONFIG", "fit_head", "DemoSetup", "demo_setup"]


def _demo_config():
    from .. import datasets
    from ..config import ViTConfig
    return ViTConfig(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=64, depth=6, num_heads=4,
                     input_mean=(datasets.MEAN,), input_std=(datasets.STD,))


DEMO_CONFIG = _demo_config()
"""A small ViT for 28 x 28 grey images (16 patches of 7 x 7), 6 encoders, 10 classes."""


def _features(model, images, path, threads):
    """Final-norm class-token features (N, embed_dim): the model with an identity head."""
    from ..model import ViT
    cfg = model.config
    if cfg.distilled:
        raise ValueError("fit_head supports models without a distillation token")
    weights = model.state_dict()
    weights["head.weight"] = np.eye(cfg.embed_dim, dtype=np.float32)
    weights["head.bias"] = np.zeros(cfg.embed_dim, dtype=np.float32)
    probe = ViT(cfg.replace(num_classes=cfg.embed_dim), weights, path=path)
    return probe(images, threads=threads).astype(np.float64)


def fit_head(model, images, labels, path=None, steps=400, learning_rate=0.5, l2=1e-3, threads=None):
    """A copy of ``model`` running ``path`` (None: the model's) whose classifier head is refitted
    by softmax regression (full-batch gradient descent, L2 penalty ``l2``) on the features that
    path gives for ``images`` and integer ``labels`` in [0, num_classes). Encoder weights are
    unchanged. Returns a ``pivot.ViT``."""
    from ..model import ViT
    cfg = model.config
    path = model.path if path is None else path
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != len(images):
        raise ValueError(f"need one label per image: {len(images)} images, labels of shape {labels.shape}")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= cfg.num_classes:
        raise ValueError(f"labels must be integers in [0, {cfg.num_classes})")
    feats = _features(model, images, path, threads)
    mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-6
    x = (feats - mean) / std
    onehot = np.eye(cfg.num_classes)[labels]
    w = np.zeros((cfg.embed_dim, cfg.num_classes))
    b = np.zeros(cfg.num_classes)
    for _ in range(steps):
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / x.shape[0]
        w -= learning_rate * (x.T @ grad + l2 * w)
        b -= learning_rate * grad.sum(axis=0)
    weights = model.state_dict()
    # Fold the standardization into the head: logits = ((f - mean) / std) @ w + b.
    weights["head.weight"] = (w / std[:, None]).T.astype(np.float32)
    weights["head.bias"] = (b - (mean / std) @ w).astype(np.float32)
    return ViT(cfg, weights, path=path)


@dataclasses.dataclass(frozen=True)
class DemoSetup:
    """What ``demo_setup`` builds: the shared random encoder (``model``, all attentions, random
    head), the CKA matrix and best paths (Phase 1), ``efforts`` {effort: ViT with its path and
    fitted head}, and three disjoint splits of the shipped Fashion-MNIST sample: ``train`` (fits
    the heads), ``calibration`` (for the search) and ``test`` (to classify), each (images, labels)."""
    model: object
    cka: np.ndarray
    best: dict
    efforts: dict
    train: tuple
    calibration: tuple
    test: tuple


def demo_setup(efforts=None, seed=0, calibration=256, test=256, cka_images=64, threads=None) -> DemoSetup:
    """Phase 1 on the demo model: random encoder, CKA on ``cka_images`` calibration images, best
    path per effort (default 1..depth), one fitted head per effort (on the sample images left
    after the calibration and test splits)."""
    from .. import best_paths, datasets, model_cka
    from ..model import ViT
    images, labels = datasets.fashion_mnist_sample()
    if calibration + test >= images.shape[0] - 100:
        raise ValueError(f"the shipped sample has {images.shape[0]} images: calibration + test must leave at least "
                         f"100 to fit the heads, got {calibration} + {test}")
    calib = (images[:calibration], labels[:calibration])
    held = (images[calibration:calibration + test], labels[calibration:calibration + test])
    train = (images[calibration + test:], labels[calibration + test:])
    base = ViT.random(DEMO_CONFIG, seed=seed)
    cka = model_cka(base, calib[0][:cka_images], progress=False, threads=threads)
    wanted = list(range(1, DEMO_CONFIG.depth + 1)) if efforts is None else efforts
    best = best_paths(cka, efforts=wanted)
    fitted = {int(e): fit_head(base, *train, path=sp.path, threads=threads) for e, sp in best.items()}
    return DemoSetup(model=base, cka=cka, best=best, efforts=fitted, train=train, calibration=calib, test=held)
