"""Plain-Python reference of the PIVOT-Sim cycle, memory and energy model (csrc/sim.c).

Every formula of the C simulator is written out here once, readably, with float64 arithmetic;
the tests hold the C code equal to it. ``pivot.sim`` documents the model; this file is its
executable specification.

Operands of a GEMM ``out (M, N) = A (M, K) @ B (K, N)``: A is the "ifmap" (held in IPMEM), B the
"filter" (held in WTMEM), ``out`` the "ofmap" (OPMEM), as in SCALE-Sim's GEMM mode.
"""
from __future__ import annotations

import math

DATAFLOWS = ("is", "ws", "os")

# Row kinds and modules, in the order of csrc/pivot_sim.h.
OPS = ("gemm", "patch_embed", "norm1", "qkv", "qk", "softmax", "sv", "proj", "norm2", "fc1", "gelu",
       "fc2", "norm", "head", "head_dist", "entropy", "stem_conv", "relu", "norm_patches", "aux_head", "aux_max",
       "v", "relu_qk", "kv", "q_kv", "linear_div")
MODULES = ("attention_mac", "softmax", "mlp", "other")
# What each processing-system op costs per element (the HardwareConfig field <cost>_cycles_per_element):
# LV-ViT's ReLU and aux-head max, linear attention's phi and division are one elementwise pass each,
# priced as the GELU lookup.
PS_COST = {"norm1": "layernorm", "norm2": "layernorm", "norm": "layernorm", "norm_patches": "layernorm",
           "softmax": "softmax", "gelu": "gelu", "relu": "gelu", "aux_max": "gelu", "relu_qk": "gelu",
           "linear_div": "gelu", "entropy": "entropy"}
PS_OPS = tuple(PS_COST)


