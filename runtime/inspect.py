"""Look inside a `.tflite` WITHOUT TensorFlow: tensors, quantisation, ops, MACs and metadata.

Uses the interpreter `runtime.interpreter` finds, with the builtin op resolver and no default
delegates, so XNNPACK does not hide ops behind DELEGATE nodes. The one place that reads a model's
structure: `convert.validate`, `convert.repair`, `edgeseg info` and `edgeseg bench` all use it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.errors import ModelError, check_model_file, first_line
from edgeseg.core.model_metadata import read_metadata, strip_metadata
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.interpreter import (
    builtin_op_resolver,
    interpreter_version,
    resolve_interpreter,
)

FLOAT_TYPES = ("float32", "float16", "float64")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the interpreter reports it."""

    name: str
    index: int
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int
    per_channel: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
            "per_channel": self.per_channel,
        }


@dataclass(frozen=True)
class OpInfo:
    """One op node: its builtin name and the tensors it reads and writes."""

    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass
class ModelInfo:
    """Everything `edgeseg info` prints and `validate` checks."""

    path: str
    size_bytes: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    tensors: dict[int, TensorInfo]
    ops: list[OpInfo]
    metadata: dict[str, Any] | None
    interpreter: str
    notes: list[str] = field(default_factory=list)

    @property
    def op_histogram(self) -> dict[str, int]:
        return dict(
            sorted(Counter(op.name for op in self.ops).items(), key=lambda kv: (-kv[1], kv[0]))
        )

    def non_int8_ops(self) -> list[str]:
        """Ops computing on float (or int16) activations: 'NAME (float32 -> int8)' per op kind."""
        found: dict[str, set[str]] = {}
        for op in self.ops:
            types = [self.tensors[i].dtype for i in (*op.inputs, *op.outputs) if i in self.tensors]
            odd = sorted({t for t in types if t in (*FLOAT_TYPES, "int16")})
            if odd:
                found.setdefault(op.name, set()).update(odd)
        return [f"{name} ({', '.join(sorted(t))})" for name, t in sorted(found.items())]


def check_model_shapes(
    name: str | Path, input_shape: Sequence[int], output_shape: Sequence[int], spec: ModelSpec
) -> None:
    """ModelError unless the tensors are one NHWC image in and a per-pixel class map out that
    agree with the metadata (size, channels, classes, output kind): `run`, `eval` and `info`
    refuse the same models."""
    ins, outs = [int(v) for v in input_shape], [int(v) for v in output_shape]
    if len(ins) != 4 or ins[0] != 1:
        raise ModelError(f"{name}: input shape {ins} is not a single NHWC image")
    if len(outs) != 4 or outs[1:3] != ins[1:3]:
        raise ModelError(
            f"{name}: output shape {outs} is not a per-pixel class map "
            f"at the input size {ins[1]}x{ins[2]}"
        )
    if (ins[1], ins[2], ins[3]) != (spec.input_height, spec.input_width, spec.channels):
        raise ModelError(
            f"{name}: input {ins} disagrees with its metadata "
            f"({spec.input_height}x{spec.input_width}x{spec.channels})"
        )
    if outs[3] not in (spec.num_classes, 1):
        raise ModelError(f"{name}: {outs[3]} output channels for {spec.num_classes} classes")
    if spec.output_kind == "sigmoid" and outs[3] != 1:
        raise ModelError(
            f"{name}: metadata field 'output_kind' is 'sigmoid' but the model has "
            f"{outs[3]} output channels (sigmoid needs 1; use 'softmax')"
        )


def describe_tensor(t: TensorInfo) -> str:
    """'uint8 [1, 128, 128, 1] scale 1.0 zp 0' for tables and logs."""
    q = f" scale {t.scale:.6g} zp {t.zero_point}" if t.scale else ""
    return f"{t.dtype} {list(t.shape)}{q}{' per-channel' if t.per_channel else ''}"


def _tensor(detail: dict[str, Any]) -> TensorInfo:
    qp = detail.get("quantization_parameters") or {}
    scales = np.asarray(qp.get("scales", []))
    zps = np.asarray(qp.get("zero_points", []))
    scale, zp = detail.get("quantization", (0.0, 0))
    sig = detail.get("shape_signature", detail["shape"])
    return TensorInfo(
        name=str(detail["name"]),
        index=int(detail["index"]),
        shape=tuple(int(v) for v in detail["shape"]),
        shape_signature=tuple(int(v) for v in sig),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale),
        zero_point=int(zp),
        per_channel=scales.size > 1 or zps.size > 1,
    )


