"""PIVOT-Sim on LV-ViT: the conv stem's convolutions as im2col GEMMs on the array, the aux head,
C against the reference, SCALE-Sim's convolution mapping, and LVViT-S at batch 1 beside the
paper's Table 3 (79.55 ms) with the ZCU102 constants fitted on DeiT-S, not refitted."""
import contextlib
import io
import shutil
import tempfile

import numpy as np
import pytest

import pivot
from pivot import sim
from pivot.lvvit import stem_gemm_shapes
from pivot.reference import sim as ref

from lvvit_util import TINY
from test_sim_model import assert_rows_equal, hw_dict, random_hw

LVVIT_S = pivot.ViTConfig.preset("lvvit_s")
STEMLESS = pivot.ViTConfig(depth=16, mlp_ratio=3.0)     # the simulator author's LVViT-S-shaped model

# LVViT-S at batch 1 on sim.ZCU102 (recorded; see docs/simulator.md)
LVVIT_S_DELAY_MS = 90.251
PAPER_DELAY_MS = 79.55                                   # Table 3
DELAY_BAND = 0.15                                        # documented: within +15% of the paper


def ref_cfg(config):
    return dict(embed_dim=config.embed_dim, depth=config.depth, num_heads=config.num_heads,
                mlp_hidden=config.mlp_hidden, num_tokens=config.num_tokens, num_patches=config.num_patches,
                patch_dim=config.proj_in_chans * config.proj_kernel ** 2, num_classes=config.num_classes,
                num_prefix_tokens=config.num_prefix_tokens, distilled=config.distilled,
                stem_gemms=stem_gemm_shapes(config), aux_head=config.aux_head)


def test_lvvit_s_rows():
    r = sim.simulate(LVVIT_S)
    names = [layer.name for layer in r.layers]
    assert names[:7] == ["patch_embed.conv1", "patch_embed.relu1", "patch_embed.conv2", "patch_embed.relu2",
                         "patch_embed.conv3", "patch_embed.relu3", "patch_embed"]
    assert names[-4:] == ["head", "norm.patches", "aux_head", "aux_head.max"]
    by = {layer.name: layer for layer in r.layers}
    # im2col GEMMs: M = output pixels (112 x 112), N = output channels, K = in_channels * kernel^2
    assert (by["patch_embed.conv1"].M, by["patch_embed.conv1"].N, by["patch_embed.conv1"].K) == (12544, 64, 147)
    assert (by["patch_embed.conv2"].M, by["patch_embed.conv2"].N, by["patch_embed.conv2"].K) == (12544, 64, 576)
    assert (by["patch_embed"].M, by["patch_embed"].N, by["patch_embed"].K) == (196, 384, 4096)   # proj 8x8 over 64 ch
    assert by["patch_embed.relu1"].kind == "ps" and by["patch_embed.relu1"].M * by["patch_embed.relu1"].N == 12544 * 64
    assert (by["aux_head"].M, by["aux_head"].N, by["aux_head"].K) == (196, 1000, 384)
    assert all(layer.module == "other" for layer in r.layers if "patch_embed" in layer.name or "aux" in layer.name)
    assert r.macs == pivot.flops(LVVIT_S) // 2                       # the same products as the engine
    # BatchNorm is folded into the convolutions: no rows of its own; skip_lam costs nothing
    assert not any("bn" in n for n in names)
    assert sim.simulate(LVVIT_S.replace(skip_lam=1.0)).delay_ms == r.delay_ms


def test_c_rows_equal_reference(rng):
    configs = [LVVIT_S, TINY, TINY.replace(aux_head=False), TINY.replace(stem="patch"),
               LVVIT_S.replace(img_size=384)]
    for config in configs:
        for _ in range(4):
            hw = random_hw(rng)
            path = rng.integers(0, 2, config.depth).astype(np.uint8)
            batch = int(rng.integers(1, 4))
            entropy = bool(rng.integers(0, 2))
            report = sim.simulate(config, path, hw, batch=batch, entropy=entropy)
            expected = ref.vit_rows(ref_cfg(config), path, hw_dict(hw), batch, entropy)
            assert_rows_equal(expected, report.layers)
            assert report.delay_ms == pytest.approx(ref.totals(expected)["delay_s"] * 1e3, rel=1e-12)
    # plain ViTs keep their rows (no stem or aux rows)
    deit = pivot.ViTConfig.preset("deit_small_patch16_224")
    assert [layer.name for layer in sim.simulate(deit).layers][0] == "patch_embed"


