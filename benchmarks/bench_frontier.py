"""The CPU frontier: pivot's fp32 and int8 engines against ONNX Runtime (fp32 and dynamic int8) and
OpenVINO (f32 and NNCF int8) on DeiT-S with random weights, at the issue's three points: batch 1
on 1 thread, batch 1 on N threads, batch 32 on N threads (N = pivot's default thread count).

    python benchmarks/run.py --only frontier [--quick]

Every contender runs in this process with the same thread count, fp32 images in and logits out,
timed round-robin on the wall clock with a settle sleep before each call (idle pool threads of the
previous contender stop spinning), best of the rounds. Wall clock at one thread too: OpenVINO
computes on its own worker threads, so the calling thread's CPU time would not see its work.

Contenders:

- pivot fp32: ``pivot.ViT`` at the process's SIMD level (``PIVOT_SIMD`` caps it);
- pivot int8: ``pivot.quantize`` calibrated on the 8 calibration images below (min-max, per
  tensor), the best int8 kernel of the level (``pivot.quant.kernel_in_use``);
- ONNX Runtime fp32: the model exported from ``pivot.torch`` (opset 17, dynamic batch; the same
  export as ``bench_engine``), CPU execution provider, all graph optimizations,
  ``intra_op_num_threads`` = threads;
- ONNX Runtime int8: that ONNX file through ``onnxruntime.quantization.quantize_dynamic``
  (QInt8 weights, per tensor, dynamic uint8 activations);
- OpenVINO f32: the ONNX file compiled for CPU with ``PERFORMANCE_HINT=LATENCY``,
  ``INFERENCE_NUM_THREADS`` = threads and ``INFERENCE_PRECISION_HINT=f32``; where the CPU's default
  inference precision is not f32 (bf16 on CPUs with AVX-512 BF16 or AMX) the default is timed too
  (key ``..._vs_openvino_default``);
- OpenVINO int8: ``nncf.quantize`` (post-training, ``ModelType.TRANSFORMER``) of the OpenVINO
  model on the same 8 calibration images, same compile settings as f32 (no precision hint).

Neither peer can be capped at pivot's SIMD level: on a CPU with AVX-512 / VNNI, ONNX Runtime's
MLAS uses them whatever ``PIVOT_SIMD`` says; OpenVINO's oneDNN honours ``ONEDNN_MAX_CPU_ISA``
(e.g. ``AVX2``) when it is set before the first import of openvino (the detail prints it).

Keys (ratio > 1: pivot faster): ``frontier_{fp32,int8}_b{1,32}_{T}t_vs_{peer}`` for the peers
above and ``frontier_int8_..._vs_pivot_fp32``; ``frontier_{fp32,int8}_b1_scaling``: pivot's
speed-up from 1 to N threads at batch 1 (ratio = that speed-up, peer = ONNX Runtime's).
"""
import functools
import os

import numpy as np

import pivot
from bench_engine import PRESET, _images, _model, _peers, interleaved_best, ort_fn, temp_path
from common import Result
from pivot import quant
from pivot.model import default_threads

SETTLE_SECONDS = 0.2
CALIBRATION = 8  # images, shared by pivot's, and NNCF's calibration


@functools.lru_cache(maxsize=1)
def _calibration():
    return _images(_model().config, CALIBRATION)


@functools.lru_cache(maxsize=1)
def _pivot_int8():
    return quant.quantize(_model(), _calibration())


def _onnx_path():
    peers = _peers()
    if peers._onnx_path is None:
        peers._export()
    return peers._onnx_path


@functools.lru_cache(maxsize=1)
def _onnx_int8_path():
    from onnxruntime.quantization import QuantType, quantize_dynamic
    path = temp_path(".onnx")
    quantize_dynamic(_onnx_path(), path, weight_type=QuantType.QInt8)
    return path


@functools.lru_cache(maxsize=1)
def _ov_core():
    import openvino as ov
    return ov.Core()


