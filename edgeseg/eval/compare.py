"""`edgeseg check`: how much accuracy did int8 conversion cost? Both models score the same images in
ONE pass (each image read once); the images where they disagree most are kept in a bounded heap."""

from __future__ import annotations

import heapq
import math
import numbers
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeseg.core.errors import (
    DatasetError,
    EdgesegError,
    ModelError,
    path_argument,
    shortlist,
)
from edgeseg.core.fileio import (
    check_output,
    file_sha256,
    write_error,
    write_image,
    write_json,
    write_text,
)
from edgeseg.core.metrics import MetricAccumulator
from edgeseg.core.model_metadata import Quant, read_metadata, stale_source
from edgeseg.core.spec import ModelSpec
from edgeseg.eval.check_result import CheckResult, Disagreement
from edgeseg.eval.common import (
    Item,
    Progress,
    check_apart_from_data,
    check_compatible,
    check_model_classes,
    count_items,
    iter_chunks,
    open_eval_data,
)
from edgeseg.eval.evaluate import (
    EvalResult,
    Timer,
    check_limit,
    iou_by_name,
    no_pixels,
    timed_predict,
    warm_up,
)
from edgeseg.eval.predictor import Predictor, TFLitePredictor, open_predictor
from edgeseg.eval.report import disagreement_grid, make_disagreement
from edgeseg.train import CONFIG_NAME

if TYPE_CHECKING:
    from edgeseg.runtime.segmenter import Segmenter

TOP_K = 6


def metadata_baseline(
    int8_path: Path, spec: ModelSpec
) -> tuple[float, dict[str, float | None] | None]:
    """(float mIoU, per-class IoU or None) recorded in the int8 model at convert time."""
    if spec.float_miou is None:
        raise ModelError(
            f"{int8_path}: carries no float mIoU in its metadata (converted without evaluation "
            "data); pass the float model too: edgeseg check FLOAT.keras INT8.tflite --data ..."
        )
    value = spec.float_miou
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        raise ModelError(
            f"{int8_path}: metadata field 'float_miou' must be a number in (0, 1], got {value!r}; "
            "pass the float model too: edgeseg check FLOAT.keras INT8.tflite --data ..."
        )
    per_class = spec.float_per_class_iou
    if per_class is None or set(per_class) != set(spec.class_names):
        per_class = None
    return float(spec.float_miou), per_class


@dataclass
class _Side:
    """One model's running scores and timing."""

    pred: Predictor
    acc: MetricAccumulator
    timer: Timer = field(default_factory=Timer)


class _Tally:
    """The single pass over the images: both models' confusion matrices, pixel agreement, and a
    bounded min-heap of the most-disagreeing images (so memory stays flat)."""

    def __init__(self, int8: Predictor, flt: Predictor | None, ignore: int, top_k: int) -> None:
        n = int8.spec.num_classes
        self.int8 = _Side(int8, MetricAccumulator(n, ignore))
        self.float = _Side(flt, MetricAccumulator(n, ignore)) if flt is not None else None
        self.top_k = top_k
        self.heap: list[tuple[float, int, Disagreement]] = []
        self.same = self.pixels = self.done = 0
        for side in (self.int8, self.float):
            if side is not None:
                warm_up(side.pred)

    def add(self, chunk: list[Item]) -> None:
        frames = [image for _, image, _ in chunk]
        q_maps = timed_predict(self.int8.pred, frames, self.int8.timer)
        f_maps = None
        if self.float is not None:
            f_maps = timed_predict(self.float.pred, frames, self.float.timer)
        for i, (sample, image, mask) in enumerate(chunk):
            self.int8.acc.update(mask, q_maps[i])
            if self.float is None or f_maps is None:
                continue
            self.float.acc.update(mask, f_maps[i])
            eq = int(np.count_nonzero(f_maps[i] == q_maps[i]))
            self.same, self.pixels = self.same + eq, self.pixels + q_maps[i].size
            frac = 1.0 - eq / q_maps[i].size
            if len(self.heap) < self.top_k or frac > self.heap[0][0]:
                spec = self.int8.pred.spec
                item = make_disagreement(sample.stem, frac, image, f_maps[i], q_maps[i], spec)
                push = heapq.heappush if len(self.heap) < self.top_k else heapq.heapreplace
                push(self.heap, (frac, self.done + i, item))
        self.done += len(chunk)

    @property
    def agreement(self) -> float | None:
        return self.same / self.pixels if self.pixels else None

    def worst(self) -> tuple[Disagreement, ...]:
        """Most-disagreeing first; ties keep dataset order; images where they agree on every
        pixel are not 'disagreeing' and are left out."""
        ranked = sorted(self.heap, key=lambda e: (-e[0], e[1]))
        return tuple(d for frac, _, d in ranked if frac > 0)

    def result(self, side: _Side, data: Path) -> EvalResult:
        """One model's scores; beside the other model's, over the classes the masks hold (both
        models average the same classes: see scores_from_confusion)."""
        s = side.pred
        paired = self.float is not None
        scores, matrix = side.acc.scores(truth_classes=paired), side.acc.matrix.copy()
        return EvalResult(s.path, data, s.spec, scores, self.done, side.timer.mean_ms, matrix)


