import subprocess
import sys

import pivot


def test_import_does_not_import_torch():
    code = "import sys, pivot; assert 'torch' not in sys.modules, 'pivot imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_blas_threads_roundtrip():
    old = pivot._core.blas_get_num_threads()
    pivot._core.blas_set_num_threads(1)
    assert pivot._core.blas_get_num_threads() == 1
    pivot._core.blas_set_num_threads(old)
