"""`edgeseg demo`: train -> convert -> check -> run on the built-in synthetic data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeseg.cli.common import call, console, fast_tensorflow_cpu, quiet_tensorflow, user_errors
from edgeseg.core.errors import require_training_stack


def _kib(n: int) -> str:
    return f"{n / 1024:.0f} KiB"  # as `edgeseg convert` and `edgeseg info` print sizes


def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for everything the demo writes.")
    ] = Path("demo_out"),
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Smaller data, images and epochs: about a minute or two."),
    ] = False,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed for data, training and video.")
    ] = 0,
) -> None:
    """Run the whole chain on built-in synthetic data; no camera, dataset or network needed.

    Generates a synthetic road-scene dataset, trains a small U-Net (ending with the
    quantisation-aware model.keras, as edgeseg train does), converts it to int8 TFLite from its
    own ranges and the float network to a float32 reference, checks the int8 accuracy drop against
    model.keras, writes a video of held-out frames and streams it through the int8 model headless,
    then prints a summary and the paths of every file written.

    Example:
      edgeseg demo --quick --out demo_out
    """
    from edgeseg.core.metrics import points

    quiet_tensorflow()
    fast_tensorflow_cpu()
    call(require_training_stack, "edgeseg demo")
    from edgeseg.demo import DEMO_MAX_DROP, DemoSettings, run_demo

    settings = DemoSettings(out=out, quick=quick, seed=seed)
    with user_errors(), console.status("starting") as status:

        def step(message: str) -> None:
            # a timestamped line, no source location, no padding to the terminal width
            console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)
            status.update(message)

        summary = run_demo(settings, step)

    table = Table(title="edgeseg demo summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    drop_style = "green" if summary.check_passed else "red"
    # percent, as `edgeseg check` reports them; model.keras is the quantisation-aware model
    table.add_row("mIoU model.keras (%)", f"{100 * summary.model_miou:.2f}")
    table.add_row("mIoU int8 TFLite (%)", f"{100 * summary.int8_miou:.2f}")
    verdict = "PASS" if summary.check_passed else "FAIL"
    table.add_row(
        "drop",
        f"[{drop_style}]{points(summary.drop_points):.2f} points: {verdict} "
        f"(limit {DEMO_MAX_DROP:g})[/]",
    )
    table.add_row(
        "model size float32 / int8",
        f"{_kib(summary.float32_size_bytes)} / {_kib(summary.int8_size_bytes)} "
        f"({summary.int8_size_bytes / summary.float32_size_bytes:.2f}x)",
    )
    table.add_row(
        "invoke p50 float32 / int8",
        f"{summary.invoke_ms_float32:.2f} ms / {summary.invoke_ms_int8:.2f} ms",
    )
    table.add_row(
        "stream FPS (int8, headless)",
        f"{summary.stream_fps:.1f} ({summary.frames_processed} frames)",
    )
    table.add_row("total time", f"{summary.seconds:.0f} s")
    console.print(table)
    files = Table(title="files written", show_header=False)
    files.add_column("what", style="bold")
    files.add_column("path")
    for name, path in summary.files.items():
        files.add_row(name, path)
    console.print(files)
    if not summary.check_passed:
        console.print(
            f"[red]the int8 model lost more than the demo's {DEMO_MAX_DROP:g}-point limit[/]"
        )
        raise typer.Exit(1)
