"""What `edgeseg eval --save-overlays` writes per image: input | ground truth | prediction side by
side, the class legend in its own column beside them (never over the picture), and a caption with
the image's name and its own IoU, readable even for small (160 px) images."""

from __future__ import annotations

import cv2
import numpy as np

from edgeseg.core.metrics import confusion_matrix, scores_from_confusion
from edgeseg.core.processing import draw_legend, overlay
from edgeseg.core.spec import ModelSpec

MIN_PANEL = 256  # smaller images are enlarged so the text and the classes stay legible
CAPTION = 28
GAP = 4
BACKGROUND = (30, 30, 30)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def image_miou(mask: np.ndarray, pred: np.ndarray, spec: ModelSpec) -> float:
    """The mean IoU of one image over the classes present in its truth or prediction."""
    cm = confusion_matrix(mask, pred, spec.num_classes, spec.ignore_index)
    return float(scores_from_confusion(cm).miou)


def _scaled(img: np.ndarray, scale: float, nearest: bool) -> np.ndarray:
    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)


def _legend_column(height: int, spec: ModelSpec) -> np.ndarray:
    """A dark column just wide enough for `draw_legend` (which draws in an image's top-right)."""
    scale = 0.4
    text = max(cv2.getTextSize(n, FONT, scale, 1)[0][0] for n in spec.class_names)
    col = np.full((height, text + 40, 3), BACKGROUND, np.uint8)
    return draw_legend(col, spec.class_names, spec.palette)


def _caption(width: int, text: str, titles: list[tuple[int, str]]) -> np.ndarray:
    band = np.full((CAPTION * 2, width, 3), BACKGROUND, np.uint8)
    cv2.putText(band, text, (6, 19), FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    for x, title in titles:
        cv2.putText(band, title, (x + 4, CAPTION + 19), FONT, 0.45, (200, 200, 200), 1, cv2.LINE_AA)
    return band


def eval_overlay(
    stem: str, frame: np.ndarray, mask: np.ndarray, pred: np.ndarray, spec: ModelSpec
) -> np.ndarray:
    """input | ground truth | prediction | legend, captioned `stem  IoU 0.734` (BGR)."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
    scale = max(1.0, MIN_PANEL / min(bgr.shape[:2]))
    panels = [
        _scaled(bgr, scale, nearest=False),
        _scaled(overlay(bgr, mask, spec.palette, 0.6), scale, nearest=True),
        _scaled(overlay(bgr, pred, spec.palette, 0.6), scale, nearest=True),
    ]
    h = panels[0].shape[0]
    panels.append(_legend_column(h, spec))
    gap = np.full((h, GAP, 3), BACKGROUND, np.uint8)
    row = np.hstack([p for panel in panels for p in (panel, gap)][:-1])
    titles, x = [], 0
    for panel, title in zip(panels, ("input", "ground truth", "prediction"), strict=False):
        titles.append((x, title))
        x += panel.shape[1] + GAP
    miou = image_miou(mask, pred, spec)
    iou = "mIoU n/a" if np.isnan(miou) else f"mIoU {miou:.3f} (this image)"
    return np.vstack([_caption(row.shape[1], f"{stem}   {iou}", titles), row])
