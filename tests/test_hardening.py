"""Hostile input and the newcomer's path, one property-based test per class of defect:
sizes read from names and metadata, files that block or are not files, numbers of the wrong kind,
metadata structure, effort keys of reuse paths, CKA of activations of any magnitude, the CLI's
bad arguments, input normalization and the messages a first-time user meets."""
import contextlib
import json
import math
import os
import pathlib
import shutil
import signal
import struct
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import pivot
from pivot import effort_search, io as pio, model as pmodel, sim
from pivot.config import MAX_DEPTH, MAX_SIZE, path_effort
from pivot.datasets import DatasetError, read_idx
from pivot.checkpoints import infer_config
from pivot.io import WeightsFileError

from _search_fakes import FakeModel, SimCalls

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=8, depth=3, num_heads=2,
                       mlp_ratio=2.0)


def examples(n):
    """Hypothesis settings: n examples, no deadline (the machine may be loaded), no database."""
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@contextlib.contextmanager
def within(seconds):
    """Fails the test (instead of hanging it) when the block runs longer than ``seconds``."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s (a blocking open or an endless read?)")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def write_safetensors(path, tensors: dict, metadata: dict | None = None):
    """A safetensors file written by hand (names and metadata are not checked)."""
    header, offset, body = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(array)), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        body += raw
    text = json.dumps(header).encode()
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(text)) + text + body)
    return path


# ------------------------------------------------------------------ sizes taken from names

block_index = st.one_of(st.integers(MAX_DEPTH, 10 ** 30).map(str),
                        st.integers(0, 10 ** 9).map(lambda v: "0" * 50 + str(v)),
                        st.integers(1, 3000).map(lambda n: "9" * n))


@examples(150)
@given(index=block_index)
def test_block_index_from_names_is_bounded_before_allocation(tmp_path, index):
    state = pivot.ViT.random(TINY).state_dict()
    state[f"blocks.{index}.norm1.weight"] = np.ones(8, np.float32)
    significant = int(index.lstrip("0") or "0") if len(index.lstrip("0")) < 40 else math.inf
    tracemalloc.start()
    try:
        with within(10):
            if significant >= MAX_DEPTH:
                with pytest.raises(WeightsFileError, match="beyond the"):
                    infer_config(state, num_heads=TINY.num_heads)
            elif significant > TINY.depth:
                with pytest.raises(ValueError, match="not contiguous"):  # refused, and cheaply
                    infer_config(state, num_heads=TINY.num_heads)
            else:  # an index the model has, or the next one, written with leading zeros
                assert infer_config(state, num_heads=TINY.num_heads).depth == max(TINY.depth, significant + 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2 ** 20, f"{peak} bytes allocated for a file of {len(state)} small tensors"


@examples(25)
@given(index=st.integers(MAX_DEPTH, 10 ** 12))
def test_block_index_in_a_file_is_refused(tmp_path, index):
    state = pivot.ViT.random(TINY).state_dict()
    state[f"blocks.{index}.x"] = np.ones(2, np.float32)
    path = write_safetensors(tmp_path / "names.safetensors", state)
    with within(10), pytest.raises(WeightsFileError, match="beyond the"):
        pivot.ViT.from_timm(path)


size_field = st.sampled_from(["img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth",
                              "num_heads", "stem_channels"])


@examples(150)
@given(field=size_field, value=st.integers(MAX_SIZE + 1, 2 ** 200))
def test_sizes_in_metadata_are_bounded(tmp_path, field, value):
    fields = dict(json.loads(json.dumps(pivot.ViTConfig().__dict__)))
    fields[field] = value
    with within(10), pytest.raises(WeightsFileError, match=field):
        pio.config_from_metadata(json.dumps(fields), "file")


# ------------------------------------------------------------------ files that block or are not files

def _special(kind, tmp_path, suffix):
    path = tmp_path / f"{kind}{suffix}"
    if path.exists() or path.is_symlink():
        return path
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:  # a name with the right suffix that leads to a character device
        path.symlink_to({"dev_zero": "/dev/zero", "dev_null": "/dev/null"}[kind])
    return path


LOADERS = {
    ".safetensors": lambda p: pio.load_state_dict(p),
    ".npz": lambda p: pio.load_state_dict(p),
    ".pth": lambda p: pio.load_state_dict(p),
    "int8.safetensors": lambda p: pivot.quant.load(p),
    "idx": lambda p: read_idx(p, 3),
    "idx.gz": lambda p: read_idx(p, 1),
}


@examples(60)
@given(kind=st.sampled_from(["fifo", "dev_zero", "dev_null", "directory"]), loader=st.sampled_from(sorted(LOADERS)))
def test_files_that_block_or_are_not_files_are_refused_quickly(tmp_path, kind, loader):
    folder = tmp_path / loader.replace(".", "_")
    folder.mkdir(exist_ok=True)
    path = _special(kind, folder, loader if loader.startswith(".") else "." + loader)
    error = DatasetError if loader.startswith("idx") else WeightsFileError
    expected = {"fifo": "a FIFO", "dev_zero": "a character device", "dev_null": "a character device",
                "directory": "a directory"}[kind]
    with within(5), pytest.raises(error, match=f"is {expected}, not a regular file"):
        LOADERS[loader](path)


def test_fashion_mnist_root_with_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "t10k-images-idx3-ubyte")
    with within(5), pytest.raises(DatasetError, match="FIFO"):
        pivot.datasets.fashion_mnist("test", root=tmp_path)


# ------------------------------------------------------------------ numbers of the wrong kind

NUMPY_INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@st.composite
def numpy_int(draw, low, high):
    kind = draw(st.sampled_from(NUMPY_INTS))
    info = np.iinfo(kind)
    lo, hi = max(low, int(info.min)), min(high, int(info.max))
    assume(lo <= hi)
    return kind(draw(st.integers(lo, hi)))


@examples(300)
@given(img=numpy_int(1, 4096), patch=numpy_int(1, 64), dim=numpy_int(1, 4096), heads=numpy_int(1, 64),
       depth=numpy_int(1, 64), classes=numpy_int(1, 100000))
def test_numpy_integers_become_python_ints(img, patch, dim, heads, depth, classes):
    try:
        config = pivot.ViTConfig(img_size=img, patch_size=patch, embed_dim=dim, num_heads=heads, depth=depth,
                                 num_classes=classes)
    except ValueError as exc:  # refused: a message naming the field or the rule, never wrapped sizes
        assert "ViTConfig" in str(exc)
        return
    for field in ("img_size", "patch_size", "embed_dim", "num_heads", "depth", "num_classes"):
        assert type(getattr(config, field)) is int
    grid = int(img) // int(patch)
    assert config.num_tokens == grid * grid + 1
    assert pivot.flops(config) == pivot.flops(pivot.ViTConfig(**{k: (int(v) if isinstance(v, np.integer) else v)
                                                               for k, v in config.__dict__.items()}))


bad_real = st.one_of(st.sampled_from([math.inf, -math.inf, math.nan, True, False, 1e308, -1.0, "1e-6", None]),
                     st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0 < v <= 1))


@examples(200)
@given(field=st.sampled_from(["norm_eps", "mlp_ratio", "skip_lam"]), value=bad_real)
def test_bad_floats_in_vit_config_name_the_field(field, value):
    assume(not (field != "norm_eps" and isinstance(value, float) and math.isfinite(value) and 0 < value <= 1e6))
    with pytest.raises(ValueError, match=f"ViTConfig.{field}"):
        pivot.ViTConfig(**{field: value})
    with pytest.raises(WeightsFileError, match=f"ViTConfig.{field}"):  # the same from file metadata
        fields = dict(pivot.ViTConfig().__dict__, **{field: value})
        pio.config_from_metadata(json.dumps(fields, allow_nan=True), "file")


HW_INTS = ["array_rows", "array_cols", "word_bytes", "ipmem_bytes", "wtmem_bytes", "opmem_bytes",
           "global_buffer_bytes", "operand_bits"]
HW_REALS = ["clock_mhz", "ps_clock_mhz", "sram_active_fraction", "softmax_cycles_per_element", "mac_energy_pj",
            "ps_static_w", "dram_bandwidth_gbps"]


@examples(300)
@given(field=st.sampled_from(HW_INTS), value=st.one_of(numpy_int(-2 ** 63, 2 ** 64 - 1), st.booleans(),
                                                       st.integers(-2 ** 70, 2 ** 70)))
def test_hardware_integers_are_python_ints_or_refused(field, value):
    try:
        hw = sim.ZCU102.replace(**{field: value})
    except ValueError as exc:
        assert f"HardwareConfig.{field}" in str(exc)
        return
    assert type(getattr(hw, field)) is int and getattr(hw, field) == int(value)
    report = sim.simulate_gemms([("l", 4, 4, 4)], hw)  # the C simulator reads every field by name
    assert math.isfinite(report.delay_ms) and math.isfinite(report.energy_j)


@examples(300)
@given(field=st.sampled_from(HW_REALS), value=st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                                        st.booleans(), st.sampled_from([1e308, 1e300, "125"])))
def test_hardware_reals_are_finite_or_refused(field, value):
    try:
        hw = sim.ZCU102.replace(**{field: value})
    except ValueError as exc:
        assert f"HardwareConfig.{field}" in str(exc)
        return
    assert type(getattr(hw, field)) is float
    report = sim.simulate(TINY, hw=hw)
    assert math.isfinite(report.delay_ms) and math.isfinite(report.energy_j) and report.delay_ms > 0


# ------------------------------------------------------------------ metadata structure

json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     st.text(max_size=20)),
                           lambda children: st.one_of(st.lists(children, max_size=4),
                                                      st.dictionaries(st.text(max_size=10), children, max_size=4)),
                           max_leaves=30)


@examples(300)
@given(text=st.one_of(st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
                      st.integers(1, 200_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
                      st.integers(1, 10 ** 6).map(lambda n: '"' + "x" * n + '"'),
                      json_values.map(json.dumps),
                      st.text(max_size=200)))
def test_metadata_structure_is_refused_as_weights_file_error(text):
    with within(10):
        try:
            config = pio.config_from_metadata(text, "file")
        except WeightsFileError:
            return
    assert isinstance(config, pivot.ViTConfig)


@examples(20)
@given(depth=st.integers(1000, 100_000))
def test_deeply_nested_config_in_a_file(tmp_path, depth):
    path = write_safetensors(tmp_path / "deep.safetensors", pivot.ViT.random(TINY).state_dict(),
                             {"pivot.config": "[" * depth + "]" * depth})
    with within(10), pytest.raises(WeightsFileError, match="pivot.config"):
        pivot.ViT.from_timm(path)


# ------------------------------------------------------------------ effort keys with reuse

@st.composite
def reuse_path(draw, depth=8):
    path = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=depth, max_size=depth))
    first = next((i for i, v in enumerate(path) if v == 2), None)
    if first is not None and 1 not in path[:first]:
        path[first] = 1  # a reusing encoder needs an active one before it
    return path


@pytest.fixture
def fake_sim(monkeypatch):
    calls = SimCalls()
    monkeypatch.setattr(effort_search, "_simulate_pair", lambda low, high, f, hw: calls.simulate_pair(low, high, f, hw))
    monkeypatch.setattr(effort_search, "_simulate", lambda model, hw: calls.simulate(model, hw))
    return calls


@examples(150)
@given(paths=st.lists(reuse_path(), min_size=2, max_size=4, unique_by=lambda p: path_effort(p)))
def test_effort_keys_count_computed_attentions(fake_sim, paths):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 20)
    efforts = {path_effort(p): FakeModel(rng.normal(size=(20, 3)), p) for p in paths}
    assume(len(efforts) >= 2)
    front = pivot.pareto(efforts, np.arange(20), labels, progress=False)
    assert {p.low for p in front.points if p.high is None} == set(efforts)
    with contextlib.suppress(pivot.SearchTargetError):  # validated; whether a pair meets 1 ms is not the point
        pivot.search(efforts, np.arange(20), labels, 1.0, progress=False)
    # Keyed by non-zero entries (a reusing encoder counted as active): refused where it differs.
    wrong = {int(np.count_nonzero(p)): FakeModel(rng.normal(size=(20, 3)), p) for p in paths}
    if len(wrong) >= 2 and any(key != path_effort(model.path) for key, model in wrong.items()):
        for call in (lambda: pivot.pareto(wrong, np.arange(20), labels, progress=False),
                     lambda: pivot.search(wrong, np.arange(20), labels, 1.0, progress=False)):
            with pytest.raises(ValueError, match="the key must be its effort"):
                call()


def test_effort_is_one_function():
    assert path_effort([1, 2, 2, 0, 1]) == 2
    model = pivot.ViT.random(TINY, path=[1, 2, 1])
    assert "2/3 attentions" in repr(model)


# ------------------------------------------------------------------ CKA on tiny (and huge) activations

@examples(200)
@given(exponent=st.integers(-140, 120), n=st.integers(4, 24), p=st.integers(1, 40), seed=st.integers(0, 2 ** 16),
       debiased=st.booleans())
def test_cka_is_scale_free_for_any_finite_magnitude(exponent, n, p, seed, debiased):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p)).astype(np.float32)
    y = (x @ rng.standard_normal((p, 7)) + 0.5 * rng.standard_normal((n, 7))).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "zero variance" warning for activations that vary
        reference = pivot.linear_cka(x, y, debiased=debiased)
        scaled = np.ldexp(x, exponent).astype(np.float32)  # exact unless it leaves float32's range
        assume(np.isfinite(scaled).all() and np.count_nonzero(scaled) == scaled.size)
        assume(np.array_equal(np.ldexp(scaled, -exponent).astype(np.float32), x))  # no subnormal rounding
        value = pivot.linear_cka(scaled, y, debiased=debiased)
        matrix = pivot.cka_matrix([scaled, y], [y, scaled], debiased=debiased)
    assert value == pytest.approx(reference, abs=2e-5)
    assert matrix[0, 0] == pytest.approx(reference, abs=2e-5)


def test_cka_of_activations_around_1e25_below_one():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 50)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pivot.linear_cka(x * np.float32(1e-25), x * np.float32(3e-25)) == pytest.approx(1.0, abs=1e-6)
        acc = pivot.MinibatchCKA()
        for batch in np.split(x * np.float32(1e-25), 4):
            acc.update([batch], [batch])
        assert acc.result()[0, 0] == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------ CLI

def _cli(capsys, *argv):
    from pivot.apps.cli import main
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


cli_text = st.one_of(st.text(max_size=30), st.integers(-2 ** 80, 2 ** 80).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


@examples(300)
@given(option=st.sampled_from(["--array", "--clock-mhz", "--path", "--preset", "--num-heads", "--dataflow"]),
       value=cli_text)
def test_cli_bad_arguments_print_one_line_and_exit_2(capsys, option, value):
    assume(not value.startswith("-"))
    status, _, err = _cli(capsys, "sim", option, value, "--json")
    assert status in (0, 2)
    assert "Traceback" not in err
    if status == 2:
        assert len(err.strip().splitlines()) == 1, err


@examples(100)
@given(option=st.sampled_from(["--images", "--cka-images", "--batch-size", "--threads", "--seed", "--lec",
                               "--tolerance", "--target-ms", "--target-fraction", "--batch"]),
       value=st.one_of(st.integers(-2 ** 80, 0).map(str), st.integers(2 ** 64, 2 ** 80).map(str),
                       st.sampled_from(["nan", "inf", "-inf", "x", "1e400", ""])))
def test_cli_bad_numbers_are_refused_before_work(capsys, option, value):
    assume(not (option == "--seed" and value in ("0", "-0")))
    assume(not (option == "--tolerance" and value in ("0", "-0")))
    status, _, err = _cli(capsys, "demo", "--out", "unused", option, value)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


CLI_CASES = {
    "--array overflowing": ["sim", "--array", "99999999999999999999999x36"],
    "--array 64x36x2": ["sim", "--array", "64x36x2"],
    "--clock-mhz 1e308": ["sim", "--clock-mhz", "1e308"],
    "--weights a directory": ["sim", "--weights", "{tmp}/dir.safetensors"],
    "--weights a FIFO": ["sim", "--weights", "{tmp}/fifo.safetensors"],
    "--weights /dev/zero (as x.safetensors)": ["sim", "--weights", "{tmp}/zero.safetensors"],
    "--weights a text file": ["sim", "--weights", "{tmp}/text.safetensors"],
    "--weights missing": ["sim", "--weights", "{tmp}/missing.safetensors"],
    "--preset unknown": ["sim", "--preset", "nope"],
    "--path of the wrong length": ["sim", "--path", "1112"],
    "--path with a 3": ["sim", "--path", "111111111113"],
    "--out a file": ["demo", "--out", "{tmp}/text.safetensors"],
    "--out under a file (unwritable)": ["demo", "--out", "{tmp}/text.safetensors/sub"],
    "--csv in a missing folder": ["search", "--csv", "{tmp}/missing/trail.csv"],
    "--images 10**20": ["search", "--images", str(10 ** 20)],
    "--threads 0": ["cka", "--threads", "0"],
    "--lec nan": ["search", "--lec", "nan"],
    "--model unknown": ["cka", "--model", "nope"],
    "unknown option": ["sim", "--bogus"],
}


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "dir.safetensors").mkdir()
    os.mkfifo(tmp / "fifo.safetensors")
    (tmp / "zero.safetensors").symlink_to("/dev/zero")
    (tmp / "text.safetensors").write_text("this is a text file, not weights\n" * 4)
    return tmp


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_exit_codes_in_a_subprocess(cli_files, case):
    argv = [a.format(tmp=cli_files) for a in CLI_CASES[case]]
    done = subprocess.run([sys.executable, "-m", "pivot", *argv], capture_output=True, text=True, timeout=120,
                          cwd=cli_files, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 2, (case, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, (case, done.stderr)
    report = os.environ.get("PIVOT_CLI_EXIT_REPORT")
    if report:
        with open(report, "a") as f:
            f.write(f"{done.returncode}\tpivot {' '.join(CLI_CASES[case])}\t{lines[0]}\n")


def test_cli_version():
    done = subprocess.run([sys.executable, "-m", "pivot", "--version"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0 and done.stdout.strip() == f"pivot {pivot.__version__}"


def test_cli_sim_agrees_with_the_api(capsys, tmp_path):
    model = pivot.ViT.random(TINY, path=[1, 2, 0])
    model.save(tmp_path / "m.safetensors")
    status, out, _ = _cli(capsys, "sim", "--weights", str(tmp_path / "m.safetensors"), "--json")
    data = json.loads(out)
    assert status == 0 and data["path"] == "120" and data["active_attentions"] == 1
    assert data["delay_ms"] == pytest.approx(sim.simulate(pivot.ViT.from_timm(tmp_path / "m.safetensors")).delay_ms)
    status, out, _ = _cli(capsys, "sim", "--preset", pivot.zoo.ZOO_MODEL, "--path", "121111111111", "--json")
    assert status == 0 and json.loads(out)["active_attentions"] == 11


# ------------------------------------------------------------------ the newcomer's path

def test_source_tree_without_core_says_what_to_do(tmp_path):
    package = tmp_path / "pivot"
    package.mkdir()
    for f in (ROOT / "pivot").glob("*.py"):
        shutil.copy(f, package)
    # -S: no site-packages, as when the clone's pivot/ shadows an installed one without its core.
    done = subprocess.run([sys.executable, "-S", "-c", "import pivot"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode != 0
    assert "pip install -e ." in done.stderr and "another directory" in done.stderr
    assert "circular import" not in done.stderr.splitlines()[-1].split("(", 1)[0]


@examples(60)
@given(seed=st.integers(0, 2 ** 16), batch=st.integers(1, 4))
def test_uint8_images_are_normalized_by_the_model(seed, batch):
    config = TINY.replace(input_mean=(0.3,), input_std=(0.4,))
    model = pivot.ViT.random(config, seed=1)
    pixels = np.random.default_rng(seed).integers(0, 256, (batch, 1, 8, 8), dtype=np.uint8)
    normalized = ((pixels.astype(np.float32) / np.float32(255) - np.float32(0.3)) / np.float32(0.4))
    np.testing.assert_array_equal(model(pixels), model(normalized))


def test_zoo_takes_uint8_and_warns_once_on_raw_floats(monkeypatch):
    monkeypatch.setattr(pmodel, "_warned_unnormalized", False)
    model = pivot.zoo.load(pivot.zoo.ZOO_MODEL, efforts=[12])[12]
    assert model.config.input_normalization == ((0.286,), (0.353,))
    with np.load(ROOT / "pivot/data/fashion_mnist_test_sample.npz") as f:
        pixels, labels = f["images"][:200, None], f["labels"][:200]
    images, _ = pivot.datasets.fashion_mnist_sample()
    np.testing.assert_array_equal(model(pixels), model(images[:200]))
    with pytest.warns(pmodel.InputNormalizationWarning, match="unnormalized"):
        model(pixels.astype(np.float32) / 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(pixels.astype(np.float32))  # once per process
        model(images[:10])


def test_text_file_named_safetensors_says_so(tmp_path):
    (tmp_path / "notes.safetensors").write_text("These are my notes about the model.\n")
    with pytest.raises(WeightsFileError, match="not a safetensors file"):
        pivot.ViT.from_timm(tmp_path / "notes.safetensors")


def test_quantize_without_calibration_images_names_them():
    with pytest.raises(TypeError, match="calibration images"):
        pivot.quantize(pivot.ViT.random(TINY), None)