def _ceil_div(a, b):
    return -(-a // b)


def mapping(M, N, K, dataflow):
    """(S_r, S_c, T): what lies along the array's rows, along its columns, and what streams in time.

    SCALE-Sim (topology_utils.calc_spatio_temporal_params with GEMM M x K times K x N):
    input stationary holds K x M in the array and streams N; weight stationary holds K x N and
    streams M; output stationary holds M x N and streams K.
    """
    if dataflow == "is":
        return K, M, N
    if dataflow == "ws":
        return K, N, M
    if dataflow == "os":
        return M, N, K
    raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {dataflow!r}")


def fold_cycles(rows, cols, T, dataflow):
    """Cycles of one fold: SCALE-Sim's demand matrices have 2R + C + T - 2 rows per fold for IS and
    WS (R cycles to load the stationary tile, T to stream, R + C - 2 to drain the skew) and
    R + C + T - 2 for OS (no stationary load)."""
    return (rows + cols + T - 2) if dataflow == "os" else (2 * rows + cols + T - 2)


def gemm_cycles(M, N, K, rows, cols, dataflow):
    """Compute cycles of one GEMM, equal to SCALE-Sim's "Total Cycles" with no stalls:
    ceil(S_r / R) * ceil(S_c / C) folds of fold_cycles each, minus 1 (SCALE-Sim reports the index
    of the last cycle, counting from 0)."""
    Sr, Sc, T = mapping(M, N, K, dataflow)
    return _ceil_div(Sr, rows) * _ceil_div(Sc, cols) * fold_cycles(rows, cols, T, dataflow) - 1


def sram_accesses(M, N, K, rows, cols, dataflow):
    """Array-side SRAM accesses (words): (IPMEM reads, WTMEM reads, OPMEM writes), SCALE-Sim's
    "SRAM IFMAP Reads", "SRAM Filter Reads" and "SRAM OFMAP Writes". The stationary operand is read
    once; the streamed one once per fold along the other array dimension; outputs once per fold
    along the reduction (partial sums) for IS and WS. (For OS SCALE-Sim also adds R + C per fold to
    the OFMAP writes, a counting slip in systolic_compute_os.py that pivot does not copy.)"""
    Sr, Sc, T = mapping(M, N, K, dataflow)
    row_folds, col_folds = _ceil_div(Sr, rows), _ceil_div(Sc, cols)
    if dataflow == "is":
        return M * K, K * N * col_folds, M * N * row_folds
    if dataflow == "ws":
        return M * K * col_folds, K * N, M * N * row_folds
    return M * K * col_folds, K * N * row_folds, M * N


def _bits(hw):
    """Operand width over the calibrated 8 bits (int8: HardwareConfig.operand_bits)."""
    return hw.get("operand_bits", 8) / 8.0


def word_bytes(hw):
    """Bytes per operand word: word_bytes * operand_bits / 8."""
    return hw["word_bytes"] * _bits(hw)


def mac_energy_pj(hw):
    """Energy per MAC, scaled by (operand_bits / 8)^2 (multiplier area grows with the square)."""
    return hw["mac_energy_pj"] * _bits(hw) ** 2


def sram_access_energy_pj(hw):
    """Energy per SRAM word access, scaled by operand_bits / 8 (wider words)."""
    return hw["sram_access_energy_pj"] * _bits(hw)


def capacities(hw):
    """On-chip words available for reuse: the active part of each SRAM (double buffering: the
    other part is being filled); the global buffer's active part adds to the input SRAMs."""
    a, w = hw["sram_active_fraction"], word_bytes(hw)
    gb = hw["global_buffer_bytes"]
    cap_in = math.floor((hw["ipmem_bytes"] + gb) * a / w)
    cap_wt = math.floor((hw["wtmem_bytes"] + gb) * a / w)
    cap_out = math.floor(hw["opmem_bytes"] * a / w)
    return cap_in, cap_wt, cap_out


def dram_traffic(M, N, K, hw):
    """DRAM words of one GEMM: {"a": reads of A, "b": reads of B, "partial": partial sums read
    back, "writes": output words written}.

    An operand is fetched once when the data it re-streams fits in its on-chip capacity, else once
    per pass (SCALE-Sim's estimate-bandwidth read buffers behave the same way). Partial sums stay
    in OPMEM when one pass of outputs fits; otherwise every fold's partial sums go out and all but
    the first come back."""
    R, C, df = hw["array_rows"], hw["array_cols"], hw["dataflow"]
    Sr, Sc, T = mapping(M, N, K, df)
    row_folds, col_folds = _ceil_div(Sr, R), _ceil_div(Sc, C)
    cap_in, cap_wt, cap_out = capacities(hw)
    if df == "is":
        a = M * K
        b = K * N if K * N <= cap_wt else K * N * col_folds
        pass_outputs = min(C, M) * N
    elif df == "ws":
        a = M * K if M * K <= cap_in else M * K * col_folds
        b = K * N
        pass_outputs = M * min(C, N)
    else:
        a = M * K if M * K <= cap_in else M * K * col_folds
        b = K * N if K * min(C, N) <= cap_wt else K * N * row_folds
        pass_outputs = 0          # outputs accumulate in the PEs
    if df != "os" and row_folds > 1 and pass_outputs > cap_out:
        return {"a": a, "b": b, "partial": M * N * (row_folds - 1), "writes": M * N * row_folds}
    return {"a": a, "b": b, "partial": 0, "writes": M * N}


def dram_accesses(M, N, K, hw):
    """(DRAM reads, DRAM writes) in words of one GEMM (see dram_traffic)."""
    t = dram_traffic(M, N, K, hw)
    return t["a"] + t["b"] + t["partial"], t["writes"]


def exposed_words(M, N, K, hw):
    """Words moved while the array cannot compute: the first fold's operands (fill) and the last
    fold's outputs (drain), each at most the active part of its SRAM."""
    R, C, df = hw["array_rows"], hw["array_cols"], hw["dataflow"]
    Sr, Sc, T = mapping(M, N, K, df)
    r0, c0 = min(R, Sr), min(C, Sc)
    r_last = Sr - (_ceil_div(Sr, R) - 1) * R
    c_last = Sc - (_ceil_div(Sc, C) - 1) * C
    cap_in, cap_wt, cap_out = capacities(hw)
    if df == "is":     # stationary A tile r0 x c0, streamed B rows r0 x N; outputs c_last x N
        fill = min(r0 * c0, cap_in) + min(r0 * T, cap_wt)
        drain = c_last * T
    elif df == "ws":   # stationary B tile r0 x c0, streamed A columns M x r0; outputs M x c_last
        fill = min(r0 * c0, cap_wt) + min(r0 * T, cap_in)
        drain = c_last * T
    else:              # A rows r0 x K and B columns K x c0 both stream; outputs r_last x c_last
        fill = min(r0 * T, cap_in) + min(T * c0, cap_wt)
        drain = r_last * c_last
    return fill + min(drain, cap_out)


def stall_cycles(M, N, K, hw, compute):
    """Cycles the array waits for DRAM: the exposed fill/drain plus whatever transfer time the
    double buffers cannot hide behind the compute, on one shared DRAM interface."""
    bytes_per_cycle = hw["dram_bandwidth_gbps"] * 1e9 / (hw["clock_mhz"] * 1e6)
    if math.isinf(bytes_per_cycle):
        return 0.0
    reads, writes = dram_accesses(M, N, K, hw)
    transfer = (reads + writes) * word_bytes(hw) / bytes_per_cycle
    exposed = exposed_words(M, N, K, hw) * word_bytes(hw) / bytes_per_cycle
    return float(math.ceil(exposed + max(0.0, transfer - exposed - compute)))


def gemm_row(M, N, K, count, hw, op="gemm", block=-1, module=3):
    """Everything the simulator reports for `count` back-to-back GEMMs of one shape."""
    R, C, df = hw["array_rows"], hw["array_cols"], hw["dataflow"]
    compute = gemm_cycles(M, N, K, R, C, df)
    stall = stall_cycles(M, N, K, hw, compute)
    ifr, flr, ofw = sram_accesses(M, N, K, R, C, df)
    dr, dw = dram_accesses(M, N, K, hw)
    macs = M * N * K
    clock = hw["clock_mhz"] * 1e6
    delay = count * (compute + stall) / clock
    row = dict(op=op, block=block, module=module, kind="gemm", M=M, N=N, K=K, count=count,
               macs=count * macs, compute_cycles=count * compute, stall_cycles=count * stall, ps_cycles=0.0,
               utilization_pct=100.0 * macs / (R * C * (compute + stall)),
               sram_reads=count * (ifr + flr), sram_writes=count * ofw,
               dram_reads=count * dr, dram_writes=count * dw, delay_s=delay)
    _energy(row, hw, staged_words=count * (dr + dw))
    return row


def ps_row(op, rows, cols, count, hw, block=-1, module=3):
    """An elementwise op on the processing system over `count` (rows x cols) tensors at PS_COST[op]
    cycles per element: it reads its input from DRAM and writes its output back (entropy writes one
    value per row)."""
    elements = count * rows * cols
    ps_cycles = elements * hw[PS_COST[op] + "_cycles_per_element"]
    writes = count * rows if op == "entropy" else elements
    row = dict(op=op, block=block, module=module, kind="ps", M=rows, N=cols, K=0, count=count,
               macs=0, compute_cycles=0.0, stall_cycles=0.0, ps_cycles=ps_cycles, utilization_pct=0.0,
               sram_reads=0, sram_writes=0, dram_reads=elements, dram_writes=writes,
               delay_s=ps_cycles / (hw["ps_clock_mhz"] * 1e6))
    _energy(row, hw, staged_words=0)
    return row


def _energy(row, hw, staged_words):
    """Energy by component: activity times energy per event, plus static power times the row's
    delay. SRAM counts the array-side accesses and, per word moved to or from DRAM, one global
    buffer access and one IPMEM/WTMEM/OPMEM access (staging)."""
    d = row["delay_s"]
    dram_bytes = (row["dram_reads"] + row["dram_writes"]) * word_bytes(hw)
    row["energy_pe_array_j"] = row["macs"] * mac_energy_pj(hw) * 1e-12 + hw["pe_array_static_w"] * d
    row["energy_sram_j"] = ((row["sram_reads"] + row["sram_writes"] + 2 * staged_words)
                            * sram_access_energy_pj(hw) * 1e-12 + hw["sram_static_w"] * d)
    row["energy_periphery_j"] = dram_bytes * hw["dram_energy_pj_per_byte"] * 1e-12 + hw["periphery_static_w"] * d
    ps_busy = row["ps_cycles"] / (hw["ps_clock_mhz"] * 1e6)
    row["energy_ps_j"] = ps_busy * hw["ps_active_power_w"] + hw["ps_static_w"] * d
    row["energy_j"] = row["energy_pe_array_j"] + row["energy_sram_j"] + row["energy_periphery_j"] + row["energy_ps_j"]


def vit_rows(cfg, path, hw, batch=1, entropy=False, attention="softmax"):
    """Every row of one inference on `batch` images, in execution order (csrc/sim.c pivot_sim_forward).

    `cfg`: a mapping with embed_dim, depth, num_heads, mlp_hidden, num_tokens, num_patches,
    patch_dim (what the patch projection reads: in_chans * kernel**2), num_classes,
    num_prefix_tokens, distilled, and optionally LV-ViT's stem_gemms (per stem convolution
    (M, N, K) of one image: output pixels, output channels, in_channels * kernel^2) and aux_head.
    `attention`: "softmax" or "relu_linear".

    Each stem convolution is an im2col GEMM over batch * M rows (BatchNorm folded into it, no cost
    of its own) followed by a ReLU on the PS; then the patch projection. Encoder i by path[i]:
    0 skip: no attention rows; 1 active: norm1, qkv, then with softmax qk, softmax (PS), sv, or
    with ReLU linear attention relu_qk (PS, B*T x 2C), kv = phi(K)^T [V | 1] (hd, hd + 1, T) and
    q_kv = phi(Q) [KV | ksum] (T, hd + 1, hd) per image and head (the extra column carries the
    normalizer), linear_div (PS, T x hd per image and head); 2 reuse the probabilities of the
    nearest earlier active encoder (softmax only): norm1, v (B*T, C, C), sv. Then proj unless
    skipped, and norm2, fc1, gelu, fc2 always. After the encoders the final norm of the prefix
    tokens, the head(s); with aux_head the LayerNorm of every patch token, the aux head GEMM over
    them and its max over the tokens (PS); last the entropy. skip_lam costs nothing (it scales
    proj and fc2, offline).
    """
    modes = [int(path[i]) for i in range(cfg["depth"])]
    if any(m not in (0, 1, 2) for m in modes):
        raise ValueError(f"path values must be 0 (skip), 1 (active) or 2 (reuse), got {modes}")
    if attention == "relu_linear" and 2 in modes:
        raise ValueError("reuse (2) needs softmax attention")
    B, T, Cd, H = batch, cfg["num_tokens"], cfg["embed_dim"], cfg["num_heads"]
    hd, hidden, BT, BH = Cd // H, cfg["mlp_hidden"], batch * cfg["num_tokens"], batch * H
    g, ps = gemm_row, ps_row
    rows = []
    for layer, (M, N, K) in enumerate(cfg.get("stem_gemms", ()), start=1):
        rows += [g(B * M, N, K, 1, hw, "stem_conv", layer, 3), ps("relu", B * M, N, 1, hw, layer, 3)]
    rows.append(g(B * cfg["num_patches"], Cd, cfg["patch_dim"], 1, hw, "patch_embed", -1, 3))
    for i, mode in enumerate(modes):
        if mode:
            rows.append(ps("norm1", BT, Cd, 1, hw, i, 3))
        if mode == 2:
            rows += [g(BT, Cd, Cd, 1, hw, "v", i, 0), g(T, hd, T, BH, hw, "sv", i, 0)]
        elif mode == 1 and attention == "relu_linear":
            rows += [g(BT, 3 * Cd, Cd, 1, hw, "qkv", i, 0), ps("relu_qk", BT, 2 * Cd, 1, hw, i, 3),
                     g(hd, hd + 1, T, BH, hw, "kv", i, 0), g(T, hd + 1, hd, BH, hw, "q_kv", i, 0),
                     ps("linear_div", T, hd, BH, hw, i, 3)]
        elif mode == 1:
            rows += [g(BT, 3 * Cd, Cd, 1, hw, "qkv", i, 0), g(T, T, hd, BH, hw, "qk", i, 0),
                     ps("softmax", T, T, BH, hw, i, 1), g(T, hd, T, BH, hw, "sv", i, 0)]
        if mode:
            rows.append(g(BT, Cd, Cd, 1, hw, "proj", i, 0))
        rows += [ps("norm2", BT, Cd, 1, hw, i, 3), g(BT, hidden, Cd, 1, hw, "fc1", i, 2),
                 ps("gelu", BT, hidden, 1, hw, i, 2), g(BT, Cd, hidden, 1, hw, "fc2", i, 2)]
    # Only the class (and distillation) tokens reach the head, so only they are normalized.
    rows.append(ps("norm", B * cfg["num_prefix_tokens"], Cd, 1, hw, -1, 3))
    rows.append(g(B, cfg["num_classes"], Cd, 1, hw, "head", -1, 3))
    if cfg["distilled"]:
        rows.append(g(B, cfg["num_classes"], Cd, 1, hw, "head_dist", -1, 3))
    if cfg.get("aux_head"):
        BP = B * cfg["num_patches"]
        rows += [ps("norm_patches", BP, Cd, 1, hw, -1, 3), g(BP, cfg["num_classes"], Cd, 1, hw, "aux_head", -1, 3),
                 ps("aux_max", BP, cfg["num_classes"], 1, hw, -1, 3)]
    if entropy:
        rows.append(ps("entropy", B, cfg["num_classes"], 1, hw, -1, 3))
    return rows


def totals(rows):
    """Sums over rows: delay (s), energy by component (J), cycles, and delay by module (s)."""
    out = {k: sum(r[k] for r in rows) for k in (
        "delay_s", "energy_j", "energy_pe_array_j", "energy_sram_j", "energy_periphery_j", "energy_ps_j",
        "compute_cycles", "stall_cycles", "ps_cycles", "macs", "sram_reads", "sram_writes",
        "dram_reads", "dram_writes")}
    for m, name in enumerate(MODULES):
        out["module_" + name + "_s"] = sum(r["delay_s"] for r in rows if r["module"] == m)
    return out


PAPER_DEIT_S_DELAY_MS = 59.66   # Table 2, DeiT-S baseline on the ZCU102 (batch 1)
PAPER_POWER_W = 7.92            # Tables 2 and 3, every model


def fit_zcu102(hw, cfg, delay_ms=PAPER_DEIT_S_DELAY_MS, power_w=PAPER_POWER_W):
    """The fitted constants of pivot.sim.ZCU102, from the paper's DeiT-S baseline.

    `hw` holds every assumed constant (array, clocks, SRAMs, DRAM, the GELU, LayerNorm and entropy
    costs, the SRAM and DRAM energies and the static powers); `cfg` is DeiT-S (see vit_rows).
    Returns {softmax_cycles_per_element, mac_energy_pj, ps_active_power_w}:

    1. the softmax cost per element such that DeiT-S takes `delay_ms`;
    2. the PS power while computing such that the board draws `power_w` while the PS works, and
    3. the energy per MAC such that it draws `power_w` while the PL works.
    With 2 and 3 the baseline averages `power_w`, and power hardly depends on how a model splits
    its time between PS and PL (the paper lists 7.92 W for every model).
    """
    path = [1] * cfg["depth"]
    base = dict(hw, softmax_cycles_per_element=0.0)
    rows = vit_rows(cfg, path, base)
    softmax_elements = sum(r["count"] * r["M"] * r["N"] for r in rows if r["op"] == "softmax")
    rest_s = sum(r["delay_s"] for r in rows)
    softmax = (delay_ms * 1e-3 - rest_s) * hw["ps_clock_mhz"] * 1e6 / softmax_elements

    rows = vit_rows(cfg, path, dict(hw, softmax_cycles_per_element=softmax))
    pl = [r for r in rows if r["kind"] == "gemm"]
    ps = [r for r in rows if r["kind"] == "ps"]
    t_pl, t_ps = sum(r["delay_s"] for r in pl), sum(r["delay_s"] for r in ps)
    static_w = hw["pe_array_static_w"] + hw["sram_static_w"] + hw["periphery_static_w"] + hw["ps_static_w"]
    dram_j = hw["dram_energy_pj_per_byte"] * 1e-12 * hw["word_bytes"]

    ps_bytes_j = sum(r["dram_reads"] + r["dram_writes"] for r in ps) * dram_j
    ps_active = power_w - static_w - ps_bytes_j / t_ps

    pl_dram_j = sum(r["dram_reads"] + r["dram_writes"] for r in pl) * dram_j
    pl_sram_j = sum(r["sram_reads"] + r["sram_writes"] + 2 * (r["dram_reads"] + r["dram_writes"]) for r in pl) \
        * hw["sram_access_energy_pj"] * 1e-12
    macs = sum(r["macs"] for r in pl)
    mac_pj = ((power_w - static_w) * t_pl - pl_sram_j - pl_dram_j) / macs * 1e12
    return {"softmax_cycles_per_element": softmax, "mac_energy_pj": mac_pj, "ps_active_power_w": ps_active}
