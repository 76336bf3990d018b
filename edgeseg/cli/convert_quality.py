"""The accuracy levers of `edgeseg convert` (issue 6): --diagnose, --max-drop / --data /
--max-float-layers, calibration class coverage and the int16x8 smoke test. convert_cmd parses the
options and hands over here; the work is in edgeseg.convert.{diagnose,repair,calib_coverage}.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from edgeseg.cli.common import console, fail, warn
from edgeseg.convert.options import ConvertOptions, Quant
from edgeseg.core.fileio import make_dir
from edgeseg.core.metrics import points
from edgeseg.train import CONFIG_NAME

if TYPE_CHECKING:
    from edgeseg.convert.pipeline import ConvertOutcome
    from edgeseg.convert.repair import RepairResult
    from edgeseg.core.spec import ModelSpec


def check_flags(
    options: ConvertOptions,
    *,
    diagnose: bool,
    max_drop: float | None,
    data: Path | None,
    max_float_layers: int | None = None,
) -> None:
    """Reject option combinations that cannot work, before any slow step (or any line about
    the calibration frames)."""
    if max_float_layers is not None and max_drop is None:
        raise fail("--max-float-layers is only used with --max-drop (and --data)")
    if max_drop is not None and data is None:
        raise fail(
            "--max-drop needs --data DIR (labelled images to measure the drop on, e.g. DATA/val)"
        )
    if data is not None and max_drop is None:
        raise fail("--data is only used with --max-drop; to score a model use `edgeseg eval`")
    if (diagnose or max_drop is not None) and options.quant != Quant.INT8:
        flag = "--diagnose" if diagnose else "--max-drop"
        raise fail(f"{flag} works on int8 conversion, not --quant {options.quant}")


def spec_beside(model: Path) -> ModelSpec | None:
    """The spec from config.json beside a .keras model, without loading the model (or None)."""
    from edgeseg.core.spec import ModelSpec

    config = model.with_name(CONFIG_NAME)
    return ModelSpec.load(config) if config.is_file() else None


def print_coverage(calib: Path | None, spec: ModelSpec | None, options: ConvertOptions) -> None:
    """Per-class pixel share of the calibration frames' masks; warns about absent classes."""
    from edgeseg.convert.calib_coverage import class_coverage

    if calib is None or spec is None or not options.needs_calibration:
        return
    cov = class_coverage(calib, spec, count=options.calib_count, seed=options.seed)
    if cov is None:
        return
    if cov.other_names:  # another data set's masks: nothing to count, one warning
        for line in cov.warnings():
            warn(f"--calib {calib}: {line}")
        return
    shares = ", ".join(
        f"{n} {100 * f:.1f}%" for n, f in zip(cov.class_names, cov.fractions, strict=True)
    )
    console.print(f"calibration class coverage ({cov.frames} masks): {shares}", highlight=False)
    for line in cov.warnings():
        warn(line)


def after_convert(outcome: ConvertOutcome, calib: Path | None, options: ConvertOptions) -> None:
    """Extra lines after a plain conversion: coverage, and for int16x8 that it runs and how fast."""
    from edgeseg.runtime.bench import invoke_latency_ms

    print_coverage(calib, outcome.spec, options)
    if options.quant == Quant.INT16X8:
        ms = invoke_latency_ms(outcome.export.path)
        console.print(
            f"int16x8: runs on this machine's LiteRT, {ms:.2f} ms per invoke (1 thread, median); "
            f"{outcome.report.size_bytes / 1024:.0f} KiB. 16-bit kernels are mostly reference "
            "code (no XNNPACK): expect it many times slower than int8; not for the Edge TPU.",
            highlight=False,
        )


