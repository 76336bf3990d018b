"""Where does int8 lose accuracy? Per-layer quantisation error from TFLite's QuantizationDebugger.

The debugger builds a debug model in which every quantised op also runs in float on the same
(dequantised) input, so each layer's error is its own, not inherited. For each layer we report:

- `error_pct`: per channel, RMS error as a percentage of that channel's float spread (std),
  capped at 100 and averaged over live channels. Catches a layer whose range is set by one huge
  channel while the others are crushed to a few levels; this is the ranking key.
- `rmse_scale`: RMS error in quantisation steps (TensorFlow's tutorial metric; about 0.29 is pure
  rounding, much more means clipping or weight error).
- `range_pct`: mean absolute error as a percentage of the calibrated float range (255 x scale).
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeseg.convert.calibration import CalibrationSet, Frame, representative_dataset
from edgeseg.convert.converter import atomic_write_bytes, calibrate, serving_model
from edgeseg.convert.options import ConvertOptions, Quant
from edgeseg.core.errors import ConversionError, first_line
from edgeseg.core.fileio import make_dir
from edgeseg.core.processing import dequantize
from edgeseg.core.spec import ModelSpec

if TYPE_CHECKING:
    import keras
    from rich.table import Table

CSV_NAME = "diagnose.csv"
PNG_NAME = "diagnose.png"
ROUNDING_RMSE = 12**-0.5  # RMS of uniform rounding noise, in quantisation steps
CSV_FIELDS = (
    "rank",
    "index",
    "layer",
    "op",
    "error_pct",
    "rmse_scale",
    "range_pct",
    "max_abs_error",
    "scale",
    "zero_point",
    "node",
)


@dataclass(frozen=True)
class LayerError:
    """Quantisation error of one quantised op's output, averaged over the calibration frames."""

    index: int  # position in network order
    op: str
    layer: str  # readable Keras layer name(s), e.g. enc0_conv1+enc0_relu1
    node: str  # TFLite node (output tensor) name: what ConvertOptions.float_layers takes
    error_pct: float
    rmse_scale: float
    range_pct: float
    max_abs_error: float
    scale: float
    zero_point: int

    def row(self, rank: int) -> dict[str, Any]:
        return {
            "rank": rank,
            "index": self.index,
            "layer": self.layer,
            "op": self.op,
            "error_pct": round(self.error_pct, 4),
            "rmse_scale": round(self.rmse_scale, 4),
            "range_pct": round(self.range_pct, 4),
            "max_abs_error": f"{self.max_abs_error:.6g}",
            "scale": f"{self.scale:.6g}",
            "zero_point": self.zero_point,
            "node": self.node,
        }


@dataclass(frozen=True)
class DiagnoseResult:
    """Per-layer errors in network order, plus where the report files went."""

    layers: tuple[LayerError, ...]
    frames: int
    csv_path: Path | None = None
    png_path: Path | None = None
    warnings: tuple[str, ...] = field(default=())

    def ranked(self) -> list[LayerError]:
        """Worst first (NaN errors last)."""
        return sorted(self.layers, key=lambda e: (-_key(e.error_pct), -_key(e.rmse_scale), e.index))

    def worst(self, k: int) -> list[LayerError]:
        return self.ranked()[: max(0, k)]


def _key(v: float) -> float:
    return -1.0 if np.isnan(v) else v


# === Metrics fed to the debugger ===


def _channel_error(f: np.ndarray, q: np.ndarray, scale: float, zero_point: int) -> float:
    """Mean over live channels of min(1, RMS error / float std) for one frame."""
    f = np.asarray(f, np.float64)
    if f.ndim == 0:
        return float("nan")
    c = f.shape[-1]
    f2 = f.reshape(-1, c)
    err = dequantize(np.asarray(q), scale, zero_point).astype(np.float64).reshape(-1, c) - f2
    spread = f2.std(axis=0)
    live = spread > 0
    if not live.any():
        return float("nan")
    ratio = np.sqrt(np.mean(err[:, live] ** 2, axis=0)) / spread[live]
    return float(np.minimum(ratio, 1.0).mean())


