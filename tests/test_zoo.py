"""pivot.zoo: the loader's errors on a temporary zoo, and the shipped Fashion-MNIST model."""
import json
import pathlib

import numpy as np
import pytest

import pivot
import pivot.zoo as zoo
from pivot.io import save_safetensors

NAME = "fmnist_vit12_p4"
SMALL = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=16, depth=3, num_heads=2)


def _write_effort(folder: pathlib.Path, effort: int, path):
    import dataclasses
    model = pivot.ViT.random(SMALL, seed=effort, path=path)
    save_safetensors(folder / f"effort{effort:02d}.safetensors",
                     {k: v.astype(np.float16) for k, v in model.state_dict().items()},
                     {"pivot.config": json.dumps(dataclasses.asdict(SMALL)), "pivot.path": "".join(map(str, path))})


@pytest.fixture
def fake_zoo(tmp_path, monkeypatch):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps({"name": "tiny"}))
    _write_effort(folder, 3, [1, 1, 1])
    _write_effort(folder, 2, [1, 0, 1])
    (tmp_path / "empty").mkdir()  # no card, no weights: not listed
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    return folder


def test_list_and_load(fake_zoo):
    assert zoo.list() == ["tiny"]
    models = zoo.load("tiny")
    assert sorted(models) == [2, 3]
    assert models[2].path.tolist() == [1, 0, 1]
    assert models[3].path.tolist() == [1, 1, 1]
    assert zoo.card("tiny") == {"name": "tiny"}
    assert sorted(zoo.load("tiny", efforts=[2])) == [2]


def test_unknown_name(fake_zoo):
    with pytest.raises(zoo.ZooError, match="no zoo model named 'nope'.*tiny"):
        zoo.load("nope")
    with pytest.raises(TypeError):
        zoo.load(3)


def test_efforts_must_be_integers(fake_zoo):
    assert sorted(zoo.load("tiny", efforts=[np.int64(2), 3])) == [2, 3]
    for bad in ([2.7], [2.0], ["2"], [True], "23", 2):
        with pytest.raises(TypeError, match="efforts must be"):
            zoo.load("tiny", efforts=bad)


def test_missing_effort(fake_zoo):
    with pytest.raises(zoo.ZooError, match=r"no effort\(s\) \[1\]"):
        zoo.load("tiny", efforts=[1, 2])


def test_file_name_disagrees_with_path(fake_zoo):
    (fake_zoo / "effort02.safetensors").unlink()
    _write_effort(fake_zoo, 2, [1, 1, 1])  # named effort 2, but 3 active encoders
    with pytest.raises(zoo.ZooError, match="says effort 2 but its path has 3"):
        zoo.load("tiny")


def test_truncated_file_refused(fake_zoo):
    f = fake_zoo / "effort03.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(pivot.WeightsFileError):
        zoo.load("tiny")




def test_shipped_zoo_efforts_and_card():
    models = zoo.load(NAME)
    card = zoo.card(NAME)
    assert sorted(models) == list(range(3, 13))
    for effort, model in models.items():
        assert int(model.path.sum()) == effort
        assert "".join(map(str, model.path)) == card["paths"][str(effort)]
    assert card["test_accuracy"]["12"] >= 0.90
    assert all(card["test_accuracy"][str(e)] >= 0.84 for e in range(3, 13))
    size = sum(f.stat().st_size for f in (zoo.ZOO_DIR / NAME).iterdir())
    assert size <= 30 * 2**20


def test_shipped_zoo_classifies_the_sample():
    images, labels = pivot.datasets.fashion_mnist_sample()
    models = zoo.load(NAME, efforts=[6, 12])
    for effort, model in models.items():
        accuracy = np.mean(model(images).argmax(1) == labels)
        assert accuracy >= 0.8, (effort, accuracy)


