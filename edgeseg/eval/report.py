"""What `edgeseg check` shows people besides its Markdown table (`check_result.check_markdown`): a
picture grid of the images where float and int8 disagree most (input | float | int8 | differing
pixels), and the GitHub Actions job summary."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edgeseg.core.errors import WriteError
from edgeseg.core.fileio import append_text, check_output
from edgeseg.core.processing import colorize, draw_legend
from edgeseg.core.spec import ModelSpec
from edgeseg.eval.check_result import Disagreement
from edgeseg.eval.evaluate import EvalResult

CELL = 224  # each grid cell is CELL x CELL pixels; thumbnails keep their aspect ratio
HEADER = 30
BACKGROUND = (40, 40, 40)
DIFF_COLOR = (255, 0, 255)  # BGR magenta: pixels where the two models pick different classes
FONT = cv2.FONT_HERSHEY_SIMPLEX


# === Grid ===


def _cell_size(h: int, w: int) -> tuple[int, int]:
    s = min(CELL / h, CELL / w)
    return max(1, round(h * s)), max(1, round(w * s))


def _fit(img: np.ndarray, nearest: bool) -> np.ndarray:
    """Scale into a CELL x CELL canvas keeping the aspect ratio."""
    nh, nw = _cell_size(*img.shape[:2])
    small = cv2.resize(
        img, (nw, nh), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    )
    if small.ndim == 2:
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    canvas = np.full((CELL, CELL, 3), BACKGROUND, np.uint8)
    top, left = (CELL - nh) // 2, (CELL - nw) // 2
    canvas[top : top + nh, left : left + nw] = small
    return canvas


def _label(img: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45) -> None:
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    x, y = origin
    cv2.rectangle(img, (x, y), (x + tw + 6, y + th + base + 6), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 3, y + th + 3), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def make_disagreement(
    stem: str,
    fraction: float,
    frame: np.ndarray,
    float_map: np.ndarray,
    int8_map: np.ndarray,
    spec: ModelSpec,
) -> Disagreement:
    """Render the four thumbnails now, so the heap holds small images instead of full frames."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
    diff = (float_map != int8_map).astype(np.float32)
    dimmed = (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) * 0.4).astype(np.uint8)
    diff_panel = _fit(dimmed, nearest=False)
    # Area-resize the difference so a single differing pixel still shows in the thumbnail.
    nh, nw = _cell_size(*diff.shape)
    small = cv2.resize(diff, (nw, nh), interpolation=cv2.INTER_AREA) > 0
    top, left = (CELL - nh) // 2, (CELL - nw) // 2
    diff_panel[top : top + nh, left : left + nw][small] = DIFF_COLOR
    cells = (
        _fit(bgr, nearest=False),
        _fit(colorize(float_map, spec.palette), nearest=True),
        _fit(colorize(int8_map, spec.palette), nearest=True),
        diff_panel,
    )
    # a long name keeps its end: a set's names often share a long start and differ at the end
    _label(cells[0], stem if len(stem) <= 28 else f"{stem[:12]}..{stem[-14:]}", (0, 0))
    _label(cells[3], f"{100 * fraction:.2f}% differ", (0, 0))
    return Disagreement(stem, fraction, cells)


def _legend_strip(width: int, spec: ModelSpec) -> np.ndarray:
    strip = np.zeros((24 * spec.num_classes + 40, width, 3), np.uint8)
    draw_legend(strip, spec.class_names, spec.palette)
    rows = np.nonzero(strip.any(axis=(1, 2)))[0]
    return strip[: (rows[-1] + 4 if rows.size else 0)]


def disagreement_grid(
    worst: tuple[Disagreement, ...],
    spec: ModelSpec,
    float_eval: EvalResult | None,
    int8_eval: EvalResult,
    quant: str = "int8",
) -> np.ndarray:
    """One row per image, four labelled columns, the class legend underneath (BGR)."""
    titles = (
        "input",
        f"float: {float_eval.model.name}" if float_eval is not None else "float",
        f"{quant}: {int8_eval.model.name}",
        "differing pixels",
    )
    width = CELL * len(titles)
    header = np.zeros((HEADER, width, 3), np.uint8)
    for i, title in enumerate(titles):
        scale = 0.5
        while cv2.getTextSize(title, FONT, scale, 1)[0][0] > CELL - 8 and scale > 0.3:
            scale -= 0.05
        cv2.putText(
            header, title, (CELL * i + 4, HEADER - 10), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    rows = [np.hstack(d.cells) for d in worst]
    return np.vstack([header, *rows, _legend_strip(width, spec)])


def step_summary_path(path: str | None = None) -> Path | None:
    """The GitHub Actions job summary file ($GITHUB_STEP_SUMMARY), when running in Actions."""
    target = path or os.environ.get("GITHUB_STEP_SUMMARY")
    return Path(target) if target else None


def check_step_summary(path: str | None = None) -> None:
    """Before the scoring: a job summary that cannot be appended to is an error now (exit 4),
    not after minutes of scoring, where it also hid a regression's exit 1."""
    target = step_summary_path(path)
    if target is not None and not target.exists():
        check_output(target, label="$GITHUB_STEP_SUMMARY")
    elif target is not None and not target.is_file():
        raise WriteError(f"$GITHUB_STEP_SUMMARY {target}: not a regular file; cannot append")


def append_step_summary(markdown: str, path: str | None = None) -> Path | None:
    """Append to the GitHub Actions job summary ($GITHUB_STEP_SUMMARY) when running in Actions."""
    target = step_summary_path(path)
    if target is None:
        return None
    return append_text(target, markdown + "\n", label="$GITHUB_STEP_SUMMARY")
