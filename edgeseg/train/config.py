"""The settings and result of a training run (shared by `fit` and the Keras `loop`, so neither
imports the other), and how they are saved in config.json."""

from __future__ import annotations

import difflib
import json
import logging
import math
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeseg.core.errors import DatasetError, EdgesegError, ModelError, path_argument
from edgeseg.core.fileio import check_dir_output, output_dir
from edgeseg.core.metrics import SegmentationScores
from edgeseg.core.spec import UNLISTED_COLORS, parse_size
from edgeseg.data.layout import DEFAULT_VAL_FRACTION, find_splits, split_dirs
from edgeseg.train import CONFIG_NAME, SYNTHETIC_FOLDER
from edgeseg.train.recipe import CLASS_WEIGHTINGS, LOSSES
from edgeseg.train.run_folder import (
    recorded_strategy,
    recover_previous_run,
    refuse_resume_while_set_aside,
    refuse_trained,
)

if TYPE_CHECKING:
    from edgeseg.core.spec import ModelSpec
    from edgeseg.train.cost import ModelCost

log = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multiworker")
LR_SCHEDULES = ("cosine", "constant")
ENCODERS = ("unet", "mobilenetv2")
ALPHAS = (0.35, 0.5, 0.75, 1.0)  # MobileNetV2 width multipliers (all have ImageNet weights)
XLA_MODES = ("auto", "on", "off")  # whether the training step is XLA-compiled (train/xla.py)
MAX_DEPTH = 8  # U-Net levels: 2**8 = 256 px is already the smallest input that fits
# TrainConfig's numeric fields by annotation, and what a value must be
_NUMERIC_FIELDS: dict[str, type] = {
    "int": numbers.Integral,
    "int | None": numbers.Integral,
    "float": numbers.Real,
    "float | None": numbers.Real,
}


