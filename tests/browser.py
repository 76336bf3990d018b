"""Headless Chromium (Debian's `chromium` package) for the live-page tests; they skip without it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)


def _chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


def dump_dom(url: str, profile: Path, wait_ms: int = 3000) -> str:
    """The page's DOM after its scripts ran for `wait_ms` of (virtual) time."""
    done = _chromium(url, profile, f"--virtual-time-budget={wait_ms}", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, out: Path, size: tuple[int, int] = (1024, 700)) -> np.ndarray:
    """A PNG of the page at a `size` (width, height) window, read back as BGR."""
    done = _chromium(
        url,
        out.parent / "chromium-profile",
        f"--window-size={size[0]},{size[1]}",
        "--virtual-time-budget=3000",
        f"--screenshot={out}",
    )
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    image = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (size[1], size[0])
    return image


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the True pixels."""
    ys, xs = np.nonzero(mask)
    assert len(xs), "nothing matched"
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
