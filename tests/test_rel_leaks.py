"""Reliability: process RSS stays flat over repeated calls. A short version of
``python tests/leakcheck.py`` (10,000 calls of every public function; numbers in docs/reliability.md)."""
import sys

import pytest

import leakcheck

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")

# The cheap cases: C calls (success and error paths) and the file readers' error paths.
CASES = ["vit_call", "vit_reuse", "vit_linear", "vit_forward_branches", "lvvit_call", "vit_bad_input_error",
         "binding_bad_path_error", "binding_overflow_error", "load_bad_file_error", "read_idx", "cka", "entropy",
         "path_score", "rank_paths", "best_paths", "sim_simulate"]
CALLS = 2000
# Second-half growth (1,000 calls after 1,300 calls of warm-up): a leak of one small array
# (>= ~200 bytes with its object) per call shows as >= 200 KiB; noise stays at 0-16 KiB.
LIMIT_KIB = 128


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return leakcheck.cases(str(tmp_path_factory.mktemp("leaks")))


@pytest.mark.parametrize("name", CASES)
def test_rss_flat(cases, name):
    result = leakcheck.measure(cases[name], CALLS, warmup=300)
    if result["second_half_growth_kib"] > LIMIT_KIB:  # one retry: allocator noise can land here
        result = leakcheck.measure(cases[name], CALLS, warmup=0)
    assert result["second_half_growth_kib"] <= LIMIT_KIB, \
        f"{name}: RSS grew {result['second_half_growth_kib']} KiB over {CALLS // 2} calls after warm-up"


def test_leakcheck_cli_runs(tmp_path, capsys):
    assert leakcheck.main(["--calls", "20", "--only", "vit_call,entropy", "--json", str(tmp_path / "r.json")]) == 0
    assert "vit_call" in capsys.readouterr().out
