import gzip
import re
import os

import numpy as np
import pytest

from pivot import datasets


def write_idx(path, array, magic=None, gz=False, trim=0):
    array = np.asarray(array, dtype=np.uint8)
    header = (magic if magic is not None else bytes([0, 0, 8, array.ndim]))
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.tobytes()
    data = data[: len(data) - trim]
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_split(folder, n, split="test", gz=False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    stem_i, stem_l, _ = datasets._FILES[split]
    suffix = ".gz" if gz else ""
    write_idx(folder / (stem_i + suffix), images, gz=gz)
    write_idx(folder / (stem_l + suffix), labels, gz=gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x.idx", array, gz=gz)
    np.testing.assert_array_equal(datasets.read_idx(path, 3), array)


def test_read_idx_refuses_bad_magic(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((2, 2, 2)), magic=b"\x00\x00\x0d\x03")
    with pytest.raises(datasets.DatasetError, match="magic"):
        datasets.read_idx(path, 3)


def test_read_idx_refuses_wrong_rank(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((4,)))
    with pytest.raises(datasets.DatasetError, match="1 dimensions, expected 3"):
        datasets.read_idx(path, 3)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_refuses_truncated(tmp_path, gz):
    path = write_idx(tmp_path / "x.idx", np.zeros((3, 28, 28)), gz=gz, trim=5)
    with pytest.raises(datasets.DatasetError, match="truncated"):
        datasets.read_idx(path, 3)


def test_read_idx_refuses_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((3, 28, 28)), gz=True)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(datasets.DatasetError, match="gzip"):
        datasets.read_idx(path, 3)


def test_read_idx_refuses_tiny_file(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(datasets.DatasetError, match="too short"):
        datasets.read_idx(path, 3)


def test_fashion_mnist_from_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(datasets._FILES, "test", ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 20))
    images, labels = make_split(tmp_path, 20, gz=True)
    x, y = datasets.fashion_mnist("test", root=tmp_path)
    assert x.shape == (20, 1, 28, 28) and x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_allclose(x[:, 0], (images / 255.0 - datasets.MEAN) / datasets.STD, rtol=1e-6, atol=1e-6)


def test_fashion_mnist_count_mismatch(tmp_path):
    make_split(tmp_path, 20)
    with pytest.raises(datasets.DatasetError, match="expected 10000 images"):
        datasets.fashion_mnist("test", root=tmp_path)


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.fashion_mnist("train", root=tmp_path)


def test_fashion_mnist_bad_split():
    with pytest.raises(ValueError, match="split"):
        datasets.fashion_mnist("validation")


def test_shipped_sample_is_stratified():
    x, y = datasets.fashion_mnist_sample()
    assert x.shape == (1000, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 100))
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2


@pytest.mark.skipif(not os.path.isdir(datasets.DEFAULT_ROOT), reason="dataset-fashion-mnist not installed")
def test_real_test_split_matches_shipped_sample():
    x, y = datasets.fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 1000))
    sample, sample_labels = datasets.fashion_mnist_sample()
    with np.load(datasets._SAMPLE) as f:
        index = f["test_index"]
    np.testing.assert_array_equal(x[index], sample)
    np.testing.assert_array_equal(y[index], sample_labels)


# ----------------------------------------------------------------------------- a user's own images

def _grey_config():
    import pivot
    return pivot.ViTConfig(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=16, depth=2, num_heads=2,
                           input_mean=(datasets.MEAN,), input_std=(datasets.STD,))


def _sample_pixels(n=12):
    with np.load(datasets._SAMPLE) as f:
        return f["images"][:n], f["labels"][:n].astype(np.int64)


