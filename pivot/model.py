"""The ViT model: timm-compatible weights, the C forward pass and attention-skip paths."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings

import numpy as np

from . import _validate
from . import lvvit as _lvvit
from ._native import _core
from .config import ViTConfig, normalize_path, path_effort

__all__ = ["ViT", "flops", "default_threads", "prepare_images", "check_pixels", "InputNormalizationWarning",
           "PRECISIONS"]


class InputNormalizationWarning(UserWarning):
    """Float images that look like raw pixels (all in [0, 1], or far beyond the normalized range)."""


_warned_unnormalized = False


def check_pixels(images) -> np.ndarray:
    """``images`` as an array of pixels pivot accepts: uint8 (raw pixels 0..255) or floating point
    (already normalized), every value finite. Other integer dtypes (int16, int32, int64, ...) are
    refused rather than guessed at (a 16-bit image is not a float image of 0..255), and so are bool,
    complex and object arrays. The one check of every entry that takes images."""
    arr = np.asarray(images)
    if arr.dtype != np.uint8 and arr.dtype.kind != "f":
        raise TypeError(f"images have dtype {arr.dtype}; pivot takes uint8 pixels (0..255, normalized with the "
                        f"model's config.input_normalization) or floats already normalized; convert other "
                        f"integer images yourself (e.g. to uint8, or to normalized float32)")
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"images hold {bad} NaN or infinite value(s); every pixel must be finite")
    return arr


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside pivot, seen from the function calling this one
    (a warning then names the user's line, whichever entry took the images)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def prepare_images(config: ViTConfig, images) -> np.ndarray:
    """Images as the engine takes them, the one place every entry that takes images prepares them
    (``ViT.__call__``, ``forward_branches`` and every other entry, at every precision): float32,
    C-contiguous, of the model's shape, finite. uint8 pixels (0..255) are normalized with the model's
    ``config.input_normalization``, ``(pixel / 255 - mean) / std`` per channel; float images are
    taken as already normalized, and ones whose range says they are not (every value in [0, 1],
    or values far above what normalized pixels reach) get an ``InputNormalizationWarning``, once
    per process. Other dtypes and non-finite values are refused (``check_pixels``)."""
    global _warned_unnormalized
    arr = check_pixels(images)
    mean, std = config.input_normalization
    if arr.dtype == np.uint8:
        _validate.model_images(arr, config)  # the shape check explains
        m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
        s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
        return (arr.astype(np.float32) / np.float32(255) - m) / s
    arr = _validate.model_images(arr, config)
    if _warned_unnormalized or arr.size < 2 or min(mean) <= 0:
        return arr
    low, high = float(np.min(arr)), float(np.max(arr))
    # Normalized pixels span [-mean / std, (1 - mean) / std]: a pixel darker than the mean is negative.
    reach = max(max(abs(-m / s), abs((1 - m) / s)) for m, s in zip(mean, std))
    raw01 = 0.0 <= low and high <= 1.0 and low < high
    raw255 = 0.0 <= low and high > 4 * reach + 4 and high <= 255.0
    if raw01 or raw255:
        _warned_unnormalized = True
        kind = "in [0, 1]" if raw01 else f"in [0, {high:g}]"
        warnings.warn(f"the images are floats {kind}, which looks like unnormalized pixels: the model expects "
                      f"(pixel / 255 - mean) / std with mean {mean}, std {std} (config.input_normalization); "
                      f"pass uint8 images to have the model normalize them (warned once)",
                      InputNormalizationWarning, stacklevel=_caller_level())
    return arr


def default_threads() -> int:
    """Threads a call uses when ``threads=None``: the cores this process may run on (its affinity
    mask), capped by ``OMP_NUM_THREADS`` when set (Ray and Dask set it to a worker's CPUs, so a
    worker keeps to its allotment) and by the thread limit of pivot's OpenBLAS (so
    ``threadpoolctl.threadpool_limits`` applies)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    allotted = _env_threads("OMP_NUM_THREADS")
    if allotted is not None:
        cores = min(cores, allotted)
    return max(1, min(cores, _core.blas_user_threads()))


def _env_threads(name: str):
    """A positive thread count from environment variable ``name`` (OpenMP's list form "4,2" gives
    its first level), or None when it is unset or not a positive integer."""
    text = os.environ.get(name, "").split(",")[0].strip()
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 1 else None


