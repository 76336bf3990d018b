"""Shared by the runtime benchmarks: U-Nets converted by the real converter (timing does not
depend on the weights, so they are not trained) and a video written from real images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from _common import DATA, DATA_HINT, input_error

from edgeseg.core.errors import WriteError
from edgeseg.core.fileio import atomic_path
from edgeseg.core.processing import read_image
from edgeseg.core.spec import ModelSpec

MEMBRANE = DATA / "isbi2012_membrane"
AERIAL = DATA / "dubai_aerial"


def require_data(*folders: Path) -> None:
    """The real data sets a benchmark reads must be there before it builds anything: a missing
    one is one line and exit 2 (bad input), not a traceback read as a FAIL."""
    for folder in folders:
        if not (folder / "train" / "images").is_dir():
            input_error(f"data set {folder} not found (no train/images in it); {DATA_HINT}")


def build_tflite(
    out: Path,
    size: int,
    upsample: str,
    quant: str,
    depth: int = 4,
    filters: int = 16,
    *,
    rgb: bool = False,
    io: str = "int8",
) -> Path:
    """build_unet -> edgeseg.convert export (int8 calibrated on real images / float32).

    Gray: the 2-class membrane U-Net; rgb=True: a 5-class RGB U-Net calibrated on aerial tiles.
    """
    if out.exists():
        return out
    from edgeseg.convert.calibration import representative_dataset
    from edgeseg.convert.converter import export
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.train.model import build_unet

    if rgb:
        names = tuple((AERIAL / "labels.txt").read_text().split())
        spec, images = ModelSpec(size, size, names, channels=3), AERIAL / "train" / "images"
    else:
        spec = ModelSpec(size, size, ("membrane", "cell_interior"), channels=1)
        images = MEMBRANE / "train" / "images"
    shape = (size, size, spec.channels)
    model = build_unet(
        shape, spec.num_classes, depth=depth, base_filters=filters, upsample=upsample
    )
    options = ConvertOptions(quant=quant, io=io, calib_count=8)
    rep = None
    if quant == "int8":
        rep = representative_dataset(images, spec, count=8)
    export(model, spec, options, out, rep)
    return out


def write_video(out: Path, frames: int, size: int, fps: float = 30.0) -> Path:
    """An MJPG AVI of `frames` frames cycling through the real membrane images."""
    if out.exists():
        return out
    images = sorted((MEMBRANE / "train" / "images").iterdir())
    if not images:
        input_error(f"no images under {MEMBRANE}; {DATA_HINT}")
    decoded = [
        cv2.resize(cv2.cvtColor(read_image(p), cv2.COLOR_GRAY2BGR), (size, size)) for p in images
    ]
    return _write_frames(out, decoded, frames, fps, (size, size))


def write_camera_video(out: Path, frames: int, size: tuple[int, int] = (640, 480)) -> Path:
    """An MJPG AVI of `frames` camera-size (WxH) frames cycling through the real aerial tiles."""
    if out.exists():
        return out
    images = sorted((AERIAL / "train" / "images").iterdir())
    if not images:
        input_error(f"no images under {AERIAL}; {DATA_HINT}")
    decoded = [cv2.resize(read_image(p), size, interpolation=cv2.INTER_AREA) for p in images]
    return _write_frames(out, decoded, frames, 30.0, size)


def _write_frames(
    out: Path, images: list[np.ndarray], frames: int, fps: float, size: tuple[int, int]
) -> Path:
    """FRAMES frames cycling through IMAGES into an MJPG AVI at OUT, published whole (the one
    atomic writer): a run stopped while writing it left a short video that --workdir reused
    as if it held every frame."""
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
        if not writer.isOpened():
            raise WriteError(f"{out}: OpenCV cannot write an MJPG video here")
        try:
            for i in range(frames):
                writer.write(images[i % len(images)])
        finally:
            writer.release()
    return out