def inspect_tflite(source: str | Path | bytes) -> ModelInfo:
    """Read a `.tflite` (path or bytes); ModelError with the path for anything that is not one."""
    label = "<bytes>" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        check_model_file(path, "a .tflite file")
        data = path.read_bytes()
    flat = strip_metadata(data)
    if len(flat) < 8 or flat[4:8] != b"TFL3":
        raise ModelError(f"{label}: not a TFLite model (no TFL3 flatbuffer identifier)")
    interpreter_class, _, _ = resolve_interpreter()
    resolver = builtin_op_resolver()
    kwargs: dict[str, Any] = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    try:
        interp = interpreter_class(model_content=flat, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{label}: cannot load TFLite model ({first_line(exc)})") from exc
    notes = []
    try:
        interp.allocate_tensors()
    except RuntimeError as exc:  # e.g. an Edge TPU custom op without its delegate
        notes.append(f"tensors not allocated: {first_line(exc)}")
    tensors = {}
    for d in interp.get_tensor_details():
        tensors[int(d["index"])] = _tensor(d)
    ops = [
        OpInfo(
            str(o["op_name"]),
            tuple(int(i) for i in o["inputs"]),
            tuple(int(i) for i in o["outputs"]),
        )
        for o in interp._get_ops_details()
    ]
    return ModelInfo(
        path=label,
        size_bytes=len(data),
        inputs=[_tensor(d) for d in interp.get_input_details()],
        outputs=[_tensor(d) for d in interp.get_output_details()],
        tensors=tensors,
        ops=ops,
        metadata=read_metadata(data, name=label),
        interpreter=interpreter_version(),
        notes=notes,
    )


def op_histogram(interpreter: Any) -> dict[str, int]:
    """Builtin op counts of a live interpreter's original graph (DELEGATE nodes left out)."""
    ops = interpreter._get_ops_details()
    return dict(Counter(o["op_name"] for o in ops if o["op_name"] != "DELEGATE"))


def _conv_macs(op: dict[str, Any], shapes: dict[int, list[int]]) -> int:
    name = op["op_name"]
    ins = [int(t) for t in op["inputs"]]
    out = shapes.get(int(op["outputs"][0]), [])
    if name == "CONV_2D":  # filter (Cout, kh, kw, Cin); output (N, Ho, Wo, Cout)
        _, kh, kw, cin = shapes[ins[1]]
        return int(np.prod(out, dtype=np.int64)) * kh * kw * cin
    if name == "DEPTHWISE_CONV_2D":  # filter (1, kh, kw, Cout)
        _, kh, kw, _ = shapes[ins[1]]
        return int(np.prod(out, dtype=np.int64)) * kh * kw
    if name == "TRANSPOSE_CONV":  # inputs: output_shape, filter (Cout, kh, kw, Cin), input
        cout, kh, kw, _ = shapes[ins[1]]
        return int(np.prod(shapes[ins[2]], dtype=np.int64)) * kh * kw * cout
    if name == "FULLY_CONNECTED":  # weights (units, in)
        units, depth = shapes[ins[1]][-2:]
        return int(np.prod(out[:-1], dtype=np.int64)) * units * depth
    return 0


def count_macs(interpreter: Any) -> int:
    """Multiply-accumulates per inference (CONV_2D, DEPTHWISE, TRANSPOSE_CONV, FULLY_CONNECTED)."""
    shapes = {
        int(t["index"]): [int(v) for v in t["shape"]] for t in interpreter.get_tensor_details()
    }
    total = 0
    for op in interpreter._get_ops_details():
        try:
            total += _conv_macs(op, shapes)
        except (KeyError, ValueError):
            continue  # a tensor without static shape: skip rather than guess
    return total


def count_model_macs(tflite: bytes) -> int:
    """Multiply-accumulates per inference of a .tflite given as bytes (edgeseg metadata or not)."""
    Interpreter, _, _ = resolve_interpreter()
    resolver = builtin_op_resolver()
    kwargs = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    return count_macs(Interpreter(model_content=strip_metadata(tflite), **kwargs))
