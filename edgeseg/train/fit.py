"""The training stage: validate the dataset, build (or resume) the U-Net, fit with Adam and a
cosine learning-rate schedule, keep the checkpoint with the best validation mIoU measured in
inference mode, and write the run folder:

    model.keras      best checkpoint (what `edgeseg convert` reads)
    config.json      {"spec": ModelSpec, "train": TrainConfig, "val": best val scores}
    history.csv      one row per epoch; curves.png: loss and val mIoU per epoch
    resume/          last epoch's model + optimizer state, for --resume
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from edgeseg.core.errors import DatasetError, EdgesegError, ModelError
from edgeseg.core.metrics import SegmentationScores
from edgeseg.core.spec import ModelSpec
from edgeseg.data.dataset import Dataset, open_dataset
from edgeseg.train.recipe import CLASS_WEIGHTINGS, default_size, image_size, plan_steps

log = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multiworker")
LR_SCHEDULES = ("cosine", "constant")
LOGICAL_CPUS_ENV = "EDGESEG_LOGICAL_CPUS"  # split the CPU into N logical devices (tests, demos)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved under "train" in config.json."""

    data: Path
    out: Path
    size: tuple[int, int] | None = None  # (height, width); None: from the data (default_size)
    epochs: int | None = None  # None: `steps` optimiser steps, rounded up to whole epochs
    batch: int = 8  # global batch: split across replicas with --strategy mirrored
    lr: float = 1e-3
    depth: int = 4
    filters: int = 16
    upsample: str = "transpose"
    loss: str = "ce+dice"  # or "ce"
    resize: str = "stretch"  # or "letterbox"
    channels: int = 3
    patience: int = 10  # epochs without a better val mIoU before stopping
    resume: bool = False
    strategy: str = "default"  # | "mirrored" | "multiworker"
    seed: int = 0
    classes: tuple[str, ...] | None = None
    val_fraction: float = 0.2
    augment: bool = True
    verbose: int = 1  # Keras: 0 silent, 1 progress bar, 2 one line per epoch
    lr_schedule: str = "cosine"  # or "constant"
    steps_per_epoch: int | None = None  # None: see recipe.plan_steps
    steps: int | None = None  # total optimiser steps when epochs is None (None: DEFAULT_STEPS)
    warmup: float = 0.05  # share of the steps with a linear learning-rate warm-up
    class_weighting: str = "none"  # "none" | "sqrt" (1/sqrt(freq)) | "median" (median-frequency)
    min_scale: float = 1.0  # random windows cover min_scale..1 of each side; 1: whole frames
    cache: bool = True  # keep decoded, resized training pairs in memory
    overwrite: bool = False  # replace an existing run in `out` instead of refusing

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        if self.size is not None:
            object.__setattr__(self, "size", tuple(int(v) for v in self.size))
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))
        checks = [
            (
                self.size is None or (len(self.size) == 2 and min(self.size) > 0),
                f"--size must be two positive numbers, got {self.size}",
            ),
            (self.epochs is None or self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.steps is None or self.steps >= 1, f"--steps must be >= 1, got {self.steps}"),
            (0.0 <= self.warmup < 1.0, f"--warmup must be in [0, 1), got {self.warmup}"),
            (
                self.class_weighting in CLASS_WEIGHTINGS,
                f"--class-weights must be one of {', '.join(CLASS_WEIGHTINGS)}, "
                f"got {self.class_weighting!r}",
            ),
            (
                0.1 <= self.min_scale <= 1.0,
                f"--min-scale must be in [0.1, 1], got {self.min_scale}",
            ),
            (self.batch >= 1, f"--batch must be >= 1, got {self.batch}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.depth >= 1, f"--depth must be >= 1, got {self.depth}"),
            (self.filters >= 1, f"--filters must be >= 1, got {self.filters}"),
            (
                self.upsample in ("transpose", "resize"),
                f"--upsample must be transpose or resize, got {self.upsample!r}",
            ),
            (self.loss in ("ce", "ce+dice"), f"--loss must be ce or ce+dice, got {self.loss!r}"),
            (
                self.resize in ("stretch", "letterbox"),
                f"--resize must be stretch or letterbox, got {self.resize!r}",
            ),
            (self.channels in (1, 3), f"--channels must be 1 or 3, got {self.channels}"),
            (self.patience >= 1, f"--patience must be >= 1, got {self.patience}"),
            (
                self.strategy in STRATEGIES,
                f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}",
            ),
            (
                0.0 <= self.val_fraction < 1.0,
                f"--val-fraction must be in [0, 1), got {self.val_fraction}",
            ),
            (
                self.lr_schedule in LR_SCHEDULES,
                f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise EdgesegError(message)
        factor = 2**self.depth
        if self.size is not None and (self.size[0] % factor or self.size[1] % factor):
            raise EdgesegError(
                f"--size {self.size[0]}x{self.size[1]} must be divisible by 2**depth = {factor} "
                f"(--depth {self.depth}); try --size {max(factor, self.size[0] // factor * factor)}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(data=str(self.data), out=str(self.out))
        d["size"] = list(self.size) if self.size is not None else None
        d["classes"] = list(self.classes) if self.classes is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class TrainResult:
    """What a run produced; best_miou / per_class_iou are the best epoch's validation scores."""

    run_dir: Path
    model_path: Path
    config_path: Path
    history_path: Path
    curves_path: Path | None
    best_miou: float
    per_class_iou: dict[str, float | None]
    epochs_run: int
    interrupted: bool
    replicas: int = 1  # devices the batch was split across (--strategy mirrored / multiworker)


def load_train_config(run_dir: str | Path) -> TrainConfig:
    """The TrainConfig saved in RUN_DIR/config.json (to resume a run with the same settings)."""
    path = Path(run_dir) / "config.json"
    try:
        return TrainConfig.from_dict(json.loads(path.read_text())["train"])
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: not found; nothing to resume in {run_dir}") from exc
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: no usable training settings ({exc})") from exc


def configure_logical_cpus() -> None:
    """Split the CPU into $EDGESEG_LOGICAL_CPUS logical devices; must run before TF starts."""
    n = int(os.environ.get(LOGICAL_CPUS_ENV, "0") or 0)
    if n < 2:
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * n
        )
    except RuntimeError:
        log.warning("%s=%d ignored: TensorFlow was already initialised", LOGICAL_CPUS_ENV, n)


def make_strategy(name: str) -> Any:
    """default: one device; mirrored: all local GPUs, else logical CPUs; multiworker: TF_CONFIG."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        if gpus:
            return tf.distribute.MirroredStrategy(gpus)
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise EdgesegError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def _is_chief(strategy: Any) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def ensure_val_split(ds: Dataset, val_fraction: float, seed: int = 0) -> Dataset:
    """Datasets with train/ but no val/: hold out val_fraction of train, deterministically."""
    if ds.val:
        train_samples = ds.train
    else:
        import random

        shuffled = list(ds.train)
        random.Random(seed).shuffle(shuffled)
        n_val = round(len(shuffled) * val_fraction)
        if n_val < 1 or n_val >= len(shuffled):
            raise DatasetError(
                f"{ds.root}: no validation pairs; add {ds.root}/val/images + masks, or use more "
                f"pairs / a larger --val-fraction (have {len(shuffled)} pairs)"
            )
        by_stem = lambda s: s.stem  # noqa: E731
        val = tuple(sorted(shuffled[:n_val], key=by_stem))
        train_samples = tuple(sorted(shuffled[n_val:], key=by_stem))
        ds = replace(ds, train=train_samples, val=val)
    if not train_samples:
        raise DatasetError(f"{ds.root}: no training pairs")
    return ds


def _check_out(config: TrainConfig) -> None:
    model_path = config.out / "model.keras"
    if config.resume:
        if not (config.out / "resume" / "last.keras").is_file() and not model_path.is_file():
            raise ModelError(
                f"{config.out}: no run to resume (expected resume/last.keras or model.keras)"
            )
        state = config.out / "resume" / "state.json"
        done = json.loads(state.read_text())["epoch"] if state.is_file() else 0
        if config.epochs is not None and done >= config.epochs:
            raise EdgesegError(
                f"{config.out}: already trained {done} epochs; "
                f"pass --epochs above {done} to continue"
            )
    elif model_path.exists() and not config.overwrite:
        raise EdgesegError(
            f"{config.out}: already holds a trained model; pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )


def train(
    config: TrainConfig,
    *,
    callbacks: Sequence[Any] = (),
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train a U-Net per `config` and write the run folder; Ctrl-C keeps the best checkpoint.

    All input is validated before anything is written. `callbacks` (Keras callbacks) run after
    edgeseg's own each epoch; `progress(done, total)` reports dataset validation.
    """
    configure_logical_cpus()
    _check_out(config)
    ds = open_dataset(
        config.data,
        classes=config.classes,
        val_fraction=config.val_fraction,
        seed=config.seed,
        progress=progress,
    )
    ds = ensure_val_split(ds, config.val_fraction, config.seed)
    config = resolve_recipe(config, ds)
    assert config.size is not None
    spec = ModelSpec(
        input_height=config.size[0],
        input_width=config.size[1],
        class_names=ds.class_names,
        channels=config.channels,
        resize=config.resize,  # type: ignore[arg-type]
    )

    from edgeseg.train.loop import run_fit  # TensorFlow loads here, after validation

    config.out.mkdir(parents=True, exist_ok=True)
    return run_fit(config, ds, spec, list(callbacks))


def resolve_recipe(config: TrainConfig, ds: Dataset) -> TrainConfig:
    """The config with what the data decides filled in: the input size (median aspect ratio of
    the training images when --size is not given) and the step budget as whole epochs."""
    size = config.size or default_size([image_size(s.image) for s in ds.train], config.depth)
    per_epoch, epochs = plan_steps(
        len(ds.train), config.batch, steps=config.steps, epochs=config.epochs
    )
    if config.steps_per_epoch is not None:
        if config.epochs is None:  # the same step budget in epochs of the given length
            epochs = max(1, math.ceil(per_epoch * epochs / config.steps_per_epoch))
        per_epoch = config.steps_per_epoch
    return replace(
        config, size=size, epochs=epochs, steps_per_epoch=per_epoch, steps=per_epoch * epochs
    )


def scores_dict(scores: SegmentationScores, class_names: tuple[str, ...]) -> dict[str, Any]:
    d = scores.as_dict(class_names)
    miou = d["miou"]
    return {
        "miou": None if isinstance(miou, float) and math.isnan(miou) else miou,
        "per_class_iou": d["per_class_iou"],
        "pixel_accuracy": d["pixel_accuracy"],
    }