def test_lvvit_s_beside_table_3_without_refitting():
    r = sim.simulate(LVVIT_S)
    assert r.delay_ms == pytest.approx(LVVIT_S_DELAY_MS, rel=1e-4)   # recorded
    assert PAPER_DELAY_MS <= r.delay_ms <= PAPER_DELAY_MS * (1 + DELAY_BAND)
    assert r.energy_j == pytest.approx(0.680, rel=2e-3)              # Table 3: 0.63 J
    assert r.power_w == pytest.approx(7.53, rel=2e-3)                # Table 3: 7.92 W
    # Where the +10.7 ms over the paper comes from: the stemless shape takes 75.01 ms; the stem's
    # three convolutions add 13.25 ms on the array, their ReLUs 0.25 ms, the 8x8 projection over
    # 64 channels 1.37 ms more than DeiT's 16x16 over 3, and the aux head 0.37 ms.
    base = sim.simulate(STEMLESS)
    assert base.delay_ms == pytest.approx(75.01, abs=0.01)
    by = {layer.name: layer for layer in r.layers}
    stem = sum(by[f"patch_embed.conv{i}"].delay_ms for i in (1, 2, 3))
    relu = sum(by[f"patch_embed.relu{i}"].delay_ms for i in (1, 2, 3))
    proj_extra = by["patch_embed"].delay_ms - {l.name: l for l in base.layers}["patch_embed"].delay_ms
    aux = by["norm.patches"].delay_ms + by["aux_head"].delay_ms + by["aux_head.max"].delay_ms
    assert stem == pytest.approx(13.25, abs=0.01) and relu == pytest.approx(0.25, abs=0.01)
    assert proj_extra == pytest.approx(1.37, abs=0.01) and aux == pytest.approx(0.37, abs=0.01)
    assert r.delay_ms == pytest.approx(base.delay_ms + stem + relu + proj_extra + aux, rel=1e-9)
    # Input stationary streams only N = 64 output channels per fold against 2*64 + 36 - 2 = 162
    # cycles of fill and drain: the stem uses 22-28% of the array.
    assert all(by[f"patch_embed.conv{i}"].utilization_pct < 30 for i in (1, 2, 3))
    # The same convolutions and proj at full array utilization would cost 4.69 ms in place of
    # 14.93 ms, giving 80.01 ms: 0.6% off the paper.
    peak = sim.ZCU102.array_rows * sim.ZCU102.array_cols * sim.ZCU102.clock_mhz * 1e3   # MACs per ms
    ideal = sum(by[n].macs for n in ("patch_embed.conv1", "patch_embed.conv2", "patch_embed.conv3",
                                     "patch_embed")) / peak
    as_if_ideal = r.delay_ms - stem - by["patch_embed"].delay_ms + ideal
    assert ideal == pytest.approx(4.69, abs=0.01)
    assert as_if_ideal == pytest.approx(80.01, abs=0.01)
    assert as_if_ideal == pytest.approx(PAPER_DELAY_MS, rel=0.01)
    # The attention-dominated breakdown of Fig. 6a shifts: the stem's 15 ms land in "other"
    share = {m: v / r.delay_ms for m, v in r.breakdown.items()}
    assert share["softmax"] == pytest.approx(0.505, abs=0.005) and share["other"] == pytest.approx(0.179, abs=0.005)


def test_skipping_attention_saves_the_same_as_without_the_stem():
    full, half = sim.simulate(LVVIT_S), sim.simulate(LVVIT_S, [1, 0] * 8)
    base_full, base_half = sim.simulate(STEMLESS), sim.simulate(STEMLESS, [1, 0] * 8)
    assert full.delay_ms - half.delay_ms == pytest.approx(base_full.delay_ms - base_half.delay_ms, rel=1e-9)


def test_stem_convolutions_map_as_scalesim_maps_convolutions():
    # SCALE-Sim turns a convolution into the GEMM M = output pixels, N = filters,
    # K = filter height * width * channels, as pivot does for the stem. (SCALE-Sim has no padding:
    # it is given the padded input; its output size is ceil((H - R + stride) / stride), which
    # agrees with torch's floor((H - R) / stride) + 1 when stride divides H - R, as here.)
    pytest.importorskip("scalesim")
    from scalesim.scale_sim import scalesim

    from scalesim_util import _numpy2_compat, scalesim_hw
    layers = [("conv1", 23, 7, 3, 5, 2), ("conv2", 10, 3, 5, 5, 1)]  # name, padded H=W, k, Cin, Cout, stride
    rows, cols = 8, 6
    directory = tempfile.mkdtemp(prefix="pivot_scalesim_conv_")
    try:
        files = sim.to_scalesim(scalesim_hw(rows, cols, "is"), [], out_dir=directory)
        cfg, topo, layout = files["config"], files["topology"], files["layout"]
        with open(topo, "w") as f:
            f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n")
            for name, h, k, cin, cout, stride in layers:
                f.write(f"{name}, {h}, {h}, {k}, {k}, {cin}, {cout}, {stride},\n")
        with _numpy2_compat(), contextlib.redirect_stdout(io.StringIO()):
            s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                         input_type_gemm=False)
            s.run_scale(top_path=directory)
            theirs = [int(layer.get_compute_report_items()[1]) for layer in s.runner.single_layer_sim_object_list]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    ours = [sim.gemm_cycles(((h - k) // stride + 1) ** 2, cout, cin * k * k, rows, cols, "is")
            for _, h, k, cin, cout, stride in layers]
    assert ours == theirs
