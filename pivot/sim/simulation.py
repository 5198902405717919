"""Simulate: one inference of a model (``simulate``), a low/high effort pair (``simulate_pair``)
and a list of GEMMs (``simulate_gemms``) on a ``HardwareConfig``."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import _core, _validate
from ..config import ViTConfig, normalize_path
from .hardware import ZCU102, HardwareConfig, check_hardware
from .report import ENERGY_COMPONENTS, MODULES, PairPart, PairReport, SimReport


def _resolve(model_or_config, path, what="model_or_config"):
    """(ViTConfig, path) of a ViTConfig or of a model object (``.config``, optional ``.path``)."""
    if isinstance(model_or_config, ViTConfig):
        config = model_or_config
    elif hasattr(model_or_config, "config"):
        config = model_or_config.config
        if path is None:
            path = getattr(model_or_config, "path", None)
    else:
        raise TypeError(f"{what} must be a pivot.ViTConfig or a model with a .config, "
                        f"got {type(model_or_config).__name__}")
    if not isinstance(config, ViTConfig):
        raise TypeError(f"{what}.config must be a pivot.ViTConfig, got {type(config).__name__}")
    return config, normalize_path(path, config.depth, allow_reuse=True)  # 2 = attention reuse


def simulate(model_or_config, path=None, hw: HardwareConfig = ZCU102, batch: int = 1,
             entropy: bool = False) -> SimReport:
    """Simulate one inference of ``batch`` images on ``hw``.

    ``model_or_config``: a ``pivot.ViTConfig`` or a model with ``.config`` (and ``.path``, used
    when ``path`` is None). ``path``: which encoders run their attention (1) or skip it (0), as
    ``pivot.normalize_path`` reads it; None = all (or the model's). A 2 reuses the nearest earlier
    active encoder's attention probabilities (rows: norm1, V (B*T, C, C), SMxV, proj; no QK^T, no
    softmax); a ``relu_linear`` config runs ReLU linear attention (see ``pivot.modes``). ``entropy``: add the entropy
    of the logits on the PS (what a low effort computes to decide which inputs go on).
    """
    config, path_arr = _resolve(model_or_config, path)
    hw = check_hardware(hw)
    batch = _validate.positive_int(batch, "batch")
    result = _c_rows(hw, config, path_arr, batch, bool(entropy))
    return SimReport._from_c(hw, config, tuple(path_arr.tolist()), batch, result)


def _c_rows(hw, config, path_arr, batch, entropy) -> dict:
    """The named rows and totals of one inference from csrc/sim.c's layer list (pivot_sim_forward):
    the config's shape, attention kind and aux head read by attribute name, the LV-ViT stem's
    convolutions as GEMM shapes, the path."""
    if ((path_arr == 2).any() or config.attention != "softmax") and config.has_lvvit_features:
        raise ValueError("attention reuse and linear attention are simulated for timm ViTs only (no LV-ViT features)")
    # Prefix tokens (class, distillation, registers) count through num_tokens; layer scale and
    # avg / max pooling are elementwise. Not modelled yet, so refused rather than left out:
    if config.num_classes == 0 or config.global_pool == "map":
        raise ValueError("the simulator models a classifier head on pooled tokens: headless models "
                         "(num_classes=0) and the attention-pooling head (global_pool='map') are not simulated")
    if config.mlp_layer != "mlp":
        raise ValueError(f"the simulator models timm's Mlp (fc1, GELU, fc2): mlp_layer={config.mlp_layer!r} "
                         "(three GEMMs and a gate) is not simulated")
    stem = None
    if config.stem == "lvvit_conv":
        from ..lvvit import stem_gemm_shapes
        stem = np.array(stem_gemm_shapes(config), dtype=np.int64).reshape(-1, 3)
    return _core.sim_forward(hw=hw, config=config, batch=batch, path=path_arr, stem=stem, entropy=entropy)


def simulate_pair(low, high, f_high: float, hw: HardwareConfig = ZCU102, low_path=None, high_path=None,
                  batch: int = 1) -> PairReport:
    """Delay and energy per input of a (low, high) effort pair with a fraction ``f_high`` escalated.

    ``low`` / ``high``: ViTConfigs or models (their ``.path`` is used when ``low_path`` /
    ``high_path`` is None). Every input runs the low effort (and its entropy on the PS); the
    fraction ``f_high`` of them then runs the high effort: D = D_L + F_H * D_H (section 3.4).
    """
    if not _validate.is_real(f_high) or not math.isfinite(f_high) or not 0.0 <= f_high <= 1.0:
        raise ValueError(f"f_high must be a number in [0, 1], got {f_high!r}")
    f_high = float(f_high)
    low_cfg, lp = _resolve(low, low_path, "low")
    high_cfg, hp = _resolve(high, high_path, "high")
    lo = simulate(low_cfg, lp, hw, batch, entropy=True)
    hi = simulate(high_cfg, hp, hw, batch)
    f_low = 1.0 - f_high
    delay = lo.delay_ms + f_high * hi.delay_ms
    energy = lo.energy_j + f_high * hi.energy_j

    def part(d, e):
        return PairPart(delay_ms=d, energy_j=e, edp=e * delay)

    return PairReport(
        low_report=lo, high_report=hi, f_high=f_high, delay_ms=delay, energy_j=energy,
        power_w=energy / (delay * 1e-3), edp=energy * delay, fps_per_w=batch / energy,
        low=part(f_low * lo.delay_ms, f_low * lo.energy_j),
        high=part(f_high * hi.delay_ms, f_high * hi.energy_j),
        recompute=part(f_high * lo.delay_ms, f_high * lo.energy_j),
        breakdown={m: lo.breakdown[m] + f_high * hi.breakdown[m] for m in MODULES},
        energy_breakdown={c: lo.energy_breakdown[c] + f_high * hi.energy_breakdown[c] for c in ENERGY_COMPONENTS})


@dataclasses.dataclass(frozen=True)
class GemmLayer:
    """One GEMM of a topology: ``(M, K) @ (K, N)``, run ``count`` times."""
    name: str
    M: int
    N: int
    K: int
    count: int = 1

    def __post_init__(self):
        for field in ("M", "N", "K", "count"):
            value = getattr(self, field)
            if not _validate.is_int(value) or value < 1:
                raise ValueError(f"GemmLayer {self.name!r}: {field} must be a positive integer, got {value!r}")


def simulate_gemms(layers, hw: HardwareConfig = ZCU102) -> SimReport:
    """Simulate a list of GEMMs (``GemmLayer`` or ``(name, M, N, K[, count])`` tuples) one after
    another on the PL of ``hw``; e.g. ``simulate_gemms(read_topology_csv("gemm.csv"), hw)``."""
    hw = check_hardware(hw)
    items = _gemm_items(layers)
    shapes = np.array([(g.M, g.N, g.K, g.count) for g in items], dtype=np.int64).reshape(len(items), 4)
    result = _core.sim_gemms(hw=hw, shapes=shapes)
    return SimReport._from_c(hw, None, None, 1, result, names=tuple(g.name for g in items))


def _gemm_items(layers) -> list:
    items = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, GemmLayer):
            if isinstance(layer, (str, bytes)) or not hasattr(layer, "__len__") or len(layer) not in (4, 5):
                raise TypeError(f"layer {i} must be a GemmLayer or a (name, M, N, K[, count]) tuple, got {layer!r}")
            layer = GemmLayer(str(layer[0]), *layer[1:])
        items.append(layer)
    return items
