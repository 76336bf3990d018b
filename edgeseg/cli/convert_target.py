"""The Coral path decided at training time: a model trained with `--target edgetpu` converts with
uint8 I/O by default and is compiled for the Edge TPU when `edgetpu_compiler` is installed."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeseg.cli.common import console
from edgeseg.convert.options import IOType, Quant
from edgeseg.convert.target import default_io, model_target


def resolve_target(
    model: Path, io: IOType | None, edgetpu: bool, quant: Quant
) -> tuple[IOType, bool]:
    """(--io, --edgetpu) with the defaults an Edge TPU model implies; explicit choices win."""
    if model_target(model) != "edgetpu" or quant != Quant.INT8:
        return io or IOType.INT8, edgetpu
    if io is None:
        io = default_io(model)
        console.print("model trained for the Edge TPU: --io uint8", highlight=False)
    if not edgetpu:
        from edgeseg.convert.edgetpu import COMPILER

        if shutil.which(COMPILER):
            console.print(f"{COMPILER} found: compiling for the Edge TPU too", highlight=False)
            edgetpu = True
        else:
            console.print(
                f"model trained for the Edge TPU; {COMPILER} is not installed here, so only the "
                "int8 model is written (compile it on x86-64 Linux with --edgetpu)",
                highlight=False,
            )
    return io, edgetpu