_ORDER = (
    "the order is FLOAT INT8: edgeseg check model.keras model_int8.tflite --data ... "
    "(in Python: edgeseg.check(int8_model, data, float_model=...))"
)


def _integer_input(pred: Predictor) -> bool:
    """Whether a predictor is a .tflite model fed integer pixels (a quantised model)."""
    return (
        isinstance(pred, TFLitePredictor) and np.dtype(pred.segmenter.input["dtype"]).kind in "iu"
    )


def _quant_of(model: Path) -> str:
    """What the converted model is by its metadata ("int8" without a record, or with one that
    names no kind convert writes: the name goes into check.md's table and headings)."""
    quant = (read_metadata(model) or {}).get("quant")
    return quant if quant in {q.value for q in Quant} else "int8"


def _check_not_stale(float_path: Path, int8_path: Path) -> None:
    """An int8 model converted from an earlier file of the same name (a run retrained with
    --overwrite or --resume, not converted again) would report a false regression: refused."""
    payload = read_metadata(int8_path) or {}
    recorded, name = payload.get("source_sha256"), payload.get("source_model")
    if not isinstance(recorded, str):
        return
    if name == float_path.name and float_path.is_file() and file_sha256(float_path) != recorded:
        beside = int8_path.parent / name
        if (
            beside.is_file()
            and beside.resolve() != float_path.resolve()
            and file_sha256(beside) == recorded
        ):  # not a retraining: two runs' models, and the int8 one's own .keras is beside it
            raise ModelError(
                f"{int8_path} was converted from {beside}, not from {float_path} (another "
                f"run's): compare it with its own, edgeseg check {beside} {int8_path}"
            )
        raise ModelError(
            f"{int8_path} was converted from an earlier {float_path.name} (retrained since, "
            f"e.g. with --overwrite or --resume): convert it again, edgeseg convert {float_path}"
        )
    _check_source_unchanged(int8_path)  # compared with its run's other model


def _check_source_unchanged(int8_path: Path) -> None:
    """Refuse an int8 model whose .keras beside it changed since it was converted."""
    if (source := stale_source(int8_path)) is not None:
        raise ModelError(
            f"{int8_path} was converted from an earlier {source.name} beside it (retrained "
            f"since, e.g. with --overwrite or --resume): convert it again, edgeseg convert "
            f"{source}"
        )


def _sources(tflite: Path) -> set[str]:
    """The .keras hashes a .tflite records having come from (its source; a quantisation-aware
    run's float network too); empty for a model converted before they were recorded."""
    if tflite.suffix.lower() != ".tflite":
        return set()
    payload = read_metadata(tflite) or {}
    found = (payload.get("source_sha256"), payload.get("float_source_sha256"))
    return {value for value in found if isinstance(value, str)}


def _check_same_run(float_path: Path, int8_path: Path) -> None:
    """Two .tflite models converted from different trainings (a float32 model converted again
    after a retraining, beside the int8 model left from before) showed a 'regression' of
    several points, exit 1: refused, exit 2. Models of one run share a recorded hash."""
    float_sources, int8_sources = _sources(float_path), _sources(int8_path)
    if float_sources and int8_sources and not float_sources & int8_sources:
        raise ModelError(
            f"{float_path.name} and {int8_path.name} were converted from different models "
            "(separate trainings, or one retrained since): convert both from the same run"
        )