def _resolve_threads(threads) -> int:
    threads = _validate.threads(threads)
    return default_threads() if threads is None else threads


def _path_text(path: np.ndarray) -> str:
    return "".join(str(int(v)) for v in path)


PRECISIONS: dict = {}
"""The precisions beyond fp32, by name: each an object with ``convert(model, **options) -> ViT``
(``ViT.with_precision``), ``is_file(path) -> bool`` and ``load(path, **options) -> ViT``
(``ViT.from_timm`` on its files). Registered by the module that implements the precision
(``pivot.quant`` registers ``"int8"``), so this module imports none of them. A model of such a
precision holds the precision's weights object (``ViT._quant``), which the one forward (``ViT._run``)
hands to the engine and which gives the precision's ``state_dict``, ``save`` and pickle."""


class ViT:
    """A timm ``VisionTransformer`` (DeiT family) or an LV-ViT running on pivot's C engine on CPU,
    at one of the precisions ``"fp32"`` (what this constructor builds) or ``"int8"`` (timm ViTs
    only: ``pivot.quantize(model, calibration_images)``, ``pivot.quant.load``; see ``precision``
    and ``with_precision``). Every precision has the same API: ``__call__``, ``forward_branches``,
    ``with_path``, ``state_dict``, ``save``, pickling.

    ``weights`` maps timm state-dict keys to numeric arrays (any real dtype, converted to float32);
    keys and shapes must match ``config.weight_shapes()`` exactly. The model keeps a private
    float32 copy, so later changes to the caller's arrays do not affect it.

    ``path`` (length ``config.depth``, values 0/1, default all ones) selects which encoders run
    their attention; a skipped encoder computes ``x + mlp(norm2(x))`` only (LV-ViT:
    ``x + mlp(norm2(x)) / skip_lam``). Calls use it when they pass ``path=None``.

    LV-ViT configs (``ViTConfig.preset("lvvit_s")``) take the TokenLabeling checkpoint's keys;
    BatchNorm ``num_batches_tracked`` counters in ``weights`` are ignored. The stem's BatchNorm is
    folded into its convolutions when the model is built (see ``pivot.lvvit``).

    Example::

        model = pivot.ViT.random(pivot.ViTConfig.preset("deit_tiny_patch16_224"))
        logits = model(images)                          # (B, 1000) float32
        logits = model(images, path=[1, 1, 0, 1] * 3)   # skip three attentions
    """

    def __init__(self, config: ViTConfig, weights, path=None):
        if not isinstance(config, ViTConfig):
            raise TypeError(f"config must be a pivot.ViTConfig, got {type(config).__name__}")
        if not hasattr(weights, "keys") or not hasattr(weights, "__getitem__"):
            raise TypeError(f"weights must be a mapping of timm key -> array, got {type(weights).__name__}")
        shapes = config.weight_shapes()
        missing = [k for k in shapes if k not in weights]
        unexpected = sorted(str(k) for k in weights.keys() if k not in shapes and not _batchnorm_counter(k, shapes))
        problems = []
        arrays = []
        for key, shape in shapes.items():
            if key not in weights:
                continue
            value = weights[key]
            try:
                arr = np.asarray(value)
            except Exception as exc:  # e.g. a tensor that needs .detach()
                problems.append(f"{key}: cannot be read as an array ({exc})")
                continue
            if arr.dtype == bool or arr.dtype.kind not in "fiu":
                problems.append(f"{key}: dtype {arr.dtype} is not a real numeric type")
            elif arr.shape != tuple(shape):
                problems.append(f"{key}: shape {arr.shape}, expected {tuple(shape)}")
            else:
                arrays.append(arr)
        if missing or unexpected or problems:
            lines = []
            if missing:
                lines.append(f"missing keys ({len(missing)}): " + ", ".join(missing))
            if unexpected:
                lines.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected))
            if problems:
                lines.append(f"wrong shapes or dtypes ({len(problems)}): " + "; ".join(problems))
            raise ValueError("weights do not match the config:\n  " + "\n  ".join(lines))
        if config.is_timm_vit:
            params = np.concatenate([a.astype(np.float32, copy=False).ravel() for a in arrays])
        else:
            params = _lvvit.pack(config, dict(zip(shapes, arrays)))
        self._init(config, params, path)

    def _init(self, config, params, path, quantized=None):
        self._quant = quantized  # the encoders' weights at another precision (PRECISIONS), or None for fp32
        self._engine_floats = _core.model_num_params(config)[0]
        if quantized is not None:  # params: the fp32 stem, tokens and heads without the blocks
            expected, self._stem = quantized.stem_head_floats, None
            self._engine_floats = expected
        elif config.is_timm_vit:
            expected, self._stem = self._engine_floats, None
        else:  # LV-ViT features: the engine's part of params, then the raw stem (pivot/lvvit.py)
            expected = _lvvit.engine_floats(config) + sum(int(np.prod(config.weight_shapes()[k]))
                                                          for k in _lvvit.stem_keys(config))
            if _lvvit.engine_floats(config) != self._engine_floats:
                raise ValueError("internal: pivot/lvvit.py and the C engine disagree on the parameter layout")
            self._stem = _lvvit.folded_stem(config, params)
        if params.shape != (expected,):
            raise ValueError(f"internal: {params.size} parameters, the engine expects {expected}")
        params.flags.writeable = False  # shared by with_path() copies; never written
        self._config = config
        self._params = params
        self._pack_cell = [None]  # (level, packed Linear weights), built on first use, shared by with_path()
        self._path = self._checked_path(path)
        self._path.flags.writeable = False

    @classmethod
    def _from_params(cls, config, params, path, quantized=None):
        model = cls.__new__(cls)
        model._init(config, params, path, quantized)
        return model

    def __reduce__(self):
        # Pickled as config, flat weights, path and the precision's weights object (which pickles
        # as its own tensors): nothing of the C side (packed weights) crosses a process; the
        # receiver packs again. Used by pivot.distributed's workers.
        return ViT._from_params, (self._config, self._params, self._path, self._quant)

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> ViTConfig:
        """The model's shape (a frozen ``pivot.ViTConfig``)."""
        return self._config

    @property
    def path(self) -> np.ndarray:
        """Default attention path: read-only uint8 array of length depth, 1 = attention active."""
        return self._path

    @property
    def precision(self) -> str:
        """``"fp32"`` or ``"int8"`` (``pivot.quantize``): the arithmetic of the encoders."""
        return "fp32" if self._quant is None else self._quant.name

    @property
    def quantization(self):
        """The precision's settings beyond fp32 (int8: a ``pivot.quant.Int8Weights`` with ``per_token``,
        ``kernel``, ``info``), or None for an fp32 model."""
        return self._quant

    def with_precision(self, precision: str, **options) -> "ViT":
        """This model at ``precision``: ``"fp32"`` (an int8 model dequantized: its int8 weights
        times their scales, the activations in float again) or ``"int8"`` (from an fp32 model,
        ``calibration_images=`` and the options of ``pivot.quantize``; from an int8 model, the same
        weights (shared) with other run-time options, e.g. ``kernel="avx2"``). The path is kept."""
        if precision == "fp32":
            if options:
                raise TypeError(f"with_precision('fp32') takes no options, got {sorted(options)}")
            return self if self._quant is None else self._quant.dequantized(self)
        maker = PRECISIONS.get(precision)
        if maker is None:
            raise ValueError(f"precision must be one of {['fp32', *PRECISIONS]}, got {precision!r}")
        return maker.convert(self, **options)

    @property
    def num_params(self) -> int:
        """Number of weights (floats; BatchNorm running statistics included, zero qkv biases not)."""
        return int(sum(int(np.prod(shape)) for shape in self._config.weight_shapes().values()))

    def __repr__(self) -> str:
        c = self._config
        active = path_effort(self._path)
        return (f"ViT(img_size={c.img_size}, patch_size={c.patch_size}, in_chans={c.in_chans}, "
                f"embed_dim={c.embed_dim}, depth={c.depth}, num_heads={c.num_heads}, mlp_hidden={c.mlp_hidden}, "
                f"num_classes={c.num_classes}, distilled={c.distilled}, "
                + ("" if not c.has_lvvit_features and c.qkv_bias else f"stem={c.stem}, skip_lam={c.skip_lam}, aux_head={c.aux_head}, "
                   f"qkv_bias={c.qkv_bias}, ")
                + "".join(f"{f}={getattr(c, f)!r}, " for f in ("class_token", "reg_tokens", "no_embed_class",
                          "global_pool", "fc_norm", "norm_pre", "layer_scale", "act", "patch_bias", "qk_norm",
                          "final_norm", "pool_include_prefix", "scale_attn_norm", "scale_mlp_norm", "norm_layer",
                          "mlp_layer", "proj_bias", "patch_norm")
                          if getattr(c, f) != getattr(ViTConfig, f))
                + f"params={self.num_params / 1e6:.2f}M, precision={self.precision}"
                + ("" if self._quant is None else f" ({self._quant.describe()})") + ", "
                f"path={_path_text(self._path)} ({active}/{c.depth} attentions active), "
                f"gflops={flops(self) / 1e9:.2f}/image)")

    # ------------------------------------------------------------------ inference
    def _checked_path(self, path) -> np.ndarray:
        # 2 = reuse the nearest earlier active encoder's attention probabilities (pivot.modes)
        arr = normalize_path(path, self._config.depth, allow_reuse=True)
        if (arr == 2).any() and (self._config.attention != "softmax" or self._config.has_lvvit_features):
            raise ValueError("path value 2 (attention reuse) needs softmax attention on a timm ViT "
                             f"(this model: attention={self._config.attention!r}, stem={self._config.stem!r})")
        return arr

    def _run(self, images, path, threads, capture=False, capture_probs=False, capture_inputs=False):
        """The one forward call of every precision and entry: the images prepared
        (``prepare_images``), then logits, or with capture / capture_probs (logits, attn, mlp,
        probs or None), or with capture_inputs {"logits", "qkv_in", "qkv", "proj_in", "fc1_in",
        "fc2_in"} (every encoder's Linear inputs, for int8 calibration)."""
        images = prepare_images(self._config, images)
        path = self._path if path is None else self._checked_path(path)
        out = _core.vit_forward(images, self._params[:self._engine_floats], self._config, path,
                                _resolve_threads(threads), capture=capture, capture_probs=capture_probs,
                                capture_inputs=capture_inputs, packed=self._packed(), stem=self._stem,
                                int8=self._quant)
        return out, path

    def __call__(self, images, path=None, threads=None) -> np.ndarray:
        """Logits (B, num_classes) float32 for NCHW images (B, in_chans, img_size, img_size):
        normalized floats, or uint8 pixels.

        ``path=None`` uses ``self.path``; ``threads=None`` uses every core of the process.
        The GIL is released while the C engine runs. uint8 images (raw pixels) are normalized
        with ``config.input_normalization`` first (see ``prepare_images``).
        """
        return self._run(images, path, threads)[0]

    def forward_branches(self, images, path=None, threads=None):
        """``(logits, attn_outputs, mlp_outputs)``: per encoder, the attention-branch output (after
        proj) and the MLP-branch output (after fc2), each (B, T, C) float32 before the residual add.
        A skipped encoder's attention output is None (a reusing encoder's, path value 2, is
        captured like an active one's). For LV-ViT they are taken before the division
        by ``skip_lam`` (what the ``attn`` / ``mlp`` modules return; CKA is scale-invariant, so
        either choice gives the same CKA)."""
        (logits, attn, mlp, _), path = self._run(images, path, threads, True)
        attn_iter = iter(attn)
        attn_outputs = [next(attn_iter) if active else None for active in path]
        return logits, attn_outputs, list(mlp)

    def with_path(self, path) -> "ViT":
        """The same weights (shared, not copied) with another default path."""
        model = ViT._from_params(self._config, self._params, path, self._quant)
        model._pack_cell = self._pack_cell  # share the packed weights too
        return model

    def _packed(self):
        """The Linear weights re-laid out for the engine's AVX2, AVX-512 or AMX GEMM (csrc/gemm.h),
        packed on first use and kept (about the size of the weights again); None at the portable
        level (``pivot._core.simd_level()`` 0), where the engine runs OpenBLAS on ``params``. The
        layout depends on the level, so a level change (tests) packs again. An int8 model packs its
        fp32 patch embedding alone (``vit_pack_stem``): its encoders carry their own int8 packing."""
        level = _core.simd_level()
        if level < 1:
            return None
        if self._pack_cell[0] is None or self._pack_cell[0][0] != level:
            pack = _core.vit_pack if self._quant is None else _core.vit_pack_stem
            self._pack_cell[0] = (level, pack(self._params[:self._engine_floats], self._config))
        return self._pack_cell[0][1]

    # ------------------------------------------------------------------ weights
    def state_dict(self) -> dict:
        """timm key -> float32 array (fresh copies, in timm's order; LV-ViT: the TokenLabeling
        checkpoint's keys, BatchNorm unfolded, without num_batches_tracked). An int8 model gives its
        stored tensors: int8 Linear weights of the encoders with their float32 ``.weight_scale``,
        ``blocks.i.act_quant`` (``pivot.quant.quantized_shapes``)."""
        if self._quant is not None:
            return self._quant.state_dict()
        out, offset = {}, 0
        if not self._config.is_timm_vit:
            where = _lvvit.offsets(self._config)
            for key, shape in self._config.weight_shapes().items():
                offset = where[key][0]
                out[key] = self._params[offset:offset + int(np.prod(shape))].reshape(shape).copy()
            return out
        for key, shape in self._config.weight_shapes().items():
            n = int(np.prod(shape))
            out[key] = self._params[offset:offset + n].reshape(shape).copy()
            offset += n
        return out

    @classmethod
    def random(cls, config: ViTConfig, seed: int = 0, path=None) -> "ViT":
        """A model with timm-like random init: truncated normal (std 0.02, cut at 2 std) for Linear,
        patch-embedding, position and class/dist token weights; zero biases; LayerNorm ones/zeros.
        LV-ViT's convolutions (stem and proj) keep torch's default init and its BatchNorm starts as
        the identity (``pivot.lvvit.random_stem_weight``)."""
        if not isinstance(config, ViTConfig):
            raise TypeError(f"config must be a pivot.ViTConfig, got {type(config).__name__}")
        rng = np.random.default_rng(seed)
        weights = {}
        conv_keys = set(_lvvit.stem_keys(config))
        if conv_keys:
            conv_keys.add("patch_embed.proj.weight")
        for key, shape in config.weight_shapes().items():
            if key in conv_keys:
                weights[key] = _lvvit.random_stem_weight(rng, key, shape)
            elif key.endswith("norm1.weight") or key.endswith("norm2.weight") or key == "norm.weight":
                weights[key] = np.ones(shape, np.float32)
            elif key.endswith(".bias"):
                weights[key] = np.zeros(shape, np.float32)
            else:
                weights[key] = _trunc_normal(rng, shape, 0.02)
        return cls(config, weights, path=path)

    @classmethod
    def from_timm(cls, source, num_heads=None, path=None, **overrides) -> "ViT":
        """Load a timm model: a live ``timm`` VisionTransformer (config read from its modules), a
        ``.safetensors`` / ``.npz`` / ``.pth`` file or a dict of arrays.

        For files and dicts the config comes from the file's pivot metadata (files written by
        ``save``), else from the key names and shapes, with the head count from a ``config.json``
        beside the file or ``num_heads=`` (required otherwise); ``overrides`` replace config
        fields. See ``pivot.checkpoints``. A file of another precision that ``save`` wrote (an int8
        model) loads as that precision, with its own config.
        """
        from . import checkpoints, io as _io

        if isinstance(source, (str, bytes, os.PathLike)):
            for name, maker in PRECISIONS.items():
                if maker.is_file(source):
                    if num_heads is not None or overrides:
                        raise ValueError(f"{os.fsdecode(source)} is a pivot {name} model file, which holds its "
                                         "own config: num_heads and config overrides do not apply")
                    model = maker.load(source)
                    return model if path is None else model.with_path(path)
        config, state, metadata = checkpoints.load_timm(source, num_heads=num_heads, **overrides)
        if path is None and "pivot.path" in metadata:
            path = _io.path_from_metadata(metadata["pivot.path"], config.depth, repr(source))
        return cls(config, state, path=path)

    @classmethod
    def from_transformers(cls, source, path=None) -> "ViT":
        """Load a Hugging Face ``transformers`` ``ViTForImageClassification`` /
        ``DeiTForImageClassification``: the model object, or a ``save_pretrained`` directory
        (read without transformers). See ``pivot.checkpoints.load_transformers``."""
        from . import checkpoints

        config, state = checkpoints.load_transformers(source)
        return cls(config, state, path=path)

    def save(self, path) -> None:
        """Write the weights as safetensors under timm's key names, with the config and the default
        path as metadata, so that ``ViT.from_timm(path)`` gives back the same model bit for bit
        (an int8 model: its int8 file format, ``pivot.quant``, read by ``ViT.from_timm`` and
        ``pivot.quant.load``)."""
        from . import io as _io

        if self._quant is not None:
            return self._quant.save(path, self)

        metadata = {
            "pivot.config": json.dumps(dataclasses.asdict(self._config)),
            "pivot.path": _path_text(self._path),
        }
        _io.save_safetensors(path, self.state_dict(), metadata)


