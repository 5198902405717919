"""SCALE-Sim 3 files: read its ``.cfg`` designs and GEMM topologies, write a design and a model's
GEMMs for a cross-check in SCALE-Sim."""
from __future__ import annotations

import configparser
import csv
import dataclasses
import io
import math
import os
import re

from .. import _validate
from ..config import ViTConfig
from ..io import open_regular_file, write_atomically
from .hardware import DATAFLOWS, ZCU102, HardwareConfig, check_hardware
from .simulation import GemmLayer, _gemm_items, simulate

# Files larger than this are not SCALE-Sim inputs (a DeiT-S topology is a few kB).
_MAX_FILE_BYTES = 64 << 20
# A GEMM dimension beyond this is no layer (and would overflow the simulator's counts).
_MAX_DIM = 1 << 40


def _config_error(path, message):
    return ValueError(f"{path}: {message}")


def _read_text(path, what) -> str:
    """The UTF-8 text of a regular file (a FIFO or device is refused before it is read, see
    ``pivot.io.open_regular_file``), at most _MAX_FILE_BYTES."""
    try:
        with open_regular_file(path, error=ValueError) as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except IsADirectoryError:
        raise _config_error(path, f"{what} is a directory, not a regular file") from None
    if len(data) > _MAX_FILE_BYTES:
        raise _config_error(path, f"{what} is larger than {_MAX_FILE_BYTES >> 20} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _config_error(path, f"line {line}: not UTF-8 text ({exc.reason})") from None


def _csv_name(name: str) -> str:
    """A layer name as one CSV field: a leading formula character neutralised with ``'``, quoted
    (quotes doubled) when it holds a separator, a quote, a line break or edge whitespace."""
    if name[:1] in ("=", "+", "-", "@"):
        name = "'" + name
    if any(ch in name for ch in ',"\r\n') or name != name.strip():
        name = '"' + name.replace('"', '""') + '"'
    return name


def _write_atomic(path: str, text: str) -> None:
    """``text`` as UTF-8 (newlines as given) through pivot's one atomic writer."""
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def read_scalesim_config(path, base: HardwareConfig = ZCU102) -> HardwareConfig:
    """A HardwareConfig from a SCALE-Sim ``.cfg`` file: ``base`` with the file's array, dataflow
    and SRAM sizes.

    ``ArrayHeight``/``ArrayWidth`` -> array_rows/array_cols; ``Dataflow``; ``IfmapSramSzkB``,
    ``FilterSramSzkB``, ``OfmapSramSzkB`` (kB of 1024 bytes) -> ipmem/wtmem/opmem_bytes; no global
    buffer (SCALE-Sim has none); ``run_name`` -> name. In ``InterfaceBandwidth: USER`` mode the
    ``Bandwidth`` (words per cycle) becomes the shared DRAM bandwidth at ``base``'s clock; in
    ``CALC`` mode (SCALE-Sim estimates the bandwidth it needs) DRAM never stalls (math.inf).
    """
    path = _validate.existing_file(path, "SCALE-Sim config")
    text = _read_text(path, "SCALE-Sim config")
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise _config_error(path, f"not a SCALE-Sim config ({exc})") from None
    lines = text.splitlines()

    def where(section, key):
        """'line N, [section] key': the line of the key's last occurrence in its section."""
        current, found = None, None
        for n, line in enumerate(lines, 1):
            stripped = line.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                current = stripped[1:-1].strip()
            elif current == section and re.match(rf"\s*{re.escape(key)}\s*[:=]", line, re.IGNORECASE):
                found = n
        return f"line {found}, [{section}] {key}" if found else f"[{section}] {key}"

    def get(section, key):
        if not parser.has_option(section, key):
            raise _config_error(path, f"missing [{section}] {key}")
        return parser.get(section, key).strip()

    def get_int(section, key):
        text = get(section, key)
        try:
            value = int(text)
        except ValueError:
            raise _config_error(path, f"{where(section, key)} must be an integer, got {text!r}") from None
        if value < 1:
            raise _config_error(path, f"{where(section, key)} must be positive, got {value}")
        return value

    arch = "architecture_presets"
    dataflow = get(arch, "Dataflow").lower()
    if dataflow not in DATAFLOWS:
        raise _config_error(path, f"{where(arch, 'Dataflow')} must be one of {DATAFLOWS}, got {dataflow!r}")
    changes = dict(array_rows=get_int(arch, "ArrayHeight"), array_cols=get_int(arch, "ArrayWidth"), dataflow=dataflow,
                   ipmem_bytes=1024 * get_int(arch, "IfmapSramSzkB"), wtmem_bytes=1024 * get_int(arch, "FilterSramSzkB"),
                   opmem_bytes=1024 * get_int(arch, "OfmapSramSzkB"), global_buffer_bytes=0)
    if parser.has_option("general", "run_name"):
        changes["name"] = parser.get("general", "run_name").strip()
    mode = parser.get("run_presets", "InterfaceBandwidth", fallback="CALC").strip().upper()
    if mode == "USER":
        text = get(arch, "Bandwidth").split(",")[0].strip()
        try:
            words_per_cycle = float(text)
        except ValueError:
            raise _config_error(path, f"{where(arch, 'Bandwidth')} must be a number, got {text!r}") from None
        if not 0 < words_per_cycle < math.inf:
            raise _config_error(path, f"{where(arch, 'Bandwidth')} must be positive and finite, got {text!r}")
        changes["dram_bandwidth_gbps"] = words_per_cycle * base.word_bytes * base.clock_mhz * 1e-3
    elif mode == "CALC":
        changes["dram_bandwidth_gbps"] = math.inf
    else:
        raise _config_error(path, f"{where('run_presets', 'InterfaceBandwidth')} must be USER or CALC, got {mode!r}")
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as exc:
        raise _config_error(path, f"not a valid design ({exc})") from None


def read_topology_csv(path) -> list:
    """The GEMMs of a SCALE-Sim GEMM topology CSV (header, then ``Layer name, M, N, K,`` rows).

    Extra columns (SCALE-Sim's sparsity ratio) are ignored; trailing commas are optional.
    Convolution topologies (IFMAP Height, ...) are refused: convert them to GEMMs first.
    """
    path = _validate.existing_file(path, "topology file")
    text = _read_text(path, "topology file")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, [c.strip() for c in row]))
    except csv.Error as exc:
        raise _config_error(path, f"line {reader.line_num}: not CSV ({exc})") from None
    rows = [(n, [c for c in row if c != ""] if row and row[-1] == "" else row) for n, row in rows]
    rows = [(n, row) for n, row in rows if any(row)]
    if not rows:
        raise _config_error(path, "empty topology file")
    header = [h.lower() for h in rows[0][1]]
    if any("ifmap" in h or "filter" in h for h in header):
        raise _config_error(path, "this is a convolution topology; pivot reads GEMM topologies "
                                  "(Layer name, M, N, K)")
    layers = []
    for line, row in rows[1:]:
        if len(row) < 4:
            raise _config_error(path, f"line {line}: expected Layer name, M, N, K; got {len(row)} fields {row}")
        dims = []
        for key, text in zip("MNK", row[1:4]):
            try:
                value = int(text)
            except ValueError:
                raise _config_error(path, f"line {line}, field {key}: must be an integer, got {text[:40]!r}") from None
            if not 1 <= value <= _MAX_DIM:
                raise _config_error(path, f"line {line}, field {key}: must be in [1, {_MAX_DIM}], got {value}")
            dims.append(value)
        layers.append(GemmLayer(row[0], *dims))
    if not layers:
        raise _config_error(path, "no layers after the header")
    return layers


