"""LV-ViT numerics: pivot's C engine against the PyTorch re-implementation (pivot.torch, written
from TokenLabeling's public model definition) and the NumPy float64 reference
(pivot.reference.engine / pivot.reference.lvvit, BatchNorm unfolded), on a small LV-ViT-like
config and on LV-ViT-S at 224, with the full path and attention-skip paths."""
import numpy as np
import pytest

import pivot
from pivot import _core
from pivot.lvvit import fold_batchnorm
from pivot.reference import engine as ref
from pivot.reference import lvvit as ref_lvvit

from lvvit_util import TINY, random_images, random_weights

torch = pytest.importorskip("torch")
import pivot.torch as pt  # noqa: E402  (torch is installed: a failure here is pivot's, not a skip)

TINY_PATHS = [None, [1, 0, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]]


def torch_logits(module, images, path):
    with torch.inference_mode():
        return module(torch.from_numpy(images), path=path).double().numpy()


# ----------------------------------------------------------------------------------- kernels

@pytest.mark.parametrize("shape", [
    # B, Cin, H, W, Cout, k, stride, pad
    (2, 3, 16, 16, 8, 7, 2, 3),      # conv1 of the stem
    (1, 5, 9, 9, 6, 3, 1, 1),        # conv2/3: odd sizes
    (3, 2, 11, 7, 4, 3, 2, 0),       # non-square, no padding, stride 2 (floor)
    (1, 4, 5, 5, 3, 5, 1, 0),        # kernel = input: one output pixel
    (2, 3, 8, 8, 5, 1, 1, 0),        # 1x1
    (1, 2, 3, 40, 3, 3, 1, 2),       # wide rows: several tiles per row band, padding > 1
])
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_kernel_matches_reference(rng, shape, relu):
    B, Cin, H, W, Cout, k, stride, pad = shape
    x = rng.standard_normal((B, Cin, H, W)).astype(np.float32)
    w = rng.standard_normal((Cout, Cin, k, k)).astype(np.float32)
    b = rng.standard_normal(Cout).astype(np.float32)
    want = ref_lvvit.conv2d(x, w, b, stride, pad)
    if relu:
        want = ref_lvvit.relu(want)
    for threads in (1, 3):
        got = _core.conv2d_forward(x, w, b, stride, pad, relu, threads)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        tw = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride, pad)
        if relu:
            tw = torch.relu(tw)
    np.testing.assert_allclose(want, tw.numpy(), rtol=1e-5, atol=1e-5)


def test_conv2d_kernel_on_random_small_shapes(rng):
    # every combination of padding wider than the row, stride past the edge, 1-pixel inputs
    for _ in range(80):
        k, stride, pad = int(rng.integers(1, 8)), int(rng.integers(1, 4)), int(rng.integers(0, 4))
        H, W = (int(v) for v in rng.integers(max(1, k - 2 * pad), 12, size=2))
        B, Cin, Cout = (int(v) for v in rng.integers(1, 4, size=3))
        x = rng.standard_normal((B, Cin, H, W)).astype(np.float32)
        w = rng.standard_normal((Cout, Cin, k, k)).astype(np.float32)
        b = rng.standard_normal(Cout).astype(np.float32)
        got = _core.conv2d_forward(x, w, b, stride, pad, False, 2)
        np.testing.assert_allclose(got, ref_lvvit.conv2d(x, w, b, stride, pad), rtol=1e-5, atol=1e-5,
                                   err_msg=str((B, Cin, H, W, Cout, k, stride, pad)))


def test_conv2d_kernel_refuses_bad_arguments(rng):
    x = np.zeros((1, 2, 4, 4), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    b = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="stride >= 1"):
        _core.conv2d_forward(x, w, b, 0, 0, False, 1)
    with pytest.raises(ValueError, match="kernel"):
        _core.conv2d_forward(x, np.zeros((3, 2, 7, 7), np.float32), b, 1, 1, False, 1)
    with pytest.raises(ValueError, match="weight has size 3 along axis 1"):
        _core.conv2d_forward(x, np.zeros((3, 3, 3, 3), np.float32), b, 1, 0, False, 1)
    with pytest.raises(TypeError, match="float32"):
        _core.conv2d_forward(x.astype(np.float64), w, b, 1, 0, False, 1)


