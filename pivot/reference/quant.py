"""Plain NumPy reference of pivot's int8 path (csrc/quant.c), for the tests.

Integer products are computed in int64 and must equal the C kernels' int32 results bit for bit.
Quantizers follow csrc/quant.c's float32 arithmetic (round half to even). The quantized forward
(``forward_branches``) mirrors the int8 ``pivot.ViT``'s engine step by step: the float steps
that stay float (LayerNorm, softmax, GELU) call the fast-path float kernels the int8 forward uses
(`layernorm_fast`, `softmax_fast`, `gelu_fast`), so the whole
forward can be held equal to the C engine's.
"""
from __future__ import annotations

import numpy as np

from .._native import _core

__all__ = ["int8_gemm", "quantize_u8", "quantize_s8", "row_params", "quantize_u8_rows", "dequant_linear", "embed_tokens",
           "forward_branches"]

_F = np.float32


def int8_gemm(a, zero_point, w) -> np.ndarray:
    """out[m, n] = sum_k (a[m, k] - zero_point[m]) * w[n, k] as int32 (a uint8, w int8)."""
    a = np.asarray(a, dtype=np.int64)
    zp = np.asarray(zero_point, dtype=np.int64).reshape(-1, 1)
    out = (a - zp) @ np.asarray(w, dtype=np.int64).T
    if out.size and (out.max() > 2**31 - 1 or out.min() < -2**31):
        raise OverflowError("int8_gemm: a sum does not fit in int32")
    return out.astype(np.int32)


def _codes(x, inv_scale, zp) -> np.ndarray:
    v = np.asarray(x, dtype=_F) * np.asarray(inv_scale, dtype=_F)
    v = np.where(np.isnan(v), _F(0), v)
    v = np.clip(v, _F(-512), _F(512))
    return np.clip(np.rint(v).astype(np.int32) + np.asarray(zp, dtype=np.int32), 0, 255)


def quantize_u8(x, inv_scale, zp) -> np.ndarray:
    """clamp(rint(x * inv_scale) + zp, 0, 255) as uint8; inv_scale and zp broadcast (per row: shape (N, 1))."""
    return _codes(x, inv_scale, zp).astype(np.uint8)


def quantize_s8(x, inv_scale) -> np.ndarray:
    """Symmetric int8: clamp(rint(x * inv_scale), -127, 127)."""
    return np.maximum(_codes(x, inv_scale, 128) - 128, -127).astype(np.int8)


def row_params(x):
    """Per-row dynamic asymmetric parameters (scale, inv_scale, zp) of a float32 (N, C) array."""
    x = np.asarray(x, dtype=_F)
    finite = np.where(np.isfinite(x), x, _F(0))
    lo = np.minimum(finite.min(axis=1), _F(0))
    hi = np.maximum(finite.max(axis=1), _F(0))
    scale = (hi - lo) / _F(255)
    scale = np.where((scale > 0) & np.isfinite(scale), scale, _F(1)).astype(_F)
    inv = (_F(1) / scale).astype(_F)
    zp = _codes(-lo, inv, 0)
    return scale, inv, zp


def quantize_u8_rows(x):
    """(uint8 codes, scale, zp) with per-row dynamic ranges (csrc/quant.c pivot_quantize_u8_rows)."""
    scale, inv, zp = row_params(x)
    return quantize_u8(x, inv[:, None], zp[:, None]), scale, zp.astype(np.int32)


def dequant_linear(acc, row_scale, col_scale, bias=None) -> np.ndarray:
    """float32 (acc) * (row_scale[m] * col_scale[n]) (+ bias[n]), in csrc/quant.c's order."""
    scale = np.asarray(row_scale, _F).reshape(-1, 1) * np.asarray(col_scale, _F).reshape(1, -1)
    y = acc.astype(_F) * scale
    return y if bias is None else y + np.asarray(bias, _F)


# Activation parameters of a block, in csrc/quant.h's order.
ACT_FIELDS = ("qkv_in_scale", "qkv_in_zp", "q_scale", "q_zp", "k_scale", "v_scale", "proj_in_scale",
              "proj_in_zp", "fc1_in_scale", "fc1_in_zp", "fc2_in_scale", "fc2_in_zp")


