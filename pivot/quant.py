"""Post-training int8 quantization with integerized matrix products (csrc/quant.c, csrc/qgemm.c).

``pivot.quantize(model, calibration_images)`` turns a ``pivot.ViT`` into a ``QuantizedViT`` with
the same API (``__call__(images, path=None, threads=None)``, ``forward_branches``,
``with_path``, ``path``, ``config``, ``save``), so ``MultiEffort``, ``search`` and the simulator
take it unchanged.

What is quantized (the integerization of the encoders, operation reordering):

* Weights of qkv, proj, fc1 and fc2: int8, symmetric, one scale per output channel
  (``scale = max |w_row| / 63``: 7-bit codes, see ``WEIGHT_LEVELS``).
* Their inputs: uint8 with a zero point, one (scale, zero point) per tensor calibrated on
  ``calibration_images`` (``method="minmax"`` or ``"percentile"``), or per token with dynamic
  ranges (``per_token=True``). ``activations="symmetric"`` fixes the zero point at 128 (signed
  int8 stored as uint8 + 128).
* Attention: q as uint8 with a zero point, k and v as symmetric int8 (per tensor, calibrated),
  softmax probabilities as uint8 with scale 1/255.

Every product accumulates exactly in int32; the combined scale (activation scale x weight
scale) and the bias are applied after it. LayerNorm, softmax and GELU stay float32, and so do the
patch embedding and the head (first and last layers, under 2% of DeiT-S's MACs).
The kernel (AMX tiles, AVX-512 VNNI, AVX2 or portable C) is picked at run time from the CPU's flags;
the SIMD level (``PIVOT_SIMD``) and ``PIVOT_INT8_KERNEL=portable|avx2|vnni|amx`` cap it.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from . import _validate
from ._native import _core
from .config import ViTConfig, normalize_path
from .io import (WeightsFileError, config_from_metadata, path_from_metadata, read_safetensors_as_stored,
                 write_safetensors_as_given)
from .model import ViT, _path_text, _resolve_threads, prepare_images
from .reference.quant import embed_tokens

__all__ = ["quantize", "QuantizedViT", "load", "KERNELS", "kernel_in_use", "ACT_FIELDS", "LINEARS"]

KERNELS = {"auto": 0, "portable": 1, "avx2": 2, "vnni": 3, "amx": 4}
_KERNEL_NAMES = {v: k for k, v in KERNELS.items()}
LINEARS = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")
ACT_FIELDS = ("qkv_in_scale", "qkv_in_zp", "q_scale", "q_zp", "k_scale", "v_scale", "proj_in_scale",
              "proj_in_zp", "fc1_in_scale", "fc1_in_zp", "fc2_in_scale", "fc2_in_zp")
_FORMAT = "pivot-int8-v1"
_F = np.float32


def kernel_in_use(kernel: str = "auto") -> str:
    """The GEMM kernel a call with ``kernel`` runs on this CPU ("amx", "vnni", "avx2" or "portable"):
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
    amax = np.abs(w).max(axis=1)
    scale = np.where(amax > 0, amax / WEIGHT_LEVELS, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None]), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8)
    return q, scale


