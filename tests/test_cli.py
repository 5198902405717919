"""The pivot command: --help of every subcommand, small runs, --json output."""
import json
import subprocess
import sys

import numpy as np
import pytest

import pivot

from pivot.apps import cli, demo

SUBCOMMANDS = ["sim", "cka", "search", "quantize", "demo"]


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
    assert "{sim,cka,search,quantize,demo}" in done.stdout


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
    status, out, _ = run(capsys, "demo", "--out", str(tmp_path / "j"), "--images", "128", "--batch", "64", "--json",
                         "--efforts", "4,6,8,12")
    data = json.loads(out)
    assert status == 0 and data["pivot"]["edp"] < data["baseline"]["edp"]


def test_sim_and_cka_read_an_int8_weights_file(capsys, tmp_path):
    # an int8 file (pivot.quantize(...).save) given as a weights file loads as the int8 model
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


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory):
    """120 Fashion-MNIST sample images as PNG files in class subfolders 0/ ... 9/, as a user keeps them."""
    from PIL import Image
    folder = tmp_path_factory.mktemp("my_images")
    with np.load(pivot.datasets._SAMPLE) as f:
        pixels, labels = f["images"][:120], f["labels"][:120]
    for n, (image, label) in enumerate(zip(pixels, labels)):
        (folder / str(label)).mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / str(label) / f"{n:03d}.png")
    return folder


def test_user_images_folder(capsys, png_folder, tmp_path):
    # The PNGs read back as the sample's own images and labels (lossless, same normalization).
    sample_images, sample_labels = pivot.datasets.fashion_mnist_sample()
    status, out, _ = run(capsys, "cka", "--data", str(png_folder), "--images", "32", "--json")
    assert status == 0 and len(json.loads(out)["cka"]) == 12 and json.loads(out)["images"] == 32

    status, out, _ = run(capsys, "search", "--data", str(png_folder), "--images", "100", "--efforts", "4,6,8,12",
                         "--json")
    data = json.loads(out)
    assert status == 0 and data["n_images"] == 100 and data["labels"] == f"labels of {png_folder}"
    assert data["trail"][-1]["accepted"] and data["accuracy"] > 0.7

    out_file = tmp_path / "int8.safetensors"
    status, out, _ = run(capsys, "quantize", "--data", str(png_folder), "--images", "64", "--out", str(out_file),
                         "--json")
    data = json.loads(out)
    assert status == 0 and out_file.stat().st_size == data["bytes"] > 0
    assert data["calibration_images"] == 64 and data["checked_images"] == 56
    assert data["fp32_accuracy"] > 0.8 and abs(data["int8_accuracy"] - data["fp32_accuracy"]) < 0.1
    # The same folder's accuracy by hand: the zoo's full model on the sample images.
    full = pivot.zoo.load("fmnist_vit12_p4", efforts=[12])[12]
    # The folder lists class after class; the CLI shuffles it with --seed (0) before the split.
    order = np.argsort(sample_labels[:120], kind="stable")[np.random.default_rng(0).permutation(120)][64:]
    expected = np.mean(np.argmax(full(sample_images[:120][order]), 1) == sample_labels[:120][order])
    assert data["fp32_accuracy"] == pytest.approx(expected)
    status, out, _ = run(capsys, "quantize", "--data", str(png_folder), "--images", "64", "--out", str(out_file))
    assert status == 0 and "accuracy on 56 held-out images: fp32" in out and "points" in out


def test_user_data_errors(capsys, png_folder, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    np.save(tmp_path / "five.npy", np.arange(5))
    cases = [
        (["cka", "--data", str(tmp_path / "missing")], "no such file or folder"),
        (["cka", "--data", str(tmp_path / "empty")], "no images in the folder"),
        (["search", "--data", str(tmp_path / "bad")], "broken.png: cannot read the image"),
        (["quantize", "--data", str(png_folder), "--labels", str(tmp_path / "five.npy"), "--out",
          str(tmp_path / "q.safetensors")], "5 labels for 120 images"),
        (["cka", "--labels", str(tmp_path / "five.npy")], "--labels goes with --data PATH"),
    ]
    for argv, expected in cases:
        status, _, err = run(capsys, *argv)
        assert status == 2 and expected in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_search_on_one_model_says_how_to_make_efforts(capsys, tmp_path):
    # A user's weights file is one model: its skipped-attention efforts cannot reach 0.7 of its delay here.
    config = pivot.ViTConfig.preset("deit_tiny_patch16_224").replace(depth=4, img_size=32, patch_size=8, num_classes=5)
    pivot.ViT.random(config, seed=0).save(tmp_path / "mine.safetensors")
    status, _, err = run(capsys, "search", "--model", str(tmp_path / "mine.safetensors"), "--images", "32", "--quiet")
    assert status == 2 and "reachable delays" in err and "not fine-tuned" in err
    assert "python -m pivot.apps.recipes.fashion_mnist" in err and "pivot.train.fine_tune" in err
