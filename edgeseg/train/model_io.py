"""Load a trained `.keras` model (Keras safe mode) together with the ModelSpec saved beside it."""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from edgeseg.core.errors import ModelError
from edgeseg.core.spec import ModelSpec
from edgeseg.train import CONFIG_NAME
from edgeseg.train import qat_layers as _qat_layers  # noqa: F401  (registers the QAT layers)
from edgeseg.train.keras_file import check_keras_file
from edgeseg.train.qat_record import float_network_spec

log = logging.getLogger(__name__)


def spec_from_model(model: keras.Model, class_names: tuple[str, ...] | None = None) -> ModelSpec:
    """A default spec read off the model's shapes, for models that came without config.json."""
    check_segmentation_model(model)
    _, h, w, c = model.input_shape
    spec = ModelSpec.from_shapes(h, w, c, model.output_shape[-1], class_names)
    norm = _normalisation(model)
    return spec if norm is None else spec.with_updates(norm_scale=norm[0], norm_offset=norm[1])


def _normalisation(model: keras.Model) -> tuple[float, float] | None:
    """(scale, offset) of the model's input normalisation layer, as it computes it: a
    quantisation-aware model's is on a power-of-two grid (x / 128 - 1, not x / 127.5 - 1)."""
    for layer in model.layers:
        if hasattr(layer, "exact_scale"):  # QuantRescale
            return float(layer.exact_scale), float(layer.exact_offset)
        if isinstance(layer, keras.layers.Rescaling):
            return float(layer.scale), float(layer.offset)
    return None


def check_segmentation_model(model: object, path: str | Path = "model") -> None:
    """Raise ModelError unless the model maps (H, W, C) images to an (H, W, K) class map."""
    if not isinstance(model, keras.Model):
        raise ModelError(
            f"{path}: must be a `keras.Model` instance. Received instead {type(model).__name__}"
        )
    in_shape, out_shape = model.input_shape, model.output_shape
    if isinstance(in_shape, list) or isinstance(out_shape, list):
        raise ModelError(f"{path}: model must have exactly one input and one output")
    if len(in_shape) != 4 or len(out_shape) != 4 or in_shape[1] is None or in_shape[2] is None:
        raise ModelError(
            f"{path}: not a per-pixel class map model: input {in_shape}, output {out_shape} "
            "(expected (batch, H, W, C) -> (batch, H, W, classes) with fixed H and W)"
        )
    if tuple(in_shape[1:3]) != tuple(out_shape[1:3]):
        raise ModelError(
            f"{path}: output {out_shape[1:3]} is not the input size {in_shape[1:3]}; "
            "edgeseg needs a full-resolution per-pixel class map"
        )


def load_keras_model(path: str | Path) -> tuple[keras.Model, ModelSpec]:
    """(model, spec): the spec from config.json beside the model, else inferred with a warning."""
    path = Path(path)
    check_keras_file(path)
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for corrupt archives
        raise ModelError(f"{path}: cannot load Keras model ({type(exc).__name__}: {exc})") from exc
    check_segmentation_model(model, path)
    config = path.with_name(CONFIG_NAME)
    if config.is_file():
        spec = ModelSpec.load(config)
    else:
        log.warning(
            "%s: no %s beside the model; using defaults read off the model", path, CONFIG_NAME
        )
        spec = spec_from_model(model)
    if spec.num_classes != max(2, model.output_shape[-1]):
        raise ModelError(
            f"{config}: lists {spec.num_classes} classes but the model outputs "
            f"{model.output_shape[-1]}"
        )
    return model, _float_network_spec(model, spec)


def _float_network_spec(model: keras.Model, spec: ModelSpec) -> ModelSpec:
    """A quantisation-aware run's config.json describes model.keras; loaded beside it, the float
    network (model_float.keras) gets its own validation score and normalisation and no QAT
    record, so a conversion of it reports and embeds the float model's, not the
    quantisation-aware one's."""
    from edgeseg.train.qat import is_quantized

    return spec if is_quantized(model) else float_network_spec(spec)
