"""The training recipe's arithmetic, free of TensorFlow: the input size derived from the data,
the optimiser-step budget and the class weights for imbalanced data.

Chosen by measurement (README, "The training recipe"): a budget counted in optimiser steps (a
24-image set gets as many as a 1000-image one), an input whose aspect ratio is the data's median.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeseg.core.errors import DatasetError
from edgeseg.core.processing import read_image
from edgeseg.data.dataset import Dataset
from edgeseg.data.layout import Sample

CLASS_WEIGHTINGS = ("none", "sqrt", "median")
LOSSES = ("ce+lovasz", "ce+dice", "ce", "focal+dice", "ohem+dice")  # implemented in train/losses.py
DEFAULT_STEPS = 2000  # optimiser steps when neither --steps nor --epochs is given
DEFAULT_LONG_SIDE = 256  # long side of the input size derived from the data
MIN_EPOCH_STEPS = 100  # with a step budget, validate after one pass but at least this many steps
MIN_EPOCH_SAMPLES = 64  # with --epochs, an epoch is one pass but at least this many samples
MAX_WEIGHT = 10.0  # class weights are capped at this many times the mean pixel's
# Random scale-and-crop (windows covering CROP_MIN_SCALE..1 of each side) for runs of at least
# CROP_FROM_STEPS optimiser steps; whole frames for shorter ones (README, "The training recipe")
CROP_MIN_SCALE = 0.5
CROP_FROM_STEPS = 1000


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file, read from its header (no full decode); without Pillow
    (a runtime-only install running `edgeseg info DATA`) by decoding it with OpenCV."""
    try:
        from PIL import Image
    except ImportError:
        height, width = read_image(path).shape[:2]
        return int(height), int(width)

    try:
        with Image.open(path) as img:
            return int(img.height), int(img.width)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the image size ({exc})") from exc


def median_aspect(sizes: Sequence[tuple[int, int]]) -> float:
    """The median width / height of images of these (h, w) sizes: the frame shape the derived
    input size follows and a given --size is checked against."""
    return float(np.median([w / h for h, w in sizes]))


def default_size(
    sizes: Sequence[tuple[int, int]], depth: int, long_side: int = DEFAULT_LONG_SIDE
) -> tuple[int, int]:
    """Input (height, width) for images of these (h, w) sizes: the median aspect ratio, the long
    side `long_side`, both sides multiples of 2**depth (and never larger than the median image's
    rounded up to one)."""
    if not sizes:
        raise DatasetError("no images to derive an input size from; pass --size")
    factor = 2**depth
    aspect = median_aspect(sizes)  # width / height
    longest = float(np.median([max(h, w) for h, w in sizes]))
    side = max(factor, min(long_side, math.ceil(longest / factor) * factor))
    side = side // factor * factor
    if aspect >= 1.0:
        height, width = side / aspect, float(side)
    else:
        height, width = float(side), side * aspect
    return (
        max(factor, round(height / factor) * factor),
        max(factor, round(width / factor) * factor),
    )


def steps_per_epoch(num_samples: int, batch: int, *, min_steps: int | None = None) -> int:
    """Optimiser steps per epoch: one pass over the training pairs, but at least `min_steps`
    (default: MIN_EPOCH_SAMPLES samples' worth)."""
    floor = math.ceil(MIN_EPOCH_SAMPLES / batch) if min_steps is None else min_steps
    return max(math.ceil(num_samples / batch), floor, 1)


def plan_steps(
    num_samples: int, batch: int, *, steps: int | None, epochs: int | None
) -> tuple[int, int]:
    """(steps per epoch, epochs) for a budget: `epochs` passes when given, else `steps` optimiser
    steps in total (DEFAULT_STEPS when None), so small datasets get as many steps as large ones,
    split into equal epochs (validation intervals) of at least one pass and MIN_EPOCH_STEPS: the
    budget as asked (2000 = 20 x 100; 250 = 2 x 125), or fewer than `epochs` steps more when it
    does not divide evenly, never a whole extra epoch."""
    if epochs is not None:
        return steps_per_epoch(num_samples, batch), epochs
    per_epoch = steps_per_epoch(num_samples, batch, min_steps=MIN_EPOCH_STEPS)
    total = DEFAULT_STEPS if steps is None else steps
    if total < 1:
        raise ValueError(f"steps must be >= 1, got {total}")
    if total < per_epoch:
        return total, 1
    count = total // per_epoch  # epochs at least per_epoch long
    return math.ceil(total / count), count


def default_min_scale(total_steps: int) -> float:
    """The crop augmentation a run of `total_steps` optimiser steps gets when --min-scale is not
    given: CROP_MIN_SCALE from CROP_FROM_STEPS steps on, else 1.0 (whole frames). Measured: crops
    cost 2-3 mIoU points in 400-600-step runs; in 2000-step ones they gained 1.3 (street) and 2.8
    (aerial), 0 on microscopy, as whole frames stop improving once a small set has been seen a
    few hundred times."""
    return CROP_MIN_SCALE if total_steps >= CROP_FROM_STEPS else 1.0


@dataclass(frozen=True)
class PixelCounts:
    """Training-mask pixels per class, and those labelled ignore_index (not trained or scored:
    the data's own 255s, classes left out, unlisted colours)."""

    per_class: np.ndarray  # int64, one count per class
    ignored: int

    @property
    def frequencies(self) -> np.ndarray:
        """Share of the scored pixels in each class: float64, sums to 1 (all 0 when none)."""
        shares: np.ndarray = self.per_class / max(float(self.per_class.sum()), 1.0)
        return shares

    @property
    def ignored_share(self) -> float:
        return self.ignored / max(float(self.per_class.sum()) + self.ignored, 1.0)

    def absent(self, class_names: Sequence[str]) -> list[str]:
        """The classes without a single training pixel: a model cannot learn them."""
        return [name for name, n in zip(class_names, self.per_class, strict=True) if n == 0]


def count_pixels(ds: Dataset, samples: Sequence[Sample]) -> PixelCounts:
    """Count the classes' and the ignored pixels of these samples' masks (masks only: no image
    is decoded)."""
    counts = np.zeros(256, np.int64)
    for sample in samples:
        counts += np.bincount(ds.read_mask(sample).ravel(), minlength=256)
    return PixelCounts(counts[: ds.num_classes].copy(), int(counts[ds.ignore_index]))


def class_weights(frequencies: Sequence[float] | np.ndarray, weighting: str) -> tuple[float, ...]:
    """Per-class loss weights from pixel frequencies f: 'none' all 1; 'sqrt' 1/sqrt(f); 'median'
    median(f)/f (median-frequency balancing). Classes absent from the data get 0; the others are
    scaled so the average pixel weighs 1 (sum f*w = 1) and capped at MAX_WEIGHT."""
    if weighting not in CLASS_WEIGHTINGS:
        raise ValueError(f"class weighting must be one of {CLASS_WEIGHTINGS}, got {weighting!r}")
    f = np.asarray(frequencies, np.float64)
    present = f > 0
    if weighting == "none" or not present.any():
        return tuple(1.0 for _ in f)
    w = np.zeros_like(f)
    if weighting == "sqrt":
        w[present] = 1.0 / np.sqrt(f[present])
    else:
        w[present] = np.median(f[present]) / f[present]
    w = np.minimum(w / float((f * w).sum()), MAX_WEIGHT)
    return tuple(float(v) for v in w)
