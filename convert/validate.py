"""Check what the converter produced and write the conversion report (`<out stem>.report.json`):
size and ratio to float32, op histogram, ops not in int8, tensor types, calibration facts and an
Edge TPU pre-check.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.convert.calibration import CalibrationStats
from edgeseg.convert.edgetpu import EdgeTpuResult, PrecheckIssue, edgetpu_precheck
from edgeseg.convert.options import ConvertOptions, Quant
from edgeseg.core.fileio import json_text
from edgeseg.runtime.inspect import ModelInfo, inspect_tflite

# Ops a full-integer model of either encoder may contain (normalise layer, U-Net or MobileNetV2
# encoder with its depthwise convolutions, decoder, head); anything else is a
# sign the graph was not static (SHAPE, PACK, STRIDED_SLICE...) or a float fallback.
EXPECTED_INT8_OPS = frozenset(
    {
        "QUANTIZE",
        "DEQUANTIZE",
        "ADD",
        "MUL",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MAX_POOL_2D",
        "CONCATENATION",
        "TRANSPOSE_CONV",
        "RESIZE_BILINEAR",
        "SOFTMAX",
        "LOGISTIC",
    }
)


@dataclass
class ConversionReport:
    """The facts a user needs to trust (or distrust) a converted model."""

    model: str
    quant: str
    size_bytes: int
    float32_size_bytes: int | None
    op_histogram: dict[str, int]
    non_int8_ops: list[str]
    unexpected_ops: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    calibration: dict[str, Any] | None
    edgetpu_precheck: list[dict[str, Any]]
    convert_seconds: float | None = None
    edgetpu: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def size_ratio(self) -> float | None:
        """Size relative to a float32 conversion of the same model (int8 target: ~0.25)."""
        if not self.float32_size_bytes:
            return None
        return self.size_bytes / self.float32_size_bytes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size_ratio_vs_float32"] = None if self.size_ratio is None else round(self.size_ratio, 4)
        return d


def validate(
    model: str | Path | bytes,
    options: ConvertOptions,
    *,
    calibration: CalibrationStats | None = None,
    float32_size_bytes: int | None = None,
    convert_seconds: float | None = None,
) -> tuple[ConversionReport, ModelInfo]:
    """Load the converted model in the interpreter and build its report (no TensorFlow used)."""
    info = inspect_tflite(model)
    non_int8 = info.non_int8_ops()
    unexpected = sorted(set(info.op_histogram) - EXPECTED_INT8_OPS)
    warnings = []
    if options.quant == Quant.INT8 and non_int8:
        warnings.append(f"ops not in int8: {', '.join(non_int8)}")
    if unexpected:
        warnings.append(f"unexpected ops for a static segmentation model: {', '.join(unexpected)}")
    precheck = edgetpu_precheck(info)
    report = ConversionReport(
        model=info.path,
        quant=options.quant.value,
        size_bytes=info.size_bytes,
        float32_size_bytes=float32_size_bytes,
        op_histogram=info.op_histogram,
        non_int8_ops=non_int8,
        unexpected_ops=unexpected,
        inputs=[t.to_dict() for t in info.inputs],
        outputs=[t.to_dict() for t in info.outputs],
        calibration=calibration.to_dict() if calibration is not None else None,
        edgetpu_precheck=[asdict(i) for i in precheck],
        convert_seconds=None if convert_seconds is None else round(convert_seconds, 2),
        warnings=warnings,
    )
    return report, info


def record_edgetpu(report_path: str | Path, result: EdgeTpuResult) -> Path:
    """Add a compiler run to an existing `.report.json` (rewritten atomically)."""
    from edgeseg.core.fileio import write_json

    path = Path(report_path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        payload = {}
    payload["edgetpu"] = result.to_dict()
    return write_json(path, payload)


def write_report(report: ConversionReport, path: str | Path) -> Path:
    """Write the report JSON atomically."""
    from edgeseg.convert.converter import atomic_write_bytes

    return Path(atomic_write_bytes(path, json_text(report.to_dict()).encode()))


__all__ = [
    "EXPECTED_INT8_OPS",
    "ConversionReport",
    "PrecheckIssue",
    "record_edgetpu",
    "validate",
    "write_report",
]