def test_load_images_from_every_format_gives_the_same_images(tmp_path):
    from PIL import Image
    config = _grey_config()
    pixels, labels = _sample_pixels()
    expected = datasets.normalize(pixels)
    flat = tmp_path / "flat"
    flat.mkdir()
    for n, image in enumerate(pixels):
        Image.fromarray(image).save(flat / f"{n:02d}.png")
    (tmp_path / "labels.txt").write_text("\n".join(map(str, labels)))
    np.save(tmp_path / "pixels.npy", pixels)
    np.savez(tmp_path / "both.npz", images=pixels[:, None], labels=labels)       # (N, 1, H, W) and labels
    np.save(tmp_path / "inputs.npy", expected)                                   # float: the model's input as is
    write_idx(tmp_path / "images-idx3-ubyte.gz", pixels, gz=True)
    write_idx(tmp_path / "labels-idx1-ubyte", labels)
    cases = [(flat, tmp_path / "labels.txt"), (tmp_path / "pixels.npy", tmp_path / "labels-idx1-ubyte"),
             (tmp_path / "both.npz", None), (tmp_path / "inputs.npy", tmp_path / "labels.txt"),
             (tmp_path / "images-idx3-ubyte.gz", tmp_path / "labels.txt")]
    for path, label_file in cases:
        got = datasets.load_images(path, config, labels=label_file)
        np.testing.assert_allclose(got.images, expected, atol=1e-6, err_msg=str(path))
        np.testing.assert_array_equal(got.labels, labels)
        assert got.images.dtype == np.float32 and got.classes is None
    assert datasets.load_images(flat, config).labels is None
    assert datasets.load_images(flat, config).files == tuple(str(flat / f"{n:02d}.png") for n in range(12))


def test_load_images_class_subfolders_resize_and_rgb(tmp_path):
    from PIL import Image
    import pivot
    for name, value in (("cat", 40), ("dog", 200)):
        (tmp_path / name).mkdir()
        for k in range(2):  # 56 x 56 RGB files for a 28 x 28 grey model, and for a 3-channel model
            Image.fromarray(np.full((56, 56, 3), value, np.uint8)).save(tmp_path / name / f"{k}.jpg", quality=100)
    got = datasets.load_images(tmp_path, _grey_config())
    assert got.classes == ("cat", "dog") and got.labels.tolist() == [0, 0, 1, 1]
    assert got.images.shape == (4, 1, 28, 28)
    np.testing.assert_allclose(got.images[3], (200 / 255 - datasets.MEAN) / datasets.STD, atol=0.02)
    rgb = pivot.ViTConfig.preset("deit_tiny_patch16_224").replace(img_size=32, patch_size=8)
    mean, std = rgb.input_normalization
    images = datasets.load_images(tmp_path, rgb).images
    assert images.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(images[0, 2], (40 / 255 - mean[2]) / std[2], atol=0.02)
    # Subfolders named by class index keep those indices (a missing class shifts nothing).
    numbered = tmp_path / "numbered"
    for name in ("3", "10"):
        (numbered / name).mkdir(parents=True)
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(numbered / name / "a.png")
    assert datasets.load_images(numbered, _grey_config()).labels.tolist() == [3, 10]


def test_load_images_errors_name_the_problem(tmp_path):
    config = _grey_config()
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG but not really")
    np.save(tmp_path / "pixels.npy", np.zeros((4, 28, 28), np.uint8))
    np.save(tmp_path / "three.npy", np.arange(3))
    np.save(tmp_path / "rgb.npy", np.zeros((4, 3, 28, 28), np.uint8))
    np.save(tmp_path / "wrong.npy", np.zeros((4, 1, 20, 20), np.float32))
    (tmp_path / "words.txt").write_text("0 1 cat 3")
    cases = [(tmp_path / "missing", None, "no such file or folder"),
             (tmp_path / "empty", None, "no images in the folder"),
             (tmp_path / "bad", None, "x.png: cannot read the image"),
             (tmp_path / "pixels.npy", tmp_path / "three.npy", "3 labels for 4 images"),
             (tmp_path / "pixels.npy", tmp_path / "words.txt", "labels must be integers"),
             (tmp_path / "rgb.npy", None, "expected (N, 1, H, W)"),
             (tmp_path / "wrong.npy", None, "float images must be the model's normalized input"),
             (tmp_path / "three.npy", None, "images must be uint8 pixels or float32 model inputs, got int64")]
    for path, labels, message in cases:
        with pytest.raises(datasets.DatasetError, match=re.escape(message)):
            datasets.load_images(path, config, labels=labels)


def test_path_selection_results_are_shipped():
    result = datasets.path_selection_results()
    assert {"methods", "rows", "spearman"} <= set(result) and "output_kl" in result["methods"]
