"""What a conversion reads, decided once for `edgeseg convert` and `edgeseg.convert()` alike:
which `.keras` (a quantisation-aware run's float network for other formats and for post-training
diagnosis), whether it brings its own int8 ranges, and which frames calibrate it when none are
given. The decisions come back as notes for the caller to show (the CLI prints them, the Python
API logs them), so both say the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from edgeseg.convert.options import ConvertOptions, Quant
from edgeseg.convert.target import model_is_qat
from edgeseg.core.errors import ConversionError, EdgesegError, path_argument
from edgeseg.train import FLOAT_MODEL
from edgeseg.train.keras_file import check_keras_file

NO_CALIB = (
    "no calibration images: pass --calib DIR (100-300 frames from your camera, or a dataset "
    "folder). Without it convert looks for calib_data/ in the working folder, then the data "
    "the model was trained on (config.json beside it), then a source checkout's calib_data/ "
    "(synthetic frames, not installed with the package: they suit only models trained on the "
    "synthetic data)"
)
SYNTHETIC_CALIB = (
    "the source checkout's synthetic frames, which suit only a model trained on the synthetic "
    "data: pass --calib DIR with frames like the model's"
)


class CalibChoice(NamedTuple):
    """The folder a conversion calibrates on without --calib, why, and whether it is only the
    checkout's synthetic frames (then a warning: they suit no real model)."""

    path: Path
    why: str
    synthetic: bool = False


def default_calib(model: Path | None = None, checkout: Path | None = None) -> CalibChoice | None:
    """Where a conversion calibrates without --calib, and why: `calib_data/` in the working
    folder (frames the user put there), else the folder the model was trained on (config.json
    beside it: the kind of frames the model is for), else CHECKOUT's synthetic frames (the CLI
    passes its source checkout; an installed package has none on purpose: synthetic frames
    would silently give a real model the wrong int8 ranges)."""
    here = Path.cwd() / "calib_data"
    if here.is_dir():
        return CalibChoice(here, "calib_data/ in the working folder")
    trained_on = training_data(model) if model is not None else None
    if trained_on is not None:
        return CalibChoice(
            Path(trained_on), "the data the model was trained on, as config.json records"
        )
    if checkout is not None and (checkout / "pyproject.toml").is_file():
        if (checkout / "calib_data").is_dir():
            return CalibChoice(checkout / "calib_data", SYNTHETIC_CALIB, synthetic=True)
    return None


def training_data(model: Path) -> str | None:
    """The training data folder config.json beside a .keras model records, if it is a folder
    from here (None for a model without one, or a run folder with no training settings)."""
    data = _recorded_data(model)
    return data if data is not None and Path(data).is_dir() else None


def _recorded_data(model: Path) -> str | None:
    """The training data folder config.json beside MODEL records, there or not."""
    from edgeseg.train.config import load_train_config

    try:
        data = load_train_config(model.parent).data
    except (EdgesegError, OSError, ValueError):
        return None
    return None if data is None else str(data)


def _gone(model: Path) -> str:
    """' (the data config.json records, X, is gone)' when so: why the training data was not
    the calibration frames chosen."""
    data = _recorded_data(model)
    if data is None or Path(data).is_dir():
        return ""
    return f" (the data {model.parent / 'config.json'} records, {data}, is gone)"


@dataclass(frozen=True)
class SourceChoice:
    """What to convert: the .keras read, whether its int8 ranges are its own (no calibration),
    the calibration folder (None: not needed), the output path when the choice names it, and
    what to tell the user (`notes`) or warn about (`warnings`)."""

    model: Path
    qat: bool
    calib: Path | None
    out: Path | None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def choose_source(
    model: str | Path,
    options: ConvertOptions,
    calib: str | Path | None,
    out: str | Path | None,
    *,
    post_training: bool = False,
    checkout: Path | None = None,
    writes_model: bool = True,
) -> SourceChoice:
    """Decide what a conversion of MODEL reads. A quantisation-aware model converts to int8 from
    its own ranges (CALIB not used); other formats, and `post_training` work (--diagnose,
    --max-drop), read the float network saved beside it (`model_float.keras`), named as asked
    (model_float32.tflite). A float model needing calibration without CALIB uses
    `default_calib` (CHECKOUT: see there); ConversionError when there is none. OUT, when it is
    a model to write (not WRITES_MODEL: --diagnose alone, which writes only its report), is
    checked here, before anything is said about the frames."""
    from edgeseg.convert.pipeline import default_out

    path = path_argument(model, "model", "the path of a .keras model")
    check_keras_file(path)  # before any word about calibration frames for it
    out_path = path_argument(out, "--out", "the .tflite to write") if out is not None else None
    notes: list[str] = []
    warnings: list[str] = []
    naming = path  # the model the default --out is named after
    qat = model_is_qat(path)
    float_model = path.with_name(FLOAT_MODEL)
    if qat and post_training:
        if not float_model.is_file():
            raise ConversionError(
                f"{path}: quantisation-aware, and no {FLOAT_MODEL} beside it: --diagnose "
                "and --max-drop apply to post-training quantisation of a float model"
            )
        notes.append(
            "quantisation-aware model: --diagnose / --max-drop work on the post-training "
            f"quantisation of {float_model}"
        )
        path, qat = float_model, False
        naming = path  # model_float_int8.tflite, beside the quantisation-aware model's own
    if qat and options.quant != Quant.INT8 and float_model.is_file():
        # other formats come from the float network; named after the model asked for
        # (model_float32.tflite), as a float model's would be
        out_path = out_path if out_path is not None else default_out(path, options.quant)
        notes.append(
            f"quantisation-aware model: --quant {options.quant} converts the float network "
            f"beside it, {float_model}"
        )
        path, qat = float_model, False
    if out_path is not None and writes_model:  # before anything about the frames: --out DIR
        from edgeseg.convert.converter import check_model_out

        # a folder is offered the file convert would write without --out
        check_model_out(out_path, name=default_out(naming, options.quant).name)
    calib_path = (
        path_argument(calib, "--calib", "a folder of frames") if calib is not None else None
    )
    if qat:
        notes.append(
            "quantisation-aware model: int8 ranges from the model itself"
            + (" (--calib not used)" if calib_path is not None else "")
        )
        calib_path = None
    elif calib_path is not None and not options.needs_calibration:
        notes.append(f"--quant {options.quant} does not calibrate: --calib not used")
        calib_path = None
    elif options.needs_calibration and calib_path is None:
        found = default_calib(path, checkout)
        if found is None:
            raise ConversionError(NO_CALIB + _gone(path))
        calib_path = found.path
        if found.synthetic:
            warnings.append(f"calibration frames: {calib_path}, {found.why}{_gone(path)}")
        else:
            notes.append(f"calibration frames: {calib_path} ({found.why}; --calib DIR chooses)")
    return SourceChoice(path, qat, calib_path, out_path, tuple(notes), tuple(warnings))
