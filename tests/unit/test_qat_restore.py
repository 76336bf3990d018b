"""`--resume` of a run that ended with a quantisation-aware model: restore_float_model puts the
float model and its scores back, so float training continues from what it left."""

from __future__ import annotations

import json
from pathlib import Path

from edgeseg.core.spec import ModelSpec
from edgeseg.train.qat_phase import FLOAT_MODEL, restore_float_model


def test_restore_puts_the_float_model_and_its_scores_back(tmp_path: Path) -> None:
    float_val = {"miou": 0.61, "per_class_iou": {"a": 0.5, "b": 0.72}, "best_epoch": 7}
    spec = ModelSpec(32, 32, ("a", "b")).with_updates(
        float_miou=0.6,
        norm_scale=1 / 128,
        extra={"qat": {"steps": 0, "float_val": float_val, "float_norm": [1 / 127.5, -1.0]}},
    )
    payload = {"spec": spec.to_dict(), "val": {"miou": 0.6}, "qat": spec.extra["qat"]}
    (tmp_path / "config.json").write_text(json.dumps(payload))
    (tmp_path / "model.keras").write_bytes(b"quantisation-aware")
    (tmp_path / FLOAT_MODEL).write_bytes(b"float")

    restore_float_model(tmp_path)

    assert (tmp_path / "model.keras").read_bytes() == b"float"
    assert not (tmp_path / FLOAT_MODEL).exists()
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "qat" not in saved and saved["val"] == float_val
    restored = ModelSpec.load(tmp_path / "config.json")
    assert restored.float_miou == 0.61 and "qat" not in restored.extra
    assert (restored.norm_scale, restored.norm_offset) == (1 / 127.5, -1.0)


def test_restore_leaves_a_float_run_alone(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"float")
    restore_float_model(tmp_path)
    assert (tmp_path / "model.keras").read_bytes() == b"float"