def _names(names: object) -> tuple[str, ...]:
    """Class names as a tuple: a string is one name or a comma list, as --classes takes them
    (never split into characters)."""
    if isinstance(names, str):
        return tuple(n.strip() for n in names.split(",") if n.strip())
    if not isinstance(names, Iterable) or not all(isinstance(n, str) for n in names):
        raise EdgesegError(f"class names {names!r}: expected a list of strings")
    return tuple(names)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved under "train" in config.json."""

    data: Path
    out: Path
    size: tuple[int, int] | None = None  # (height, width); None: from the data (default_size)
    epochs: int | None = None  # None: `steps` optimiser steps, in equal epochs (plan_steps)
    batch: int = 8  # global batch: split across replicas with --strategy mirrored
    lr: float = 1e-3
    depth: int = 4
    filters: int = 16
    upsample: str = "transpose"
    # cross-entropy + Lovasz-softmax: measured best on street scenes, no worse on aerial tiles and
    # microscopy (README); or "ce", "ce+dice", "focal+dice", "ohem+dice" (recipe.LOSSES)
    loss: str = "ce+lovasz"
    resize: str = "stretch"  # or "letterbox"
    channels: int = 3
    # epochs without a better val mIoU before stopping; None: never (the cosine schedule's best
    # epochs come at its end, at the lowest learning rates, so stopping early loses them)
    patience: int | None = None
    resume: bool = False
    strategy: str = "default"  # | "mirrored" | "multiworker"
    seed: int = 0
    classes: tuple[str, ...] | None = None
    # listed classes whose pixels are not trained or scored (a dataset's void / unlabelled); the
    # model gets the others (recorded in its spec, so eval and check read masks the same way)
    ignore_classes: tuple[str, ...] = ()
    # colour masks' colours missing from classes.csv: "error", or "ignore" them (blended edges);
    # recorded in the spec like ignore_classes
    unlisted_colors: str = "error"
    val_fraction: float = DEFAULT_VAL_FRACTION
    augment: bool = True
    verbose: int = 1  # Keras: 0 silent, 1 progress bar, 2 one line per epoch
    lr_schedule: str = "cosine"  # or "constant"
    steps_per_epoch: int | None = None  # None: see recipe.plan_steps
    steps: int | None = None  # total optimiser steps when epochs is None (None: DEFAULT_STEPS)
    warmup: float = 0.05  # share of the steps with a linear learning-rate warm-up
    # "sqrt" (1/sqrt(freq), measured: README "The training recipe") | "none" | "median"
    class_weighting: str = "sqrt"
    # random windows cover min_scale..1 of each side; 1: whole frames; None: from the step
    # budget (recipe.default_min_scale)
    min_scale: float | None = None
    cache: bool = True  # keep decoded, resized training pairs in memory
    overwrite: bool = False  # replace an existing run in `out` instead of refusing
    encoder: str = "unet"  # or "mobilenetv2" (keras.applications encoder, skips at 2/4/8/16)
    alpha: float = 0.35  # MobileNetV2 width multiplier
    weights: str | None = None  # MobileNetV2 encoder weights: "imagenet" or a file path
    # "edgetpu": a model the Edge TPU compiler maps whole (resize decoder; convert then defaults
    # to uint8 I/O). Recorded in the ModelSpec.
    target: str = "cpu"
    # after float training, rebuild the best checkpoint as a quantisation-aware model (int8
    # arithmetic simulated, edgeseg.train.qat): it becomes model.keras, the float one
    # model_float.keras. Skipped for --strategy multiworker.
    qat: bool = True
    qat_steps: int = 0  # optimiser steps of quantisation-aware fine-tuning after that
    # XLA for the float training step: "auto" times both in the first steps and keeps the
    # faster (edgeseg.train.xla); "on" / "off" force it
    xla: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        if isinstance(self.weights, os.PathLike):  # weights=Path(...) from Python, as data=
            object.__setattr__(self, "weights", os.fspath(self.weights))
        self._check_numbers()
        if self.size is not None:
            object.__setattr__(self, "size", parse_size(self.size))
        if self.classes is not None:
            object.__setattr__(self, "classes", _names(self.classes))
        object.__setattr__(self, "ignore_classes", _names(self.ignore_classes))
        if self.target == "edgetpu" and self.upsample == "transpose":
            # The compiler maps strided TRANSPOSE_CONV to the CPU (google-coral/edgetpu #509).
            object.__setattr__(self, "upsample", "resize")
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
                self.min_scale is None or 0.1 <= self.min_scale <= 1.0,
                f"--min-scale must be in [0.1, 1], got {self.min_scale}",
            ),
            (self.batch >= 1, f"--batch must be >= 1, got {self.batch}"),
            (self.qat_steps >= 0, f"--qat-steps must be >= 0, got {self.qat_steps}"),
            (
                self.qat_steps == 0 or self.strategy != "multiworker",
                "--qat-steps does not support --strategy multiworker; fine-tune on one machine",
            ),
            (self.qat or self.qat_steps == 0, "--qat-steps needs the quantisation-aware phase"),
            (
                self.xla in XLA_MODES,
                f"--xla must be one of {', '.join(XLA_MODES)}, got {self.xla!r}",
            ),
            (
                self.xla != "on" or self.strategy == "default",
                "--xla on needs --strategy default: distributed training runs without XLA",
            ),
            (
                math.isfinite(self.lr) and self.lr > 0,
                f"--lr must be a finite number > 0, got {self.lr}",
            ),
            (0 <= self.seed < 2**32, f"--seed must be in 0..{2**32 - 1}, got {self.seed}"),
            (1 <= self.depth <= MAX_DEPTH, f"--depth must be 1..{MAX_DEPTH}, got {self.depth}"),
            (self.filters >= 1, f"--filters must be >= 1, got {self.filters}"),
            (
                self.upsample in ("transpose", "resize"),
                f"--upsample must be transpose or resize, got {self.upsample!r}",
            ),
            (
                self.loss in LOSSES,
                f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}",
            ),
            (
                self.resize in ("stretch", "letterbox"),
                f"--resize must be stretch or letterbox, got {self.resize!r}",
            ),
            (self.channels in (1, 3), f"--channels must be 1 or 3, got {self.channels}"),
            (
                self.target in ("cpu", "edgetpu"),
                f"--target must be cpu or edgetpu, got {self.target!r}",
            ),
            (
                self.unlisted_colors in UNLISTED_COLORS,
                f"--unlisted-colors must be one of {', '.join(UNLISTED_COLORS)}, "
                f"got {self.unlisted_colors!r}",
            ),
            (
                self.patience is None or self.patience >= 1,
                f"--patience must be >= 1, got {self.patience}",
            ),
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
        self._check_encoder()
        if self.encoder == "mobilenetv2":
            factor, why = 32, "32 for the MobileNetV2 encoder"
        else:
            factor, why = 2**self.depth, f"2**depth = {2**self.depth} (--depth {self.depth})"
        if self.size is not None and (self.size[0] % factor or self.size[1] % factor):
            raise EdgesegError(
                f"--size {self.size[0]}x{self.size[1]} must be divisible by {why}; "
                f"try --size {max(factor, self.size[0] // factor * factor)}x"
                f"{max(factor, self.size[1] // factor * factor)}"
            )

    def _check_encoder(self) -> None:
        """--encoder / --alpha / --weights: valid choices, and weights that can load."""
        if self.encoder not in ENCODERS:
            raise EdgesegError(
                f"--encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}"
            )
        if float(self.alpha) not in ALPHAS:
            raise EdgesegError(
                f"--alpha must be one of {', '.join(f'{a:g}' for a in ALPHAS)}, got {self.alpha}"
            )
        object.__setattr__(self, "alpha", float(self.alpha))
        if self.weights is None:
            return
        if self.encoder != "mobilenetv2":
            raise EdgesegError("--weights needs --encoder mobilenetv2 (the U-Net starts random)")
        if self.weights == "imagenet":
            if self.channels != 3:
                raise EdgesegError(
                    "--weights imagenet needs --channels 3: ImageNet weights are for RGB input "
                    "(for gray data, omit --weights or pass a weights file)"
                )
        elif not self.resume:  # resume: the weights are in the run
            takes = "--weights takes 'imagenet' or the path of a MobileNetV2 .h5 / .weights.h5 file"
            path = Path(self.weights)
            if path.is_dir():
                raise EdgesegError(f"{path}: is a folder ({takes})")
            if not path.is_file():
                raise EdgesegError(f"{path}: weights file not found ({takes})")
            if path.suffix.lower() != ".h5":
                raise EdgesegError(
                    f"{path}: not a weights file ({takes}, such as Keras' "
                    "model.save_weights writes)"
                )

    def architecture(self) -> dict[str, Any]:
        """The network this config builds (recorded in the model spec, embedded in .tflite)."""
        if self.encoder == "mobilenetv2":
            return {
                "encoder": self.encoder,
                "alpha": self.alpha,
                "upsample": self.upsample,
                "weights": self.weights,
            }
        return {
            "encoder": self.encoder,
            "depth": self.depth,
            "filters": self.filters,
            "upsample": self.upsample,
        }

    @property
    def makes_qat_model(self) -> bool:
        """Whether the run ends with the quantisation-aware model (not in multi-worker runs)."""
        return self.qat and self.strategy != "multiworker"

    def recipe_line(self) -> str:
        """What a resolved config (fit.resolve_recipe) will train, in one line for the log: the
        choices the data and the budget made are the ones users did not see on the command line."""
        if self.size is None or self.steps is None or self.min_scale is None:
            raise ValueError("recipe_line needs a config from fit.resolve_recipe")
        if not self.augment:
            augment = "no augmentation"
        elif self.min_scale < 1.0:
            augment = f"crops {self.min_scale:g}-1 of each side, flips, colour jitter"
        else:
            augment = "whole frames, flips, colour jitter"
        qat = ""
        if self.makes_qat_model:
            qat = ", then the quantisation-aware model"
            qat += f" fine-tuned {self.qat_steps} steps" if self.qat_steps else ""
        return (
            f"recipe: input {self.size[0]}x{self.size[1]} (HxW), {self.steps} "
            f"step{'s' if self.steps != 1 else ''} "
            f"({self.epochs} epoch{'s' if self.epochs != 1 else ''} of {self.steps_per_epoch}), "
            f"batch {self.batch}, "
            f"lr {self.lr:g} {self.lr_schedule}, loss {self.loss}, class weights "
            f"{self.class_weighting}, {augment}{qat}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(data=str(self.data.absolute()), out=str(self.out))  # data: found from anywhere
        d["weights"] = recorded_weights(self.weights)  # a file: found from anywhere, as data
        d["size"] = list(self.size) if self.size is not None else None
        d["classes"] = list(self.classes) if self.classes is not None else None
        d["ignore_classes"] = list(self.ignore_classes)
        return d

    def _check_numbers(self) -> None:
        """Numeric settings as numbers (NumPy ones become Python's), so a Python caller's
        `steps="10"` is one clear error here rather than a TypeError deep in training."""
        for field in fields(self):
            value = getattr(self, field.name)
            kind = _NUMERIC_FIELDS.get(str(field.type))
            if kind is None or value is None:
                continue
            integral = kind is numbers.Integral
            if isinstance(value, bool) or not isinstance(value, kind):
                expected = "an integer" if integral else "a number"
                raise EdgesegError(f"{field.name}={value!r}: expected {expected}")
            number: Any = value  # a numbers.Integral / numbers.Real, checked just above
            object.__setattr__(self, field.name, int(number) if integral else float(number))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class StoppedBeforeCheckpoint(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM before its first checkpoint: nothing new was
    written (a run it was replacing is back in place). A later stop returns a TrainResult
    marked interrupted instead, so what a stop kept is told from the type, not guessed."""


@dataclass(frozen=True)
class TrainResult:
    """What a run produced; best_miou / per_class_iou are the best epoch's validation scores.
    `epochs_run` counts the epochs in the run's history (a resumed run's earlier ones too);
    `config` holds the settings as resolved (input size from the data, steps, epochs, batch);
    `float_model_path` is the float network a quantisation-aware run keeps beside model.keras
    (what other formats convert from), None without one."""

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
    cost: ModelCost | None = None  # parameters, MACs per frame, expected int8 size
    config: TrainConfig | None = None
    float_model_path: Path | None = None

    def __repr__(self) -> str:
        """Where the model is and how good it got, not every per-class score."""
        stopped = ", interrupted" if self.interrupted else ""
        return (
            f"TrainResult(model={str(self.model_path)!r}, best_miou={self.best_miou:.4f}, "
            f"epochs_run={self.epochs_run}{stopped})"
        )


def load_train_config(run_dir: str | Path) -> TrainConfig:
    """The TrainConfig saved in RUN_DIR/config.json (to resume a run with the same settings)."""
    path = Path(run_dir) / CONFIG_NAME
    try:
        saved = json.loads(path.read_text())["train"]
        # a recorded run: its weights file was read when it started and need not be there now
        return TrainConfig.from_dict({**saved, "resume": True})
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: not found; nothing to resume in {run_dir}") from exc
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: no usable training settings ({exc})") from exc


def build_config(
    data: str | Path | None,
    out: str | Path,
    given: dict[str, Any],
    *,
    resume: bool = False,
    overwrite: bool = False,
    verbose: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> TrainConfig:
    """The TrainConfig of one `train` request, for the CLI and the Python API alike: `given` is
    the options the user set (None left out); --resume starts from the run's saved settings (a
    new --steps budget then replaces the epochs it had resolved); without DATA, the built-in
    scenes are generated once into OUT/synthetic_data (`progress(done, total)` meanwhile)."""
    if data is not None:
        path_argument(data, "data", "a dataset folder (or None for the built-in scenes)")
    path_argument(out, "--out", "the run folder to write")
    known = {f.name for f in fields(TrainConfig)}
    for name, value in given.items():
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}=?" if close else ""
            raise EdgesegError(f"unknown training option {name}={value!r}{hint}")
    if given.get("target") == "edgetpu" and given.get("upsample") == "transpose":
        raise EdgesegError(
            "--target edgetpu needs --upsample resize: the Edge TPU compiler runs strided "
            "TRANSPOSE_CONV on the CPU"
        )
    if "steps" in given and "epochs" in given:
        raise EdgesegError(
            "--steps and --epochs both given: the budget is one or the other (steps= / epochs= "
            "in Python)"
        )
    out = Path(out)
    if resume and overwrite:
        raise EdgesegError("--resume continues the run in --out, --overwrite replaces it: pick one")
    check_dir_output(out, label="--out")  # a file named as the run folder: before the data scan
    # the run a killed --overwrite set aside goes back before its config.json is read or the
    # folder is judged (a resume found no config.json; a plain train generated built-in data
    # into the folder and only then found it held a model)
    # (with the strategy of this request: a new run's is not the set-aside run's)
    strategy = given.get("strategy") or (recorded_strategy(out) if resume else None)
    recover_previous_run(out, strategy or "default")
    if resume:
        refuse_resume_while_set_aside(out)
        base = load_train_config(out).to_dict()  # other data is said once it is accepted
        recorded = Path(base["data"])
        if data is None and not recorded.exists() and recorded.name == SYNTHETIC_FOLDER:
            # a run on built-in data keeps it in OUT: a moved run finds it there
            base["data"] = str(out / SYNTHETIC_FOLDER)
        elif data is None and not recorded.exists():
            raise DatasetError(
                f"{recorded}: the data {out / CONFIG_NAME} says this run trained on is gone "
                "(moved or removed); pass its folder: edgeseg train DATA --out "
                f"{out} --resume"
            )
        _refuse_network_changes(out, base, given)
        if "steps" in given:
            base["epochs"] = None  # the new step budget decides the epochs
        base.update(given, resume=True, out=out, data=data or base["data"], verbose=verbose)
        return TrainConfig.from_dict(base)
    # every option checked before anything is said or generated (a warning about an option
    # the next line refuses, or minutes of built-in scenes before a bad --steps, helped no one)
    TrainConfig(data=Path(data or out), out=out, overwrite=overwrite, **given)
    _warn_inapplicable(given)
    seed = given.get("seed", 0)
    if not overwrite:
        refuse_trained(out)  # before minutes of built-in scenes are generated into it
    source = Path(data) if data is not None else _synthetic_data(out, seed, progress)
    own_val = _has_own_val(source)
    if "val_fraction" in given and own_val:
        log.warning(
            "--val-fraction %s does nothing here: %s has its own held-out split, which training "
            "validates on",
            given["val_fraction"],
            source,
        )
    elif not own_val and (held_out := _held_out_beside(source)) is not None:
        log.warning(
            "%s is the training split of %s: training holds out a share of it and never sees "
            "%s; to validate on that split, pass %s",
            source,
            source.parent,
            held_out,
            source.parent,
        )
    return TrainConfig(data=source, out=out, overwrite=overwrite, verbose=verbose, **given)


def _held_out_beside(data: Path) -> Path | None:
    """The held-out split folder beside DATA when DATA (a folder with no held-out split of its
    own) is its dataset's training split (`train DATA/train`); None otherwise."""
    if not data.is_dir():
        return None
    try:
        splits = split_dirs(data.parent)
    except EdgesegError:
        return None
    if splits is None or splits[1] is None or splits[0].resolve() != data.resolve():
        return None
    return splits[1]


NETWORK_OPTIONS = ("encoder", "alpha", "weights", "depth", "filters", "upsample", "target")
"""What builds the network (or its starting weights): a resume continues the saved network."""


def _refuse_network_changes(out: Path, base: dict[str, Any], given: dict[str, Any]) -> None:
    """--resume continues the network the run built: another --alpha, --upsample, --encoder
    (...) was recorded in config.json and the .tflite metadata but never built, so both
    described a network the model is not. The same value typed again (a --weights path
    relative to here, recorded absolute) changes nothing; an option the saved encoder does
    not use is said, as when training starts."""
    encoder = given.get("encoder", base.get("encoder", "unet"))
    unused = {"unet": ("alpha", "weights"), "mobilenetv2": ("depth", "filters")}.get(encoder, ())
    changed = [
        k
        for k in NETWORK_OPTIONS
        if k in given
        and (k == "weights" or k not in unused)  # weights on a U-Net: its own error follows
        and _recorded(k, given[k]) != _recorded(k, base.get(k))
    ]
    if not changed:
        _warn_inapplicable({**given, "encoder": encoder})
        return
    saved = TrainConfig.from_dict({**base, "resume": True})
    built = ", ".join(
        f"{k} {v}"
        for k, v in {**saved.architecture(), "target": saved.target}.items()
        if v is not None and (k != "target" or "target" in changed)
    )
    asked = " ".join(f"--{k} {given[k]}" for k in changed)
    raise EdgesegError(
        f"--resume continues the network the run in {out} built ({built}); {asked} would "
        "change it: resume without "
        + ("it" if len(changed) == 1 else "them")
        + ", or train a new --out"
    )


def _recorded(key: str, value: Any) -> Any:
    """VALUE as config.json records it (a --weights path typed relative to here, absolute)."""
    return recorded_weights(value) if key == "weights" else value


def recorded_weights(weights: str | os.PathLike[str] | None) -> str | None:
    """--weights as config.json records it: 'imagenet' or None as they are, a file by its
    absolute path (found from anywhere, as the data folder is)."""
    if weights is None or weights == "imagenet":
        return weights
    return str(Path(os.fspath(weights)).absolute())


def _warn_inapplicable(given: dict[str, Any]) -> None:
    """Options the chosen encoder does not use are said, not recorded as if they had shaped the
    network (`--depth 5` with MobileNetV2 went into config.json)."""
    encoder = given.get("encoder", "unet")
    if encoder == "unet" and "alpha" in given:
        log.warning("--alpha is the MobileNetV2 encoder's width; the U-Net does not use it")
    unused = [f"--{name}" for name in ("depth", "filters") if name in given]
    if encoder == "mobilenetv2" and unused:
        log.warning(
            "%s shape%s the U-Net encoder; MobileNetV2's width is --alpha, its depth fixed",
            " and ".join(unused),
            "" if len(unused) > 1 else "s",
        )


def _has_own_val(data: Path) -> bool:
    try:
        splits = find_splits(data) if data.is_dir() else None
    except EdgesegError:  # a layout error is the dataset's to report, when it opens
        return False
    return splits is not None and splits.val is not None


def _synthetic_data(out: Path, seed: int, progress: Callable[[int, int], None] | None) -> Path:
    """The built-in synthetic scenes in OUT/synthetic_data, generated on the first run only."""
    from edgeseg.data.synthetic import generate_synthetic_dataset

    folder = out / SYNTHETIC_FOLDER
    if not (folder / "labels.txt").is_file():
        # interrupted while generating, --out is left as it was (no empty folder made)
        with output_dir(out, label="--out"):
            generate_synthetic_dataset(folder, seed=seed, progress=progress)
    return folder


def run_config(
    spec: ModelSpec,
    config: TrainConfig,
    cost: ModelCost,
    scores: SegmentationScores,
    epoch: int,
    train_step: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """config.json's content for a checkpoint scored `scores` at `epoch` (0-based);
    `train_step`: what `--xla auto` measured and chose (edgeseg.train.xla.XlaProbe.result)."""
    val = {**scores_dict(scores, spec.class_names), "best_epoch": epoch + 1}
    payload = {
        "spec": spec.with_updates(
            float_miou=val["miou"], float_per_class_iou=val["per_class_iou"]
        ).to_dict(),
        "train": config.to_dict(),
        "val": val,
        "cost": cost.to_dict(),
    }
    if train_step is not None:
        payload["train_step"] = train_step
    if "qat" in spec.extra:
        payload["qat"] = spec.extra["qat"]
    return payload


def scores_dict(scores: SegmentationScores, class_names: tuple[str, ...]) -> dict[str, Any]:
    d = scores.as_dict(class_names)
    miou = d["miou"]
    return {
        "miou": None if isinstance(miou, float) and math.isnan(miou) else miou,
        "per_class_iou": d["per_class_iou"],
        "pixel_accuracy": d["pixel_accuracy"],
    }
