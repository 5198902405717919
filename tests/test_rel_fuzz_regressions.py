"""Replays the fuzz target's findings (tests/fuzz_crashers/) and its seed corpus (fuzz/corpus/)
through fuzz/fuzz_loaders.py's run_one: each must load or be refused with the reader's own
error, never anything else (no atheris needed)."""
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CRASHERS = sorted((ROOT / "tests" / "fuzz_crashers").iterdir())
SEEDS = sorted((ROOT / "fuzz" / "corpus").iterdir())


@pytest.fixture(scope="module")
def run_one():
    spec = importlib.util.spec_from_file_location("fuzz_loaders", ROOT / "fuzz" / "fuzz_loaders.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_one


@pytest.mark.parametrize("path", CRASHERS + SEEDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fuzz_input(run_one, path):
    run_one(path.read_bytes())


def test_f64_beyond_float32_is_refused(tmp_path):
    import pivot
    data = (ROOT / "tests" / "fuzz_crashers" / "safetensors_f64_beyond_float32").read_bytes()[1:]
    (tmp_path / "w.safetensors").write_bytes(data)
    with pytest.raises(pivot.WeightsFileError, match="float32 range"):
        pivot.io.load_state_dict(tmp_path / "w.safetensors")


def test_zlib_error_in_gzip_idx_is_a_dataset_error(tmp_path):
    import pivot
    data = (ROOT / "tests" / "fuzz_crashers" / "idx_gzip_zlib_error").read_bytes()[1:]
    (tmp_path / "x.idx").write_bytes(data)
    with pytest.raises(pivot.datasets.DatasetError, match="gzip"):
        pivot.datasets.read_idx(tmp_path / "x.idx", 1)
