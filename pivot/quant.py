"""Post-training int8 quantization with integerized matrix products (csrc/quant.c, csrc/qgemm.c): the int8
precision of ``pivot.ViT``.

``pivot.quantize(model, calibration_images)`` returns a ``pivot.ViT`` whose ``precision`` is
``"int8"``: the same class as the fp32 model, with the same API (``__call__(images, path=None,
threads=None)``, ``forward_branches``, ``with_path``, ``path``, ``config``, ``save``, pickling), the
same image preparation (uint8 pixels normalized, other integer dtypes and non-finite values
refused), so ``MultiEffort``, ``search``, ``pivot.modes`` and the simulator take it unchanged.
``model.quantization`` is its ``Int8Weights`` (``per_token``, ``kernel``, ``info``);
``model.with_precision("fp32")`` dequantizes it, ``model.with_precision("int8", kernel=...)``
picks another GEMM kernel. This module holds calibration, weight quantization and the int8 file
format, and registers the ``"int8"`` precision with ``pivot.model.PRECISIONS``.

What is quantized (the integerization of the encoders, operation reordering):

* Weights of qkv, proj, fc1 and fc2: int8, symmetric, one scale per output channel
  (``scale = max |w_row| / 63``: 7-bit codes, see ``WEIGHT_LEVELS``).
* Their inputs: uint8 with a zero point, one (scale, zero point) per tensor calibrated on
  ``calibration_images`` (``method="minmax"`` or ``"percentile"``), or per token with dynamic
  ranges (``per_token=True``). ``activations="symmetric"`` fixes the zero point at 128 (signed
  int8 stored as uint8 + 128).
* Attention: q as uint8 with a zero point, k and v as symmetric int8 (per tensor, calibrated),
  softmax probabilities as uint8 with scale 1/255.

Calibration statistics come from the C engine's own fp32 forward (``capture_inputs``: every
encoder's Linear inputs, with the model's path; a skipped encoder's attention is computed for the
capture and not added, so that another path can activate it later).

Every product accumulates exactly in int32; the combined scale (activation scale x weight
scale) and the bias are applied after it. LayerNorm, softmax and GELU stay float32, and so do the
patch embedding and the head (first and last layers, under 2% of DeiT-S's MACs).
Non-finite values behave as in fp32: a NaN or infinite activation entering a quantized product
makes that token's product NaN (rather than a silent zero code), so the logits become NaN where
the fp32 model's would.
The kernel (AMX tiles, AVX-512 VNNI, AVX-VNNI, AVX2 or portable C) is picked at run time from the
CPU's flags; the SIMD level (``PIVOT_SIMD``) and ``PIVOT_INT8_KERNEL=portable|avx2|avxvnni|vnni|amx``
cap it.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from . import _validate
from ._native import _core
from .config import ViTConfig
from .io import (WeightsFileError, config_from_metadata, open_regular_file, path_from_metadata,
                 read_safetensors_as_stored, write_safetensors_as_given)
from .model import PRECISIONS, ViT, _path_text, prepare_images

__all__ = ["quantize", "Int8Weights", "load", "KERNELS", "kernel_in_use", "ACT_FIELDS", "LINEARS", "SCALE_RANGE",
           "quantized_shapes"]

KERNELS = {"auto": 0, "portable": 1, "avx2": 2, "vnni": 3, "amx": 4, "avxvnni": 5}
_KERNEL_NAMES = {v: k for k, v in KERNELS.items()}
LINEARS = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")
ACT_FIELDS = ("qkv_in_scale", "qkv_in_zp", "q_scale", "q_zp", "k_scale", "v_scale", "proj_in_scale",
              "proj_in_zp", "fc1_in_scale", "fc1_in_zp", "fc2_in_scale", "fc2_in_zp")
_FORMAT = "pivot-int8-v1"
_F = np.float32
SCALE_RANGE = (1e-30, 1e10)
"""Scales (weights' per channel, activations') an int8 model accepts: a product of two stays far
inside float32 after an int32 accumulation, and a scale's inverse is finite."""
_CAPTURE_BYTES = 256 << 20  # the most capture memory one calibration call holds


def kernel_in_use(kernel: str = "auto") -> str:
    """The GEMM kernel a call with ``kernel`` runs on this CPU ("amx", "vnni", "avxvnni", "avx2" or
    "portable"):
    "auto" gives the best supported one, capped by the SIMD level and the ``PIVOT_INT8_KERNEL``
    environment variable.
    Raises ValueError when a named kernel is not supported here."""
    return _KERNEL_NAMES[_core.int8_kernel_resolve(_kernel_code(kernel))]


