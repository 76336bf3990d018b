"""Calibration quality: which classes the calibration frames actually show.

int8 ranges come only from what calibration saw; a class that never appears there (say, water in
an aerial set) leaves the activations it drives uncalibrated and clipped. When the `--calib` folder
is a dataset (images/ + masks/), count each class's pixels in the masks of the SAME frames
calibration picks (same file list, same seeded shuffle), at model input size; warn about absent
classes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.convert.calibration import find_calibration_images
from edgeseg.core.errors import DatasetError, shortlist
from edgeseg.core.processing import prepare_mask
from edgeseg.core.spec import ModelSpec
from edgeseg.data.dataset import Dataset, open_dataset

RARE_FRACTION = 0.001  # below 0.1 % of the calibration pixels a class is reported as rare


@dataclass(frozen=True)
class ClassCoverage:
    """Per-class pixel and image counts in the calibration frames' masks (ignore index excluded)."""

    class_names: tuple[str, ...]
    pixels: tuple[int, ...]
    images: tuple[int, ...]  # calibration frames in which the class appears at all
    frames: int  # calibration frames that had a mask
    frames_without_mask: int = 0
    # the calibration data's own class names when they are not the model's (nothing counted)
    other_names: tuple[str, ...] = ()

    @property
    def total_pixels(self) -> int:
        return int(sum(self.pixels))

    @property
    def fractions(self) -> tuple[float, ...]:
        total = self.total_pixels
        return tuple((p / total) if total else 0.0 for p in self.pixels)

    @property
    def absent(self) -> tuple[str, ...]:
        return tuple(n for n, p in zip(self.class_names, self.pixels, strict=True) if p == 0)

    @property
    def rare(self) -> tuple[str, ...]:
        return tuple(
            n
            for n, p, f in zip(self.class_names, self.pixels, self.fractions, strict=True)
            if p > 0 and f < RARE_FRACTION
        )

    def warnings(self) -> list[str]:
        """One line per problem: masks of other classes than the model's (another data set);
        absent classes (uncalibrated) and very rare ones."""
        if self.other_names:
            return [
                f"the calibration data's masks name other classes ({shortlist(self.other_names)}) "
                f"than the model's ({shortlist(self.class_names)}); calibration frames should show "
                "what the model will see (class coverage not counted)"
            ]
        out = []
        if self.absent:
            out.append(
                f"class(es) {', '.join(repr(n) for n in self.absent)} never appear in the "
                f"{self.frames} calibration frame(s): the activations they drive are not "
                "calibrated and may clip; add frames showing them to --calib "
                "(or raise --calib-count)"
            )
        if self.rare:
            out.append(
                f"class(es) {', '.join(repr(n) for n in self.rare)} cover under "
                f"{100 * RARE_FRACTION:g}% of the calibration pixels; consider more frames "
                "showing them"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "frames_without_mask": self.frames_without_mask,
            "classes": {
                n: {"pixels": p, "fraction": round(f, 6), "images": i}
                for n, p, f, i in zip(
                    self.class_names, self.pixels, self.fractions, self.images, strict=True
                )
            },
            "absent": list(self.absent),
            "rare": list(self.rare),
        }


def calibration_paths(folder: str | Path, count: int, seed: int = 0) -> list[Path]:
    """The image files `representative_dataset(folder, spec, count, seed)` draws, in its order.

    Mirrors its seeded shuffle; it may skip unreadable files, so this is the intended selection.
    """
    paths = find_calibration_images(folder)
    order = list(range(len(paths)))
    random.Random(seed).shuffle(order)
    return [paths[i] for i in order[:count]]


def class_coverage(
    calib_dir: str | Path, spec: ModelSpec, *, count: int = 200, seed: int = 0
) -> ClassCoverage | None:
    """Class coverage of the calibration frames, or None when `calib_dir` holds no masks.

    Masks are decoded with the dataset's own encoding and resized like training masks
    (`prepare_mask`, nearest), so the counts are what the model input covers.
    """
    folder = Path(calib_dir)

    def opened(classes: tuple[str, ...] | None) -> Dataset:
        return open_dataset(
            folder,
            classes=classes,
            val_fraction=0.0,  # train and val are counted together: no split needed
            ignore_index=spec.ignore_index,
            validate=False,
            ignore_classes=spec.ignored_classes,
            unlisted_colors=spec.unlisted_colors,
        )

    try:  # with the data's own class names, when it has some: another set's say so
        ds = opened(None)
    except DatasetError:
        try:  # a folder of images alone (calib_data/) is no dataset: no masks, no coverage
            ds = opened(None if spec.ignored_classes else spec.class_names)
        except DatasetError:
            return None  # no masks, or none usable: calibration works, coverage is unknown
    if ds.class_names != spec.class_names:
        return ClassCoverage(
            spec.class_names,
            (0,) * spec.num_classes,
            (0,) * spec.num_classes,
            0,
            other_names=ds.class_names,
        )
    by_image = {s.image.resolve(): s for s in (*ds.train, *ds.val)}
    n = spec.num_classes
    pixels = np.zeros(n, np.int64)
    images = np.zeros(n, np.int64)
    frames = missing = 0
    for path in calibration_paths(folder, count, seed):
        sample = by_image.get(path.resolve())
        if sample is None:
            missing += 1
            continue
        mask = ds.read_mask(sample)
        counts = np.bincount(prepare_mask(mask, spec).ravel(), minlength=256)[:n]
        pixels += counts
        images += counts > 0
        frames += 1
    if frames == 0:
        return None
    return ClassCoverage(
        spec.class_names,
        tuple(int(v) for v in pixels),
        tuple(int(v) for v in images),
        frames,
        missing,
    )