def run(
    model: Path,
    calib: Path,
    out: Path | None,
    options: ConvertOptions,
    *,
    diagnose: bool,
    max_drop: float | None,
    data: Path | None,
    max_float_layers: int,
    edgetpu: bool,
    edgetpu_strict: bool = False,
) -> Path | None:
    """--diagnose alone: write the per-layer report, no model. With --max-drop: the repair loop;
    returns the model it wrote (None for --diagnose alone)."""
    from edgeseg.convert.converter import check_beside
    from edgeseg.convert.diagnose import CSV_NAME, PNG_NAME
    from edgeseg.convert.pipeline import default_out

    out = out or default_out(model, options.quant)
    # --diagnose alone writes no model: an --out that is a folder is where its report goes
    report_dir = out if max_drop is None and out.is_dir() else out.parent
    if max_drop is None:  # the repair checks its own outputs, these among them
        check_beside(out, [report_dir / CSV_NAME, report_dir / PNG_NAME])
    print_coverage(calib, spec_beside(model), options)
    if max_drop is None:
        _diagnose_only(model, calib, report_dir, options)
        return None
    from edgeseg.convert.repair import repair

    assert data is not None
    with console.status("accuracy-aware conversion (float eval, int8, float fallbacks)..."):
        result = repair(
            model,
            calib,
            data,
            out,
            options=options,
            max_drop=max_drop,
            max_float_layers=max_float_layers,
            edgetpu=edgetpu,
            report_dir=out.parent,
            log=lambda msg: console.print(f"  {msg}", highlight=False),
        )
    for message in result.warnings:  # as a plain conversion says them
        warn(message)
    if diagnose and result.diagnosis is None:
        _diagnose_only(model, calib, out.parent, options)
    elif result.diagnosis is not None:
        _print_diagnosis(result.diagnosis)
    print_repair(result)
    if not result.passed:
        raise fail(result.message(), 1)
    if not edgetpu:
        return result.path
    if result.chosen.float_layers:  # not compiled: the note above says why
        if edgetpu_strict:
            raise fail(
                "float layers kept: they run on the CPU, not the Edge TPU (--edgetpu-strict)", 1
            )
        return result.path
    from edgeseg.cli.convert_edgetpu import edgetpu_step

    assert result.report_path is not None
    edgetpu_step(result.path, result.report_path, strict=edgetpu_strict)
    return result.path


def _diagnose_only(model: Path, calib: Path, out_dir: Path, options: ConvertOptions) -> None:
    from edgeseg.convert.diagnose import diagnose
    from edgeseg.train.model_io import load_keras_model

    keras_model, spec = load_keras_model(model)
    make_dir(out_dir)
    with console.status("running the quantisation debugger on the calibration frames..."):
        result = diagnose(
            keras_model,
            spec,
            calib,
            out_dir,
            options=options,
            count=options.calib_count,
            seed=options.seed,
        )
    for line in result.warnings:
        warn(line)
    _print_diagnosis(result)


def _print_diagnosis(result: object) -> None:
    from edgeseg.convert.diagnose import DiagnoseResult, diagnose_table

    assert isinstance(result, DiagnoseResult)
    console.print(diagnose_table(result))
    console.print(
        "error % = RMS int8 error as a share of each channel's float spread (ranking key); "
        "rmse/scale ~0.29 is pure rounding",
        highlight=False,
    )
    if result.csv_path is not None:
        console.print(f"wrote {result.csv_path} and {result.png_path}", highlight=False)


def print_repair(result: RepairResult) -> None:
    """Every model tried, then what was kept and what it cost against full int8."""
    table = Table(title=f"accuracy-aware int8 (float mIoU {result.float_miou:.4f})")
    for col in ("float layers", "mIoU", "drop (pts)", "size KiB", "ms/invoke"):
        table.add_column(col, justify="left" if col == "float layers" else "right")
    for a in result.attempts:
        table.add_row(
            ", ".join(a.labels) or "none (full int8)",
            f"{a.miou:.4f}",
            f"{points(a.drop):.2f}",
            f"{a.size_bytes / 1024:.1f}",
            f"{a.latency_ms:.2f}",
        )
    console.print(table)
    chosen = result.chosen
    if chosen.float_layers:
        console.print(
            f"kept in float: {', '.join(chosen.labels)}; vs full int8: size "
            f"{result.size_cost_pct:+.1f}%, latency {result.latency_cost_pct:+.1f}% (1 thread)",
            highlight=False,
        )
    for note in result.notes:
        warn(note)
    if result.passed:
        console.print(result.message(), highlight=False)
    console.print(f"wrote {result.path} and {result.report_path}", highlight=False)