LAYER_METRICS = {"mean_abs_error": lambda d: float(np.mean(np.abs(d)))}
DIRECT_METRICS = {"channel_error": _channel_error}


# === Names ===


def layer_names(model: Any) -> list[str]:
    """Every layer's name in network order, those inside a nested model (MobileNetV2's
    encoder) in its place: what the converted graph's node names are matched against."""
    names: list[str] = []
    for layer in model.layers:
        names.append(layer.name)
        if hasattr(layer, "layers"):
            names += layer_names(layer)
    return names


def layer_label(node: str, known: Sequence[str] | None = None) -> str:
    """'m/enc0_relu1_1/Relu;m/enc0_conv1_1/convolution' -> 'enc0_conv1+enc0_relu1'.

    `known`: the Keras model's layer names in order; fused layers are listed in that order.
    """
    order = {name: i for i, name in enumerate(known or ())}
    names: list[str] = []
    for part in reversed(node.split(";")):
        bits = part.split("/")
        if len(bits) < 2:
            continue
        name = bits[1] if known is not None else re.sub(r"_\d+$", "", bits[1])
        # the innermost known layer: a nested encoder's block_15_project, not 'encoder'
        for bit in reversed(bits[1:]):
            if (base := re.sub(r"_\d+$", "", bit)) in order:
                name = base
                break
        if name not in names:
            names.append(name)
    names.sort(key=lambda n: order.get(n, len(order)))
    if names:
        return "+".join(names)
    return f"{known[-1]} (output)" if known else f"model output ({node})"


# === The debugger run ===


def _debugger(calibrated: bytes, calib: CalibrationSet) -> Any:
    """A QuantizationDebugger on the calibrated model, run on plain builtin kernels.

    XNNPACK (TFLite's default delegate) reuses buffers in place, which corrupts the preserved float
    tensors the direct-compare metric reads (seen on CONCATENATION); so the debug interpreter is
    rebuilt without default delegates. Falls back to the debugger's own if that API moves.
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    opts = tf.lite.experimental.QuantizationDebugOptions(
        layer_debug_metrics=LAYER_METRICS, layer_direct_compare_metrics=DIRECT_METRICS
    )
    # What QuantizationDebugger(converter=...) builds itself, minus a second conversion.
    debug_model = mlir_quantize(calibrated, enable_numeric_verify=True)
    dbg = tf.lite.experimental.QuantizationDebugger(
        quant_debug_model_content=debug_model, debug_dataset=calib, debug_options=opts
    )
    try:
        resolver = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        dbg._quant_interpreter = tf.lite.Interpreter(
            model_content=debug_model,
            experimental_op_resolver_type=resolver,
            experimental_preserve_all_tensors=True,
        )
        dbg._initialize_stats()
    except AttributeError:
        pass
    dbg.run()
    return dbg


def _layers_from(dbg: Any, known: Sequence[str] | None) -> list[LayerError]:
    """LayerErrors in network order from the debugger's statistics dump (its tensor names)."""
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    rows.sort(key=lambda r: int(r["tensor_idx"]))
    out = []
    for i, r in enumerate(rows):
        scale = float(r["scale"])
        rmse = float(np.sqrt(float(r["mean_squared_error"])))
        mae = float(r["mean_abs_error"])
        ch = float(r.get("channel_error") or "nan")
        out.append(
            LayerError(
                index=i,
                op=r["op_name"],
                layer=layer_label(r["tensor_name"], known),
                node=r["tensor_name"],
                error_pct=100.0 * ch,
                rmse_scale=rmse / scale if scale > 0 else float("nan"),
                range_pct=100.0 * mae / (255.0 * scale) if scale > 0 else float("nan"),
                max_abs_error=float(r["max_abs_error"]),
                scale=scale,
                zero_point=int(float(r["zero_point"])),
            )
        )
    return out


