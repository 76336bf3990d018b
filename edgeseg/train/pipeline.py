"""tf.data input pipeline: pairs are read with `Dataset.load` and sized with the SHARED
`prepare_image` / `prepare_mask`, so training sees exactly the pixels the runtime feeds the model.

Augmentation matches deployment: a random window with the FRAME's aspect ratio (so the stretch the
runtime applies to a whole frame is the same for the window) is cut from the full-resolution pair
and sized by the same `prepare_image` / `prepare_mask` a camera frame goes through; then a
horizontal flip and colour jitter (brightness, contrast, saturation) on the image only. Masks are
only ever sliced, flipped and resized nearest-neighbour: class ids never blend.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import tensorflow as tf

from edgeseg.core.processing import prepare_image, prepare_mask
from edgeseg.core.spec import ModelSpec
from edgeseg.data.dataset import Dataset
from edgeseg.data.layout import Sample
from edgeseg.train.recipe import steps_per_epoch

__all__ = ["augment_frame", "eval_dataset", "load_prepared", "steps_per_epoch", "train_dataset"]

MIN_SCALE = 0.5  # library default; `edgeseg train` uses TrainConfig.min_scale (1.0, measured)


def load_prepared(ds: Dataset, sample: Sample, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(HxWxC uint8 model pixels, HxW uint8 model-size mask) for one pair, via core.processing."""
    image, mask = ds.load(sample)
    pixels, _ = prepare_image(image, spec)
    return pixels, prepare_mask(mask, spec)


