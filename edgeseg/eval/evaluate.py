"""`edgeseg eval`: score one model (.keras or .tflite) on labelled images with flat memory."""

from __future__ import annotations

import contextlib
import operator
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsIndex

import numpy as np

from edgeseg.core.errors import DatasetError, EdgesegError, path_argument
from edgeseg.core.fileio import write_image, write_json
from edgeseg.core.metrics import MetricAccumulator, SegmentationScores
from edgeseg.core.spec import ModelSpec
from edgeseg.eval.common import (
    Progress,
    check_apart_from_data,
    check_model_classes,
    count_items,
    iter_chunks,
    open_eval_data,
)
from edgeseg.eval.overlays import eval_overlay
from edgeseg.eval.predictor import Predictor, open_predictor

if TYPE_CHECKING:
    from edgeseg.runtime.segmenter import Segmenter


@dataclass(frozen=True)
class EvalResult:
    """Scores of one model on one set of images, plus how long a prediction took."""

    model: Path
    data: Path
    spec: ModelSpec
    scores: SegmentationScores
    images: int
    mean_latency_ms: float
    confusion: np.ndarray
    warnings: tuple[str, ...] = ()
    overlays: Path | None = None
    notes: tuple[str, ...] = ()  # what was scored, where it is not the obvious (held-out pairs)

    def __repr__(self) -> str:
        """The headline, not the confusion matrix: model, data, images, mIoU, pixel accuracy."""
        return (
            f"EvalResult(model={str(self.model)!r}, data={str(self.data)!r}, images={self.images}, "
            f"miou={self.miou:.4f}, pixel_accuracy={self.pixel_accuracy:.4f})"
        )

    @property
    def miou(self) -> float:
        """Mean IoU over the classes present (0..1): the headline score, as `scores.miou`."""
        return self.scores.miou

    @property
    def pixel_accuracy(self) -> float:
        """Share of labelled pixels predicted right (0..1), as `scores.pixel_accuracy`."""
        return self.scores.pixel_accuracy

    @property
    def fw_iou(self) -> float:
        """Frequency-weighted IoU (0..1), as `scores.fw_iou`: large classes count more."""
        return self.scores.fw_iou

    @property
    def per_class_iou(self) -> dict[str, float | None]:
        """IoU per class name; None for a class absent from both truth and prediction."""
        return iou_by_name(self.scores, self.spec.class_names)

    def to_dict(self) -> dict[str, Any]:
        """The scores, latency, confusion matrix and notes as JSON-ready data (`eval --out`)."""
        s = self.scores
        return {
            "model": str(self.model),
            "data": str(self.data),
            "images": self.images,
            "miou": _num(s.miou),
            "pixel_accuracy": _num(s.pixel_accuracy),
            "fw_iou": _num(s.fw_iou),
            "per_class_iou": self.per_class_iou,
            "pixels": s.pixels,
            "mean_latency_ms": round(self.mean_latency_ms, 3),
            "class_names": list(self.spec.class_names),
            "confusion_matrix": self.confusion.tolist(),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    def write_json(self, path: str | Path, *, label: str = "") -> Path:
        """The scores as JSON at PATH; `label` names the option in a write error ('--out')."""
        path = Path(path)
        write_json(path, self.to_dict(), label=label, mkdir=True)
        return path


@dataclass
class Timer:
    seconds: float = 0.0
    frames: int = 0

    @property
    def mean_ms(self) -> float:
        return 1000.0 * self.seconds / self.frames if self.frames else float("nan")


def iou_by_name(scores: SegmentationScores, names: tuple[str, ...]) -> dict[str, float | None]:
    """Per-class IoU keyed by class name; None for classes absent from truth and prediction."""
    return {n: _num(float(v)) for n, v in zip(names, scores.per_class_iou, strict=False)}


def _num(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def timed_predict(predictor: Predictor, frames: list[np.ndarray], timer: Timer) -> list[np.ndarray]:
    """predict_many, adding the wall time to `timer` (amortised per frame for batched models)."""
    start = time.perf_counter()
    maps = predictor.predict_many(frames)
    timer.seconds += time.perf_counter() - start
    timer.frames += len(frames)
    return maps


def warm_up(predictor: Predictor) -> None:
    """One untimed prediction, so one-off set-up (XNNPACK packing, Keras tracing) is not latency."""
    spec = predictor.spec
    predictor.predict(np.zeros((spec.input_height, spec.input_width, 3), np.uint8))


def check_limit(limit: object) -> int | None:
    """`limit` as None or a whole number of images >= 1; a one-line EdgesegError otherwise (1.5,
    True, -1 or "2" would silently score some other number of images)."""
    if limit is None:
        return None
    n = 0
    if isinstance(limit, SupportsIndex) and not isinstance(limit, bool):
        with contextlib.suppress(TypeError):  # a float array's __index__ refuses
            n = operator.index(limit)  # int and numpy integers; never float or str
    if n < 1:
        raise EdgesegError(f"limit={limit!r}: pass a whole number of images >= 1, or None for all")
    return n


def no_pixels(data: str | Path, ignore_index: int) -> str:
    """The error for data whose every mask pixel is ignored: nothing to score."""
    return (
        f"{data}: no pixels to score: every mask pixel is {ignore_index} (ignored) or of a "
        "class left out; check the masks, or --ignore-class"
    )


def evaluate(
    model_path: str | Path | Segmenter,
    data_dir: str | Path,
    *,
    save_overlays: str | Path | None = None,
    progress: Progress | None = None,
    limit: int | None = None,
    threads: int | None = None,
) -> EvalResult:
    """Score a model on DATA (its val split) or DATA/val: mIoU, per-class IoU, accuracy, latency.

    Images stream one small chunk at a time, so memory stays flat for thousands of images.
    """
    limit = check_limit(limit)
    predictor = open_predictor(model_path, threads=threads)
    return evaluate_predictor(
        predictor, data_dir, save_overlays=save_overlays, progress=progress, limit=limit
    )


def evaluate_predictor(
    predictor: Predictor,
    data_dir: str | Path,
    *,
    save_overlays: str | Path | None = None,
    progress: Progress | None = None,
    limit: int | None = None,
) -> EvalResult:
    """`evaluate` with an already opened predictor (lets callers reuse a loaded model)."""
    limit = check_limit(limit)
    spec = predictor.spec
    ds, split, notes = open_eval_data(data_dir, spec)
    if save_overlays is not None:
        check_apart_from_data(Path(save_overlays), ds, "--save-overlays")
    warnings = check_model_classes(ds, spec, predictor.path)
    total = count_items(ds, split, limit)
    acc = MetricAccumulator(spec.num_classes, ds.ignore_index)
    timer = Timer()
    out_dir = (
        path_argument(save_overlays, "--save-overlays", "a folder for the overlays")
        if save_overlays is not None
        else None
    )
    warm_up(predictor)
    done = 0
    for chunk in iter_chunks(ds, split, limit, getattr(predictor, "batch_size", 1)):
        maps = timed_predict(predictor, [image for _, image, _ in chunk], timer)
        for (sample, image, mask), pred in zip(chunk, maps, strict=True):
            acc.update(mask, pred)
            if out_dir is not None:
                picture = eval_overlay(sample.stem, image, mask, pred, spec)
                write_image(
                    out_dir / f"{sample.stem}.png", picture, label="--save-overlays", mkdir=True
                )
        done += len(chunk)
        if progress:
            progress(done, total)
    if done == 0:
        raise DatasetError(f"{data_dir}: no images to evaluate (--limit {limit})")
    if not acc.matrix.any():  # every mask pixel ignored: no score, not a regression (exit 1)
        raise DatasetError(no_pixels(data_dir, acc.ignore_index))
    return EvalResult(
        model=Path(predictor.path),
        data=Path(data_dir),
        spec=spec,
        scores=acc.scores(),
        images=done,
        mean_latency_ms=timer.mean_ms,
        confusion=acc.matrix.copy(),
        warnings=tuple(warnings),
        notes=tuple(notes),
        overlays=out_dir,
    )
