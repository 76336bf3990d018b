"""`edgeseg bench`: invoke latency and whole frame-path latency of a .tflite, over a threads sweep,
with the model's multiply-accumulate count (from its ops and tensor shapes) and achieved GMAC/s.

Also the bare `invoke_latency_ms` that conversion uses to price its candidates: one timing loop.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.errors import EdgesegError, ModelError, first_line
from edgeseg.core.model_metadata import strip_metadata
from edgeseg.runtime.delegates import DelegateReport
from edgeseg.runtime.inspect import count_macs, op_histogram
from edgeseg.runtime.interpreter import interpreter_version, resolve_interpreter
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


def _describe(report: DelegateReport) -> str:
    return f"{report.delegated_ops}/{report.total_ops} ops in {report.partitions} partition(s)"


def time_calls(fn: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Seconds per call of `fn` over `runs` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def invoke_latency_ms(
    model: str | Path | bytes, *, runs: int = 20, warmup: int = 3, threads: int = 1
) -> float:
    """Median milliseconds per `invoke()` on a zero input (default delegates, i.e. XNNPACK).

    Raises ModelError naming the op when the interpreter has no kernel for it (for example a
    16-bit op this LiteRT build lacks), so an unsupported model is reported, not shipped.
    """
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    label = "<bytes>" if isinstance(model, bytes) else str(model)
    interpreter_class, _, _ = resolve_interpreter()
    try:
        interp = interpreter_class(model_content=strip_metadata(data), num_threads=threads)
        interp.allocate_tensors()
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        times = time_calls(interp.invoke, max(1, runs), max(0, warmup))
    except (RuntimeError, ValueError) as exc:
        raise ModelError(
            f"{label}: does not run on {interpreter_version()}: {first_line(exc)} (an op without "
            "a kernel for these types; use --quant int8)"
        ) from exc
    return 1000.0 * statistics.median(times)


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
        invoke = Latency.from_seconds(time_calls(partial(seg.invoke, tensor), runs, warmup))
        full = Latency.from_seconds(time_calls(partial(seg.predict, frame), runs, warmup))
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
