"""Real video files for runtime tests, written from real dataset images (tests/ is on sys.path
because conftest.py lives there)."""

from __future__ import annotations

from pathlib import Path

import cv2

from edgeseg.core.processing import read_image


def write_video(path: Path, images: list[Path], size: int = 128, fps: float = 10.0) -> Path:
    """An MJPG .avi of the (grayscale) images, resized to size x size, at `fps`."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (size, size))
    assert writer.isOpened()
    for image in images:
        frame = cv2.cvtColor(read_image(image), cv2.COLOR_GRAY2BGR)
        writer.write(cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA))
    writer.release()
    return path