def test_fold_batchnorm_equals_conv_then_batchnorm(rng):
    w = rng.standard_normal((6, 4, 3, 3))
    gamma, beta, mean = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal(6)
    var = rng.uniform(0.1, 3.0, 6)
    fw, fb = fold_batchnorm(w, gamma, beta, mean, var)
    assert fw.dtype == fb.dtype == np.float32
    x = rng.standard_normal((2, 4, 7, 7))
    unfolded = ref_lvvit.batchnorm(ref_lvvit.conv2d(x, w, None, 1, 1), gamma, beta, mean, var)
    np.testing.assert_allclose(ref_lvvit.conv2d(x, fw, fb, 1, 1), unfolded, rtol=1e-5, atol=1e-5)
    bn = torch.nn.BatchNorm2d(6).double().eval()                   # torch eval BatchNorm, eps 1e-5
    with torch.no_grad():
        for p, v in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), (gamma, beta, mean, var)):
            p.copy_(torch.from_numpy(v))
        tw = bn(torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, 1, 1)).numpy()
    np.testing.assert_allclose(unfolded, tw, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="running_var"):
        fold_batchnorm(w, gamma, beta, mean, -np.ones(6))


def test_stem_folded_in_c_equals_unfolded_reference():
    weights = random_weights(TINY, seed=7)
    model = pivot.ViT(TINY, weights)
    images = random_images(TINY, 3)
    got = _core.stem_forward(images, model._stem, model.config, 2)
    want = ref_lvvit.conv_stem(images, weights)
    assert got.shape == (3, 16, 32, 32)
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())
    assert (got >= 0).all() and (got == 0).any()                    # after ReLU


# ----------------------------------------------------------------------------------- whole model

@pytest.mark.parametrize("path", TINY_PATHS, ids=["full", "skip_1_3", "skip_0_1", "all_skipped"])
def test_tiny_lvvit_matches_torch_and_reference(path):
    weights = random_weights(TINY, seed=11)
    model = pivot.ViT(TINY, weights)
    images = random_images(TINY, 3)
    got = model(images, path=path)
    want_torch = torch_logits(pt.from_vit(model), images, path)
    want_ref = ref.forward(TINY, weights, images, path)
    assert np.abs(want_ref).max() > 1.0                             # logits of a useful size
    assert np.abs(got - want_ref).max() <= 1e-4
    assert np.abs(got - want_torch).max() <= 1e-4
    assert np.abs(want_torch - want_ref).max() <= 1e-4


def test_tiny_lvvit_branches_match_reference():
    weights = random_weights(TINY, seed=12)
    model = pivot.ViT(TINY, weights)
    images = random_images(TINY, 2)
    path = [1, 0, 1, 0]
    logits, attn, mlp = model.forward_branches(images, path=path)
    r_logits, r_attn, r_mlp = ref.forward_branches(TINY, weights, images, path)
    np.testing.assert_array_equal(logits, model(images, path=path))
    assert np.abs(logits - r_logits).max() <= 1e-4
    assert [a is None for a in attn] == [False, True, False, True]
    for a, ra in zip(attn, r_attn):
        if a is not None:
            assert a.shape == (2, TINY.num_tokens, TINY.embed_dim)
            assert np.abs(a - ra).max() <= 1e-4 * max(1.0, np.abs(ra).max())
    for m, rm in zip(mlp, r_mlp):
        assert np.abs(m - rm).max() <= 1e-4 * max(1.0, np.abs(rm).max())


def test_captured_branches_are_taken_before_the_skip_lam_division():
    # Residual stream after block i: x_{i+1} = x_i + a_i / skip_lam + m_i / skip_lam. With every
    # attention skipped, the class token's stream is cls + pos + sum_i m_i[:, 0] / skip_lam.
    weights = random_weights(TINY, seed=13)
    model = pivot.ViT(TINY, weights)
    images = random_images(TINY, 2)
    _, _, mlp = model.forward_branches(images, path=[0] * 4)
    x0 = (weights["cls_token"] + weights["pos_embed"][:, :1])[0, 0].astype(np.float64)
    stream = x0 + sum(m[:, 0].astype(np.float64) for m in mlp) / TINY.skip_lam
    final = ref.layernorm(stream, weights["norm.weight"], weights["norm.bias"], TINY.norm_eps)
    cls_logits = final @ weights["head.weight"].T.astype(np.float64) + weights["head.bias"]
    _, r_attn, r_mlp = ref.forward_branches(TINY, weights, images, [0] * 4)
    aux = ref.forward(TINY, weights, images, [0] * 4) - cls_logits   # what the aux head adds
    assert np.abs(aux).max() > 0.1
    stream_ref = x0 + sum(m[:, 0] for m in r_mlp) / TINY.skip_lam
    assert np.abs(stream - stream_ref).max() <= 1e-4 * np.abs(stream_ref).max()


def test_large_batches_run_in_chunks_with_the_same_logits():
    model = pivot.ViT(TINY, random_weights(TINY, seed=14))
    images = random_images(TINY, 19)                                 # 8 + 8 + 3 images
    all_at_once = model(images, threads=2)
    one_by_one = np.concatenate([model(images[i:i + 1], threads=1) for i in range(19)])
    assert np.abs(all_at_once - one_by_one).max() <= 1e-5
    logits, attn, mlp = model.forward_branches(images[:10], threads=2)
    assert len(attn) == len(mlp) == 4 and mlp[0].shape == (10, TINY.num_tokens, TINY.embed_dim)
    assert np.abs(logits - all_at_once[:10]).max() <= 1e-5


