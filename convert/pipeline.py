"""`edgeseg convert` as one library call: load the Keras model and its spec, calibrate, export,
measure against float32, validate, write the report; optionally compile for the Edge TPU."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgeseg.convert.calibration import CalibrationSet, Progress, representative_dataset
from edgeseg.convert.converter import (
    ExportResult,
    check_model_out,
    check_qat_options,
    export,
    float32_size,
    report_path_for,
    serving_model,
    source_record,
    write_saved_model,
)
from edgeseg.convert.edgetpu import EdgeTpuResult, compile_edgetpu
from edgeseg.convert.options import ConvertOptions, Quant
from edgeseg.convert.validate import (
    ConversionReport,
    record_edgetpu,
    validate,
    write_report,
)
from edgeseg.core.errors import ConversionError
from edgeseg.core.fileio import atomic_path, scratch_dir
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.inspect import ModelInfo


@dataclass
class ConvertOutcome:
    """What one conversion produced."""

    export: ExportResult
    report: ConversionReport
    info: ModelInfo
    report_path: Path
    spec: ModelSpec
    warnings: list[str] = field(default_factory=list)


def default_out(model_path: str | Path, quant: Quant | str = Quant.INT8) -> Path:
    """`runs/x/model.keras` -> `runs/x/model_int8.tflite`."""
    p = Path(model_path)
    return p.with_name(f"{p.stem}_{Quant(quant).value}.tflite")


def convert_model(
    model_path: str | Path,
    out: str | Path | None = None,
    options: ConvertOptions | None = None,
    calib: str | Path | None = None,
    progress: Progress | None = None,
    measure_float32: bool = True,
    phase: Callable[[str], None] | None = None,
) -> ConvertOutcome:
    """Convert a trained `.keras` model to `out` and write `<out stem>.report.json` beside it.

    `phase(name)` announces each step: "load", "export", "calibrate" (then `progress(done,
    total)`), "convert" and "validate", so a caller can show where the time goes.
    """
    from edgeseg.train.model_io import load_keras_model
    from edgeseg.train.qat import is_quantized

    step = phase or (lambda name: None)
    step("load")

    options = options or ConvertOptions()
    out = Path(out) if out is not None else default_out(model_path, options.quant)
    check_model_out(out, name=default_out(model_path, options.quant).name)
    # taken before loading (a training run may rewrite it meanwhile); loading says what is
    # wrong with a path that is no file
    extra = source_record(model_path) if Path(model_path).is_file() else {}
    model, spec = load_keras_model(model_path)  # float_miou: training's best validation score
    qat = is_quantized(model)  # quantisation-aware: its int8 ranges are in the model
    if qat:
        check_qat_options(options)
    elif options.needs_calibration and calib is None:
        raise ConversionError(
            f"{model_path}: {options.quant} conversion of a float model needs calibration "
            "images: pass --calib DIR (calib= in Python), a folder of frames or a dataset"
        )
    model, spec = serving_model(model, spec, options)  # the softmax head left out by default
    rep: CalibrationSet | None = None
    if options.needs_calibration and not qat:
        assert calib is not None
        rep = representative_dataset(calib, spec, options.calib_count, options.seed, progress)
    start = time.perf_counter()
    # The .tflite is built under a temp name and published LAST, after its report: an interrupted
    # convert (Ctrl-C, full disk) never leaves a complete .tflite at `out` without its report.
    with (
        atomic_path(out, label="--out", mkdir=True) as staged,
        scratch_dir("edgeseg-convert-") as tmp,
    ):
        step("export")
        saved = write_saved_model(model, spec, tmp / "saved")
        step("calibrate" if rep is not None else "convert")
        result = export(saved, spec, options, staged, rep, extra=extra, qat=qat)
        result = replace(result, path=out)
        seconds = time.perf_counter() - start
        step("validate")
        f32 = float32_size(saved, spec) if measure_float32 else None
        report, info = validate(
            staged,
            options,
            calibration=rep.stats if rep else None,
            float32_size_bytes=f32,
            convert_seconds=seconds,
        )
        report.model, info = str(out), replace(info, path=str(out))
        if source_record(model_path) != extra:  # the model, its config and the hash disagree
            raise ConversionError(
                f"{model_path}: changed while it was being converted (a training run is "
                "writing it); convert again once that run has finished"
            )
        step("write")  # a caller's last chance to stop before anything is published
        # an earlier model at `out` goes first: stopped between the two, a new report never
        # sits beside an old model (at worst a report without a model)
        out.unlink(missing_ok=True)
        report_path = write_report(report, report_path_for(out))
    warnings = (rep.stats.warnings if rep else []) + report.warnings
    return ConvertOutcome(result, report, info, report_path, spec, warnings)


def compile_and_record(model_path: str | Path, report_path: str | Path) -> EdgeTpuResult:
    """Run edgetpu_compiler on a converted int8 model and record the result in its report.

    The one Edge TPU step: a plain conversion and an accuracy-aware one (--max-drop) both end here.
    """
    result = compile_edgetpu(model_path)
    record_edgetpu(report_path, result)
    return result
