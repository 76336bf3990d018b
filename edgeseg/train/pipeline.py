"""tf.data input pipeline: pairs are read with `Dataset.load` and sized with the SHARED
`prepare_image` / `prepare_mask`, so training sees exactly the pixels the runtime feeds the model.

Augmentation (flip, zoom-crop, brightness/contrast) moves image and mask together and never
interpolates a mask: masks go through flips, slices and nearest-neighbour resizes only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from edgeseg.core.processing import prepare_image, prepare_mask
from edgeseg.core.spec import ModelSpec
from edgeseg.data.dataset import Dataset, Sample

MAX_ZOOM = 1.3  # random crops cover 1/1.3 .. 1 of each side, then scale back to the input size
MIN_EPOCH_SAMPLES = 64  # tiny datasets repeat so an epoch has enough optimiser steps


def load_prepared(ds: Dataset, sample: Sample, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(HxWxC uint8 model pixels, HxW uint8 model-size mask) for one pair, via core.processing."""
    image, mask = ds.load(sample)
    pixels, _ = prepare_image(image, spec)
    return pixels, prepare_mask(mask, spec)


def _loader(ds: Dataset, samples: tuple[Sample, ...], spec: ModelSpec) -> tf.data.Dataset:
    h, w, c = spec.input_height, spec.input_width, spec.channels

    def load(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return load_prepared(ds, samples[int(index)], spec)

    def tf_load(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels, mask = tf.numpy_function(load, [index], (tf.uint8, tf.uint8), stateful=False)
        return tf.ensure_shape(pixels, (h, w, c)), tf.ensure_shape(mask, (h, w))

    indices = tf.data.Dataset.range(len(samples))
    return indices.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def augment_pair(
    pixels: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Random flip, zoom-crop and brightness/contrast from a [2] int seed (stateless, reproducible).

    pixels: HxWxC (any dtype, 0..255) -> float32; mask: HxW uint8 -> uint8 with the same labels.
    """
    s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=7)
    h, w = pixels.shape[0], pixels.shape[1]
    img = tf.cast(pixels, tf.float32)
    m = mask[:, :, None]
    flip = tf.random.stateless_uniform([], s[0]) < 0.5
    img = tf.cond(flip, lambda: tf.reverse(img, [1]), lambda: img)
    m = tf.cond(flip, lambda: tf.reverse(m, [1]), lambda: m)
    # zoom-crop half of the time: a random window of 1/zoom the size, scaled back (mask: nearest)
    zoom = tf.random.stateless_uniform([], s[1], 1.0, MAX_ZOOM)
    zoom = tf.where(tf.random.stateless_uniform([], s[2]) < 0.5, zoom, 1.0)
    ch = tf.maximum(1, tf.cast(tf.round(h / zoom), tf.int32))
    cw = tf.maximum(1, tf.cast(tf.round(w / zoom), tf.int32))
    top = tf.random.stateless_uniform([], s[3], 0, h - ch + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], s[4], 0, w - cw + 1, dtype=tf.int32)
    img = tf.image.resize(img[top : top + ch, left : left + cw], (h, w), method="bilinear")
    m = tf.image.resize(m[top : top + ch, left : left + cw], (h, w), method="nearest")
    # photometric jitter on the image only
    brightness = tf.random.stateless_uniform([], s[5], -0.1, 0.1) * 255.0
    contrast = tf.random.stateless_uniform([], s[6], 0.8, 1.2)
    mean = tf.reduce_mean(img, axis=(0, 1), keepdims=True)
    img = tf.clip_by_value((img - mean) * contrast + mean + brightness, 0.0, 255.0)
    return tf.ensure_shape(img, pixels.shape), tf.ensure_shape(
        tf.cast(m[:, :, 0], tf.uint8), mask.shape
    )


def steps_per_epoch(num_samples: int, batch: int) -> int:
    """Optimiser steps per epoch: one pass, but at least MIN_EPOCH_SAMPLES samples' worth."""
    return max(math.ceil(num_samples / batch), math.ceil(MIN_EPOCH_SAMPLES / batch), 1)


def _with_options(d: tf.data.Dataset) -> tf.data.Dataset:
    opts = tf.data.Options()
    # pairs come from a range of indices, not files: shard by element across workers
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return d.with_options(opts)


def train_dataset(
    ds: Dataset,
    spec: ModelSpec,
    *,
    batch: int,
    seed: int = 0,
    augment: bool = True,
    cache: bool = True,
    samples: tuple[Sample, ...] | None = None,
) -> tf.data.Dataset:
    """Endless shuffled (augmented) batches of (float32 pixels 0..255, uint8 mask); use with
    `steps_per_epoch`. Decoded, resized pairs are cached in memory after the first pass."""
    samples = ds.train if samples is None else samples
    d = _loader(ds, samples, spec)
    if cache:
        d = d.cache()
    d = d.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True).repeat()
    if augment:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        d = tf.data.Dataset.zip((d, seeds)).map(
            lambda pair, sd: augment_pair(pair[0], pair[1], sd), num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        d = d.map(lambda p, m: (tf.cast(p, tf.float32), m))
    return _with_options(d.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def eval_dataset(
    ds: Dataset, spec: ModelSpec, *, batch: int, samples: tuple[Sample, ...] | None = None
) -> tf.data.Dataset:
    """Validation batches in file order, no augmentation, cached after the first pass."""
    samples = ds.val if samples is None else samples
    d = _loader(ds, samples, spec).map(lambda p, m: (tf.cast(p, tf.float32), m)).cache()
    return _with_options(d.batch(batch).prefetch(tf.data.AUTOTUNE))


def as_numpy_pairs(d: tf.data.Dataset) -> list[tuple[Any, Any]]:
    """Materialise a (small) dataset as a list of numpy (pixels, mask) batches, for tests/tools."""
    return [(p.numpy(), m.numpy()) for p, m in d]
