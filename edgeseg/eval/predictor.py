"""One interface over a Keras model and a `.tflite` model: frame in, class map at frame size out.

Evaluation measures exactly what ships: a `.tflite` runs through the runtime's `Segmenter`, a
`.keras` model through the same shared processing (prepare_image -> model -> class map -> frame).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from edgeseg.core.errors import EdgesegError, ModelError, check_model_file
from edgeseg.core.spec import ModelSpec

if TYPE_CHECKING:
    from edgeseg.runtime.segmenter import Segmenter


@runtime_checkable
class Predictor(Protocol):
    """Anything that turns an OpenCV frame into a uint8 class map of the same height and width."""

    spec: ModelSpec
    path: Path

    def predict(self, frame: np.ndarray) -> np.ndarray: ...

    def predict_many(self, frames: list[np.ndarray]) -> list[np.ndarray]: ...


class TFLitePredictor:
    """A `.tflite` model run by the runtime's Segmenter, i.e. the code path the device uses."""

    batch_size = 1

    def __init__(
        self, path: Path, threads: int | None = None, segmenter: Segmenter | None = None
    ) -> None:
        from edgeseg.runtime.segmenter import Segmenter

        try:
            self.segmenter = segmenter or Segmenter(path, threads=threads)
        except EdgesegError:
            raise
        except Exception as exc:  # the interpreter raises RuntimeError/ValueError on bad bytes
            raise ModelError(
                f"{path}: cannot load TFLite model ({type(exc).__name__}: {exc})"
            ) from exc
        self.path = path
        self.spec: ModelSpec = self.segmenter.spec

    def predict(self, frame: np.ndarray) -> np.ndarray:
        return np.asarray(self.segmenter.predict(frame), np.uint8)

    def predict_many(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        return [self.predict(f) for f in frames]


def open_predictor(model: str | Path | Segmenter, *, threads: int | None = None) -> Predictor:
    """Pick the predictor by file suffix (.keras or .tflite), or run an already loaded Segmenter
    as it is (its own threads); anything else is a ModelError."""
    from edgeseg.runtime.segmenter import Segmenter

    if isinstance(model, Segmenter):
        return TFLitePredictor(model.model_path, segmenter=model)
    if not isinstance(model, (str, os.PathLike)):
        raise ModelError(
            f"model {type(model).__name__}: expected the path of a .tflite or .keras model, or "
            "an edgeseg.Segmenter"
        )
    path = Path(model)
    check_model_file(path, "a .tflite or .keras model file")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return TFLitePredictor(path, threads=threads)
    if suffix == ".keras":
        from edgeseg.eval.keras_predictor import KerasPredictor

        return KerasPredictor(path)
    raise ModelError(
        f"{path}: unsupported model type {suffix or '(no suffix)'!r}; expected a .keras model from "
        "`edgeseg train` or a .tflite model from `edgeseg convert`"
    )
