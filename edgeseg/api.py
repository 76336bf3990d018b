"""The public Python API: the same library calls the `edgeseg` commands make, as typed functions.

Everything here is re-exported from `edgeseg` lazily, so `import edgeseg` stays light and
`edgeseg.Segmenter` never imports TensorFlow; only `train`, `convert` and `evaluate`/`check` of a
`.keras` model load it, inside the call. Expected failures raise `edgeseg.EdgesegError` subclasses
(ValueError) with a one-line message. Example::

    import cv2
    import edgeseg

    run = edgeseg.train("data/street", out="runs/street", size=256, epochs=30)
    model = edgeseg.convert(run.model_path, calib="data/street", io="uint8")
    report = edgeseg.check(model, data="data/street/val", float_model=run.model_path)
    seg = edgeseg.Segmenter(model)
    frame = cv2.imread("street.jpg")        # BGR, as OpenCV reads it
    classes = seg.predict(frame)            # HxW uint8 class ids at the frame's size
    cv2.imwrite("street_seg.png", edgeseg.overlay(frame, classes, seg.spec))
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edgeseg.core.errors import (
    TRAINING_STACK,
    EdgesegError,
    path_argument,
    require_training_stack,
)
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.segmenter import Segmenter

if TYPE_CHECKING:
    from edgeseg.eval.check_result import CheckResult
    from edgeseg.eval.evaluate import EvalResult
    from edgeseg.train.fit import TrainResult

__all__ = [
    "EdgesegError",
    "ModelSpec",
    "Segmenter",
    "TrainingStopped",
    "check",
    "convert",
    "evaluate",
    "overlay",
    "train",
]

PathLike = str | Path
log = logging.getLogger("edgeseg")

# The library's messages name the CLI's flags; a Python caller reads the parameter it passed.
# Flags whose parameter is named otherwise, or that are switches (given as name=True/False):
_PARAMETERS = {
    "--class-weights": "class_weighting",
    "--ignore-class": "ignore_classes",
    "--resume": "resume=True",
    "--overwrite": "overwrite=True",
    "--no-qat": "qat=False",
    "--no-augment": "augment=False",
    "--edgetpu": "edgetpu=True",
    "--out-dir": "out_dir",
}
_FLAG = re.compile(r"(?<![\w/.-])(--[a-z][a-z0-9-]*)(?: ([A-Z][A-Z_]*)\b)?")


class TrainingStopped(KeyboardInterrupt):
    """`train` stopped by Ctrl-C (or SIGTERM): the run kept its best checkpoint, in `.result`.
    A KeyboardInterrupt, so a script or a notebook cell stops as Ctrl-C means."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__(
            f"training stopped: the best checkpoint so far is in {result.run_dir} "
            "(continue with resume=True)"
        )
        self.result = result


def python_names(message: str) -> str:
    """MESSAGE with each CLI flag (--class-weights, --resume, --calib DIR) as the Python
    parameter it is (class_weighting, resume=True, calib=DIR): what a caller of this API
    passed."""

    def parameter(match: re.Match[str]) -> str:
        flag, placeholder = match.groups()
        name = _PARAMETERS.get(flag, flag[2:].replace("-", "_"))
        return f"{name}={placeholder}" if placeholder else name

    return _FLAG.sub(parameter, message)


def _keras_needs_the_stack(what: str, *models: object) -> None:
    """A .keras model is run by Keras: without the training stack, one MissingStackError (a
    runtime-only install said "No module named 'keras'" from deep inside)."""
    if any(isinstance(m, str | Path) and Path(m).suffix.lower() == ".keras" for m in models):
        require_training_stack(f"{what} of a .keras model")


@contextlib.contextmanager
def _library_call() -> Iterator[None]:
    """Around each API call: errors name Python parameters, and the caller's process is left
    as it was: the root logger's handlers (absl adds one when TensorFlow logs, so a later
    logging.basicConfig did nothing and every TensorFlow warning printed twice) and Python's
    and NumPy's random states (training seeds them)."""
    handlers = list(logging.root.handlers)
    states = random.getstate(), np.random.get_state()
    try:
        yield
    except EdgesegError as exc:
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (python_names(exc.args[0]), *exc.args[1:])
        raise
    finally:
        for handler in logging.root.handlers[:]:
            if handler not in handlers:
                logging.root.removeHandler(handler)
        random.setstate(states[0])
        np.random.set_state(states[1])


