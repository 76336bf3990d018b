"""`edgeseg run --serve` end to end in a real headless browser: a model trained and converted here,
a real video paced in real time, the page loaded by Debian's chromium while the run goes on.
Skips when chromium is not installed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser import bounding_box, dump_dom, needs_chromium, screenshot
from videos import write_video

from edgeseg.runtime.segmenter import Segmenter

pytestmark = [pytest.mark.slow, needs_chromium]
EDGESEG = [str(Path(sys.executable).with_name("edgeseg"))]  # the installed console script
SERVE = ["--serve", "127.0.0.1:0", "--stats"]


@pytest.fixture(scope="module")
def model(membrane_int8: Path) -> Path:
    """The session's trained membrane U-Net, converted to int8."""
    return membrane_int8


def test_run_serve_page_in_chromium(model: Path, membrane_data: Path, tmp_path: Path) -> None:
    images = sorted((membrane_data / "train" / "images").iterdir())
    video = write_video(tmp_path / "clip.avi", images * 4, 128, fps=10.0)  # ~10 s in real time
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [*EDGESEG, "run", str(model), "--source", str(video), "--realtime", *SERVE, str(stats)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:  # ends at EOF if the run fails before serving
            if match := re.search(r"serving on (http://127\.0\.0\.1:\d+/)", line):
                url = match.group(1)
                break
        assert url, proc.stderr.read() if proc.stderr else ""

        dom = dump_dom(url, tmp_path / "profile")
        assert "membrane_int8.tflite" in dom
        for name in Segmenter(model).spec.class_names:
            assert f"<span>{name}</span>" in dom
        match = re.search(r'<span id="stats" data-frames="(\d+)">([^<]*)</span>', dom)
        assert match and int(match.group(1)) > 0, "the page never showed /stats"
        assert "FPS" in match.group(2) and "invoke" in match.group(2)

        shot = screenshot(url, tmp_path / "live.png", size=(1024, 700))
        # The 128x128 picture is scaled up to fill the height below the header, aspect kept:
        # in the lower half of the window it spans ~600 columns, centred, with margins left/right.
        lower = shot[350:690]
        picture = abs(lower.astype(int) - 17).max(axis=2) > 8  # page background is #111
        x, _, w, _ = bounding_box(picture)
        assert 500 < w < 800 and abs((x + w / 2) - 512) < 20, (x, w)
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    data = json.loads(stats.read_text())
    assert data["processed"] > 0 and data["stopped_by"] == "end"
