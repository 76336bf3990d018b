"""A tiny real int8 .tflite segmentation model for tests that need one fast (a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeseg.core.spec import ModelSpec


def tiny_keras_model(
    size: int = 32, classes: int = 2, names: tuple[str, ...] | None = None
) -> tuple[object, ModelSpec]:
    """An untrained 2-layer conv net (raw 0..255 in, softmax class map out) and its spec."""
    import keras

    spec = ModelSpec(size, size, names or tuple(f"c{i}" for i in range(classes)))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(spec.norm_scale, spec.norm_offset)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(classes, 1, activation="softmax")(x)
    return keras.Model(inputs, outputs), spec


def tiny_run(folder: Path, *, target: str = "cpu") -> Path:
    """A run folder like `edgeseg train` writes (model.keras + config.json); the model path."""
    model, spec = tiny_keras_model()
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")  # type: ignore[attr-defined]
    spec = spec.with_updates(target=target)
    (folder / "config.json").write_text(json.dumps({"spec": spec.to_dict()}))
    return folder / "model.keras"


def tiny_int8_model(
    path: Path,
    *,
    size: int = 32,
    classes: int = 2,
    io: str = "uint8",
    names: tuple[str, ...] | None = None,
) -> Path:
    """A 2-layer conv net with an edgeseg spec, converted to full-integer int8 at `path`."""
    from edgeseg.convert.calibration import representative_dataset
    from edgeseg.convert.converter import export
    from edgeseg.convert.options import ConvertOptions

    model, spec = tiny_keras_model(size, classes, names)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(4)]
    rep = representative_dataset(frames, spec, count=4)
    export(model, spec, ConvertOptions(io=io), path, rep)  # type: ignore[arg-type]
    return path
