"""The quantisation-aware phase of `edgeseg train` (on by default; --no-qat skips it): after
float training the best float checkpoint is rebuilt with the int8 arithmetic simulated
(`edgeseg.train.qat`), its ranges calibrated on training frames. That model becomes model.keras
(what convert, eval and check read), unless `--qat-steps N` fine-tuning beats it on validation;
the float model stays as model_float.keras and config.json's "qat" block keeps its scores.
"""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edgeseg.core.fileio import make_dir, write_bytes, write_json, write_together
from edgeseg.core.metrics import SegmentationScores
from edgeseg.core.processing import prepare_image, read_image
from edgeseg.core.spec import ModelSpec
from edgeseg.data.dataset import Dataset
from edgeseg.train import CONFIG_NAME, FLOAT_MODEL
from edgeseg.train.callbacks import (
    BestCheckpoint,
    EpochLog,
    StopPoints,
    ValidationData,
    ValidationMIoU,
    atomic_save_model,
)
from edgeseg.train.config import TrainConfig, run_config
from edgeseg.train.cost import ModelCost
from edgeseg.train.losses import SegmentationLoss
from edgeseg.train.qat import quantize_model
from edgeseg.train.qat_layers import QuantRescale
from edgeseg.train.qat_record import float_network_spec

log = logging.getLogger(__name__)
CALIB_FRAMES = 200  # training frames whose activation ranges set the int8 grids
LR_FACTOR = 0.05  # fine-tuning starts at this share of --lr (where the float schedule ended)


def calibration_frames(ds: Dataset, spec: ModelSpec, count: int, seed: int) -> list[np.ndarray]:
    """Up to `count` training images (seeded choice), prepared exactly as the runtime does."""
    samples = list(ds.train)
    random.Random(seed).shuffle(samples)
    frames = []
    for sample in samples[:count]:
        image = read_image(sample.image)
        frames.append(prepare_image(image, spec)[0].astype(np.float32))
    return frames


def restore_float_model(run_dir: Path) -> None:
    """Put a run's float model back as model.keras (and its scores in config.json): a resumed
    run continues float training and fine-tunes again from the new best."""
    float_path, config_path = run_dir / FLOAT_MODEL, run_dir / CONFIG_NAME
    if not float_path.is_file():
        return
    payload = json.loads(config_path.read_text()) if config_path.is_file() else None
    qat = payload.pop("qat", None) if payload else None
    if payload is None or not qat:
        float_path.replace(run_dir / "model.keras")
        return
    # the spec's own 'qat' record is this one (run_config copies it out): one owner reads it
    payload["spec"] = float_network_spec(ModelSpec.from_dict(payload["spec"])).to_dict()
    payload["val"] = qat["float_val"]

    def put_back() -> None:  # done once, even if asked again after an interrupt
        if float_path.is_file():
            float_path.replace(run_dir / "model.keras")

    write_together(put_back, lambda: write_json(config_path, payload))


class QuantisationAwarePhase:
    """`prepare` (inside the strategy's scope) builds and compiles the model; `fit` trains it."""

    def __init__(
        self,
        config: TrainConfig,
        ds: Dataset,
        spec: ModelSpec,
        run_dir: Path,
        rows: list[dict[str, Any]],
        cost: ModelCost,
    ) -> None:
        self.config, self.ds, self.run_dir, self.rows, self.cost = config, ds, run_dir, rows, cost
        self.spec = spec
        self.model: keras.Model | None = None
        self.train_step: dict[str, Any] | None = None

    def prepare(self, loss: SegmentationLoss) -> None:
        model_path = self.run_dir / "model.keras"
        float_model = keras.models.load_model(model_path, compile=False, safe_mode=True)
        float_run = json.loads((self.run_dir / CONFIG_NAME).read_text())
        float_val = float_run["val"]
        self.train_step = float_run.get("train_step")  # what --xla auto chose, kept on record
        write_bytes(self.run_dir / FLOAT_MODEL, model_path.read_bytes())
        frames = calibration_frames(self.ds, self.spec, CALIB_FRAMES, self.config.seed)
        tuned = (
            f"fine-tuned {self.config.qat_steps} steps"
            if self.config.qat_steps
            else "calibrated, not fine-tuned (--qat-steps 0)"
        )
        log.info(
            "quantisation-aware model from the float model (val mIoU %s): %s, int8 ranges from "
            "%d training frames",
            "n/a" if float_val["miou"] is None else f"{float_val['miou']:.3f}",
            tuned,
            len(frames),
        )
        self.model = quantize_model(float_model, frames)
        lr = self.config.lr * LR_FACTOR
        steps = max(1, self.config.qat_steps)  # 0: the model as calibrated, never stepped
        schedule = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.0)
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=loss)
        qat = {
            "steps": self.config.qat_steps,
            "lr": lr,
            "calibration_frames": len(frames),
            "float_val": float_val,
            "float_model": FLOAT_MODEL,
            "float_norm": [self.spec.norm_scale, self.spec.norm_offset],
        }
        rescale = [layer for layer in self.model.layers if isinstance(layer, QuantRescale)]
        norm = (
            {"norm_scale": rescale[0].exact_scale, "norm_offset": rescale[0].exact_offset}
            if rescale
            else {}
        )
        self.spec = self.spec.with_updates(extra={**self.spec.extra, "qat": qat}, **norm)

    def fit(
        self,
        data: Any,
        steps_per_epoch: int,
        history_path: Path,
        resume_dir: Path,
        verbose: int = 1,
    ) -> None:
        """Fine-tune; every epoch's quantisation-aware model is validated, the best one saved."""
        assert self.model is not None, "call prepare() first"
        model_path, config_path = self.run_dir / "model.keras", self.run_dir / CONFIG_NAME

        def write_config(scores: SegmentationScores, epoch: int) -> None:
            payload = run_config(self.spec, self.config, self.cost, scores, epoch, self.train_step)
            write_json(config_path, payload)

        data_val = ValidationData(self.ds, self.spec, self.model.loss)
        validation = ValidationMIoU(data_val)
        start = len(self.rows)
        # the model as calibrated, before any step, is the first candidate: fine-tuning only
        # replaces it when validation says it is better
        model = self.model
        scores, _ = data_val.score(lambda x: model(x, training=False))
        write_together(
            lambda: atomic_save_model(model, model_path),
            lambda: write_config(scores, start - 1),
        )
        log.info("quantisation-aware model as calibrated: val mIoU %.3f", scores.miou)
        best = -math.inf if math.isnan(scores.miou) else scores.miou
        checkpoint = BestCheckpoint(model_path, validation, write_config, best=best)
        if self.config.qat_steps == 0:
            return
        make_dir(resume_dir / "qat")
        steps = min(steps_per_epoch, self.config.qat_steps)
        epochs = math.ceil(self.config.qat_steps / steps)
        self.model.fit(
            data,
            epochs=start + epochs,
            initial_epoch=start,
            steps_per_epoch=steps,
            callbacks=[
                StopPoints(),
                validation,
                # the best checkpoint, and its resume state apart: --resume continues the float
                # model (restore_float_model)
                EpochLog(history_path, resume_dir / "qat", self.rows, checkpoint),
                keras.callbacks.TerminateOnNaN(),
            ],
            shuffle=False,
            verbose=verbose,
        )