def diagnose(
    model: keras.Model | str | Path,
    spec: ModelSpec,
    calib_frames: CalibrationSet | Sequence[Frame] | str | Path,
    out_dir: str | Path | None = None,
    *,
    options: ConvertOptions | None = None,
    count: int = 200,
    seed: int = 0,
    calibrated: bytes | None = None,
) -> DiagnoseResult:
    """Run the QuantizationDebugger on the calibration frames and rank layers by int8 error.

    `model` is a Keras model or SavedModel folder; frames go through the same shared preprocessing
    as calibration and the runtime. With `out_dir`, writes diagnose.csv (worst first) and
    diagnose.png (error per layer in network order). `calibrated` (from `converter.calibrate`
    on the same frames) skips the conversion.
    """
    calib = (
        calib_frames
        if isinstance(calib_frames, CalibrationSet)
        else representative_dataset(calib_frames, spec, count=count, seed=seed)
    )
    opts = replace(options or ConvertOptions(), quant=Quant.INT8, float_layers=())
    if not isinstance(model, (str, Path)):  # the model as converted: its layer names label rows
        model, spec = serving_model(model, spec, opts)
    if calibrated is None:
        calibrated = calibrate(model, spec, opts, calib)
    known = layer_names(model) if hasattr(model, "layers") else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            dbg = _debugger(calibrated, calib)
    except ConversionError:
        raise
    except Exception as exc:  # the debugger raises ConverterError, RuntimeError, ValueError...
        raise ConversionError(f"quantisation debugger failed: {first_line(exc)}") from exc
    layers = _layers_from(dbg, known)
    if not layers:
        raise ConversionError("quantisation debugger found no quantised layers to report")
    result = DiagnoseResult(tuple(layers), len(calib), warnings=tuple(calib.stats.warnings))
    if out_dir is not None:
        out = Path(out_dir)
        make_dir(out)
        result = replace(
            result,
            csv_path=write_csv(result, out / CSV_NAME),
            png_path=write_png(result, out / PNG_NAME),
        )
    return result


# === Reports ===


def write_csv(result: DiagnoseResult, path: str | Path) -> Path:
    """One row per layer, worst first."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_FIELDS)
    writer.writeheader()
    for rank, layer in enumerate(result.ranked(), start=1):
        writer.writerow(layer.row(rank))
    return Path(atomic_write_bytes(path, buf.getvalue().encode()))


def write_png(result: DiagnoseResult, path: str | Path) -> Path:
    """Bar chart of error per layer in network order (a Figure of its own, no display needed;
    the process's pyplot backend is left as it was)."""
    from matplotlib.figure import Figure

    layers = result.layers
    x = np.arange(len(layers))
    worst = {e.index for e in result.worst(3)}
    fig = Figure(figsize=(max(8.0, 0.32 * len(layers) + 2), 7))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    colors = ["tab:red" if e.index in worst else "tab:blue" for e in layers]
    ax1.bar(x, [e.error_pct for e in layers], color=colors)
    ax1.set_ylabel("error, % of channel spread")
    ax1.set_title(f"int8 quantisation error per layer ({result.frames} calibration frames)")
    ax2.bar(x, [e.rmse_scale for e in layers], color=colors)
    ax2.axhline(ROUNDING_RMSE, color="gray", linestyle="--", linewidth=1, label="pure rounding")
    ax2.set_ylabel("RMSE / scale (steps)")
    ax2.legend(loc="lower left", framealpha=0.9)
    ax2.set_xticks(x, [f"{e.layer} ({e.op})" for e in layers], rotation=70, ha="right", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return Path(atomic_write_bytes(path, buf.getvalue()))


def diagnose_table(result: DiagnoseResult, top: int = 10) -> Table:
    """A rich table of the `top` worst layers, for the terminal."""
    from rich.table import Table

    table = Table(title=f"worst {min(top, len(result.layers))} of {len(result.layers)} layers")
    for col in ("#", "layer", "op", "error %", "rmse/scale", "mae % range"):
        left = col in ("layer", "op")
        table.add_column(col, justify="left" if left else "right", overflow="fold", ratio=None)
    for rank, e in enumerate(result.worst(top), start=1):
        table.add_row(
            str(rank),
            e.layer,
            e.op,
            f"{e.error_pct:.2f}",
            f"{e.rmse_scale:.3f}",
            f"{e.range_pct:.3f}",
        )
    return table