def _quant_input(x, act, name, per_token):
    """(codes, row scales, zero points) of a linear layer's input."""
    if per_token:
        return quantize_u8_rows(x)
    scale, zp = _F(act[ACT_FIELDS.index(name + "_scale")]), int(act[ACT_FIELDS.index(name + "_zp")])
    n = x.shape[0]
    return (quantize_u8(x, _F(1) / scale, zp), np.full(n, scale, _F), np.full(n, zp, np.int32))


def _linear(x, qw, wscale, bias, act, name, per_token):
    a, rs, zp = _quant_input(x, act, name, per_token)
    return dequant_linear(int8_gemm(a, zp, qw), rs, wscale, bias)


def _layernorm(x, w, b, eps):
    x = np.ascontiguousarray(x, _F)
    rows = _core.layernorm_fast(x.reshape(-1, x.shape[-1]), np.asarray(w, _F), np.asarray(b, _F), float(eps))
    return rows.reshape(x.shape)


def forward_branches(qmodel, images, path=None):
    """(logits, attn_outputs, mlp_outputs) of an int8 ``pivot.ViT`` (``pivot.quantize``) on
    prepared (float32, normalized) images, in NumPy.

    Every matrix product of the encoders is an integer product of quantized operands, as in
    csrc/quant.c; the patch embedding and the head are float32, as in the engine."""
    cfg = qmodel.config
    path = qmodel.path if path is None else qmodel._checked_path(path)
    weights = qmodel.quantization
    per_token = weights.per_token
    C, NH, eps = cfg.embed_dim, cfg.num_heads, cfg.norm_eps
    hd = C // NH
    x = embed_tokens(cfg, qmodel.state_dict(), np.asarray(images, _F))
    B, T, _ = x.shape
    x = x.reshape(B * T, C)
    attn_outputs, mlp_outputs = [], []
    kept_probs = None
    for i in range(cfg.depth):
        blk = weights.block(i)
        act = blk["act"]
        mode = int(path[i])
        attn_out = None
        if mode:
            ln = _layernorm(x, blk["norm1.weight"], blk["norm1.bias"], eps)
            qkv = _linear(ln, blk["attn.qkv.weight"], blk["attn.qkv.weight_scale"], blk["attn.qkv.bias"], act,
                          "qkv_in", per_token)
            q8 = quantize_u8(qkv[:, :C], _F(1) / _F(act[2]), int(act[3])).reshape(B, T, NH, hd)
            k8 = quantize_s8(qkv[:, C:2 * C], _F(1) / _F(act[4])).reshape(B, T, NH, hd)
            v8 = quantize_s8(qkv[:, 2 * C:], _F(1) / _F(act[5])).reshape(B, T, NH, hd)
            score_scale = _F(act[2]) * _F(act[4]) * (_F(1) / np.sqrt(_F(hd)))
            pv_scale = _F(act[5]) * (_F(1) / _F(255))
            cat = np.empty((B, T, C), _F)
            if mode == 1:
                probs8 = np.empty((B, NH, T, T), np.uint8)
                for b in range(B):
                    for h in range(NH):
                        acc = int8_gemm(q8[b, :, h], np.full(T, int(act[3])), k8[b, :, h])
                        scores = acc.astype(_F) * (_F(1) * score_scale)
                        probs = _core.softmax_fast(np.ascontiguousarray(scores))
                        probs8[b, h] = quantize_u8(probs, _F(255), 0)
                kept_probs = probs8
            for b in range(B):
                for h in range(NH):
                    acc = int8_gemm(kept_probs[b, h], np.zeros(T, np.int64), v8[b, :, h].T)
                    cat[b, :, h * hd:(h + 1) * hd] = acc.astype(_F) * (_F(1) * pv_scale)
            attn_out = _linear(cat.reshape(B * T, C), blk["attn.proj.weight"], blk["attn.proj.weight_scale"],
                               blk["attn.proj.bias"], act, "proj_in", per_token)
            x = x + attn_out
        ln = _layernorm(x, blk["norm2.weight"], blk["norm2.bias"], eps)
        hidden = _linear(ln, blk["mlp.fc1.weight"], blk["mlp.fc1.weight_scale"], blk["mlp.fc1.bias"], act, "fc1_in",
                         per_token)
        hidden = _core.gelu_fast(np.ascontiguousarray(hidden).reshape(-1, hidden.shape[-1])).reshape(hidden.shape)
        mlp_out = _linear(hidden, blk["mlp.fc2.weight"], blk["mlp.fc2.weight_scale"], blk["mlp.fc2.bias"], act,
                          "fc2_in", per_token)
        x = x + mlp_out
        attn_outputs.append(None if attn_out is None else attn_out.reshape(B, T, C))
        mlp_outputs.append(mlp_out.reshape(B, T, C))
    logits = _head(cfg, qmodel.state_dict(), x.reshape(B, T, C))
    return logits, attn_outputs, mlp_outputs


