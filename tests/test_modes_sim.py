"""Simulator rows of reuse encoders and ReLU linear attention (csrc/sim.c) against
pivot/reference/modes.py, and the orderings they should show."""
import dataclasses

import numpy as np
import pytest

import pivot
from pivot import sim
from pivot.reference import modes as ref
from pivot.reference import sim as ref_sim

DEIT_S = pivot.ViTConfig.preset("deit_small_patch16_224")
LINEAR = DEIT_S.replace(attention="relu_linear")
FIELDS = {"M": "M", "N": "N", "K": "K", "count": "count", "macs": "macs", "compute_cycles": "compute_cycles",
          "stall_cycles": "stall_cycles", "ps_cycles": "ps_cycles", "sram_reads": "sram_reads_words",
          "dram_reads": "dram_reads_words", "dram_writes": "dram_writes_words", "energy_j": "energy_j"}


def hw_dict(hw):
    return {f.name: getattr(hw, f.name) for f in dataclasses.fields(hw)}


def cfg_dict(cfg):
    return dict(embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, mlp_hidden=cfg.mlp_hidden,
                num_tokens=cfg.num_tokens, num_patches=cfg.num_patches, patch_dim=cfg.in_chans * cfg.patch_size ** 2,
                num_classes=cfg.num_classes, num_prefix_tokens=cfg.num_prefix_tokens, distilled=cfg.distilled)


@pytest.mark.parametrize("cfg,path,batch,entropy", [
    (DEIT_S, [1, 2, 2, 1, 0, 2] * 2, 1, False),
    (DEIT_S.replace(distilled=True), [0, 1, 2, 2] * 3, 3, True),
    (LINEAR, None, 1, False),
    (LINEAR, [1, 0, 1] * 4, 2, True),
])
def test_rows_equal_reference(cfg, path, batch, entropy):
    report = sim.simulate(cfg, path, batch=batch, entropy=entropy)
    p = pivot.normalize_path(path, cfg.depth, allow_reuse=True).tolist()
    want = ref.vit_rows(cfg_dict(cfg), p, hw_dict(sim.ZCU102), batch=batch, entropy=entropy, attention=cfg.attention)
    assert len(report.layers) == len(want)
    for layer, row in zip(report.layers, want):
        assert layer.name.split(".")[-1] == row["op"] or layer.name == row["op"], (layer.name, row["op"])
        assert layer.module == ref_sim.MODULES[row["module"]]
        for key, field in FIELDS.items():
            assert getattr(layer, field) == pytest.approx(row[key], rel=1e-12, abs=1e-300), (layer.name, key)
    assert report.delay_ms == pytest.approx(sum(r["delay_s"] for r in want) * 1e3, rel=1e-12)


def test_reuse_encoder_rows():
    T, C, H = DEIT_S.num_tokens, DEIT_S.embed_dim, DEIT_S.num_heads
    layers = {l.name: l for l in sim.simulate(DEIT_S, [1, 2] + [1] * 10).layers}
    names = [n for n in layers if n.startswith("blocks.1.")]
    assert names == ["blocks.1.norm1", "blocks.1.attn.v", "blocks.1.attn.sv", "blocks.1.attn.proj",
                     "blocks.1.norm2", "blocks.1.mlp.fc1", "blocks.1.mlp.gelu", "blocks.1.mlp.fc2"]
    v, sv = layers["blocks.1.attn.v"], layers["blocks.1.attn.sv"]
    assert (v.M, v.N, v.K, v.kind) == (T, C, C, "gemm")          # only the V third of qkv
    assert (sv.M, sv.N, sv.K, sv.count) == (T, C // H, T, H)
    assert layers["blocks.0.attn.qkv"].N == 3 * C


def test_linear_attention_rows_have_no_softmax():
    T, C, H = LINEAR.num_tokens, LINEAR.embed_dim, LINEAR.num_heads
    hd = C // H
    report = sim.simulate(LINEAR)
    names = [l.name for l in report.layers]
    assert not any("softmax" in n or n.endswith(".qk") for n in names)
    assert report.breakdown["softmax"] == 0
    layers = {l.name: l for l in report.layers}
    kv, qkv_apply = layers["blocks.0.attn.kv"], layers["blocks.0.attn.q_kv"]
    assert (kv.M, kv.N, kv.K, kv.count, kv.kind) == (hd, hd + 1, T, H, "gemm")       # phi(K)^T [V | 1]
    assert (qkv_apply.M, qkv_apply.N, qkv_apply.K, qkv_apply.count) == (T, hd + 1, hd, H)  # phi(Q) [KV | ksum]
    assert layers["blocks.0.attn.relu_qk"].kind == "ps" and layers["blocks.0.attn.linear_div"].kind == "ps"
    assert (layers["blocks.0.attn.linear_div"].M, layers["blocks.0.attn.linear_div"].N) == (T, hd)


def test_delay_energy_ordering_for_one_encoder():
    one = [1] * 12
    reports = {m: sim.simulate(DEIT_S, one[:4] + [m] + one[5:]) for m in (0, 2, 1)}
    assert reports[0].delay_ms < reports[2].delay_ms < reports[1].delay_ms
    assert reports[0].energy_j < reports[2].energy_j < reports[1].energy_j
    assert sim.simulate(LINEAR).delay_ms < sim.simulate(DEIT_S).delay_ms


def test_linear_attention_cost_grows_linearly_with_tokens():
    def attention_ms(cfg):
        return sum(l.delay_ms for l in sim.simulate(cfg, [1] + [0] * 11).layers
                   if l.name.startswith("blocks.0.attn.") and l.name.split(".")[-1] in ("kv", "q_kv", "qk", "sv", "softmax", "linear_div"))
    small, big = DEIT_S.replace(img_size=224), DEIT_S.replace(img_size=448)  # 197 -> 785 tokens
    lin_ratio = attention_ms(big.replace(attention="relu_linear")) / attention_ms(small.replace(attention="relu_linear"))
    soft_ratio = attention_ms(big) / attention_ms(small)
    assert lin_ratio < 6 and soft_ratio > 12


def test_simulate_rejects_bad_mode_paths():
    with pytest.raises(ValueError, match="no earlier encoder is active"):
        sim.simulate(DEIT_S, [2] + [1] * 11)
    with pytest.raises(ValueError, match="or 2: reuse"):
        sim.simulate(DEIT_S, [3] + [1] * 11)
    with pytest.raises(ValueError):
        sim.simulate(LINEAR, [1, 2] + [1] * 10)


def test_simulate_pair_accepts_reuse_paths():
    pair = sim.simulate_pair(DEIT_S, DEIT_S, 0.3, low_path=[1, 2] * 6, high_path=None)
    low = sim.simulate(DEIT_S, [1, 2] * 6, entropy=True).delay_ms  # the low effort also computes its entropy
    assert pair.delay_ms == pytest.approx(low + 0.3 * sim.simulate(DEIT_S).delay_ms, rel=1e-9)
