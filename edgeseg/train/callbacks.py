"""Training callbacks: validation mIoU in inference mode (scored the way `edgeseg eval` and the
runtime score, at the mask's own resolution), best-checkpoint saving, per-epoch history/resume
state, and the loss / mIoU curves plot. Every file is written to a temp name, then renamed.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from edgeseg.core.fileio import (
    atomic_path,
    make_dir,
    write_bytes,
    write_error,
    write_json,
    write_text,
    write_together,
)
from edgeseg.core.metrics import MetricAccumulator, SegmentationScores
from edgeseg.core.processing import (
    Placement,
    class_map_from_output,
    class_map_to_frame,
    prepare_image,
    prepare_mask,
)
from edgeseg.core.spec import ModelSpec
from edgeseg.core.stops import stop_point
from edgeseg.data.dataset import Dataset

HISTORY_FIELDS = ("epoch", "loss", "val_loss", "val_miou", "val_pixel_accuracy", "lr", "seconds")


def atomic_save_model(model: keras.Model, path: Path) -> None:
    """model.save to a temp `.keras` beside `path`, then rename over it (fileio.atomic_path)."""
    with atomic_path(path, sweep=True) as tmp:  # a killed run's staged model goes
        try:
            model.save(tmp)
        except OSError as exc:
            raise write_error(path, exc) from None


class ValidationData:
    """Validation pairs held in memory once: model-input pixels, masks at model and full size."""

    CHUNK = 16  # images per forward pass: bounds memory for activations and softmax outputs

    def __init__(self, ds: Dataset, spec: ModelSpec, loss: keras.losses.Loss) -> None:
        pixels, model_masks, self.masks, self.placements = [], [], [], []
        for _, image, mask in ds.iter_split("val"):
            px, placement = prepare_image(image, spec)
            pixels.append(px)
            model_masks.append(prepare_mask(mask, spec))
            self.masks.append(mask)
            self.placements.append(placement)
        self.pixels, self.model_masks = np.stack(pixels), np.stack(model_masks)
        self.num_classes, self.ignore_index, self.loss = spec.num_classes, spec.ignore_index, loss

    def score(self, predict: Callable[[Any], Any]) -> tuple[SegmentationScores, float]:
        """(scores, loss) of `predict` (the model in inference mode); scores at each mask's size."""
        acc = MetricAccumulator(self.num_classes, self.ignore_index)
        losses = []
        for start in range(0, len(self.pixels), self.CHUNK):
            chunk = slice(start, start + self.CHUNK)
            probs = np.asarray(predict(self.pixels[chunk].astype(np.float32)))
            losses.append(float(self.loss(self.model_masks[chunk], probs)) * len(probs))
            stop_point()  # a Ctrl-C during a long validation stops here
            for i, out in enumerate(probs, start):
                acc.update(self.masks[i], _to_frame(out, self.placements[i]))
        return acc.scores(), sum(losses) / len(self.pixels)


def _to_frame(output: np.ndarray, placement: Placement) -> np.ndarray:
    return class_map_to_frame(class_map_from_output(output), placement)


