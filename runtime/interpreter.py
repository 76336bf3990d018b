"""Which TFLite interpreter package is installed: ai-edge-litert, else tflite-runtime, else (lazily,
as a last resort on a workstation) tensorflow.lite. The device never needs TensorFlow."""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgeseg.core.errors import ModelError

# (module to import, package name users install)
_CANDIDATES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


@lru_cache(maxsize=1)
def resolve_interpreter() -> tuple[type[Any], Callable[..., Any], str]:
    """(Interpreter class, load_delegate function, package name) of the first interpreter found."""
    for module_name, package in _CANDIDATES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        return module.Interpreter, module.load_delegate, package
    try:  # the workstation fallback; imported here only so the runtime never pulls it in otherwise
        tflite = importlib.import_module("tensorflow").lite
    except ImportError:
        raise ModelError(
            "no TFLite interpreter installed: `pip install ai-edge-litert` (or tflite-runtime)"
        ) from None
    return tflite.Interpreter, tflite.experimental.load_delegate, "tensorflow"


def interpreter_version() -> str:
    """'package version' of the interpreter in use, for reports (`ai-edge-litert 1.4.0`)."""
    _, _, package = resolve_interpreter()
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return f"{package} {version}"


MAX_THREADS = 256  # the interpreter crashes the process far above any core count


def default_threads() -> int:
    """All cores this process may use: ai-edge-litert runs ONE thread unless told otherwise."""
    return usable_cpus()


def usable_cpus() -> int:
    """The cores this process may run on: its CPU affinity (taskset, Docker --cpuset-cpus,
    systemd CPUAffinity=) capped by a cgroup v2 CPU quota (Docker --cpus), not every core of
    the machine: threads beyond them only take turns."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def builtin_op_resolver() -> Any | None:
    """The resolver type that keeps XNNPACK out of the graph (for op histograms), if exposed."""
    Interpreter, _, _ = resolve_interpreter()
    module = importlib.import_module(Interpreter.__module__)
    resolver = getattr(module, "OpResolverType", None)
    return None if resolver is None else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
