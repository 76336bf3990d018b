"""The Keras fit loop behind `edgeseg.train.fit.train` (TensorFlow is imported here, not in fit.py,
so a bad dataset fails before TensorFlow even loads)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edgeseg.core.errors import ModelError
from edgeseg.core.fileio import scratch_dir, set_aside, write_json
from edgeseg.core.metrics import SegmentationScores
from edgeseg.core.spec import ModelSpec
from edgeseg.core.stops import safe_points
from edgeseg.data.dataset import Dataset
from edgeseg.train import CONFIG_NAME, FLOAT_MODEL
from edgeseg.train.callbacks import (
    BestCheckpoint,
    EpochLog,
    StopPoints,
    ValidationData,
    ValidationMIoU,
    plot_curves,
    read_history,
)
from edgeseg.train.config import StoppedBeforeCheckpoint, TrainConfig, TrainResult, run_config
from edgeseg.train.cost import measure_cost
from edgeseg.train.losses import SegmentationLoss
from edgeseg.train.mobilenet_unet import build_mobilenetv2_unet
from edgeseg.train.model import build_unet
from edgeseg.train.pipeline import train_dataset
from edgeseg.train.qat_phase import QuantisationAwarePhase, restore_float_model
from edgeseg.train.recipe import class_weights, steps_per_epoch
from edgeseg.train.run_folder import chief_lock
from edgeseg.train.strategy import is_chief, keras_multiworker_patch, make_strategy
from edgeseg.train.xla import XlaProbe, plan_xla

log = logging.getLogger(__name__)
RUN_FILES = ("model.keras", CONFIG_NAME, "history.csv", "curves.png", FLOAT_MODEL)


def _optimizer(config: TrainConfig, steps: int) -> keras.optimizers.Optimizer:
    """Adam; cosine decay over the whole budget after a linear warm-up of `config.warmup`."""
    lr: Any = config.lr
    if config.lr_schedule == "cosine":
        total = int(config.epochs or 1) * steps
        warmup = int(total * config.warmup)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else config.lr,
            decay_steps=max(1, total - warmup),
            alpha=0.05,
            warmup_target=config.lr if warmup else None,
            warmup_steps=warmup,
        )
    return keras.optimizers.Adam(learning_rate=lr)


def _fresh_model(config: TrainConfig, spec: ModelSpec) -> keras.Model:
    """The architecture `config.encoder` names, uncompiled, with its encoder weights loaded."""
    shape = (*spec.input_size, spec.channels)
    # workers see different shards: without sync each keeps its own moving statistics
    sync = config.strategy == "multiworker"
    if config.encoder == "unet":
        return build_unet(
            shape,
            spec.num_classes,
            depth=config.depth,
            base_filters=config.filters,
            upsample=config.upsample,  # type: ignore[arg-type]
            synchronized_bn=sync,
        )
    try:
        with warnings.catch_warnings():
            # Keras warns once per object of a weights file that does not fit (76 lines for
            # another --alpha; the error below says it in one), and that ImageNet weights for
            # 224x224 serve any input size (as they do: convolutions take any size)
            warnings.simplefilter("ignore", UserWarning)
            return build_mobilenetv2_unet(
                shape,
                spec.num_classes,
                alpha=config.alpha,
                upsample=config.upsample,  # type: ignore[arg-type]
                weights=config.weights,
                synchronized_bn=sync,
            )
    except Exception as exc:  # download (URLError, OSError) or a file of other shapes (ValueError)
        if config.weights is None:
            raise
        hint = (
            "Keras downloads them once into ~/.keras/models; offline, pass that file's path"
            if config.weights == "imagenet"
            else "it must hold keras.applications.MobileNetV2 weights (include_top=False) for "
            f"--alpha {config.alpha:g}"
        )
        raise ModelError(
            f"--weights {config.weights}: cannot load MobileNetV2 encoder weights "
            f"({_load_failure(exc)}); {hint}"
        ) from exc


def _load_failure(exc: Exception) -> str:
    """Why Keras could not load a weights file, in a line: its message puts the reason (the
    shapes that differ) after a blank line, and a first line alone ended in a colon."""
    text = " ".join(str(exc).split())
    shapes = re.search(
        r"A total of (\d+) objects could not be loaded.*?name=([\w.]+).*?"
        r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))",
        text,
    )
    if shapes:
        count, layer, here, there = shapes.groups()
        return f"{count} layers do not fit, such as {layer}: {here} here, {there} in the file"
    return f"{type(exc).__name__}: {text[:300]}"


def _loss(config: TrainConfig, frequencies: np.ndarray, spec: ModelSpec) -> SegmentationLoss:
    """The recipe's loss, class-weighted from the training masks' pixel frequencies."""
    weights = None
    if config.class_weighting != "none":
        weights = class_weights(frequencies, config.class_weighting)
    return SegmentationLoss(config.loss, spec.ignore_index, class_weights=weights)


def _build(
    config: TrainConfig,
    spec: ModelSpec,
    steps: int,
    resume_dir: Path,
    run_dir: Path,
    loss: SegmentationLoss,
) -> keras.Model:
    """A fresh compiled model, or the resumed one (weights + optimizer from resume/last.keras)."""
    if config.resume:
        last = resume_dir / "last.keras"
        try:
            if last.is_file():
                return keras.models.load_model(last, compile=True, safe_mode=True)
            model = keras.models.load_model(run_dir / "model.keras", compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for corrupt archives
            raise ModelError(
                f"{run_dir}: cannot load the run to resume ({type(exc).__name__}: {exc})"
            ) from exc
    else:
        model = _fresh_model(config, spec)
    model.compile(optimizer=_optimizer(config, steps), loss=loss)
    return model


def _early_stopping(config: TrainConfig) -> list[keras.callbacks.Callback]:
    """EarlyStopping on val mIoU when --patience is given (off by default: TrainConfig.patience)."""
    if config.patience is None:
        return []
    return [keras.callbacks.EarlyStopping("val_miou", mode="max", patience=config.patience)]


def _cross_worker_mean(strategy: Any) -> Any:
    """A function averaging one float over all replicas of a multi-worker strategy."""
    import tensorflow as tf

    def mean(value: float) -> float:
        per_replica = strategy.run(lambda: tf.constant(value, tf.float32))
        return float(strategy.reduce("MEAN", per_replica, axis=None))

    return mean


def _resume_state(config: TrainConfig, resume_dir: Path) -> tuple[int, float]:
    if not config.resume:
        return 0, -math.inf
    state_path = resume_dir / "state.json"
    if not state_path.is_file():
        return 0, -math.inf
    state = json.loads(state_path.read_text())
    return int(state["epoch"]), float(state["best_miou"])


def run_fit(
    config: TrainConfig,
    ds: Dataset,
    spec: ModelSpec,
    user_callbacks: list[Any],
    frequencies: np.ndarray,
) -> TrainResult:
    """Fit, checkpoint and report; see `edgeseg.train.fit.train`. `frequencies`: each class's
    share of the training pixels (recipe.count_pixels), for the class weights."""
    assert config.min_scale is not None, "run_fit takes a config from fit.resolve_recipe"
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    # multi-worker: every worker runs the same loop, only the chief writes into --out
    with contextlib.ExitStack() as stack:
        run_dir = config.out if chief else stack.enter_context(scratch_dir("edgeseg-worker-"))
        if chief:  # while it sets the previous run aside and writes the new one
            stack.enter_context(chief_lock(config.out, config.strategy))
        with _previous_run_kept(run_dir, resume=config.resume, enabled=chief):
            return _fit_in(config, ds, spec, user_callbacks, frequencies, strategy, chief, run_dir)


@contextlib.contextmanager
def _previous_run_kept(run_dir: Path, *, resume: bool, enabled: bool) -> Iterator[None]:
    """The run in RUN_DIR stays whole until the new one has a checkpoint of its own.

    `--overwrite` deleted the finished run before the first epoch, and a Ctrl-C (or any
    failure) in that epoch left an empty folder; `--resume` of a finished run put its float
    model back as model.keras at once, and a stop before a better epoch lost the quantisation-
    aware model. The files are set aside (`fileio.set_aside`) and put back when the run ends
    without a new model.keras.
    """
    if not enabled:
        yield
        return
    names: tuple[str, ...] = (*RUN_FILES, "resume")
    if resume:  # a finished quantisation-aware run: its models and config, copied
        finished = (run_dir / FLOAT_MODEL).is_file()
        names = ("model.keras", CONFIG_NAME, FLOAT_MODEL) if finished else ()
    # the new work is done once model.keras differs from what the set-up left (--resume of a
    # finished run starts from its float model: restore_float_model, then `begin`)
    with set_aside(run_dir, names, copy=resume, witness="model.keras") as aside:
        restore_float_model(run_dir)
        aside.begin()
        yield


def _fit_in(
    config: TrainConfig,
    ds: Dataset,
    spec: ModelSpec,
    user_callbacks: list[Any],
    frequencies: np.ndarray,
    strategy: Any,
    chief: bool,
    run_dir: Path,
) -> TrainResult:
    """run_fit's training, in RUN_DIR (--out, or a worker's own folder)."""
    assert config.min_scale is not None
    model_path, config_path = run_dir / "model.keras", run_dir / CONFIG_NAME
    history_path, resume_dir = run_dir / "history.csv", run_dir / "resume"
    # a resumed run is read from --out (shared storage in multi-worker runs), written to run_dir
    initial_epoch, best = _resume_state(config, config.out / "resume")
    rows = read_history(config.out / "history.csv")[:initial_epoch] if config.resume else []
    steps = config.steps_per_epoch or steps_per_epoch(len(ds.train), config.batch)

    with strategy.scope():
        loss = _loss(config, frequencies, spec)
        model = _build(config, spec, steps, config.out / "resume", config.out, loss)
    if tuple(model.input_shape[1:]) != (*spec.input_size, spec.channels):
        raise ModelError(
            f"{run_dir}: the saved model takes {model.input_shape[1:]}, not {spec.input_size}"
        )
    # measured on a plain copy: the converter cannot read a distributed model's variables
    cost = measure_cost(keras.models.clone_model(model))
    spec = spec.with_updates(extra={**spec.extra, "cost": cost.to_dict()})

    xla = plan_xla(config, (int(config.epochs or 1) - initial_epoch) * steps)
    model.jit_compile = bool(xla)
    probe = XlaProbe() if xla is None else None

    def write_config(scores: SegmentationScores, epoch: int) -> None:
        payload = run_config(spec, config, cost, scores, epoch)
        write_json(config_path, payload)

    agree = _cross_worker_mean(strategy) if config.strategy == "multiworker" else None
    validation = ValidationMIoU(ValidationData(ds, spec, model.loss), agree)
    checkpoint = BestCheckpoint(model_path, validation, write_config, best=best)
    callbacks = [
        StopPoints(),
        validation,
        EpochLog(history_path, resume_dir, rows, checkpoint),  # the best checkpoint too
        *_early_stopping(config),
        keras.callbacks.TerminateOnNaN(),
        *([probe] if probe is not None else []),
        *user_callbacks,
    ]
    data = train_dataset(
        ds,
        spec,
        batch=config.batch,
        seed=config.seed,
        augment=config.augment,
        cache=config.cache,
        min_scale=config.min_scale,
    )
    if chief:  # once the model and data are ready: a run that fails to start prints only its error
        log.info("%s", config.recipe_line())
    interrupted = False
    if config.strategy == "multiworker":
        shapes = ((config.batch, *spec.input_size, spec.channels), (config.batch, *spec.input_size))
        patch: Any = keras_multiworker_patch(model, strategy, shapes)
    else:
        patch = contextlib.nullcontext()
    try:
        with patch, safe_points():  # a stop waits for the batch's end (StopPoints)
            model.fit(
                data,
                epochs=int(config.epochs or 1),
                initial_epoch=initial_epoch,
                steps_per_epoch=steps,
                callbacks=callbacks,
                shuffle=False,  # the tf.data pipeline shuffles
                verbose=config.verbose if chief else 0,
            )
    except KeyboardInterrupt:
        interrupted = True
        if not model_path.is_file():
            raise StoppedBeforeCheckpoint from None  # nothing worth keeping yet
    if not model_path.is_file():
        raise ModelError(
            f"{run_dir}: training finished without a usable checkpoint (loss became NaN?)"
        )
    if probe is not None and probe.result is not None:  # on record, whichever epoch was best
        saved = {**json.loads(config_path.read_text()), "train_step": probe.result}
        write_json(config_path, saved)
    if config.makes_qat_model and not interrupted:
        phase = QuantisationAwarePhase(config, ds, spec, run_dir, rows, cost)
        try:
            with strategy.scope():
                phase.prepare(loss)
            with safe_points():
                phase.fit(data, steps, history_path, resume_dir, verbose=config.verbose)
        except KeyboardInterrupt:
            interrupted = True  # model.keras: the best checkpoint so far, float or not
    curves = plot_curves(rows, run_dir / "curves.png") if rows else None
    saved = json.loads(config_path.read_text())["val"]
    result = TrainResult(
        run_dir=run_dir,
        model_path=model_path,
        config_path=config_path,
        history_path=history_path,
        curves_path=curves,
        best_miou=float(saved["miou"] if saved["miou"] is not None else math.nan),
        per_class_iou=dict(saved["per_class_iou"]),
        epochs_run=len(rows),
        interrupted=interrupted,
        replicas=int(strategy.num_replicas_in_sync),
        cost=cost,
        config=config,
        float_model_path=run_dir / FLOAT_MODEL if (run_dir / FLOAT_MODEL).is_file() else None,
    )
    return result
