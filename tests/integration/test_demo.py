"""`edgeseg demo --quick` end to end: every stage runs for real and the summary is sane."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from edgeseg.cli.main import app


@pytest.mark.slow
def test_demo_quick_runs_the_whole_chain(tmp_path: Path) -> None:
    out = tmp_path / "demo_out"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output

    summary = json.loads((out / "summary.json").read_text())
    files = summary["files"]
    for key in (
        "model_keras",
        "model_int8",
        "model_float32",
        "curves",
        "convert_report",
        "check_markdown",
        "check_disagreement",
        "overlay_video",
        "stream_stats",
    ):
        assert Path(files[key]).is_file(), key
    # the int8 model is model.keras, quantised: within 2 mIoU points and about 4x smaller
    assert 0.2 < summary["model_miou"] <= 1.0
    assert abs(summary["model_miou"] - summary["int8_miou"]) * 100 <= 2.0
    assert summary["drop_points"] == pytest.approx(
        100 * (summary["model_miou"] - summary["int8_miou"]), abs=1e-6
    )
    assert summary["int8_size_bytes"] < 0.35 * summary["float32_size_bytes"]
    assert summary["stream_fps"] > 0 and summary["frames_processed"] == 60
    assert summary["invoke_ms_int8"] > 0 and summary["invoke_ms_float32"] > 0

    video = cv2.VideoCapture(files["overlay_video"])
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = video.read()
    video.release()
    assert ok and frames == 60 and frame.std() > 0
    assert "edgeseg demo summary" in result.output and "mIoU int8 TFLite (%)" in result.output
    said = " ".join(result.output.split())
    assert "points: PASS (limit 2)" in said and " KiB / " in said  # the verdict, sizes as info's
