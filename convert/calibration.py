"""Representative images for int8 calibration: deterministic sampling, the SHARED pre-processing
(`edgeseg.core.processing.prepare_image`, exactly what the runtime feeds), and an honest count of
what was used, skipped or converted on the way.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.errors import ConversionError, DatasetError
from edgeseg.core.processing import IMAGE_EXTS, list_files, prepare_image, read_image
from edgeseg.core.spec import ModelSpec
from edgeseg.data.layout import VOC_IMAGES, image_dir, paired_images, split_dirs

MIN_RECOMMENDED = 20
Progress = Callable[[int, int], None]
Frame = np.ndarray | str | Path


def find_calibration_images(folder: str | Path) -> list[Path]:
    """Image files for calibration: FOLDER/images, the images of a dataset's training and
    held-out splits (train/images + val/images, one folder per sample, masks beside the images,
    Pascal VOC's JPEGImages/: every layout `edgeseg train` reads), or FOLDER itself."""
    folder = Path(folder)
    if folder.is_file():
        raise ConversionError(f"--calib {folder}: is a file; --calib must be a folder of images")
    if not folder.is_dir():
        raise ConversionError(
            f"--calib {folder}: folder not found (give a folder of images like the frames the "
            "model will see)"
        )
    try:  # a dataset's splits, laid out in any way `edgeseg train` reads
        if (images := image_dir(folder)) is not None:  # its splits when it holds them
            split = split_dirs(images)
            dirs = [d for d in split if d is not None] if split else [images]
        elif pairs := paired_images(folder):  # one folder per sample, masks beside, VOC
            return pairs
        else:
            split = split_dirs(folder)
            voc = folder / VOC_IMAGES  # a VOC folder without class masks still calibrates
            splits = [i for d in split or () if d and (i := image_dir(d)) is not None]
            dirs = splits or ([voc] if voc.is_dir() else [folder])
    except DatasetError as exc:  # e.g. two held-out split folders
        raise ConversionError(str(exc)) from None
    paths = [p for d in dirs for p in list_files(d)]
    if not paths:
        where = ", ".join(str(d) for d in dirs)
        raise ConversionError(
            f"{folder}: no calibration images found in {where} "
            f"(expected {'/'.join(IMAGE_EXTS)} files)"
        )
    return paths


@dataclass
class CalibrationStats:
    """What calibration actually saw; goes into the conversion report."""

    requested: int
    candidates: int = 0
    used: int = 0
    skipped: list[str] = field(default_factory=list)  # unreadable files, "path: reason"
    channel_mismatch: int = 0  # gray images for an RGB model or the reverse (converted)
    value_min: int | None = None
    value_max: int | None = None
    warnings: list[str] = field(default_factory=list)
    input_range_pinned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "candidates": self.candidates,
            "used": self.used,
            "skipped": len(self.skipped),
            "skipped_files": self.skipped[:20],
            "channel_mismatch": self.channel_mismatch,
            "input_range": [self.value_min, self.value_max],
            "input_range_pinned": self.input_range_pinned,
            "warnings": self.warnings,
        }


@dataclass
class CalibrationSet:
    """Model-ready calibration pixels; calling it yields what `TFLiteConverter` wants."""

    pixels: list[np.ndarray]
    stats: CalibrationStats
    progress: Progress | None = None

    def __len__(self) -> int:
        return len(self.pixels)

    def __call__(self) -> Iterator[list[np.ndarray]]:
        """Yield `[float32 (1, H, W, C)]` raw 0..255 batches (the model normalises itself)."""
        total = len(self.pixels)
        for i, px in enumerate(self.pixels, start=1):
            yield [px[None].astype(np.float32)]
            if self.progress is not None:
                self.progress(i, total)


def _channels_of(frame: np.ndarray) -> int:
    return 1 if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1) else 3


def _trained_on(spec: ModelSpec, source: object) -> bool:
    """Whether SOURCE is the folder the model was trained on (config.json's split record, in
    the .tflite metadata too): its gray frames are what training saw, nothing to warn about."""
    trained = (spec.extra.get("split") or {}).get("data")
    if not isinstance(source, str | Path) or not isinstance(trained, str):
        return False
    try:
        return Path(source).resolve() == Path(trained).resolve()
    except OSError:
        return False


def representative_dataset(
    frames_or_paths: Sequence[Frame] | str | Path,
    spec: ModelSpec,
    count: int = 200,
    seed: int = 0,
    progress: Progress | None = None,
) -> CalibrationSet:
    """Pick up to `count` frames (seeded shuffle) and prepare each exactly like the runtime.

    A folder path is searched with `find_calibration_images`. Unreadable files are skipped and
    counted, gray-vs-RGB mismatches are converted and counted; no usable frame is a ConversionError.
    `progress(done, total)` is called as the converter consumes the frames.
    """
    if isinstance(frames_or_paths, (str, Path)):
        items: list[Frame] = list(find_calibration_images(frames_or_paths))
        origin = str(frames_or_paths)
    else:
        items = list(frames_or_paths)
        origin = "the given frames"
    if count < 1:
        raise ConversionError(f"calibration count must be >= 1, got {count}")
    stats = CalibrationStats(requested=count, candidates=len(items))
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    pixels: list[np.ndarray] = []
    for idx in order:
        if len(pixels) >= count:
            break
        item = items[idx]
        try:
            frame = item if isinstance(item, np.ndarray) else read_image(item)
            if _channels_of(frame) != spec.channels:
                stats.channel_mismatch += 1
            px, _ = prepare_image(frame, spec)
        except DatasetError as exc:
            stats.skipped.append(str(exc))
            continue
        pixels.append(px)
        lo, hi = int(px.min()), int(px.max())
        stats.value_min = lo if stats.value_min is None else min(stats.value_min, lo)
        stats.value_max = hi if stats.value_max is None else max(stats.value_max, hi)
    stats.used = len(pixels)
    if pixels and (stats.value_min != 0 or stats.value_max != 255):
        # Pin the input range to the full 0..255 (two pixels of one frame), so a uint8 input gets
        # scale 1 / zero point 0: camera bytes pass straight in and no pixel value is clipped.
        first = pixels[0].copy()
        first.reshape(-1, first.shape[-1])[0] = 0
        first.reshape(-1, first.shape[-1])[-1] = 255
        pixels[0] = first
        stats.input_range_pinned = True
    if stats.skipped:
        stats.warnings.append(
            f"skipped {len(stats.skipped)} unreadable calibration image(s), "
            f"first: {stats.skipped[0]}"
        )
    if stats.channel_mismatch and not _trained_on(spec, frames_or_paths):
        if spec.channels == 3:  # what training does with gray images too: fine for gray data
            what = (
                "are grayscale and were repeated to the model's RGB input, as training does with "
                "gray images; if the model was trained on colour frames, calibrate on those"
            )
        else:
            what = (
                "are colour and were converted to the model's grayscale input; check --calib "
                "points at the training domain"
            )
        stats.warnings.append(f"{stats.channel_mismatch} calibration image(s) in {origin} {what}")
    if not pixels:
        raise ConversionError(
            f"{origin}: no usable calibration images ({len(stats.skipped)} unreadable of "
            f"{len(items)}); point --calib at real frames like the ones the model will see"
        )
    if len(pixels) < MIN_RECOMMENDED:
        stats.warnings.append(
            f"only {len(pixels)} calibration image(s) from {origin} (at least {MIN_RECOMMENDED} "
            "recommended): ranges from too few frames clip real activations and cost accuracy"
        )
    return CalibrationSet(pixels, stats, progress)
