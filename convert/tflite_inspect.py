"""Look inside a `.tflite` WITHOUT TensorFlow: tensors, quantisation, op histogram and metadata.

Uses the LiteRT interpreter (ai_edge_litert, or tflite_runtime) with the builtin op resolver and no
default delegates, so XNNPACK does not hide ops behind DELEGATE nodes. Shared by `validate` and
`edgeseg info`; imports only numpy, core and the interpreter package.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.errors import ModelError
from edgeseg.core.model_metadata import read_metadata, strip_metadata

_PACKAGES = ("ai_edge_litert", "tflite_runtime")
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


def interpreter_module() -> tuple[Any, str]:
    """(the interpreter module, 'package version') of the first LiteRT package installed."""
    for pkg in _PACKAGES:
        try:
            mod = importlib.import_module(f"{pkg}.interpreter")
        except ImportError:
            continue
        try:
            version = importlib.metadata.version(pkg.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        return mod, f"{pkg} {version}"
    raise ModelError("no TFLite interpreter installed: pip install ai-edge-litert")


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
        if path.is_dir():
            raise ModelError(f"{path}: is a folder, expected a .tflite file")
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        data = path.read_bytes()
    flat = strip_metadata(data)
    if len(flat) < 8 or flat[4:8] != b"TFL3":
        raise ModelError(f"{label}: not a TFLite model (no TFL3 flatbuffer identifier)")
    mod, pkg = interpreter_module()
    resolver = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interp = mod.Interpreter(model_content=flat, experimental_op_resolver_type=resolver)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{label}: cannot load TFLite model ({str(exc).splitlines()[0]})") from exc
    notes = []
    try:
        interp.allocate_tensors()
    except RuntimeError as exc:  # e.g. an Edge TPU custom op without its delegate
        notes.append(f"tensors not allocated: {str(exc).splitlines()[0]}")
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
        interpreter=pkg,
        notes=notes,
    )