def _batchnorm_counter(key, shapes) -> bool:
    """True for a BatchNorm ``num_batches_tracked`` counter of a layer in ``shapes`` (not a weight)."""
    suffix = "num_batches_tracked"
    return isinstance(key, str) and key.endswith("." + suffix) and key[:-len(suffix)] + "running_mean" in shapes


def _trunc_normal(rng, shape, std):
    x = rng.standard_normal(shape)
    bad = np.abs(x) > 2.0
    while bad.any():  # resample outside [-2, 2] std, like torch.nn.init.trunc_normal_
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > 2.0
    return (x * std).astype(np.float32)


def flops(model_or_config, path=None) -> int:
    """FLOPs of one image's forward pass: 2 x multiply-accumulates of every matrix product
    (patch embedding (LV-ViT: its three stem convolutions too), qkv, q k^T, softmax x v, proj, fc1,
    fc2, head(s), LV-ViT's aux head over the patch tokens, the attention-pooling head of
    ``global_pool="map"``). Prefix tokens (class, distillation, registers) count as tokens.

    Elementwise work (LayerNorm, softmax, GELU, layer scale, pooling, bias and residual adds) is not counted; it is
    below 1% of the total for DeiT sizes. A skipped encoder counts its MLP only. A reusing
    encoder (path value 2) counts V (T C^2), probabilities x V and proj; ReLU linear attention
    counts qkv, phi(K)^T [V | 1] and phi(Q) [KV | ksum] (2 T C (hd + 1)) and proj.
    ``path=None`` uses the model's path (all ones for a config).
    """
    if isinstance(model_or_config, ViT):
        config = model_or_config.config
        path = model_or_config.path if path is None else normalize_path(path, config.depth, allow_reuse=True)
    elif isinstance(model_or_config, ViTConfig):
        config = model_or_config
        path = normalize_path(path, config.depth, allow_reuse=True)
    else:
        config = getattr(model_or_config, "config", None)
        if not isinstance(config, ViTConfig):
            raise TypeError(f"flops takes a pivot.ViT or pivot.ViTConfig, got {type(model_or_config).__name__}")
        own = getattr(model_or_config, "path", None)
        path = normalize_path(own if path is None else path, config.depth, allow_reuse=True)
    c = config
    T, C, H = c.num_tokens, c.embed_dim, c.mlp_hidden
    macs = _lvvit.stem_macs(c) + c.num_patches * c.proj_in_chans * c.proj_kernel ** 2 * C  # patch embedding
    attention = T * C * 3 * C + 2 * T * T * C + T * C * C               # qkv, q k^T, softmax x v, proj
    # reuse (2) and ReLU linear attention
    if c.attention == "relu_linear":
        attention = T * C * 3 * C + 2 * T * C * (c.head_dim + 1) + T * C * C
    reuse = T * C * C + T * T * C + T * C * C                           # v, probs x v, proj
    macs += int((path == 1).sum()) * attention + int((path == 2).sum()) * reuse
    macs += c.depth * (3 if c.mlp_layer == "swiglu" else 2) * T * C * H  # every MLP (SwiGLU: fc1_g, fc1_x, fc2)
    macs += (2 if c.distilled else 1) * C * c.num_classes               # head(s) (none when headless)
    if c.global_pool == "map":                                          # attention-pooling head
        Tp = T if c.pool_include_prefix else c.num_patches              # the tokens it attends over
        macs += Tp * C * 2 * C + 2 * C * C + 2 * Tp * C + 2 * C * H      # kv, q + proj, q k^T + p v, mlp
    if c.aux_head:
        macs += c.num_patches * C * c.num_classes                       # aux head on every patch
    return 2 * int(macs)