def _spec_from_its_conversion(
    float_pred: Predictor, int8_path: Path, int8_spec: ModelSpec
) -> list[str]:
    """A .keras committed without the config.json `train` writes beside it was scored with
    defaults read off the model (stretch, no class names): a letterbox-trained model then agreed
    with its int8 model on 74% of the pixels, and check passed on the mismeasurement. When the
    int8 model records that it was converted from this very file (its SHA-256), its spec (how
    frames are prepared, the class names) is the float model's too."""
    config = float_pred.path.with_name(CONFIG_NAME)
    if float_pred.path.suffix.lower() != ".keras" or config.is_file():
        return []
    recorded = (read_metadata(int8_path) or {}).get("source_sha256")
    if recorded != file_sha256(float_pred.path):
        return [
            f"{float_pred.path.name} has no {CONFIG_NAME} beside it and {int8_path.name} was "
            "not converted from it: it is scored with defaults read off the model (commit the "
            f"{CONFIG_NAME} train wrote beside it)"
        ]
    float_pred.spec = int8_spec.with_updates(output_kind=float_pred.spec.output_kind)
    return [
        f"{float_pred.path.name} has no {CONFIG_NAME} beside it: how its frames are prepared "
        f"and its class names come from {int8_path.name}, converted from this very file"
    ]


def _check_drops(max_drop: object, max_class_drop: object) -> None:
    """The limits are mIoU points >= 0: a negative one failed a perfect model, NaN failed every
    model, and a string was a TypeError from deep inside the verdict."""
    for flag, value in (("--max-drop", max_drop), ("--max-class-drop", max_class_drop)):
        if value is None and flag == "--max-class-drop":
            continue
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not number or not math.isfinite(float(value)) or float(value) < 0:  # type: ignore[arg-type]
            raise EdgesegError(f"{flag} {value!r}: expected mIoU points, a number >= 0 (e.g. 1)")


