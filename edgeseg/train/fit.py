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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgeseg.core.errors import DatasetError, EdgesegError, ModelError
from edgeseg.core.fileio import output_dir
from edgeseg.core.spec import ModelSpec
from edgeseg.data.dataset import Dataset, open_dataset
from edgeseg.data.layout import pairs_fingerprint, split_pairs
from edgeseg.train.config import TrainConfig, TrainResult, load_train_config
from edgeseg.train.run_folder import (
    recover_previous_run,
    refuse_no_epochs_left,
    refuse_resume_while_set_aside,
    refuse_trained,
    run_lock,
)

__all__ = [
    "PreparedData",
    "TrainConfig",
    "TrainResult",
    "ensure_val_split",
    "load_train_config",
    "prepare_data",
    "train",
]
from edgeseg.train.recipe import (
    PixelCounts,
    count_pixels,
    default_min_scale,
    default_size,
    image_size,
    median_aspect,
    plan_steps,
)

log = logging.getLogger(__name__)

LOGICAL_CPUS_ENV = "EDGESEG_LOGICAL_CPUS"  # split the CPU into N logical devices (tests, demos)


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


def ensure_val_split(ds: Dataset, val_fraction: float, seed: int = 0) -> Dataset:
    """A dataset without val pairs gets val_fraction of train held out, split exactly as
    `open_dataset` splits (one mechanism: `split_pairs`); refused when nothing can be held out."""
    if not ds.val:
        by_stem = sorted(ds.train, key=lambda s: s.stem)  # the order open_dataset splits in
        train, val = split_pairs(by_stem, val_fraction, seed)
        if not val or not train:
            raise DatasetError(
                f"{ds.root}: no validation pairs; add {ds.root}/val/images + masks, or use more "
                f"pairs / a larger --val-fraction (have {len(ds.train)} "
                f"pair{'s' if len(ds.train) != 1 else ''})"
            )
        ds = replace(ds, train=tuple(train), val=tuple(val), val_by_fraction=True)
    if not ds.train:
        raise DatasetError(f"{ds.root}: no training pairs")
    return ds


def _check_out(config: TrainConfig) -> None:
    model_path = config.out / "model.keras"
    if config.resume:
        refuse_resume_while_set_aside(config.out)  # as build_config does, for configs made by hand
        if not (config.out / "resume" / "last.keras").is_file() and not model_path.is_file():
            raise ModelError(
                f"{config.out}: no run to resume (expected resume/last.keras or model.keras)"
            )
        state = config.out / "resume" / "state.json"
        if not state.is_file():
            # stopped while its first epoch's state was being written: resuming would start
            # over from epoch 1 with no best score, and replace a better model.keras
            raise ModelError(
                f"{config.out}: no saved training state (resume/state.json; the run stopped "
                "while writing it): start the run again with --overwrite"
            )
        if config.epochs is not None:  # a --steps budget is checked once the data is counted
            refuse_no_epochs_left(config.out, config.epochs, qat_unfinished=_qat_unfinished(config))
    elif not config.overwrite:
        refuse_trained(config.out)