def _kernel_code(kernel) -> int:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {tuple(KERNELS)}, got {kernel!r}")
    return KERNELS[kernel]


# ============================================================================ calibration

# Weight codes are kept in 7 bits, [-63, 63] (ONNX Runtime's reduce_range): then AVX2's u8 x s8
# vpmaddubsw, which adds two products in int16, cannot saturate (2 * 255 * 63 < 2^15) and the AVX2
# kernel runs at twice the products per instruction of its exact 16-bit fallback; every kernel
# still gives the same int32 sums. docs/int8.md measures what the lost bit costs in accuracy.
WEIGHT_LEVELS = 63


def _weight_quant(w):
    """int8 (N, K) in [-WEIGHT_LEVELS, WEIGHT_LEVELS] and float32 scales (N): symmetric per output channel."""
    w = np.asarray(w, dtype=np.float32)
    amax = np.abs(w).max(axis=1) / np.float32(WEIGHT_LEVELS)
    scale = np.where(amax >= SCALE_RANGE[0], amax, 1.0).astype(np.float32)  # an all-but-zero row quantizes to 0
    q = np.clip(np.rint(w / scale[:, None]), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8)
    return q, scale


class _Observer:
    """Range of one quantization point over the calibration batches; a batch's values arrive in
    chunks (``begin`` the batch, ``add`` its chunks in order, ``end`` it)."""

    _SAMPLE = 1_000_000  # percentiles of a batch are taken on a deterministic subsample of this many

    def __init__(self, method, percentile):
        self.method, self.percentile = method, percentile
        self.lo, self.hi, self.amax = [], [], []

    def begin(self, total: int):
        self._stride = total // self._SAMPLE + 1 if total > self._SAMPLE else 1
        self._seen, self._parts = 0, []

    def add(self, x):
        x = np.asarray(x, dtype=np.float32).ravel()
        if self.method == "minmax":
            if x.size:
                self.lo.append(float(x.min()))
                self.hi.append(float(x.max()))
                self.amax.append(float(np.abs(x).max()))
            return
        self._parts.append(x[(-self._seen) % self._stride::self._stride])  # every stride-th of the whole batch
        self._seen += x.size

    def end(self):
        if self.method == "minmax" or not self._parts:
            return
        x = np.concatenate(self._parts)
        self._parts = []
        if x.size == 0:
            return
        p = self.percentile
        lo, hi = np.percentile(x, [100.0 - p, p])
        self.lo.append(float(lo))
        self.hi.append(float(hi))
        self.amax.append(float(np.percentile(np.abs(x), p)))

    def _range(self):
        if not self.lo:
            return 0.0, 1.0, 1.0
        if self.method == "minmax":
            return min(self.lo), max(self.hi), max(self.amax)
        return float(np.mean(self.lo)), float(np.mean(self.hi)), float(np.mean(self.amax))

    def asymmetric(self, symmetric: bool):
        lo, hi, amax = self._range()
        if symmetric:
            return (amax / 127.0 if amax > 0 else 1.0), 128.0
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        return scale, float(np.clip(np.rint(-lo / scale), 0, 255))

    def symmetric(self):
        amax = self._range()[2]
        return amax / 127.0 if amax > 0 else 1.0


# The captured Linear inputs (ViT._run(capture_inputs=True)) and the quantization points of each.
_POINTS = {"qkv_in": ("qkv_in",), "qkv": ("q", "k", "v"), "proj_in": ("proj_in",), "fc1_in": ("fc1_in",),
           "fc2_in": ("fc2_in",)}


