"""Edge TPU: a pre-check of a converted model against the Coral op set, and `edgetpu_compiler`
run and parsed (how many ops map to the TPU, which fall back to the CPU and why).

The op set and limits come from Coral's "TensorFlow models on the Edge TPU" page
(coral.ai/docs/edgetpu/models-intro, "Supported operations").
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.core.errors import ConversionError
from edgeseg.core.model_metadata import embed_metadata, read_metadata, read_spec
from edgeseg.runtime.inspect import FLOAT_TYPES, ModelInfo

COMPILER = "edgetpu_compiler"
MAPPED = "Mapped to Edge TPU"
EDGETPU_OPS = frozenset(
    {
        "ADD",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "EXPAND_DIMS",
        "FULLY_CONNECTED",
        "L2_NORMALIZATION",
        "LOGISTIC",
        "LSTM",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "MAXIMUM",
        "MAX_POOL_2D",
        "MEAN",
        "MINIMUM",
        "MUL",
        "PACK",
        "PAD",
        "PRELU",
        "QUANTIZE",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "RELU",
        "RELU6",
        "RELU_N1_TO_1",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "RSQRT",
        "SLICE",
        "SOFTMAX",
        "SPACE_TO_DEPTH",
        "SPLIT",
        "SQUEEZE",
        "STRIDED_SLICE",
        "SUB",
        "SUM",
        "SQUARED_DIFFERENCE",
        "TANH",
        "TRANSPOSE",
        "TRANSPOSE_CONV",
    }
)
INSTALL_HINT = (
    "install it from Coral's apt repository (x86-64 Debian/Ubuntu only): add "
    "'deb https://packages.cloud.google.com/apt coral-edgetpu-stable main' and "
    "`sudo apt-get install edgetpu-compiler`; elsewhere run it on a Linux x86-64 machine or in a "
    "Docker container. The int8 model was written and can be compiled there."
)


@dataclass(frozen=True)
class PrecheckIssue:
    """Something the Edge TPU compiler is likely to leave on the CPU, with what to do about it."""

    op: str
    count: int
    reason: str
    hint: str = ""


def edgetpu_precheck(info: ModelInfo) -> list[PrecheckIssue]:
    """Static Edge TPU compatibility check of a converted model (no compiler needed)."""
    issues: list[PrecheckIssue] = []
    by_reason: dict[tuple[str, str, str], int] = {}

    def add(op: str, reason: str, hint: str = "") -> None:
        by_reason[(op, reason, hint)] = by_reason.get((op, reason, hint), 0) + 1

    float_ops: dict[str, int] = {}  # one line for all of them: a float16 model has a dozen kinds
    # activations = graph inputs + anything an op writes (weights are constants, not checked)
    activations = {t.index for t in info.inputs} | {i for op in info.ops for i in op.outputs}
    for op in info.ops:
        tensors = [
            info.tensors[i]
            for i in (*op.inputs, *op.outputs)
            if i in info.tensors and i in activations
        ]
        if op.name not in EDGETPU_OPS:
            add(
                op.name,
                "not in the Edge TPU op set: runs on the CPU, and so does every op after it",
            )
        written = [t for t in tensors if t.index in op.outputs]
        if any(t.dtype in FLOAT_TYPES for t in written):
            float_ops[op.name] = float_ops.get(op.name, 0) + 1
        if any(t.dtype == "int16" for t in written):
            add(
                op.name,
                "16-bit activations (int16x8): the Edge TPU runs only 8-bit integer models",
                "convert with --quant int8",
            )
        if any(-1 in t.shape_signature for t in tensors):
            add(op.name, "dynamic tensor shape: the Edge TPU needs static shapes")
        if any(sum(d != 1 for d in t.shape) > 3 for t in tensors):
            add(op.name, "tensor with more than 3 non-1 dimensions")
        if op.name == "SOFTMAX" and any(len(info.tensors[i].shape) > 2 for i in op.outputs):
            add(
                op.name,
                "per-pixel softmax: the Edge TPU maps only 1-D softmax, so the head "
                "runs on the CPU (only the last op; argmax is unchanged)",
            )
        if op.name == "TRANSPOSE_CONV" and _stride(info, op.inputs, op.outputs) > 1:
            add(
                op.name,
                "strided TRANSPOSE_CONV, which edgetpu_compiler is known to reject or "
                "leave on the CPU",
                "retrain with --upsample resize",
            )
    if float_ops:
        # an int8 model with float I/O; an int16x8 one takes no --io int8 (--quant int8 first)
        sixteen = any(reason.startswith("16-bit") for _name, reason, _hint in by_reason)
        edges_only = set(float_ops) <= {"QUANTIZE", "DEQUANTIZE"} and not sixteen
        issues.append(
            PrecheckIssue(
                ", ".join(sorted(float_ops)),
                sum(float_ops.values()),
                "float activations: the Edge TPU runs only full-integer int8 models",
                "convert with --io uint8 or int8" if edges_only else "convert with --quant int8",
            )
        )
    for (name, reason, hint), count in by_reason.items():
        issues.append(PrecheckIssue(name, count, reason, hint))
    return issues


def _stride(info: ModelInfo, inputs: tuple[int, ...], outputs: tuple[int, ...]) -> int:
    # TRANSPOSE_CONV inputs are (output_shape, weights, data[, bias]); stride = out H / data H
    if len(inputs) < 3 or inputs[2] not in info.tensors or not outputs:
        return 1
    src, dst = info.tensors[inputs[2]].shape, info.tensors[outputs[0]].shape
    if len(src) != 4 or len(dst) != 4 or src[1] == 0:
        return 1
    return int(max(1, dst[1] // src[1]))


@dataclass
class EdgeTpuResult:
    """Parsed `edgetpu_compiler` run."""

    compiled_path: Path
    compiler_version: str = ""
    ops_on_tpu: int = 0
    ops_on_cpu: int = 0
    total_ops: int = 0
    subgraphs: int = 0
    op_table: list[tuple[str, int, str]] = field(default_factory=list)  # (op, count, status)
    log: str = ""

    @property
    def fallbacks(self) -> list[tuple[str, int, str]]:
        """Op rows that did not map to the Edge TPU, with the compiler's reason."""
        return [row for row in self.op_table if row[2] != MAPPED]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["compiled_path"] = str(self.compiled_path)
        d["op_table"] = [{"op": o, "count": c, "status": s} for o, c, s in self.op_table]
        d["fallbacks"] = [{"op": o, "count": c, "status": s} for o, c, s in self.fallbacks]
        del d["log"]
        return d