@functools.lru_cache(maxsize=1)
def _ov_int8_model():
    import nncf
    core = _ov_core()
    model = core.read_model(_onnx_path())
    calib = _calibration()
    dataset = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))])
    return nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calib))


@functools.lru_cache(maxsize=16)
def _ov_compiled(kind, threads):
    """kind: 'f32' (precision hint f32), 'default' (the CPU's default precision) or 'int8' (NNCF)."""
    core = _ov_core()
    model = _ov_int8_model() if kind == "int8" else core.read_model(_onnx_path())
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    if kind == "f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return core.compile_model(model, "CPU", config)


def _ov_fn(kind, images, threads):
    compiled = _ov_compiled(kind, threads)
    request = compiled.create_infer_request()
    return lambda: request.infer({0: images})


def _ov_default_precision():
    return _ov_core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()


def bench_frontier(quick):
    """pivot fp32 / int8 against ONNX Runtime fp32 / int8 and OpenVINO f32 / int8, three points."""
    import onnxruntime  # noqa: F401  (a missing peer skips the whole benchmark, loudly)
    import openvino  # noqa: F401

    threads = default_threads()
    model, qmodel = _model(), _pivot_int8()
    default_prec = _ov_default_precision()
    ov_kinds = ["f32", "int8"] + ([] if default_prec == "f32" else ["default"])
    points = [(1, 1, 3 if quick else 15)]
    if threads > 1:
        points.append((1, threads, 3 if quick else 15))
    points.append((32, threads, 1 if quick else 3))
    level = pivot._core.simd_level()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "unset")
    results, times = [], {}
    for batch, n, repeat in points:
        images = _images(model.config, batch)
        contenders = {
            "pivot_fp32": lambda: model(images, threads=n),
            "pivot_int8": lambda: qmodel(images, threads=n),
            "onnxruntime": ort_fn(_onnx_path(), images, n),
            "onnxruntime_int8": ort_fn(_onnx_int8_path(), images, n),
        }
        for kind in ov_kinds:
            contenders[f"openvino_{kind}"] = _ov_fn(kind, images, n)
        best = dict(zip(contenders, interleaved_best(list(contenders.values()), repeat, warmup=1,
                                                     settle=SETTLE_SECONDS)))
        times[batch, n] = best
        detail = (f"{PRESET} random weights, batch {batch}, {n} thread(s), best of {repeat} (wall clock); "
                  f"pivot SIMD level {level}, int8 kernel {quant.kernel_in_use()}; OpenVINO default precision "
                  f"{default_prec}, ONEDNN_MAX_CPU_ISA={isa}; ms: "
                  + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in best.items()))
        point = f"b{batch}_{n}t"
        for ours, peers in (("pivot_fp32", ["onnxruntime"] + [f"openvino_{k}" for k in ov_kinds if k != "int8"]),
                            ("pivot_int8", ["onnxruntime_int8", "openvino_int8", "pivot_fp32"])):
            for peer in peers:
                prec = ours.split("_")[1]
                results.append(Result(f"frontier_{prec}_{point}_vs_{peer}", best[peer] / best[ours],
                                      best[ours] * 1e3, best[peer] * 1e3, "ms", detail))
    if threads > 1:
        one, many = times[1, 1], times[1, threads]
        for prec in ("fp32", "int8"):
            ours = f"pivot_{prec}"
            peer = "onnxruntime" if prec == "fp32" else "onnxruntime_int8"
            results.append(Result(f"frontier_{prec}_b1_scaling", one[ours] / many[ours], one[ours] / many[ours],
                                  one[peer] / many[peer], "x",
                                  f"batch 1, 1 -> {threads} threads speed-up (wall clock): pivot {prec} "
                                  f"{one[ours] * 1e3:.1f} -> {many[ours] * 1e3:.1f} ms; peer = {peer}'s speed-up "
                                  f"{one[peer] * 1e3:.1f} -> {many[peer] * 1e3:.1f} ms"))
    return results


BENCHMARKS = [bench_frontier]
