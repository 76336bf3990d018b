"""Keras 3 U-Net builder: encoder (conv-BN-ReLU x2, max-pool), bottleneck, decoder that up-samples
and concatenates the matching skip, 1x1 softmax head. Normalisation is the first layer, so the
model takes raw 0..255 pixels. Binary tasks use a 2-class softmax (one code path everywhere).
"""

from __future__ import annotations

from typing import Literal

import keras
from keras import layers

from edgeseg.core.spec import NORM_OFFSET, NORM_SCALE

Upsample = Literal["transpose", "resize"]

# === Layers ===


def _conv_block(
    x: keras.KerasTensor, filters: int, name: str, bn_momentum: float, sync: bool = False
) -> keras.KerasTensor:
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        # momentum 0.9 (not Keras' 0.99): short CPU runs otherwise leave moving stats unconverged
        # and the inference-mode model (what the converter sees) predicts one class everywhere.
        x = layers.BatchNormalization(
            momentum=bn_momentum, synchronized=sync, name=f"{name}_bn{i}"
        )(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def _upsample(x: keras.KerasTensor, filters: int, mode: Upsample, name: str) -> keras.KerasTensor:
    if mode == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
    return layers.Conv2D(filters, 3, padding="same", name=f"{name}_upconv")(x)


def check_head(num_classes: int, upsample: str) -> None:
    """The arguments every architecture shares, checked with the same messages."""
    if num_classes < 2:
        raise ValueError(
            f"`num_classes` must be >= 2 (binary uses a 2-class softmax). Received: {num_classes}"
        )
    if upsample not in ("transpose", "resize"):
        raise ValueError(f"`upsample` must be 'transpose' or 'resize'. Received: {upsample!r}")


def softmax_head(x: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
    """1x1 conv to per-class logits, then a Softmax layer of its own (the layer the converter
    leaves out of the .tflite by default): the same head in every architecture."""
    logits = layers.Conv2D(num_classes, 1, name="head")(x)
    return layers.Softmax(name="probs")(logits)


# === Functional Model ===


def build_unet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    depth: int = 4,
    base_filters: int = 16,
    upsample: Upsample = "transpose",
    bn_momentum: float = 0.9,
    synchronized_bn: bool = False,
) -> keras.Model:
    """Uncompiled U-Net taking raw pixels (H, W, C) in 0..255 and returning per-pixel softmax.

    `synchronized_bn`: batch statistics over the global batch of a distributed run, so every
    worker ends with the same moving statistics (TensorFlow backend).
    """
    h, w, c = input_shape
    check_head(num_classes, upsample)
    if depth < 1:
        raise ValueError(f"`depth` must be >= 1. Received: {depth}")
    factor = 2**depth
    if h % factor or w % factor:
        raise ValueError(
            f"input size {h}x{w} must be divisible by 2**depth = {factor}; "
            f"pick a size such as {max(factor, h // factor * factor)}"
        )
    inputs = keras.Input(shape=(h, w, c), name="image")
    x = layers.Rescaling(NORM_SCALE, offset=NORM_OFFSET, name="normalize")(inputs)
    skips = []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, f"enc{level}", bn_momentum, synchronized_bn)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = _conv_block(x, base_filters * 2**depth, "bottleneck", bn_momentum, synchronized_bn)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = _upsample(x, filters, upsample, f"dec{level}")
        x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level]])
        x = _conv_block(x, filters, f"dec{level}", bn_momentum, synchronized_bn)
    outputs = softmax_head(x, num_classes)
    return keras.Model(inputs, outputs, name=f"unet_d{depth}_f{base_filters}_{upsample}")
