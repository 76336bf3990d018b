"""Accuracy-aware conversion: full int8 first; if the mIoU drop on held-out data exceeds the limit,
keep the layers the quantisation debugger ranks worst in float (selective quantisation), a few more
each round (1, 2, 4, ... up to K), and stop at the first model within the limit.

Every candidate goes through the one conversion path (`converter.export` with
`ConvertOptions.float_layers`) and is scored by `edgeseg.eval.evaluate`, i.e. the runtime's
Segmenter on real images. A limit that cannot be met is reported, never hidden: the best model is
written as `<out stem>.best_effort.tflite` and nothing is written at `out`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeseg.convert.calibration import CalibrationSet, representative_dataset
from edgeseg.convert.converter import (
    atomic_write_bytes,
    calibrate,
    check_model_out,
    export,
    report_path_for,
    source_record,
)
from edgeseg.convert.diagnose import CSV_NAME, PNG_NAME, DiagnoseResult, LayerError, diagnose
from edgeseg.convert.options import DEFAULT_MAX_FLOAT_LAYERS, ConvertOptions, Quant, kept_in_float
from edgeseg.convert.validate import validate, write_report
from edgeseg.core.errors import ConversionError
from edgeseg.core.fileio import scratch_dir
from edgeseg.core.metrics import points
from edgeseg.core.model_metadata import embed_metadata, read_metadata, read_spec
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.bench import invoke_latency_ms
from edgeseg.runtime.inspect import FLOAT_TYPES, inspect_tflite

# Ops that only move or pick values: keeping them in float cannot recover accuracy.
NO_ARITHMETIC = frozenset({"MAX_POOL_2D", "CONCATENATION", "QUANTIZE", "DEQUANTIZE", "RESHAPE"})
# TF 2.21's quantiser ignores denylisted node names on these (checked: it only honours the whole
# op type); candidates that would change nothing are skipped. `_split_effective` catches others.
NOT_DENYLISTABLE = frozenset({"TRANSPOSE_CONV"})
EDGETPU_MIXED = (
    "mixed int8/float models are not Edge TPU compatible: edgetpu_compiler stops at the first "
    "float op and the rest runs on the CPU; use a full int8 model (no --max-drop) for the Edge TPU"
)
Log = Callable[[str], None]


@dataclass(frozen=True)
class Attempt:
    """One candidate model: which layers stayed float, its accuracy, size and speed."""

    float_layers: tuple[LayerError, ...]
    miou: float
    drop: float  # float mIoU minus this model's, in points (x100)
    size_bytes: int
    latency_ms: float
    ignored: tuple[LayerError, ...] = ()  # asked for float but the quantiser kept them int8
    data: bytes = field(default=b"", repr=False, compare=False)

    @property
    def labels(self) -> list[str]:
        return [e.layer for e in self.float_layers]

    def to_dict(self) -> dict[str, Any]:
        return {
            "float_layers": self.labels,
            "float_nodes": [e.node for e in self.float_layers],
            "miou": round(self.miou, 6),
            "miou_drop": round(self.drop, 4),
            "size_bytes": self.size_bytes,
            "latency_ms": round(self.latency_ms, 3),
            "ignored": [e.layer for e in self.ignored],
        }


@dataclass(frozen=True)
class RepairResult:
    """The outcome: where the model went, whether it meets --max-drop, and what it cost."""

    path: Path
    passed: bool
    float_miou: float
    max_drop: float
    baseline: Attempt  # full int8
    chosen: Attempt
    attempts: tuple[Attempt, ...]
    diagnosis: DiagnoseResult | None = None
    notes: tuple[str, ...] = ()
    report_path: Path | None = None
    # what a plain conversion warns about: the calibration frames (unreadable, few, gray) and
    # the model written (its report's warnings)
    warnings: tuple[str, ...] = ()

    @property
    def size_cost_pct(self) -> float:
        return 100.0 * (self.chosen.size_bytes / self.baseline.size_bytes - 1.0)

    @property
    def latency_cost_pct(self) -> float:
        return 100.0 * (self.chosen.latency_ms / self.baseline.latency_ms - 1.0)

    def message(self) -> str:
        """One line saying what happened, for the CLI."""
        c = self.chosen
        kept = kept_in_float(len(c.float_layers))
        if self.passed:
            return f"mIoU drop {points(c.drop):.2f} points <= --max-drop {self.max_drop:g} ({kept})"
        return (
            f"cannot meet --max-drop {self.max_drop:g}: best mIoU drop {points(c.drop):.2f} points "
            f"({kept}, {len(self.attempts)} model(s) tried); best effort written to {self.path}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "passed": self.passed,
            "float_miou": round(self.float_miou, 6),
            "max_drop": self.max_drop,
            "chosen": self.chosen.to_dict(),
            "full_int8": self.baseline.to_dict(),
            "size_cost_pct": round(self.size_cost_pct, 2),
            "latency_cost_pct": round(self.latency_cost_pct, 2),
            "attempts": [a.to_dict() for a in self.attempts],
            "notes": list(self.notes),
        }


def best_effort_path(out: str | Path) -> Path:
    """`model_int8.tflite` -> `model_int8.best_effort.tflite`: where a missed limit's model goes."""
    p = Path(out)
    return p.with_name(f"{p.stem}.best_effort{p.suffix or '.tflite'}")


