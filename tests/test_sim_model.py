"""pivot.sim's C model against its plain-Python reference (pivot/reference/sim.py), row by row."""
import dataclasses
import math

import numpy as np
import pytest

import pivot
from pivot import sim
from pivot.reference import sim as ref

# Reference row keys -> LayerReport fields (and a unit factor).
FIELDS = {"M": ("M", 1), "N": ("N", 1), "K": ("K", 1), "count": ("count", 1), "macs": ("macs", 1),
          "compute_cycles": ("compute_cycles", 1), "stall_cycles": ("stall_cycles", 1),
          "ps_cycles": ("ps_cycles", 1), "utilization_pct": ("utilization_pct", 1),
          "sram_reads": ("sram_reads_words", 1), "sram_writes": ("sram_writes_words", 1),
          "dram_reads": ("dram_reads_words", 1), "dram_writes": ("dram_writes_words", 1),
          "delay_s": ("delay_ms", 1e-3), "energy_j": ("energy_j", 1), "energy_pe_array_j": ("energy_pe_array_j", 1),
          "energy_sram_j": ("energy_sram_j", 1), "energy_periphery_j": ("energy_periphery_j", 1),
          "energy_ps_j": ("energy_ps_j", 1)}


def hw_dict(hw):
    return {f.name: getattr(hw, f.name) for f in dataclasses.fields(hw)}


def cfg_dict(cfg):
    return dict(embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, mlp_hidden=cfg.mlp_hidden,
                num_tokens=cfg.num_tokens, num_patches=cfg.num_patches, patch_dim=cfg.in_chans * cfg.patch_size ** 2,
                num_classes=cfg.num_classes, num_prefix_tokens=cfg.num_prefix_tokens, distilled=cfg.distilled)


def assert_rows_equal(expected, layers):
    assert len(expected) == len(layers)
    for e, layer in zip(expected, layers):
        assert layer.module == ref.MODULES[e["module"]]
        assert layer.kind == e["kind"]
        for key, (field, scale) in FIELDS.items():
            got = getattr(layer, field) * scale
            assert got == pytest.approx(e[key], rel=1e-12, abs=1e-300), (layer.name, key)


def random_hw(rng):
    return sim.ZCU102.replace(
        array_rows=int(rng.integers(1, 80)), array_cols=int(rng.integers(1, 80)),
        dataflow=str(rng.choice(sim.DATAFLOWS)), clock_mhz=float(rng.uniform(50, 500)),
        word_bytes=int(rng.integers(1, 5)), global_buffer_bytes=int(rng.choice([0, 4096, 65536])),
        ipmem_bytes=int(rng.integers(256, 1 << 17)), wtmem_bytes=int(rng.integers(256, 1 << 17)),
        opmem_bytes=int(rng.integers(256, 1 << 17)), sram_active_fraction=float(rng.choice([0.5, 0.75, 1.0])),
        dram_bandwidth_gbps=float(rng.choice([0.5, 2.0, 19.2, math.inf])),
        softmax_cycles_per_element=float(rng.uniform(0, 30)), mac_energy_pj=float(rng.uniform(0, 50)))


def test_gemm_cycles_closed_form():
    # Hand-checked folds: IS, (S_r, S_c, T) = (K, M, N) = (384, 197, 1152) on 64 x 36:
    # 6 * 6 folds of 2*64 + 36 + 1152 - 2 = 1314 cycles, minus 1.
    assert sim.gemm_cycles(197, 1152, 384, 64, 36, "is") == 36 * 1314 - 1
    assert sim.gemm_cycles(197, 1152, 384, 64, 36, "ws") == 6 * 32 * (2 * 64 + 36 + 197 - 2) - 1
    assert sim.gemm_cycles(197, 1152, 384, 64, 36, "os") == 4 * 32 * (64 + 36 + 384 - 2) - 1
    assert sim.gemm_cycles(1, 1, 1, 1, 1, "is") == 1                    # 2 + 1 + 1 - 2 - 1
    assert sim.gemm_cycles(1, 1, 1, 1, 1, "os") == 0