def _warn_stale_conversions(config: TrainConfig) -> None:
    """Said once every refusal has been passed (a refused --resume said it, then refused)."""
    if (config.out / "model.keras").exists() and (stale := sorted(config.out.glob("*.tflite"))):
        log.warning(
            "%s: converted from the model this run replaces; convert again (edgeseg check "
            "refuses to compare them with the new model)",
            ", ".join(p.name for p in stale),
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
    recover_previous_run(config.out, config.strategy)  # build_config did, for configs it made
    _check_out(config)
    given_size = config.size
    steps_given = config.resume and config.epochs is None
    prepared = prepare_data(config, progress=progress)
    ds, pixels, config = prepared.ds, prepared.pixels, prepared.config
    if steps_given:
        assert config.epochs is not None
        refuse_no_epochs_left(
            config.out,
            config.epochs,
            qat_unfinished=_qat_unfinished(config),
            steps_per_epoch=config.steps_per_epoch,
        )
    log.info("data: %s", ds.summary())
    if given_size and (message := size_orientation_warning(given_size, ds)):
        log.warning("%s", message)
    if ds.ignored:
        log.info(
            "classes: %s (%s left out: not trained or scored)",
            ", ".join(ds.class_names),
            ", ".join(ds.ignored),
        )
    if ds.unlisted_colors == "ignore":
        log.info("mask colours not in %s: ignored (not trained or scored)", ds.names_source)
    if hint := ds.void_hint():
        log.info("note: %s", hint)
    _report_pixels(pixels, ds)
    assert config.size is not None
    spec = ModelSpec(
        input_height=config.size[0],
        input_width=config.size[1],
        class_names=ds.class_names,
        palette=ds.palette() or (),  # the dataset's own colours, else the default palette
        ignored_classes=ds.ignored,
        unlisted_colors=ds.unlisted_colors,
        channels=config.channels,
        resize=config.resize,  # type: ignore[arg-type]
        target=config.target,  # type: ignore[arg-type]
        extra={"architecture": config.architecture(), "split": _split_record(config, ds)},
    )

    if config.resume:
        _check_resumable(config, spec)
    # a run that fails before writing anything leaves no empty --out behind
    with output_dir(config.out, label="--out"), run_lock(config.out, config.strategy):
        _warn_stale_conversions(config)  # once nothing refuses the run, the lock included
        from edgeseg.train.loop import run_fit  # TensorFlow loads here, after validation

        return run_fit(config, ds, spec, list(callbacks), pixels.frequencies)


def _qat_unfinished(config: TrainConfig) -> bool:
    """A run stopped during its quantisation-aware step: its float epochs are done, and a
    resume finishes that step (config.json gains its 'qat' record only when it is done)."""
    from edgeseg.train import CONFIG_NAME

    if not config.makes_qat_model:
        return False
    try:
        return "qat" not in json.loads((config.out / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False


def _check_resumable(config: TrainConfig, spec: ModelSpec) -> None:
    """--resume continues the saved network: data of other classes (or the same classes named
    in another order) or another input size cannot continue it. Refused here, before the run
    folder is touched: such a resume used to train a whole epoch, then fail with a traceback,
    leaving the run's checkpoints overwritten (or, for a size, its quantisation-aware model
    already put aside)."""
    from edgeseg.train import CONFIG_NAME

    try:
        saved = ModelSpec.load(config.out / CONFIG_NAME)
    except (OSError, ValueError, KeyError, EdgesegError):
        return  # the resume itself says what is missing
    if saved.class_names != spec.class_names:
        raise DatasetError(
            f"--resume: the run in {config.out} learned the classes "
            f"{', '.join(saved.class_names)}; {config.data} gives "
            f"{', '.join(spec.class_names)}: resume on data with the same classes in the same "
            "order, or train a new --out"
        )
    if (saved.input_size, saved.channels) != (spec.input_size, spec.channels):
        h, w = saved.input_size
        raise DatasetError(
            f"--resume: the run in {config.out} takes {h}x{w}x{saved.channels} input, not "
            f"{spec.input_height}x{spec.input_width}x{spec.channels}: resume without --size / "
            "--channels, or train a new --out"
        )
    try:
        trained_on = Path(load_train_config(config.out).data)
    except (OSError, ValueError, KeyError, EdgesegError):
        return
    # said once accepted; data that is gone (moved, or built-in scenes found in the run) is not
    # "other data"
    if trained_on.exists() and Path(config.data).resolve() != trained_on.resolve():
        log.warning(
            "--resume with other data (%s; the run trained on %s): training continues on the "
            "new data, validated on its own split",
            config.data,
            trained_on,
        )


def _split_record(config: TrainConfig, ds: Dataset) -> dict[str, Any]:
    """How the pairs were split, so `eval DATA` on the folder trained on (when it names no
    held-out split) scores the pairs training held out, not the ones it learned from. A dataset
    with its own val/ was not split by a fraction: then `val_fraction` is None (the pairs
    fingerprint alone cannot tell its held-out pairs in a flat copy of it). `data`: where the
    folder was, so eval can say when that folder's pairs have changed since."""
    return {
        "pairs": pairs_fingerprint(ds.train + ds.val),
        "seed": config.seed,
        "val_fraction": config.val_fraction if ds.val_by_fraction else None,
        "data": str(Path(ds.root).resolve()),
    }


@dataclass(frozen=True)
class PreparedData:
    """What `train` knows before TensorFlow starts: the checked, split dataset, its training
    pixels per class and the config with what the data decides (size, steps, crops) resolved."""

    ds: Dataset
    pixels: PixelCounts
    config: TrainConfig
    sizes: tuple[tuple[int, int], ...] | None = None
    """The training images' (height, width), read when the data decides the input size."""


def prepare_data(
    config: TrainConfig, *, progress: Callable[[int, int], None] | None = None
) -> PreparedData:
    """Open and check every pair of `config.data`, split it and resolve the recipe, without
    TensorFlow: the first half of `train`, and all of `edgeseg info DATA`."""
    ds = open_dataset(
        config.data,
        classes=config.classes,
        val_fraction=config.val_fraction,
        seed=config.seed,
        progress=progress,
        ignore_classes=config.ignore_classes,
        unlisted_colors=config.unlisted_colors,  # type: ignore[arg-type]
    )
    if config.unlisted_colors == "ignore" and ds.encoding != "rgb":
        raise DatasetError(
            "--unlisted-colors ignore: applies to colour-coded masks (classes.csv with "
            f"name,r,g,b); the masks of {config.data} are {ds.encoding}-coded"
        )
    ds = ensure_val_split(ds, config.val_fraction, config.seed)
    pixels = count_pixels(ds, ds.train)
    sizes = None if config.size else tuple(image_size(s.image) for s in ds.train)
    return PreparedData(ds, pixels, resolve_recipe(config, ds, sizes), sizes)


def size_orientation_warning(size: tuple[int, int], ds: Dataset) -> str | None:
    """The warning for a --size (HEIGHTxWIDTH) that is portrait for landscape training images or
    the reverse (the frames' WIDTHxHEIGHT typed as --size squeezes every frame into the other
    orientation); None when they agree or either is near square. Reads 16 images' headers."""
    sizes = [image_size(s.image) for s in ds.train[:16]]
    frames, model = median_aspect(sizes), size[1] / size[0]
    if not (min(frames, model) < 1 / 1.2 and max(frames, model) > 1.2):
        return None
    shape = "portrait" if model < 1 else "landscape"
    return (
        f"--size {size[0]}x{size[1]} is HEIGHTxWIDTH: a {shape} input for "
        f"{'landscape' if frames > 1 else 'portrait'} images ({sizes[0][1]}x{sizes[0][0]}, "
        f"width x height), so every frame is squeezed into the other orientation; for "
        "their aspect pass "
        f"--size {size[1]}x{size[0]}"
    )


def absent_classes(pixels: PixelCounts, ds: Dataset) -> str | None:
    """The warning for listed classes no training mask holds (a typo or a wrong class list
    shows now, not as 0 IoU after the run); None when every class has pixels."""
    if not (absent := pixels.absent(ds.class_names)):
        return None
    return (
        f"class(es) {', '.join(absent)}: no pixels in the {len(ds.train)} training masks, so the "
        f"model cannot learn them; check the masks and {ds.names_source or 'the class list'}"
    )


def _report_pixels(pixels: PixelCounts, ds: Dataset) -> None:
    """Warn about classes no training mask holds (the model cannot learn them) and say how much
    of the training masks is ignored, so a wrong class list shows before the training does."""
    if message := absent_classes(pixels, ds):
        log.warning("%s", message)
    if pixels.ignored:
        log.info(
            "ignored pixels (%s; not trained or scored): %.2g%% of the training masks",
            ds.ignored_pixels(),
            100.0 * pixels.ignored_share,
        )


def resolve_recipe(
    config: TrainConfig, ds: Dataset, sizes: Sequence[tuple[int, int]] | None = None
) -> TrainConfig:
    """The config with what the data decides filled in: the input size (median aspect ratio of
    the training images when --size is not given), the step budget in equal epochs and, when
    --min-scale is not given, the crop augmentation that budget gets. `sizes`: the training
    images' (height, width) when the caller has read them already."""
    depth = 5 if config.encoder == "mobilenetv2" else config.depth  # its encoder halves 5 times
    if config.size:
        size = config.size
    else:
        size = default_size(sizes or [image_size(s.image) for s in ds.train], depth)
    per_epoch, epochs = plan_steps(
        len(ds.train), config.batch, steps=config.steps, epochs=config.epochs
    )
    if config.steps_per_epoch is not None:
        if config.epochs is None:  # the same step budget in epochs of the given length
            epochs = max(1, math.ceil(per_epoch * epochs / config.steps_per_epoch))
        per_epoch = config.steps_per_epoch
    steps = per_epoch * epochs
    min_scale = default_min_scale(steps) if config.min_scale is None else config.min_scale
    return replace(
        config,
        size=size,
        epochs=epochs,
        steps_per_epoch=per_epoch,
        steps=steps,
        min_scale=min_scale,
    )