class StopPoints(keras.callbacks.Callback):
    """Each batch's end is where a Ctrl-C or SIGTERM that came during the step stops a fit run
    in `core.stops.safe_points` (raised inside TensorFlow's C code it was a SystemError)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        stop_point()


class ValidationMIoU(keras.callbacks.Callback):
    """Adds val_miou / val_pixel_accuracy to the epoch logs (so early stopping can watch them)."""

    def __init__(self, data: ValidationData, agree: Callable[[float], float] | None = None) -> None:
        super().__init__()
        self.data, self.agree = data, agree
        self.last: SegmentationScores | None = None
        self._predict: Any = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._predict is None:
            # a plain function on this process's devices, outside any distribution strategy:
            # every worker scores the whole val set itself
            shape = (None, *self.data.pixels.shape[1:])
            # a partial, not a lambda: TensorFlow counts traces per code object, so every run in
            # one process (a notebook) added one to the same count until it warned "triggered
            # tf.function retracing"; a partial of this run's model is counted on its own
            self._predict = tf.function(
                functools.partial(self.model, training=False),
                input_signature=[tf.TensorSpec(shape, tf.float32)],
            )
        self.last, loss = self.data.score(self._predict)
        if logs is not None:
            logs["val_loss"] = loss
            miou = 0.0 if math.isnan(self.last.miou) else self.last.miou
            # multi-worker: BatchNorm moving stats are per worker, so scores differ slightly;
            # `agree` averages them so every worker takes the same checkpoint/stopping decision
            logs["val_miou"] = self.agree(miou) if self.agree else miou
            logs["val_pixel_accuracy"] = self.last.pixel_accuracy


class BestCheckpoint:
    """Keeps model.keras + config.json as the best epoch so far (by val_miou). Not a callback of
    its own: EpochLog writes its files with the epoch's history and resume state, as one."""

    def __init__(
        self,
        model_path: Path,
        validation: ValidationMIoU,
        write_config: Callable[[SegmentationScores, int], None],
        best: float = -math.inf,
    ) -> None:
        self.model_path, self.validation, self.write_config = model_path, validation, write_config
        self.best, self.best_epoch = best, -1

    def writes(
        self, model: keras.Model, epoch: int, logs: dict[str, Any]
    ) -> list[Callable[[], object]]:
        """What keeps MODEL when this epoch's val_miou beats the best (nothing otherwise); the
        best is marked once the model and its config are written, never ahead of them."""
        scores, miou = self.validation.last, logs.get("val_miou", -math.inf)
        if scores is None or not miou > self.best:
            return []

        def mark() -> None:
            self.best, self.best_epoch = float(miou), epoch

        return [
            lambda: atomic_save_model(model, self.model_path),
            lambda: self.write_config(scores, epoch),
            mark,
        ]


class EpochLog(keras.callbacks.Callback):
    """At each epoch's end: the best checkpoint (when the epoch beat it), history.csv and the
    resume state (last weights + optimizer), written together. A Ctrl-C or SIGTERM between
    them left a new model.keras with no resume state: "continue with --resume", which was then
    refused, and the run replaced by an epoch's checkpoint no one could resume."""

    def __init__(
        self,
        history_path: Path,
        resume_dir: Path,
        rows: list[dict[str, Any]],
        checkpoint: BestCheckpoint,
    ) -> None:
        super().__init__()
        self.history_path, self.resume_dir, self.rows = history_path, resume_dir, rows
        self.checkpoint = checkpoint
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        lr = self.model.optimizer.learning_rate
        row = {k: logs.get(k, "") for k in HISTORY_FIELDS}
        row.update(
            epoch=epoch + 1,
            lr=float(np.asarray(lr)),
            seconds=round(time.perf_counter() - self._start, 2),
        )
        rows = [*self.rows, row]

        def log_epoch() -> None:
            write_history(self.history_path, rows)
            self.rows[:] = rows

        def save_state() -> None:
            make_dir(self.resume_dir)
            atomic_save_model(self.model, self.resume_dir / "last.keras")
            state = {
                "epoch": epoch + 1,
                "best_miou": self.checkpoint.best,
                "best_epoch": self.checkpoint.best_epoch + 1,
            }
            write_json(self.resume_dir / "state.json", state)

        write_together(*self.checkpoint.writes(self.model, epoch, logs), log_epoch, save_state)


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def plot_curves(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss and val mIoU per epoch as a PNG; None when matplotlib is missing. A Figure of its
    own, not pyplot: switching the process's backend to Agg broke a notebook's inline plots."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None

    def col(name: str) -> list[float]:
        return [float(r[name]) if r.get(name) not in ("", None) else math.nan for r in rows]

    epochs = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_iou = fig.subplots(1, 2)
    ax_loss.plot(epochs, col("loss"), "o-", label="train")
    ax_loss.plot(epochs, col("val_loss"), "o-", label="val")
    ax_loss.set(title="loss", xlabel="epoch")
    ax_loss.legend()
    ax_iou.plot(epochs, col("val_miou"), "o-", color="tab:green")
    ax_iou.set(title="validation mIoU (inference mode)", xlabel="epoch", ylim=(0, 1))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    write_bytes(path, buf.getvalue())
    return path
