"""`edgeseg convert`: trained .keras model -> int8 (or float16/dynamic/float32) .tflite + report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from edgeseg.cli.common import (
    call,
    console,
    next_steps,
    phases,
    quiet_tensorflow,
    user_errors,
    warn,
)
from edgeseg.convert.options import (
    DEFAULT_MAX_FLOAT_LAYERS,
    IOType,
    Quant,
    check_edgetpu,
    check_io,
)
from edgeseg.convert.source import CalibChoice, choose_source, training_data
from edgeseg.convert.source import default_calib as source_default_calib
from edgeseg.core.errors import require_training_stack

if TYPE_CHECKING:
    from edgeseg.convert.pipeline import ConvertOutcome

CHECKOUT = Path(__file__).resolve().parents[2]  # the source checkout, when run from one


def default_calib(model: Path | None = None) -> CalibChoice | None:
    """Where `convert` calibrates without --calib (`edgeseg.convert.source.default_calib`),
    with this checkout's synthetic frames as the last resort when run from one."""
    return source_default_calib(model, CHECKOUT)


def convert(
    model: Annotated[
        Path,
        typer.Argument(help="Trained .keras model (config.json beside it).", show_default=False),
    ],
    calib: Annotated[
        Path | None,
        typer.Option(
            "--calib",
            help="Calibration images: a folder of images or a dataset folder in any layout "
            "train reads (its images, every split). Default: ./calib_data/, else the data the "
            "model was trained on (config.json), else a source checkout's synthetic "
            "calib_data/.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output .tflite. Default: MODEL_<quant>.tflite beside it."
        ),
    ] = None,
    quant: Annotated[Quant, typer.Option("--quant", help="Quantisation mode.")] = Quant.INT8,
    io: Annotated[
        IOType | None,
        typer.Option(
            "--io",
            help="Input tensor type of an int8 model (output int8; float32 makes both ends "
            "float). uint8 takes camera bytes straight in, with no float math on the device. "
            "\\[default: int8; uint8 for a model trained with --target edgetpu]",
            show_default=False,
        ),
    ] = None,
    calib_count: Annotated[
        int, typer.Option("--calib-count", min=1, help="Calibration frames to use (at most).")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the calibration sampling.")] = 0,
    keep_softmax: Annotated[
        bool,
        typer.Option(
            "--keep-softmax",
            help="Keep the per-pixel softmax, so the .tflite outputs probabilities. By default "
            "it outputs the logits: the same masks (argmax), one op less, which on a CPU runs "
            "outside XNNPACK on one thread and on an Edge TPU falls back to the CPU.",
        ),
    ] = False,
    edgetpu: Annotated[
        bool, typer.Option("--edgetpu", help="Also compile with edgetpu_compiler (on PATH).")
    ] = False,
    edgetpu_strict: Annotated[
        bool,
        typer.Option(
            "--edgetpu-strict", help="--edgetpu, and exit 1 if any op falls back to the CPU."
        ),
    ] = False,
    diagnose: Annotated[
        bool,
        typer.Option(
            "--diagnose",
            help="Per-layer int8 error (QuantizationDebugger on the calibration frames): "
            "diagnose.csv + diagnose.png beside --out (alone, in --out when it is a folder) "
            "and a table. Alone, no model is written.",
        ),
    ] = False,
    max_drop: Annotated[
        float | None,
        typer.Option(
            "--max-drop",
            min=0.0,
            help="Accuracy-aware: max mIoU drop (points) vs the float model on --data; keeps the "
            "worst layers in float until met, else exit 1 with OUT.best_effort.tflite.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Labelled images for --max-drop (DATA or DATA/val)."),
    ] = None,
    max_float_layers: Annotated[
        int | None,
        typer.Option(
            "--max-float-layers", min=0, help="With --max-drop: most layers in float. [default: 8]"
        ),
    ] = None,
) -> None:
    """Convert a trained Keras model to full-integer int8 TFLite (or float16, dynamic, float32,
    int16x8).

    Writes the .tflite atomically with the model spec embedded, and <out stem>.report.json beside
    it: size vs float32, op histogram, calibration facts and an Edge TPU pre-check.

    Example:
      edgeseg convert runs/street/model.keras --calib data/street --io uint8
    """
    from edgeseg.cli.convert_target import resolve_target

    with user_errors():
        check_io(quant, io)
    # --edgetpu-strict asks for compiling as --edgetpu does: no "compile it with --edgetpu" note
    io, edgetpu = resolve_target(model, io, edgetpu or edgetpu_strict, quant)
    quiet_tensorflow()
    call(require_training_stack, "edgeseg convert")
    from edgeseg.cli import convert_quality
    from edgeseg.cli.convert_edgetpu import edgetpu_step
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.convert.pipeline import convert_model

    with user_errors():
        options = ConvertOptions(
            quant=quant, io=io, calib_count=calib_count, seed=seed, keep_softmax=keep_softmax
        )
        convert_quality.check_flags(
            options,
            diagnose=diagnose,
            max_drop=max_drop,
            data=data,
            max_float_layers=max_float_layers,
        )
        edgetpu = edgetpu or edgetpu_strict  # strict implies compiling, with the same checks
        if edgetpu:
            check_edgetpu(options.quant, "--edgetpu-strict" if edgetpu_strict else "--edgetpu")
        chosen = choose_source(
            model,
            options,
            calib,
            out,
            post_training=diagnose or max_drop is not None,
            checkout=CHECKOUT,
            writes_model=max_drop is not None or not diagnose,
        )
        model, calib, out = chosen.model, chosen.calib, chosen.out
        for note in chosen.notes:
            console.print(note, highlight=False)
        for message in chosen.warnings:
            warn(message)
        if diagnose or max_drop is not None:
            assert calib is not None
            written = convert_quality.run(
                model,
                calib,
                out,
                options,
                diagnose=diagnose,
                max_drop=max_drop,
                data=data,
                max_float_layers=DEFAULT_MAX_FLOAT_LAYERS
                if max_float_layers is None
                else max_float_layers,
                edgetpu=edgetpu,
                edgetpu_strict=edgetpu_strict,
            )
            if written is not None and not edgetpu:
                _next_steps(model, written, options.quant)
            return
        with phases("load") as steps:
            outcome = convert_model(
                model, out, options, calib, progress=steps.progress, phase=steps.phase
            )
    for message in outcome.warnings:
        warn(message)
    print_report(outcome)
    with user_errors():
        convert_quality.after_convert(outcome, calib, options)
    console.print(f"wrote {outcome.export.path} and {outcome.report_path}")
    if edgetpu:
        edgetpu_step(outcome.export.path, outcome.report_path, strict=edgetpu_strict)
    else:
        _next_steps(model, outcome.export.path, options.quant)


def _next_steps(model: Path, tflite: Path, quant: Quant) -> None:
    """The gate, then the camera: `check` of an int8 model against the .keras it came from, on
    the data config.json says it was trained on (when that folder is still there)."""
    commands = []
    if quant == Quant.INT8:
        data = training_data(model)
        commands.append(["edgeseg", "check", str(model), str(tflite), "--data", data or "DATA"])
    commands.append(["edgeseg", "run", str(tflite), "--camera", "0"])
    next_steps(*commands)


def _ops_counted(ops: str, count: int) -> str:
    """'TRANSPOSE_CONV x3' for one op type; '33 ops (ADD, CONV_2D, ...)' for a row that merges
    several ('..., TRANSPOSE_CONV x33' read as 33 TRANSPOSE_CONVs)."""
    return f"{count} ops ({ops})" if ", " in ops else f"{ops} x{count}"


def print_report(outcome: ConvertOutcome) -> None:
    """A short table of what was produced."""
    r = outcome.report
    table = Table(title=f"{outcome.export.path.name} ({r.quant})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    ratio = f" ({r.size_ratio:.2f}x float32)" if r.size_ratio is not None else ""
    table.add_row("size", f"{r.size_bytes / 1024:.0f} KiB{ratio}")
    for label, tensors in (("input", outcome.info.inputs), ("output", outcome.info.outputs)):
        from edgeseg.runtime.inspect import describe_tensor

        table.add_row(label, ", ".join(describe_tensor(t) for t in tensors))
    table.add_row("ops", ", ".join(f"{k} {v}" for k, v in r.op_histogram.items()))
    table.add_row("ops not int8", ", ".join(r.non_int8_ops) or "none")
    if r.calibration:
        c = r.calibration
        table.add_row(
            "calibration",
            f"{c['used']} images, input range {c['input_range'][0]}..{c['input_range'][1]}"
            + (f", {c['skipped']} skipped" if c["skipped"] else ""),
        )
    if r.edgetpu_precheck:
        lines = [
            f"{_ops_counted(i['op'], i['count'])}: {i['reason']}"
            + (f" -> {i['hint']}" if i["hint"] else "")
            for i in r.edgetpu_precheck
        ]
        table.add_row("Edge TPU pre-check", "\n".join(lines))
    else:
        table.add_row("Edge TPU pre-check", "no known blockers")
    console.print(table)
