"""What a model costs on the device, next to what it scores: parameters, multiply-accumulates per
frame and the expected size of its full-int8 .tflite. MACs are counted on the model's float TFLite
graph by the runtime's counter (the same one `edgeseg bench` and `edgeseg info` use)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from edgeseg.core.fileio import scratch_dir

# int8 .tflite = float .tflite - 3 bytes per kernel weight (float32 -> int8) + per-channel
# quantisation parameters (kernel and bias: float32 scale + int64 zero point each) per output
# channel; measured within 1% of real conversions of trained U-Nets and MobileNetV2 U-Nets.
_QUANT_BYTES_PER_CHANNEL = 24


@dataclass(frozen=True)
class ModelCost:
    """Parameters, MACs per frame and the expected full-int8 .tflite size of one model."""

    params: int
    macs: int
    int8_bytes: int

    def to_dict(self) -> dict[str, int]:
        """The three numbers as JSON-ready data, as config.json records them."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCost:
        """Read a cost back from `to_dict` data (config.json), without measuring the model again."""
        return cls(int(d["params"]), int(d["macs"]), int(d["int8_bytes"]))

    def describe(self) -> str:
        """One line for people: '1.95 M parameters, 2.10 GMAC per frame, int8 about 1.9 MiB'."""
        return (
            f"{self.params / 1e6:.2f} M parameters, {self.macs / 1e9:.2f} GMAC per frame, "
            f"int8 about {self.int8_bytes / 2**20:.1f} MiB"
        )


_WEIGHTED = (
    keras.layers.Conv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)


def _walk(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Every layer, nested models included (a keras.applications encoder is one layer)."""
    for sub in getattr(layer, "layers", ()):
        yield sub
        yield from _walk(sub)


def _kernels_and_channels(model: keras.Model) -> tuple[int, int]:
    """(kernel weights, output channels) of the conv layers, the tensors int8 conversion shrinks."""
    kernels = channels = 0
    for layer in _walk(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not isinstance(layer, _WEIGHTED):
            continue
        shape = tuple(int(v) for v in kernel.shape)
        kernels += int(np.prod(shape))
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            channels += shape[-2] * shape[-1]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            channels += shape[-2]
        else:
            channels += shape[-1]
    return kernels, channels


def measure_cost(model: keras.Model) -> ModelCost:
    """Cost of `model` (a few seconds: one in-memory float TFLite conversion).

    Converted as a copy with every weight set to distinct values: a freshly built model's
    zero biases and unit BatchNorm factors are constants the converter stores once for all
    layers, which made the int8 size about 5% low for MobileNetV2 (many layers); a trained
    model's are all different. Only shapes matter to the cost, and `model` is left as it was.
    """
    import tensorflow as tf

    from edgeseg.runtime.inspect import count_model_macs

    probe = keras.models.clone_model(model)
    rng = np.random.default_rng(0)
    probe.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w in probe.get_weights()])
    # exported as the converter exports (batch 1, ExportArchive with verbose=False): Keras'
    # from_keras_model prints its signature, which silencing would need a process-wide redirect
    with scratch_dir("edgeseg-cost-") as tmp:
        height, width, channels = probe.input_shape[1:]
        archive = keras.export.ExportArchive()
        archive.track(probe)
        archive.add_endpoint(
            "serve",
            lambda x: probe(x, training=False),
            input_signature=[tf.TensorSpec((1, height, width, channels), tf.float32)],
        )
        archive.write_out(str(tmp / "saved"), verbose=False)
        flat = tf.lite.TFLiteConverter.from_saved_model(str(tmp / "saved")).convert()
    kernels, channels = _kernels_and_channels(model)
    int8 = len(flat) - 3 * kernels + _QUANT_BYTES_PER_CHANNEL * channels
    return ModelCost(int(model.count_params()), count_model_macs(flat), int(int8))
