"""Training ViT efforts with the PIVOT recipe in PyTorch (CPU or GPU).

The loss of one effort (paper, Fig. 2b)::

    L = L_CE + distill_weight * L_Distill + entropy_weight * L_En

- ``L_CE``: cross-entropy with label smoothing (default 0.1).
- ``L_Distill``: mean squared error between the student's and the full-effort teacher's
  final-layer features (the class token after the final LayerNorm), as the paper distils
  "the final layer features of the teacher and student".
- ``L_En``: mean normalized entropy (``pivot.entropy``: entropy / log K) of the softmax
  predictions of the *correctly classified* inputs of the batch (0 when none is correct);
  lowering it makes the low effort confident where it is right, so more inputs stop there.

Defaults (``PivotLoss()``): label_smoothing 0.1, distill_weight 1.0, entropy_weight 0.1.

``fit(module, images, labels, ...)`` runs AdamW with a linear warm-up and a cosine decay
(optional EMA of the weights), with random-shift and flip augmentation, a tqdm progress bar and
a fixed seed. Importing this module imports torch (``pip install .[torch]``).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PivotLoss", "LossTerms", "fit", "fine_tune", "evaluate", "init_weights", "features", "augment",
           "training_device"]


@dataclass
class LossTerms:
    """The weighted total and each term, as Python floats, for logging."""
    total: float
    ce: float
    distill: float
    entropy: float


class PivotLoss(nn.Module):
    """Cross-entropy + feature distillation + entropy of the correctly classified inputs."""

    def __init__(self, label_smoothing: float = 0.1, distill_weight: float = 1.0, entropy_weight: float = 0.1):
        super().__init__()
        for name, value in (("label_smoothing", label_smoothing), ("distill_weight", distill_weight),
                            ("entropy_weight", entropy_weight)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if label_smoothing >= 1:
            raise ValueError(f"label_smoothing must be < 1, got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.distill_weight = float(distill_weight)
        self.entropy_weight = float(entropy_weight)

    @staticmethod
    def entropy_term(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean normalized entropy over the inputs whose argmax equals their label (0 if none)."""
        logp = F.log_softmax(logits.float(), dim=-1)
        ent = -(logp.exp() * logp).sum(-1) / math.log(logits.shape[-1])
        correct = logits.argmax(-1) == labels
        if not bool(correct.any()):
            return ent.sum() * 0.0
        return ent[correct].mean()

    def forward(self, logits, labels, student_features=None, teacher_features=None):
        """Returns (total loss tensor, LossTerms). Features are needed when distill_weight > 0."""
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        if self.distill_weight > 0:
            if student_features is None or teacher_features is None:
                raise ValueError("distill_weight > 0 needs student_features and teacher_features")
            distill = F.mse_loss(student_features, teacher_features.detach())
        else:
            distill = ce * 0.0
        ent = self.entropy_term(logits, labels) if self.entropy_weight > 0 else ce * 0.0
        total = ce + self.distill_weight * distill + self.entropy_weight * ent
        return total, LossTerms(*(float(t.detach()) for t in (total, ce, distill, ent)))


def init_weights(module, seed: int = 0) -> None:
    """timm's ViT initialization: trunc-normal(0.02) linear weights and position embedding, zero
    biases, class token normal(1e-6), LayerNorm (1, 0); convolutions keep PyTorch's default
    uniform(+-1/sqrt(fan_in)) as in timm (0.02 on a 16-pixel patch made the tokens so small that
    the first epoch reached 60% instead of 67%). Deterministic for a seed."""
    gen = torch.Generator().manual_seed(seed)

    def trunc(t, std):
        with torch.no_grad():
            t.copy_(torch.fmod(torch.randn(t.shape, generator=gen), 2.0) * std)

    for name, p in module.named_parameters():
        if name.endswith("cls_token") or name.endswith("dist_token"):
            trunc(p, 1e-6)
        elif name.endswith("pos_embed"):
            trunc(p, 0.02)
        elif p.ndim == 4:
            bound = 1.0 / math.sqrt(p[0].numel())
            with torch.no_grad():
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
        elif p.ndim >= 2:
            trunc(p, 0.02)
        elif name.endswith("weight"):  # LayerNorm scale
            nn.init.ones_(p)
        else:
            nn.init.zeros_(p)


def features(module, images, path=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, final-norm class-token features) of a ``pivot.torch.VisionTransformer``."""
    x = module.forward_features(images, path)
    return module.forward_head(x), x[:, 0]


def augment(images: torch.Tensor, gen: torch.Generator, shift: int = 2, flip: bool = True) -> torch.Tensor:
    """Random translation by up to ``shift`` pixels (zero padding in normalized units of the
    background) and random horizontal flip, per image."""
    B, C, H, W = images.shape
    if shift > 0:
        background = float(images.amin())
        padded = F.pad(images, (shift, shift, shift, shift), value=background)
        dy = torch.randint(0, 2 * shift + 1, (B,), generator=gen)
        dx = torch.randint(0, 2 * shift + 1, (B,), generator=gen)
        rows = (dy[:, None] + torch.arange(H)[None, :])             # (B, H)
        cols = (dx[:, None] + torch.arange(W)[None, :])             # (B, W)
        idx_b = torch.arange(B)[:, None, None]
        images = padded[:, 0][idx_b, rows[:, :, None], cols[:, None, :]][:, None] if C == 1 else \
            torch.stack([padded[b, :, rows[b]][:, :, cols[b]] for b in range(B)])
    if flip:
        mask = torch.rand(B, generator=gen) < 0.5
        images = torch.where(mask[:, None, None, None], images.flip(-1), images)
    return images


def training_device(device=None) -> torch.device:
    """The torch device ``fit`` trains on: None or "cpu" the CPU, "cuda" / "cuda:N" a GPU (a clear
    ValueError when torch sees none)."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: this torch ({torch.__version__}) sees no CUDA GPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    return dev


