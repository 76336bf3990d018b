"""The layers of a quantisation-aware model (`edgeseg.train.qat` builds it): each computes what
LiteRT's int8 kernels (XNNPACK, the CPU default) compute at that point, so that validation sees the
int8 model's arithmetic; while a model is traced for conversion they emit the plain ops the
converter quantises instead (`exporting`). Registered for Keras serialisation, so a saved
quantisation-aware model loads in safe mode wherever edgeseg.train is imported.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf
from keras import layers

from edgeseg.train import QAT_PACKAGE

PACKAGE = QAT_PACKAGE
INPUT_RANGE = (0.0, 255.0)  # every edgeseg model takes raw 0..255 pixels and normalises inside


# === Layers ===

# While a model is traced for conversion, Requantize and QuantResize emit the plain ops the
# converter maps to int8 QUANTIZE / RESIZE_BILINEAR; otherwise they compute those kernels' integer
# arithmetic, so that training and validation see exactly what LiteRT will compute.
_EXPORTING: contextvars.ContextVar[bool] = contextvars.ContextVar("qat_exporting", default=False)


@contextlib.contextmanager
def exporting() -> Iterator[None]:
    """Trace quantisation-aware models for the TFLite converter inside this block."""
    token = _EXPORTING.set(True)
    try:
        yield
    finally:
        _EXPORTING.reset(token)


def _round_ste(x: Any) -> Any:
    """round(x) forward, identity gradient (the straight-through estimator)."""
    return x + tf.stop_gradient(tf.round(x) - x)


def _grid(lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] widened to hold zero (and never empty), as int8 ranges must."""
    lo, hi = float(min(lo, 0.0)), float(max(hi, 0.0))
    return lo, (hi if hi > lo else lo + 1e-6)


