"""Simulator operand bit width (HardwareConfig.operand_bits): 8 bits keeps the calibrated ZCU102,
wider operands cost DRAM traffic and energy, and the C simulator equals the Python reference."""
import dataclasses

import pytest

import pivot
from pivot import sim
from pivot.reference import sim as ref_sim

DEIT_S = pivot.ViTConfig.preset("deit_small_patch16_224")


def test_default_is_8_bits_and_unchanged():
    assert sim.ZCU102.operand_bits == 8
    r = sim.simulate(DEIT_S)
    assert r.delay_ms == pytest.approx(59.66, abs=0.01)
    assert r.energy_j == pytest.approx(0.4725, abs=1e-4)
    assert r.edp == pytest.approx(28.19, abs=0.01)
    assert sim.simulate(DEIT_S, hw=sim.ZCU102.replace(operand_bits=8)).delay_ms == r.delay_ms


def test_bit_width_report_deit_s():
    rows = sim.bit_width_report(bits=(8, 16, 32))
    assert [r["bits"] for r in rows] == [8, 16, 32]
    delays = [r["delay_ms"] for r in rows]
    energies = [r["energy_j"] for r in rows]
    assert delays[0] == pytest.approx(59.66, abs=0.01)
    assert delays[0] < delays[1] < delays[2]
    assert energies[0] < energies[1] < energies[2]
    # the PE array's dynamic energy grows with bits^2 (same MAC count at every width)
    pe = [r["energy_pe_array_j"] - sim.ZCU102.pe_array_static_w * r["delay_ms"] * 1e-3 for r in rows]
    assert pe[1] / pe[0] == pytest.approx(4.0, rel=1e-9)
    assert pe[2] / pe[0] == pytest.approx(16.0, rel=1e-9)
    table = sim.format_bit_width_report(rows)
    assert table.splitlines()[2].startswith("| 8 | 59.66 |")


@pytest.mark.parametrize("bits", [4, 16, 32])
def test_c_equals_reference(bits):
    hw = sim.ZCU102.replace(operand_bits=bits)
    hw_dict = {f.name: getattr(hw, f.name) for f in dataclasses.fields(hw)}
    path = [1, 0] * 6
    c = DEIT_S
    cfg = dict(embed_dim=c.embed_dim, depth=c.depth, num_heads=c.num_heads, mlp_hidden=c.mlp_hidden,
               num_tokens=c.num_tokens, num_patches=c.num_patches, patch_dim=c.in_chans * c.patch_size ** 2,
               num_classes=c.num_classes, num_prefix_tokens=c.num_prefix_tokens, distilled=c.distilled)
    rows = ref_sim.vit_rows(cfg, path, hw_dict)
    totals = ref_sim.totals(rows)
    r = sim.simulate(DEIT_S, path=path, hw=hw)
    assert r.delay_ms == pytest.approx(totals["delay_s"] * 1e3, rel=1e-9)
    assert r.energy_j == pytest.approx(totals["energy_j"], rel=1e-9)


@pytest.mark.parametrize("bad", [0, 65, 8.0, True, "8"])
def test_operand_bits_validated(bad):
    with pytest.raises(ValueError, match="operand_bits"):
        sim.ZCU102.replace(operand_bits=bad)


def test_quantized_model_simulates_like_its_float_model():
    m = pivot.ViT.random(pivot.ViTConfig(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=32,
                                         depth=2, num_heads=2), path=[1, 0])
    qm = pivot.quantize(m, __import__("numpy").zeros((2, 1, 28, 28), "float32"))
    assert sim.simulate(qm).delay_ms == sim.simulate(m).delay_ms