@torch.no_grad()
def evaluate(module, images: np.ndarray, labels: np.ndarray, path=None, batch_size: int = 500) -> float:
    """Top-1 accuracy (fraction) of a module on numpy images/labels, on the module's device."""
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    correct = 0
    for s in range(0, len(images), batch_size):
        logits = module(torch.from_numpy(images[s:s + batch_size]).to(device), path=path)
        correct += int((logits.argmax(-1).cpu().numpy() == labels[s:s + batch_size]).sum())
    module.train(was_training)
    return correct / len(images)


def fit(module, images: np.ndarray, labels: np.ndarray, *, path=None, teacher=None, loss: PivotLoss | None = None,
        steps: int, batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.05, warmup_steps: int = 0,
        min_lr: float = 1e-5, ema_decay: float | None = None, seed: int = 0, augmentation: bool = True,
        shift: int = 2, precision: str = "fp32", progress: bool = True, desc: str = "train", device=None) -> dict:
    """Trains ``module`` (a ``pivot.torch.VisionTransformer``) in place on ``path``.

    ``teacher``: a module run on its own path (no gradient) for the distillation term; without
    one, ``loss`` must have distill_weight 0. AdamW, linear warm-up over ``warmup_steps`` then
    cosine from ``lr`` to ``min_lr``. ``augmentation``: random flips and shifts of up to ``shift``
    pixels (see ``augment``). With ``ema_decay`` the module ends with the EMA weights.
    ``precision="bf16"`` runs the forward passes under bfloat16 autocast (weights, optimizer and
    loss stay float32): 1.35-1.5x faster on CPUs with AMX or AVX512-BF16, slow elsewhere.
    ``device``: where to train ("cuda" for a GPU; None: the CPU). The module (and teacher) end on
    it; batches and augmentation are drawn on the CPU from the same generator, so the data a step
    sees does not depend on the device.
    Returns a log dict (steps, seconds, last loss terms).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if len(images) != len(labels) or len(images) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} images with as many labels, "
                         f"got {len(images)} images and {len(labels)} labels")
    loss = loss or PivotLoss(distill_weight=0.0 if teacher is None else 1.0)
    if loss.distill_weight > 0 and teacher is None:
        raise ValueError("the loss has distill_weight > 0 but no teacher was given")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    from tqdm.auto import tqdm
    device = training_device(device)
    module.to(device)
    if teacher is not None:
        teacher.to(device)

    def forward_precision():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    decay, no_decay = [], []  # weight decay on matrices only, not on embeddings, biases or norms
    for name, p in module.named_parameters():
        (decay if p.ndim >= 2 and not name.endswith(("pos_embed", "cls_token")) else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)

    def lr_at(step):
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, steps - warmup_steps)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t))

    ema = copy.deepcopy(module).eval() if ema_decay else None
    if teacher is not None:
        teacher.eval()
    x_all = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    y_all = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    n = len(x_all)
    order = torch.randperm(n, generator=gen)
    cursor = 0
    module.train()
    started = time.time()
    terms = None
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=5)
    for step in bar:
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        x, y = x_all[idx], y_all[idx]
        if augmentation:
            x = augment(x, gen, shift=shift)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        with forward_precision():
            logits, feats = features(module, x, path)
            teacher_feats = None
            if teacher is not None and loss.distill_weight > 0:
                with torch.no_grad():
                    _, teacher_feats = features(teacher, x)
        if teacher_feats is not None:
            teacher_feats = teacher_feats.float()
        total, terms = loss(logits.float(), y, feats.float(), teacher_feats)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if ema is not None:
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), module.parameters()):
                    pe.mul_(ema_decay).add_(pm.detach(), alpha=1 - ema_decay)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{terms.total:.3f}", ce=f"{terms.ce:.3f}", en=f"{terms.entropy:.3f}")
    if ema is not None:
        module.load_state_dict(ema.state_dict())
    module.eval()
    return {"steps": steps, "seconds": time.time() - started, "last": terms.__dict__ if terms else None}


def fine_tune(model, images: np.ndarray, labels: np.ndarray, steps: int = 400, teacher=None, lr: float = 3e-4,
              batch_size: int = 128, seed: int = 0, progress: bool = True, **fit_kwargs):
    """Fine-tune a ``pivot.ViT`` on its own path (0 skip / 1 active / 2 reuse, softmax or linear
    attention) with the PIVOT loss and return the tuned ``pivot.ViT`` (same config and path).

    ``teacher`` (a ``pivot.ViT``) defaults to the same weights with softmax attention and every
    encoder active: the full model every variant starts from. The recipe of the zoo's efforts.
    ``fit_kwargs`` go to ``fit`` (``device="cuda"`` trains on a GPU; the result is a CPU ``pivot.ViT``).
    """
    from .model import ViT
    from .torch import from_vit, to_vit

    if teacher is None:
        cfg = model.config.replace(attention="softmax")
        teacher = ViT(cfg, model.state_dict(), path=np.ones(cfg.depth, np.uint8))
    student = from_vit(model)
    fit(student, images, labels, path=student.path, teacher=from_vit(teacher), loss=PivotLoss(), steps=steps,
        batch_size=batch_size, lr=lr, warmup_steps=max(1, steps // 20), seed=seed, progress=progress,
        desc=f"fine-tune {''.join(map(str, model.path))}", **fit_kwargs)
    return to_vit(student)
