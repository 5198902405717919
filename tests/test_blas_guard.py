"""The one OpenBLAS thread-count guard (csrc/threads.h): CKA calls and engine forwards interleaved
on several threads leave the user's own setting in place."""
import importlib
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pivot
from pivot import _core

cka_module = importlib.import_module("pivot.cka")
SMALL = pivot.ViTConfig(img_size=8, patch_size=4, num_classes=5, embed_dim=16, depth=2, num_heads=2)


@settings(max_examples=25, deadline=None)
@given(user=st.integers(1, 4), cka_threads=st.lists(st.integers(1, 3), min_size=1, max_size=4))
def test_interleaved_cka_and_forward_restore_the_users_count(user, cka_threads):
    model = pivot.ViT.random(SMALL, seed=0)
    images = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    acts = np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)
    _core.blas_set_num_threads(user)
    try:
        errors = []

        def work(n):
            try:
                for _ in range(3):
                    cka_module.cka(acts, acts[::-1].copy(), threads=n)
                    model(images, threads=1)
            except Exception as exc:  # surfaced below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(n,)) for n in cka_threads]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not errors
        assert _core.blas_get_num_threads() == user
        assert _core.blas_user_threads() == user
    finally:
        _core.blas_set_num_threads(1)


def test_guard_counts_nesting_and_refuses_bad_counts():
    _core.blas_set_num_threads(3)
    try:
        _core.blas_guard_enter(1)
        _core.blas_guard_enter(2)
        assert _core.blas_user_threads() == 3
        _core.blas_guard_leave()
        assert _core.blas_get_num_threads() == 2  # still held by the first caller
        _core.blas_guard_leave()
        assert _core.blas_get_num_threads() == 3
        with pytest.raises(ValueError, match="threads"):
            _core.blas_guard_enter(0)
    finally:
        _core.blas_set_num_threads(1)