def embed_tokens(c, w, images) -> np.ndarray:
    """Float32 tokens (B, T, C): patch embedding, class (and dist) tokens, position embedding, in
    the engine's order of operations (csrc/engine.c embed_phase: the patch product in chunks of
    256 patches of one image, by pivot's packed GEMM from the AVX2 level (``_core.simd_level()``
    1 up, the layout of ``_core.vit_pack_stem``; per-row arithmetic, so the engine's finer split
    of a batch smaller than its thread count gives the same bits) or its OpenBLAS below, then +
    (bias + position)), so that the int8 forward can be held equal to it."""
    B, P, G = images.shape[0], c.patch_size, c.img_size // c.patch_size
    patches = images.reshape(B, c.in_chans, G, P, G, P).transpose(0, 2, 4, 1, 3, 5).reshape(B, G * G, -1)
    weight = np.ascontiguousarray(w["patch_embed.proj.weight"].reshape(c.embed_dim, -1), _F)
    if _core.simd_level() >= 1:
        packed = _core.gemm_pack(weight)

        def product(rows):
            return _core.linear_forward(rows, None, None, 0, None, False, 1.0, packed, c.embed_dim)
    else:
        def product(rows):
            return _core.sgemm_nt(rows, weight)
    chunks = [product(np.ascontiguousarray(patches[b, p0:p0 + 256], _F))
              for b in range(B) for p0 in range(0, G * G, 256)]
    x = np.concatenate(chunks).reshape(B, G * G, c.embed_dim)
    n = c.num_prefix_tokens
    pos = w["pos_embed"].reshape(-1, c.embed_dim).astype(_F)
    x = x + (w["patch_embed.proj.bias"].astype(_F) + pos[n:])
    prefix = [np.broadcast_to(w["cls_token"].reshape(1, 1, -1) + pos[0], (B, 1, c.embed_dim))]
    if c.distilled:
        prefix.append(np.broadcast_to(w["dist_token"].reshape(1, 1, -1) + pos[1], (B, 1, c.embed_dim)))
    return np.ascontiguousarray(np.concatenate(prefix + [x], axis=1), dtype=_F)


def _head(c, w, x) -> np.ndarray:
    """Logits from the final tokens (B, T, C) as the engine computes them: norm of the class (and
    dist) token, head(s) by pivot's OpenBLAS, + bias, the two heads averaged."""
    n = 2 if c.distilled else 1
    tok = _layernorm(np.ascontiguousarray(x[:, :n]).reshape(-1, c.embed_dim), w["norm.weight"], w["norm.bias"],
                     c.norm_eps).reshape(-1, n, c.embed_dim)

    def linear(t, key):
        return _core.sgemm_nt(np.ascontiguousarray(t, _F), np.ascontiguousarray(w[key + ".weight"], _F)) + w[key + ".bias"]

    logits = linear(tok[:, 0], "head")
    if c.distilled:
        logits = (logits + linear(tok[:, 1], "head_dist")) / _F(2)
    return np.ascontiguousarray(logits, dtype=_F)
