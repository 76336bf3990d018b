"""`edgeseg train`: parse options, delegate to `edgeseg.train.fit.train`, print per-class IoU."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeseg.cli.common import (
    call,
    console,
    fast_tensorflow_cpu,
    next_steps,
    parse_size,
    progress_bar,
    quiet_tensorflow,
    route_logs,
    stdout_isatty,
    stop_exit,
    user_errors,
)
from edgeseg.cli.options import (
    ClassWeights,
    Encoder,
    IgnoreClassOption,
    Loss,
    Resize,
    Strategy,
    Target,
    UnlistedColorsOption,
    Upsample,
    Xla,
    class_list,
    split_names,
)
from edgeseg.core.errors import TRAINING_STACK, require_training_stack


def train(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="Dataset folder: images/ + masks/ (or labels/), or train/ and val/ (training/, "
            "valid/, validation/) holding them (or held inside them: images/train + "
            "masks/train); a split may also be one folder per sample "
            "(train/x/rgb.jpg + "
            "labels.png), keep its masks beside it (train/ + trainannot/ or train_labels/) or "
            "each mask beside its image (train/x.jpg + x_mask.png, as Roboflow exports); "
            "or Pascal VOC's JPEGImages/ + SegmentationClass/ (CVAT's and labelme's exports). "
            "Class names from labels.txt or classes.csv (or labelmap.txt, _classes.csv). "
            "Omit DATA to train on built-in synthetic scenes (generated once into "
            "OUT/synthetic_data).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Run folder to write (model.keras, config.json, ...)."),
    ] = Path("runs/unet"),
    size: Annotated[
        str | None,
        typer.Option(
            help="Network input size: N or HxW, e.g. 256 or 192x256. \\[default: from the data: "
            "the training images' median aspect ratio, long side 256, multiples of 2**depth]"
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Budget in optimiser steps, split into equal epochs (validation intervals) of "
            "at least one pass over the training pairs and 100 steps. \\[default: 2000]"
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Budget in epochs (passes over the training pairs, at least 64 samples each) "
            "instead of --steps; total, including resumed ones. "
            "\\[default: from --steps]"
        ),
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option(
            help="Share of the steps with a linear learning-rate warm-up. \\[default: 0.05]"
        ),
    ] = None,
    batch: Annotated[
        int | None, typer.Option(help="Global batch size (split across devices). \\[default: 8]")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Adam learning rate (cosine-decayed). \\[default: 0.001]")
    ] = None,
    encoder: Annotated[
        Encoder | None,
        typer.Option(
            help="unet (plain U-Net, --depth/--filters) or mobilenetv2 (keras.applications "
            "MobileNetV2 encoder, --alpha/--weights; size divisible by 32). \\[default: unet]"
        ),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            help="MobileNetV2 width multiplier: 0.35, 0.5, 0.75 or 1.0. \\[default: 0.35]"
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            help="MobileNetV2 encoder weights: imagenet (Keras downloads them once into "
            "~/.keras/models; RGB only) or a local .h5 / .weights.h5 file. \\[default: random]"
        ),
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option(help="U-Net levels; the size must divide by 2**depth. \\[default: 4]"),
    ] = None,
    filters: Annotated[
        int | None,
        typer.Option(help="Filters in the first level, doubled per level. \\[default: 16]"),
    ] = None,
    upsample: Annotated[
        Upsample | None,
        typer.Option(
            help="Decoder up-sampling: transpose (Conv2DTranspose) or resize (bilinear + conv). "
            "\\[default: transpose; resize with --target edgetpu]"
        ),
    ] = None,
    loss: Annotated[
        Loss | None,
        typer.Option(
            help="ce+lovasz: cross-entropy (class-weighted) + Lovasz-softmax, a surrogate of "
            "each class's IoU (best on thin, rare classes; about 10% more time per run); "
            "ce+dice: soft Dice instead; ce: cross-entropy only; focal+dice: focal loss "
            "(gamma 2) for the cross-entropy; ohem+dice: cross-entropy on the hard pixels only "
            "(true-class probability under 0.7, at least the hardest 1/8). "
            "\\[default: ce+lovasz]"
        ),
    ] = None,
    class_weights: Annotated[
        ClassWeights | None,
        typer.Option(
            "--class-weights",
            help="Weight the cross-entropy by class pixel frequency f in the training masks: "
            "none, sqrt (1/sqrt(f)) or median (median(f)/f); sqrt lifts rare classes (measured). "
            "\\[default: sqrt]",
        ),
    ] = None,
    min_scale: Annotated[
        float | None,
        typer.Option(
            help="Augmentation: random windows (with the frame's aspect ratio) cover this much "
            "to all of each side of the full-resolution image; 1 trains on whole frames. "
            "\\[default: 0.5 for budgets of 1000+ steps, where crops measured better, "
            "else 1]"
        ),
    ] = None,
    qat: Annotated[
        bool | None,
        typer.Option(
            "--qat/--no-qat",
            help="After float training, rebuild the best model with the int8 arithmetic "
            "simulated (BatchNorm folded, weights and activations on the grids LiteRT uses, "
            "ranges from 200 training frames): OUT/model.keras is then that model, which its "
            "int8 conversion reproduces (about 99.7% of pixels, against 99% for the float "
            "model) and which `convert` needs no calibration images for; the float model stays "
            "as model_float.keras. \\[default: --qat]",
        ),
    ] = None,
    qat_steps: Annotated[
        int | None,
        typer.Option(
            "--qat-steps",
            min=0,
            help="Then fine-tune the quantisation-aware model this many steps (kept only when "
            "validation improves; measured no gain on converged models). \\[default: 0]",
        ),
    ] = None,
    resize: Annotated[
        Resize | None,
        typer.Option(help="stretch, or letterbox (keeps the aspect ratio). \\[default: stretch]"),
    ] = None,
    target: Annotated[
        Target | None,
        typer.Option(
            help="Hardware the model is for. edgetpu: a decoder the Coral compiler maps whole "
            "(resize), recorded in the model so `convert` defaults to uint8 I/O. "
            "\\[default: cpu]"
        ),
    ] = None,
    channels: Annotated[
        int | None, typer.Option(help="Model input channels: 3 (RGB) or 1 (gray). \\[default: 3]")
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(help="Class names a,b,c in mask-index order (instead of labels.txt)."),
    ] = None,
    ignore_class: IgnoreClassOption = None,
    unlisted_colors: UnlistedColorsOption = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many epochs without a better val mIoU. \\[default: off: the "
            "cosine schedule's best epochs come at its end]"
        ),
    ] = None,
    val_fraction: Annotated[
        float | None,
        typer.Option(
            help="Share of pairs held out for validation when DATA has no val/. \\[default: 0.2]"
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for the split, shuffling and augmentation. \\[default: 0]"),
    ] = None,
    augment: Annotated[
        bool | None,
        typer.Option(
            "--augment/--no-augment",
            help="Random crop from the full-resolution image, horizontal flip and colour jitter. "
            "\\[default: augment]",
        ),
    ] = None,
    strategy: Annotated[
        Strategy | None,
        typer.Option(
            help="default (one device), mirrored (all local GPUs, else CPUs) or multiworker "
            "(TF_CONFIG). \\[default: default]"
        ),
    ] = None,
    xla: Annotated[
        Xla | None,
        typer.Option(
            help="Compile the training step with XLA. auto: time the first steps both ways and "
            "train on with the faster (which wins depends on the CPU, the layers and the input: "
            "on one CPU it measured from 1.5x faster to 2x slower); runs under 200 steps and "
            "distributed ones train without it. \\[default: auto]"
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out (weights, optimiser, epoch count, settings).",
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a finished run in --out.")
    ] = False,
) -> None:
    """Train a U-Net on image + mask pairs; writes OUT/model.keras (best val mIoU), config.json,
    history.csv and curves.png, and prints the model's cost (parameters, MACs per frame, int8
    size). Ctrl-C keeps the best checkpoint; --resume continues.

    Before the first step it prints what the data and the budget chose (input size, steps,
    loss, class weights, augmentation: the recipe line), and at the end the next command.

    Examples:
      edgeseg train ../shared/data/dubai_aerial --out runs/aerial --steps 3000
      edgeseg train data/street --out runs/street --size 256 --epochs 30
      edgeseg train data/street --out runs/coral --target edgetpu
      edgeseg train data/street --out runs/street --no-qat
      edgeseg train data/street --out runs/mnv2 --encoder mobilenetv2 --alpha 0.35
      edgeseg train data/camvid --out runs/camvid --ignore-class void
    """
    options: dict[str, Any] = {
        "size": parse_size(size) if size else None,
        "epochs": epochs,
        "steps": steps,
        "warmup": warmup,
        "class_weighting": class_weights,
        "min_scale": min_scale,
        "batch": batch,
        "lr": lr,
        "encoder": encoder,
        "alpha": alpha,
        "weights": weights,
        "depth": depth,
        "filters": filters,
        "upsample": upsample,
        "loss": loss,
        "resize": resize,
        "channels": channels,
        "classes": class_list(classes),
        "ignore_classes": split_names(ignore_class) or None,
        "unlisted_colors": unlisted_colors,
        "patience": patience,
        "val_fraction": val_fraction,
        "seed": seed,
        "augment": augment,
        "strategy": strategy,
        "target": target,
        "qat": qat,
        "qat_steps": qat_steps,
        "xla": xla,
    }
    given = {k: v for k, v in options.items() if v is not None}
    quiet_tensorflow()
    fast_tensorflow_cpu()
    route_logs("edgeseg.train", logging.INFO)  # the recipe line, and warnings as one-liners
    call(require_training_stack, "edgeseg train", (*TRAINING_STACK, "PIL", "matplotlib"))
    from edgeseg.train.config import StoppedBeforeCheckpoint, build_config
    from edgeseg.train.fit import train as run_training

    with user_errors():
        with progress_bar("generating synthetic scenes", until_done=True) as generating:
            config = build_config(
                data,
                out,
                given,
                resume=resume,
                overwrite=overwrite,
                verbose=_verbose(),
                progress=generating,  # without DATA: the built-in scenes, made once
            )
        with progress_bar("checking the dataset's pairs", until_done=True) as progress:
            try:
                result = run_training(config, progress=progress)
            except StoppedBeforeCheckpoint:  # a later stop returns a result; any other
                # (checking the data, building the model, after the run) is just "interrupted"
                raise stop_exit(": before the first epoch ended; nothing new was saved") from None
    _print_result(result)
    if result.interrupted:
        raise stop_exit(": kept the best checkpoint so far (continue with --resume)")
    next_steps(["edgeseg", "convert", str(result.model_path)])


def _verbose() -> int:
    return 1 if stdout_isatty() else 2


def _print_result(result: Any) -> None:
    from rich.table import Table

    table = Table(title="best val IoU")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in result.per_class_iou.items():
        table.add_row(name, "-" if iou is None else f"{iou:.3f}")
    table.add_row("[bold]mean[/]", f"[bold]{result.best_miou:.3f}[/]")
    console.print(table)
    devices = f" on {result.replicas} devices" if result.replicas > 1 else ""
    epochs = f"{result.epochs_run} epoch{'s' if result.epochs_run != 1 else ''}"
    console.print(f"{epochs}{devices}; best model {result.model_path}")
    if result.cost is not None:
        console.print(f"cost: {result.cost.describe()}")
