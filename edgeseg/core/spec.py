"""The frozen contract between training, conversion and the runtime: what a model expects and emits.

Saved as `config.json` next to a Keras model and embedded in every `.tflite` edgeseg writes, so no
stage has to guess the input size, colour order, resize policy or class names.
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from edgeseg import __version__
from edgeseg.core.errors import EdgesegError, ModelError
from edgeseg.core.fileio import json_text, write_text

ResizePolicy = Literal["stretch", "letterbox"]
ColorOrder = Literal["rgb", "bgr"]
# logits: a softmax model whose Softmax head the converter left out (argmax gives the same map)
OutputKind = Literal["softmax", "logits", "sigmoid"]
Target = Literal["cpu", "edgetpu"]  # the hardware the model was trained for (decides the decoder)
TARGETS: tuple[str, ...] = ("cpu", "edgetpu")
# what a colour-coded mask's colours missing from classes.csv mean: an error (a wrong or
# incomplete classes.csv), or ignored pixels (anti-aliased or resampled edges between classes)
UnlistedColors = Literal["error", "ignore"]
UNLISTED_COLORS: tuple[str, ...] = ("error", "ignore")

# Normalisation lives INSIDE the model (a Rescaling layer built from these two numbers), so every
# caller feeds raw 0..255 pixels and nobody can normalise twice or forget to.
NORM_SCALE = 1.0 / 127.5
NORM_OFFSET = -1.0
IGNORE_INDEX = 255
MAX_SIZE = 4096  # network input pixels a side; far above what trains on an edge budget


def parse_size(size: object, option: str = "--size") -> tuple[int, int]:
    """A network input size as (height, width): N, "N", "HxW" (as --size takes it) or a
    (height, width) pair; one clear error otherwise (a string is never split into characters)."""
    pair: tuple[object, ...]
    if isinstance(size, str):
        text = size.strip().lower()
        pair = tuple(text.split("x")) if "x" in text else (text, text)
    elif isinstance(size, numbers.Integral) and not isinstance(size, bool):
        pair = (size, size)
    elif isinstance(size, Sequence) and not isinstance(size, bytes):
        pair = tuple(size)
    else:
        pair = ()
    try:
        if len(pair) != 2 or any(isinstance(v, bool | float) for v in pair):
            raise ValueError
        height, width = (int(v) for v in pair)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise EdgesegError(f"{option} {size!r}: expected N or HxW, e.g. 256 or 192x256") from None
    if height <= 0 or width <= 0:
        raise EdgesegError(f"{option} {size!r}: must be positive")
    if max(height, width) > MAX_SIZE:
        raise EdgesegError(
            f"{option} {size!r}: at most {MAX_SIZE} pixels a side (a U-Net input, not the "
            "images' size: they are resized to it)"
        )
    return height, width


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """Pascal-VOC style palette (RGB): distinct, stable colours for any class count."""
    colors = []
    for i in range(num_classes):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    if num_classes >= 1:
        colors[0] = (32, 32, 32) if colors[0] == (0, 0, 0) else colors[0]
    return tuple(colors)


def _has_control(text: str) -> bool:
    """Control characters (ESC starts terminal escape sequences) never belong in a class name."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def check_class_names(names: Any, field_name: str = "class_names") -> tuple[str, ...]:
    """A tuple of unique, non-empty strings without control characters, or ModelError."""
    if isinstance(names, str) or not isinstance(names, list | tuple):
        raise ModelError(f"field {field_name!r} must be a list of strings")
    seen: set[str] = set()
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ModelError(f"field {field_name}[{i}] must be a non-empty string, got {name!r}")
        if _has_control(name):
            raise ModelError(f"field {field_name}[{i}] {name!r} holds control characters")
        if name in seen:
            raise ModelError(f"field {field_name!r} repeats the name {name!r}")
        seen.add(name)
    return tuple(names)


def _check_palette(palette: Any) -> tuple[tuple[int, int, int], ...]:
    """A list of [r, g, b] integers in 0..255, or ModelError naming the entry."""
    if not isinstance(palette, list | tuple):
        raise ModelError("field 'palette' must be a list of [r, g, b] colours")
    out = []
    for i, color in enumerate(palette):
        ok = isinstance(color, list | tuple) and len(color) == 3
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in color)
        if not ok or not all(0 <= v <= 255 for v in color):
            raise ModelError(f"field palette[{i}] must be 3 integers in 0..255, got {color!r}")
        out.append((int(color[0]), int(color[1]), int(color[2])))
    return tuple(out)


def _check_numbers(kwargs: dict[str, Any]) -> None:
    """Numeric fields hold numbers (JSON true/false or strings are refused, naming the field)."""
    for key in ("input_height", "input_width", "channels", "ignore_index"):
        v = kwargs.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ModelError(f"field {key!r} must be an integer, got {v!r}")
    for key in ("norm_scale", "norm_offset", "float_miou"):
        v = kwargs.get(key, 0.0)
        if v is None and key == "float_miou":
            continue
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise ModelError(f"field {key!r} must be a number, got {v!r}")


def default_class_names(count: int) -> tuple[str, ...]:
    """The placeholder names of a model read without a spec: class_0, class_1, ..."""
    return tuple(f"class_{i}" for i in range(count))


