"""Build of the pivot._core extension.

BLAS: by default the extension links the OpenBLAS shipped by the ``scipy-openblas32`` wheel
(symbols carry a ``scipy_`` prefix, mapped in csrc/pivot_blas.h). Set ``PIVOT_BLAS=system`` to
link a system OpenBLAS found by pkg-config instead (``apt-get install libopenblas-dev``).
Set ``PIVOT_SANITIZE=1`` to build with AddressSanitizer and UndefinedBehaviorSanitizer.
"""
import glob
import os
import shlex
import subprocess

import numpy
from setuptools import Extension, setup


def blas_settings():
    if os.environ.get("PIVOT_BLAS", "scipy-openblas") == "system":
        def pkg(flag):
            out = subprocess.check_output(["pkg-config", flag, "openblas"], text=True)
            return shlex.split(out)
        cflags, libs = pkg("--cflags"), pkg("--libs")
        return dict(
            include_dirs=[f[2:] for f in cflags if f.startswith("-I")],
            library_dirs=[f[2:] for f in libs if f.startswith("-L")],
            libraries=[f[2:] for f in libs if f.startswith("-l")],
            define_macros=[("PIVOT_BLAS_SYSTEM", "1")],
        )
    import scipy_openblas32
    return dict(
        include_dirs=[scipy_openblas32.get_include_dir()],
        library_dirs=[scipy_openblas32.get_lib_dir()],
        libraries=[scipy_openblas32.get_library()],
        define_macros=[],
    )


blas = blas_settings()
extra_compile_args = ["-std=c11", "-O3", "-fno-strict-aliasing", "-Wall", "-Wextra",
                      "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
extra_link_args = ["-lm", "-lpthread"]
if os.environ.get("PIVOT_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g", "-O1"]
    extra_compile_args += san
    extra_link_args += san

core = Extension(
    "pivot._core",
    sources=sorted(glob.glob("csrc/bind/*.c")) + sorted(glob.glob("csrc/*.c")),
    include_dirs=["csrc", "csrc/bind", numpy.get_include()] + blas["include_dirs"],
    library_dirs=blas["library_dirs"],
    libraries=blas["libraries"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")] + blas["define_macros"],
    extra_compile_args=extra_compile_args,
    extra_link_args=extra_link_args,
)

setup(ext_modules=[core])
