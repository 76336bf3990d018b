"""Conversion choices as data: quantisation mode, model I/O type and the frozen options record."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from edgeseg.core.errors import ConversionError

# convert's choices are what the metadata records: one enum, in core, where eval reads it too
from edgeseg.core.model_metadata import Quant as Quant

E = TypeVar("E", bound=StrEnum)


DEFAULT_MAX_FLOAT_LAYERS = 8  # convert --max-drop: the most layers it keeps in float


class IOType(StrEnum):
    """Element type of the model's input tensor (int8 models only; float models take float32)."""

    UINT8 = "uint8"  # camera bytes go straight in (scale 1, zero point 0)
    INT8 = "int8"
    FLOAT32 = "float32"  # quantise / dequantise inside the model: drop-in for float callers


def _choice(kind: type[E], value: str, option: str) -> E:
    """A string -> member of `kind`, or a one-line ConversionError naming the option and choices."""
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(member.value for member in kind)
        raise ConversionError(f"{option} {value!r}: expected one of {valid}") from None


def as_quant(value: str) -> Quant:
    """A --quant string -> Quant (ConversionError listing the choices otherwise)."""
    return _choice(Quant, value, "--quant")


def as_io(value: str) -> IOType:
    """An --io string -> IOType (ConversionError listing the choices otherwise)."""
    return _choice(IOType, value, "--io")


def check_io(quant: Quant, io: IOType | None) -> None:
    """An --io the mode would silently not honour is refused: integer input exists only for full
    int8 models (int16x8 takes int16, the float modes float32)."""
    if io is None or io == IOType.FLOAT32 or quant == Quant.INT8:
        return
    takes = "int16 (or float32)" if quant == Quant.INT16X8 else "float32"
    raise ConversionError(
        f"--io {io.value} (io= in Python) applies to --quant int8 only: --quant {quant.value} "
        f"models take {takes} input; leave --io out"
    )


def check_edgetpu(quant: Quant, flag: str = "--edgetpu") -> None:
    """The Edge TPU compiler takes full-integer int8 models only: refused before converting."""
    if quant != Quant.INT8:
        raise ConversionError(f"{flag} needs --quant int8 (got --quant {quant.value})")


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that decides what `export` produces, apart from the model and the images."""

    quant: Quant = Quant.INT8
    io: IOType = IOType.INT8
    calib_count: int = 200
    seed: int = 0
    # TFLite node names (op output tensor names) kept in float inside an int8 model.
    float_layers: tuple[str, ...] = ()
    # False: the per-pixel Softmax head is left out of the .tflite (converter.serving_model):
    # argmax of the logits is the same class map, without a single-threaded op that XNNPACK
    # does not take and the Edge TPU cannot map. True: probabilities out, as trained.
    keep_softmax: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "quant", as_quant(self.quant))
        object.__setattr__(self, "io", as_io(self.io))
        if self.calib_count < 1:
            raise ConversionError(f"--calib-count must be >= 1, got {self.calib_count}")
        object.__setattr__(self, "float_layers", tuple(self.float_layers))
        if self.float_layers and self.quant != Quant.INT8:
            raise ConversionError(
                "float_layers only applies to calibrated (int8) conversion, "
                f"not --quant {self.quant}"
            )

    @property
    def needs_calibration(self) -> bool:
        """Whether this mode needs representative images (full-integer modes do)."""
        return self.quant in (Quant.INT8, Quant.INT16X8)

    @property
    def input_type(self) -> str:
        """The input tensor's element type the converted model will have."""
        if self.quant == Quant.INT16X8:  # no uint8/int8 I/O with 16-bit activations
            return "float32" if self.io == IOType.FLOAT32 else "int16"
        return self.io.value if self.quant == Quant.INT8 else "float32"

    @property
    def output_type(self) -> str:
        """int8 output for integer I/O (argmax runs on raw integers), float32 otherwise."""
        if self.quant == Quant.INT8 and self.io != IOType.FLOAT32:
            return "int8"
        if self.quant == Quant.INT16X8 and self.io != IOType.FLOAT32:
            return "int16"
        return "float32"


def kept_in_float(count: int) -> str:
    """How an accuracy-aware model is described, by `convert --max-drop` and `info` alike:
    '3 layer(s) kept in float', or 'full int8' when none was."""
    return f"{count} layer(s) kept in float" if count else "full int8"