def compare(
    float_model: str | Path | Segmenter | None,
    int8_model: str | Path | Segmenter,
    data_dir: str | Path,
    max_drop: float,
    max_class_drop: float | None = None,
    *,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    limit: int | None = None,
    top_k: int = TOP_K,
    threads: int | None = None,
) -> CheckResult:
    """Score float and int8 models on the same images and judge the drop against the limits.

    `float_model=None` takes the float mIoU recorded in the int8 model's metadata instead (no
    agreement figures or disagreement images then). With `out_dir`, writes check.json, check.md
    and (with a float model) disagreement.png there.
    """
    limit = check_limit(limit)
    _check_drops(max_drop, max_class_drop)
    if out_dir is not None:  # now, not after scoring both models
        folder = path_argument(out_dir, "--out-dir", "a folder for the reports")
        check_output(folder / "check.json", label="--out-dir")
        clear_reports(folder)
    if isinstance(int8_model, (str, os.PathLike)) and Path(int8_model).suffix.lower() == ".keras":
        # said before loading it with TensorFlow (seconds; or a load error for a bad file)
        raise ModelError(f"{int8_model}: a Keras model where the .tflite goes; {_ORDER}")
    int8_pred = open_predictor(int8_model, threads=threads)
    int8_path = int8_pred.path
    float_pred = open_predictor(float_model, threads=threads) if float_model is not None else None
    if float_pred is not None and _integer_input(float_pred) and not _integer_input(int8_pred):
        raise ModelError(
            f"{float_pred.path}: an integer-input model where the float model goes, and "
            f"{int8_path} takes float input: swapped? {_ORDER}"
        )
    notes: list[str] = []
    if float_pred is not None:
        _check_same_run(float_pred.path, int8_path)
        notes += _spec_from_its_conversion(float_pred, int8_path, int8_pred.spec)
        notes += check_compatible(float_pred.spec, int8_pred.spec, float_pred.path, int8_path)
        _check_not_stale(float_pred.path, int8_path)
    ds, split, split_notes = open_eval_data(data_dir, int8_pred.spec)
    if out_dir is not None:
        check_apart_from_data(Path(out_dir), ds, "--out-dir")
    notes += split_notes + check_model_classes(ds, int8_pred.spec, int8_path)
    if float_pred is None:
        # the baseline is the recorded float score of the model it was converted from: a
        # source retrained since makes it some other model's (a stale pass or a false fail)
        _check_source_unchanged(int8_path)
        float_miou, float_per_class = metadata_baseline(int8_path, int8_pred.spec)
        if max_class_drop is not None and float_per_class is None:
            raise ModelError(
                f"{int8_path}: --max-class-drop needs per-class float IoU, which its metadata "
                "lacks; pass the float model too"
            )
        notes.append(
            "baseline: the mIoU of the model it was converted from, recorded in the int8 "
            "model's metadata (that model's validation score in training: for a quantisation-"
            "aware run, model.keras's, which `info` lists beside model_float.keras's; or on "
            "--data with convert --max-drop), not measured on these images; no float model "
            "given, so no pixel agreement or disagreement images"
        )
    tally = _Tally(int8_pred, float_pred, ds.ignore_index, top_k)
    total = count_items(ds, split, limit)
    batch = getattr(float_pred, "batch_size", 1) if float_pred is not None else 1
    for chunk in iter_chunks(ds, split, limit, batch):
        tally.add(chunk)
        if progress:
            progress(tally.done, total)
    if tally.done == 0:
        raise DatasetError(f"{data_dir}: no images to evaluate (--limit {limit})")
    if not tally.int8.acc.matrix.any():  # all pixels ignored: no score, not a regression
        raise DatasetError(no_pixels(data_dir, tally.int8.acc.ignore_index))
    if float_pred is None and limit is not None:
        notes.append(
            f"--limit {limit} (limit= in Python): the int8 model was scored on {tally.done} "
            "image(s), the metadata baseline on the images it was measured on, so the drop "
            "compares different images; pass the float model to score both on the same ones"
        )
    q_eval = tally.result(tally.int8, Path(data_dir))
    f_eval = tally.result(tally.float, Path(data_dir)) if tally.float is not None else None
    if f_eval is not None:
        absent = [
            name
            for name, count in zip(
                int8_pred.spec.class_names, q_eval.confusion.sum(1), strict=False
            )
            if count == 0
        ]
        if absent:
            notes.append(
                f"class(es) absent from these masks ({shortlist(absent)}) are left out of both "
                "models' mIoU, so a stray pixel of one cannot swing the comparison"
            )
        float_miou = f_eval.miou
        float_per_class = iou_by_name(f_eval.scores, int8_pred.spec.class_names)
    res = CheckResult(
        int8=q_eval,
        float_eval=f_eval,
        baseline="metadata" if f_eval is None else "model",
        float_miou=float_miou,
        float_per_class_iou=float_per_class,
        max_drop=max_drop,
        max_class_drop=max_class_drop,
        agreement=tally.agreement,
        worst=tally.worst(),
        notes=tuple(notes),
        quant=_quant_of(int8_path),
    )
    if out_dir is not None:
        res = write_check_reports(res, Path(out_dir))
    return res


REPORTS = ("check.json", "check.md", "disagreement.png")


def clear_reports(out_dir: Path) -> None:
    """An earlier run's reports go before a new check scores anything: a check that then fails
    (bad data, Ctrl-C) must not leave its folder holding the earlier PASS for CI to upload."""
    for name in REPORTS:
        stale = out_dir / name
        if stale.is_file():
            try:
                stale.unlink()
            except OSError as exc:
                raise write_error(stale, exc, "--out-dir") from None


def write_check_reports(res: CheckResult, out_dir: Path) -> CheckResult:
    """check.json, check.md and (when there are float predictions) disagreement.png in out_dir."""
    outputs = {"json": out_dir / "check.json", "markdown": out_dir / "check.md"}
    if res.worst:
        outputs["disagreement"] = out_dir / "disagreement.png"
    res = replace(res, outputs=outputs)
    clear_reports(out_dir)  # again: a caller may write reports without compare()
    if res.worst:
        grid = disagreement_grid(res.worst, res.int8.spec, res.float_eval, res.int8, res.quant)
        write_image(outputs["disagreement"], grid, label="--out-dir", mkdir=True)
    write_text(outputs["markdown"], res.to_markdown(), label="--out-dir", mkdir=True)
    write_json(outputs["json"], res.to_dict(), label="--out-dir", mkdir=True)
    return res
