"""The float reference: a trained `.keras` model run through the shared processing, in batches.

The only eval module that touches Keras; it is imported lazily so `edgeseg eval x.tflite` never
loads TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.core.processing import class_map_from_output, class_map_to_frame, prepare_image
from edgeseg.core.spec import ModelSpec


class KerasPredictor:
    """Frame -> class map with a Keras model: prepare_image -> model(x) -> argmax -> frame size."""

    batch_size = 8

    def __init__(self, path: Path) -> None:
        from edgeseg.train.model_io import load_keras_model

        model, spec = load_keras_model(path)
        self.path = path
        self.model = model
        self.spec: ModelSpec = spec

    def predict(self, frame: np.ndarray) -> np.ndarray:
        return self.predict_many([frame])[0]

    def predict_many(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """One forward pass for all frames (they are resized to the model input first)."""
        if not frames:
            return []
        prepared = [prepare_image(f, self.spec) for f in frames]
        batch = np.stack([pixels for pixels, _ in prepared]).astype(np.float32)
        output = np.asarray(self.model(batch, training=False))
        return [
            class_map_to_frame(class_map_from_output(out, self.spec.output_kind), placement)
            for out, (_, placement) in zip(output, prepared, strict=True)
        ]
