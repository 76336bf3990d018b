"""A tiny real int8 .tflite segmentation model for tests that need one fast (a few seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.core.spec import ModelSpec


def tiny_int8_model(path: Path, *, size: int = 32, classes: int = 2, io: str = "uint8") -> Path:
    """A 2-layer conv net with an edgeseg spec, converted to full-integer int8 at `path`."""
    import keras

    from edgeseg.convert.calibration import representative_dataset
    from edgeseg.convert.converter import export
    from edgeseg.convert.options import ConvertOptions

    spec = ModelSpec(size, size, tuple(f"c{i}" for i in range(classes)))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(spec.norm_scale, spec.norm_offset)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(classes, 1, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(4)]
    rep = representative_dataset(frames, spec, count=4)
    export(model, spec, ConvertOptions(io=io), path, rep)  # type: ignore[arg-type]
    return path
