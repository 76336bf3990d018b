"""Keras -> TFLite: a fixed batch-1 SavedModel (so no SHAPE/PACK/STRIDED_SLICE ops appear around
Conv2DTranspose), the TFLite converter configured per `ConvertOptions`, metadata embedded, and an
atomic write so an interrupted conversion never leaves a partial `.tflite`.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeseg import __version__
from edgeseg.convert.calibration import CalibrationSet
from edgeseg.convert.options import ConvertOptions, Quant
from edgeseg.core.errors import ConversionError, WriteError, first_line
from edgeseg.core.fileio import check_output, file_sha256, not_a_file, write_bytes
from edgeseg.core.model_metadata import embed_metadata
from edgeseg.core.spec import ModelSpec
from edgeseg.train import FLOAT_MODEL

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


def serving_model(
    model: keras.Model, spec: ModelSpec, options: ConvertOptions
) -> tuple[keras.Model, ModelSpec]:
    """The model as it ships: without its per-pixel softmax, unless `options.keep_softmax`.

    Argmax of the logits is the class map argmax of the probabilities gives (softmax is
    monotonic), so the .tflite skips an op that runs single-threaded outside XNNPACK on CPUs and
    on the CPU behind an Edge TPU (which maps only 1-D softmax). The head is found as a final
    Softmax / Activation("softmax") layer or a final Conv2D with a softmax activation; any other
    model is returned unchanged. The spec says "logits" when the head was left out.
    """
    import keras

    if options.keep_softmax or spec.output_kind != "softmax":
        return model, spec
    last = model.layers[-1]
    logits: Any = None
    if isinstance(last, keras.layers.Softmax) or (
        isinstance(last, keras.layers.Activation) and _is_softmax(last.activation)
    ):
        logits = last.input
    elif isinstance(last, keras.layers.Conv2D) and _is_softmax(last.activation):
        config = {**last.get_config(), "activation": "linear", "name": f"{last.name}_logits"}
        head = type(last).from_config(config)
        logits = head(last.input)
        head.set_weights(last.get_weights())
    if logits is None or isinstance(logits, (list, tuple)):
        return model, spec
    return keras.Model(model.inputs, logits, name=model.name), spec.with_updates(
        output_kind="logits"
    )


def _is_softmax(activation: Any) -> bool:
    return getattr(activation, "__name__", "") == "softmax"


def write_saved_model(model: keras.Model, spec: ModelSpec, directory: str | Path) -> Path:
    """Export `model` as a SavedModel with one fixed (1, H, W, C) float32 'serve' signature."""
    import keras
    import tensorflow as tf

    shape = [1, spec.input_height, spec.input_width, spec.channels]
    if list(model.input_shape[1:]) != shape[1:]:
        raise ConversionError(
            f"model input {tuple(model.input_shape[1:])} does not match its spec {tuple(shape[1:])}"
        )
    from edgeseg.train.qat import exporting

    arch = keras.export.ExportArchive()
    arch.track(model)
    with exporting():  # quantisation-aware layers as the ops the converter quantises
        arch.add_endpoint(
            "serve",
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec(shape, tf.float32, name="image")],
        )
        arch.write_out(str(directory), verbose=False)
    return Path(directory)


def prepare_converter(
    model: keras.Model | str | Path,
    spec: ModelSpec,
    options: ConvertOptions,
    rep_dataset: CalibrationSet | None = None,
    *,
    qat: bool = False,
) -> tf.lite.TFLiteConverter:
    """A TFLiteConverter set up for `options` (model may be a Keras model or a SavedModel dir).

    int8: full integer, per-channel weights, TFLITE_BUILTINS_INT8 only, input per `options.io`.
    With `options.float_layers` it is set to calibrate only; `run_converter` then quantises with
    those nodes kept in float. `qat`: a quantisation-aware model (edgeseg.train.qat), quantised
    from its own fake-quant ranges, no calibration. The temporary SavedModel lives as long as
    the converter.
    """
    import tensorflow as tf

    if isinstance(model, (str, Path)):  # a SavedModel: the caller applied serving_model
        saved = Path(model)
        tmp = None
    else:
        model, spec = serving_model(model, spec, options)
        tmp = tempfile.TemporaryDirectory(prefix="edgeseg-savedmodel-")
        saved = write_saved_model(model, spec, Path(tmp.name) / "saved")
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if tmp is not None:
        conv._edgeseg_tmp = tmp  # keep the SavedModel until the converter is gone
        weakref.finalize(conv, tmp.cleanup)
    if qat:
        check_qat_options(options)
        # The fake-quant ops make this quantisation-aware conversion. Restricting supported_ops to
        # TFLITE_BUILTINS_INT8 here would make the converter demand a representative dataset;
        # validate() reports any op left in float.
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.inference_input_type = _tf_dtype(options.input_type)
        conv.inference_output_type = _tf_dtype(options.output_type)
        return conv
    if options.quant == Quant.FLOAT32:
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if options.quant == Quant.FLOAT16:
        conv.target_spec.supported_types = [tf.float16]
    elif options.quant == Quant.INT8:
        if rep_dataset is None or len(rep_dataset) == 0:
            raise ConversionError("int8 conversion needs calibration images (--calib DIR)")
        conv.representative_dataset = rep_dataset
        if options.float_layers:
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
            conv._experimental_calibrate_only = True
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = _tf_dtype(options.input_type)
            conv.inference_output_type = _tf_dtype(options.output_type)
    elif options.quant == Quant.INT16X8:
        if rep_dataset is None or len(rep_dataset) == 0:
            raise ConversionError("int16x8 conversion needs calibration images (--calib DIR)")
        conv.representative_dataset = rep_dataset
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        conv.inference_input_type = _tf_dtype(options.input_type)
        conv.inference_output_type = _tf_dtype(options.output_type)
    return conv


def check_qat_options(options: ConvertOptions) -> None:
    """A quantisation-aware model converts to plain int8 only: its ranges are trained in."""
    from edgeseg.train import FLOAT_MODEL

    if options.quant != Quant.INT8:
        raise ConversionError(
            f"a quantisation-aware model converts to int8 only (got --quant {options.quant}); "
            f"convert {FLOAT_MODEL} from the same run for other formats"
        )
    if options.float_layers:
        raise ConversionError(
            "float layers do not apply to a quantisation-aware model (its int8 ranges are "
            f"trained in); convert {FLOAT_MODEL} from the same run to keep layers in float"
        )


def _tf_dtype(name: str) -> Any:
    import tensorflow as tf

    return {"uint8": tf.uint8, "int8": tf.int8, "int16": tf.int16, "float32": tf.float32}[name]


def run_converter(conv: tf.lite.TFLiteConverter, options: ConvertOptions) -> bytes:
    """Run the converter; with float_layers, quantise the calibrated model keeping those float."""
    with _conversion_errors(options):
        model = bytes(conv.convert())
    if options.quant == Quant.INT8 and options.float_layers:
        model = quantize_calibrated(model, options)
    return model


@contextlib.contextmanager
def _conversion_errors(options: ConvertOptions) -> Iterator[None]:
    try:
        yield
    except ConversionError:
        raise
    except Exception as exc:  # the converter raises ConverterError, RuntimeError, ValueError...
        raise ConversionError(
            f"TFLite conversion ({options.quant}) failed: {first_line(exc)}"
        ) from exc


def calibrate(
    model: keras.Model | str | Path,
    spec: ModelSpec,
    options: ConvertOptions,
    rep_dataset: CalibrationSet,
) -> bytes:
    """The float model annotated with calibration ranges (int8 only), for `quantize_calibrated`.

    Calibrating once and quantising many ways (different float_layers) saves a full conversion per
    candidate in the accuracy-aware loop (edgeseg.convert.repair).
    """
    conv = prepare_converter(model, spec, replace(options, float_layers=()), rep_dataset)
    conv._experimental_calibrate_only = True
    with _conversion_errors(options):
        return bytes(conv.convert())


def quantize_calibrated(calibrated: bytes, options: ConvertOptions) -> bytes:
    """Quantise a calibrated model to int8 per `options`, keeping `options.float_layers` float."""
    from tensorflow.lite.python.convert import mlir_quantize

    # Same call TFLiteConverter makes for full int8 (not fully_quantize + a later
    # modify_model_io_type, which silently left an int8 input instead of uint8).
    with _conversion_errors(options):
        return bytes(
            mlir_quantize(
                calibrated,
                input_data_type=_tf_dtype(options.input_type),
                output_data_type=_tf_dtype(options.output_type),
                denylisted_nodes=list(options.float_layers) or None,
            )
        )


def source_record(model_path: str | Path) -> dict[str, str]:
    """Which .keras file a conversion came from (name and SHA-256), embedded in the .tflite's
    metadata, so `check` can tell an int8 model left over from before a retraining; from a
    quantisation-aware run, also the float network beside it (`float_source_sha256`), which
    that run's float32 .tflite records as its source: two models of one run share a hash."""
    path = Path(model_path)
    record = {"source_model": path.name, "source_sha256": file_sha256(path)}
    float_model = path.with_name(FLOAT_MODEL)
    if float_model != path and float_model.is_file():
        record["float_source_sha256"] = file_sha256(float_model)
    return record


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write a converter output through the one atomic writer (core.fileio), creating its
    folder: a folder, device or unwritable place there is a WriteError (exit 4)."""
    return write_bytes(path, data, mkdir=True)


def report_path_for(model_path: str | Path) -> Path:
    """`model_int8.tflite` -> `model_int8.report.json` beside it."""
    p = Path(model_path)
    return p.with_name(p.stem + ".report.json")


def check_model_out(
    out: Path, beside: Sequence[Path] = (), *, name: str = "model_int8.tflite"
) -> None:
    """`convert --out`: a .tflite file name, as eval, run and info tell a model by its suffix
    (`--out model.keras` replaced the trained model with the converted one, without a word;
    `--out noext` wrote a model eval then refused), that can be written (a device, a file
    where its folder goes, a folder that takes no files: exit 4), with its report and the
    files BESIDE it (a --max-drop run's) writable too, all before the conversion runs (a
    folder named model_int8.report.json failed after it). NAME is the file an --out that is
    a folder is told to name in it."""
    if out.is_dir():
        raise WriteError(f"--out {out}: is a folder; name a file in it, such as {out / name}")
    check_output(out, label="--out")  # named as the option: --out notes.txt/m.tflite
    if out.suffix.lower() != ".tflite":
        raise ConversionError(
            f"--out {out}: give a .tflite file name, such as {out.with_suffix('.tflite')} "
            "(eval, run and info tell a model by its suffix)"
        )
    check_beside(out, (report_path_for(out), *beside))


def check_beside(out: Path, paths: Sequence[Path]) -> None:
    """The files convert writes beside OUT (its report, a diagnosis): none may be a folder, a
    device or a pipe (WriteError, exit 4, before the conversion runs)."""
    for path in paths:
        why = not_a_file(path)
        if why is not None:
            raise WriteError(
                f"{path}: {why}, and convert writes a file there beside --out {out}; "
                "remove it or choose another --out"
            )


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote."""

    path: Path
    size_bytes: int
    seconds: float
    metadata: dict[str, Any]


