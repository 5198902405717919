"""NumPy float64 references for the search area's C kernels (csrc/entropy.c)."""
import numpy as np

__all__ = ["softmax_entropy"]


def softmax_entropy(logits):
    """Softmax (B, K) and entropy normalized by log K (B,) of finite logits (B, K), in float64.

    Equation 3 of the PIVOT paper: E = -(1 / log K) * sum_k p_k log p_k, with 0 log 0 = 0.
    """
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"logits must be (B, K) with K >= 2, got shape {x.shape}")
    shifted = x - x.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    probs = e / e.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0, probs * np.log(probs), 0.0)
    entropy = -plogp.sum(axis=1) / np.log(x.shape[1])
    return probs, np.clip(entropy, 0.0, 1.0)