def load_for_crops(
    ds: Dataset, sample: Sample, spec: ModelSpec, min_scale: float = MIN_SCALE
) -> tuple[np.ndarray, np.ndarray]:
    """(OpenCV frame, mask) at full resolution, but no larger than 1/min_scale x the model input
    per side (aspect kept): the most a random window needs, so the cache stays small."""
    image, mask = ds.load(sample)
    h, w = mask.shape[:2]
    zoom = 1.0 / min_scale
    f = min(1.0, zoom * spec.input_height / h, zoom * spec.input_width / w)
    if f < 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    if image.ndim == 2:
        image = image[:, :, None]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def random_window(
    hw: tuple[int, int], rng: np.random.Generator, min_scale: float = MIN_SCALE
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random window with the frame's aspect ratio, each side
    min_scale..1 of the frame's (area uniform in min_scale**2..1)."""
    h, w = hw
    scale = math.sqrt(rng.uniform(min_scale**2, 1.0))
    ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    return top, left, ch, cw


def jitter_colour(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness +-10%, contrast 0.8..1.2, saturation 0.7..1.3 (colour only) -> float32 0..255."""
    img = pixels.astype(np.float32)
    if img.shape[2] == 3:
        gray = img.mean(axis=2, keepdims=True)
        img = gray + (img - gray) * rng.uniform(0.7, 1.3)
    mean = img.mean(axis=(0, 1), keepdims=True)
    img = (img - mean) * rng.uniform(0.8, 1.2) + mean + rng.uniform(-0.1, 0.1) * 255.0
    out: np.ndarray = np.clip(img, 0.0, 255.0)
    return out


def augment_frame(
    image: np.ndarray,
    mask: np.ndarray,
    spec: ModelSpec,
    rng: np.random.Generator,
    *,
    min_scale: float = MIN_SCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """One training pair from a full-resolution (frame, mask): random window (frame aspect),
    sized by the shared preprocessing, horizontal flip, colour jitter.

    Returns (HxWxC float32 0..255 model pixels, HxW uint8 mask with the same labels).
    """
    frame = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    top, left, ch, cw = random_window(mask.shape[:2], rng, min_scale)
    pixels, _ = prepare_image(frame[top : top + ch, left : left + cw], spec)
    labels = prepare_mask(mask[top : top + ch, left : left + cw], spec)
    if rng.random() < 0.5:
        pixels, labels = pixels[:, ::-1], labels[:, ::-1]
    return jitter_colour(pixels, rng), np.ascontiguousarray(labels)


def _with_options(d: tf.data.Dataset) -> tf.data.Dataset:
    opts = tf.data.Options()
    # pairs come from a range of indices, not files: shard by element across workers
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return d.with_options(opts)


def _prepared(ds: Dataset, samples: tuple[Sample, ...], spec: ModelSpec) -> tf.data.Dataset:
    h, w, c = spec.input_height, spec.input_width, spec.channels

    def load(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return load_prepared(ds, samples[int(index)], spec)

    def tf_load(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels, mask = tf.numpy_function(load, [index], (tf.uint8, tf.uint8), stateful=False)
        return tf.ensure_shape(pixels, (h, w, c)), tf.ensure_shape(mask, (h, w))

    indices = tf.data.Dataset.range(len(samples))
    return indices.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _full_resolution(
    ds: Dataset, samples: tuple[Sample, ...], spec: ModelSpec, min_scale: float
) -> tf.data.Dataset:
    def load(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return load_for_crops(ds, samples[int(index)], spec, min_scale)

    def tf_load(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = tf.numpy_function(load, [index], (tf.uint8, tf.uint8), stateful=False)
        return tf.ensure_shape(image, (None, None, None)), tf.ensure_shape(mask, (None, None))

    indices = tf.data.Dataset.range(len(samples))
    return indices.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _augmenter(spec: ModelSpec, min_scale: float) -> Any:
    h, w, c = spec.input_height, spec.input_width, spec.channels

    def run(image: np.ndarray, mask: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(np.asarray(seed, np.uint64))
        return augment_frame(image, mask, spec, rng, min_scale=min_scale)

    def tf_run(image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels, labels = tf.numpy_function(
            run, [image, mask, seed], (tf.float32, tf.uint8), stateful=False
        )
        return tf.ensure_shape(pixels, (h, w, c)), tf.ensure_shape(labels, (h, w))

    return tf_run


def train_dataset(
    ds: Dataset,
    spec: ModelSpec,
    *,
    batch: int,
    seed: int = 0,
    augment: bool = True,
    cache: bool = True,
    samples: tuple[Sample, ...] | None = None,
    min_scale: float = MIN_SCALE,
) -> tf.data.Dataset:
    """Endless shuffled (augmented) batches of (float32 pixels 0..255, uint8 mask); use with
    `steps_per_epoch`. Decoded pairs are cached in memory after the first pass (at full
    resolution, up to 1/min_scale x the model size, when augmenting)."""
    samples = ds.train if samples is None else samples
    d = _full_resolution(ds, samples, spec, min_scale) if augment else _prepared(ds, samples, spec)
    if cache:
        d = d.cache()
    d = d.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True).repeat()
    if augment:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        augmenter = _augmenter(spec, min_scale)
        d = tf.data.Dataset.zip((d, seeds)).map(
            lambda pair, sd: augmenter(pair[0], pair[1], sd), num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        d = d.map(lambda p, m: (tf.cast(p, tf.float32), m))
    return _with_options(d.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def eval_dataset(
    ds: Dataset, spec: ModelSpec, *, batch: int, samples: tuple[Sample, ...] | None = None
) -> tf.data.Dataset:
    """Validation batches in file order, no augmentation, cached after the first pass."""
    samples = ds.val if samples is None else samples
    d = _prepared(ds, samples, spec).map(lambda p, m: (tf.cast(p, tf.float32), m)).cache()
    return _with_options(d.batch(batch).prefetch(tf.data.AUTOTUNE))


def as_numpy_pairs(d: tf.data.Dataset) -> list[tuple[Any, Any]]:
    """Materialise a (small) dataset as a list of numpy (pixels, mask) batches, for tests/tools."""
    return [(p.numpy(), m.numpy()) for p, m in d]
