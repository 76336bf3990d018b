"""The live page in a real headless browser (Debian's chromium), served by MjpegServer on
127.0.0.1: legend and model name in the DOM, stats polled from /stats, the picture scaled to the
window, and the "stream ended" state. Skips when chromium is not installed."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser import bounding_box, dump_dom, needs_chromium, screenshot

from edgeseg.runtime.mjpeg import MjpegServer

pytestmark = needs_chromium


@pytest.fixture
def live() -> Iterator[tuple[MjpegServer, np.ndarray]]:
    """A server publishing a 160x120 frame (red right half) at ~20 FPS, with live stats."""
    frames = [0]
    server = MjpegServer(
        "127.0.0.1:0",
        model="membrane<b>_int8</b>.tflite",
        class_names=("background", "<img src=x onerror=alert(1)>"),
        palette=((32, 32, 32), (0, 200, 0)),  # no red: red pixels are the picture
        stats=lambda: {"fps": 20.0, "frames": frames[0], "dropped": 0, "stages": {"invoke": 7.5}},
    )
    image = np.zeros((120, 160, 3), np.uint8)
    image[:, 80:] = (0, 0, 255)
    stop = threading.Event()

    def publish() -> None:
        while not stop.wait(0.05):
            server.publish(image)
            frames[0] += 1

    worker = threading.Thread(target=publish, daemon=True)
    worker.start()
    yield server, image
    stop.set()
    worker.join()
    server.close()


def test_page_shows_legend_model_and_live_stats(
    live: tuple[MjpegServer, np.ndarray], tmp_path: Path
) -> None:
    server, _ = live
    dom = dump_dom(server.url, tmp_path / "profile")
    assert "membrane&lt;b&gt;_int8&lt;/b&gt;.tflite" in dom  # the name as text, not markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom and "<img src=x" not in dom
    assert "<span>background</span>" in dom and "background:rgb(0,200,0)" in dom
    match = re.search(r'<span id="stats" data-frames="(\d+)">([^<]*)</span>', dom)
    assert match, "the page never showed /stats"
    assert int(match.group(1)) > 0 and "20.0 FPS" in match.group(2)
    assert "invoke 7.5 ms" in match.group(2)
    assert 'class="ended"' not in dom and '<span id="state">live</span>' in dom


def test_stream_is_scaled_to_the_window(
    live: tuple[MjpegServer, np.ndarray], tmp_path: Path
) -> None:
    server, _ = live
    shot = screenshot(server.url, tmp_path / "live.png", size=(1024, 700))
    red = (shot[:, :, 2] > 200) & (shot[:, :, 1] < 60) & (shot[:, :, 0] < 60)
    x, y, w, h = bounding_box(red)
    # The 160x120 frame fills the height below the header (contain: aspect kept, not cropped):
    # its red right half is then about (700 - header) * 4/3 / 2 wide, far more than 80 pixels.
    assert h > 500 and abs(w - h * 2 / 3) < 0.05 * h, (x, y, w, h)
    assert y + h >= 695  # reaches the bottom of the window
    # the header (model name, legend, stats) is above the picture, not over it
    assert y > 30 and max(cv2.mean(shot[: y - 2])[:3]) < 60


def test_page_says_when_the_stream_has_ended(
    live: tuple[MjpegServer, np.ndarray], tmp_path: Path
) -> None:
    server, _ = live
    server.end("stopped by SIGTERM")
    dom = dump_dom(server.url, tmp_path / "profile")
    assert '<body class="ended">' in dom
    assert '<span id="state">stream ended</span>' in dom
    assert "Stream ended: stopped by SIGTERM" in dom
