"""The path-selection experiment's bookkeeping: random paths, run order, Spearman, the report and
its plot, on made-up fine-tune results (no training)."""
import json
import os
import types

import numpy as np
import pytest

import pivot
from pivot.apps.recipes import path_selection as ps


def _args(**kw):
    base = dict(efforts=[6, 4], seeds=[0, 1], methods=["path_score", "output_kl"], random_paths=3, steps=800,
                lr=3e-4, calibration=256, budget=1, extra_seed_paths="methods")
    base.update(kw)
    return types.SimpleNamespace(**base)


SEL = {"path_score": {"seconds": 1.0, "budget": 1, "paths": {"6": {"path": "100000011111", "score": 3.6},
                                                              "4": {"path": "100000001101", "score": 4.6}}},
       "output_kl": {"seconds": 2.0, "budget": 1, "paths": {"6": {"path": "111111000000", "score": 0.2},
                                                             "4": {"path": "100000001101", "score": 0.5}}}}


def test_random_paths_are_distinct_exclude_the_rules_and_repeat():
    a = ps.random_paths(6, 12, 5, {"100000011111"})
    assert a == ps.random_paths(6, 12, 5, {"100000011111"})
    assert len(set(a)) == 5 and "100000011111" not in a and all(p.count("1") == 6 for p in a)


def test_candidates_merge_rules_choosing_the_same_path_and_jobs_order():
    args = _args()
    cands = ps.candidates(SEL, args, 12)
    assert cands[4][0] == ("100000001101", ["path_score", "output_kl"])
    assert [who for _, who in cands[6]][:2] == [["path_score"], ["output_kl"]]
    assert len(cands[6]) == 2 + 3 and len(cands[4]) == 1 + 3
    order = ps.jobs(cands, args)
    first = [j for j in order if j[2] == 0]
    assert len(first) == 9 and order[:len(first)] == first and first[0] == (6, "100000011111", 0)
    assert [j for j in order if j[2] == 1] == [(6, "100000011111", 1), (6, "111111000000", 1), (4, "100000001101", 1)]
    assert len(ps.jobs(cands, _args(extra_seed_paths="all"))) == 18


def test_spearman_matches_the_definition():
    assert ps.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert ps.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert ps.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([0, 1.5, 1.5, 3], [0, 1, 2, 3])[0, 1])
    assert np.isnan(ps.spearman([1, 2], [1, 2])) and np.isnan(ps.spearman([1, 1, 1], [1, 2, 3]))


def test_report_orients_scores_and_plots(tmp_path):
    args = _args(seeds=[0], efforts=[6])
    cands = ps.candidates(SEL, args, 12)
    paths = [p for p, _ in cands[6]]
    # accuracy falls with KL and rises with Path-Score, exactly
    kl = {p: float(i) for i, p in enumerate(paths)}
    score = {p: float(-i) for i, p in enumerate(paths)}
    for i, p in enumerate(paths):
        ps._write_json(ps.finetune_file(tmp_path, 6, p, 0),
                       {"effort": 6, "path": p, "seed": 0, "seconds": 1.0, "test_accuracy": 0.9 - 0.01 * i})
    reference = [{"effort": 6, "path": f"r{i}", "chosen_by": "random", "test_accuracy": 0.5 + 0.1 * i,
                  "scores": {"path_score": float(i), "output_kl": float(-i)}} for i in range(3)]
    result = ps.report(tmp_path, SEL, cands, {"path_score": score, "output_kl": kl}, args, reference)
    assert result["spearman"]["output_kl"]["reference"] == {"n": 3, "spearman": pytest.approx(1.0)}
    assert result["spearman"]["output_kl"]["reference_and_this_run"]["n"] == 8
    assert result["spearman"]["output_kl"]["per_effort"]["6"] == {"n": 5, "spearman": pytest.approx(1.0)}
    assert result["spearman"]["path_score"]["per_effort"]["6"]["spearman"] == pytest.approx(1.0)
    assert "| 6 | `100000011111` | path_score |" in ps.markdown(result)
    json.dumps(result)
    import matplotlib
    matplotlib.use("Agg")
    from pivot.plot import path_selection
    fig = path_selection(result)
    assert fig.axes[0].get_ylabel() == "test accuracy after fine-tuning (%)"
    assert "nats" in fig.axes[1].get_xlabel()
    # One legend for the figure, none inside a panel, where it would cover points.
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert "effort 6" in [t.get_text() for t in fig.legends[0].get_texts()]


@pytest.mark.parametrize("argv", [["--efforts", "6,x"], ["--efforts", "12"], ["--methods", "oracle"],
                                  ["--seeds", "0,0"], ["--budget", "0"], ["--workers", "0"], ["--device", "tpu"],
                                  ["--device", "cuda:99"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        ps.main(["--out", "unused"] + argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow  # spawned processes fine-tuning on the full training set: minutes
@pytest.mark.skipif(not os.path.isdir(pivot.datasets.DEFAULT_ROOT), reason="dataset-fashion-mnist not installed")
def test_worker_processes_give_the_records_of_one_process(tmp_path):
    """--workers N runs the same fine-tunes (2 steps here) in spawned processes: same records."""
    jobs = [(6, "110101100001", 0), (4, "110101000000", 0)]
    args = types.SimpleNamespace(workers=2, threads=1, steps=2, lr=3e-4, device=None)
    ps.stage_finetune(tmp_path / "pool", None, None, None, jobs, args)
    base = pivot.zoo.load(ps.ZOO_MODEL, efforts=[12])[12]
    train, test = pivot.datasets.fashion_mnist("train"), pivot.datasets.fashion_mnist("test")
    ps.stage_finetune(tmp_path / "one", base, train, test, jobs, types.SimpleNamespace(**{**vars(args), "workers": 1}))
    for job in jobs:
        pooled = json.loads(ps.finetune_file(tmp_path / "pool", *job).read_text())
        alone = json.loads(ps.finetune_file(tmp_path / "one", *job).read_text())
        assert pooled["device"] == alone["device"] == "cpu"
        assert {k: v for k, v in pooled.items() if k != "seconds"} == {k: v for k, v in alone.items() if k != "seconds"}
