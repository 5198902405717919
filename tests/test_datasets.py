import gzip
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
