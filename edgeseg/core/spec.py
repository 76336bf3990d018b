"""The frozen contract between training, conversion and the runtime: what a model expects and emits.

Saved as `config.json` next to a Keras model and embedded in every `.tflite` edgeseg writes, so no
stage has to guess the input size, colour order, resize policy or class names.
"""

from __future__ import annotations

import json
import operator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from edgeseg import __version__
from edgeseg.core.errors import ModelError

ResizePolicy = Literal["stretch", "letterbox"]
ColorOrder = Literal["rgb", "bgr"]
OutputKind = Literal["softmax", "sigmoid"]

# Normalisation lives INSIDE the model (a Rescaling layer built from these two numbers), so every
# caller feeds raw 0..255 pixels and nobody can normalise twice or forget to.
NORM_SCALE = 1.0 / 127.5
NORM_OFFSET = -1.0
IGNORE_INDEX = 255


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
    float_miou: float | None = None
    # per-class float IoU (None for a class absent from the data) next to float_miou, so `check
    # --max-class-drop` works from an int8 model's metadata alone
    float_per_class_iou: dict[str, float | None] | None = field(default=None, compare=False)
    edgeseg_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
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
        if self.output_kind not in ("softmax", "sigmoid"):
            raise ModelError(
                f"output kind must be 'softmax' or 'sigmoid', got {self.output_kind!r}"
            )
        if not self.palette:
            object.__setattr__(self, "palette", default_palette(self.num_classes))
        elif len(self.palette) < self.num_classes:
            raise ModelError(
                f"palette has {len(self.palette)} colours for {self.num_classes} classes"
            )

    @property
    def num_classes(self) -> int:
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
        names = class_names or tuple(f"class_{i}" for i in range(max(outputs, 2)))
        return cls(
            input_height=height,
            input_width=width,
            channels=channels,
            class_names=names,
            output_kind="sigmoid" if outputs == 1 else "softmax",
        )

    def with_updates(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed (the spec itself is frozen)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["palette"] = [list(c) for c in self.palette]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            kwargs["class_names"] = tuple(str(n) for n in kwargs["class_names"])
            kwargs["palette"] = tuple(tuple(int(v) for v in c) for c in kwargs.get("palette", ()))
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
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        """Write atomically: a crash never leaves a half-written config."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
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
