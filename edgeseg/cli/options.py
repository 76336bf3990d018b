"""Option types and parsers shared by the commands: the real choices of every enumerated option
(so `--help` lists them) and size parsers whose errors name the option the user typed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from edgeseg.cli.common import fail
from edgeseg.runtime.interpreter import MAX_THREADS

# Choices shown in --help as [a|b]; the library validates the same values again.
Upsample = Literal["transpose", "resize"]
Loss = Literal["ce+lovasz", "ce+dice", "ce", "focal+dice", "ohem+dice"]
Resize = Literal["stretch", "letterbox"]
Strategy = Literal["default", "mirrored", "multiworker"]
Target = Literal["cpu", "edgetpu"]
Encoder = Literal["unet", "mobilenetv2"]
ClassWeights = Literal["none", "sqrt", "median"]
Xla = Literal["auto", "on", "off"]
UnlistedColors = Literal["error", "ignore"]
View = Literal["overlay", "side", "mask"]
Fallback = Literal["cpu"]

# Options several scoring commands (eval, check) take with the same meaning
ImageLimit = Annotated[
    int | None, typer.Option("--limit", min=1, help="Score only the first N images.")
]
ScoreThreads = Annotated[
    str,
    typer.Option(
        "--threads", help="TFLite threads: N, or 'auto' (all cores, as for any batch of images)."
    ),
]


def parse_threads(text: str) -> int | None:
    """--threads as run, eval and check take it: 'auto' -> None (the command's own choice),
    'N' -> N >= 1; anything else is a usage error."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise fail(
            f"--threads {text!r}: expected 'auto' or a number of threads, 1..{MAX_THREADS}"
        ) from None
    if not 1 <= value <= MAX_THREADS:  # checked here, before a warning about it is said
        raise fail(f"--threads {text!r}: expected 'auto' or a number of threads, 1..{MAX_THREADS}")
    return value


# How a dataset's masks are read, for the commands that open one to train on or describe it
IgnoreClassOption = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore-class",
        metavar="<name>",
        help="A listed class whose pixels are neither trained nor scored, such as a "
        "dataset's void or unlabelled (repeat it or give a,b); the model gets the other "
        "classes, and eval and check read masks the same way.",
    ),
]
UnlistedColorsOption = Annotated[
    UnlistedColors | None,
    typer.Option(
        help="Colour masks' colours missing from classes.csv: error (name them and stop), "
        "or ignore such pixels, neither trained nor scored (blended edges from "
        "anti-aliased or resized masks); eval and check then read masks the same way. "
        "\\[default: error]"
    ),
]


def split_names(values: list[str] | None) -> tuple[str, ...]:
    """Class names from a repeatable option whose values may also be comma lists."""
    return tuple(n.strip() for v in values or () for n in v.split(",") if n.strip())


MAX_FRAME_SIDE = 8192  # a camera or benchmark frame's pixels a side


def class_list(classes: str | None) -> tuple[str, ...] | None:
    """--classes a,b,c (train, info); given but naming nothing (',') is refused, not read as
    'not given'."""
    if classes is None:
        return None
    names = split_names([classes])
    if not names:
        raise fail(f"--classes {classes!r}: expected class names a,b,c in mask-index order")
    return names


def _two_ints(text: str) -> tuple[int, int] | None:
    for sep in ("x", "X", ",", "*"):
        if sep in text:
            a, _, b = text.partition(sep)
            try:
                return int(a), int(b)
            except ValueError:
                return None
    return None


def parse_capture_size(text: str, option: str = "--capture-size") -> tuple[int, int]:
    """Camera size written WIDTHxHEIGHT like V4L2 and picamera2 ('640x480' or '640,480')
    -> (height, width), the order edgeseg uses inside."""
    pair = _two_ints(text.strip())
    if pair is None:
        raise fail(f"{option} {text!r}: expected WIDTHxHEIGHT, e.g. 640x480 (or 640,480)")
    w, h = pair
    if w <= 0 or h <= 0:
        raise fail(f"{option} {text!r}: width and height must be positive")
    if max(w, h) > MAX_FRAME_SIDE:
        raise fail(f"{option} {text!r}: at most {MAX_FRAME_SIDE} pixels a side (8K is 7680x4320)")
    return h, w


def saves_image(save: Path | None) -> bool:
    """`--save out.png|jpg`: one drawn image (no window needed), not a video."""
    from edgeseg.runtime.outputs import IMAGE_SAVE_SUFFIXES

    return save is not None and save.suffix.lower() in IMAGE_SAVE_SUFFIXES


def is_image_file(source: str | None) -> bool:
    """Whether `--source` names one image file (a single frame)."""
    from edgeseg.core.processing import IMAGE_EXTS

    return (
        source is not None and Path(source).is_file() and Path(source).suffix.lower() in IMAGE_EXTS
    )