def test_gemm_cycles_equal_reference(rng):
    for _ in range(500):
        M, N, K, rows, cols = (int(v) for v in rng.integers(1, 300, size=5))
        df = str(rng.choice(sim.DATAFLOWS))
        assert sim.gemm_cycles(M, N, K, rows, cols, df) == ref.gemm_cycles(M, N, K, rows, cols, df)


def test_gemm_rows_equal_reference(rng):
    for _ in range(40):
        hw = random_hw(rng)
        shapes = [(f"g{i}", *(int(v) for v in rng.integers(1, 400, size=3)), int(rng.integers(1, 4))) for i in range(8)]
        report = sim.simulate_gemms(shapes, hw)
        expected = [ref.gemm_row(M, N, K, count, hw_dict(hw)) for _, M, N, K, count in shapes]
        assert_rows_equal(expected, report.layers)
        assert [layer.name for layer in report.layers] == [s[0] for s in shapes]


def test_vit_rows_and_totals_equal_reference(rng):
    for _ in range(25):
        hw = random_hw(rng)
        heads = int(rng.choice([1, 2, 3, 6]))
        cfg = pivot.ViTConfig(img_size=int(rng.choice([32, 64, 224])), patch_size=16 if rng.random() < 0.5 else 8,
                              embed_dim=heads * int(rng.integers(4, 40)), depth=int(rng.integers(1, 7)),
                              num_heads=heads, mlp_ratio=float(rng.choice([2.0, 3.0, 4.0])),
                              num_classes=int(rng.integers(2, 1100)), distilled=bool(rng.random() < 0.3))
        path = rng.integers(0, 2, size=cfg.depth)
        batch = int(rng.integers(1, 4))
        entropy = bool(rng.random() < 0.5)
        report = sim.simulate(cfg, path, hw, batch=batch, entropy=entropy)
        expected = ref.vit_rows(cfg_dict(cfg), path.tolist(), hw_dict(hw), batch=batch, entropy=entropy)
        assert_rows_equal(expected, report.layers)
        tot = ref.totals(expected)
        assert report.delay_ms == pytest.approx(tot["delay_s"] * 1e3, rel=1e-12)
        assert report.energy_j == pytest.approx(tot["energy_j"], rel=1e-12)
        assert report.compute_cycles == tot["compute_cycles"]
        assert report.stall_cycles == tot["stall_cycles"]
        assert report.macs == tot["macs"]
        for m in sim.MODULES:
            assert report.breakdown[m] == pytest.approx(tot[f"module_{m}_s"] * 1e3, rel=1e-12, abs=1e-15)
        for c in sim.ENERGY_COMPONENTS:
            assert report.energy_breakdown[c] == pytest.approx(tot[f"energy_{c}_j"], rel=1e-12)


def test_vit_layer_list_follows_the_path():
    cfg = pivot.ViTConfig(depth=3, distilled=True)
    report = sim.simulate(cfg, [1, 0, 1], entropy=True)
    names = [layer.name for layer in report.layers]
    assert names[0] == "patch_embed"
    assert [n for n in names if n.startswith("blocks.1.")] == ["blocks.1.norm2", "blocks.1.mlp.fc1",
                                                               "blocks.1.mlp.gelu", "blocks.1.mlp.fc2"]
    assert [n for n in names if n.startswith("blocks.0.")] == [
        "blocks.0.norm1", "blocks.0.attn.qkv", "blocks.0.attn.qk", "blocks.0.attn.softmax", "blocks.0.attn.sv",
        "blocks.0.attn.proj", "blocks.0.norm2", "blocks.0.mlp.fc1", "blocks.0.mlp.gelu", "blocks.0.mlp.fc2"]
    assert names[-4:] == ["norm", "head", "head_dist", "entropy"]
    qk = next(layer for layer in report.layers if layer.name == "blocks.0.attn.qk")
    assert (qk.M, qk.N, qk.K, qk.count) == (198, 198, 64, 6)     # 196 patches + cls + dist tokens, per head
    # Every MAC of the model is counted once.
    T, C, hidden = cfg.num_tokens, cfg.embed_dim, cfg.mlp_hidden
    attention = 3 * T * C * C + 2 * T * T * C + T * C * C
    expected = 196 * C * 768 + 2 * attention + 3 * 2 * T * C * hidden + 2 * C * 1000
    assert report.macs == expected


