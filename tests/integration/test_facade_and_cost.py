"""A real dataset as published (LabelMeFacade: 16-bit RGBA colour masks) through train, convert,
info and eval with no manual step, and the cost (parameters, MACs, int8 size) reported at each end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeseg.cli.main import app
from edgeseg.core.model_metadata import read_spec

pytestmark = pytest.mark.slow
runner = CliRunner()
TINY = ["--size", "64", "--depth", "2", "--filters", "8", "--batch", "8", "--epochs", "1"]


def test_labelmefacade_trains_converts_and_evaluates_with_its_cost(
    facade_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(facade_data), "--out", str(run), *TINY])
    assert result.exit_code == 0, result.output
    assert "cost:" in result.output and "GMAC per frame" in result.output
    saved = json.loads((run / "config.json").read_text())
    cost = saved["cost"]
    assert cost["params"] > 0 and cost["macs"] > 0 and cost["int8_bytes"] > 0
    assert saved["spec"]["extra"]["cost"] == cost
    assert len(saved["spec"]["class_names"]) == 9

    tflite = tmp_path / "model.tflite"
    convert = ["convert", str(run / "model.keras"), "--calib", str(facade_data)]
    result = runner.invoke(app, [*convert, "--out", str(tflite), "--calib-count", "8"])
    assert result.exit_code == 0, result.output
    spec = read_spec(tflite)
    assert spec is not None and spec.extra["cost"] == cost  # embedded with the model
    # the expected int8 size is an estimate made before conversion: close to the real one
    assert abs(tflite.stat().st_size - cost["int8_bytes"]) < 0.25 * cost["int8_bytes"]

    result = runner.invoke(app, ["info", str(tflite)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert f"{cost['macs']:,} multiply-accumulates" in result.output  # counted from the .tflite
    assert f"{cost['params']:,} parameters" in result.output

    result = runner.invoke(app, ["eval", str(tflite), "--data", str(facade_data), "--limit", "4"])
    assert result.exit_code == 0, result.output
    assert "building" in result.output