_INT = {
    "ops_on_tpu": r"Number of operations that will run on Edge TPU:\s*(\d+)",
    "ops_on_cpu": r"Number of operations that will run on CPU:\s*(\d+)",
    "total_ops": r"Total number of operations:\s*(\d+)",
    "subgraphs": r"Number of Edge TPU subgraphs:\s*(\d+)",
}
_ROW = re.compile(r"^([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$")


def parse_compiler_log(log: str, compiled_path: Path) -> EdgeTpuResult:
    """Parse edgetpu_compiler's summary and per-op table (`-s` output or the .log file)."""
    res = EdgeTpuResult(compiled_path=compiled_path, log=log)
    if m := re.search(r"Edge TPU Compiler version\s+(\S+)", log):
        res.compiler_version = m.group(1)
    for key, pattern in _INT.items():
        if m := re.search(pattern, log):
            setattr(res, key, int(m.group(1)))
    in_table = False
    for line in log.splitlines():
        if re.match(r"^\s*Operator\s+Count\s+Status", line):
            in_table = True
            continue
        if in_table and (m := _ROW.match(line.strip())):
            res.op_table.append((m.group(1), int(m.group(2)), m.group(3)))
    if not res.total_ops and res.op_table:
        res.total_ops = sum(c for _, c, _ in res.op_table)
    if res.op_table and not re.search(_INT["ops_on_tpu"], log):
        # a fully mapped model prints no "will run on" counts, only the table
        res.ops_on_tpu = sum(c for _, c, s in res.op_table if s == MAPPED)
        res.ops_on_cpu = res.total_ops - res.ops_on_tpu
    return res


def require_compiler() -> str:
    """edgetpu_compiler's path; ConversionError (with how to install it) when it is not on PATH,
    so a caller can refuse before minutes of conversion rather than after."""
    exe = shutil.which(COMPILER)
    if exe is None:
        raise ConversionError(f"{COMPILER} not found on PATH; {INSTALL_HINT}")
    return exe


def compile_edgetpu(model_path: str | Path, timeout: float = 600.0) -> EdgeTpuResult:
    """Run edgetpu_compiler on an int8 model; writes <stem>_edgetpu.tflite beside it."""
    model_path = Path(model_path)
    exe = require_compiler()
    out_dir = model_path.parent
    cmd = [exe, "-s", "-o", str(out_dir), str(model_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ConversionError(f"{model_path}: {COMPILER} timed out after {timeout:.0f} s") from exc
    log = proc.stdout + proc.stderr
    compiled = out_dir / f"{model_path.stem}_edgetpu.tflite"
    if proc.returncode != 0 or not compiled.is_file():
        tail = " | ".join(line for line in log.strip().splitlines()[-3:]) or "no output"
        raise ConversionError(f"{model_path}: {COMPILER} failed (exit {proc.returncode}): {tail}")
    log_file = out_dir / f"{model_path.stem}_edgetpu.log"
    full_log = log + ("\n" + log_file.read_text(errors="replace") if log_file.is_file() else "")
    result = parse_compiler_log(full_log if "Operator" not in log else log, compiled)
    _carry_metadata(model_path, compiled)
    return result


def _carry_metadata(src: Path, compiled: Path) -> None:
    """The compiler drops the appended zip; put the edgeseg metadata back (atomically)."""
    from edgeseg.convert.converter import atomic_write_bytes

    spec, payload = read_spec(src), read_metadata(src)
    if spec is None or payload is None:
        return
    extra = {k: v for k, v in payload.items() if k != "spec"} | {"edgetpu": True}
    atomic_write_bytes(compiled, embed_metadata(compiled.read_bytes(), spec, extra=extra))
