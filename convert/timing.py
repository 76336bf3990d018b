"""Does a converted model run here, and how fast? Invoke-only timing on the LiteRT interpreter.

Used to price the levers of issue 6 (float fallback layers, int16x8) against plain int8 on the SAME
machine in the same process; absolute numbers are this machine's, only the ratios carry over.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from edgeseg.convert.tflite_inspect import interpreter_module
from edgeseg.core.errors import ConversionError
from edgeseg.core.model_metadata import strip_metadata


def invoke_latency_ms(
    model: str | Path | bytes, *, runs: int = 20, warmup: int = 3, threads: int = 1
) -> float:
    """Median milliseconds per `invoke()` on a zero input (default delegates, i.e. XNNPACK).

    Raises ConversionError naming the op when the interpreter has no kernel for it (for example a
    16-bit op this LiteRT build lacks), so an unsupported model is reported, not shipped.
    """
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    label = "<bytes>" if isinstance(model, bytes) else str(model)
    mod, pkg = interpreter_module()
    try:
        interp = mod.Interpreter(model_content=strip_metadata(data), num_threads=threads)
        interp.allocate_tensors()
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        for _ in range(max(0, warmup)):
            interp.invoke()
        times = []
        for _ in range(max(1, runs)):
            start = time.perf_counter()
            interp.invoke()
            times.append(time.perf_counter() - start)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(
            f"{label}: does not run on {pkg}: {first} (an op without a kernel for these types; "
            "use --quant int8)"
        ) from exc
    return 1000.0 * statistics.median(times)