def _fake_quant(x: Any, grid: tuple[float, float]) -> Any:
    return tf.quantization.fake_quant_with_min_max_args(x, grid[0], grid[1], num_bits=8)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FakeQuant(layers.Layer):
    """Activations rounded to the 8-bit grid of [lo, hi] (zero exact), as TFLite requantises."""

    def __init__(self, lo: float, hi: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lo, self.hi = _grid(lo, hi)

    @property
    def scale(self) -> float:
        return (self.hi - self.lo) / 255.0

    def call(self, x: Any) -> Any:
        return _fake_quant(x, (self.lo, self.hi))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lo": self.lo, "hi": self.hi}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Requantize(layers.Layer):
    """An int8 tensor moved from its own grid (step `step_in`) onto the grid of [lo, hi], as
    XNNPACK's int8 -> int8 QUANTIZE does it: with the ratio of the two steps rounded to 1/256
    (an 8-bit fixed-point multiplier), then rounded half up. Measured bit-exact against LiteRT's
    XNNPACK kernels; the plain ratio leaves about 6% of the values one step off."""

    def __init__(self, step_in: float, lo: float, hi: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step_in = float(step_in)
        self.lo, self.hi = _grid(lo, hi)

    def call(self, x: Any) -> Any:
        if _EXPORTING.get():  # the converter inserts the QUANTIZE itself
            return x
        step_out = (self.hi - self.lo) / 255.0
        multiplier = float(round(256.0 * self.step_in / step_out))
        levels = tf.round(x / self.step_in)  # x is on its grid: exact integers
        y = tf.floor((levels * multiplier + 128.0) / 256.0) * step_out
        y = x + tf.stop_gradient(y - x)  # straight through
        return _fake_quant(y, (self.lo, self.hi))  # on the grid already: clamps to it

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "step_in": self.step_in, "lo": self.lo, "hi": self.hi}


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantResize(layers.Layer):
    """Bilinear up-sampling (half-pixel centres, as keras.layers.UpSampling2D) of an int8 tensor
    on the grid of [lo, hi], computed on its integer levels and rounded half up to the same grid,
    as XNNPACK's int8 RESIZE_BILINEAR does: exact, where interpolating the real values in float
    breaks the frequent exact ties (weights of 1/4 and 3/4) at random."""

    def __init__(self, size: tuple[int, int], lo: float, hi: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = (int(size[0]), int(size[1]))
        self.lo, self.hi = _grid(lo, hi)

    def call(self, x: Any) -> Any:
        step = (self.hi - self.lo) / 255.0
        shape = (x.shape[1] * self.size[0], x.shape[2] * self.size[1])
        smooth = tf.image.resize(x, shape, method="bilinear")
        if _EXPORTING.get():
            return _fake_quant(smooth, (self.lo, self.hi))
        levels = tf.image.resize(tf.round(x / step), shape, method="bilinear")
        y = tf.floor(levels + 0.5) * step
        y = smooth + tf.stop_gradient(y - smooth)  # straight through
        return _fake_quant(y, (self.lo, self.hi))  # on the grid already: clamps to it

    def compute_output_shape(self, input_shape: Any) -> Any:
        n, h, w, c = input_shape
        return (n, h * self.size[0], w * self.size[1], c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": list(self.size), "lo": self.lo, "hi": self.hi}


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantRescale(layers.Layer):
    """The model's input normalisation x * scale + offset, as the int8 MUL then ADD compute it.

    The scale is moved to the nearest power of two and the offset onto its grid (1/127.5, -1
    becomes 1/128, -1: a 0.4% change of contrast): x / 127.5 - 1 falls exactly between two int8
    levels for every pixel, and the int8 ADD and a fake-quant break those ties differently, which
    would seed mismatches into every layer after. On a power-of-two grid nothing is rounded.
    """

    def __init__(
        self,
        scale: float,
        offset: float,
        out_range: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)
        if self.scale <= 0:
            raise ValueError(f"`scale` must be > 0. Received: {scale}")
        self.exact_scale = 2.0 ** round(math.log2(self.scale))
        self.exact_offset = round(self.offset / self.exact_scale) * self.exact_scale
        mul = (INPUT_RANGE[0] * self.exact_scale, INPUT_RANGE[1] * self.exact_scale)
        self.mul_grid = _grid(*mul)
        # out_range: the grid of the Concatenate that takes this output (gray -> RGB)
        self.out_range = None if out_range is None else _grid(*out_range)
        self.out_grid = self.out_range or _grid(
            mul[0] + self.exact_offset, mul[1] + self.exact_offset
        )

    @property
    def grid(self) -> tuple[float, float]:
        """(lowest value, step) of the output's int8 grid."""
        lo, hi = self.out_grid if self.exact_offset or self.out_range else self.mul_grid
        return lo, (hi - lo) / 255.0

    def call(self, x: Any) -> Any:
        y = _fake_quant(x * self.exact_scale, self.mul_grid)
        if self.exact_offset or self.out_range:
            y = _fake_quant(y + self.exact_offset, self.out_grid)
        return y

    def get_config(self) -> dict[str, Any]:
        out = None if self.out_range is None else list(self.out_range)
        return {
            **super().get_config(),
            "scale": self.scale,
            "offset": self.offset,
            "out_range": out,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantConv(layers.Layer):
    """A convolution with its BatchNorm folded in and its activation fused, computed on int8 grids.

    Weights are rounded per output channel (symmetric, [-127, 127]), the bias to the grid of
    input scale x weight scale (TFLite's int32 bias), and the output fake-quantised to `out_range`
    (None when a Concatenate requantises it). `kind`: conv, depthwise or transpose.
    """

    def __init__(
        self,
        kind: str,
        kernel_shape: tuple[int, ...],
        strides: tuple[int, int],
        padding: str,
        dilation_rate: tuple[int, int] = (1, 1),
        activation: str = "linear",
        in_scale: float = 1.0,
        out_range: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if kind not in ("conv", "depthwise", "transpose"):
            raise ValueError(f"`kind` must be conv, depthwise or transpose. Received: {kind!r}")
        if activation not in ("linear", "relu", "relu6"):
            raise ValueError(
                f"`activation` must be linear, relu or relu6. Received: {activation!r}"
            )
        self.kind, self.kernel_shape = kind, tuple(int(v) for v in kernel_shape)
        self.strides, self.padding = tuple(int(v) for v in strides), padding.upper()
        self.dilation_rate = tuple(int(v) for v in dilation_rate)
        self.activation, self.in_scale = activation, float(in_scale)
        self.out_range = None if out_range is None else _grid(*out_range)
        # per-output-channel axes of the kernel, and the bias length
        k = self.kernel_shape
        self._reduce = {"conv": (0, 1, 2), "depthwise": (0, 1), "transpose": (0, 1, 3)}[kind]
        self._channels = {"conv": k[3], "depthwise": k[2] * k[3], "transpose": k[2]}[kind]

    def build(self, input_shape: Any) -> None:
        self.kernel = self.add_weight(shape=self.kernel_shape, initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(self._channels,), initializer="zeros", name="bias")

    def _weight_scale(self) -> Any:
        s = tf.stop_gradient(tf.reduce_max(tf.abs(self.kernel), axis=self._reduce, keepdims=True))
        return tf.where(s > 0, s, tf.ones_like(s)) / 127.0

    def call(self, x: Any) -> Any:
        ws = self._weight_scale()
        kernel = _round_ste(self.kernel / ws) * ws
        bias_step = tf.reshape(ws, (-1,)) * self.in_scale
        bias = _round_ste(self.bias / bias_step) * bias_step
        if self.kind == "conv":
            y = tf.nn.conv2d(x, kernel, self.strides, self.padding, dilations=self.dilation_rate)
        elif self.kind == "depthwise":
            y = tf.nn.depthwise_conv2d(
                x, kernel, (1, *self.strides, 1), self.padding, dilations=self.dilation_rate
            )
        else:
            y = tf.nn.conv2d_transpose(
                x, kernel, self._transpose_shape(x), self.strides, self.padding
            )
        y = y + bias
        if self.activation == "relu":
            y = tf.nn.relu(y)
        elif self.activation == "relu6":
            y = tf.nn.relu6(y)
        return y if self.out_range is None else _fake_quant(y, self.out_range)

    def _transpose_shape(self, x: Any) -> Any:
        n, h, w = x.shape[0], x.shape[1], x.shape[2]
        if self.padding != "SAME":
            h = (h - 1) * self.strides[0] + self.kernel_shape[0]
            w = (w - 1) * self.strides[1] + self.kernel_shape[1]
        else:
            h, w = h * self.strides[0], w * self.strides[1]
        batch = n if n is not None else tf.shape(x)[0]  # static at export: no SHAPE/PACK ops
        return [batch, h, w, self.kernel_shape[2]]

    def compute_output_shape(self, input_shape: Any) -> Any:
        n, h, w, _ = input_shape
        return (n, *self._spatial(h, w), self._channels)

    def _spatial(self, h: int, w: int) -> tuple[int, int]:
        sh, sw = self.strides
        kh, kw = self.kernel_shape[0], self.kernel_shape[1]
        if self.kind == "transpose":
            if self.padding == "SAME":
                return h * sh, w * sw
            return (h - 1) * sh + kh, (w - 1) * sw + kw
        dh, dw = self.dilation_rate
        if self.padding == "SAME":
            return -(-h // sh), -(-w // sw)
        return (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kind": self.kind,
            "kernel_shape": list(self.kernel_shape),
            "strides": list(self.strides),
            "padding": self.padding.lower(),
            "dilation_rate": list(self.dilation_rate),
            "activation": self.activation,
            "in_scale": self.in_scale,
            "out_range": None if self.out_range is None else list(self.out_range),
        }
