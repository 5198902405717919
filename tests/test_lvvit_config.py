"""LV-ViT: config fields and presets, official key names, and loading the official checkpoint
format (plain or wrapped .pth / .pth.tar state dicts with BatchNorm counters; no download: the
state dicts are made here with the official key names and random weights)."""
import dataclasses

import numpy as np
import pytest

import pivot
from pivot import ViTConfig
from pivot.checkpoints import infer_config
from pivot.io import load_state_dict, save_safetensors

from lvvit_util import TINY, official_keys, random_images, random_weights

LVVIT_S = ViTConfig.preset("lvvit_s")


def test_lvvit_s_preset_is_the_official_definition():
    # tlt/models/lvvit.py lvvit_s: patch 16, embed 384, depth 16, heads 6, mlp ratio 3, p_emb '4_2'
    # (64-channel stem), skip_lam 2, return_dense (aux head); Attention's qkv_bias=False default;
    # norm_layer nn.LayerNorm (eps 1e-5).
    c = LVVIT_S
    assert (c.img_size, c.patch_size, c.in_chans, c.num_classes) == (224, 16, 3, 1000)
    assert (c.embed_dim, c.depth, c.num_heads, c.mlp_hidden) == (384, 16, 6, 1152)
    assert (c.stem, c.stem_channels, c.skip_lam, c.aux_head, c.qkv_bias) == ("lvvit_conv", 64, 2.0, True, False)
    assert c.norm_eps == 1e-5 and not c.distilled and not c.is_timm_vit
    assert (c.num_tokens, c.proj_size, c.proj_kernel, c.proj_in_chans) == (197, 112, 8, 64)
    m = ViTConfig.preset("lvvit_m")
    assert (m.embed_dim, m.depth, m.num_heads, m.skip_lam) == (512, 20, 8, 2.0)
    big = ViTConfig.preset("lvvit_l")
    assert (big.embed_dim, big.depth, big.num_heads, big.skip_lam, big.stem_channels) == (768, 24, 12, 3.0, 128)


def test_weight_shapes_are_the_official_keys_and_sizes():
    shapes = LVVIT_S.weight_shapes()
    official = [k for k in official_keys(16) if not k.endswith("num_batches_tracked")]
    assert list(shapes) == official                                  # names and order
    assert shapes["patch_embed.conv1.weight"] == (64, 3, 7, 7)
    assert shapes["patch_embed.conv2.weight"] == shapes["patch_embed.conv3.weight"] == (64, 64, 3, 3)
    assert shapes["patch_embed.bn2.running_var"] == (64,)
    assert shapes["patch_embed.proj.weight"] == (384, 64, 8, 8)
    assert shapes["blocks.15.attn.qkv.weight"] == (1152, 384) and "blocks.0.attn.qkv.bias" not in shapes
    assert shapes["aux_head.weight"] == (1000, 384)
    # README of TokenLabeling: LV-ViT-S has 25.77M parameters (without the aux head and the
    # BatchNorm running statistics, which are buffers).
    n = sum(int(np.prod(s)) for k, s in shapes.items() if not k.startswith("aux_head") and "running" not in k)
    assert round(n / 1e6, 2) == 25.77


def test_timm_presets_keep_their_shapes_and_defaults():
    deit = ViTConfig.preset("deit_small_patch16_224")
    assert deit.is_timm_vit and deit.stem == "patch" and deit.skip_lam == 1.0 and deit.qkv_bias
    shapes = deit.weight_shapes()
    assert len(shapes) == 152 and "blocks.0.attn.qkv.bias" in shapes and "aux_head.weight" not in shapes
    assert not any("conv" in k or ".bn" in k for k in shapes)
    assert ViTConfig() == ViTConfig(stem="patch", stem_channels=64, skip_lam=1.0, aux_head=False, qkv_bias=True)


@pytest.mark.parametrize("changes, match", [
    (dict(stem="resnet"), "stem must be one of"),
    (dict(stem_channels=0), "stem_channels"),
    (dict(patch_size=7, img_size=28), "must be even"),
    (dict(skip_lam=0.0), "skip_lam"),
    (dict(skip_lam=float("inf")), "skip_lam"),
    (dict(skip_lam=True), "skip_lam"),
    (dict(aux_head=1), "aux_head must be a bool"),
    (dict(distilled=True), "cannot be combined"),
])
def test_bad_lvvit_fields_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        TINY.replace(**changes)


# ----------------------------------------------------------------------------------- loading

def torch_state_dict(config, weights):
    """The state dict a PyTorch LV-ViT saves: torch tensors, with the int64 BatchNorm counters."""
    torch = pytest.importorskip("torch")
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    for i in (1, 2, 3):
        state[f"patch_embed.bn{i}.num_batches_tracked"] = torch.tensor(1234, dtype=torch.int64)
    return state


@pytest.mark.parametrize("name", ["lvvit_s", "lvvit_m", "lvvit_l", "lvvit_t"])
def test_infer_config_recognizes_lvvit(name):
    config = ViTConfig.preset(name)
    zeros = {k: np.broadcast_to(np.float32(0), s) for k, s in config.weight_shapes().items()}
    zeros["patch_embed.bn1.num_batches_tracked"] = np.zeros((), np.int64)
    assert infer_config(zeros) == config
    for size in (384, 448):  # the released 384/448 checkpoints differ only in pos_embed
        bigger = config.replace(img_size=size)
        zeros["pos_embed"] = np.broadcast_to(np.float32(0), bigger.weight_shapes()["pos_embed"])
        assert infer_config(zeros) == bigger