def _float_ops(model: bytes) -> Counter[str]:
    """How many compute ops of each kind run in float in a converted model."""
    info = inspect_tflite(model)
    return Counter(
        op.name
        for op in info.ops
        if op.name not in ("QUANTIZE", "DEQUANTIZE")
        and any(info.tensors[i].dtype in FLOAT_TYPES for i in op.outputs if i in info.tensors)
    )


def _split_effective(
    asked: list[LayerError], model: bytes
) -> tuple[list[LayerError], list[LayerError]]:
    """(really float, ignored): the quantiser silently skips some node names (TRANSPOSE_CONV)."""
    budget = _float_ops(model)
    kept, ignored = [], []
    for layer in asked:
        if budget[layer.op] > 0:
            budget[layer.op] -= 1
            kept.append(layer)
        else:
            ignored.append(layer)
    return kept, ignored


def _round_sizes(k: int) -> list[int]:
    """1, 2, 4, ... capped at k, always ending at k."""
    sizes, n = [], 1
    while n < k:
        sizes.append(n)
        n *= 2
    return [*sizes, k] if k > 0 else []


@dataclass
class _Search:
    """One repair's fixed inputs and what it has tried so far (candidates are scored in order)."""

    model: Any  # keras.Model
    spec: ModelSpec
    options: ConvertOptions
    rep: CalibrationSet
    calibrated: bytes
    data_dir: Path
    float_miou: float
    max_drop: float
    workdir: Path
    threads: int | None
    say: Log
    attempts: list[Attempt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def attempt(self, layers: list[LayerError]) -> Attempt:
        """Quantise with `layers` kept in float, score the model on the data and record it."""
        from edgeseg.eval.evaluate import evaluate

        path = self.workdir / f"candidate{len(self.attempts)}.tflite"
        opts = replace(self.options, float_layers=tuple(e.node for e in layers))
        export(self.model, self.spec, opts, path, self.rep, calibrated=self.calibrated)
        data = path.read_bytes()
        kept, ignored = _split_effective(layers, data) if layers else ([], [])
        miou = evaluate(path, self.data_dir, threads=self.threads).miou
        drop = 100.0 * (self.float_miou - miou)
        a = Attempt(
            tuple(kept), miou, drop, len(data), invoke_latency_ms(data), tuple(ignored), data
        )
        self.attempts.append(a)
        what = f"{len(kept)} float layer(s)" if layers else "full int8"
        self.say(
            f"{what}: mIoU {miou:.4f}, drop {points(a.drop):.2f} points (limit {self.max_drop:g})"
        )
        if a.ignored:
            self.notes.append(
                "the quantiser ignored the float request for "
                + ", ".join(f"{e.layer} ({e.op})" for e in a.ignored)
                + "; they stay int8"
            )
        return a


def _check_arguments(options: ConvertOptions, max_float_layers: int) -> None:
    if options.quant != Quant.INT8:
        raise ConversionError(f"--max-drop works on int8 models, not --quant {options.quant}")
    if max_float_layers < 0:
        raise ConversionError(f"--max-float-layers must be >= 0, got {max_float_layers}")


def _float_baseline(
    model_path: str | Path, data_dir: str | Path, spec: ModelSpec, threads: int | None
) -> ModelSpec:
    """The float model scored on the data: the spec with its float mIoU and per-class IoU."""
    from edgeseg.eval.evaluate import evaluate, iou_by_name

    result = evaluate(model_path, data_dir, threads=threads)
    per_class = iou_by_name(result.scores, spec.class_names)
    return spec.with_updates(float_miou=result.miou, float_per_class_iou=per_class)


def _ranked_candidates(diag: DiagnoseResult, notes: list[str]) -> list[LayerError]:
    """The debugger's worst layers first, without those keeping in float cannot help."""
    if any(e.op in NOT_DENYLISTABLE for e in diag.worst(3)):
        notes.append(
            "TRANSPOSE_CONV layers rank among the worst but cannot be kept in float one by "
            "one; try --upsample resize when training"
        )
    skip = NO_ARITHMETIC | NOT_DENYLISTABLE
    return [e for e in diag.ranked() if e.op not in skip]


def _grow_float_set(search: _Search, ranked: list[LayerError], most: int, best: Attempt) -> Attempt:
    """Keep 1, 2, 4, ... of the ranked layers in float; the first candidate within the limit wins,
    else the one with the smallest drop (fewer float layers on a tie)."""
    chosen: list[LayerError] = []
    for size in _round_sizes(min(most, len(ranked))):
        while len(chosen) < size and ranked:
            chosen.append(ranked.pop(0))
        a = search.attempt(chosen)
        chosen = list(a.float_layers)  # ignored nodes leave the set for good
        if a.drop <= search.max_drop:
            return a
        if (a.drop, len(a.float_layers)) < (best.drop, len(best.float_layers)):
            best = a
    return best


def repair(
    model_path: str | Path,
    calib: CalibrationSet | str | Path,
    data_dir: str | Path,
    out: str | Path,
    *,
    options: ConvertOptions | None = None,
    max_drop: float = 1.0,
    max_float_layers: int = DEFAULT_MAX_FLOAT_LAYERS,
    edgetpu: bool = False,
    report_dir: str | Path | None = None,
    threads: int | None = None,
    log: Log | None = None,
) -> RepairResult:
    """Convert `model_path` (.keras) to int8 within `max_drop` mIoU points of float on `data_dir`.

    Writes `out` (or `<out stem>.best_effort.tflite` when the limit is not met) with the float
    layers and the measured drop in its metadata, plus the usual `.report.json`; with `report_dir`,
    also the debugger's diagnose.csv / diagnose.png there.
    """
    from edgeseg.train.model_io import load_keras_model

    say = log or (lambda _msg: None)
    options = options or ConvertOptions()
    _check_arguments(options, max_float_layers)
    out = Path(out)
    best_effort = best_effort_path(out)
    diagnosis = () if report_dir is None else (Path(report_dir) / n for n in (CSV_NAME, PNG_NAME))
    check_model_out(out, beside=(best_effort, report_path_for(best_effort), *diagnosis))
    # taken before loading (a training run may rewrite it meanwhile); loading says what is
    # wrong with a path that is no file
    source = source_record(model_path) if Path(model_path).is_file() else {}
    model, spec = load_keras_model(model_path)
    rep = (
        calib
        if isinstance(calib, CalibrationSet)
        else representative_dataset(calib, spec, options.calib_count, options.seed)
    )
    spec = _float_baseline(model_path, data_dir, spec, threads)
    float_miou = float(spec.float_miou or 0.0)
    say(f"float model: mIoU {float_miou:.4f} on {data_dir}")
    diag: DiagnoseResult | None = None
    calibrated = calibrate(model, spec, options, rep)  # once: each candidate only re-quantises
    with scratch_dir("edgeseg-repair-") as tmp:
        search = _Search(
            model=model,
            spec=spec,
            options=options,
            rep=rep,
            calibrated=calibrated,
            data_dir=Path(data_dir),
            float_miou=float_miou,
            max_drop=max_drop,
            workdir=tmp,
            threads=threads,
            say=say,
        )
        best = search.attempt([])
        if best.drop > max_drop and max_float_layers > 0:
            diag = diagnose(model, spec, rep, report_dir, options=options, calibrated=calibrated)
            ranked = _ranked_candidates(diag, search.notes)
            best = _grow_float_set(search, ranked, max_float_layers, best)
    passed = best.drop <= max_drop
    if edgetpu and best.float_layers:
        search.notes.append(EDGETPU_MIXED)
    target = out if passed else best_effort_path(out)
    if source_record(model_path) != source:
        raise ConversionError(
            f"{model_path}: changed while it was being converted (a training run is writing "
            "it); convert again once that run has finished"
        )
    facts = {"max_drop": max_drop, "within_max_drop": passed, "accuracy_data": str(data_dir)}
    report_path, written = _write_model(best, spec, options, rep, target, {**source, **facts})
    # the other outcome of an earlier run goes: a failed run left the last passing model at
    # OUT (the README says nothing is there), a passing one an old OUT.best_effort beside it
    _remove_stale(best_effort_path(out) if passed else out, search.notes)
    return RepairResult(
        target,
        passed,
        float_miou,
        max_drop,
        search.attempts[0],
        best,
        tuple(search.attempts),
        diag,
        tuple(dict.fromkeys(search.notes)),
        report_path,
        # float layers kept are "ops not in int8" by request: the table above says which
        tuple(dict.fromkeys([*rep.stats.warnings, *([] if best.float_layers else written)])),
    )


def _remove_stale(model: Path, notes: list[str]) -> None:
    """Remove MODEL and its report, left by an earlier conversion to the same --out."""
    for path in (model, report_path_for(model)):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            notes.append(f"{path}: left from an earlier conversion and cannot be removed ({exc})")


def _write_model(
    best: Attempt,
    spec: ModelSpec,
    options: ConvertOptions,
    rep: CalibrationSet,
    target: Path,
    facts: dict[str, Any],
) -> tuple[Path, list[str]]:
    """Write the chosen model with its accuracy facts, validate it and write its report:
    (the report's path, its warnings)."""
    atomic_write_bytes(target, _with_accuracy_metadata(best, spec, facts))
    report, _ = validate(
        target,
        replace(options, float_layers=tuple(e.node for e in best.float_layers)),
        calibration=rep.stats,
    )
    return write_report(report, report_path_for(target)), list(report.warnings)


def _with_accuracy_metadata(a: Attempt, spec: ModelSpec, facts: dict[str, Any]) -> bytes:
    """The candidate's bytes with its metadata extended by the measured accuracy facts (and
    FACTS: the limit, whether it was met, the data, the source model's record)."""
    payload = read_metadata(a.data) or {}
    extra = {k: v for k, v in payload.items() if k != "spec"}
    extra.update(
        {
            "float_layers": [e.node for e in a.float_layers],
            "float_layer_names": a.labels,
            "miou": a.miou,
            "miou_drop": round(a.drop, 4),
            **facts,
        }
    )
    # the spec the candidate was exported with: what the model computes ("logits" once its
    # softmax head was left out), where the loaded model's spec said "softmax"
    return embed_metadata(a.data, read_spec(a.data) or spec, extra=extra)
