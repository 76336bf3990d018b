"""Keras 3 MobileNetV2-encoder U-Net (what Coral's model zoo and TensorFlow's segmentation tutorial
run on edge devices): `keras.applications.MobileNetV2` without its top as the encoder, skips at
strides 2/4/8/16, a light decoder that up-samples and concatenates each skip, 1x1 softmax head.

Like `build_unet`, the model takes raw 0..255 pixels: its Rescaling layer maps them to [-1, 1],
exactly MobileNetV2's own preprocessing, and a gray input is replicated to 3 channels inside.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from edgeseg.core.spec import NORM_OFFSET, NORM_SCALE
from edgeseg.train.config import ALPHAS
from edgeseg.train.model import Upsample, check_head, softmax_head

# the standard block outputs at strides 2, 4, 8, 16 (skips) and 32 (bottleneck)
SKIP_LAYERS = (
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
)
BOTTLENECK_LAYER = "block_16_project"
DECODER_FILTERS = (96, 64, 48, 32, 16)  # strides 16, 8, 4, 2, 1

# === Layers ===


def _conv_bn_relu(
    x: keras.KerasTensor, filters: int, name: str, bn_momentum: float, sync: bool
) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, synchronized=sync, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _upsample(x: keras.KerasTensor, filters: int, mode: Upsample, name: str) -> keras.KerasTensor:
    if mode == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
    return layers.Conv2D(filters, 1, name=f"{name}_upconv")(x)


def build_encoder(
    input_shape: tuple[int, int, int],
    *,
    alpha: float = 0.35,
    weights: str | Path | None = None,
    bn_momentum: float = 0.9,
    synchronized_bn: bool = False,
) -> keras.Model:
    """MobileNetV2 (3-channel input in [-1, 1]) returning the four skips and the bottleneck.

    `weights`: None (random), "imagenet" (Keras downloads once and caches in ~/.keras/models) or
    the path of a weights file for `keras.applications.MobileNetV2` (.h5 or .weights.h5).
    """
    h, w, _ = input_shape
    if alpha not in ALPHAS:
        raise ValueError(f"`alpha` must be one of {ALPHAS}. Received: {alpha}")
    base = keras.applications.MobileNetV2(
        input_shape=(h, w, 3),
        alpha=alpha,
        include_top=False,
        weights=None if weights is None else str(weights),
    )
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            # 0.999 (MobileNetV2's) leaves moving statistics unconverged after short CPU runs,
            # and the inference-mode model (what the converter sees) then predicts one class
            layer.momentum = bn_momentum
            layer.synchronized = synchronized_bn
    outputs = [base.get_layer(name).output for name in (*SKIP_LAYERS, BOTTLENECK_LAYER)]
    return keras.Model(base.input, outputs, name="encoder")


# === Functional Model ===


def build_mobilenetv2_unet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    alpha: float = 0.35,
    upsample: Upsample = "transpose",
    weights: str | Path | None = None,
    decoder_filters: tuple[int, ...] = DECODER_FILTERS,
    bn_momentum: float = 0.9,
    synchronized_bn: bool = False,
) -> keras.Model:
    """Uncompiled MobileNetV2 U-Net taking raw pixels (H, W, C) in 0..255, C 1 or 3, H and W
    divisible by 32, and returning per-pixel softmax."""
    h, w, c = input_shape
    check_head(num_classes, upsample)
    if c not in (1, 3):
        raise ValueError(f"input channels must be 1 or 3. Received: {c}")
    if h % 32 or w % 32 or min(h, w) < 32:
        raise ValueError(
            f"input size {h}x{w} must be divisible by 32 for the MobileNetV2 encoder; "
            f"pick a size such as {max(32, h // 32 * 32)}x{max(32, w // 32 * 32)}"
        )
    if len(decoder_filters) != 5:
        raise ValueError(f"`decoder_filters` needs 5 entries. Received: {decoder_filters}")
    if weights == "imagenet" and c != 3:
        raise ValueError("ImageNet weights need 3-channel (RGB) input. Received: 1 channel")
    encoder = build_encoder(
        (h, w, 3),
        alpha=alpha,
        weights=weights,
        bn_momentum=bn_momentum,
        synchronized_bn=synchronized_bn,
    )
    inputs = keras.Input(shape=(h, w, c), name="image")
    x = layers.Rescaling(NORM_SCALE, offset=NORM_OFFSET, name="normalize")(inputs)
    if c == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    *skips, x = encoder(x)
    for level, filters in enumerate(decoder_filters):
        name = f"dec{4 - level}"
        x = _upsample(x, filters, upsample, name)
        if level < len(skips):
            x = layers.Concatenate(name=f"{name}_concat")([x, skips[-1 - level]])
        x = _conv_bn_relu(x, filters, name, bn_momentum, synchronized_bn)
    outputs = softmax_head(x, num_classes)
    return keras.Model(inputs, outputs, name=f"mobilenetv2_unet_a{alpha:g}_{upsample}")
