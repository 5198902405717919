import sys

import numpy as np
import pytest


def pytest_configure(config):
    # Registered here and in pyproject.toml, so that a run from another rootdir knows it too.
    config.addinivalue_line("markers", "slow: minutes-long tests (the full zoo on the test set, the notebooks, a "
                                       "Ray cluster, spawned fine-tunes); `pytest -m slow` runs them, CI's second step")


@pytest.fixture(scope="session", autouse=True)
def _torch_on_one_thread():
    """torch on one thread: the tests' torch models are tiny, and torch's OpenMP pool on two busy
    cores spins (a 60-step fit of the 3-encoder test model: 0.3 s on one thread, 15 s on two)."""
    torch = sys.modules.get("torch")  # imported by the test modules that need it; never imported here
    if torch is not None:
        torch.set_num_threads(1)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=[0, 1, 2])
def vector_simd_level(request):
    """Runs a test at SIMD level 0 (portable), 1 (AVX2) and 2 (AVX-512), each skipped where the CPU
    lacks it, and restores the level the run started with."""
    from pivot import _core
    start = _core.simd_level()
    if request.param > _core.set_simd_level(3):
        _core.set_simd_level(start)
        pytest.skip(f"CPU without SIMD level {request.param}")
    _core.set_simd_level(request.param)
    yield request.param
    _core.set_simd_level(start)