def _calibrate(model: ViT, images, method, percentile, batch_size, symmetric):
    """Per block: the 12 activation parameters (ACT_FIELDS), from the C engine's fp32 forward of
    ``model`` with its own path (``capture_inputs``; a skipped encoder's attention is computed for
    the capture only, so that another path can activate it later). ``images`` are prepared."""
    cfg = model.config
    C, D, T, H = cfg.embed_dim, cfg.depth, cfg.num_tokens, cfg.mlp_hidden
    obs = [{p: _Observer(method, percentile) for names in _POINTS.values() for p in names} for _ in range(D)]
    widths = {"qkv_in": C, "q": C, "k": C, "v": C, "proj_in": C, "fc1_in": C, "fc2_in": H}
    per_image = D * T * (6 * C + H) * 4
    chunk = max(1, min(batch_size, _CAPTURE_BYTES // per_image))
    for start in range(0, images.shape[0], batch_size):
        batch = images[start:start + batch_size]
        for i in range(D):
            for name, o in obs[i].items():
                o.begin(batch.shape[0] * T * widths[name])
        for s0 in range(0, batch.shape[0], chunk):
            cap = model._run(batch[s0:s0 + chunk], None, None, capture_inputs=True)[0]
            for key, names in _POINTS.items():
                values = cap[key]  # (D, b, T, width)
                if not np.isfinite(values).all():
                    block = int(np.argmin(np.isfinite(values).reshape(D, -1).all(axis=1)))
                    raise ValueError(f"calibration: the fp32 model's {key} activations of blocks.{block} are not "
                                     "finite on these images (the float forward overflows); int8 scales cannot "
                                     "be set from them")
                for i in range(D):
                    if len(names) == 1:
                        obs[i][names[0]].add(values[i])
                    else:
                        for j, name in enumerate(names):
                            obs[i][name].add(values[i][..., j * C:(j + 1) * C])
        for i in range(D):
            for o in obs[i].values():
                o.end()
    acts = []
    for o in obs:
        qkv_s, qkv_z = o["qkv_in"].asymmetric(symmetric)
        q_s, q_z = o["q"].asymmetric(symmetric)
        proj_s, proj_z = o["proj_in"].asymmetric(symmetric)
        fc1_s, fc1_z = o["fc1_in"].asymmetric(symmetric)
        fc2_s, fc2_z = o["fc2_in"].asymmetric(symmetric)
        acts.append(np.array([qkv_s, qkv_z, q_s, q_z, o["k"].symmetric(), o["v"].symmetric(), proj_s, proj_z,
                              fc1_s, fc1_z, fc2_s, fc2_z], dtype=np.float32))
    return acts


def quantize(model, calibration_images, *, method: str = "minmax", percentile: float = 99.99,
             per_token: bool = False, activations: str = "asymmetric", batch_size: int = 32,
             kernel: str = "auto") -> ViT:
    """Post-training int8 quantization of an fp32 ``pivot.ViT`` (timm ViT/DeiT, softmax attention):
    a ``pivot.ViT`` of ``precision == "int8"`` with the model's path.

    ``calibration_images`` (N, in_chans, img, img): a batch whose activation ranges set the
    per-tensor scales, observed with the model's own path; uint8 pixels or normalized floats, as
    ``pivot.ViT.__call__`` takes them (``pivot.model.prepare_images``). ``method``: ``"minmax"``
    (the full range, over all batches) or ``"percentile"`` (the ``percentile``-th and (100 - p)-th
    percentiles per batch of ``batch_size`` images, averaged; clips outliers). ``per_token=True``:
    the inputs of the four linear layers get per-token dynamic ranges at run time instead (q, k, v
    stay calibrated). ``activations``: ``"asymmetric"`` (uint8 with a zero point) or
    ``"symmetric"`` (int8). ``kernel``: "auto", "amx", "vnni", "avxvnni", "avx2" or "portable" (see
    ``kernel_in_use``).
    """
    if not isinstance(model, ViT):
        raise TypeError(f"quantize takes a pivot.ViT, got {type(model).__name__}")
    if model.precision != "fp32":
        raise ValueError(f"quantize takes an fp32 model; this one is {model.precision} "
                         "(model.with_precision('fp32') dequantizes it)")
    cfg = model.config
    if not cfg.is_timm_vit or cfg.attention != "softmax":
        raise ValueError("int8 quantization supports timm ViT/DeiT models with softmax attention "
                         f"(this model: stem={cfg.stem!r}, attention={cfg.attention!r})")
    if method not in ("minmax", "percentile"):
        raise ValueError(f"method must be 'minmax' or 'percentile', got {method!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 50.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be a number in (50, 100], got {percentile!r}")
    if activations not in ("asymmetric", "symmetric"):
        raise ValueError(f"activations must be 'asymmetric' or 'symmetric', got {activations!r}")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    _kernel_code(kernel)
    if calibration_images is None:
        raise TypeError("quantize(model, calibration_images) needs calibration images: a batch (N, "
                        f"{cfg.in_chans}, {cfg.img_size}, {cfg.img_size}) of typical inputs (e.g. 256 training "
                        "images) whose activation ranges set the int8 scales; got None")
    images = prepare_images(cfg, calibration_images)
    acts = _calibrate(model, images, method, float(percentile), batch_size, activations == "symmetric")
    state = model.state_dict()
    tensors = {}
    for key, value in state.items():
        name = key[:-len(".weight")] if key.endswith(".weight") else None
        if name is not None and name.startswith("blocks.") and name.split(".", 2)[2] in LINEARS:
            q, s = _weight_quant(value)
            tensors[key] = q
            tensors[name + ".weight_scale"] = s
        else:
            tensors[key] = value
    for i, act in enumerate(acts):
        tensors[f"blocks.{i}.act_quant"] = act
    info = {"method": method, "percentile": float(percentile), "per_token": bool(per_token),
            "activations": activations, "calibration_images": int(images.shape[0])}
    return Int8Weights(cfg, tensors, per_token=per_token, kernel=kernel, info=info).model(model.path)


# ============================================================================ the int8 weights

def quantized_shapes(config: ViTConfig) -> dict:
    """Key -> (shape, dtype) of an int8 model's tensors (its ``state_dict``)."""
    out = {}
    for key, shape in config.weight_shapes().items():
        name = key[:-len(".weight")] if key.endswith(".weight") else None
        if name is not None and name.startswith("blocks.") and name.split(".", 2)[2] in LINEARS:
            out[key] = (tuple(shape), np.int8)
            out[name + ".weight_scale"] = ((shape[0],), np.float32)
        else:
            out[key] = (tuple(shape), np.float32)
    for i in range(config.depth):
        out[f"blocks.{i}.act_quant"] = ((len(ACT_FIELDS),), np.float32)
    return out


def _scales_problem(key, values) -> str | None:
    lo, hi = SCALE_RANGE
    bad = ~((values >= lo) & (values <= hi))
    if bad.any():
        return f"{key}: scale {float(values[bad][0])!r} is outside [{lo:g}, {hi:g}]"
    return None


class Int8Weights:
    """The int8 encoders of a ``pivot.ViT`` of precision ``"int8"`` (``model.quantization``): the
    quantized tensors (keys of ``quantized_shapes(config)``: int8 Linear weights of the encoders
    with float32 per-channel ``.weight_scale``, float32 everything else, ``blocks.i.act_quant``
    the 12 activation parameters of ``ACT_FIELDS``), validated and packed for the engine, and the
    run-time options ``per_token`` and ``kernel``.

    The engine reads ``weights`` (packed int8), ``floats`` (the blocks' float parameters),
    ``per_token`` and ``kernel_code`` by name (csrc/bind/engine.c); ``stem_head`` is the fp32 rest
    of the model (tokens, patch embedding, final norm, heads) in the engine's order."""

    name = "int8"

    def __init__(self, config: ViTConfig, tensors, per_token: bool = False, kernel: str = "auto", info=None):
        if not isinstance(config, ViTConfig):
            raise TypeError(f"config must be a pivot.ViTConfig, got {type(config).__name__}")
        if not config.is_timm_vit or config.attention != "softmax":
            raise ValueError("int8 models are timm ViT/DeiT configs with softmax attention")
        shapes = quantized_shapes(config)
        problems = [f"missing {k}" for k in shapes if k not in tensors]
        problems += [f"unexpected {k}" for k in tensors if k not in shapes]
        arrays = {}
        for key, (shape, dtype) in shapes.items():
            if key not in tensors:
                continue
            arr = np.asarray(tensors[key])
            if arr.shape != shape or arr.dtype != dtype:
                problems.append(f"{key}: {arr.dtype}{list(arr.shape)}, expected {np.dtype(dtype)}{list(shape)}")
            elif dtype == np.float32 and not np.all(np.isfinite(arr)):
                problems.append(f"{key}: non-finite values")
            else:
                arrays[key] = np.array(arr, dtype=dtype, order="C", copy=True)
        if problems:
            raise ValueError("quantized tensors do not match the config: " + "; ".join(problems[:10]))
        for i in range(config.depth):
            key = f"blocks.{i}.act_quant"
            act = arrays[key]
            scales, zps = act[[0, 2, 4, 5, 6, 8, 10]], act[[1, 3, 7, 9, 11]]
            problem = _scales_problem(key, scales)
            if problem:
                raise ValueError(problem + " (activation scales)")
            if not np.all((zps >= 0) & (zps <= 255) & (zps == np.rint(zps))):
                raise ValueError(f"{key}: zero points must be integers in [0, 255]")
            for name in LINEARS:
                problem = _scales_problem(f"blocks.{i}.{name}.weight_scale", arrays[f"blocks.{i}.{name}.weight_scale"])
                if problem:
                    raise ValueError(problem)
                if np.any(arrays[f"blocks.{i}.{name}.weight"] == -128):
                    raise ValueError(f"blocks.{i}.{name}.weight: int8 weights must be in [-127, 127]")
        self._config = config
        self._tensors = arrays
        self.per_token = bool(per_token)
        self.kernel = kernel
        self.kernel_code = _kernel_code(kernel)
        self._info = dict(info or {})
        self._pack()

    def _pack(self):
        """The C layout: per block the packed qkv/proj/fc1/fc2 weights and the block's floats."""
        c = self._config
        nf, nb, _ = _core.qblock_sizes(c.embed_dim, c.mlp_hidden)
        wbuf = np.zeros(nb * c.depth, np.int8)
        fbuf = np.empty(nf * c.depth, np.float32)
        a = self._tensors
        for i in range(c.depth):
            p = f"blocks.{i}."
            at = i * nb
            for name in LINEARS:
                packed = _core.int8_pack(a[p + name + ".weight"])
                wbuf[at:at + packed.size] = packed
                at += -(-packed.size // 64) * 64
            parts = [a[p + "norm1.weight"], a[p + "norm1.bias"], a[p + "attn.qkv.bias"], a[p + "attn.qkv.weight_scale"],
                     a[p + "attn.proj.bias"], a[p + "attn.proj.weight_scale"], a[p + "norm2.weight"],
                     a[p + "norm2.bias"], a[p + "mlp.fc1.bias"], a[p + "mlp.fc1.weight_scale"], a[p + "mlp.fc2.bias"],
                     a[p + "mlp.fc2.weight_scale"], a[p + "act_quant"]]
            fbuf[i * nf:(i + 1) * nf] = np.concatenate(parts)
        # the float stem, tokens and heads in the engine's order (csrc/engine.h) without the blocks
        stem_head = np.concatenate([a[k].astype(np.float32, copy=False).ravel() for k in c.weight_shapes()
                                    if not k.startswith("blocks.")])
        for buf in (wbuf, fbuf, stem_head):
            buf.flags.writeable = False
        self.weights, self.floats, self.stem_head = wbuf, fbuf, stem_head
        self.stem_head_floats = int(stem_head.size)
        # (level, packed fp32 patch embedding) of ViT._packed, packed on first use and shared by
        # every model of these weights (with_path, with_kernel)
        self._stem_pack_cell = [None]

    def __reduce__(self):
        # Pickled as the constructor's arguments; the receiver validates and packs them again, so
        # no C layout crosses a process.
        return Int8Weights, (self._config, self._tensors, self.per_token, self.kernel, self._info)

    def model(self, path=None) -> ViT:
        """A ``pivot.ViT`` of these weights (shared) and ``path``."""
        model = ViT._from_params(self._config, self.stem_head, path, self)
        model._pack_cell = self._stem_pack_cell
        return model

    @property
    def info(self) -> dict:
        """How the model was calibrated (method, percentile, per_token, activations, image count)."""
        return dict(self._info)

    def describe(self) -> str:
        return f"per_token={self.per_token}, kernel={kernel_in_use(self.kernel)}"

    def with_kernel(self, kernel: str) -> "Int8Weights":
        """The same weights (shared) running on another GEMM kernel ("auto", "amx", "vnni", "avxvnni",
        "avx2", "portable")."""
        kernel_in_use(kernel)  # refuse a kernel this CPU lacks now, not at the first call
        out = Int8Weights.__new__(Int8Weights)
        out.__dict__.update(self.__dict__)
        out.kernel, out.kernel_code = kernel, _kernel_code(kernel)
        return out

    def block(self, i) -> dict:
        """Block i's tensors without the ``blocks.i.`` prefix, ``act_quant`` as ``act`` (for pivot.reference.quant)."""
        p = f"blocks.{i}."
        out = {k[len(p):]: v for k, v in self._tensors.items() if k.startswith(p)}
        out["act"] = out.pop("act_quant")
        return out

    def state_dict(self) -> dict:
        """Key -> array copies (``quantized_shapes(config)``)."""
        return {k: v.copy() for k, v in self._tensors.items()}

    def dequantized(self, model: ViT) -> ViT:
        """An fp32 ``pivot.ViT`` with the int8 weights dequantized (weight-only quantization
        error), ``model``'s path."""
        w = {}
        for key, value in self._tensors.items():
            if key.endswith(".weight_scale") or key.endswith(".act_quant"):
                continue
            scale_key = key[:-len(".weight")] + ".weight_scale"
            w[key] = value.astype(np.float32) * self._tensors[scale_key][:, None] if scale_key in self._tensors else value
        return ViT(self._config, w, path=model.path)

    def save(self, path, model: ViT) -> None:
        """Write a safetensors file (int8 and float32 tensors) with the config, ``model``'s path
        and the quantization settings as metadata, atomically (a temporary file renamed into
        place); ``pivot.quant.load`` and ``pivot.ViT.from_timm`` read it back bit for bit."""
        metadata = {
            "format": _FORMAT,
            "pivot.config": json.dumps(dataclasses.asdict(self._config)),
            "pivot.path": _path_text(model.path),
            "pivot.quant": json.dumps(dict(self._info, per_token=self.per_token)),
        }
        write_safetensors_as_given(path, self._tensors, metadata)


# ============================================================================ files

# The stored dtypes of an int8 file: int8 weights, float32 scales, biases and float layers.
_DTYPES = {"I8": "i1", "F32": "<f4"}


def load(path, kernel: str = "auto") -> ViT:
    """Read an int8 model written by ``save`` (through ``pivot.io``'s checked safetensors reader)
    as a ``pivot.ViT`` of precision ``"int8"``; a malformed file, or one whose scales are out of
    ``SCALE_RANGE``, raises ``pivot.WeightsFileError`` naming the problem (and the tensor), and
    nothing is built from it. ``pivot.ViT.from_timm`` reads these files too."""
    _kernel_code(kernel)
    path = _validate.file_path(path)
    tensors, meta = read_safetensors_as_stored(path, _DTYPES)
    if meta.get("format") != _FORMAT:
        raise WeightsFileError(f"{path}: format {meta.get('format')!r}, expected {_FORMAT!r} (use pivot.ViT.from_timm for float files)")
    missing = [key for key in ("pivot.config", "pivot.quant", "pivot.path") if key not in meta]
    if missing:
        raise WeightsFileError(f"{path}: metadata lacks {', '.join(missing)}")
    config = config_from_metadata(meta["pivot.config"], repr(path))
    path_bits = path_from_metadata(meta["pivot.path"], config.depth, repr(path))
    try:
        quant = json.loads(meta["pivot.quant"]) if len(meta["pivot.quant"]) <= 1 << 16 else None
    except (TypeError, ValueError, RecursionError) as exc:
        raise WeightsFileError(f"{path}: bad 'pivot.quant' metadata ({type(exc).__name__})") from None
    if not isinstance(quant, dict):
        raise WeightsFileError(f"{path}: bad 'pivot.quant' metadata (expected a JSON object)")
    try:
        return Int8Weights(config, tensors, per_token=bool(quant.get("per_token", False)), kernel=kernel,
                           info=quant).model(path_bits)
    except ValueError as exc:
        raise WeightsFileError(f"{path}: {exc}") from None


def is_int8_file(path) -> bool:
    """True when ``path`` is a regular file whose safetensors header says it is a pivot int8 model
    (reads the header only; anything unreadable is False, for the caller's own loader to explain)."""
    try:
        with open_regular_file(_validate.file_path(path)) as f:
            n = int.from_bytes(f.read(8), "little")
            if not 2 <= n <= 1 << 26:
                return False
            header = json.loads(f.read(n))
    except (OSError, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        return False
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(meta, dict) and meta.get("format") == _FORMAT


class _Int8Precision:
    """The "int8" entry of ``pivot.model.PRECISIONS``."""

    @staticmethod
    def convert(model: ViT, calibration_images=None, kernel=None, **options) -> ViT:
        if model.precision == "int8":
            if calibration_images is not None or options:
                raise ValueError("the model is int8 already: only kernel= applies; to quantize again, start "
                                 "from model.with_precision('fp32')")
            return model if kernel is None else model.quantization.with_kernel(kernel).model(model.path)
        return quantize(model, calibration_images, kernel="auto" if kernel is None else kernel, **options)

    is_file = staticmethod(is_int8_file)
    load = staticmethod(load)


PRECISIONS["int8"] = _Int8Precision()
