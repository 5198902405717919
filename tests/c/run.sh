#!/usr/bin/env bash
# Builds tests/c/test_driver.c against csrc/ and runs it: plain, under AddressSanitizer +
# UndefinedBehaviorSanitizer, and (when valgrind is installed, or with --valgrind) under
# valgrind memcheck. Usage: tests/c/run.sh [--asan-only | --valgrind]
set -euo pipefail
cd "$(dirname "$0")/../.."
mode="${1:-all}"
out=build/c_tests
mkdir -p "$out"
read -r blas_inc blas_lib blas_name < <(python3 -c "import scipy_openblas32 as s; print(s.get_include_dir(), s.get_lib_dir(), s.get_library())")
common=(-std=c11 -g -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Icsrc -I"$blas_inc"
        tests/c/test_driver.c csrc/*.c -L"$blas_lib" -l"$blas_name" -Wl,-rpath,"$blas_lib" -lm -lpthread)
export OPENBLAS_NUM_THREADS=1

echo "== ASan + UBSan"
gcc -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer "${common[@]}" -o "$out/test_driver_asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$out/test_driver_asan"
[ "$mode" = "--asan-only" ] && exit 0

echo "== valgrind memcheck"
gcc -O1 "${common[@]}" -o "$out/test_driver"
if command -v valgrind >/dev/null; then
    valgrind --tool=memcheck --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect -q "$out/test_driver"
elif [ "$mode" = "--valgrind" ]; then
    echo "valgrind not installed (apt-get install -y valgrind)" >&2; exit 2
else
    echo "valgrind not installed: skipped (apt-get install -y valgrind)"; "$out/test_driver"
fi
