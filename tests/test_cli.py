"""The pivot command: --help of every subcommand, small runs, --json output."""
import json
import subprocess
import sys

import pytest

from pivot.apps import cli, demo

SUBCOMMANDS = ["sim", "cka", "search", "demo"]


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: pivot {command}" in out and "--json" in out


def test_top_level_help_and_no_command(capsys):
    status, out, _ = run(capsys)
    assert status == 2 and all(c in out for c in SUBCOMMANDS)


def test_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "pivot", "--help"], capture_output=True, text=True, check=True)
    assert "{sim,cka,search,demo}" in done.stdout


def test_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's exit: one line, status 2
        cli.main(["search", "--images", "0"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--images: must be in [1, " in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        cli.main(["sim", "--dataflow", "xx"])


def test_format_table():
    text = cli.format_table([dict(a=1, b=0.123456, c=None, d=(1, 0, 1))])
    lines = text.splitlines()
    assert lines[0].split() == ["a", "b", "c", "d"] and lines[2].split() == ["1", "0.1235", "-", "101"]
    assert cli.format_table([dict(x="ab", y=1.0)]).splitlines()[2] == "ab  1"
    assert cli.format_table([]) == "(none)"


def test_sim(capsys):
    status, out, _ = run(capsys, "sim", "--preset", "deit_small_patch16_224", "--path", "111111000000")
    assert status == 0 and "delay_ms" in out and "111111000000" in out
    status, out, _ = run(capsys, "sim", "--path", "111111000000", "--array", "32x32", "--dataflow", "ws",
                         "--clock-mhz", "200", "--json")
    data = json.loads(out)
    assert status == 0 and data["path"] == "111111000000" and data["active_attentions"] == 6
    status, _, err = run(capsys, "sim", "--path", "1101")
    assert status == 2 and "12 encoders" in err
    status, _, err = run(capsys, "sim", "--array", "64by36")
    assert status == 2 and "--array" in err


def test_cka(capsys):
    status, out, _ = run(capsys, "cka", "--images", "16")
    assert status == 0 and "best path per effort" in out
    status, out, _ = run(capsys, "cka", "--images", "16", "--json")
    data = json.loads(out)
    assert len(data["cka"]) == 12 and data["best_paths"]  # the zoo model (default)
    status, out, _ = run(capsys, "cka", "--model", "random", "--images", "16", "--json")
    assert len(json.loads(out)["cka"]) == demo.DEMO_CONFIG.depth


def test_search(capsys, tmp_path):
    status, out, _ = run(capsys, "search", "--images", "64", "--efforts", "4,6,8,12", "--json", "--csv",
                         str(tmp_path / "trail.csv"))
    data = json.loads(out)
    assert status == 0 and data["low"] < data["high"] and data["trail"][-1]["accepted"]
    assert (tmp_path / "trail.csv").read_text().count("\n") == len(data["trail"]) + 1
    status, out, _ = run(capsys, "search", "--images", "64", "--efforts", "2,4,6", "--quiet", "--model", "random")
    assert status == 0 and "chosen:" in out
    status, _, err = run(capsys, "search", "--efforts", "2,4")
    assert status == 2 and "has efforts [3, 4" in err
    status, _, err = run(capsys, "search", "--images", "32", "--target-ms", "1e-6")
    assert status == 2 and "reachable delays" in err
    status, _, err = run(capsys, "search", "--efforts", "2,99")
    assert status == 2 and "--efforts" in err


def test_demo(capsys, tmp_path):
    status, out, _ = run(capsys, "demo", "--out", str(tmp_path), "--images", "128", "--batch", "64")
    assert status == 0
    assert "Phase 1" in out and "Phase 2" in out and "EDP" in out and "classified a held-out batch" in out
    for name in ("edp_vs_lec.png", "edp_split.png", "accuracy_edp_front.png", "search_trail.csv", "pareto.csv"):
        assert (tmp_path / name).stat().st_size > 0
    status, out, _ = run(capsys, "demo", "--out", str(tmp_path / "j"), "--images", "128", "--batch", "64", "--json")
    data = json.loads(out)
    assert status == 0 and data["pivot"]["edp"] < data["baseline"]["edp"]


def test_sim_and_cka_read_an_int8_weights_file(capsys, tmp_path):
    # an int8 file (pivot.quantize(...).save) given as a weights file loads as the int8 model
    import numpy as np
    import pivot
    cfg = pivot.ViTConfig(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=4, num_heads=2,
                          mlp_ratio=2.0)
    model = pivot.ViT.random(cfg, path=[1, 1, 0, 1])
    calib = np.random.default_rng(0).integers(0, 256, (8, 1, 28, 28), dtype=np.uint8)
    f = tmp_path / "q8.safetensors"
    pivot.quantize(model, calib).save(f)
    status, out, err = run(capsys, "sim", "--weights", str(f), "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["path"] == "1101" and data["active_attentions"] == 3
    pivot.quantize(model.with_path([1] * 4), calib).save(f)
    status, out, err = run(capsys, "cka", "--model", str(f), "--images", "8")
    assert status == 0 and "best path per effort" in out, err
