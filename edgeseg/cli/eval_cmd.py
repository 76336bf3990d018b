"""`edgeseg eval`: score one model on labelled images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from edgeseg.cli.common import (
    call,
    console,
    progress_bar,
    quiet_tensorflow,
    route_logs,
    user_errors,
    warn,
    warn_if_stale,
)
from edgeseg.cli.options import ImageLimit, ScoreThreads, parse_threads
from edgeseg.core.errors import require_training_stack


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def eval_command(
    model: Annotated[
        Path, typer.Argument(help="Model to score: a .keras (float) or .tflite file.")
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="DATA (its val/ split, or VOC val list, is used) or DATA/val (images/ + masks/).",
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the scores as JSON here.")
    ] = None,
    save_overlays: Annotated[
        Path | None,
        typer.Option(
            "--save-overlays",
            help="Write one picture per image here: input | ground truth | prediction, the "
            "legend beside them and the image's own mIoU in the caption.",
        ),
    ] = None,
    limit: ImageLimit = None,
    threads: ScoreThreads = "auto",
) -> None:
    """Score a model on labelled images: mIoU, per-class IoU, pixel accuracy, fw-IoU, latency.

    On the folder the model was trained on, only the pairs training held out are scored (the
    model records its split). --out writes the scores and the confusion matrix as JSON;
    --save-overlays one picture per image with its own mIoU.

    Example:
      edgeseg eval runs/m/model_int8.tflite --data data/m --save-overlays ov/
    """
    quiet_tensorflow()
    for name in ("edgeseg.train", "edgeseg.eval"):  # loading a .keras; scoring
        route_logs(name, logging.WARNING)  # the library's warnings as 'warning:' lines
    if model.suffix.lower() == ".keras":
        call(require_training_stack, "edgeseg eval of a .keras model")
    from edgeseg.core.fileio import check_json_output
    from edgeseg.eval.evaluate import evaluate

    if out is not None:
        with user_errors():
            check_json_output(out, label="--out")  # now, not after scoring every image
    warn_if_stale(model)
    with user_errors(), progress_bar(f"eval {model.name}") as progress:
        result = evaluate(
            model,
            data,
            save_overlays=save_overlays,
            progress=progress,
            limit=limit,
            threads=parse_threads(threads),
        )
        if out is not None:
            result.write_json(out, label="--out")
    for w in result.warnings:
        warn(w)
    for note in result.notes:
        console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    d = result.to_dict()
    console.print(f"{model.name} on {result.images} images from {data}")
    table = Table()
    table.add_column("metric")
    table.add_column("value (%)", justify="right")
    table.add_row("[bold]mIoU", f"[bold]{_fmt(d['miou'])}")
    table.add_row("pixel accuracy", _fmt(d["pixel_accuracy"]))
    table.add_row("fw-IoU", _fmt(d["fw_iou"]))
    for name, v in d["per_class_iou"].items():
        table.add_row(f"IoU {escape(name)}", _fmt(v))
    console.print(table)
    console.print(f"mean latency {result.mean_latency_ms:.1f} ms/image")
    if out is not None:
        console.print(f"wrote {out}")
    if save_overlays is not None:
        console.print(f"wrote {result.images} overlays to {save_overlays}")
