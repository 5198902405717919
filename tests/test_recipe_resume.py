"""Recipe resume: a run resumed with other arguments, or over a corrupt, stale or non-regular result
file, is refused with a clear message (exit 2), never silently reused."""
import json
import os
import threading

import pytest

import pivot
from pivot.apps.recipes import fashion_mnist as fm
from pivot.apps.recipes import path_selection as ps
from pivot.apps.recipes.resume import ResumeError, check_arguments, read_json

HAVE_DATA = os.path.isdir(pivot.datasets.DEFAULT_ROOT)


def test_arguments_stored_then_compared(tmp_path):
    check_arguments(tmp_path, {"seed": 0, "efforts": (6, 4), "threads": 1}, ignore=("threads",))
    assert json.loads((tmp_path / "args.json").read_text()) == {"seed": 0, "efforts": [6, 4], "threads": 1}
    check_arguments(tmp_path, {"seed": 0, "efforts": (6, 4), "threads": 8}, ignore=("threads",))  # resumable
    with pytest.raises(ResumeError, match=r"efforts: \[6, 4\] stored, \[6, 8\] now.*seed: 0 stored, 1 now"):
        check_arguments(tmp_path, {"seed": 1, "efforts": (6, 8), "threads": 1}, ignore=("threads",))


@pytest.mark.parametrize("text, match", [("{", "not valid JSON"), ("[1, 2]", "must be a JSON dict"),
                                         (b"\xff\xfe", "not valid JSON")])
def test_corrupt_resume_files_are_refused(tmp_path, text, match):
    file = tmp_path / "selection.json"
    file.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ResumeError, match=f"selection.json: the selection .*{match}"):
        read_json(file, "selection")


def test_a_fifo_resume_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "args.json"
    os.mkfifo(fifo)
    caught = []
    t = threading.Thread(target=lambda: caught.append(pytest.raises(ResumeError, check_arguments, tmp_path, {})),
                         daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        with open(fifo, "w"):
            pass
        pytest.fail("check_arguments blocked on a FIFO")
    assert caught and "FIFO" in str(caught[0].value)


def test_fashion_mnist_refuses_a_resume_with_other_arguments(tmp_path, capsys):
    pytest.importorskip("torch")
    check_arguments(tmp_path, {k: v for k, v in vars(fm._parser().parse_args(["--out", str(tmp_path)])).items()
                               if k not in fm.PROCESS_ARGS})
    with pytest.raises(SystemExit) as exc:
        fm.main(["--out", str(tmp_path), "--base-epochs", "3"])
    assert exc.value.code == 2
    assert "base_epochs: 30 stored, 3 now" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [(["--random-effort", "12"], "--random-effort must be one of"),
                                         (["--random-effort", "11", "--random-paths", "12"], r"in \[0, 11\]")])
def test_fashion_mnist_random_paths_beyond_the_distinct_ones(tmp_path, argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        fm.main(["--out", str(tmp_path)] + argv)
    import re
    assert exc.value.code == 2 and re.search(match, capsys.readouterr().err.strip().splitlines()[-1])
    assert not any(tmp_path.iterdir())  # refused before anything was written


def _cka_record():
    paths = {str(e): {"path": [1] * e + [0] * (12 - e), "score": 0.0} for e in fm.EFFORTS}
    return {"images": list(range(256)), "cka": [[0.5] * 12 for _ in range(12)], "path_method": "output_kl",
            "paths": paths}


@pytest.mark.parametrize("change, field", [
    (lambda r: r["images"].pop(), "images"),
    (lambda r: r["images"].__setitem__(0, 10 ** 9), "images"),
    (lambda r: r["cka"].pop(), "cka"),
    (lambda r: r["paths"]["6"].__setitem__("path", [1] * 12), r"paths\[6\]"),
    (lambda r: r["paths"].pop("3"), r"paths\[3\]"),
])
def test_fashion_mnist_cka_record_is_validated(tmp_path, change, field):
    record = _cka_record()
    assert fm.check_cka_record("cka.json", record, 60000) is record
    change(record)
    with pytest.raises(ResumeError, match=f"cka.json: {field}"):
        fm.check_cka_record("cka.json", record, 60000)


def test_fashion_mnist_corrupt_checkpoint_is_refused(tmp_path):
    pytest.importorskip("torch")
    file = tmp_path / "effort6.pt"
    file.write_bytes(b"not a checkpoint")
    with pytest.raises(ResumeError, match="effort6.pt: not a checkpoint of this recipe"):
        fm._load(file)
    os.unlink(file)
    os.mkfifo(file)
    with pytest.raises(ResumeError, match="FIFO"):
        fm._load(file)


def test_path_selection_stale_finetune_record_is_refused(tmp_path):
    file = ps.finetune_file(tmp_path, 6, ps.path_mask("111111000000"), 0)
    ps._write_json(file, {"effort": 6, "path": "111111000000", "seed": 0, "steps": 2, "lr": 3e-4,
                          "test_accuracy": 0.5})
    with pytest.raises(ResumeError, match="steps is 2, this run's is 800"):
        ps.finetune_one(tmp_path, None, None, None, 6, ps.path_mask("111111000000"), 0, steps=800)
    assert ps.finetune_one(tmp_path, None, None, None, 6, ps.path_mask("111111000000"), 0, steps=2)["steps"] == 2


def test_path_selection_random_paths_beyond_the_distinct_ones(capsys):
    with pytest.raises(ValueError, match="only 10 paths"):
        ps.random_paths(11, 12, 11, {"111111111110", "011111111111", "000000000000"})
    with pytest.raises(SystemExit) as exc:
        ps.main(["--out", "unused", "--efforts", "11", "--random-paths", "12"])
    assert exc.value.code == 2 and "--random-paths 12" in capsys.readouterr().err


@pytest.mark.skipif(not HAVE_DATA, reason="dataset-fashion-mnist not installed")
def test_path_selection_calibration_larger_than_the_data(tmp_path, capsys):
    pytest.importorskip("torch")
    with pytest.raises(SystemExit) as exc:
        ps.main(["--out", str(tmp_path), "--calibration", "60001"])
    assert exc.value.code == 2 and "the training set has only 60000 images" in capsys.readouterr().err


@pytest.mark.skipif(not HAVE_DATA, reason="dataset-fashion-mnist not installed")
def test_path_selection_refuses_a_resume_with_another_path_set(tmp_path, capsys):
    pytest.importorskip("torch")
    args = ps._parser().parse_args(["--out", str(tmp_path)])
    args.efforts, args.seeds, args.methods = [6, 4, 8], [0], args.methods.split(",")
    check_arguments(tmp_path, {name: getattr(args, name) for name in ps.RESULT_ARGS})
    with pytest.raises(SystemExit) as exc:
        ps.main(["--out", str(tmp_path), "--efforts", "6,5"])
    assert exc.value.code == 2 and "efforts: [6, 4, 8] stored, [6, 5] now" in capsys.readouterr().err
