"""Confusion-matrix segmentation metrics: mIoU, per-class IoU, pixel accuracy, fw-IoU.

Accumulated image by image so evaluation streams with flat memory; pixels equal to the ignore index
count nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(
    target: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """num_classes x num_classes counts, rows = ground truth, columns = prediction."""
    t = np.asarray(target).reshape(-1).astype(np.int64)
    p = np.asarray(pred).reshape(-1).astype(np.int64)
    if t.shape != p.shape:
        raise ValueError(f"target and prediction differ in size: {t.shape} vs {p.shape}")
    keep = (t != ignore_index) & (t < num_classes) & (p >= 0) & (p < num_classes)
    idx = t[keep] * num_classes + p[keep]
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SegmentationScores:
    """Scores from one confusion matrix; classes absent from truth and prediction are NaN."""

    per_class_iou: np.ndarray
    miou: float
    pixel_accuracy: float
    fw_iou: float
    pixels: int

    def as_dict(self, class_names: tuple[str, ...] | list[str] | None = None) -> dict[str, object]:
        names = (
            list(class_names) if class_names else [str(i) for i in range(len(self.per_class_iou))]
        )
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "fw_iou": self.fw_iou,
            "pixels": self.pixels,
            "per_class_iou": {
                n: (None if np.isnan(v) else float(v))
                for n, v in zip(names, self.per_class_iou, strict=False)
            },
        }


def scores_from_confusion(cm: np.ndarray, *, truth_classes: bool = False) -> SegmentationScores:
    """mIoU averages only classes that occur (in truth or prediction), as is standard.

    `truth_classes`: only the classes the masks hold, so two models scored on the same images
    average the same classes. Otherwise one stray pixel of a class absent from the masks adds
    a 0 to one model's mean and not the other's (100 against 67 mIoU on 3 classes for models
    that differ in 1 pixel in 10,000): what a gate comparing them must not see."""
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    counted = (cm.sum(1) > 0) if truth_classes else (union > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(counted, tp / np.where(union > 0, union, 1), np.nan)
    total = cm.sum()
    freq = cm.sum(1) / total if total else np.zeros(len(cm))
    valid = ~np.isnan(iou)
    return SegmentationScores(
        per_class_iou=iou,
        miou=float(np.nanmean(iou)) if valid.any() else float("nan"),
        pixel_accuracy=float(tp.sum() / total) if total else float("nan"),
        fw_iou=float((freq[valid] * iou[valid]).sum()) if total else float("nan"),
        pixels=int(total),
    )


class MetricAccumulator:
    """Adds up confusion matrices over a stream of (target, prediction) pairs."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, target: np.ndarray, pred: np.ndarray) -> None:
        self.matrix += confusion_matrix(target, pred, self.num_classes, self.ignore_index)

    def scores(self, *, truth_classes: bool = False) -> SegmentationScores:
        """The scores so far (`truth_classes`: see scores_from_confusion)."""
        return scores_from_confusion(self.matrix, truth_classes=truth_classes)


def points(v: float) -> float:
    """v rounded to the 0.01 point the reports print, without a negative zero: an int8 model a
    hair better than float shows a drop of 0.00, not -0.00."""
    return round(v, 2) + 0.0