@pytest.mark.parametrize("changes", [dict(stem="patch"), dict(aux_head=False), dict(skip_lam=3.0),
                                     dict(qkv_bias=True), dict(stem="patch", aux_head=False, qkv_bias=True),
                                     dict(aux_head=False, distilled=True)],
                         ids=["patch_stem", "no_aux", "skip_lam_3", "qkv_bias", "only_skip_lam", "stem_distilled"])
def test_each_lvvit_feature_alone_matches_torch_and_reference(changes):
    config = TINY.replace(**changes)
    weights = random_weights(config, seed=15)
    model = pivot.ViT(config, weights)
    images = random_images(config, 2)
    for path in (None, [0, 1, 1, 0]):
        got = model(images, path=path)
        assert np.abs(got - ref.forward(config, weights, images, path)).max() <= 1e-4
        assert np.abs(got - torch_logits(pt.from_vit(model), images, path)).max() <= 1e-4


def test_torch_twin_round_trip_and_official_keys():
    from lvvit_util import official_keys
    model = pivot.ViT(TINY, random_weights(TINY, seed=16), path=[1, 1, 0, 1])
    module = pt.from_vit(model)
    assert list(module.state_dict()) == official_keys(TINY.depth)
    back = pt.to_vit(module)
    assert back.path.tolist() == [1, 1, 0, 1]
    np.testing.assert_array_equal(back._params, model._params)


def test_lvvit_s_matches_torch_at_224():
    config = pivot.ViTConfig.preset("lvvit_s")
    rng = np.random.default_rng(21)
    model = pivot.ViT.random(config, seed=21)
    weights = model.state_dict()
    for i in (1, 2, 3):  # BatchNorm statistics that are not the identity, so that folding matters
        weights[f"patch_embed.bn{i}.running_mean"] = (rng.standard_normal(64) * 0.1).astype(np.float32)
        weights[f"patch_embed.bn{i}.running_var"] = rng.uniform(0.05, 0.5, 64).astype(np.float32)
        weights[f"patch_embed.bn{i}.weight"] = rng.uniform(0.5, 1.5, 64).astype(np.float32)
        weights[f"patch_embed.bn{i}.bias"] = (rng.standard_normal(64) * 0.1).astype(np.float32)
    weights["head.weight"] *= 5                                      # logits of order 1-10
    weights["aux_head.weight"] *= 5
    model = pivot.ViT(config, weights)
    module = pt.from_vit(model)
    images = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    skip_even = [1, 0] * 8
    for path in (None, skip_even, [0] * 12 + [1] * 4):
        got = model(images, path=path)
        want = torch_logits(module, images, path)
        assert np.abs(want).max() > 0.5
        assert np.abs(got - want).max() <= 1e-4, path
    assert pivot.flops(model) == 2 * (
        112 * 112 * 64 * (3 * 49 + 2 * 64 * 9)                        # stem convolutions
        + 196 * 64 * 64 * 384                                         # proj (8x8, stride 8)
        + 16 * (197 * 384 * 3 * 384 + 2 * 197 * 197 * 384 + 197 * 384 * 384 + 2 * 197 * 384 * 1152)
        + 384 * 1000 + 196 * 384 * 1000)                              # head, aux head
    assert pivot.flops(model, skip_even) < pivot.flops(model)


def test_bad_images_are_refused():
    model = pivot.ViT.random(TINY)
    with pytest.raises(ValueError, match="expects 64x64"):
        model(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="path has 3 entries"):
        model(random_images(TINY, 1), path=[1, 1, 1])


def test_model_cka_runs_on_lvvit_and_ignores_the_skip_lam_scale():
    # The captured branches are before the division by skip_lam; CKA is invariant to that scale,
    # so the matrix would be the same had they been captured after it.
    model = pivot.ViT(TINY, random_weights(TINY, seed=17))
    images = random_images(TINY, 8)
    path = [1, 0, 1, 1]
    cka = pivot.model_cka(model, images, batch_size=4, path=path, progress=False)
    assert cka.shape == (4, 4) and np.isnan(cka[:, 1]).all() and np.isfinite(np.delete(cka, 1, axis=1)).all()
    _, attn, mlp = model.forward_branches(images, path=path)
    np.testing.assert_allclose(pivot.cka_matrix(mlp, attn), cka, atol=1e-6, equal_nan=True)
    scaled = pivot.cka_matrix([m / TINY.skip_lam for m in mlp], [a if a is None else a / TINY.skip_lam for a in attn])
    np.testing.assert_allclose(scaled, cka, atol=1e-6, equal_nan=True)
