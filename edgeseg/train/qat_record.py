"""What a quantisation-aware run's config.json says of the float network kept beside model.keras
(model_float.keras), readable without TensorFlow (`edgeseg info`) and by the converter alike."""

from __future__ import annotations

from typing import Any

from edgeseg.core.spec import ModelSpec


def float_network_spec(spec: ModelSpec) -> ModelSpec:
    """SPEC (model.keras's, with its 'qat' record) as the float network's: its own validation
    scores and input normalisation (x / 127.5 - 1, where the quantisation-aware model computes
    x / 128 - 1), no QAT record. A spec without the record is returned as it is."""
    qat = spec.extra.get("qat")
    if not isinstance(qat, dict):
        return spec
    changes: dict[str, Any] = {"extra": {k: v for k, v in spec.extra.items() if k != "qat"}}
    val = qat.get("float_val") or {}
    if val.get("miou") is not None:
        changes["float_miou"] = float(val["miou"])
    if isinstance(val.get("per_class_iou"), dict):
        changes["float_per_class_iou"] = dict(val["per_class_iou"])
    norm = qat.get("float_norm")
    if isinstance(norm, list | tuple) and len(norm) == 2:
        changes["norm_scale"], changes["norm_offset"] = float(norm[0]), float(norm[1])
    return spec.with_updates(**changes)