_SCALESIM_CFG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {ifmap_kb}
FilterSramSzkB: {filter_kb}
OfmapSramSzkB: {ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: {bandwidth}
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {bandwidth}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {bandwidth}
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""


def to_scalesim(design: HardwareConfig, model, path=None, out_dir=".", batch: int = 1) -> dict:
    """Write ``design`` and a model's matrix products as SCALE-Sim 3 input files, so that one design
    can be cross-checked in SCALE-Sim (``python -m scalesim.scale -c scale.cfg -t gemm.csv -i gemm``).

    ``model``: a ``pivot.ViTConfig`` or a model (its GEMMs as ``simulate`` runs them with ``path``
    at ``batch``; a product repeated ``count`` times, e.g. QK^T once per head and image, becomes
    ``count`` rows named ``<layer>.<i>``), or a list of ``GemmLayer`` / ``(name, M, N, K[, count])``.
    The elementwise PS operations have no SCALE-Sim counterpart and are left out.

    Writes ``scale.cfg``, ``gemm.csv`` (``Layer name, M, N, K,``) and ``layout.csv`` into
    ``out_dir`` (created if needed) and returns their paths as ``{"config", "topology", "layout"}``.
    Layer names are written as CSV fields: quoted when they hold a comma, a quote or a line break,
    and prefixed with ``'`` when they start with ``=``, ``+``, ``-`` or ``@`` (so that a spreadsheet
    does not read them as formulas). Each file is written to a temporary file and renamed over the
    target; a target that is a symbolic link (or not a regular file) is refused.
    The config maps the design as ``read_scalesim_config`` reads it back: array, dataflow, SRAM
    sizes in kB of 1024 bytes (rounded, at least 1), no global buffer (SCALE-Sim has none), and
    the DRAM bandwidth in words per cycle at the PL clock (``USER`` mode, rounded, at least 1), or
    ``CALC`` mode (SCALE-Sim estimates the bandwidth) for ``dram_bandwidth_gbps=math.inf``.
    """
    design = check_hardware(design)
    if isinstance(model, ViTConfig) or hasattr(model, "config"):
        report = simulate(model, path=path, hw=design, batch=batch)
        layers = [GemmLayer(layer.name, layer.M, layer.N, layer.K, layer.count)
                  for layer in report.layers if layer.kind == "gemm"]
    else:
        if path is not None:
            raise ValueError("path applies to a model or config, not to a list of GEMMs")
        layers = _gemm_items(model)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)

    def kb(nbytes):
        return max(1, round(nbytes / 1024))

    if math.isinf(design.dram_bandwidth_gbps):
        mode, bandwidth = "CALC", 10   # the value is not used in CALC mode
    else:
        mode = "USER"
        words_per_cycle = design.dram_bandwidth_gbps * 1e9 / (design.word_bytes * design.clock_mhz * 1e6)
        bandwidth = max(1, round(words_per_cycle))
    files = {"config": os.path.join(out_dir, "scale.cfg"), "topology": os.path.join(out_dir, "gemm.csv"),
             "layout": os.path.join(out_dir, "layout.csv")}
    for target in files.values():  # refused before anything is written
        if os.path.islink(target):
            raise ValueError(f"{target} is a symbolic link: refusing to write through it")
        if os.path.exists(target) and not os.path.isfile(target):
            raise ValueError(f"{target} exists and is not a regular file")
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in design.name) or "pivot"
    config_text = _SCALESIM_CFG.format(name=name, rows=design.array_rows, cols=design.array_cols,
                                       dataflow=design.dataflow, ifmap_kb=kb(design.ipmem_bytes),
                                       filter_kb=kb(design.wtmem_bytes), ofmap_kb=kb(design.opmem_bytes),
                                       bandwidth=bandwidth, mode=mode)
    topology = ["Layer name, M, N, K,\n"]
    for g in layers:
        for i in range(g.count):
            topology.append(f"{_csv_name(g.name if g.count == 1 else f'{g.name}.{i}')}, {g.M}, {g.N}, {g.K},\n")
    _write_atomic(files["config"], config_text)
    _write_atomic(files["topology"], "".join(topology))
    _write_atomic(files["layout"], "Layer name,\n")
    return files
