"""The Edge TPU step of `edgeseg convert`, written once for both paths (plain and --max-drop):
compile, record the compiler result in the report, print it, and with --edgetpu-strict exit 1 when
any op falls back to the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeseg.cli.common import console, fail, user_errors

if TYPE_CHECKING:
    from edgeseg.convert.edgetpu import EdgeTpuResult


def edgetpu_step(model_path: Path, report_path: Path, *, strict: bool) -> None:
    """Compile `model_path` for the Edge TPU and record it in `report_path`; strict: exit 1 on
    CPU fallbacks."""
    from edgeseg.convert.pipeline import compile_and_record

    with user_errors():
        result = compile_and_record(model_path, report_path)
    print_edgetpu(result)
    if strict and result.fallbacks:
        raise fail(f"{len(result.fallbacks)} op kind(s) fall back to the CPU (--edgetpu-strict)", 1)


def print_edgetpu(result: EdgeTpuResult) -> None:
    """How many ops the compiler mapped, and which fell back to the CPU and why."""
    total = result.total_ops or (result.ops_on_tpu + result.ops_on_cpu)
    console.print(
        f"Edge TPU compiler {result.compiler_version or '?'}: {result.ops_on_tpu}/{total} ops on "
        f"the Edge TPU, {result.ops_on_cpu} on the CPU -> {result.compiled_path}"
    )
    for op, count, status in result.fallbacks:
        console.print(f"  [yellow]CPU[/] {op} x{count}: {status}", highlight=False)
