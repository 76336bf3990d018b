"""edgetpu_compiler output parsing (real log layout) and the static Edge TPU pre-check."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgeseg.convert.edgetpu import edgetpu_precheck, parse_compiler_log
from edgeseg.runtime.inspect import ModelInfo, OpInfo, TensorInfo

PARTIAL_LOG = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 412 ms.

Input model: model_int8.tflite
Input size: 509.77KiB
Output model: model_int8_edgetpu.tflite
Output size: 611.20KiB
On-chip memory used for caching model parameters: 489.25KiB
On-chip memory remaining for caching model parameters: 7.24MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 28
Operation log: model_int8_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of \
the model will instead run on the CPU, which is slower. If possible, consider updating your model \
to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 20
Number of operations that will run on CPU: 8

Operator                       Count      Status

CONV_2D                        12         Mapped to Edge TPU
CONV_2D                        3          More than one subgraph is not supported
TRANSPOSE_CONV                 1          Operation is otherwise supported, but not mapped due to \
some unspecified limitation
MAX_POOL_2D                    3          Mapped to Edge TPU
QUANTIZE                       1          Mapped to Edge TPU
SOFTMAX                        1          More than one subgraph is not supported
CONCATENATION                  3          More than one subgraph is not supported
ADD                            1          Mapped to Edge TPU
MUL                            1          Mapped to Edge TPU
"""

FULL_LOG = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 301 ms.

Input model: m.tflite
Output model: m_edgetpu.tflite
Number of Edge TPU subgraphs: 1
Total number of operations: 5
Operation log: m_edgetpu.log

Operator                       Count      Status