def train(
    data: PathLike | None = None,
    out: PathLike = "runs/unet",
    *,
    size: int | str | tuple[int, int] | None = None,
    epochs: int | None = None,
    target: Literal["cpu", "edgetpu"] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    classes: Sequence[str] | None = None,
    verbose: int = 0,
    callbacks: Sequence[Any] = (),
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> TrainResult:
    """Train a U-Net on DATA (images/ + masks/, or train/ and val/) into OUT, like `edgeseg train`.

    With no options it uses the measured defaults (README "The training recipe"): the size from
    the data, 2000 optimiser steps. `size` is N, "HxW" or (height, width); `target="edgetpu"`
    picks the decoder the Coral compiler maps whole (None: "cpu", or what a resumed run had);
    `classes` a list of names or "a,b,c"; `steps` or `epochs`, not both. Other keyword options
    are TrainConfig fields (steps, batch, lr, warmup, loss, class_weighting, min_scale, augment,
    encoder, alpha, weights, depth, filters, upsample, resize, channels, patience, val_fraction,
    seed, strategy, qat, qat_steps, xla, ignore_classes, unlisted_colors).
    DATA=None trains on built-in synthetic scenes generated into OUT/synthetic_data. The result's
    model_path is the quantisation-aware model unless qat=False (README "The quantisation-aware
    model"). `callbacks`: Keras callbacks run after edgeseg's own each epoch; `progress(done,
    total)`: called as the dataset's pairs are checked (and the built-in scenes generated).
    Ctrl-C keeps the best checkpoint and raises `TrainingStopped` (a KeyboardInterrupt; its
    `.result` is the run so far). Python's and NumPy's random states are left as they were.
    Needs the [train] extra.

    >>> run = edgeseg.train("data/membrane", out="runs/m", steps=400)  # doctest: +SKIP
    >>> run.best_miou, run.model_path                                            # doctest: +SKIP
    """
    require_training_stack("edgeseg.train()", (*TRAINING_STACK, "PIL", "matplotlib"))
    from edgeseg.train.config import build_config
    from edgeseg.train.fit import train as run_training

    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    # N, "N", "HxW" or (height, width), names as a list: TrainConfig checks them
    for name, value in (
        ("size", size),
        ("epochs", epochs),
        ("classes", classes),
        ("target", target),
    ):
        if value is not None:
            given[name] = value
    with _library_call():
        config = build_config(
            data,
            out,
            given,
            resume=resume,
            overwrite=overwrite,
            verbose=verbose,
            progress=progress,
        )
        result = run_training(config, callbacks=callbacks, progress=progress)
    if result.interrupted:
        raise TrainingStopped(result)
    return result


def convert(
    model: PathLike,
    out: PathLike | None = None,
    *,
    calib: PathLike | None = None,
    quant: Literal["int8", "int16x8", "float16", "dynamic", "float32"] = "int8",
    io: Literal["uint8", "int8", "float32"] | None = None,
    calib_count: int = 200,
    seed: int = 0,
    edgetpu: bool = False,
    keep_softmax: bool = False,
) -> Path:
    """Convert a trained `.keras` model to TFLite (full-integer int8 by default), like
    `edgeseg convert`; returns the `.tflite` path (report JSON beside it).

    `calib` (a folder of representative frames or a dataset) calibrates int8 / int16x8 of a
    float model; without it, calib_data/ in the working folder, else the data the model was
    trained on (config.json beside it). A quantisation-aware model (what `train` writes by
    default) converts to int8 from its own ranges (`calib` not used); other formats of it are
    converted from the float network beside it (model_float.keras), as `edgeseg convert` does.
    What was chosen is logged (logger "edgeseg", INFO); what to act on (too few or unreadable
    calibration frames) is a WARNING. `io=None` means uint8 for a model trained with
    target="edgetpu", else int8. `edgetpu=True` also runs edgetpu_compiler (checked on PATH
    before converting), writing <stem>_edgetpu.tflite beside. `keep_softmax=True` keeps the
    softmax head (probabilities out, as --keep-softmax). The CLI's accuracy-aware --max-drop and
    --diagnose are `edgeseg.convert.repair.repair` and `edgeseg.convert.diagnose.diagnose` in
    Python. Needs the [train] extra.

    >>> tflite = edgeseg.convert("runs/m/model.keras", calib="data/membrane")  # doctest: +SKIP
    """
    require_training_stack("edgeseg.convert()")
    from edgeseg.convert.edgetpu import require_compiler
    from edgeseg.convert.options import (
        ConvertOptions,
        as_io,
        as_quant,
        check_edgetpu,
        check_io,
    )
    from edgeseg.convert.pipeline import compile_and_record, convert_model
    from edgeseg.convert.source import choose_source
    from edgeseg.convert.target import default_io

    with _library_call():
        path_argument(model, "model", "the path of a .keras model")
        check_io(as_quant(quant), as_io(io) if io is not None else None)
        options = ConvertOptions(
            quant=as_quant(quant),
            io=as_io(io) if io is not None else default_io(model),
            calib_count=calib_count,
            seed=seed,
            keep_softmax=keep_softmax,
        )
        if edgetpu:  # before minutes of conversion, not after
            check_edgetpu(options.quant)
            require_compiler()
        chosen = choose_source(model, options, calib, out)
        for note in chosen.notes:
            log.info("%s", python_names(note))
        outcome = convert_model(chosen.model, chosen.out, options, chosen.calib)
        for message in (*chosen.warnings, *outcome.warnings):
            log.warning("%s", python_names(message))
        if edgetpu:
            compile_and_record(outcome.export.path, outcome.report_path)
    return Path(outcome.export.path)


def evaluate(
    model: PathLike | Segmenter,
    data: PathLike,
    *,
    limit: int | None = None,
    threads: int | None = None,
    save_overlays: PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Score a `.keras` or `.tflite` model on DATA (its val split) or DATA/val, like `edgeseg eval`:
    `.miou`, `.per_class_iou`, `.scores`, `.mean_latency_ms`, `.to_dict()`; `.notes` says when
    DATA is the unsplit folder the model was trained on (only the held-out pairs are scored).
    `model` may be a loaded `Segmenter` (run as it is); `progress(done, total)` per image.

    >>> edgeseg.evaluate("model_int8.tflite", "data/membrane").miou  # doctest: +SKIP
    """
    _keras_needs_the_stack("edgeseg.evaluate()", model)
    from edgeseg.eval.evaluate import evaluate as run_eval

    with _library_call():
        return run_eval(
            model,
            data,
            save_overlays=save_overlays,
            limit=limit,
            threads=threads,
            progress=progress,
        )


def check(
    int8_model: PathLike | Segmenter,
    data: PathLike,
    *,
    float_model: PathLike | Segmenter | None = None,
    max_drop: float = 1.0,
    max_class_drop: float | None = None,
    out_dir: PathLike | None = None,
    limit: int | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckResult:
    """The int8 accuracy gate, like `edgeseg check`: `.passed`, `.miou_drop` (points),
    `.failures`, `.to_markdown()`. Without `float_model` the baseline is the float mIoU recorded
    in the int8 model; `out_dir` also writes check.json, check.md and disagreement.png
    (checked writable before any scoring). Models may be loaded `Segmenter`s; `progress(done,
    total)` per image.

    >>> r = edgeseg.check("m_int8.tflite", "data/val", float_model="m.keras")  # doctest: +SKIP
    >>> assert r.passed, r.failures                                            # doctest: +SKIP
    """
    _keras_needs_the_stack("edgeseg.check()", int8_model, float_model)
    from edgeseg.eval.compare import compare

    with _library_call():
        return compare(
            float_model,
            int8_model,
            data,
            max_drop,
            max_class_drop,
            out_dir=out_dir,
            limit=limit,
            threads=threads,
            progress=progress,
        )


def overlay(
    frame: np.ndarray,
    class_map: np.ndarray,
    spec: ModelSpec | Segmenter,
    *,
    alpha: float = 0.5,
    legend: bool = True,
) -> np.ndarray:
    """Draw a class map over its BGR frame in the model's palette (with the class legend); returns
    a new BGR image of the frame's size, ready for cv2.imwrite.

    >>> cv2.imwrite("out.png", edgeseg.overlay(frame, seg.predict(frame), seg))  # doctest: +SKIP
    """
    from edgeseg.core.processing import check_frame, draw_legend
    from edgeseg.core.processing import overlay as blend

    model_spec = spec.spec if isinstance(spec, Segmenter) else spec
    if not isinstance(model_spec, ModelSpec):
        raise EdgesegError(
            f"spec: expected a Segmenter or its .spec (a ModelSpec), got {type(spec).__name__}"
        )
    frame = check_frame(frame)
    if not isinstance(class_map, np.ndarray) or class_map.shape != frame.shape[:2]:
        got = getattr(class_map, "shape", type(class_map).__name__)
        raise EdgesegError(
            f"class map {got}: expected an HxW map of the frame's size {frame.shape[:2]}, as "
            "Segmenter.predict returns"
        )
    if not np.issubdtype(class_map.dtype, np.integer):
        raise EdgesegError(f"class map of {class_map.dtype}: expected integer class ids")
    if class_map.size and not 0 <= int(class_map.min()) <= int(class_map.max()) < len(
        model_spec.palette
    ):
        raise EdgesegError(
            f"class map holds ids {int(class_map.min())}..{int(class_map.max())}: the model has "
            f"{len(model_spec.palette)} classes (0..{len(model_spec.palette) - 1})"
        )
    if not 0.0 <= alpha <= 1.0:
        raise EdgesegError(f"alpha must be in [0, 1], got {alpha}")
    image = np.ascontiguousarray(blend(frame, class_map, model_spec.palette, alpha))
    if legend:
        draw_legend(image, model_spec.class_names, model_spec.palette)
    return image