def test_recipe_per_effort_spec():
    from pivot.apps.recipes.fashion_mnist import EFFORTS, effort_lrs, parse_efforts, per_effort
    assert per_effort("800") == {e: 800 for e in EFFORTS}
    steps = per_effort("800,6-8:3000,10:2400")
    assert [steps[e] for e in EFFORTS] == [800, 800, 800, 3000, 3000, 3000, 800, 2400, 800]
    lrs = effort_lrs("3e-4,6-8:1e-3")
    assert [lrs[e] for e in (5, 6, 8, 9)] == [3e-4, 1e-3, 1e-3, 3e-4]
    for bad in ("", "x", "800,6:", "800,2:100", "800,6-12:100", "0", "800,6:0", "800,6", "800,6:1.5"):
        with pytest.raises(ValueError, match="--effort-steps"):
            per_effort(bad)
    for bad in ("-1e-3", "3e-4,6:0", "nan"):
        with pytest.raises(ValueError, match="--effort-lr"):
            effort_lrs(bad)
    assert parse_efforts("9,6-7") == (6, 7, 9)
    for bad in ("", "2", "6-x", "11-12"):
        with pytest.raises(ValueError, match="--efforts"):
            parse_efforts(bad)


def test_recipe_card_command_names_only_changed_arguments():
    from pivot.apps.recipes.fashion_mnist import _command, _parser
    args = vars(_parser().parse_args(["--out", "/tmp/x", "--seed", "3", "--precision", "bf16",
                                      "--effort-steps", "800,6:3000", "--efforts", "6"]))
    assert _command(args) == ("python -m pivot.apps.recipes.fashion_mnist --out RUN --seed 3 "
                              "--effort-steps 800,6:3000 --precision bf16 --ship")


def test_ship_writes_efforts_card_and_log(tmp_path, monkeypatch):
    card = {k: v for k, v in zoo.card(NAME).items() if k not in ("name", "test_accuracy")}
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    models = {3: pivot.ViT.random(SMALL, seed=1), 2: pivot.ViT.random(SMALL, seed=2, path=[1, 0, 1])}
    card.update(paths={"3": "111", "2": "101"}, path_scores={"2": 0.5}, fine_tuning_steps={"2": 10},
                fine_tuning_lr={"2": 1e-3})
    images = np.random.default_rng(0).normal(size=(6, 1, 8, 8)).astype(np.float32)
    labels = np.arange(6) % 3
    folder = zoo.ship("tiny", models, card, (images, labels), log_text='{"stage": "base"}\n')
    assert folder == tmp_path / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "card.md", "effort02.safetensors",
                                                        "effort03.safetensors", "training_log.jsonl"]
    shipped = zoo.card("tiny")
    assert shipped["name"] == "tiny" and list(shipped)[0] == "name"
    loaded = zoo.load("tiny")
    for e, model in models.items():
        assert loaded[e].path.tolist() == model.path.tolist()
        want = float(np.mean(loaded[e](images).argmax(1) == labels))
        assert shipped["test_accuracy"][str(e)] == want
    assert "| 2 | `101` | 0.500 | 10 | 0.001 |" in (folder / "card.md").read_text()
    with pytest.raises(ValueError, match="zoo model name"):
        zoo.ship("../x", models, card, (images, labels))


def test_shipped_card_markdown_is_rendered_from_card_json():
    # zoo.ship renders card.md from card.json; the shipped pair must agree.
    assert (zoo.ZOO_DIR / NAME / "card.md").read_text() == zoo._card_markdown(zoo.card(NAME))


def test_recipe_starts_from_the_zoo_base_and_refuses_a_bad_device(tmp_path, capsys):
    import torch

    from pivot.apps.recipes import fashion_mnist as fm
    images, labels = pivot.datasets.fashion_mnist_sample()
    module = fm._base_from_zoo(tmp_path, tmp_path / "base.pt", (images[:200], labels[:200]))
    full = zoo.load(NAME, efforts=[12])[12]
    saved = torch.load(tmp_path / "base.pt", weights_only=True)
    assert all(np.array_equal(saved[k].numpy(), v) for k, v in full.state_dict().items())
    record = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert record["stage"] == "base" and record["epochs"] == 0 and NAME in record["source"]
    assert record["test_accuracy"] == float(np.mean(full(images[:200]).argmax(1) == labels[:200]))
    assert module.training is False
    for bad in ("tpu", "cuda:99"):
        with pytest.raises(SystemExit) as exc:
            fm.main(["--out", str(tmp_path / "unused"), "--device", bad])
        assert exc.value.code == 2 and "--device" in capsys.readouterr().err
    assert not (tmp_path / "unused").exists()