class _Observer:
    """Range of one quantization point over the calibration batches."""

    def __init__(self, method, percentile):
        self.method, self.percentile = method, percentile
        self.lo, self.hi, self.amax = [], [], []

    def add(self, x):
        x = np.asarray(x, dtype=np.float32).ravel()
        x = x[np.isfinite(x)]
        if x.size == 0:
            return
        if self.method == "minmax":
            self.lo.append(float(x.min()))
            self.hi.append(float(x.max()))
            self.amax.append(float(np.abs(x).max()))
            return
        if x.size > 1_000_000:  # a deterministic subsample keeps percentiles cheap on big tensors
            x = x[:: x.size // 1_000_000 + 1]
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


def _calibrate(model: ViT, images, method, percentile, batch_size, symmetric):
    """Per block: the 12 activation parameters (ACT_FIELDS), from a float32 forward of ``model``
    with its own path. Skipped encoders' attention inputs are observed too (the attention branch
    is computed and dropped), so that another path can activate them later."""
    cfg = model.config
    C, NH, eps = cfg.embed_dim, cfg.num_heads, cfg.norm_eps
    hd = C // NH
    w = model.state_dict()
    points = ("qkv_in", "q", "k", "v", "proj_in", "fc1_in", "fc2_in")
    obs = [{p: _Observer(method, percentile) for p in points} for _ in range(cfg.depth)]
    path = model.path
    for start in range(0, images.shape[0], batch_size):
        x = embed_tokens(cfg, w, images[start:start + batch_size])
        B, T, _ = x.shape
        x = x.reshape(B * T, C)
        kept = None
        for i in range(cfg.depth):
            p = f"blocks.{i}."
            o = obs[i]
            ln = _core.layernorm_forward(x, w[p + "norm1.weight"], w[p + "norm1.bias"], eps)
            o["qkv_in"].add(ln)
            qkv = ln @ w[p + "attn.qkv.weight"].T + w[p + "attn.qkv.bias"]
            q, k, v = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]
            o["q"].add(q)
            o["k"].add(k)
            o["v"].add(v)
            qh = q.reshape(B, T, NH, hd).transpose(0, 2, 1, 3)
            kh = k.reshape(B, T, NH, hd).transpose(0, 2, 3, 1)
            vh = v.reshape(B, T, NH, hd).transpose(0, 2, 1, 3)
            if path[i] != 2 or kept is None:
                scores = np.ascontiguousarray((qh @ kh) * np.float32(1.0 / math.sqrt(hd)), dtype=np.float32)
                probs = _core.softmax_forward(scores.reshape(-1, T)).reshape(B, NH, T, T)
                if path[i] == 1:
                    kept = probs
            else:
                probs = kept
            cat = np.ascontiguousarray((probs @ vh).transpose(0, 2, 1, 3).reshape(B * T, C), dtype=np.float32)
            o["proj_in"].add(cat)
            if path[i]:
                x = x + (cat @ w[p + "attn.proj.weight"].T + w[p + "attn.proj.bias"])
            ln = _core.layernorm_forward(np.ascontiguousarray(x), w[p + "norm2.weight"], w[p + "norm2.bias"], eps)
            o["fc1_in"].add(ln)
            hidden = _core.gelu_forward(np.ascontiguousarray(ln @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"]))
            o["fc2_in"].add(hidden)
            x = np.ascontiguousarray(x + (hidden @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"]), dtype=np.float32)
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
             kernel: str = "auto") -> "QuantizedViT":
    """Post-training int8 quantization of a ``pivot.ViT`` (timm ViT/DeiT, softmax attention).

    ``calibration_images`` (N, in_chans, img, img): a batch whose activation ranges set the
    per-tensor scales, observed with the model's own path. ``method``: ``"minmax"`` (the full
    range, over all batches) or ``"percentile"`` (the ``percentile``-th and (100 - p)-th
    percentiles per batch, averaged; clips outliers). ``per_token=True``: the inputs of the four
    linear layers get per-token dynamic ranges at run time instead (q, k, v stay calibrated).
    ``activations``: ``"asymmetric"`` (uint8 with a zero point) or ``"symmetric"`` (int8).
    ``kernel``: "auto", "vnni", "avx2" or "portable" (see ``kernel_in_use``).
    Returns a ``QuantizedViT`` with the model's path.
    """
    if not isinstance(model, ViT):
        raise TypeError(f"quantize takes a pivot.ViT, got {type(model).__name__}")
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
    images = model._checked_images(prepare_images(cfg, calibration_images))
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
    return QuantizedViT(cfg, tensors, path=model.path, per_token=per_token, kernel=kernel, info=info)


# ============================================================================ model

def quantized_shapes(config: ViTConfig) -> dict:
    """Key -> (shape, dtype) of a quantized model's tensors (``QuantizedViT.state_dict``)."""
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


class QuantizedViT:
    """An int8 ViT (see the module docstring), with ``pivot.ViT``'s inference API.

    Built by ``pivot.quantize`` or ``pivot.quant.load``; ``tensors`` maps the keys of
    ``quantized_shapes(config)`` to arrays (int8 linear weights of the encoders with float32
    per-channel ``.weight_scale``, float32 everything else, ``blocks.i.act_quant`` the 12
    activation parameters of ``ACT_FIELDS``).
    """

    def __init__(self, config: ViTConfig, tensors, path=None, per_token: bool = False, kernel: str = "auto",
                 info=None):
        if not isinstance(config, ViTConfig):
            raise TypeError(f"config must be a pivot.ViTConfig, got {type(config).__name__}")
        if not config.is_timm_vit or config.attention != "softmax":
            raise ValueError("QuantizedViT supports timm ViT/DeiT configs with softmax attention")
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
            act = arrays[f"blocks.{i}.act_quant"]
            scales, zps = act[[0, 2, 4, 5, 6, 8, 10]], act[[1, 3, 7, 9, 11]]
            if not np.all(scales > 0) or not np.all((zps >= 0) & (zps <= 255) & (zps == np.rint(zps))):
                raise ValueError(f"blocks.{i}.act_quant: scales must be > 0 and zero points integers in [0, 255]")
            for name in LINEARS:
                if not np.all(arrays[f"blocks.{i}.{name}.weight_scale"] > 0):
                    raise ValueError(f"blocks.{i}.{name}.weight_scale must be > 0")
                if np.any(arrays[f"blocks.{i}.{name}.weight"] == -128):
                    raise ValueError(f"blocks.{i}.{name}.weight: int8 weights must be in [-127, 127]")
        self._config = config
        self._float = arrays
        self._per_token = bool(per_token)
        _kernel_code(kernel)
        self._kernel = kernel
        self._info = dict(info or {})
        self._pack()
        self._path = self._checked_path(path)
        self._path.flags.writeable = False

    def _pack(self):
        """The C layout: per block the packed qkv/proj/fc1/fc2 weights and the block's floats."""
        c = self._config
        nf, nb, _ = _core.qblock_sizes(c.embed_dim, c.mlp_hidden)
        wbuf = np.zeros(nb * c.depth, np.int8)
        fbuf = np.empty(nf * c.depth, np.float32)
        a = self._float
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
        self._wbuf, self._fbuf, self._stem_head = wbuf, fbuf, stem_head

    def __reduce__(self):
        # Pickled as the constructor's arguments (config, quantized tensors, path, precision,
        # kernel, info); the receiver validates and packs them again, so no C layout crosses a process.
        return QuantizedViT, (self._config, self._float, self._path, self._per_token, self._kernel, self._info)

    @classmethod
    def _shared(cls, other, path=None, kernel=None):
        model = cls.__new__(cls)
        model.__dict__.update(other.__dict__)
        if kernel is not None:
            _kernel_code(kernel)
            model._kernel = kernel
        model._path = model._checked_path(other._path if path is None else path)
        model._path.flags.writeable = False
        return model

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> ViTConfig:
        """The model's shape (a frozen ``pivot.ViTConfig``)."""
        return self._config

    @property
    def path(self) -> np.ndarray:
        """Default attention path (read-only uint8: 0 skip, 1 active, 2 reuse)."""
        return self._path

    @property
    def per_token(self) -> bool:
        """True when the linear layers' inputs are quantized per token at run time."""
        return self._per_token

    @property
    def kernel(self) -> str:
        """The requested GEMM kernel ("auto" or a name); ``kernel_in_use(model.kernel)`` resolves it."""
        return self._kernel

    @property
    def info(self) -> dict:
        """How the model was calibrated (method, percentile, per_token, activations, image count)."""
        return dict(self._info)

    @property
    def num_params(self) -> int:
        return int(sum(int(np.prod(s)) for s in self._config.weight_shapes().values()))

    def __repr__(self) -> str:
        c = self._config
        return (f"QuantizedViT(int8, embed_dim={c.embed_dim}, depth={c.depth}, num_heads={c.num_heads}, "
                f"num_classes={c.num_classes}, per_token={self._per_token}, "
                f"kernel={kernel_in_use(self.kernel)}, path={_path_text(self._path)})")

    # ------------------------------------------------------------------ inference
    def _checked_path(self, path) -> np.ndarray:
        return normalize_path(path, self._config.depth, allow_reuse=True)

    _checked_images = ViT._checked_images

    def _block(self, i) -> dict:
        """Block i's tensors without the ``blocks.i.`` prefix (for pivot.reference.quant)."""
        p = f"blocks.{i}."
        out = {k[len(p):]: v for k, v in self._float.items() if k.startswith(p)}
        out["act"] = out.pop("act_quant")
        return out

    def _run(self, images, path, threads, capture):
        """The engine's one forward with the int8 encoders: logits, or with capture (logits, attn, mlp)."""
        images = self._checked_images(images)
        path = self._path if path is None else self._checked_path(path)
        out = _core.vit_forward(images, self._stem_head, self._config, path, _resolve_threads(threads),
                                capture=capture,
                                int8=(self._wbuf, self._fbuf, self._per_token, KERNELS[self.kernel]))
        return (out[:3] if capture else out), path

    def __call__(self, images, path=None, threads=None) -> np.ndarray:
        """Logits (B, num_classes) float32, as ``pivot.ViT.__call__``; the GIL is released while
        the encoders run."""
        return self._run(images, path, threads, False)[0]

    def forward_branches(self, images, path=None, threads=None):
        """``(logits, attn_outputs, mlp_outputs)`` as ``pivot.ViT.forward_branches``
        (float32 branch outputs after the dequantized proj / fc2)."""
        (logits, attn, mlp), path = self._run(images, path, threads, True)
        it = iter(attn)
        return logits, [next(it) if p else None for p in path], list(mlp)

    def with_path(self, path) -> "QuantizedViT":
        """The same quantized weights (shared) with another default path."""
        return QuantizedViT._shared(self, path=path)

    def with_kernel(self, kernel: str) -> "QuantizedViT":
        """The same model running on another GEMM kernel ("auto", "vnni", "avx2", "portable")."""
        kernel_in_use(kernel)  # refuse a kernel this CPU lacks now, not at the first call
        return QuantizedViT._shared(self, kernel=kernel)

    # ------------------------------------------------------------------ weights
    def state_dict(self) -> dict:
        """Key -> array copies (``quantized_shapes(config)``)."""
        return {k: v.copy() for k, v in self._float.items()}

    def dequantized(self) -> ViT:
        """A float ``pivot.ViT`` with the int8 weights dequantized (weight-only quantization error)."""
        w = {}
        for key, value in self._float.items():
            if key.endswith(".weight_scale") or key.endswith(".act_quant"):
                continue
            scale_key = key[:-len(".weight")] + ".weight_scale"
            w[key] = value.astype(np.float32) * self._float[scale_key][:, None] if scale_key in self._float else value
        return ViT(self._config, w, path=self._path)

    def save(self, path) -> None:
        """Write a safetensors file (int8 and float32 tensors) with the config, path and
        quantization settings as metadata, atomically (a temporary file renamed into place);
        ``pivot.quant.load`` reads it back bit for bit."""
        metadata = {
            "format": _FORMAT,
            "pivot.config": json.dumps(dataclasses.asdict(self._config)),
            "pivot.path": _path_text(self._path),
            "pivot.quant": json.dumps(dict(self._info, per_token=self._per_token)),
        }
        write_safetensors_as_given(path, self._float, metadata)


# ============================================================================ files

# The stored dtypes of an int8 file: int8 weights, float32 scales, biases and float layers.
_DTYPES = {"I8": "i1", "F32": "<f4"}


def load(path, kernel: str = "auto") -> QuantizedViT:
    """Read a model written by ``QuantizedViT.save`` (through ``pivot.io``'s checked safetensors
    reader); a malformed file raises ``pivot.WeightsFileError`` naming the problem, and nothing
    is built from it."""
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
        return QuantizedViT(config, tensors, path=path_bits,
                            per_token=bool(quant.get("per_token", False)), kernel=kernel, info=quant)
    except ValueError as exc:
        raise WeightsFileError(f"{path}: {exc}") from None
