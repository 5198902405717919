"""Makes fashion_mnist_test_sample.npz: 100 test images per class, the first of each class in
file order (deterministic). Run: python3 pivot/data/make_fashion_mnist_sample.py"""
import pathlib

import numpy as np

from pivot.datasets import DEFAULT_ROOT, _find, read_idx

root = pathlib.Path(DEFAULT_ROOT)
images = read_idx(_find(root, "t10k-images-idx3-ubyte"), 3)
labels = read_idx(_find(root, "t10k-labels-idx1-ubyte"), 1)
index = np.sort(np.concatenate([np.flatnonzero(labels == c)[:100] for c in range(10)]))
out = pathlib.Path(__file__).with_name("fashion_mnist_test_sample.npz")
np.savez_compressed(out, images=images[index], labels=labels[index], test_index=index.astype(np.int32))
print(f"wrote {out} ({out.stat().st_size} bytes, {len(index)} images)")