CONV_2D                        3          Mapped to Edge TPU
QUANTIZE                       1          Mapped to Edge TPU
MAX_POOL_2D                    1          Mapped to Edge TPU
"""


def test_partial_mapping_log_is_parsed() -> None:
    res = parse_compiler_log(PARTIAL_LOG, Path("m_edgetpu.tflite"))
    assert res.compiler_version == "16.0.384591198"
    assert (res.ops_on_tpu, res.ops_on_cpu, res.total_ops, res.subgraphs) == (20, 8, 28, 1)
    assert ("CONV_2D", 12, "Mapped to Edge TPU") in res.op_table
    fallback_ops = {op for op, _, _ in res.fallbacks}
    assert fallback_ops == {"CONV_2D", "TRANSPOSE_CONV", "SOFTMAX", "CONCATENATION"}
    assert any(
        "unspecified limitation" in s for op, _, s in res.fallbacks if op == "TRANSPOSE_CONV"
    )
    assert res.to_dict()["fallbacks"][0]["status"] == "More than one subgraph is not supported"


def test_fully_mapped_log_without_summary_counts() -> None:
    res = parse_compiler_log(FULL_LOG, Path("m_edgetpu.tflite"))
    assert (res.ops_on_tpu, res.ops_on_cpu, res.total_ops) == (5, 0, 5)
    assert res.fallbacks == []


def _t(
    index: int, shape: tuple[int, ...], dtype: str = "int8", sig: tuple[int, ...] | None = None
) -> TensorInfo:
    return TensorInfo(f"t{index}", index, shape, sig or shape, dtype, 0.1, 0, False)


def test_precheck_flags_unsupported_dynamic_float_and_strided_transpose() -> None:
    tensors = {
        0: _t(0, (1, 8, 8, 4)),
        1: _t(1, (4,), "int32"),
        2: _t(2, (4, 2, 2, 4)),  # weights: 4 non-1 dims but constant, not flagged
        3: _t(3, (1, 16, 16, 4)),
        4: _t(4, (1, 16, 16, 4), "float32", sig=(1, -1, -1, 4)),
        5: _t(5, (2, 16, 16, 4)),
    }
    ops = [
        OpInfo("TRANSPOSE_CONV", (1, 2, 0), (3,)),
        OpInfo("DEQUANTIZE", (3,), (4,)),
        OpInfo("GATHER", (4,), (5,)),
    ]
    info = ModelInfo("m", 1, [tensors[0]], [tensors[5]], tensors, ops, None, "ai_edge_litert")
    issues = {(i.op, i.reason.split(":")[0].split(",")[0]): i for i in edgetpu_precheck(info)}
    assert (
        issues[("TRANSPOSE_CONV", "strided TRANSPOSE_CONV")].hint
        == "retrain with --upsample resize"
    )
    assert ("DEQUANTIZE", "not in the Edge TPU op set") in issues
    assert ("DEQUANTIZE", "float activations") in issues
    assert ("DEQUANTIZE", "dynamic tensor shape") in issues
    assert ("GATHER", "tensor with more than 3 non-1 dimensions") in issues
    assert not any(op == "TRANSPOSE_CONV" and "non-1" in reason for op, reason in issues)


def test_precheck_flags_16_bit_activations_and_says_float_once() -> None:
    """An int16x8 model passed the pre-check ('no known blockers') and the next line said 'not
    for the Edge TPU'; a float16 model printed the float-activations line once per op kind; an
    int8 model with float32 ends was told to convert with --quant int8, which it was."""
    tensors = {
        0: _t(0, (1, 8, 8, 4), "float32"),
        1: _t(1, (1, 8, 8, 4), "int16"),
        2: _t(2, (1, 8, 8, 4), "int16"),
        3: _t(3, (1, 8, 8, 4), "float32"),
    }
    int16 = [OpInfo("QUANTIZE", (0,), (1,)), OpInfo("CONV_2D", (1,), (2,))]
    ops = [*int16, OpInfo("DEQUANTIZE", (2,), (3,))]
    info = ModelInfo("m", 1, [tensors[0]], [tensors[3]], tensors, ops, None, "ai_edge_litert")
    issues = edgetpu_precheck(info)
    sixteen = [i for i in issues if i.reason.startswith("16-bit activations")]
    assert {i.op for i in sixteen} == {"QUANTIZE", "CONV_2D"}
    (floats,) = [i for i in issues if i.reason.startswith("float activations")]
    # --io int8 is refused for an int16x8 model (it takes int16 or float input): --quant int8
    assert floats.op == "DEQUANTIZE" and floats.hint == "convert with --quant int8"
    int8 = {i: replace(t, dtype="int8") if t.dtype == "int16" else t for i, t in tensors.items()}
    info = ModelInfo("m", 1, [int8[0]], [int8[3]], int8, ops, None, "ai_edge_litert")
    (floats,) = [i for i in edgetpu_precheck(info) if i.reason.startswith("float activations")]
    assert floats.hint == "convert with --io uint8 or int8"  # an int8 model with float ends

    tensors = {i: _t(i, (1, 8, 8, 4), "float32") for i in range(4)}
    ops = [OpInfo("CONV_2D", (0,), (1,)), OpInfo("ADD", (1,), (2,)), OpInfo("CONV_2D", (2,), (3,))]
    info = ModelInfo("m", 1, [tensors[0]], [tensors[3]], tensors, ops, None, "ai_edge_litert")
    (floats,) = [i for i in edgetpu_precheck(info) if i.reason.startswith("float activations")]
    assert (floats.op, floats.count, floats.hint) == (
        "ADD, CONV_2D",
        3,
        "convert with --quant int8",
    )


def test_a_merged_pre_check_row_counts_its_ops_as_a_whole() -> None:
    """'ADD, CONV_2D, TRANSPOSE_CONV x33' read as 33 TRANSPOSE_CONVs: a row merging several op
    types says '33 ops (...)'; one type keeps 'OP xN'."""
    from edgeseg.cli.convert_cmd import _ops_counted

    ops = "ADD, CONV_2D, TRANSPOSE_CONV"
    assert _ops_counted(ops, 33) == f"33 ops ({ops})"
    assert _ops_counted("TRANSPOSE_CONV", 3) == "TRANSPOSE_CONV x3"