def test_batch_scales_token_products():
    cfg = pivot.ViTConfig.preset("deit_small_patch16_224")
    one, four = sim.simulate(cfg, batch=1), sim.simulate(cfg, batch=4)
    assert four.macs == 4 * one.macs
    fc1 = [layer for layer in four.layers if layer.name == "blocks.0.mlp.fc1"][0]
    assert fc1.M == 4 * 197
    qk = [layer for layer in four.layers if layer.name == "blocks.0.attn.qk"][0]
    assert (qk.M, qk.count) == (197, 4 * 6)
    # Larger M fills the array's columns better, so images per joule do not get worse.
    assert four.fps_per_w >= one.fps_per_w * 0.99
    assert four.delay_ms < 4 * one.delay_ms * 1.01


def test_unlimited_dram_never_stalls_and_slow_dram_does():
    cfg = pivot.ViTConfig.preset("deit_small_patch16_224")
    free = sim.simulate(cfg, hw=sim.ZCU102.replace(dram_bandwidth_gbps=math.inf))
    assert free.stall_cycles == 0
    base = sim.simulate(cfg)
    assert 0 < base.stall_cycles < 0.01 * base.compute_cycles          # Table 1 design: compute-bound
    slow = sim.simulate(cfg, hw=sim.ZCU102.replace(dram_bandwidth_gbps=0.5))
    assert slow.stall_cycles > slow.compute_cycles                       # 4 B/cycle: memory-bound
    assert free.compute_cycles == base.compute_cycles == slow.compute_cycles
    # Bigger SRAMs keep the weights on chip: fewer DRAM reads.
    big = sim.simulate(cfg, hw=sim.ZCU102.replace(wtmem_bytes=1 << 20, opmem_bytes=1 << 20))
    assert big.dram_accesses_words < base.dram_accesses_words


def test_sram_and_dram_counts_by_hand():
    hw = sim.ZCU102.replace(global_buffer_bytes=0, ipmem_bytes=1024, wtmem_bytes=1024, opmem_bytes=1024)
    # IS, 64 x 36: (S_r, S_c) = (K, M) = (100, 50): 2 row folds, 2 column folds.
    layer = sim.simulate_gemms([("l", 50, 40, 100)], hw).layers[0]
    assert layer.sram_reads_words == 50 * 100 + 100 * 40 * 2          # A once, B per column fold
    assert layer.sram_writes_words == 50 * 40 * 2                      # partial sums per row fold
    # B (4000 words) exceeds WTMEM's active 512: re-read per column fold; one pass of partial
    # sums (36 x 40 = 1440) exceeds OPMEM's active 512: spilled, then the second fold reads them.
    assert layer.dram_reads_words == 50 * 100 + 100 * 40 * 2 + 50 * 40
    assert layer.dram_writes_words == 50 * 40 * 2
    roomy = sim.simulate_gemms([("l", 50, 40, 100)], hw.replace(wtmem_bytes=8192, opmem_bytes=4096)).layers[0]
    assert roomy.dram_reads_words == 50 * 100 + 100 * 40
    assert roomy.dram_writes_words == 50 * 40


def test_ps_rows():
    cfg = pivot.ViTConfig.preset("deit_small_patch16_224")
    report = sim.simulate(cfg, entropy=True)
    softmax = [layer for layer in report.layers if layer.name == "blocks.3.attn.softmax"][0]
    assert softmax.kind == "ps" and softmax.module == "softmax"
    assert softmax.ps_cycles == pytest.approx(6 * 197 * 197 * sim.ZCU102.softmax_cycles_per_element)
    assert softmax.delay_ms == pytest.approx(softmax.ps_cycles / 1200e6 * 1e3)
    assert softmax.compute_cycles == 0 and softmax.macs == 0
    entropy = report.layers[-1]
    assert entropy.name == "entropy"
    assert entropy.delay_ms == pytest.approx(0.03, rel=1e-9)            # the paper: 0.03 ms per image