def export(
    model: keras.Model | str | Path,
    spec: ModelSpec,
    options: ConvertOptions,
    out: str | Path,
    rep_dataset: CalibrationSet | None = None,
    extra: dict[str, Any] | None = None,
    calibrated: bytes | None = None,
    *,
    qat: bool = False,
) -> ExportResult:
    """Convert, embed the ModelSpec and conversion facts as metadata, write `out` atomically.

    With `calibrated` (from `calibrate`, int8 only) the calibration step is reused, not redone.
    `qat`: `model` is quantisation-aware (see `prepare_converter`).
    """
    out = Path(out)
    check_output(out)
    start = time.perf_counter()
    if not isinstance(model, (str, Path)):  # a SavedModel: the caller applied serving_model
        model, spec = serving_model(model, spec, options)
    if calibrated is not None and options.quant == Quant.INT8:
        flat = quantize_calibrated(calibrated, options)
    else:
        flat = run_converter(prepare_converter(model, spec, options, rep_dataset, qat=qat), options)
    meta = {
        "quant": options.quant.value,
        "io": options.input_type,
        "output_type": options.output_type,
        "calib_count": len(rep_dataset) if rep_dataset is not None else 0,
        "float_layers": list(options.float_layers),
        "quantisation_aware": qat,
        "edgeseg_version": __version__,
        **(extra or {}),
    }
    data = embed_metadata(flat, spec, extra=meta)
    atomic_write_bytes(out, data)
    return ExportResult(out, len(data), time.perf_counter() - start, meta)


def float32_size(model: keras.Model | str | Path, spec: ModelSpec) -> int:
    """Size in bytes of a plain float32 conversion of the same model (in memory, for the ratio)."""
    options = ConvertOptions(quant=Quant.FLOAT32)
    return len(run_converter(prepare_converter(model, spec, options), options))