@dataclass(frozen=True)
class ModelSpec:
    """Everything outside the network weights that a stage needs to feed it and read it."""

    input_height: int
    input_width: int
    class_names: tuple[str, ...]
    channels: int = 3
    color_order: ColorOrder = "rgb"
    resize: ResizePolicy = "stretch"
    output_kind: OutputKind = "softmax"
    palette: tuple[tuple[int, int, int], ...] = ()
    norm_scale: float = NORM_SCALE
    norm_offset: float = NORM_OFFSET
    ignore_index: int = IGNORE_INDEX
    # classes of the training data's list left out (`--ignore-class`): eval and check read masks
    # the same way, those pixels becoming ignore_index
    ignored_classes: tuple[str, ...] = ()
    # colour masks' colours not in classes.csv (`--unlisted-colors`): eval and check read masks
    # the same way
    unlisted_colors: UnlistedColors = "error"
    float_miou: float | None = None
    target: Target = "cpu"
    # per-class float IoU (None for a class absent from the data) next to float_miou, so `check
    # --max-class-drop` works from an int8 model's metadata alone
    float_per_class_iou: dict[str, float | None] | None = field(
        default=None, compare=False, repr=False
    )
    edgeseg_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", check_class_names(self.class_names))
        ignored = check_class_names(self.ignored_classes, "ignored_classes")
        object.__setattr__(self, "ignored_classes", ignored)
        if set(ignored) & set(self.class_names):
            raise ModelError(
                f"classes {sorted(set(ignored) & set(self.class_names))} are both "
                "output classes and ignored classes"
            )
        if len(self.class_names) < 2:
            raise ModelError(
                f"a model needs at least 2 classes, got {len(self.class_names)}: "
                f"{list(self.class_names)}"
            )
        try:  # accept numpy integers too, but store plain ints so the spec stays JSON-ready
            h, w = operator.index(self.input_height), operator.index(self.input_width)
        except TypeError:
            h = w = 0
        if h < 1 or w < 1:
            raise ModelError(
                f"input size must be positive integers, got {self.input_height}x{self.input_width}"
            )
        object.__setattr__(self, "input_height", int(h))
        object.__setattr__(self, "input_width", int(w))
        if len(self.class_names) > 255:
            raise ModelError(f"at most 255 classes fit a class map, got {len(self.class_names)}")
        if self.channels not in (1, 3):
            raise ModelError(f"channels must be 1 or 3, got {self.channels}")
        if self.resize not in ("stretch", "letterbox"):
            raise ModelError(f"resize policy must be 'stretch' or 'letterbox', got {self.resize!r}")
        if self.color_order not in ("rgb", "bgr"):
            raise ModelError(f"colour order must be 'rgb' or 'bgr', got {self.color_order!r}")
        if self.output_kind not in ("softmax", "logits", "sigmoid"):
            raise ModelError(
                f"output kind must be 'softmax', 'logits' or 'sigmoid', got {self.output_kind!r}"
            )
        if self.unlisted_colors not in UNLISTED_COLORS:
            raise ModelError(
                f"unlisted_colors must be one of {', '.join(UNLISTED_COLORS)}, "
                f"got {self.unlisted_colors!r}"
            )
        if self.target not in TARGETS:
            raise ModelError(f"target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if not self.palette:
            object.__setattr__(self, "palette", default_palette(self.num_classes))
        elif len(self.palette) < self.num_classes:
            raise ModelError(
                f"palette has {len(self.palette)} colours for {self.num_classes} classes"
            )

    @property
    def num_classes(self) -> int:
        """How many classes the model outputs (the class map's ids are 0..num_classes-1)."""
        return len(self.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        return (self.input_height, self.input_width)

    @classmethod
    def from_shapes(
        cls,
        height: int,
        width: int,
        channels: int,
        outputs: int,
        class_names: tuple[str, ...] | None = None,
    ) -> ModelSpec:
        """Defaults read off a model's tensor shapes, for models that came without a spec.

        One output channel means a sigmoid (binary); otherwise a softmax over `outputs` classes.
        """
        names = class_names or default_class_names(max(outputs, 2))
        return cls(
            input_height=height,
            input_width=width,
            channels=channels,
            class_names=names,
            output_kind="sigmoid" if outputs == 1 else "softmax",
        )

    @property
    def names_known(self) -> bool:
        """False when the class names are only the placeholders of a model without a spec."""
        return self.class_names != default_class_names(self.num_classes)

    def with_updates(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed (the spec itself is frozen)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (lists, not tuples): what config.json and .tflite hold."""
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["palette"] = [list(c) for c in self.palette]
        d["ignored_classes"] = list(self.ignored_classes)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Read a spec back from `to_dict` data, ignoring unknown keys (newer versions add some);
        a missing or malformed field is a ModelError naming it."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "class_names" not in kwargs:
            raise ModelError("field 'class_names' is missing (the list of class names)")
        if not isinstance(kwargs.get("extra", {}), dict):
            raise ModelError("field 'extra' must be a JSON object")
        try:
            kwargs["class_names"] = check_class_names(kwargs["class_names"])
            kwargs["palette"] = _check_palette(kwargs.get("palette", ()))
            _check_numbers(kwargs)
            per_class = kwargs.get("float_per_class_iou")
            if per_class is not None:
                kwargs["float_per_class_iou"] = {
                    str(k): None if v is None else float(v) for k, v in dict(per_class).items()
                }
            return cls(**kwargs)
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"invalid model spec: {type(exc).__name__}: {exc}") from exc

    def to_json(self) -> str:
        """The spec as JSON text, as saved beside a Keras model and embedded in a .tflite."""
        return json_text(self.to_dict())

    def save(self, path: str | Path) -> None:
        """Write atomically: a crash never leaves a half-written config."""
        write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        """Read a spec file, or the spec inside a run's config.json; ModelError naming the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: spec file not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: cannot read spec file ({exc})") from exc
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not isinstance(data, dict):
            raise ModelError(f"{path}: expected a JSON object holding a model spec")
        # config.json written by `edgeseg train` nests the spec under "spec".
        try:
            return cls.from_dict(data.get("spec", data))
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from exc
