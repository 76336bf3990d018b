"""edgeseg's own synthetic dataset: top-down scenes of roads, buildings, vegetation and vehicles on
textured ground, written in the standard layout so every command can be tried without real data.

Deterministic for a seed; hard enough that a small U-Net must learn texture and shape (grey roofs vs
asphalt, trees vs grass, shadows, lighting, colour casts), easy enough to learn in minutes on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.core.errors import DatasetError
from edgeseg.core.fileio import atomic_dir, write_image, write_json, write_text
from edgeseg.core.spec import parse_size
from edgeseg.data.scene import CLASS_NAMES, PALETTE, draw_vehicles, render_scene

__all__ = [
    "CALIB_SEED",
    "CLASS_NAMES",
    "PALETTE",
    "generate_frames",
    "generate_synthetic_dataset",
    "render_sample",
    "write_calibration_frames",
]

CALIB_SEED = 1234  # calib_data/ must not share scenes with the default (seed 0) training set
_STREAMS = {"train": 0, "val": 1, "frames": 2, "calib": 3}


# === Camera ===


@dataclass(frozen=True)
class Look:
    """Per-sequence photometric settings: lighting gradient, colour cast, blur and sensor noise."""

    gradient: tuple[float, float]
    gain: tuple[float, float, float]
    contrast: float
    blur: float
    noise: float


def random_look(rng: np.random.Generator, u: float) -> Look:
    a, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.45) / u
    gain = rng.uniform(0.78, 1.22) * rng.uniform(0.9, 1.1, 3)
    return Look(
        (strength * math.cos(a), strength * math.sin(a)),
        (float(gain[0]), float(gain[1]), float(gain[2])),
        float(rng.uniform(0.8, 1.15)),
        float(rng.uniform(0.0, 0.9) * u / 256),
        float(rng.uniform(2.0, 7.0)),
    )


def apply_look(img: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """RGB float layers -> the BGR uint8 frame a camera would deliver."""
    h, w = img.shape[:2]
    ramp = (np.arange(w, dtype=np.float32) - w / 2) * look.gradient[0]
    ramp = ramp[None, :] + ((np.arange(h, dtype=np.float32) - h / 2) * look.gradient[1])[:, None]
    out = img * np.clip(1 + ramp, 0.55, 1.45)[..., None] * np.array(look.gain, np.float32)
    out = (out - 128) * look.contrast + 128
    if look.blur > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), look.blur)
    out += rng.normal(0, look.noise, out.shape).astype(np.float32)
    return np.ascontiguousarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)[:, :, ::-1])


# === Writers ===


def render_sample(
    seed: int, index: int, size: tuple[int, int], stream: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """One independent scene: (BGR uint8 image, uint8 class-index mask) of size (H, W)."""
    rng = np.random.default_rng([seed, _STREAMS[stream], index])
    h, w = size
    scene = render_scene(rng, h, w)
    draw_vehicles(scene.image, scene.label, scene)
    return apply_look(scene.image, random_look(rng, scene.unit), rng), scene.label


def generate_frames(
    count: int, size: tuple[int, int] = (240, 320), seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(BGR frame, class mask) pairs of a camera panning over one scene while cars drive by.

    Consecutive frames are coherent (a smooth sweep back and forth over a 4-frame-wide strip), so
    they make a believable demo video; sensor noise is fresh every frame.
    """
    h, w = size
    rng = np.random.default_rng([seed, _STREAMS["frames"]])
    strip_w = 4 * w if count > 1 else w
    scene = render_scene(rng, h, strip_w, unit=min(h, w))
    look = random_look(rng, scene.unit)
    travel = strip_w - w
    speed = max(1.0, w / 90)
    for t in range(count):
        p = (t * speed) % (2 * travel) if travel else 0.0
        x = int(p if p <= travel else 2 * travel - p)
        img = scene.image[:, x : x + w].copy()
        lab = scene.label[:, x : x + w].copy()
        draw_vehicles(img, lab, scene, offset_x=x, t=t)
        yield apply_look(img, look, rng), lab


def generate_synthetic_dataset(
    out: str | Path,
    *,
    count_train: int = 96,
    count_val: int = 24,
    size: int | str | tuple[int, int] = (256, 256),
    seed: int = 0,
    image_format: str = "jpg",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write OUT/labels.txt and OUT/{train,val}/{images,masks}; returns OUT.

    Built in a hidden sibling folder and renamed into place at the end, so an interrupted run never
    leaves a dataset that looks complete. Masks are index PNGs (0..4), images JPEG or PNG. `size`
    is N, "N", "HxW" or (height, width), as `edgeseg.train` takes it.
    """
    out = Path(out)
    hw = parse_size(size, "size")
    if image_format not in ("jpg", "png"):
        raise DatasetError(f"image format must be 'jpg' or 'png', got {image_format!r}")
    if count_train < 1 or count_val < 0:
        raise DatasetError(
            f"need count_train >= 1 and count_val >= 0, got {count_train}, {count_val}"
        )
    if min(hw) < 32:
        raise DatasetError(
            f"size {hw[0]}x{hw[1]} (height x width): synthetic images must be at least 32x32; "
            "pass e.g. size=256"
        )
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: already exists; choose a new folder or pass overwrite")
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if image_format == "jpg" else []
    total, done = count_train + count_val, 0
    with atomic_dir(out) as tmp:
        write_text(tmp / "labels.txt", "\n".join(CLASS_NAMES) + "\n")
        for split, n in (("train", count_train), ("val", count_val)):
            images, masks = tmp / split / "images", tmp / split / "masks"
            images.mkdir(parents=True)
            masks.mkdir(parents=True)
            for i in range(n):
                image, mask = render_sample(seed, i, hw, split)
                name = f"{split}_{i:04d}"
                write_image(images / f"{name}.{image_format}", image, params=params)
                write_image(masks / f"{name}.png", mask)
                done += 1
                if progress:
                    progress(done, total)
        meta = {
            "generator": "edgeseg.data.synthetic",
            "seed": seed,
            "size": list(hw),
            "count_train": count_train,
            "count_val": count_val,
            "palette": PALETTE,
        }
        write_json(tmp / "synthetic.json", meta)
    return out


def write_calibration_frames(
    out: str | Path,
    *,
    count: int = 32,
    size: tuple[int, int] = (256, 256),
    seed: int = CALIB_SEED,
    quality: int = 85,
) -> list[Path]:
    """Write OUT/calib_NNN.jpg: independent synthetic scenes for int8 calibration (no masks).

    Each file is written to a temp name and renamed; stale calib_*.jpg beyond `count` are removed.
    """
    out = Path(out)
    paths = []
    for i in range(count):
        image, _ = render_sample(seed, i, size, "calib")
        path = out / f"calib_{i:03d}.jpg"
        write_image(path, image, params=[cv2.IMWRITE_JPEG_QUALITY, quality], mkdir=True)
        paths.append(path)
    for stale in sorted(out.glob("calib_*.jpg")):
        if stale not in paths:
            stale.unlink()
    return paths
