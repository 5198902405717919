"""pivot.train: the PIVOT loss terms against hand computations, the fit loop, export equality."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pivot  # noqa: E402
from pivot.torch import VisionTransformer, to_vit  # noqa: E402
from pivot.train import PivotLoss, augment, evaluate, features, fit, init_weights, training_device  # noqa: E402

TINY = pivot.ViTConfig(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=16, depth=3, num_heads=2)


def test_entropy_term_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    labels = torch.tensor([0, 0, 2])  # rows 0 and 2 correct, row 1 wrong
    def norm_entropy(row):
        p = np.exp(row) / np.exp(row).sum()
        return float(-(p * np.log(p)).sum() / math.log(3))
    expected = (norm_entropy(np.array([2.0, 0, 0])) + norm_entropy(np.array([0, 0, 5.0]))) / 2
    assert PivotLoss.entropy_term(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_entropy_term_zero_when_nothing_correct():
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0]], requires_grad=True)
    value = PivotLoss.entropy_term(logits, torch.tensor([1, 0]))
    assert value.item() == 0.0
    value.backward()  # still differentiable
    assert torch.all(logits.grad == 0)


def test_total_is_weighted_sum_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    fs, ft = torch.randn(6, 5), torch.randn(6, 5)
    loss = PivotLoss(label_smoothing=0.2, distill_weight=0.5, entropy_weight=0.3)
    total, terms = loss(logits, labels, fs, ft)
    # label-smoothed CE by hand: (1 - eps) * NLL + eps * mean over classes of -log p
    logp = torch.log_softmax(logits, -1).numpy()
    ce = np.mean([-(0.8 * logp[i, labels[i]] + 0.2 * logp[i].mean()) for i in range(6)])
    distill = float(((fs - ft) ** 2).mean())
    ent = PivotLoss.entropy_term(logits, labels).item()
    assert terms.ce == pytest.approx(ce, rel=1e-5)
    assert terms.distill == pytest.approx(distill, rel=1e-6)
    assert total.item() == pytest.approx(ce + 0.5 * distill + 0.3 * ent, rel=1e-5)


def test_defaults_documented():
    loss = PivotLoss()
    assert (loss.label_smoothing, loss.distill_weight, loss.entropy_weight) == (0.1, 1.0, 0.1)


@pytest.mark.parametrize("kwargs", [dict(distill_weight=-1), dict(entropy_weight=float("nan")),
                                    dict(label_smoothing=1.0)])
def test_bad_weights_refused(kwargs):
    with pytest.raises(ValueError):
        PivotLoss(**kwargs)


def test_distill_needs_features():
    with pytest.raises(ValueError, match="student_features"):
        PivotLoss()(torch.zeros(2, 3), torch.tensor([0, 1]))


def test_augment_keeps_shape_and_content():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 1, 8, 8)
    y = augment(x, gen, shift=0, flip=False)
    assert torch.equal(x, y)
    y = augment(x, gen, shift=2)
    assert y.shape == x.shape


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    images[np.arange(n), 0, labels * 2, :] += 3.0  # a learnable signal: a bright row per class
    return images, labels.astype(np.int64)


def test_fit_learns_and_exports_exactly():
    module = VisionTransformer(TINY)
    init_weights(module, seed=0)
    images, labels = _data()
    before = evaluate(module, images, labels)
    log = fit(module, images, labels, loss=PivotLoss(distill_weight=0), steps=60, batch_size=32, lr=3e-3,
              warmup_steps=5, augmentation=False, progress=False)
    assert log["steps"] == 60
    after = evaluate(module, images, labels)
    assert after > max(before, 0.6)
    for path in ([1, 1, 1], [1, 0, 1], [0, 0, 0]):
        with torch.no_grad():
            expected = module(torch.from_numpy(images), path=path).numpy()
        got = to_vit(module, path=path)(images)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_fit_bf16_learns_and_keeps_float32_weights():
    module = VisionTransformer(TINY)
    init_weights(module, seed=0)
    images, labels = _data()
    before = evaluate(module, images, labels)
    fit(module, images, labels, loss=PivotLoss(distill_weight=0), steps=60, batch_size=32, lr=3e-3,
        warmup_steps=5, augmentation=False, precision="bf16", progress=False)
    assert all(p.dtype == torch.float32 for p in module.parameters())
    assert evaluate(module, images, labels) > max(before, 0.6)


def test_fit_with_teacher_and_path_is_deterministic():
    images, labels = _data()
    teacher = VisionTransformer(TINY)
    init_weights(teacher, seed=1)
    results = []
    for _ in range(2):
        student = VisionTransformer(TINY, path=[1, 0, 1])
        init_weights(student, seed=2)
        fit(student, images, labels, path=[1, 0, 1], teacher=teacher, steps=5, batch_size=16, progress=False, seed=3)
        results.append(student.state_dict()["head.weight"].clone())
    assert torch.equal(results[0], results[1])


def test_features_match_forward():
    module = VisionTransformer(TINY).eval()
    init_weights(module, seed=0)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        logits, feats = features(module, x, [1, 0, 1])
        assert torch.allclose(logits, module(x, path=[1, 0, 1]), atol=1e-6)
    assert feats.shape == (4, 16)


def test_fit_refuses_bad_arguments():
    module = VisionTransformer(TINY)
    images, labels = _data(16)
    with pytest.raises(ValueError, match="steps"):
        fit(module, images, labels, steps=0, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        fit(module, images, labels, steps=1, batch_size=32, progress=False)
    with pytest.raises(ValueError, match="teacher"):
        fit(module, images, labels, steps=1, batch_size=8, loss=PivotLoss(), progress=False)
    with pytest.raises(ValueError, match="precision"):
        fit(module, images, labels, steps=1, batch_size=8, precision="fp16", progress=False)
    with pytest.raises(ValueError, match="device"):
        fit(module, images, labels, steps=1, batch_size=8, device="tpu", progress=False)


def test_training_device_names_what_is_wrong():
    assert training_device(None) == torch.device("cpu") == training_device("cpu")
    for bad in ("tpu", "gpu0", 3.5, "meta"):
        with pytest.raises(ValueError, match="device must be"):
            training_device(bad)
    if torch.cuda.is_available():
        assert training_device("cuda").type == "cuda"
        with pytest.raises(ValueError, match="CUDA GPU"):
            training_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            training_device("cuda")


def test_fit_on_the_cpu_device_is_the_default_bit_for_bit():
    images, labels = _data()
    states = []
    for device in (None, "cpu", torch.device("cpu")):
        module = VisionTransformer(TINY, path=[1, 0, 1])
        init_weights(module, seed=2)
        fit(module, images, labels, path=[1, 0, 1], loss=PivotLoss(distill_weight=0), steps=4, batch_size=16,
            progress=False, seed=3, device=device)
        states.append(module.state_dict())
    for other in states[1:]:
        assert all(torch.equal(states[0][k], other[k]) for k in states[0])
