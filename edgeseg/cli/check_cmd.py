"""`edgeseg check`: the CI accuracy gate (exit 0 pass, 1 over a limit, 2 bad input, 4 write)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown

from edgeseg.cli.common import (
    call,
    console,
    err_console,
    fail,
    progress_bar,
    quiet_tensorflow,
    route_logs,
    user_errors,
)
from edgeseg.cli.options import ImageLimit, ScoreThreads, parse_threads
from edgeseg.core.errors import EdgesegError, first_line, require_training_stack


def check_command(
    models: Annotated[
        list[Path],
        typer.Argument(
            metavar="[FLOAT_MODEL] INT8_MODEL",
            help="The float model, then the int8 one. Without the float model the baseline is "
            "the float mIoU recorded in the int8 model's metadata at convert time.",
            show_default=False,
        ),
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="DATA (its val/ split, or VOC val list, is used) or DATA/val (images/ + masks/).",
        ),
    ],
    max_drop: Annotated[
        float,
        typer.Option("--max-drop", min=0.0, help="Largest allowed mIoU drop, in points (x100)."),
    ] = 1.0,
    max_class_drop: Annotated[
        float | None,
        typer.Option(
            "--max-class-drop",
            min=0.0,
            help="Largest allowed IoU drop of any one class, in points.",
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where check.json, check.md and disagreement.png go.")
    ] = Path("check-report"),
    limit: ImageLimit = None,
    threads: ScoreThreads = "auto",
) -> None:
    """Check the accuracy an int8 model lost against its float model; exit 1 when over a limit.

    Exit codes: 0 within limits, 1 a limit was exceeded (only that), 2 bad input, 4 cannot write
    the report (CI tells a regression from a broken setup). Appends check.md to
    $GITHUB_STEP_SUMMARY when set.

    Example:
      edgeseg check runs/m/model.keras runs/m/model_int8.tflite --data data/m/val
    """
    from edgeseg.core.metrics import points

    if len(models) not in (1, 2):
        raise fail(f"expected [FLOAT_MODEL] INT8_MODEL, got {len(models)} model paths")
    float_model, int8_model = (None, models[0]) if len(models) == 1 else (models[0], models[1])
    quiet_tensorflow()
    for name in ("edgeseg.train", "edgeseg.eval"):  # loading a .keras; scoring
        route_logs(name, logging.WARNING)  # the library's warnings as 'warning:' lines
    if any(m.suffix.lower() == ".keras" for m in models):
        call(require_training_stack, "edgeseg check of a .keras model")
    from edgeseg.eval.compare import clear_reports, compare
    from edgeseg.eval.report import append_step_summary, check_step_summary

    with user_errors():
        if out_dir.is_dir():
            clear_reports(out_dir)  # whatever stops this check, no earlier verdict remains
        check_step_summary()
    with user_errors(), progress_bar(f"check {int8_model.name}") as progress:
        result = compare(
            float_model,
            int8_model,
            data,
            max_drop,
            max_class_drop,
            out_dir=out_dir,
            progress=progress,
            limit=limit,
            threads=parse_threads(threads),
        )
    markdown = result.to_markdown()
    console.print(Markdown(markdown), soft_wrap=False)  # wrapped: notes are long lines
    if not result.passed:  # the verdict shows even if the step summary cannot be written
        for msg in result.failures:
            err_console.print(f"[bold red]FAIL:[/] {msg}", highlight=False, soft_wrap=True)
    try:
        summary = append_step_summary(markdown)
    except EdgesegError as exc:
        if result.passed:  # a write failure: exit 4
            with user_errors():
                raise
        # a regression stays exit 1, what CI acts on; the failed summary is said beside it
        err_console.print(f"[bold red]error:[/] {first_line(exc)}", highlight=False)
        summary = None
    written = ", ".join(str(p) for p in result.outputs.values())
    console.print(f"wrote {written}" + (f"; appended to {summary}" if summary else ""))
    if not result.passed:
        raise typer.Exit(1)
    console.print(
        f"[bold green]PASS[/] mIoU drop {points(result.miou_drop):.2f} points <= {max_drop:g}"
    )
