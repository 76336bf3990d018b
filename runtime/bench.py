"""`edgeseg bench`: invoke latency and whole frame-path latency of a .tflite, over a threads sweep,
with the model's multiply-accumulate count (from its ops and tensor shapes) and achieved GMAC/s."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.errors import EdgesegError
from edgeseg.runtime.delegates import DelegateReport
from edgeseg.runtime.segmenter import Segmenter


@dataclass(frozen=True)
class Latency:
    """Milliseconds over the timed runs (warm-up excluded)."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    runs: int

    @classmethod
    def from_seconds(cls, samples: list[float]) -> Latency:
        ms = np.asarray(samples, np.float64) * 1000.0
        p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
        return cls(
            round(p50, 4),
            round(p90, 4),
            round(p99, 4),
            round(float(ms.mean()), 4),
            round(float(ms.min()), 4),
            len(samples),
        )


@dataclass(frozen=True)
class ThreadsResult:
    """One point of the threads sweep."""

    threads: int
    invoke: Latency
    frame: Latency
    gmacs_per_s: float


@dataclass
class BenchResult:
    """Everything `edgeseg bench` measured for one model."""

    model: str
    interpreter: str
    delegate: str
    input_shape: list[int]
    input_dtype: str
    frame_shape: list[int]
    macs: int
    ops: dict[str, int]
    delegated: str | None
    results: list[ThreadsResult] = field(default_factory=list)

    @property
    def best(self) -> ThreadsResult:
        return min(self.results, key=lambda r: r.invoke.p50_ms)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _conv_macs(op: dict[str, Any], shapes: dict[int, list[int]]) -> int:
    name = op["op_name"]
    ins = [int(t) for t in op["inputs"]]
    out = shapes.get(int(op["outputs"][0]), [])
    if name == "CONV_2D":  # filter (Cout, kh, kw, Cin); output (N, Ho, Wo, Cout)
        _, kh, kw, cin = shapes[ins[1]]
        return int(np.prod(out, dtype=np.int64)) * kh * kw * cin
    if name == "DEPTHWISE_CONV_2D":  # filter (1, kh, kw, Cout)
        _, kh, kw, _ = shapes[ins[1]]
        return int(np.prod(out, dtype=np.int64)) * kh * kw
    if name == "TRANSPOSE_CONV":  # inputs: output_shape, filter (Cout, kh, kw, Cin), input
        cout, kh, kw, _ = shapes[ins[1]]
        return int(np.prod(shapes[ins[2]], dtype=np.int64)) * kh * kw * cout
    if name == "FULLY_CONNECTED":  # weights (units, in)
        units, depth = shapes[ins[1]][-2:]
        return int(np.prod(out[:-1], dtype=np.int64)) * units * depth
    return 0


def op_histogram(interpreter: Any) -> dict[str, int]:
    """Builtin op counts of the original graph (DELEGATE nodes left out)."""
    ops = interpreter._get_ops_details()
    return dict(Counter(o["op_name"] for o in ops if o["op_name"] != "DELEGATE"))


def count_macs(interpreter: Any) -> int:
    """Multiply-accumulates per inference (CONV_2D, DEPTHWISE, TRANSPOSE_CONV, FULLY_CONNECTED)."""
    shapes = {
        int(t["index"]): [int(v) for v in t["shape"]] for t in interpreter.get_tensor_details()
    }
    total = 0
    for op in interpreter._get_ops_details():
        try:
            total += _conv_macs(op, shapes)
        except (KeyError, ValueError):
            continue  # a tensor without static shape: skip rather than guess
    return total


def count_model_macs(tflite: bytes) -> int:
    """Multiply-accumulates per inference of a .tflite given as bytes (edgeseg metadata or not)."""
    from edgeseg.core.model_metadata import strip_metadata
    from edgeseg.runtime.interpreter import builtin_op_resolver, resolve_interpreter

    Interpreter, _, _ = resolve_interpreter()
    resolver = builtin_op_resolver()
    kwargs = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    return count_macs(Interpreter(model_content=strip_metadata(tflite), **kwargs))


def _describe(report: DelegateReport) -> str:
    return f"{report.delegated_ops}/{report.total_ops} ops in {report.partitions} partition(s)"


def _time(fn: Any, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def benchmark(
    model_path: str | Path,
    *,
    runs: int = 100,
    warmup: int = 10,
    threads: list[int] | None = None,
    delegate: str | None = None,
    fallback: str | None = None,
    frame_shape: tuple[int, int] = (480, 640),
    seed: int = 0,
) -> BenchResult:
    """Time invoke alone and preprocess+invoke+postprocess on a camera-size frame, per threads."""
    if runs < 1 or warmup < 0:
        raise EdgesegError(f"--runs must be >= 1 and --warmup >= 0 (got {runs}, {warmup})")
    result: BenchResult | None = None
    for count in threads or [0]:
        seg = Segmenter(model_path, threads=count or None, delegate=delegate, fallback=fallback)
        # a camera-sized BGR frame: gray models get it through the same channel conversion
        frame = np.random.default_rng(seed).integers(0, 256, (*frame_shape, 3), dtype=np.uint8)
        tensor, _ = seg.preprocess(frame)
        if result is None:
            report = seg.delegate_report
            result = BenchResult(
                model=str(model_path),
                interpreter=seg.interpreter_package,
                delegate=seg.delegate_name or "cpu",
                input_shape=[int(v) for v in seg.input["shape"]],
                input_dtype=np.dtype(seg.input["dtype"]).name,
                frame_shape=list(frame.shape),
                macs=count_macs(seg.interpreter),
                ops=op_histogram(seg.interpreter),
                delegated=None if report is None else _describe(report),
            )
        invoke = Latency.from_seconds(_time(partial(seg.invoke, tensor), runs, warmup))
        full = Latency.from_seconds(_time(partial(seg.predict, frame), runs, warmup))
        gmacs = result.macs / (invoke.p50_ms / 1000.0) / 1e9 if invoke.p50_ms > 0 else 0.0
        result.results.append(ThreadsResult(seg.threads, invoke, full, round(gmacs, 3)))
    assert result is not None
    return result


def compare(a: BenchResult, b: BenchResult) -> list[dict[str, float | int]]:
    """Per thread count: p50 invoke and frame-path latency of b over a (2.0 = b twice as slow)."""
    rows: list[dict[str, float | int]] = []
    for ra, rb in zip(a.results, b.results, strict=False):
        rows.append(
            {
                "threads": ra.threads,
                "invoke_ratio": round(rb.invoke.p50_ms / ra.invoke.p50_ms, 3),
                "frame_ratio": round(rb.frame.p50_ms / ra.frame.p50_ms, 3),
            }
        )
    return rows
