"""Trains the small Fashion-MNIST ViT that tests/test_int8_accuracy.py quantizes (int8 fixture).

    PYTHONPATH=. python3 tests/reference/make_int8_model.py   # writes tests/reference/fmnist_tiny_vit.safetensors

embed 32, depth 4, 4 heads, patch 4 (28x28x1, 10 classes), ~50k weights; a few minutes on 2 CPU cores.
"""
import pathlib

import numpy as np
import torch

import pivot
from pivot import torch as ptorch
from pivot import train

OUT = pathlib.Path(__file__).with_name("fmnist_tiny_vit.safetensors")


def main():
    torch.set_num_threads(1)  # a shared machine: OpenMP spinning with 2 threads stalls
    cfg = pivot.ViTConfig(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=4,
                          num_heads=4, mlp_ratio=4.0)
    module = ptorch.VisionTransformer(cfg)
    train.init_weights(module, seed=0)
    images, labels = pivot.datasets.fashion_mnist("train")
    train.fit(module, images, labels, steps=500, batch_size=128, lr=3e-3, warmup_steps=50, seed=0,
              augmentation=False, progress=True)
    model = ptorch.to_vit(module)
    test_x, test_y = pivot.datasets.fashion_mnist_sample()
    print("sample accuracy", float((model(test_x).argmax(1) == test_y).mean()))
    model.save(OUT)


if __name__ == "__main__":
    main()