def test_infer_config_needs_skip_lam_for_unknown_lvvit():
    zeros = {k: np.broadcast_to(np.float32(0), s) for k, s in TINY.weight_shapes().items()}
    with pytest.raises(ValueError, match="pass skip_lam="):
        infer_config(zeros)
    assert infer_config(zeros, num_heads=4, skip_lam=2.0) == TINY
    # without the conv stem or the aux head nothing says LV-ViT: a timm ViT without qkv bias
    plain = {k: v for k, v in zeros.items() if "conv" not in k and ".bn" not in k and "aux_head" not in k}
    plain["patch_embed.proj.weight"] = np.broadcast_to(np.float32(0), (64, 3, 16, 16))
    config = infer_config(plain, num_heads=4)
    assert config.is_timm_vit is False and config.qkv_bias is False and config.stem == "patch"
    assert config.norm_eps == 1e-6 and config.skip_lam == 1.0


def test_infer_config_checks_the_stem():
    zeros = {k: np.broadcast_to(np.float32(0), s) for k, s in TINY.weight_shapes().items()}
    zeros["patch_embed.conv1.weight"] = np.broadcast_to(np.float32(0), (16, 3, 5, 5))
    with pytest.raises(ValueError, match="conv1.weight has shape"):
        infer_config(zeros, skip_lam=2.0)
    zeros["patch_embed.conv1.weight"] = np.broadcast_to(np.float32(0), (32, 3, 7, 7))
    with pytest.raises(ValueError, match="reads 16 channels but patch_embed.conv1 makes 32"):
        infer_config(zeros, skip_lam=2.0)


def test_official_pth_formats_load(tmp_path):
    torch = pytest.importorskip("torch")
    weights = random_weights(TINY, seed=3)
    state = torch_state_dict(TINY, weights)
    assert sorted(state) == sorted(official_keys(TINY.depth))
    images = random_images(TINY, 2)
    want = pivot.ViT(TINY, weights)(images)
    sources = {
        "plain.pth": state,                                                  # the released files
        "lvvit_s-26M-224-83.3.pth.tar": {"state_dict": state, "epoch": 310},  # timm training checkpoints
        "ema.pth": {"state_dict_ema": {"module." + k: v for k, v in state.items()}},
    }
    for name, obj in sources.items():
        torch.save(obj, tmp_path / name)
        loaded, _ = load_state_dict(tmp_path / name)
        assert not any(k.endswith("num_batches_tracked") for k in loaded)
        assert set(loaded) == set(TINY.weight_shapes())
        model = pivot.ViT.from_timm(tmp_path / name, num_heads=4, skip_lam=2.0)
        assert model.config == TINY
        np.testing.assert_array_equal(model(images), want)


def test_counters_in_safetensors_and_npz_are_dropped(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors import numpy as safetensors_numpy
    weights = random_weights(TINY, seed=4)
    with_counters = dict(weights, **{f"patch_embed.bn{i}.num_batches_tracked": np.array(7, np.int64) for i in (1, 2, 3)})
    safetensors_numpy.save_file(with_counters, str(tmp_path / "w.safetensors"))
    np.savez(tmp_path / "w.npz", **with_counters)
    for name in ("w.safetensors", "w.npz"):
        loaded, _ = load_state_dict(tmp_path / name)
        assert set(loaded) == set(weights)
        for k, v in weights.items():
            np.testing.assert_array_equal(loaded[k], v)
    safetensors_numpy.save_file({"steps": np.array(1, np.int64)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(pivot.WeightsFileError, match="only F32, F16, BF16 and F64"):  # other integers still refused
        load_state_dict(tmp_path / "bad.safetensors")


def test_model_takes_counters_and_gives_back_the_official_state_dict(tmp_path):
    weights = random_weights(TINY, seed=5)
    model = pivot.ViT(TINY, dict(weights, **{"patch_embed.bn2.num_batches_tracked": np.array(3)}))
    state = model.state_dict()
    assert list(state) == list(TINY.weight_shapes())
    for k, v in weights.items():
        np.testing.assert_array_equal(state[k], v)                   # BatchNorm as loaded, not folded
    assert model.num_params == sum(int(np.prod(s)) for s in TINY.weight_shapes().values())
    model.save(tmp_path / "m.safetensors")
    back = pivot.ViT.from_timm(tmp_path / "m.safetensors")          # config from the metadata
    assert back.config == TINY
    np.testing.assert_array_equal(back._params, model._params)
    with pytest.raises(ValueError, match="unexpected keys.*blocks.0.attn.qkv.bias"):
        pivot.ViT(TINY, dict(weights, **{"blocks.0.attn.qkv.bias": np.zeros(192, np.float32)}))
    with pytest.raises(ValueError, match="missing keys.*patch_embed.bn3.running_var"):
        pivot.ViT(TINY, {k: v for k, v in weights.items() if k != "patch_embed.bn3.running_var"})
    assert "stem=lvvit_conv" in repr(model) and "skip_lam=2.0" in repr(model)


def test_config_round_trips_through_metadata_json():
    import json
    assert ViTConfig(**json.loads(json.dumps(dataclasses.asdict(LVVIT_S)))) == LVVIT_S


def test_random_lvvit_init():
    model = pivot.ViT.random(TINY, seed=0)
    s = model.state_dict()
    assert np.all(s["patch_embed.bn1.weight"] == 1) and np.all(s["patch_embed.bn1.running_mean"] == 0)
    assert np.all(s["patch_embed.bn1.running_var"] == 1) and np.all(s["patch_embed.bn3.bias"] == 0)
    bound = 1 / np.sqrt(3 * 49)                                      # torch's Conv2d default init
    assert 0.9 * bound < np.abs(s["patch_embed.conv1.weight"]).max() <= bound
    assert np.abs(s["aux_head.weight"]).max() <= 0.04                # trunc normal, std 0.02
